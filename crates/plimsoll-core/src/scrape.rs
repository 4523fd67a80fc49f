//! Scrape-time values: counters, gauges and histograms computed when
//! `/metrics` is read (pool sizes, cache entries, breaker states, health),
//! declared, checked and bounded like every other family.
//!
//! Register one with [`Telemetry::declare_scraped`](crate::Telemetry::declare_scraped):
//! a [`FamilyDecl`](crate::family::FamilyDecl), a label set, and a closure
//! that writes the current values. The name is checked against every
//! registered family (a conflict is a [`RegisterError`](crate::RegisterError)),
//! every series carries `tenant_id`, and past the family's series bound
//! values are summed into the tenant's `__other__` series and counted in
//! `plimsoll_cardinality_overflow_total` (once per folded value per scrape:
//! its rate says how many values are folded at each scrape).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use plimsoll_core::family::{FamilyDecl, LabelDecl};
//! use plimsoll_core::{Format, Telemetry, Tenant, impl_label_set};
//!
//! const QUEUE_DEPTH: FamilyDecl = FamilyDecl::gauge("queue_depth", "Jobs waiting.")
//!     .with_labels(&[LabelDecl::closed("queue")]);
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct Queue { queue: &'static str }
//! impl_label_set!(Queue { queue });
//!
//! let depth = Arc::new(AtomicUsize::new(7));
//! let telemetry = Telemetry::builder().with_process_metrics(false).build()?;
//! let seen = depth.clone();
//! telemetry.declare_scraped(&QUEUE_DEPTH, move |out| {
//!     out.set(&Tenant::system(), &Queue { queue: "email" }, seen.load(Ordering::Relaxed) as f64);
//! })?;
//! let body = telemetry.encode(Format::Prometheus);
//! assert!(body.contains("queue_depth{tenant_id=\"__system__\",queue=\"email\"} 7\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use std::collections::HashMap;

use crate::encoding::{Encoder, MetricKind, write_f64};
use crate::labels::LabelSet;
use crate::metrics::{
    EncodeFamily, HistogramSnapshot, Meta, OverflowCounter, OverflowFamily, Shape, write_histogram,
    write_labels,
};
use crate::tenant::{Tenant, TenantLabel, TenantRegistry};

/// A value written at scrape time that does not fit its family.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// A histogram snapshot whose bucket bounds are not the family's.
    #[error("metric {metric:?}: histogram buckets {given:?} are not the family's {expected:?}")]
    Buckets {
        /// The metric.
        metric: String,
        /// The bounds given.
        given: Vec<f64>,
        /// The family's bounds.
        expected: Vec<f64>,
    },
    /// A counter value that is negative or NaN (a counter only goes up from 0).
    #[error("metric {metric:?}: a counter cannot be {value}")]
    InvalidValue {
        /// The metric.
        metric: String,
        /// The value given.
        value: f64,
    },
    /// A number written to a histogram family, or a snapshot to a counter or gauge.
    #[error("metric {metric:?} is a {kind:?}: write it with the matching method")]
    Kind {
        /// The metric.
        metric: String,
        /// The family's type.
        kind: MetricKind,
    },
}

#[derive(Clone, Debug)]
enum Value {
    Number(f64),
    Histogram(HistogramSnapshot),
}

type Collect<L> = dyn Fn(&mut ScrapeWriter<'_, L>) + Send + Sync;

/// A family whose values are computed at each scrape.
pub(crate) struct ScrapedFamily<L: LabelSet> {
    pub(crate) meta: Meta,
    pub(crate) kind: MetricKind,
    pub(crate) label_names: Box<[&'static str]>,
    pub(crate) shape: Shape,
    pub(crate) max_series: usize,
    pub(crate) tenants: Arc<TenantRegistry>,
    pub(crate) overflow_family: Arc<OverflowFamily>,
    pub(crate) series_overflow: OnceLock<OverflowCounter>,
    pub(crate) tenant_overflow: OnceLock<OverflowCounter>,
    pub(crate) collect: Box<Collect<L>>,
}

impl<L: LabelSet> fmt::Debug for ScrapedFamily<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrapedFamily")
            .field("name", &self.meta.exposed)
            .finish_non_exhaustive()
    }
}

impl<L: LabelSet> ScrapedFamily<L> {
    fn overflow(&self, tenant: bool) -> &OverflowCounter {
        let (which, label, bound) = if tenant {
            (
                &self.tenant_overflow,
                crate::names::TENANT_LABEL.to_string(),
                self.tenants.limit(),
            )
        } else {
            (
                &self.series_overflow,
                self.label_names.join(","),
                self.max_series,
            )
        };
        which.get_or_init(|| {
            OverflowCounter::new(&self.overflow_family, &self.meta.exposed, &label, bound)
        })
    }
}

/// Receives the values of one scrape-time family; see the [module docs](self).
pub struct ScrapeWriter<'a, L: LabelSet> {
    family: &'a ScrapedFamily<L>,
    series: Vec<(TenantLabel, Option<L>, Value)>,
    index: HashMap<(TenantLabel, Option<L>), usize>,
    regular: usize,
    reported: std::cell::Cell<bool>,
}

impl<L: LabelSet> fmt::Debug for ScrapeWriter<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrapeWriter")
            .field("family", &self.family.meta.exposed)
            .field("series", &self.series.len())
            .finish()
    }
}

impl<L: LabelSet> ScrapeWriter<'_, L> {
    /// Sets the value of a counter or gauge series (a refused value is
    /// also logged, once per scrape). Writing a series twice
    /// keeps the last value; series past the family's bound (or of a
    /// tenant past the tenant bound) are summed into the tenant's
    /// `__other__` series.
    pub fn set(&mut self, tenant: &Tenant, labels: &L, value: f64) -> Result<(), ScrapeError> {
        if self.family.kind == MetricKind::Histogram {
            return Err(self.kind_error());
        }
        if self.family.kind == MetricKind::Counter && (value.is_nan() || value < 0.0) {
            return Err(self.report(ScrapeError::InvalidValue {
                metric: self.family.meta.exposed.clone(),
                value,
            }));
        }
        self.put(tenant, labels, Value::Number(value));
        Ok(())
    }

    /// Sets the counts of a histogram series (a [`HistogramSnapshot`] over
    /// the family's bounds, see [`HistogramSnapshot::empty`]).
    pub fn set_histogram(
        &mut self,
        tenant: &Tenant,
        labels: &L,
        counts: &HistogramSnapshot,
    ) -> Result<(), ScrapeError> {
        if self.family.kind != MetricKind::Histogram {
            return Err(self.kind_error());
        }
        if counts.bounds() != &*self.family.shape.bounds {
            return Err(self.report(ScrapeError::Buckets {
                metric: self.family.meta.exposed.clone(),
                given: counts.bounds().to_vec(),
                expected: self.family.shape.bounds.to_vec(),
            }));
        }
        self.put(tenant, labels, Value::Histogram(counts.clone()));
        Ok(())
    }

    /// The family's histogram bounds (empty for counters and gauges).
    pub fn bounds(&self) -> &[f64] {
        &self.family.shape.bounds
    }

    fn kind_error(&self) -> ScrapeError {
        self.report(ScrapeError::Kind {
            metric: self.family.meta.exposed.clone(),
            kind: self.family.kind,
        })
    }

    /// Logs a refused value (once per scrape and family) and returns the
    /// error, so that a collector that ignores it still leaves a trace.
    fn report(&self, error: ScrapeError) -> ScrapeError {
        if !self.reported.replace(true) {
            tracing::warn!(target: "plimsoll", %error, "a scrape-time value was refused");
        }
        error
    }

    fn put(&mut self, tenant: &Tenant, labels: &L, value: Value) {
        let tenant = self.family.tenants.rebind(tenant);
        let label = tenant.label.clone();
        // Labels all `__other__` are written like the overflow series: they
        // are summed into it (one series, never two with the same labels).
        if crate::labels::all_other(labels, self.family.label_names.len()) {
            self.fold(label, value);
            return;
        }
        // The tenants past the tenant bound share `__other__` and keep their
        // labels, as in recorded families: their values add up.
        let shared = tenant.is_overflow();
        if shared {
            self.family.overflow(true).inc();
        }
        let key = (label.clone(), Some(labels.clone()));
        if let Some(&at) = self.index.get(&key) {
            match shared {
                true => add(&mut self.series[at].2, &value),
                false => self.series[at].2 = value,
            }
            return;
        }
        if self.regular < self.family.max_series {
            self.regular += 1;
            self.index.insert(key, self.series.len());
            self.series.push((label, Some(labels.clone()), value));
            return;
        }
        self.family.overflow(false).inc();
        self.fold(label, value);
    }

    /// Adds `value` to the tenant's `__other__` series.
    fn fold(&mut self, label: TenantLabel, value: Value) {
        let overflow_key = (label.clone(), None);
        match self.index.get(&overflow_key) {
            Some(&at) => add(&mut self.series[at].2, &value),
            None => {
                self.index.insert(overflow_key, self.series.len());
                self.series.push((label, None, value));
            }
        }
    }
}

/// Adds `value` into `sum` (numbers to numbers, histograms to histograms).
fn add(sum: &mut Value, value: &Value) {
    match (sum, value) {
        (Value::Number(sum), Value::Number(v)) => *sum += *v,
        (Value::Histogram(sum), Value::Histogram(v)) => {
            sum.merge(v);
        }
        _ => {}
    }
}

impl<L: LabelSet> EncodeFamily for ScrapedFamily<L> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        let mut writer = ScrapeWriter {
            family: self,
            series: Vec::new(),
            index: HashMap::new(),
            regular: 0,
            reported: std::cell::Cell::new(false),
        };
        let collected = std::panic::catch_unwind(AssertUnwindSafe(|| (self.collect)(&mut writer)));
        if collected.is_err() {
            tracing::warn!(
                target: "plimsoll",
                metric = self.meta.exposed.as_str(),
                "a scrape-time family's collector panicked; the family is left out of this scrape"
            );
            return;
        }
        if writer.series.is_empty() {
            return;
        }
        enc.header(&self.meta.name, &self.meta.help, self.kind);
        let mut labels = String::with_capacity(128);
        for (tenant, set, value) in &writer.series {
            enc.render_labels(&mut labels, tenant.as_str(), |buf| {
                write_labels::<L>(buf, &self.label_names, set.as_ref())
            });
            match value {
                Value::Number(v) => {
                    let suffix = if self.kind == MetricKind::Counter {
                        "_total"
                    } else {
                        ""
                    };
                    enc.sample_start(&self.meta.name, suffix, &labels, None);
                    write_f64(enc.out, *v);
                    enc.out.push('\n');
                }
                Value::Histogram(h) => write_histogram(
                    enc,
                    &self.meta.name,
                    &labels,
                    &self.shape,
                    h.counts().iter().copied(),
                    None,
                    h.sum(),
                ),
            }
        }
    }

    fn series_count(&self) -> usize {
        0
    }
}
