//! The Redis wrapper over a bare loopback `GET`, in the same run.
//!
//! Starts a throwaway `redis-server` on a free loopback port (it must be
//! installed: `scripts/install-services.sh`), then times 100 sequential
//! `GET`s of one key per iteration over a multiplexed connection: bare, and
//! through [`RedisMetrics::wrap`] inside a request scope.
//!
//! Run: `cargo bench --bench redis --features redis`.

mod harness;
use std::hint::black_box;
use std::time::Duration;

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::Criterion;
use plimsoll::redis::RedisMetrics;
use plimsoll::scope::Scope;
use redis::AsyncCommands;

const GETS: usize = 100;

fn gets(c: &mut Criterion) {
    let server = support::redis_server().expect("redis-server (scripts/install-services.sh)");
    let port = server.port;
    let rt = harness::runtime();
    let telemetry = harness::telemetry();
    let metrics = RedisMetrics::new(&telemetry).unwrap();
    let (mut bare, mut wrapped) = rt.block_on(async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut bare = None;
        for _ in 0..100 {
            if let Ok(conn) = client.get_multiplexed_async_connection().await {
                bare = Some(conn);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut bare = bare.expect("redis-server listens");
        let _: () = bare.set("k", "v").await.unwrap();
        let wrapped = metrics.wrap(client.get_multiplexed_async_connection().await.unwrap());
        (bare, wrapped)
    });
    let scope = Scope::new(telemetry.tenant("acme"));
    let mut group = c.benchmark_group("redis_get_x100");
    group.bench_function("bare", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..GETS {
                    let v: String = bare.get("k").await.unwrap();
                    black_box(v);
                }
            })
        })
    });
    group.bench_function("plimsoll", |b| {
        b.iter(|| {
            rt.block_on(scope.clone().run(async {
                for _ in 0..GETS {
                    let v: String = wrapped.get("k").await.unwrap();
                    black_box(v);
                }
            }))
        })
    });
    group.finish();
    drop(server);
}

harness::bench_main!(5, gets);
