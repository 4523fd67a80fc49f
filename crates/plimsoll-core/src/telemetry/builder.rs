//! [`TelemetryBuilder`]: every setting of a [`Telemetry`], validated in `build`.

use super::checks::valid_buckets;
use super::*;

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
    /// The trace-context hook could not declare its families.
    #[error("trace_context: {0}")]
    TraceContext(crate::RegisterError),
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
    /// A setting for a count view, whose series are its histogram's.
    #[error("{field}: {family:?} shows a histogram's counts; bound the histogram instead")]
    CountView {
        /// `family_max_series[<name>]`.
        field: String,
        /// The family.
        family: String,
    },
    /// Buckets given to a family that is not a histogram.
    #[error("{field}: {family:?} is not a histogram, it has no buckets")]
    NotAHistogram {
        /// `family_buckets[<name>]`.
        field: String,
        /// The family.
        family: String,
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
    /// Families given buckets that are not histograms (refused in `build`).
    not_histograms: Vec<&'static str>,
    /// Count views given a series bound (refused in `build`).
    count_views: Vec<&'static str>,
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
            not_histograms: Vec::new(),
            count_views: Vec::new(),
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
        if family.kind() != MetricKind::Histogram {
            self.not_histograms.push(family.name());
        }
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
        if family.is_count_view() {
            self.count_views.push(family.name());
        }
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
    ///
    /// A hook that is not [`enabled`](TraceContext::enabled) is ignored.
    pub fn with_trace_context(mut self, context: impl TraceContext) -> Self {
        self.trace = context
            .enabled()
            .then(|| Arc::new(context) as Arc<dyn TraceContext>);
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
        if let Some(family) = self.not_histograms.first() {
            return Err(BuildError::NotAHistogram {
                field: format!(
                    "family_buckets[{}]",
                    crate::family::base_name(family, MetricKind::Counter)
                ),
                family: family.to_string(),
            });
        }
        if let Some(family) = self.count_views.first() {
            return Err(BuildError::CountView {
                field: format!(
                    "family_max_series[{}]",
                    crate::family::base_name(family, MetricKind::Counter)
                ),
                family: family.to_string(),
            });
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
                name: crate::families::CARDINALITY_OVERFLOW.key().to_string(),
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
                spans: self.trace.as_ref().is_some_and(|t| t.opens_spans()),
                trace: self.trace,
                families: Mutex::new(Vec::new()),
                guards: Mutex::new(HashMap::new()),
                last_size: AtomicUsize::new(4096),
                request_observers: boxcar::Vec::new(),
                #[cfg(feature = "prometheus-client")]
                foreign: Default::default(),
            }),
        };
        if self.process_metrics {
            crate::process::register(&telemetry).expect("process metric names are valid and free");
        }
        if let Some(hook) = &telemetry.inner.trace {
            hook.register(&telemetry)
                .map_err(BuildError::TraceContext)?;
        }
        Ok(telemetry)
    }
}
