//! The cache instrumentation over a bare moka hit, in the same run.
//!
//! Each iteration is 1,000 `get`s of warm keys (all hits) on a
//! `moka::future::Cache` of 10,000 entries, awaited on a current-thread
//! runtime: `moka_bare` calls moka directly, `plimsoll_moka` goes through
//! [`MokaCache`] (a lookup, its hit counted and timed under the tenant of
//! the request scope it runs in).
//!
//! Run: `cargo bench --bench cache --features cache`.

mod harness;
use std::hint::black_box;

use criterion::Criterion;
use plimsoll::cache::{CacheMetrics, MokaCache};
use plimsoll::scope::Scope;

const ENTRIES: u64 = 10_000;
const GETS: u64 = 1_000;

fn hits(c: &mut Criterion) {
    let rt = harness::runtime();
    let telemetry = harness::telemetry();
    let caches = CacheMetrics::new(&telemetry).unwrap();
    let (bare, instrumented) = rt.block_on(async {
        let bare = moka::future::Cache::builder().max_capacity(ENTRIES).build();
        let instrumented = MokaCache::new(
            &caches,
            "orders",
            moka::future::Cache::builder().max_capacity(ENTRIES),
        );
        for key in 0..ENTRIES {
            bare.insert(key, key).await;
            instrumented.insert(key, key).await;
        }
        bare.run_pending_tasks().await;
        instrumented.run_pending_tasks().await;
        (bare, instrumented)
    });
    let scope = Scope::new(telemetry.tenant("acme"));
    let mut group = c.benchmark_group("cache_hit_x1000");
    group.bench_function("moka_bare", |b| {
        b.iter(|| {
            rt.block_on(scope.clone().run(async {
                for i in 0..GETS {
                    black_box(bare.get(&(i * 7 % ENTRIES)).await);
                }
            }))
        })
    });
    group.bench_function("plimsoll_moka", |b| {
        b.iter(|| {
            rt.block_on(scope.clone().run(async {
                for i in 0..GETS {
                    black_box(instrumented.get(&(i * 7 % ENTRIES)).await);
                }
            }))
        })
    });
    group.finish();
}

harness::bench_main!(3, hits);
