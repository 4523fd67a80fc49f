//! Metrics computed at scrape time (process figures, pool sizes).
//!
//! # Example
//!
//! ```
//! use plimsoll_core::{Collector, MetricWriter, Telemetry, Tenant};
//!
//! #[derive(Debug)]
//! struct QueueDepth;
//!
//! impl Collector for QueueDepth {
//!     fn collect(&self, out: &mut MetricWriter<'_, '_>) {
//!         let mut depth = out.gauge("queue_depth", "Jobs waiting.");
//!         depth.sample(&Tenant::system(), &[("queue", "email")], 7.0);
//!     }
//! }
//!
//! let telemetry = Telemetry::builder().with_process_metrics(false).build().unwrap();
//! telemetry.register_collector(QueueDepth);
//! let body = telemetry.encode(plimsoll_core::Format::Prometheus);
//! assert!(body.contains("queue_depth{tenant_id=\"__system__\",queue=\"email\"} 7\n"));
//! ```

use crate::encoding::{Encoder, MetricKind, write_escaped, write_f64};
use crate::tenant::Tenant;

/// Writes metrics when the registry is encoded.
pub trait Collector: Send + Sync + std::fmt::Debug + 'static {
    /// Writes this collector's families. Called once per scrape.
    fn collect(&self, out: &mut MetricWriter<'_, '_>);
}

/// Hands a [`Collector`] the families it writes.
#[derive(Debug)]
pub struct MetricWriter<'a, 'b> {
    pub(crate) enc: &'a mut Encoder<'b>,
    pub(crate) labels: String,
}

impl<'b> MetricWriter<'_, 'b> {
    /// Starts a counter family; `name` may end in `_total` or not.
    pub fn counter(&mut self, name: &str, help: &str) -> FamilyWriter<'_, 'b> {
        self.family(
            name.strip_suffix("_total").unwrap_or(name),
            help,
            MetricKind::Counter,
        )
    }

    /// Starts a gauge family.
    pub fn gauge(&mut self, name: &str, help: &str) -> FamilyWriter<'_, 'b> {
        self.family(name, help, MetricKind::Gauge)
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricKind) -> FamilyWriter<'_, 'b> {
        let valid = crate::telemetry::valid_metric_name(name);
        debug_assert!(valid, "invalid metric name {name:?}");
        FamilyWriter {
            enc: &mut *self.enc,
            labels: &mut self.labels,
            name: name.to_string(),
            help: help.to_string(),
            kind,
            started: !valid,
            valid,
        }
    }
}

/// Writes the samples of one collected family. The header is written with
/// the first sample, so a family without samples leaves no trace.
#[derive(Debug)]
pub struct FamilyWriter<'a, 'b> {
    enc: &'a mut Encoder<'b>,
    labels: &'a mut String,
    name: String,
    help: String,
    kind: MetricKind,
    started: bool,
    valid: bool,
}

impl FamilyWriter<'_, '_> {
    /// Writes one sample. Label names must be valid and distinct from
    /// `tenant_id` and the constant labels; invalid ones are skipped.
    pub fn sample(&mut self, tenant: &Tenant, labels: &[(&str, &str)], value: f64) {
        if !self.valid {
            return;
        }
        if !self.started {
            self.enc.header(&self.name, &self.help, self.kind);
            self.started = true;
        }
        let buf = &mut *self.labels;
        self.enc.render_labels(buf, tenant.as_str(), |buf| {
            for (name, value) in labels {
                if !crate::telemetry::valid_label_name(name) || *name == crate::names::TENANT_LABEL
                {
                    debug_assert!(false, "invalid label name {name:?}");
                    continue;
                }
                buf.push(',');
                buf.push_str(name);
                buf.push_str("=\"");
                write_escaped(buf, value);
                buf.push('"');
            }
        });
        let suffix = if self.kind == MetricKind::Counter {
            "_total"
        } else {
            ""
        };
        self.enc.sample_start(&self.name, suffix, buf, None);
        write_f64(self.enc.out, value);
        self.enc.out.push('\n');
    }
}
