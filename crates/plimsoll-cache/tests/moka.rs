//! The moka adapter against a real moka cache: exact hits, misses, loads,
//! evictions by cause and entries, under request tenants and bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use plimsoll_cache::{CacheMetrics, CacheStore, MokaCache};
use plimsoll_core::scope::Scope;
use plimsoll_core::{Format, Telemetry};

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn ops(body: &str, tenant: &str, cache: &str, operation: &str, status: &str) -> Option<f64> {
    value(
        body,
        &format!(
            "cache_operations_total{{tenant_id=\"{tenant}\",operation=\"{operation}\",cache_name=\"{cache}\",status=\"{status}\"}}"
        ),
    )
}

fn evictions(body: &str, cache: &str, cause: &str) -> Option<f64> {
    value(
        body,
        &format!(
            "cache_evictions_total{{tenant_id=\"__system__\",cache_name=\"{cache}\",cause=\"{cause}\"}}"
        ),
    )
}

#[tokio::test]
async fn hits_misses_loads_and_evictions_by_cause_are_exact() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    let cache = MokaCache::new(
        &caches,
        "orders",
        moka::future::Cache::builder().max_capacity(2),
    );
    let loads = Arc::new(AtomicUsize::new(0));
    Scope::new(t.tenant("acme"))
        .run(async {
            for key in [1_u32, 1, 2] {
                let loads = loads.clone();
                let loaded = cache
                    .try_get_with(key, async move {
                        loads.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, String>(format!("v{key}"))
                    })
                    .await;
                assert_eq!(loaded.unwrap(), format!("v{key}"));
            }
            let failed = cache
                .try_get_with(3, async { Err::<String, _>("down".to_string()) })
                .await;
            assert_eq!(*failed.unwrap_err(), "down");
            assert_eq!(cache.get(&1).await.as_deref(), Some("v1"));
            assert_eq!(cache.get(&9).await, None);
            cache.insert(1, "v1'".into()).await; // replaced
            cache.invalidate(&2).await; // explicit
        })
        .await;
    assert_eq!(loads.load(Ordering::Relaxed), 2);
    // Past the capacity of 2: entries evicted for size.
    for key in 10..20 {
        cache.insert(key, "x".into()).await;
    }
    cache.run_pending_tasks().await;

    let body = t.encode(Format::Prometheus);
    assert_eq!(
        ops(&body, "acme", "orders", "get", "hit"),
        Some(2.0),
        "{body}"
    );
    assert_eq!(ops(&body, "acme", "orders", "get", "miss"), Some(4.0));
    assert_eq!(ops(&body, "acme", "orders", "load", "success"), Some(2.0));
    assert_eq!(ops(&body, "acme", "orders", "load", "error"), Some(1.0));
    assert_eq!(ops(&body, "acme", "orders", "set", "success"), Some(1.0));
    assert_eq!(ops(&body, "acme", "orders", "delete", "success"), Some(1.0));
    assert_eq!(
        ops(&body, "__system__", "orders", "set", "success"),
        Some(10.0)
    );
    assert_eq!(evictions(&body, "orders", "replaced"), Some(1.0));
    assert_eq!(evictions(&body, "orders", "explicit"), Some(1.0));
    let entries = value(
        &body,
        "cache_entries{tenant_id=\"__system__\",cache_name=\"orders\"}",
    )
    .unwrap();
    let size = evictions(&body, "orders", "size").unwrap();
    assert_eq!(entries, 2.0, "{body}");
    // 1 + 10 inserted after the invalidation, 2 kept.
    assert_eq!(size, 9.0, "{body}");
    assert_eq!(
        value(
            &body,
            "cache_operation_duration_seconds_count{tenant_id=\"acme\",operation=\"load\",cache_name=\"orders\"}"
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn expirations_are_counted_without_any_request_touching_the_cache() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    let cache = MokaCache::new(
        &caches,
        "tokens",
        moka::future::Cache::builder().time_to_live(Duration::from_millis(50)),
    );
    cache.insert("a", 1_u8).await;
    cache.insert("b", 2).await;
    // The adapter's maintenance runs the pending tasks by itself.
    let mut expired = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        expired = evictions(&t.encode(Format::Prometheus), "tokens", "expired");
        if expired == Some(2.0) {
            break;
        }
    }
    assert_eq!(expired, Some(2.0));
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        value(
            &body,
            "cache_entries{tenant_id=\"__system__\",cache_name=\"tokens\"}"
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_dropped_cache_leaves_the_scrape() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    let cache = MokaCache::new(&caches, "temp", moka::future::Cache::builder());
    cache.insert(1_u8, 1_u8).await;
    assert!(
        t.encode(Format::Prometheus)
            .contains("cache_entries{tenant_id=\"__system__\",cache_name=\"temp\"}")
    );
    drop(cache);
    assert!(!t.encode(Format::Prometheus).contains("cache_entries{"));
}

#[tokio::test]
async fn cache_names_are_bounded_under_100k_distinct_names() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    for i in 0..100_000 {
        let cache = caches.instrument(&format!("cache-{i}"), Memory::default());
        cache.insert(1_u32, 1_u32).await;
    }
    let body = t.encode(Format::Prometheus);
    let series = body
        .lines()
        .filter(|l| l.starts_with("cache_operations_total{"))
        .count();
    assert_eq!(series, 101, "100 names and __other__");
    assert_eq!(
        ops(&body, "__system__", "__other__", "set", "success"),
        Some(99_900.0)
    );
}

/// A plain cache implementing the trait: the generic wrapper instruments it.
#[derive(Default)]
struct Memory(std::sync::Mutex<std::collections::HashMap<u32, u32>>);

impl CacheStore<u32, u32> for Memory {
    async fn get(&self, key: &u32) -> Option<u32> {
        self.0.lock().unwrap().get(key).copied()
    }
    async fn insert(&self, key: u32, value: u32) {
        self.0.lock().unwrap().insert(key, value);
    }
    async fn remove(&self, key: &u32) {
        self.0.lock().unwrap().remove(key);
    }
}

#[tokio::test]
async fn any_cache_store_is_instrumented_and_loads_on_a_miss() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    let users = caches.instrument("users", Memory::default());
    let first: Result<u32, ()> = users.get_with(7, async { Ok(70) }).await;
    let second: Result<u32, ()> = users.get_with(7, async { Ok(0) }).await;
    assert_eq!((first, second), (Ok(70), Ok(70)));
    users.remove(&7).await;
    let body = t.encode(Format::Prometheus);
    assert_eq!(ops(&body, "__system__", "users", "get", "miss"), Some(1.0));
    assert_eq!(ops(&body, "__system__", "users", "get", "hit"), Some(1.0));
    assert_eq!(
        ops(&body, "__system__", "users", "load", "success"),
        Some(1.0)
    );
    assert_eq!(
        ops(&body, "__system__", "users", "delete", "success"),
        Some(1.0)
    );
}

#[tokio::test]
async fn concurrent_misses_share_one_load_and_a_dropped_load_is_an_error() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    let cache = Arc::new(MokaCache::new(
        &caches,
        "shared",
        moka::future::Cache::builder().max_capacity(100),
    ));
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_with(1_u32, async move {
                        loads.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        "one".to_string()
                    })
                    .await
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), "one");
    }
    assert_eq!(loads.load(Ordering::Relaxed), 1);
    // A load dropped before it completes (the request went away).
    let dropped = cache.get_with(2, std::future::pending());
    assert!(
        tokio::time::timeout(Duration::from_millis(20), dropped)
            .await
            .is_err()
    );
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        ops(&body, "__system__", "shared", "load", "success"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        ops(&body, "__system__", "shared", "load", "error"),
        Some(1.0)
    );
    assert_eq!(ops(&body, "__system__", "shared", "get", "hit"), Some(7.0));
    assert_eq!(ops(&body, "__system__", "shared", "get", "miss"), Some(1.0));
}

#[tokio::test]
async fn the_weighted_size_follows_the_weigher() {
    let t = telemetry();
    let caches = CacheMetrics::new(&t).unwrap();
    let cache = MokaCache::new(
        &caches,
        "blobs",
        moka::future::Cache::builder().weigher(|_k: &u8, v: &String| v.len() as u32),
    );
    cache.insert(1, "abc".to_string()).await;
    cache.insert(2, "defgh".to_string()).await;
    cache.run_pending_tasks().await;
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        value(
            &body,
            "cache_entries{tenant_id=\"__system__\",cache_name=\"blobs\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &body,
            "cache_weighted_size{tenant_id=\"__system__\",cache_name=\"blobs\"}"
        ),
        Some(8.0)
    );
}
