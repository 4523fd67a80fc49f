//! [`Telemetry`]: the registry, the naming scheme and the bounds, built once.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::encoding::MetricKind;
use crate::encoding::{Encoder, Format, bucket_label, write_escaped};
use crate::family::{Bound, FamilyDecl};
use crate::labels::{LabelGuard, LabelSet};
use crate::metrics::{
    Cell, Counter, CounterCell, EncodeFamily, Family, Gauge, GaugeCell, Histogram, HistogramCell,
    Meta, OverflowFamily, Shape,
};
use crate::names;
use crate::tenant::{DEFAULT_MAX_TENANTS, InvalidTenant, Tenant, TenantError, TenantRegistry};
use crate::trace::{ScopeTraceContext, SpanContext, TraceContext, TraceRef};

/// Default bucket bounds of duration histograms, in seconds.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Default bound on series per family (overflow series not counted).
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// Which metric names the integrations use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Naming {
    /// The catalogue names (`http_requests_total`, `http_request_duration_seconds`, …).
    #[default]
    Prometheus,
    /// OpenTelemetry semantic conventions (`http_server_request_duration_seconds`
    /// with `http_request_method`, `http_route`, `http_response_status_code`, …).
    OpenTelemetry,
}

/// The service name and version exposed as `build_info{service, version} 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The `service` label.
    pub service: String,
    /// The `version` label.
    pub version: String,
}

impl BuildInfo {
    /// A build info for `service` at `version`.
    pub fn new(service: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            version: version.into(),
        }
    }
}

/// The calling crate's name and version as a [`BuildInfo`].
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::BuildInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
    };
}

/// An invalid [`TelemetryBuilder`] setting. The message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The prefix is not a valid start of a metric name.
    #[error("prefix: {0:?} is not a valid metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)")]
    InvalidPrefix(String),
    /// A constant label has a bad name or repeats one.
    #[error("const_labels: {name:?} {reason}")]
    InvalidConstLabel {
        /// The label name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bucket bounds are empty, not finite or not strictly increasing.
    #[error("{field}: buckets must be non-empty, finite and strictly increasing, got {buckets:?}")]
    InvalidBuckets {
        /// `buckets` or `family_buckets[<name>]`.
        field: String,
        /// The bounds given.
        buckets: Vec<f64>,
    },
    /// A limit is zero.
    #[error("{field}: must be at least 1")]
    ZeroLimit {
        /// The limit's name.
        field: String,
    },
    /// An allow-listed tenant id is invalid.
    #[error("allowed_tenants: {value:?}: {source}")]
    InvalidAllowedTenant {
        /// The id.
        value: String,
        /// Why it is invalid.
        source: InvalidTenant,
    },
    /// A label bound names a label that is not an open label of the family.
    #[error(
        "label_bounds[{family}.{label}]: {family:?} has no open label {label:?} (open labels: {open:?})"
    )]
    UnknownLabelBound {
        /// The family (catalogue name).
        family: &'static str,
        /// The label given.
        label: String,
        /// The family's open labels.
        open: Vec<&'static str>,
    },
    /// `build_info` and a constant label give one label two values.
    #[error("build_info: label {label:?} is {build:?} but the const label says {constant:?}")]
    BuildInfoConflict {
        /// The label name.
        label: String,
        /// The build info's value.
        build: String,
        /// The constant label's value.
        constant: String,
    },
}

/// A family that cannot be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("metric name {0:?} is invalid ([a-zA-Z_:][a-zA-Z0-9_:]*)")]
    InvalidName(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("metric {metric:?}: label name {label:?} is invalid ([a-zA-Z_][a-zA-Z0-9_]*)")]
    InvalidLabelName {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
    /// A label name is reserved: `tenant_id` (plimsoll adds it), `le` on
    /// histograms, names starting with `__`, or a constant label's name.
    #[error("metric {metric:?}: label {label:?} is reserved ({reason})")]
    ReservedLabel {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
        /// Why.
        reason: &'static str,
    },
    /// A label name appears twice.
    #[error("metric {metric:?}: label {label:?} appears twice")]
    DuplicateLabel {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
    /// The name is registered already with another type, label set or buckets.
    #[error("metric {0:?} is registered already with another type, label set or buckets")]
    Conflict(String),
    /// Bucket bounds are empty, not finite or not strictly increasing.
    #[error(
        "metric {metric:?}: buckets must be non-empty, finite and strictly increasing, got {buckets:?}"
    )]
    InvalidBuckets {
        /// The metric.
        metric: String,
        /// The bounds given.
        buckets: Vec<f64>,
    },
    /// `max_series` is zero.
    #[error("metric {0:?}: max_series must be at least 1")]
    ZeroMaxSeries(String),
    /// A declaration of one type registered as another.
    #[error("metric {metric:?} is declared as a {declared:?} but registered as a {registered:?}")]
    KindMismatch {
        /// The metric.
        metric: String,
        /// The declared type.
        declared: MetricKind,
        /// The type asked for.
        registered: MetricKind,
    },
    /// The label set's names differ from the declaration's labels.
    #[error(
        "metric {metric:?}: the label set has labels {label_set:?} but the declaration says {declared:?}"
    )]
    LabelMismatch {
        /// The metric.
        metric: String,
        /// The declared labels (catalogue names).
        declared: Vec<&'static str>,
        /// The label set's names.
        label_set: Vec<&'static str>,
    },
    /// A label guard was asked for a label that is not an open label of the family.
    #[error("metric {metric:?}: {label:?} is not an open label of it (open labels: {open:?})")]
    NotAnOpenLabel {
        /// The metric.
        metric: String,
        /// The label asked for.
        label: String,
        /// The family's open labels.
        open: Vec<&'static str>,
    },
    /// A label asked for with a bound other than the one it has already.
    #[error(
        "metric {metric:?}: label {label:?} is bounded to {bound} already; asked for {requested}"
    )]
    BoundConflict {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
        /// Its bound.
        bound: usize,
        /// The bound asked for.
        requested: usize,
    },
    /// A label bound of zero.
    #[error("metric {metric:?}: the bound of label {label:?} must be at least 1")]
    ZeroBound {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
}

pub(crate) fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_buckets(buckets: &[f64]) -> bool {
    !buckets.is_empty()
        && buckets.iter().all(|b| b.is_finite())
        && buckets.windows(2).all(|w| w[0] < w[1])
}

/// Options of one family: required name and help, optional bounds.
///
/// ```
/// use plimsoll_core::{MetricOpts, Telemetry};
/// let telemetry = Telemetry::builder().build().unwrap();
/// let sizes = telemetry
///     .histogram_with::<()>(MetricOpts::new("upload_size_bytes", "Upload sizes.")
///         .with_buckets(vec![1e3, 1e6, 1e9])
///         .with_max_series(500))
///     .unwrap();
/// sizes.observe(&telemetry.tenant("acme"), &(), 2e6);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MetricOpts {
    name: String,
    help: String,
    max_series: Option<usize>,
    buckets: Option<Vec<f64>>,
}

impl MetricOpts {
    /// Options for the family `name` (without prefix) with HELP text `help`.
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            help: help.into(),
            max_series: None,
            buckets: None,
        }
    }

    /// Bounds the number of series (default: the builder's `max_series`).
    pub fn with_max_series(mut self, max: usize) -> Self {
        self.max_series = Some(max);
        self
    }

    /// Histogram bucket bounds (default: the builder's buckets for this family).
    pub fn with_buckets(mut self, buckets: Vec<f64>) -> Self {
        self.buckets = Some(buckets);
        self
    }
}

/// Builds a [`Telemetry`]. Every setting is validated in [`build`](TelemetryBuilder::build).
#[derive(Clone, Debug)]
pub struct TelemetryBuilder {
    prefix: Option<String>,
    const_labels: Vec<(String, String)>,
    buckets: Vec<f64>,
    family_buckets: HashMap<&'static str, Vec<f64>>,
    max_series: usize,
    family_max_series: HashMap<&'static str, usize>,
    label_bounds: Vec<(FamilyDecl, String, usize)>,
    max_tenants: Option<usize>,
    allowed_tenants: Option<Vec<String>>,
    process_metrics: bool,
    build_info: Option<BuildInfo>,
    naming: Naming,
    trace: Option<Arc<dyn TraceContext>>,
}

impl Default for TelemetryBuilder {
    fn default() -> Self {
        Self {
            prefix: None,
            const_labels: Vec::new(),
            buckets: DEFAULT_DURATION_BUCKETS.to_vec(),
            family_buckets: HashMap::new(),
            max_series: DEFAULT_MAX_SERIES,
            family_max_series: HashMap::new(),
            label_bounds: Vec::new(),
            max_tenants: None,
            allowed_tenants: None,
            process_metrics: true,
            build_info: None,
            naming: Naming::Prometheus,
            trace: None,
        }
    }
}

impl TelemetryBuilder {
    /// Prefixes every metric name with `prefix` and `_` (`shop` → `shop_http_requests_total`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Adds a label with a fixed value to every series (`service`, `environment`).
    pub fn with_const_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.const_labels.push((name.into(), value.into()));
        self
    }

    /// Default histogram buckets (default: [`DEFAULT_DURATION_BUCKETS`]).
    pub fn with_buckets(mut self, buckets: Vec<f64>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Buckets of one declared family (say `plimsoll_http::families::HTTP_REQUEST_DURATION`).
    /// Families registered by name take theirs from [`MetricOpts::with_buckets`].
    pub fn with_family_buckets(mut self, family: &FamilyDecl, buckets: Vec<f64>) -> Self {
        self.family_buckets.insert(family.key(), buckets);
        self
    }

    /// Default bound on series per family (default: [`DEFAULT_MAX_SERIES`]).
    pub fn with_max_series(mut self, max: usize) -> Self {
        self.max_series = max;
        self
    }

    /// Bound on series of one declared family. Families registered by name
    /// take theirs from [`MetricOpts::with_max_series`].
    pub fn with_family_max_series(mut self, family: &FamilyDecl, max: usize) -> Self {
        self.family_max_series.insert(family.key(), max);
        self
    }

    /// Bound on the distinct values of one open label of a declared family
    /// (default: the bound in its declaration); checked in `build`.
    pub fn with_label_bound(mut self, family: &FamilyDecl, label: &str, max: usize) -> Self {
        self.label_bounds.push((*family, label.to_string(), max));
        self
    }

    /// Bound on distinct tenants (default: [`DEFAULT_MAX_TENANTS`], or the
    /// allow-list's length when one is set).
    pub fn with_max_tenants(mut self, max: usize) -> Self {
        self.max_tenants = Some(max);
        self
    }

    /// Only these tenants get their own label; any other becomes `__other__`.
    pub fn with_allowed_tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_tenants = Some(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// Whether to expose `process_*` metrics (default: true; Linux only).
    pub fn with_process_metrics(mut self, enabled: bool) -> Self {
        self.process_metrics = enabled;
        self
    }

    /// Exposes `build_info{service, version} 1`; see [`build_info!`](crate::build_info).
    pub fn with_build_info(mut self, info: BuildInfo) -> Self {
        self.build_info = Some(info);
        self
    }

    /// The naming scheme the integrations use (default: [`Naming::Prometheus`]).
    pub fn with_naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// Where exemplars' trace and span ids come from (default:
    /// [`ScopeTraceContext`](crate::trace::ScopeTraceContext), the request
    /// scope's `traceparent`).
    pub fn with_trace_context(mut self, context: impl TraceContext) -> Self {
        self.trace = Some(Arc::new(context));
        self
    }

    /// Validates the settings and builds the [`Telemetry`].
    pub fn build(self) -> Result<Telemetry, BuildError> {
        // Measures the clock's rate now (once per process), not on a request.
        crate::clock::Stamp::warm_up();
        let prefix = match &self.prefix {
            None => String::new(),
            Some(p) if valid_metric_name(p) => format!("{p}_"),
            Some(p) => return Err(BuildError::InvalidPrefix(p.clone())),
        };
        let mut rendered = String::new();
        let mut const_names: Vec<String> = Vec::new();
        for (name, value) in &self.const_labels {
            let reason = if !valid_label_name(name) {
                Some("is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)")
            } else if name == names::TENANT_LABEL || name == "le" || name.starts_with("__") {
                Some("is reserved")
            } else if const_names.contains(name) {
                Some("is given twice")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(BuildError::InvalidConstLabel {
                    name: name.clone(),
                    reason,
                });
            }
            const_names.push(name.clone());
            rendered.push(',');
            rendered.push_str(name);
            rendered.push_str("=\"");
            write_escaped(&mut rendered, value);
            rendered.push('"');
        }
        if !valid_buckets(&self.buckets) {
            return Err(BuildError::InvalidBuckets {
                field: "buckets".into(),
                buckets: self.buckets,
            });
        }
        for (family, buckets) in &self.family_buckets {
            if !valid_buckets(buckets) {
                return Err(BuildError::InvalidBuckets {
                    field: format!("family_buckets[{family}]"),
                    buckets: buckets.clone(),
                });
            }
        }
        if self.max_series == 0 {
            return Err(BuildError::ZeroLimit {
                field: "max_series".into(),
            });
        }
        if let Some((family, _)) = self.family_max_series.iter().find(|(_, max)| **max == 0) {
            return Err(BuildError::ZeroLimit {
                field: format!("family_max_series[{family}]"),
            });
        }
        let mut label_bounds = HashMap::new();
        for (family, label, max) in &self.label_bounds {
            let open = || {
                family
                    .labels()
                    .iter()
                    .filter(|l| matches!(l.bound(), Bound::Open(_)))
                    .map(|l| l.name())
                    .collect()
            };
            match family.label(label).map(|l| l.bound()) {
                Some(Bound::Open(_)) => {}
                _ => {
                    return Err(BuildError::UnknownLabelBound {
                        family: family.name(),
                        label: label.clone(),
                        open: open(),
                    });
                }
            }
            if *max == 0 {
                return Err(BuildError::ZeroLimit {
                    field: format!("label_bounds[{}.{label}]", family.name()),
                });
            }
            label_bounds.insert((family.key(), label.clone()), *max);
        }
        if let Some(allowed) = &self.allowed_tenants {
            for value in allowed {
                Tenant::validate(value).map_err(|source| BuildError::InvalidAllowedTenant {
                    value: value.clone(),
                    source,
                })?;
            }
        }
        let max_tenants = self.max_tenants.unwrap_or(match &self.allowed_tenants {
            Some(allowed) => allowed.len().max(1),
            None => DEFAULT_MAX_TENANTS,
        });
        if max_tenants == 0 {
            return Err(BuildError::ZeroLimit {
                field: "max_tenants".into(),
            });
        }
        let build_info = match &self.build_info {
            None => None,
            Some(info) => {
                let mut labels = String::new();
                for (label, value) in [("service", &info.service), ("version", &info.version)] {
                    match self.const_labels.iter().find(|(n, _)| n == label) {
                        Some((_, constant)) if constant != value => {
                            return Err(BuildError::BuildInfoConflict {
                                label: label.into(),
                                build: value.clone(),
                                constant: constant.clone(),
                            });
                        }
                        Some(_) => {}
                        None => {
                            labels.push(',');
                            labels.push_str(label);
                            labels.push_str("=\"");
                            write_escaped(&mut labels, value);
                            labels.push('"');
                        }
                    }
                }
                Some(labels)
            }
        };

        let tenants = Arc::new(TenantRegistry::new(
            max_tenants,
            self.allowed_tenants.as_deref(),
        ));
        let overflow = Arc::new(OverflowFamily::new(
            Meta {
                name: names::CARDINALITY_OVERFLOW
                    .strip_suffix("_total")
                    .unwrap_or(names::CARDINALITY_OVERFLOW)
                    .to_string(),
                exposed: format!("{prefix}{}", names::CARDINALITY_OVERFLOW),
                help: names::CARDINALITY_OVERFLOW_HELP.to_string(),
            },
            [names::METRIC_LABEL, names::LABEL_LABEL].into(),
            Shape::default(),
            usize::MAX,
            tenants.clone(),
            None,
        ));
        let telemetry = Telemetry {
            inner: Arc::new(Inner {
                prefix,
                const_labels: rendered,
                const_names,
                buckets: self.buckets,
                family_buckets: self.family_buckets,
                max_series: self.max_series,
                family_max_series: self.family_max_series,
                label_bounds,
                tenants,
                overflow,
                build_info,
                naming: self.naming,
                trace: self.trace,
                families: Mutex::new(Vec::new()),
                guards: Mutex::new(HashMap::new()),
                last_size: AtomicUsize::new(4096),
                #[cfg(feature = "prometheus-client")]
                foreign: Default::default(),
            }),
        };
        if self.process_metrics {
            crate::process::register(&telemetry).expect("process metric names are valid and free");
        }
        Ok(telemetry)
    }
}

/// The sample names a family named `name` (counters without `_total`) may
/// write, whatever its type: the reference OpenMetrics parser's rule for
/// names that clash.
fn reserved_names(name: &str) -> [String; 6] {
    ["", "_total", "_created", "_bucket", "_count", "_sum"].map(|suffix| format!("{name}{suffix}"))
}

/// Whether a new family `name` could write a sample name that another
/// registered family (or plimsoll's own overflow counter and build info)
/// may write too: `jobs_total` beside the counter `jobs`, `lat_count` beside
/// the histogram `lat`. The same name is handled by the caller.
fn sample_names_clash(families: &[Registered], name: &str) -> bool {
    let new = reserved_names(name);
    let overflow = names::CARDINALITY_OVERFLOW
        .strip_suffix("_total")
        .unwrap_or(names::CARDINALITY_OVERFLOW);
    families
        .iter()
        .map(|f| f.name.as_str())
        .chain([overflow, names::BUILD_INFO])
        .filter(|other| *other != name)
        .any(|other| reserved_names(other).iter().any(|n| new.contains(n)))
}

struct Registered {
    /// Name without prefix (and without `_total` for counters).
    name: String,
    type_id: TypeId,
    any: Arc<dyn Any + Send + Sync>,
    encode: Arc<dyn EncodeFamily>,
}

struct Inner {
    prefix: String,
    const_labels: String,
    const_names: Vec<String>,
    buckets: Vec<f64>,
    family_buckets: HashMap<&'static str, Vec<f64>>,
    max_series: usize,
    family_max_series: HashMap<&'static str, usize>,
    label_bounds: HashMap<(&'static str, String), usize>,
    tenants: Arc<TenantRegistry>,
    overflow: Arc<OverflowFamily>,
    build_info: Option<String>,
    naming: Naming,
    trace: Option<Arc<dyn TraceContext>>,
    families: Mutex<Vec<Registered>>,
    /// Label guards, one per exposed metric and label.
    guards: Mutex<HashMap<(String, String), LabelGuard>>,
    last_size: AtomicUsize,
    /// prometheus-client registries exposed beside the families.
    #[cfg(feature = "prometheus-client")]
    foreign: crate::foreign::Foreign,
}

/// The registry, naming scheme and bounds of one service: cheap to clone,
/// `Send + Sync`, and independent of every other `Telemetry` in the process.
///
/// # Example
///
/// ```
/// use plimsoll_core::{Format, Telemetry};
///
/// let telemetry = Telemetry::builder()
///     .with_const_label("service", "orders")
///     .with_process_metrics(false)
///     .build()
///     .unwrap();
/// let logins = telemetry.counter::<()>("logins", "Successful logins.").unwrap();
/// logins.inc(&telemetry.tenant("acme"), &());
///
/// let body = telemetry.encode(Format::Prometheus);
/// assert!(body.contains("logins_total{tenant_id=\"acme\",service=\"orders\"} 1\n"));
/// ```
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("prefix", &self.inner.prefix)
            .field("tenants", &self.inner.tenants.len())
            .field(
                "families",
                &self.inner.families.lock().map(|f| f.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

/// An encoded scrape: body and the content type to send it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposition {
    /// The format chosen.
    pub format: Format,
    /// The body.
    pub body: String,
}

impl Exposition {
    /// The `Content-Type` header value.
    pub fn content_type(&self) -> &'static str {
        self.format.content_type()
    }
}

impl Telemetry {
    /// A builder with the defaults.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// Resolves a raw tenant id: validated (invalid → `__unknown__`) and
    /// bounded by the tenant policy (refused → `__other__`).
    pub fn tenant(&self, raw: &str) -> Tenant {
        self.inner.tenants.resolve(raw)
    }

    /// Like [`tenant`](Telemetry::tenant) for a raw id in bytes (a header
    /// value): anything that is not a valid id, UTF-8 or not, is `__unknown__`.
    pub fn tenant_from_bytes(&self, raw: &[u8]) -> Tenant {
        // Valid ids are ASCII, so a value that is not UTF-8 fails either way.
        match std::str::from_utf8(raw) {
            Ok(raw) => self.inner.tenants.resolve(raw),
            Err(_) => Tenant::unknown(),
        }
    }

    /// Like [`tenant`](Telemetry::tenant) but says why an id did not get
    /// its own label: invalid, past the tenant bound, or not allowed.
    pub fn try_tenant(&self, raw: &str) -> Result<Tenant, TenantError> {
        self.inner.tenants.try_resolve(raw)
    }

    /// A tenant of another `Telemetry`, admitted here explicitly (bounded
    /// by this telemetry's policy). Recording with a foreign tenant
    /// without adopting it records under `__unknown__`.
    pub fn adopt(&self, tenant: &Tenant) -> Tenant {
        self.inner.tenants.adopt(tenant)
    }

    /// The naming scheme integrations use.
    pub fn naming(&self) -> Naming {
        self.inner.naming
    }

    /// The span running now, from the trace context hook (default: the
    /// request scope's span).
    #[inline]
    pub fn current_span(&self) -> Option<SpanContext> {
        match &self.inner.trace {
            None => ScopeTraceContext.current(),
            Some(context) => context.current(),
        }
    }

    /// The exemplar of the span running now: its ids when it is sampled.
    #[inline]
    pub fn current_trace(&self) -> Option<TraceRef> {
        self.current_span()?.exemplar()
    }

    /// Whether a custom trace context hook is set (else the request
    /// scope's span is the trace context).
    #[inline]
    pub fn has_trace_context_hook(&self) -> bool {
        self.inner.trace.is_some()
    }

    /// The default histogram buckets for the family `name` (without
    /// prefix; counters without `_total`).
    pub fn buckets_for(&self, name: &str) -> &[f64] {
        self.inner
            .family_buckets
            .get(name)
            .unwrap_or(&self.inner.buckets)
    }

    /// A guard bounding one open label of a declared family: its bound is
    /// the one configured with
    /// [`with_label_bound`](TelemetryBuilder::with_label_bound), else the
    /// declaration's. Past it, values become `__other__` and count in
    /// `plimsoll_cardinality_overflow_total{metric, label}`.
    pub fn label_guard(
        &self,
        family: &FamilyDecl,
        label: &str,
    ) -> Result<LabelGuard, RegisterError> {
        let declared = family.name_for(self.inner.naming);
        // As exposed: counters end in `_total`.
        let name = match family.kind() {
            MetricKind::Counter => format!(
                "{}_total",
                crate::family::base_name(declared, MetricKind::Counter)
            ),
            _ => declared.to_string(),
        };
        let not_open = || RegisterError::NotAnOpenLabel {
            metric: name.to_string(),
            label: label.to_string(),
            open: family
                .labels()
                .iter()
                .filter(|l| matches!(l.bound(), Bound::Open(_)))
                .map(|l| l.name())
                .collect(),
        };
        let decl = family.label(label).ok_or_else(not_open)?;
        let Bound::Open(default) = decl.bound() else {
            return Err(not_open());
        };
        let limit = self
            .inner
            .label_bounds
            .get(&(family.key(), label.to_string()))
            .copied()
            .unwrap_or(default);
        self.bounded_label(&name, decl.name_for(self.inner.naming), limit)
    }

    /// A guard bounding the values of `label` of `metric` (the name as
    /// exposed, without prefix) to `limit`, for families registered by
    /// name. Prefer [`label_guard`](Telemetry::label_guard) with a
    /// declaration.
    ///
    /// One label has one bound: every guard for the same metric and label
    /// shares its values (two layers on one telemetry do not double it),
    /// and asking for it again with another limit is an error.
    pub fn bounded_label(
        &self,
        metric: &str,
        label: &str,
        limit: usize,
    ) -> Result<LabelGuard, RegisterError> {
        if limit == 0 {
            return Err(RegisterError::ZeroBound {
                metric: metric.to_string(),
                label: label.to_string(),
            });
        }
        let exposed = format!("{}{metric}", self.inner.prefix);
        let mut guards = self.inner.guards.lock().unwrap_or_else(|e| e.into_inner());
        let key = (exposed, label.to_string());
        if let Some(guard) = guards.get(&key) {
            if guard.limit() != limit {
                return Err(RegisterError::BoundConflict {
                    metric: metric.to_string(),
                    label: label.to_string(),
                    bound: guard.limit(),
                    requested: limit,
                });
            }
            return Ok(guard.clone());
        }
        let guard = LabelGuard::new(
            limit,
            self.inner.overflow.clone(),
            key.0.clone(),
            key.1.clone(),
        );
        guards.insert(key, guard.clone());
        Ok(guard)
    }

    /// Registers (or returns the already registered) family of a
    /// declaration, under this telemetry's naming scheme:
    /// `let duration: Histogram<MyLabels> = telemetry.declare(&MY_DECL)?;`.
    ///
    /// The label set's names must be the declaration's labels (catalogue
    /// names, in order); under [`Naming::OpenTelemetry`] the series carry
    /// the declared OpenTelemetry names.
    pub fn declare<T: Declared>(&self, family: &FamilyDecl) -> Result<T, RegisterError> {
        T::declare(self, family)
    }

    /// Like [`declare`](Telemetry::declare) for a histogram, with buckets
    /// chosen by the caller (a layer builder's `with_buckets`).
    pub fn declare_with_buckets<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        buckets: Vec<f64>,
    ) -> Result<Histogram<L>, RegisterError> {
        let labels = self.check_decl::<L>(family, MetricKind::Histogram)?;
        self.histogram_named(self.decl_opts(family).with_buckets(buckets), labels)
    }

    /// Checks a declaration against a label set and a type; returns the
    /// label names to write under the naming scheme.
    fn check_decl<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        kind: MetricKind,
    ) -> Result<Box<[&'static str]>, RegisterError> {
        let name = family.name_for(self.inner.naming);
        if family.kind() != kind {
            return Err(RegisterError::KindMismatch {
                metric: name.to_string(),
                declared: family.kind(),
                registered: kind,
            });
        }
        let declared: Vec<&'static str> = family.labels().iter().map(|l| l.name()).collect();
        if declared != L::NAMES {
            return Err(RegisterError::LabelMismatch {
                metric: name.to_string(),
                declared,
                label_set: L::NAMES.to_vec(),
            });
        }
        Ok(family
            .labels()
            .iter()
            .map(|l| l.name_for(self.inner.naming))
            .collect())
    }

    /// Registers (or returns the already registered) counter `name`, which
    /// may end in `_total` or not.
    pub fn counter<L: LabelSet>(
        &self,
        name: &str,
        help: &str,
    ) -> Result<Counter<L>, RegisterError> {
        self.counter_with(MetricOpts::new(name, help))
    }

    /// Registers a counter with options.
    pub fn counter_with<L: LabelSet>(&self, opts: MetricOpts) -> Result<Counter<L>, RegisterError> {
        self.counter_named(opts, L::NAMES.into())
    }

    fn counter_named<L: LabelSet>(
        &self,
        opts: MetricOpts,
        labels: Box<[&'static str]>,
    ) -> Result<Counter<L>, RegisterError> {
        let base = opts
            .name
            .strip_suffix("_total")
            .unwrap_or(&opts.name)
            .to_string();
        let exposed = format!("{base}_total");
        let family =
            self.register::<L, CounterCell>(base, exposed, opts, labels, Shape::default())?;
        Ok(Counter { family })
    }

    /// Registers (or returns the already registered) gauge `name`.
    pub fn gauge<L: LabelSet>(&self, name: &str, help: &str) -> Result<Gauge<L>, RegisterError> {
        self.gauge_with(MetricOpts::new(name, help))
    }

    /// Registers a gauge with options.
    pub fn gauge_with<L: LabelSet>(&self, opts: MetricOpts) -> Result<Gauge<L>, RegisterError> {
        self.gauge_named(opts, L::NAMES.into())
    }

    fn gauge_named<L: LabelSet>(
        &self,
        opts: MetricOpts,
        labels: Box<[&'static str]>,
    ) -> Result<Gauge<L>, RegisterError> {
        let name = opts.name.clone();
        let family =
            self.register::<L, GaugeCell>(name.clone(), name, opts, labels, Shape::default())?;
        Ok(Gauge { family })
    }

    /// Registers (or returns the already registered) histogram `name` with
    /// the buckets configured for it.
    pub fn histogram<L: LabelSet>(
        &self,
        name: &str,
        help: &str,
    ) -> Result<Histogram<L>, RegisterError> {
        self.histogram_with(MetricOpts::new(name, help))
    }

    /// Registers a histogram with options.
    pub fn histogram_with<L: LabelSet>(
        &self,
        opts: MetricOpts,
    ) -> Result<Histogram<L>, RegisterError> {
        self.histogram_named(opts, L::NAMES.into())
    }

    fn histogram_named<L: LabelSet>(
        &self,
        opts: MetricOpts,
        labels: Box<[&'static str]>,
    ) -> Result<Histogram<L>, RegisterError> {
        let bounds = match &opts.buckets {
            Some(b) if valid_buckets(b) => b.clone(),
            Some(b) => {
                return Err(RegisterError::InvalidBuckets {
                    metric: opts.name.clone(),
                    buckets: b.clone(),
                });
            }
            None => self.buckets_for(&opts.name).to_vec(),
        };
        if labels.contains(&"le") {
            return Err(RegisterError::ReservedLabel {
                metric: opts.name.clone(),
                label: "le".into(),
                reason: "histograms use it for bucket bounds",
            });
        }
        let le = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(bucket_label)
            .collect();
        let shape = Shape {
            bounds: bounds.into(),
            le,
        };
        let name = opts.name.clone();
        let family = self.register::<L, HistogramCell>(name.clone(), name, opts, labels, shape)?;
        Ok(Histogram { family })
    }

    /// Validates a family's name and label names (not yet registered).
    pub(crate) fn check_names(
        &self,
        metric: &str,
        labels: &[&'static str],
    ) -> Result<(), RegisterError> {
        if !valid_metric_name(metric) {
            return Err(RegisterError::InvalidName(metric.to_string()));
        }
        for (i, label) in labels.iter().enumerate() {
            let err = |reason| RegisterError::ReservedLabel {
                metric: metric.to_string(),
                label: label.to_string(),
                reason,
            };
            if !valid_label_name(label) {
                return Err(RegisterError::InvalidLabelName {
                    metric: metric.to_string(),
                    label: label.to_string(),
                });
            }
            if *label == names::TENANT_LABEL {
                return Err(err("plimsoll adds tenant_id to every series"));
            }
            if label.starts_with("__") {
                return Err(err("names starting with __ are reserved"));
            }
            if self.inner.const_names.iter().any(|c| c == label) {
                return Err(err("it is a constant label"));
            }
            if labels[..i].contains(label) {
                return Err(RegisterError::DuplicateLabel {
                    metric: metric.to_string(),
                    label: label.to_string(),
                });
            }
        }
        Ok(())
    }

    fn register<L: LabelSet, C: Cell>(
        &self,
        name: String,
        exposed: String,
        opts: MetricOpts,
        labels: Box<[&'static str]>,
        shape: Shape,
    ) -> Result<Arc<Family<L, C>>, RegisterError> {
        let metric = &opts.name;
        if !valid_metric_name(&name) {
            return Err(RegisterError::InvalidName(metric.clone()));
        }
        self.check_names(metric, &labels)?;
        let max_series = opts
            .max_series
            .or_else(|| self.inner.family_max_series.get(name.as_str()).copied())
            .unwrap_or(self.inner.max_series);
        if max_series == 0 {
            return Err(RegisterError::ZeroMaxSeries(metric.clone()));
        }

        let mut families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let type_id = TypeId::of::<Family<L, C>>();
        if let Some(existing) = families.iter().find(|f| f.name == name) {
            if existing.type_id == type_id
                && let Ok(family) = existing.any.clone().downcast::<Family<L, C>>()
                && family.shape.bounds == shape.bounds
                && family.label_names == labels
            {
                return Ok(family);
            }
            return Err(RegisterError::Conflict(metric.clone()));
        }
        if sample_names_clash(&families, &name) {
            return Err(RegisterError::Conflict(metric.clone()));
        }
        #[cfg(feature = "prometheus-client")]
        if self.inner.foreign.clashes(&self.inner.prefix, &name) {
            return Err(RegisterError::Conflict(metric.clone()));
        }
        let family = Arc::new(Family::<L, C>::new(
            Meta {
                name: name.clone(),
                exposed: format!("{}{exposed}", self.inner.prefix),
                help: opts.help,
            },
            labels,
            shape,
            max_series,
            self.inner.tenants.clone(),
            Some(self.inner.overflow.clone()),
        ));
        families.push(Registered {
            name,
            type_id,
            any: family.clone(),
            encode: family.clone(),
        });
        Ok(family)
    }

    /// Registers the counter of a declaration whose series are those of
    /// `histogram` and whose values are their observation counts: a request
    /// counter beside a latency histogram with the same labels costs nothing
    /// more per request this way.
    pub fn declare_count_view<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        histogram: &Histogram<L>,
    ) -> Result<(), RegisterError> {
        let labels = self.check_decl::<L>(family, MetricKind::Counter)?;
        if labels != histogram.family.label_names {
            return Err(RegisterError::Conflict(
                family.name_for(self.inner.naming).to_string(),
            ));
        }
        self.register_count_view(family.name_for(self.inner.naming), family.help(), histogram)
    }

    /// Registers a counter `name` (with or without `_total`) whose series are
    /// those of `histogram` and whose values are their observation counts.
    /// A request counter beside a latency histogram with the same labels
    /// costs nothing more per request this way.
    pub fn register_count_view<L: LabelSet>(
        &self,
        name: &str,
        help: &str,
        histogram: &Histogram<L>,
    ) -> Result<(), RegisterError> {
        let base = name.strip_suffix("_total").unwrap_or(name).to_string();
        if !valid_metric_name(&base) {
            return Err(RegisterError::InvalidName(name.to_string()));
        }
        let mut families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let type_id = TypeId::of::<crate::metrics::CountView<L>>();
        if let Some(existing) = families.iter().find(|f| f.name == base) {
            return match existing
                .any
                .clone()
                .downcast::<crate::metrics::CountView<L>>()
            {
                Ok(view) if Arc::ptr_eq(&view.histogram, &histogram.family) => Ok(()),
                _ => Err(RegisterError::Conflict(name.to_string())),
            };
        }
        if sample_names_clash(&families, &base) {
            return Err(RegisterError::Conflict(name.to_string()));
        }
        #[cfg(feature = "prometheus-client")]
        if self.inner.foreign.clashes(&self.inner.prefix, &base) {
            return Err(RegisterError::Conflict(name.to_string()));
        }
        let view = Arc::new(crate::metrics::CountView {
            histogram: histogram.family.clone(),
            meta: Meta {
                name: base.clone(),
                exposed: format!("{}{base}_total", self.inner.prefix),
                help: help.to_string(),
            },
        });
        families.push(Registered {
            name: base,
            type_id,
            any: view.clone(),
            encode: view,
        });
        Ok(())
    }

    /// Registers a family whose values are computed at each scrape by
    /// `collect`; see [`ScrapeWriter`](crate::ScrapeWriter). Its name is
    /// checked against every registered family, under the naming scheme.
    pub fn declare_scraped<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        collect: impl Fn(&mut crate::ScrapeWriter<'_, L>) + Send + Sync + 'static,
    ) -> Result<(), RegisterError> {
        let labels = self.check_decl::<L>(family, family.kind())?;
        let opts = self.decl_opts(family);
        let exposed = family.name_for(self.inner.naming);
        let name = crate::family::base_name(exposed, family.kind()).to_string();
        self.check_names(&name, &labels)?;
        let shape = match family.kind() {
            MetricKind::Histogram => {
                let bounds = opts.buckets.clone().unwrap_or_default();
                if !valid_buckets(&bounds) {
                    return Err(RegisterError::InvalidBuckets {
                        metric: exposed.to_string(),
                        buckets: bounds,
                    });
                }
                if labels.contains(&"le") {
                    return Err(RegisterError::ReservedLabel {
                        metric: exposed.to_string(),
                        label: "le".into(),
                        reason: "histograms use it for bucket bounds",
                    });
                }
                let le = bounds
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .map(bucket_label)
                    .collect();
                Shape {
                    bounds: bounds.into(),
                    le,
                }
            }
            _ => Shape::default(),
        };
        let scraped = Arc::new(crate::scrape::ScrapedFamily::<L> {
            meta: Meta {
                name: name.clone(),
                exposed: format!("{}{exposed}", self.inner.prefix),
                help: family.help().to_string(),
            },
            kind: family.kind(),
            label_names: labels,
            shape,
            max_series: opts.max_series.unwrap_or(self.inner.max_series),
            tenants: self.inner.tenants.clone(),
            overflow_family: self.inner.overflow.clone(),
            series_overflow: Default::default(),
            tenant_overflow: Default::default(),
            collect: Box::new(collect),
        });
        let mut families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if families.iter().any(|f| f.name == name) || sample_names_clash(&families, &name) {
            return Err(RegisterError::Conflict(exposed.to_string()));
        }
        #[cfg(feature = "prometheus-client")]
        if self.inner.foreign.clashes(&self.inner.prefix, &name) {
            return Err(RegisterError::Conflict(exposed.to_string()));
        }
        families.push(Registered {
            name,
            type_id: TypeId::of::<crate::scrape::ScrapedFamily<L>>(),
            any: scraped.clone(),
            encode: scraped,
        });
        Ok(())
    }

    /// Exposes a [prometheus-client] registry through this telemetry's
    /// `/metrics`, in both formats, from the next scrape on. Metric handles
    /// cloned before keep recording into it; register everything before
    /// handing it over.
    ///
    /// Every foreign sample gets `tenant_id="__system__"` first (foreign
    /// metrics belong to no tenant) and the constant labels last, as
    /// plimsoll's own series. A foreign label named `tenant_id` or like a
    /// constant label is renamed `exported_<name>`, as Prometheus does on
    /// such clashes. The prefix is not applied: these are the other library's
    /// names, which its dashboards and alerts query as it spells them. In
    /// Prometheus text 0.0.4, `# UNIT`, `_created` samples and exemplars are
    /// dropped, `info` becomes a gauge named `<name>_info`, `stateset` a
    /// gauge, `unknown` `untyped`, and `gaugehistogram` an untyped
    /// `<name>_bucket` with `<name>_gcount` and `<name>_gsum` gauges (what
    /// `promtool check metrics` accepts). The deployment guide has the details.
    ///
    /// A family of the registry whose name or sample names clash with a
    /// plimsoll family's (its name with the prefix, and that name with
    /// `_total`, `_created`, `_bucket`, `_count` or `_sum`, whatever its
    /// type), with an earlier registry's or with another of its own is
    /// refused; so is, later, a plimsoll family that clashes with a family
    /// the registry writes or has written. prometheus-client writes nothing
    /// of a `Family` until its first series (and a collector writes what it
    /// likes): a foreign family that first shows at a scrape and clashes is
    /// left out of it, with a `tracing` warning the first time.
    ///
    /// # Errors
    ///
    /// Nothing is registered when one of the families the registry writes
    /// now
    /// - clashes as above, or has a sample its type does not allow:
    ///   [`RegisterError::Conflict`] naming the family (or sample);
    /// - has an invalid name, or a sample an invalid or repeated label name:
    ///   [`RegisterError::InvalidName`], [`RegisterError::InvalidLabelName`],
    ///   [`RegisterError::DuplicateLabel`].
    ///
    /// # Example
    ///
    /// ```
    /// use plimsoll_core::{Format, RegisterError, Telemetry};
    /// use prometheus_client::metrics::counter::Counter;
    /// use prometheus_client::registry::Registry;
    ///
    /// let telemetry = Telemetry::builder()
    ///     .with_prefix("shop")
    ///     .with_const_label("service", "orders")
    ///     .with_process_metrics(false)
    ///     .build()?;
    ///
    /// // A client library's own metrics, on prometheus-client.
    /// let mut registry = Registry::default();
    /// let retries: Counter = Counter::default();
    /// registry.register("payment_retries", "Retries of payment calls", retries.clone());
    /// telemetry.register_prometheus_client(registry)?;
    /// retries.inc();
    ///
    /// let body = telemetry.encode(Format::Prometheus);
    /// assert!(body.contains("# TYPE payment_retries_total counter\n"));
    /// assert!(body.contains(
    ///     "payment_retries_total{tenant_id=\"__system__\",service=\"orders\"} 1\n"
    /// ));
    ///
    /// // A family named like one of plimsoll's is refused, and nothing of its registry is added.
    /// telemetry.counter::<()>("orders_placed", "Orders placed.")?;
    /// let mut clashing = Registry::default();
    /// clashing.register("shop_orders_placed", "Orders", Counter::<u64>::default());
    /// assert_eq!(
    ///     telemetry.register_prometheus_client(clashing),
    ///     Err(RegisterError::Conflict("shop_orders_placed".into()))
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [prometheus-client]: https://docs.rs/prometheus-client
    #[cfg(feature = "prometheus-client")]
    pub fn register_prometheus_client(
        &self,
        registry: prometheus_client::registry::Registry,
    ) -> Result<(), RegisterError> {
        let candidate = crate::foreign::Candidate::new(registry)?;
        let inner = &*self.inner;
        let families = inner.families.lock().unwrap_or_else(|e| e.into_inner());
        let build_info = inner.build_info.as_ref().map(|_| names::BUILD_INFO);
        let plimsoll = families.iter().map(|f| f.name.as_str()).chain(build_info);
        inner.foreign.add(candidate, &inner.prefix, plimsoll)
    }

    /// The number of series across all registered families (scrape-time
    /// families not counted).
    pub fn series_count(&self) -> usize {
        let families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        families
            .iter()
            .map(|f| f.encode.series_count())
            .sum::<usize>()
            + self.inner.overflow.store.len()
    }

    /// Encodes every family in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut body = String::with_capacity(self.inner.last_size.load(Ordering::Relaxed));
        self.encode_into(&mut body, format);
        self.inner
            .last_size
            .store(body.len() + body.len() / 8, Ordering::Relaxed);
        body
    }

    /// Encodes in the format the `Accept` header asks for.
    pub fn render(&self, accept: Option<&str>) -> Exposition {
        let format = Format::negotiate(accept);
        Exposition {
            format,
            body: self.encode(format),
        }
    }

    /// Appends the encoding of every family to `out`.
    pub fn encode_into(&self, out: &mut String, format: Format) {
        let families: Vec<Arc<dyn EncodeFamily>> = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|f| f.encode.clone())
            .collect();
        let mut enc = Encoder {
            out,
            format,
            prefix: &self.inner.prefix,
            const_labels: &self.inner.const_labels,
        };
        if let Some(labels) = &self.inner.build_info {
            enc.header(
                names::BUILD_INFO,
                names::BUILD_INFO_HELP,
                crate::MetricKind::Gauge,
            );
            let mut rendered = String::new();
            enc.render_labels(&mut rendered, names::SYSTEM, |buf| buf.push_str(labels));
            enc.sample_start(names::BUILD_INFO, "", &rendered, None);
            enc.out.push_str("1\n");
        }
        for family in &families {
            family.encode(&mut enc);
        }
        #[cfg(feature = "prometheus-client")]
        self.inner.foreign.encode(&mut enc);
        self.inner.overflow.encode(&mut enc);
        if format == Format::OpenMetrics {
            enc.out.push_str("# EOF\n");
        }
    }

    /// Encodes and parses the scrape, for assertions in tests.
    ///
    /// # Panics
    ///
    /// If the exposition does not parse, which would be a plimsoll bug.
    #[cfg(feature = "test-util")]
    pub fn scrape(&self) -> crate::testing::Scrape {
        let body = self.encode(Format::OpenMetrics);
        crate::testing::Scrape::parse(&body).unwrap_or_else(|e| {
            panic!("plimsoll produced an exposition it cannot parse: {e}\n{body}")
        })
    }
}

/// A family type that can be registered from a [`FamilyDecl`] with
/// [`Telemetry::declare`]: [`Counter`], [`Gauge`] and [`Histogram`].
pub trait Declared: Sized {
    /// Registers the family of `decl` on `telemetry`.
    fn declare(telemetry: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError>;
}

impl<L: LabelSet> Declared for Counter<L> {
    fn declare(t: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError> {
        let labels = t.check_decl::<L>(decl, MetricKind::Counter)?;
        let opts = t.decl_opts(decl);
        t.counter_named(opts, labels)
    }
}

impl<L: LabelSet> Declared for Gauge<L> {
    fn declare(t: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError> {
        let labels = t.check_decl::<L>(decl, MetricKind::Gauge)?;
        let opts = t.decl_opts(decl);
        t.gauge_named(opts, labels)
    }
}

impl<L: LabelSet> Declared for Histogram<L> {
    fn declare(t: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError> {
        let labels = t.check_decl::<L>(decl, MetricKind::Histogram)?;
        t.histogram_named(t.decl_opts(decl), labels)
    }
}

impl Telemetry {
    /// The options of a declared family under the naming scheme: its
    /// buckets (configured for it, else declared, else the default) and
    /// its series bound.
    fn decl_opts(&self, decl: &FamilyDecl) -> MetricOpts {
        let mut opts = MetricOpts::new(decl.name_for(self.inner.naming), decl.help());
        opts.buckets = self
            .inner
            .family_buckets
            .get(decl.key())
            .cloned()
            .or_else(|| decl.buckets().map(<[f64]>::to_vec))
            .or_else(|| Some(self.inner.buckets.clone()));
        opts.max_series = self.inner.family_max_series.get(decl.key()).copied();
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_metric_name("a:b_c9"));
        assert!(!valid_metric_name("9a"));
        assert!(!valid_metric_name(""));
        assert!(!valid_metric_name("a-b"));
        assert!(valid_label_name("_x1"));
        assert!(!valid_label_name("a:b"));
    }
}
