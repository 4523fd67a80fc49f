//! The families, the trait a cache implements, and the instrumented wrapper.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use plimsoll_core::classify::Outcome;
use plimsoll_core::clock::Stamp;
use plimsoll_core::operation::{Completed, Operation, RecordOperation};
use plimsoll_core::trace::{OpenSpan, SpanKind, SpanStart};
use plimsoll_core::{
    Counter, Histogram, LabelGuard, RegisterError, Telemetry, Tenant, TraceRef, scope,
};

use crate::families;
use crate::labels::{
    CacheLabels, Cause, DurationKey, EvictionKey, Operation as Op, OperationKey, Status,
};

/// Reads a cache's entry count and weighted size; `None` once it is gone.
pub(crate) type Sizes = Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;

/// The caches whose size is read at scrape time, by name.
type Watched = Mutex<Vec<(Arc<str>, Sizes)>>;

/// The cache families of one [`Telemetry`]: create one and clone it for
/// every cache (a second one on the same telemetry is refused, as its
/// scrape-time families would be registered twice).
#[derive(Clone)]
pub struct CacheMetrics {
    pub(crate) telemetry: Telemetry,
    operations: Counter<crate::labels::OperationLabels>,
    durations: Histogram<crate::labels::DurationLabels>,
    evictions: Counter<crate::labels::EvictionLabels>,
    names: LabelGuard,
    /// The caches whose size is read at scrape time.
    sized: Arc<Watched>,
}

impl fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheMetrics")
            .field("caches", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl CacheMetrics {
    /// Registers the cache families on `telemetry`; cache names are bounded
    /// by the telemetry's `with_label_bound` for
    /// [`CACHE_OPERATIONS`](families::CACHE_OPERATIONS) `cache_name`
    /// (default [`DEFAULT_MAX_CACHES`](families::DEFAULT_MAX_CACHES)).
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        let sized: Arc<Watched> = Arc::default();
        for (family, entries) in [
            (&families::CACHE_ENTRIES, true),
            (&families::CACHE_WEIGHTED_SIZE, false),
        ] {
            let caches = Arc::downgrade(&sized);
            telemetry.declare_scraped(family, move |out| {
                for (name, (count, weighted)) in read_sizes(&caches) {
                    let value = if entries { count } else { weighted };
                    let _ = out.set(
                        &Tenant::system(),
                        &CacheLabels { cache_name: name },
                        value as f64,
                    );
                }
            })?;
        }
        Ok(Self {
            telemetry: telemetry.clone(),
            operations: telemetry.declare(&families::CACHE_OPERATIONS)?,
            durations: telemetry.declare(&families::CACHE_OPERATION_DURATION)?,
            evictions: telemetry.declare(&families::CACHE_EVICTIONS)?,
            names: telemetry.label_guard(&families::CACHE_OPERATIONS, "cache_name")?,
            sized,
        })
    }

    /// Wraps `store` as the cache named `name` (bounded).
    pub fn instrument<S>(&self, name: &str, store: S) -> Instrumented<S> {
        Instrumented {
            store,
            name: self.cache_name(name),
            metrics: self.clone(),
        }
    }

    /// The label of the cache named `name`, admitted through its bound.
    pub(crate) fn cache_name(&self, name: &str) -> Arc<str> {
        self.names.admit(name)
    }

    /// Reads the size of the cache `name` at every scrape, while `sizes`
    /// returns `Some`.
    pub(crate) fn watch_size(&self, name: Arc<str>, sizes: Sizes) {
        self.sized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, sizes));
    }

    /// Records an entry removed for `cause`.
    pub(crate) fn evicted(&self, name: &str, cause: Cause) {
        let key = EvictionKey {
            cache_name: name,
            cause,
        };
        self.evictions.inc(&Tenant::system(), &key);
    }

    /// Records one operation, its duration with the exemplar of its span.
    fn record(
        &self,
        tenant: &Tenant,
        name: &str,
        operation: Op,
        status: Status,
        seconds: f64,
        trace: Option<TraceRef>,
    ) {
        let key = OperationKey {
            operation,
            cache_name: name,
            status,
        };
        self.operations.inc(tenant, &key);
        let key = DurationKey {
            operation,
            cache_name: name,
        };
        self.durations
            .observe_with_exemplar(tenant, &key, seconds, trace);
    }
}

/// The sizes of the caches still alive, dropping the others.
fn read_sizes(caches: &Weak<Watched>) -> Vec<(Arc<str>, (u64, u64))> {
    let Some(caches) = caches.upgrade() else {
        return Vec::new();
    };
    let mut caches = caches.lock().unwrap_or_else(|e| e.into_inner());
    let mut sizes = Vec::new();
    caches.retain(|(name, read)| match read() {
        Some(size) => {
            sizes.push((name.clone(), size));
            true
        }
        None => false,
    });
    sizes
}

/// A cache as plimsoll instruments it: lookups, inserts and removals.
/// Implement it for your cache type, then wrap it with
/// [`CacheMetrics::instrument`].
pub trait CacheStore<K, V>: Send + Sync {
    /// The value of `key`, if cached.
    fn get(&self, key: &K) -> impl Future<Output = Option<V>> + Send;
    /// Caches `value` under `key`.
    fn insert(&self, key: K, value: V) -> impl Future<Output = ()> + Send;
    /// Removes `key`.
    fn remove(&self, key: &K) -> impl Future<Output = ()> + Send;
}

/// A cache whose operations are recorded under the current request's
/// tenant (see [`plimsoll_core::scope`]).
pub struct Instrumented<S> {
    pub(crate) store: S,
    pub(crate) name: Arc<str>,
    pub(crate) metrics: CacheMetrics,
}

impl<S> fmt::Debug for Instrumented<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Loads are operations: status from the loader's outcome, `error` when
/// dropped before they complete.
impl RecordOperation for CacheMetrics {
    type Labels = Arc<str>;

    fn record(&self, done: Completed<'_, Arc<str>>) {
        let status = match done.outcome {
            Outcome::Ok => Status::Success,
            _ => Status::Error,
        };
        CacheMetrics::record(
            self,
            done.tenant,
            &done.labels,
            Op::Load,
            status,
            done.seconds,
            done.trace,
        );
    }

    /// An internal span for the load behind a miss: `cache load <name>`.
    fn open_span(&self, telemetry: &Telemetry, name: &Arc<str>) -> OpenSpan {
        let span_name = format!("cache load {name}");
        let attributes = [("plimsoll.cache.name", (&**name).into())];
        telemetry.start_span(&SpanStart::new(&span_name, SpanKind::Internal, &attributes))
    }
}

impl<S> Instrumented<S> {
    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.store
    }

    /// The cache's name as it appears in its labels (`__other__` past the bound).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records one operation under the current request's tenant.
    pub(crate) fn record(&self, operation: Op, status: Status, start: Stamp) {
        static SYSTEM: Tenant = Tenant::system();
        scope::with_current(|scope| {
            let tenant = scope.map_or(&SYSTEM, |s| s.tenant());
            let seconds = start.elapsed_seconds();
            // A lookup's exemplar: the request's span, when sampled.
            let trace = scope.and_then(|s| s.span()).and_then(|s| s.exemplar());
            self.metrics
                .record(tenant, &self.name, operation, status, seconds, trace);
        });
    }

    /// Starts timing a load.
    pub(crate) fn start_load(&self) -> Operation<&CacheMetrics> {
        Operation::start(&self.metrics.telemetry, &self.metrics, self.name.clone())
    }

    /// Looks `key` up: a hit or a miss.
    pub async fn get<K, V>(&self, key: &K) -> Option<V>
    where
        S: CacheStore<K, V>,
    {
        let start = Stamp::now();
        let value = self.store.get(key).await;
        let status = if value.is_some() {
            Status::Hit
        } else {
            Status::Miss
        };
        self.record(Op::Get, status, start);
        value
    }

    /// Caches `value` under `key`.
    pub async fn insert<K, V>(&self, key: K, value: V)
    where
        S: CacheStore<K, V>,
    {
        let start = Stamp::now();
        self.store.insert(key, value).await;
        self.record(Op::Set, Status::Success, start);
    }

    /// Removes `key`.
    pub async fn remove<K, V>(&self, key: &K)
    where
        S: CacheStore<K, V>,
    {
        let start = Stamp::now();
        self.store.remove(key).await;
        self.record(Op::Delete, Status::Success, start);
    }

    /// The value of `key`, loaded with `load` and cached on a miss. The
    /// lookup records a hit or a miss; the load records its own time and
    /// status (`error` when it fails or is dropped).
    pub async fn get_with<K, V, E, F>(&self, key: K, load: F) -> Result<V, E>
    where
        S: CacheStore<K, V>,
        V: Clone,
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key).await {
            return Ok(value);
        }
        let value = self
            .start_load()
            .time(load, Outcome::classify_result)
            .await?;
        self.store.insert(key, value.clone()).await;
        Ok(value)
    }
}
