//! Registering families by name: counters, gauges, histograms, count views.

use super::checks::{histogram_shape, valid_metric_name};
use crate::labels::DynLabels;

/// Label names given at run time, as the `'static` names families keep:
/// each distinct name is allocated once for the life of the process.
fn intern_names(names: &[&str]) -> Box<[&'static str]> {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut interned = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names
        .iter()
        .map(|name| match interned.iter().find(|n| **n == *name) {
            Some(found) => *found,
            None => {
                let leaked: &'static str = Box::leak(Box::from(*name));
                interned.push(leaked);
                leaked
            }
        })
        .collect()
}
use super::*;

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
    pub(super) max_series: Option<usize>,
    pub(super) buckets: Option<Vec<f64>>,
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

impl Telemetry {
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

    pub(super) fn counter_named<L: LabelSet>(
        &self,
        opts: MetricOpts,
        labels: Box<[&'static str]>,
    ) -> Result<Counter<L>, RegisterError> {
        let base = crate::family::base_name(&opts.name, MetricKind::Counter).to_string();
        let exposed = format!("{base}_total");
        let family =
            self.register::<L, CounterCell>(base, exposed, opts, labels, Shape::default())?;
        Ok(Counter { family })
    }

    /// Registers a counter whose label names are given now (a bridge from
    /// another metrics API): its series are keyed by [`DynLabels`] (or a
    /// borrowed `&[&str]`) holding one value per name. Names are checked as
    /// any family's; each distinct name is kept for the life of the process.
    pub fn counter_dyn(
        &self,
        opts: MetricOpts,
        names: &[&str],
    ) -> Result<Counter<DynLabels>, RegisterError> {
        self.counter_named(opts, intern_names(names))
    }

    /// A gauge with label names given now; see [`counter_dyn`](Self::counter_dyn).
    pub fn gauge_dyn(
        &self,
        opts: MetricOpts,
        names: &[&str],
    ) -> Result<Gauge<DynLabels>, RegisterError> {
        self.gauge_named(opts, intern_names(names))
    }

    /// A histogram with label names given now; see [`counter_dyn`](Self::counter_dyn).
    pub fn histogram_dyn(
        &self,
        opts: MetricOpts,
        names: &[&str],
    ) -> Result<Histogram<DynLabels>, RegisterError> {
        self.histogram_named(opts, intern_names(names))
    }

    /// Registers (or returns the already registered) gauge `name`.
    pub fn gauge<L: LabelSet>(&self, name: &str, help: &str) -> Result<Gauge<L>, RegisterError> {
        self.gauge_with(MetricOpts::new(name, help))
    }

    /// Registers a gauge with options.
    pub fn gauge_with<L: LabelSet>(&self, opts: MetricOpts) -> Result<Gauge<L>, RegisterError> {
        self.gauge_named(opts, L::NAMES.into())
    }

    pub(super) fn gauge_named<L: LabelSet>(
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

    pub(super) fn histogram_named<L: LabelSet>(
        &self,
        opts: MetricOpts,
        labels: Box<[&'static str]>,
    ) -> Result<Histogram<L>, RegisterError> {
        let bounds = match &opts.buckets {
            Some(b) => b.clone(),
            None => self.buckets_for(&opts.name).to_vec(),
        };
        let shape = histogram_shape(&opts.name, &labels, bounds)?;
        let name = opts.name.clone();
        let family = self.register::<L, HistogramCell>(name.clone(), name, opts, labels, shape)?;
        Ok(Histogram { family })
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
        self.check_free(&families, &name, metric)?;
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
        let base = crate::family::base_name(name, MetricKind::Counter).to_string();
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
        self.check_free(&families, &base, name)?;
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
}
