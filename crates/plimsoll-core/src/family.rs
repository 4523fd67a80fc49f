//! Family declarations: one `const` per metric, from which registration,
//! both naming schemes, the bounds of its open labels and the catalogue follow.
//!
//! A [`FamilyDecl`] says everything about a metric in one place: its
//! catalogue name and its OpenTelemetry semantic-conventions name, HELP
//! text, type, unit, labels (each with its OpenTelemetry name and, for an
//! open label, its default bound) and buckets. Integrations keep theirs in
//! a `families` module; [`Telemetry::declare`](crate::Telemetry::declare)
//! registers one under the telemetry's [`Naming`], and
//! [`Telemetry::label_guard`](crate::Telemetry::label_guard) bounds its
//! open labels.
//!
//! # Example
//!
//! ```
//! use plimsoll_core::family::{FamilyDecl, LabelDecl};
//! use plimsoll_core::{Counter, Naming, Telemetry, impl_label_set};
//! use std::sync::Arc;
//!
//! pub const JOBS: FamilyDecl = FamilyDecl::counter("jobs_processed_total", "Jobs processed, by queue.")
//!     .with_otel_name("messaging_process_operations_total")
//!     .with_labels(&[LabelDecl::open("queue", 50).with_otel_name("messaging_destination_name")]);
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct Queue { queue: Arc<str> }
//! impl_label_set!(Queue { queue });
//!
//! for naming in [Naming::Prometheus, Naming::OpenTelemetry] {
//!     let telemetry = Telemetry::builder().with_naming(naming).with_process_metrics(false).build()?;
//!     let jobs: Counter<Queue> = telemetry.declare(&JOBS)?;
//!     let queues = telemetry.label_guard(&JOBS, "queue")?; // bound: 50 unless configured
//!     jobs.inc(&telemetry.tenant("acme"), &Queue { queue: queues.admit("email") });
//!     let body = telemetry.encode(plimsoll_core::Format::Prometheus);
//!     let line = match naming {
//!         Naming::Prometheus => "jobs_processed_total{tenant_id=\"acme\",queue=\"email\"} 1",
//!         _ => "messaging_process_operations_total{tenant_id=\"acme\",messaging_destination_name=\"email\"} 1",
//!     };
//!     assert!(body.contains(line), "{body}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::encoding::MetricKind;
use crate::telemetry::Naming;

/// How the values of one label are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Bound {
    /// A closed set fixed in code (an enum, a status code, a method): its
    /// size is its bound.
    Closed,
    /// Values from outside the code (a route, a table, an endpoint): at
    /// most this many distinct values by default, past which a value is
    /// recorded as `__other__`. Configurable per telemetry with
    /// [`TelemetryBuilder::with_label_bound`](crate::TelemetryBuilder::with_label_bound).
    Open(usize),
    /// Values that went through the bound of another family's open label
    /// (the route of `http_requests_in_flight` is the one
    /// `http_request_duration_seconds` admitted): bounded there, configured
    /// there.
    Via {
        /// The family (catalogue name) whose label guard admits the values.
        family: &'static str,
        /// Its label.
        label: &'static str,
    },
}

/// One label of a [`FamilyDecl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LabelDecl {
    name: &'static str,
    otel_name: Option<&'static str>,
    bound: Bound,
}

impl LabelDecl {
    /// A label whose values form a closed set fixed in code.
    pub const fn closed(name: &'static str) -> Self {
        Self {
            name,
            otel_name: None,
            bound: Bound::Closed,
        }
    }

    /// A label whose values come from outside the code, bounded to
    /// `default_bound` distinct values unless configured otherwise.
    pub const fn open(name: &'static str, default_bound: usize) -> Self {
        Self {
            name,
            otel_name: None,
            bound: Bound::Open(default_bound),
        }
    }

    /// A label whose values went through the bound of `label` of another
    /// declared `family` (see [`Bound::Via`]).
    pub const fn bounded_via(
        name: &'static str,
        family: &'static str,
        label: &'static str,
    ) -> Self {
        Self {
            name,
            otel_name: None,
            bound: Bound::Via { family, label },
        }
    }

    /// Its name under the OpenTelemetry naming scheme (default: the same).
    pub const fn with_otel_name(mut self, name: &'static str) -> Self {
        self.otel_name = Some(name);
        self
    }

    /// The catalogue name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The name under `naming`.
    pub fn name_for(&self, naming: Naming) -> &'static str {
        match (naming, self.otel_name) {
            (Naming::OpenTelemetry, Some(otel)) => otel,
            _ => self.name,
        }
    }

    /// How its values are bounded.
    pub const fn bound(&self) -> Bound {
        self.bound
    }
}

/// The declaration of one metric family; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyDecl {
    name: &'static str,
    otel_name: Option<&'static str>,
    help: &'static str,
    kind: MetricKind,
    unit: Option<&'static str>,
    labels: &'static [LabelDecl],
    buckets: Option<&'static [f64]>,
    count_view: bool,
}

impl FamilyDecl {
    const fn new(kind: MetricKind, name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            otel_name: None,
            help,
            kind,
            unit: None,
            labels: &[],
            buckets: None,
            count_view: false,
        }
    }

    /// A counter; `name` as exposed (ending in `_total`, or not: it is added).
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(MetricKind::Counter, name, help)
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(MetricKind::Gauge, name, help)
    }

    /// A histogram.
    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Self::new(MetricKind::Histogram, name, help)
    }

    /// Its name under the OpenTelemetry naming scheme (default: the same).
    pub const fn with_otel_name(mut self, name: &'static str) -> Self {
        self.otel_name = Some(name);
        self
    }

    /// The unit (`seconds`, `bytes`), for the catalogue; the name ends with it.
    pub const fn with_unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// The labels, in the order of the label set's fields (`tenant_id`
    /// is added by plimsoll and is not declared).
    pub const fn with_labels(mut self, labels: &'static [LabelDecl]) -> Self {
        self.labels = labels;
        self
    }

    /// Marks a counter as the view of a histogram's counts (registered with
    /// [`Telemetry::declare_count_view`](crate::Telemetry::declare_count_view)):
    /// its series are the histogram's, so it takes no settings of its own.
    pub const fn as_count_view(mut self) -> Self {
        self.count_view = true;
        self
    }

    /// Whether it is the view of a histogram's counts.
    pub const fn is_count_view(&self) -> bool {
        self.count_view
    }

    /// Histogram buckets (default: the telemetry's buckets).
    pub const fn with_buckets(mut self, buckets: &'static [f64]) -> Self {
        self.buckets = Some(buckets);
        self
    }

    /// The catalogue name, as declared.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The OpenTelemetry name, when it differs.
    pub const fn otel_name(&self) -> Option<&'static str> {
        self.otel_name
    }

    /// The exposed name under `naming` (without prefix).
    pub fn name_for(&self, naming: Naming) -> &'static str {
        match (naming, self.otel_name) {
            (Naming::OpenTelemetry, Some(otel)) => otel,
            _ => self.name,
        }
    }

    /// The HELP text.
    pub const fn help(&self) -> &'static str {
        self.help
    }

    /// The type.
    pub const fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The unit, if declared.
    pub const fn unit(&self) -> Option<&'static str> {
        self.unit
    }

    /// The labels.
    pub const fn labels(&self) -> &'static [LabelDecl] {
        self.labels
    }

    /// The declared buckets, if any.
    pub const fn buckets(&self) -> Option<&'static [f64]> {
        self.buckets
    }

    /// The label named `name` (catalogue name).
    pub fn label(&self, name: &str) -> Option<&'static LabelDecl> {
        self.labels.iter().find(|l| l.name == name)
    }

    /// The family's key in per-family settings: its catalogue name without
    /// `_total`.
    pub(crate) fn key(&self) -> &'static str {
        base_name(self.name, self.kind)
    }

    /// A row of the metric catalogue in Markdown:
    /// `` | `name` | type | labels | `` (labels with their bounds).
    pub fn catalogue_row(&self, naming: Naming) -> String {
        let kind = match self.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|l| match l.bound {
                Bound::Closed => format!("`{}`", l.name_for(naming)),
                Bound::Open(n) => format!("`{}` (≤ {n})", l.name_for(naming)),
                Bound::Via { family, label } => {
                    format!(
                        "`{}` (bounded with `{family}` `{label}`)",
                        l.name_for(naming)
                    )
                }
            })
            .collect();
        let labels = if labels.is_empty() {
            "—".to_string()
        } else {
            labels.join(", ")
        };
        format!("| `{}` | {kind} | {labels} |", self.name_for(naming))
    }
}

/// The Markdown table of `families` under `naming`, as `docs/catalogue.md`
/// shows it: one [`FamilyDecl::catalogue_row`] per family under a header.
pub fn catalogue_table(families: &[FamilyDecl], naming: Naming) -> String {
    let mut table = String::from(
        "| metric | type | labels (plus `tenant_id`; open labels with their default bound) |\n|---|---|---|\n",
    );
    for family in families {
        table.push_str(&family.catalogue_row(naming));
        table.push('\n');
    }
    table
}

/// Whether histogram bucket bounds can be used: non-empty, finite and
/// strictly increasing (layers check the buckets they are given with it).
pub fn valid_buckets(buckets: &[f64]) -> bool {
    !buckets.is_empty()
        && buckets.iter().all(|b| b.is_finite())
        && buckets.windows(2).all(|w| w[0] < w[1])
}

/// A counter's name without `_total`; other names as they are.
pub(crate) fn base_name(name: &str, kind: MetricKind) -> &str {
    match kind {
        MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: FamilyDecl = FamilyDecl::histogram("req_seconds", "Requests.")
        .with_otel_name("otel_req_seconds")
        .with_unit("seconds")
        .with_labels(&[
            LabelDecl::closed("method").with_otel_name("http_request_method"),
            LabelDecl::open("route", 7),
        ]);

    #[test]
    fn names_per_scheme() {
        assert_eq!(H.name_for(Naming::Prometheus), "req_seconds");
        assert_eq!(H.name_for(Naming::OpenTelemetry), "otel_req_seconds");
        assert_eq!(
            H.labels()[0].name_for(Naming::OpenTelemetry),
            "http_request_method"
        );
        assert_eq!(H.labels()[1].name_for(Naming::OpenTelemetry), "route");
        assert_eq!(H.label("route").unwrap().bound(), Bound::Open(7));
        assert_eq!(
            H.catalogue_row(Naming::Prometheus),
            "| `req_seconds` | histogram | `method`, `route` (≤ 7) |"
        );
        assert_eq!(
            FamilyDecl::counter("a_total", "").key(),
            "a",
            "counters are keyed without _total"
        );
    }
}
