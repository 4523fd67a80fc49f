//! The core of plimsoll: tenant-scoped metrics whose cardinality is bounded
//! whatever the traffic, and their exposition for Prometheus.
//!
//! ```
//! use plimsoll_core::{Format, Telemetry, impl_label_set};
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct Checkout { payment: &'static str }
//! impl_label_set!(Checkout { payment });
//!
//! let telemetry = Telemetry::builder()
//!     .with_const_label("service", "shop")
//!     .with_max_tenants(1000)
//!     .with_process_metrics(false)
//!     .build()?;
//! let checkouts = telemetry.counter::<Checkout>("checkouts", "Completed checkouts.")?;
//! let latency = telemetry.histogram::<Checkout>("checkout_duration_seconds", "Checkout latency.")?;
//!
//! // Per request: resolve the tenant once (validated and bounded), then record.
//! let tenant = telemetry.tenant("acme");
//! let labels = Checkout { payment: "card" };
//! checkouts.inc(&tenant, &labels);
//! latency.observe(&tenant, &labels, 0.042);
//!
//! let body = telemetry.encode(Format::Prometheus);
//! assert!(body.contains(
//!     "checkouts_total{tenant_id=\"acme\",payment=\"card\",service=\"shop\"} 1\n"
//! ));
//! assert!(body.contains(
//!     "checkout_duration_seconds_bucket{tenant_id=\"acme\",payment=\"card\",service=\"shop\",le=\"0.05\"} 1\n"
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`Telemetry`] holds the registry, prefix, constant labels, buckets and
//!   bounds. There are no globals: two values never see each other's series.
//! - [`Tenant`]: every recording call takes one. See [`tenant`] for the policy.
//! - [`Counter`], [`Gauge`], [`Histogram`]: families over a user [`LabelSet`];
//!   past the family's series bound, observations go to the tenant's
//!   `__other__` series and `plimsoll_cardinality_overflow_total` counts them.
//! - [`Telemetry::render`] negotiates OpenMetrics (with exemplars) or
//!   Prometheus text 0.0.4 from the `Accept` header.
//!
//! # The integration kit
//!
//! Every plimsoll integration is built from these parts, and so can yours
//! (the repository's `docs/extending.md` walks through one):
//!
//! - [`family`]: one [`FamilyDecl`](family::FamilyDecl) per metric — names
//!   under both [`Naming`] schemes, labels and their bounds —
//!   registered with [`Telemetry::declare`]; open labels bounded with
//!   [`Telemetry::label_guard`].
//! - [`label_key!`] (and `plimsoll-macros`' derives): borrowed keys that
//!   record without allocating; [`ClosedLabel`] for closed sets.
//! - [`scope`]: the tenant (and span) of the request being served, seen by
//!   everything recorded while it runs.
//! - [`operation`]: a drop guard that times an operation, classifies it
//!   ([`classify`]), records it with its exemplar, also when dropped.
//! - [`trace`]: the hook exemplars come from.
//! - [`scrape`]: values computed when `/metrics` is read, declared and
//!   bounded like every family.
//! - The read API: [`Counter::total`], [`Histogram::snapshot`],
//!   [`Histogram::total`].
//!
//! The guides (catalogue, tenancy, cardinality, extending, benchmarks) are
//! in the repository's `docs/`.

mod bounded;
pub mod classify;
pub mod clock;
pub mod encoding;
pub mod families;
pub mod family;
#[cfg(feature = "prometheus-client")]
mod foreign;
pub mod labels;
pub mod metrics;
pub mod names;
pub mod operation;
mod process;
pub mod scope;
pub mod scrape;
mod store;
mod telemetry;
pub mod tenant;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod trace;

pub use encoding::{Format, MetricKind, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
pub use labels::{
    ClosedLabel, DynLabels, LabelField, LabelGuard, LabelKey, LabelSet, LabelValue, LabelValues,
};
pub use metrics::{
    BOUND_WARNING_INTERVAL, Counter, CounterSeries, Gauge, GaugeSeries, Histogram, HistogramSeries,
    HistogramSnapshot, HistogramTimer, SeriesKey, SeriesRef,
};
pub use scrape::{ScrapeError, ScrapeWriter};
pub use telemetry::{
    BuildError, BuildInfo, DEFAULT_DURATION_BUCKETS, DEFAULT_MAX_SERIES, Declared, Exposition,
    MetricOpts, Naming, RegisterError, Telemetry, TelemetryBuilder,
};
pub use tenant::{InvalidTenant, Tenant, TenantError};
pub use trace::TraceRef;
