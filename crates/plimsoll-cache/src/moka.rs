//! The adapter for `moka::future::Cache`.
//!
//! moka runs no background thread: its eviction listener and its entry
//! count advance only when its pending tasks run (on cache operations, or
//! `run_pending_tasks`). [`MokaCache`] keeps them current itself: built
//! inside a tokio runtime (with its timer), it runs the cache's pending
//! tasks every [`MAINTENANCE_INTERVAL`] while the cache is alive, so
//! expirations and evictions are counted, and entries read at scrape time,
//! even when no request touches the cache.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use moka::future::{Cache, CacheBuilder};
use moka::notification::RemovalCause;
use plimsoll_core::classify::Outcome;
use plimsoll_core::clock::Stamp;

use crate::labels::{Cause, Operation as Op, Status};
use crate::metrics::{CacheMetrics, CacheStore, Instrumented};

/// How often a [`MokaCache`] runs its cache's pending tasks.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

impl<K, V> CacheStore<K, V> for Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> impl Future<Output = Option<V>> + Send {
        Cache::get(self, key)
    }

    fn insert(&self, key: K, value: V) -> impl Future<Output = ()> + Send {
        Cache::insert(self, key, value)
    }

    fn remove(&self, key: &K) -> impl Future<Output = ()> + Send {
        self.invalidate(key)
    }
}

impl From<RemovalCause> for Cause {
    fn from(cause: RemovalCause) -> Self {
        match cause {
            RemovalCause::Expired => Cause::Expired,
            RemovalCause::Explicit => Cause::Explicit,
            RemovalCause::Replaced => Cause::Replaced,
            RemovalCause::Size => Cause::Size,
        }
    }
}

/// An instrumented `moka::future::Cache`: operations, loads, evictions by
/// cause, and entries and weighted size at scrape time.
///
/// ```
/// use plimsoll_cache::{CacheMetrics, MokaCache};
/// use plimsoll_core::{Format, Telemetry};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let telemetry = Telemetry::builder().with_process_metrics(false).build().unwrap();
/// let caches = CacheMetrics::new(&telemetry).unwrap();
/// let orders = MokaCache::new(&caches, "orders", moka::future::Cache::builder().max_capacity(1_000));
///
/// let loaded = orders
///     .try_get_with(42_u64, async { Ok::<_, std::io::Error>("order 42".to_string()) })
///     .await;
/// assert_eq!(loaded.unwrap(), "order 42");
/// assert_eq!(orders.get(&42).await.as_deref(), Some("order 42"));
///
/// let body = telemetry.encode(Format::Prometheus);
/// assert!(body.contains(
///     "cache_operations_total{tenant_id=\"__system__\",operation=\"get\",cache_name=\"orders\",status=\"hit\"} 1\n"
/// ));
/// assert!(body.contains(
///     "cache_operations_total{tenant_id=\"__system__\",operation=\"load\",cache_name=\"orders\",status=\"success\"} 1\n"
/// ));
/// # }
/// ```
pub struct MokaCache<K, V> {
    inner: Instrumented<Cache<K, V>>,
    /// Dropped with the cache: stops its maintenance and its scrape-time sizes.
    _alive: Arc<()>,
}

impl<K, V> fmt::Debug for MokaCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MokaCache")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> MokaCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Builds the cache `builder` describes, as the cache named `name`
    /// (bounded). Its eviction listener is set here: one set on `builder`
    /// before is replaced.
    pub fn new(
        metrics: &CacheMetrics,
        name: &str,
        builder: CacheBuilder<K, V, Cache<K, V>>,
    ) -> Self {
        let name = metrics.cache_name(name);
        let evictions = (metrics.clone(), name.clone());
        let cache = builder
            .eviction_listener(move |_key, _value, cause| {
                evictions.0.evicted(&evictions.1, cause.into())
            })
            .build();
        let alive = Arc::new(());
        let (watched, sized) = (Arc::downgrade(&alive), cache.clone());
        metrics.watch_size(
            name.clone(),
            Box::new(move || {
                watched.upgrade()?;
                Some((sized.entry_count(), sized.weighted_size()))
            }),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (watched, maintained) = (Arc::downgrade(&alive), cache.clone());
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(MAINTENANCE_INTERVAL);
                loop {
                    ticks.tick().await;
                    if watched.upgrade().is_none() {
                        return;
                    }
                    maintained.run_pending_tasks().await;
                }
            });
        }
        Self {
            inner: Instrumented {
                store: cache,
                name,
                metrics: metrics.clone(),
            },
            _alive: alive,
        }
    }

    /// The moka cache (operations on it directly are not recorded).
    pub fn inner(&self) -> &Cache<K, V> {
        &self.inner.store
    }

    /// The cache's name as it appears in its labels.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Looks `key` up: a hit or a miss.
    pub async fn get(&self, key: &K) -> Option<V> {
        self.inner.get(key).await
    }

    /// Caches `value` under `key` (replacing a value counts an eviction
    /// with cause `replaced`).
    pub async fn insert(&self, key: K, value: V) {
        self.inner.insert(key, value).await
    }

    /// Invalidates `key` (an eviction with cause `explicit` when it was cached).
    pub async fn invalidate(&self, key: &K) {
        self.inner.remove(key).await
    }

    /// The value of `key`, loaded with `load` on a miss: concurrent callers
    /// for one key share one load. Records the lookup (a hit, or a miss
    /// for the caller whose load filled the entry) and the load's time and
    /// status.
    pub async fn try_get_with<E, F>(&self, key: K, load: F) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let start = Stamp::now();
        let timed = async {
            self.inner
                .start_load()
                .time(load, Outcome::classify_result)
                .await
        };
        let entry = self.inner.store.entry(key).or_try_insert_with(timed).await;
        let status = match &entry {
            Ok(entry) if !entry.is_fresh() => Status::Hit,
            _ => Status::Miss,
        };
        self.inner.record(Op::Get, status, start);
        entry.map(|entry| entry.into_value())
    }

    /// Like [`try_get_with`](Self::try_get_with) for a loader that cannot fail.
    pub async fn get_with<F>(&self, key: K, load: F) -> V
    where
        F: Future<Output = V>,
    {
        let start = Stamp::now();
        let timed = async { self.inner.start_load().time(load, |_| Outcome::Ok).await };
        let entry = self.inner.store.entry(key).or_insert_with(timed).await;
        let status = if entry.is_fresh() {
            Status::Miss
        } else {
            Status::Hit
        };
        self.inner.record(Op::Get, status, start);
        entry.into_value()
    }

    /// Runs the cache's pending tasks now (evictions, expirations, counts).
    pub async fn run_pending_tasks(&self) {
        self.inner.store.run_pending_tasks().await
    }
}
