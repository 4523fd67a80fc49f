//! A recorder for the [`metrics`] facade on plimsoll: every `counter!`,
//! `gauge!` and `histogram!` of any library lands in plimsoll's registry
//! with plimsoll's guarantees.
//!
//! ```
//! use plimsoll_core::{Telemetry, Tenant, scope::Scope};
//! use plimsoll_recorder::Recorder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let telemetry = Telemetry::builder().build()?;
//! let recorder = Recorder::builder(&telemetry).max_series(500).build()?;
//! // `recorder.install()?` makes it the process's recorder; here, for one call:
//! metrics::with_local_recorder(&recorder, || {
//!     // A library emits, inside a request of tenant acme…
//!     Scope::new(telemetry.tenant("acme")).enter(|| {
//!         metrics::counter!("jobs_done", "queue" => "email").increment(1);
//!     });
//!     // …and outside any request.
//!     metrics::gauge!("pool.idle").set(3.0);
//! });
//! let text = telemetry.encode(plimsoll_core::Format::Prometheus);
//! assert!(text.contains("jobs_done_total{tenant_id=\"acme\",queue=\"email\"} 1\n"));
//! assert!(text.contains("pool_idle{tenant_id=\"__system__\"} 3\n"));
//! # Ok(())
//! # }
//! ```
//!
//! # What it guarantees
//!
//! - **Tenants.** Each value is recorded under the tenant of the request
//!   scope it is made in (`plimsoll_core::scope`; the HTTP and gRPC layers
//!   open one per request), else `__system__`, even through a handle
//!   registered once and kept.
//! - **Bounds.** Each metric is a plimsoll family bounded to
//!   [`max_series`](RecorderBuilder::max_series) series: past it, values go
//!   to the tenant's `__other__` series and are counted in
//!   `plimsoll_cardinality_overflow_total`, whatever the number of label
//!   values a library sends. In a metric with two labels or more, each
//!   label is also bounded to
//!   [`max_label_values`](RecorderBuilder::max_label_values) values: past
//!   it, that label's new values are `__other__` while the other labels keep
//!   theirs (a request id in one label does not take a status label's
//!   series), and each such use counts in
//!   `plimsoll_cardinality_overflow_total{metric,label}` under the label's
//!   name (each bound counts what it refused). The recorder keeps a handle
//!   for at most `max_series` keys per metric, so its own memory is bounded
//!   too. The number of metrics is bounded by
//!   [`max_metrics`](RecorderBuilder::max_metrics).
//! - **Names.** Names and label names are made valid (`http.requests` is
//!   `http_requests`; two facade names made alike are one metric); a
//!   label named `tenant_id` is renamed `exported_tenant_id`, `le` on a
//!   histogram `exported_le`, and two label names made alike get `_2`, `_3`…
//!   A metric's label names are those of its first key: a later key's
//!   missing labels are empty, its extra labels are dropped (logged once per
//!   metric).
//! - **Histograms** take the buckets configured for the name
//!   ([`buckets`](RecorderBuilder::buckets)), else the telemetry's default
//!   buckets (`TelemetryBuilder::with_buckets`).
//! - **Refusals are counted**, not raised: a call to a metric past the
//!   bound on metrics, to one whose name a plimsoll family of another type
//!   or labels already has, to one whose names plimsoll refuses (a label
//!   named like a constant label), or to one used as two types records
//!   nothing and counts in `plimsoll_recorder_refused_total{reason}`.
//! - Both exposition formats, as every plimsoll family.
//!
//! A counter's `absolute` raises it to the value given (never lowers it).
//! Descriptions (`describe_counter!`, …) become the HELP text when they come
//! before the metric's first use.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use cache::Cached;
use dashmap::DashMap;
use handle::{CounterHandle, GaugeHandle, Handle, HistogramHandle, Keyed};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::{
    DynLabels, LabelGuard, MetricOpts, RegisterError, Telemetry, Tenant, impl_label_set,
};

mod cache;
mod handle;
mod names;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Default bound on series per metric.
pub const DEFAULT_MAX_SERIES: usize = 1_000;
/// Default bound on distinct metrics.
pub const DEFAULT_MAX_METRICS: usize = 1_000;
/// Default bound on the values of each label of a metric with two labels
/// or more.
pub const DEFAULT_MAX_LABEL_VALUES: usize = 100;

/// `plimsoll_recorder_refused_total{reason}`.
pub const REFUSED: FamilyDecl = FamilyDecl::counter(
    "plimsoll_recorder_refused_total",
    "Calls to metrics of the metrics facade not recorded, by reason: metrics_bound (past the bound on metrics), conflict (a family of that name with another type or labels), invalid (a name plimsoll refuses), kind (one name used as two types).",
)
.with_labels(&[LabelDecl::closed("reason")]);

/// Labels of [`REFUSED`].
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Reason {
    reason: &'static str,
}
impl_label_set!(Reason { reason });

/// An invalid recorder setting, or a second global recorder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A bound is zero.
    #[error("{field}: must be greater than zero")]
    Zero {
        /// The setting.
        field: &'static str,
    },
    /// Buckets that are not finite and strictly increasing.
    #[error("buckets for {metric}: must be finite and strictly increasing, got {buckets:?}")]
    Buckets {
        /// The metric.
        metric: String,
        /// The bounds given.
        buckets: Vec<f64>,
    },
    /// The refusal counter could not be registered.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// A global recorder is installed already.
    #[error("a global metrics recorder is installed already")]
    Installed,
}

/// Builds a [`Recorder`].
#[derive(Debug)]
pub struct RecorderBuilder {
    telemetry: Telemetry,
    max_series: usize,
    max_metrics: usize,
    max_label_values: usize,
    buckets: HashMap<String, Vec<f64>>,
}

impl RecorderBuilder {
    /// Series per metric (default [`DEFAULT_MAX_SERIES`]).
    pub fn max_series(mut self, max: usize) -> Self {
        self.max_series = max;
        self
    }

    /// Distinct metrics (default [`DEFAULT_MAX_METRICS`]).
    pub fn max_metrics(mut self, max: usize) -> Self {
        self.max_metrics = max;
        self
    }

    /// Distinct values of each label of a metric with two labels or more
    /// (default [`DEFAULT_MAX_LABEL_VALUES`]): past it, that label's new
    /// values are `__other__` while the others keep theirs. A metric with
    /// one label is bounded by [`max_series`](Self::max_series) alone. A
    /// label bounded already on the telemetry (by another recorder) keeps
    /// the bound it has.
    pub fn max_label_values(mut self, max: usize) -> Self {
        self.max_label_values = max;
        self
    }

    /// Histogram buckets for the metric `name` (as the facade names it).
    pub fn buckets(mut self, name: &str, bounds: Vec<f64>) -> Self {
        self.buckets.insert(names::metric(name), bounds);
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Recorder, RecorderError> {
        if self.max_series == 0 {
            return Err(RecorderError::Zero {
                field: "max_series",
            });
        }
        if self.max_metrics == 0 {
            return Err(RecorderError::Zero {
                field: "max_metrics",
            });
        }
        if self.max_label_values == 0 {
            return Err(RecorderError::Zero {
                field: "max_label_values",
            });
        }
        for (metric, buckets) in &self.buckets {
            if !plimsoll_core::family::valid_buckets(buckets) {
                return Err(RecorderError::Buckets {
                    metric: metric.clone(),
                    buckets: buckets.clone(),
                });
            }
        }
        let refused = self.telemetry.declare(&REFUSED)?;
        Ok(Recorder {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                max_series: self.max_series,
                max_metrics: self.max_metrics,
                max_label_values: self.max_label_values,
                buckets: self.buckets,
                help: Mutex::default(),
                metrics: RwLock::default(),
                counters: DashMap::default(),
                gauges: DashMap::default(),
                histograms: DashMap::default(),
                refused,
                telemetry: self.telemetry,
            }),
        })
    }
}

/// The recorder: a [`metrics::Recorder`] writing into a [`Telemetry`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

type Handles<H> = DashMap<Key, Arc<H>, foldhash::fast::RandomState>;

struct Inner {
    /// Names this recorder in each thread's copy of its handles.
    id: u64,
    telemetry: Telemetry,
    max_series: usize,
    max_metrics: usize,
    max_label_values: usize,
    buckets: HashMap<String, Vec<f64>>,
    /// HELP texts from `describe_*`, by plimsoll name.
    help: Mutex<HashMap<String, String>>,
    /// Each metric seen, by plimsoll name.
    metrics: RwLock<HashMap<String, Known>>,
    counters: Handles<CounterHandle>,
    gauges: Handles<GaugeHandle>,
    histograms: Handles<HistogramHandle>,
    refused: plimsoll_core::Counter<Reason>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        cache::forget(self.id);
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("max_series", &self.inner.max_series)
            .field("max_metrics", &self.inner.max_metrics)
            .field("max_label_values", &self.inner.max_label_values)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A builder writing into `telemetry`.
    pub fn builder(telemetry: &Telemetry) -> RecorderBuilder {
        RecorderBuilder {
            telemetry: telemetry.clone(),
            max_series: DEFAULT_MAX_SERIES,
            max_metrics: DEFAULT_MAX_METRICS,
            max_label_values: DEFAULT_MAX_LABEL_VALUES,
            buckets: HashMap::new(),
        }
    }

    /// Makes this the process's recorder (`metrics::set_global_recorder`).
    pub fn install(self) -> Result<(), RecorderError> {
        metrics::set_global_recorder(self).map_err(|_| RecorderError::Installed)
    }

    /// Keys the recorder keeps a handle for (at most
    /// [`max_series`](RecorderBuilder::max_series) per metric, none with a
    /// value past its label's bound; other keys are looked up at each
    /// registration).
    pub fn kept_handles(&self) -> usize {
        let inner = &self.inner;
        inner.counters.len() + inner.gauges.len() + inner.histograms.len()
    }
}

/// What became of a metric name.
#[derive(Clone)]
enum Known {
    Recorded(Arc<Metric>),
    /// Refused for good, for this reason.
    Refused(&'static str),
}

/// The refusal reason of a registration error.
fn refusal(error: &RegisterError) -> &'static str {
    match error {
        RegisterError::InvalidName(_)
        | RegisterError::InvalidLabelName { .. }
        | RegisterError::ReservedLabel { .. }
        | RegisterError::DuplicateLabel { .. } => "invalid",
        _ => "conflict",
    }
}

/// The plimsoll family of one metric of the facade.
struct Metric {
    kind: Kind,
    family: Family,
    /// The facade's label names, in the order of the family's.
    sources: Box<[String]>,
    /// A guard on each label's values, in the same order (none for a
    /// metric with one label: its series bound bounds it).
    guards: Box<[LabelGuard]>,
    /// Handles kept for this metric's keys (at most the series bound).
    kept: AtomicUsize,
    /// Whether a key with other label names was logged.
    mismatch_logged: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

enum Family {
    Counter(plimsoll_core::Counter<DynLabels>),
    Gauge(plimsoll_core::Gauge<DynLabels>),
    Histogram(plimsoll_core::Histogram<DynLabels>),
}

impl Metric {
    /// The values of `key`'s labels in the family's order (missing ones
    /// empty, extra ones dropped, ones past their label's bound
    /// `__other__`), and the guards of the labels past their bound.
    fn values(&self, name: &str, key: &Key) -> (DynLabels, Box<[LabelGuard]>) {
        let mut folded = Vec::new();
        let values: Vec<Arc<str>> = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let value = key
                    .labels()
                    .find(|l| l.key() == source)
                    .map_or("", |l| l.value());
                match self.guards.get(i) {
                    // A missing label is not a value a caller chose.
                    Some(guard) if !value.is_empty() => {
                        guard.try_admit(value).unwrap_or_else(|| {
                            folded.push(guard.clone());
                            Arc::from(plimsoll_core::names::OTHER)
                        })
                    }
                    _ => Arc::from(value),
                }
            })
            .collect();
        let values = DynLabels::new(values);
        let matches = key.labels().count() == self.sources.len()
            && key
                .labels()
                .all(|l| self.sources.iter().any(|s| s == l.key()));
        if !matches && !self.mismatch_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "plimsoll",
                metric = name,
                labels = ?self.sources,
                "a metrics-facade key has other label names than the metric's first: its missing labels are empty, its extra ones dropped"
            );
        }
        (values, folded.into())
    }
}

impl Inner {
    /// The metric `name` as `kind`, registered at its first key; `None`
    /// (counted) when refused.
    fn metric(&self, key: &Key, kind: Kind) -> Option<Arc<Metric>> {
        let name = names::metric(key.name());
        let known = {
            let metrics = self.metrics.read().unwrap_or_else(|e| e.into_inner());
            match metrics.get(&name) {
                Some(known) => Some(known.clone()),
                // Past the bound, a name never seen is refused without
                // taking the write lock.
                None if metrics.len() >= self.max_metrics => Some(Known::Refused("metrics_bound")),
                None => None,
            }
        };
        let known = match known {
            Some(known) => known,
            None => match self.register_metric(&name, key, kind) {
                Ok(known) => known,
                Err(error) => {
                    tracing::warn!(target: "plimsoll", metric = name.as_str(), %error, "a metrics-facade metric is not recorded");
                    Known::Refused(refusal(&error))
                }
            },
        };
        match known {
            Known::Recorded(metric) if metric.kind == kind => Some(metric),
            Known::Recorded(_) => self.refuse("kind"),
            Known::Refused(reason) => self.refuse(reason),
        }
    }

    /// Registers the family of the metric `name` at its first key (unless
    /// another thread just did); an error is kept as the metric's refusal.
    fn register_metric(&self, name: &str, key: &Key, kind: Kind) -> Result<Known, RegisterError> {
        let mut metrics = self.metrics.write().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = metrics.get(name) {
            return Ok(known.clone());
        }
        if metrics.len() >= self.max_metrics {
            // Not kept: the bound holds for names never seen.
            return Ok(Known::Refused("metrics_bound"));
        }
        let (sources, labels) =
            names::labels(key.labels().map(|l| l.key()), kind == Kind::Histogram);
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let help = self
            .help
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let help = help.unwrap_or_else(|| format!("{} (through the metrics facade).", key.name()));
        let opts = MetricOpts::new(name, help).with_max_series(self.max_series);
        let telemetry = &self.telemetry;
        let family = match kind {
            Kind::Counter => telemetry
                .counter_dyn(opts, &label_refs)
                .map(Family::Counter),
            Kind::Gauge => telemetry.gauge_dyn(opts, &label_refs).map(Family::Gauge),
            Kind::Histogram => {
                let opts = match self.buckets.get(name) {
                    Some(bounds) => opts.with_buckets(bounds.clone()),
                    None => opts,
                };
                telemetry
                    .histogram_dyn(opts, &label_refs)
                    .map(Family::Histogram)
            }
        };
        let family = family.and_then(|family| {
            let guards = if labels.len() < 2 {
                Box::default()
            } else {
                // Named as exposed: counters end in `_total`.
                let exposed = match kind {
                    Kind::Counter => {
                        format!("{}_total", name.strip_suffix("_total").unwrap_or(name))
                    }
                    _ => name.to_string(),
                };
                labels
                    .iter()
                    .map(|label| {
                        match telemetry.bounded_label(&exposed, label, self.max_label_values) {
                            // Bounded already (another recorder on this
                            // telemetry): one label has one bound.
                            Err(RegisterError::BoundConflict { bound, .. }) => {
                                telemetry.bounded_label(&exposed, label, bound)
                            }
                            guard => guard,
                        }
                    })
                    .collect::<Result<_, _>>()?
            };
            Ok((family, guards))
        });
        let known = match family {
            Ok((family, guards)) => Known::Recorded(Arc::new(Metric {
                kind,
                family,
                sources,
                guards,
                kept: AtomicUsize::new(0),
                mismatch_logged: AtomicBool::new(false),
            })),
            Err(error) => {
                metrics.insert(name.to_string(), Known::Refused(refusal(&error)));
                return Err(error);
            }
        };
        metrics.insert(name.to_string(), known.clone());
        Ok(known)
    }

    #[cold]
    fn refuse<T>(&self, reason: &'static str) -> Option<T> {
        self.refused.inc(&Tenant::system(), &Reason { reason });
        None
    }

    /// The handle of `key` in `handles`, made by `make` (and kept while its
    /// metric keeps fewer than its series bound) at its first use; whether
    /// it is kept.
    fn handle<H>(
        &self,
        handles: &Handles<H>,
        key: &Key,
        kind: Kind,
        make: impl FnOnce(&Metric, DynLabels, Box<[LabelGuard]>) -> Option<H>,
    ) -> Option<(Arc<H>, bool)> {
        if let Some(handle) = handles.get(key) {
            return Some((handle.clone(), true));
        }
        let metric = self.metric(key, kind)?;
        let (labels, folded) = metric.values(key.name(), key);
        // A key with a value past its label's bound keeps no handle (the
        // handles kept are for keys of their own), nor does one past the
        // metric's share: neither takes the map's lock.
        let kept = folded.is_empty() && metric.kept.load(Ordering::Relaxed) < self.max_series;
        let handle = Arc::new(make(&metric, labels, folded)?);
        if !kept {
            return Some((handle, false));
        }
        match handles.entry(key.clone()) {
            // Another thread made it meanwhile: one handle per key.
            dashmap::Entry::Occupied(kept) => Some((kept.get().clone(), true)),
            dashmap::Entry::Vacant(slot) => {
                if metric.kept.fetch_add(1, Ordering::Relaxed) < self.max_series {
                    slot.insert(handle.clone());
                    Some((handle, true))
                } else {
                    metric.kept.fetch_sub(1, Ordering::Relaxed);
                    Some((handle, false))
                }
            }
        }
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let inner = &self.inner;
        let form = Form {
            pick: |cached| match cached {
                Cached::Counter(c) => Some(c.clone()),
                _ => None,
            },
            family: |family| match family {
                Family::Counter(c) => Some(c),
                _ => None,
            },
            wrap: Counter::from_arc,
            keep: Cached::Counter,
            noop: Counter::noop,
        };
        inner.register(key, Kind::Counter, &inner.counters, form)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let inner = &self.inner;
        let form = Form {
            pick: |cached| match cached {
                Cached::Gauge(g) => Some(g.clone()),
                _ => None,
            },
            family: |family| match family {
                Family::Gauge(g) => Some(g),
                _ => None,
            },
            wrap: Gauge::from_arc,
            keep: Cached::Gauge,
            noop: Gauge::noop,
        };
        inner.register(key, Kind::Gauge, &inner.gauges, form)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let inner = &self.inner;
        let form = Form {
            pick: |cached| match cached {
                Cached::Histogram(h) => Some(h.clone()),
                _ => None,
            },
            family: |family| match family {
                Family::Histogram(h) => Some(h),
                _ => None,
            },
            wrap: Histogram::from_arc,
            keep: Cached::Histogram,
            noop: Histogram::noop,
        };
        inner.register(key, Kind::Histogram, &inner.histograms, form)
    }
}

/// How the facade's handles of one kind are made from plimsoll's.
struct Form<F, M> {
    /// This kind's handle in a thread's copy.
    pick: fn(&Cached) -> Option<M>,
    /// This kind's plimsoll family.
    family: fn(&Family) -> Option<&F>,
    wrap: fn(Arc<Handle<F>>) -> M,
    keep: fn(M) -> Cached,
    noop: fn() -> M,
}

impl Inner {
    /// The facade's handle of `key`: this thread's copy, else the one the
    /// recorder keeps, else a new one (kept, and copied into this thread,
    /// while its metric has fewer than its series bound).
    fn register<F: Keyed + Clone, M: Clone>(
        &self,
        key: &Key,
        kind: Kind,
        handles: &Handles<Handle<F>>,
        form: Form<F, M>,
    ) -> M {
        if let Some(handle) = cache::get(self.id, key, form.pick) {
            return handle;
        }
        let made = self.handle(handles, key, kind, |metric, labels, folded| {
            let family = (form.family)(&metric.family)?;
            Some(Handle::new(family.clone(), labels, folded, &self.telemetry))
        });
        let Some((handle, kept)) = made else {
            return (form.noop)();
        };
        let handle = (form.wrap)(handle);
        if kept {
            cache::put(self.id, key, (form.keep)(handle.clone()));
        }
        handle
    }
}

impl Recorder {
    /// Keeps a description as the HELP text of the metric's family, if it
    /// comes before the metric's first use.
    fn describe(&self, key: KeyName, description: SharedString) {
        let name = names::metric(key.as_str());
        // Held while the description is kept, so that a first use cannot
        // register the metric in between (and leave it without its HELP).
        let metrics = self.inner.metrics.read().unwrap_or_else(|e| e.into_inner());
        if !metrics.contains_key(&name) {
            let mut help = self.inner.help.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded as the metrics are: descriptions of names never used
            // stop being kept past the bound.
            if help.len() < self.inner.max_metrics || help.contains_key(&name) {
                help.insert(name, description.into_owned());
            }
        }
    }
}
