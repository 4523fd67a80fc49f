//! Registering families: by name, by declaration, at scrape time; label
//! guards; and the checks every name goes through.

use super::*;

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

pub(super) fn valid_buckets(buckets: &[f64]) -> bool {
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

/// Whether a new family `name` could write a sample name that another
/// registered family (or plimsoll's own overflow counter and build info)
/// may write too: `jobs_total` beside the counter `jobs`, `lat_count` beside
/// the histogram `lat`. The same name is handled by the caller.
fn sample_names_clash(families: &[Registered], name: &str) -> bool {
    let new = names::sample_names(name);
    let overflow = names::CARDINALITY_OVERFLOW
        .strip_suffix("_total")
        .unwrap_or(names::CARDINALITY_OVERFLOW);
    families
        .iter()
        .map(|f| f.name.as_str())
        .chain([overflow, names::BUILD_INFO])
        .filter(|other| *other != name)
        .any(|other| names::sample_names(other).iter().any(|n| new.contains(n)))
}

impl Telemetry {
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
        if !family.is_count_view() || labels != histogram.family.label_names {
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
