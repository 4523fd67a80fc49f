//! A storm of readiness probes: 1,000 concurrent `GET /api/v1/ready` over
//! loopback (a connection each, as load balancers' probes come), against
//! a service whose database is checked by `SELECT 1` on SQLite every
//! second. Reports each round's latency percentiles and the database
//! calls the storm caused; then criterion times one probe in process.
//!
//! Run: `cargo bench --bench health --features health,sqlx`.

mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use plimsoll::health::{Check, Component, Health, checks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

async fn health(calls: Arc<AtomicU64>) -> Health {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let check = Arc::new(checks::sqlx_pool(pool));
    let health = Health::builder(&harness::telemetry())
        .interval(Duration::from_secs(1))
        .component(Component::new("database", move || {
            calls.fetch_add(1, Ordering::Relaxed);
            let check = check.clone();
            async move { check.check().await }
        }))
        .build()
        .unwrap();
    health.check_now().await;
    health
}

async fn probe(addr: std::net::SocketAddr) -> Duration {
    let start = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    assert!(out.starts_with(b"HTTP/1.1 200"));
    start.elapsed()
}

fn storm_report() {
    const ROUNDS: usize = 10;
    const PROBES: usize = 1_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let calls = Arc::new(AtomicU64::new(0));
        let health = health(calls.clone()).await;
        let app: axum::Router = axum::Router::new().nest("/api/v1", health.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        println!("{PROBES} concurrent /ready probes over loopback, {ROUNDS} rounds:");
        for round in 1..=ROUNDS {
            let before = calls.load(Ordering::Relaxed);
            let start = Instant::now();
            let probes: Vec<_> = (0..PROBES).map(|_| tokio::spawn(probe(addr))).collect();
            let mut times = Vec::with_capacity(PROBES);
            for p in probes {
                times.push(p.await.unwrap());
            }
            let wall = start.elapsed();
            times.sort();
            let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
            println!(
                "  round {round:>2}: p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  in {:>6.1} ms, {} database calls",
                at(0.50).as_secs_f64() * 1e3,
                at(0.99).as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3,
                calls.load(Ordering::Relaxed) - before
            );
        }
    });
}

fn bench(c: &mut Criterion) {
    storm_report();
    let rt = harness::runtime();
    let health = rt.block_on(health(Arc::new(AtomicU64::new(0))));
    let app: axum::Router = axum::Router::new()
        .nest("/api/v1", health.router())
        .with_state(());
    c.bench_function("ready_in_process", |b| {
        b.iter(|| {
            rt.block_on(async {
                let request = http::Request::get("/api/v1/ready")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = app.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
            })
        })
    });
}

harness::bench_main!(3, bench);
