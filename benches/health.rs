//! A storm of readiness probes: 1,000 concurrent `GET /api/v1/ready` over
//! loopback, each on a connection of its own opened beforehand, all sent
//! at once, against a service whose database is checked by `SELECT 1` on
//! SQLite every second. The service runs on a thread and runtime of its
//! own. Reports each round's answer times (from the probe sent to the end
//! of its answer) and the database calls the storm caused; then criterion
//! times one probe in process.
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

/// Connects, then (when every prober is connected, and after `delay`)
/// sends one probe on the open connection and times it to the end of the
/// answer.
async fn probe(
    addr: std::net::SocketAddr,
    go: Arc<tokio::sync::Barrier>,
    delay: Duration,
) -> Duration {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    go.wait().await;
    tokio::time::sleep(delay).await;
    let start = Instant::now();
    stream
        .write_all(b"GET /api/v1/ready HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !out.ends_with(br#"{"status":"ready"}"#) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    assert!(out.starts_with(b"HTTP/1.1 200"));
    start.elapsed()
}

/// The service on a runtime (and core) of its own; the probers on another.
fn storm_report() {
    const ROUNDS: usize = 10;
    const PROBES: usize = 1_000;
    let server = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let counted = calls.clone();
    std::thread::spawn(move || {
        server.block_on(async move {
            let health = health(counted).await;
            let app: axum::Router = axum::Router::new().nest("/api/v1", health.router());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        })
    });
    let addr = addr_rx.recv().unwrap();
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{PROBES} concurrent /ready probes over loopback (connections open beforehand), {ROUNDS} rounds:"
    );
    clients.block_on(async {
        for round in 1..=ROUNDS {
            // Even rounds: all at once. Odd rounds: spread over one second
            // (1,000 probes a second from 1,000 open connections).
            let spread = round % 2 == 1;
            let before = calls.load(Ordering::Relaxed);
            let go = Arc::new(tokio::sync::Barrier::new(PROBES));
            let probes: Vec<_> = (0..PROBES)
                .map(|i| {
                    let delay = if spread {
                        Duration::from_micros(i as u64 * 1_000)
                    } else {
                        Duration::ZERO
                    };
                    tokio::spawn(probe(addr, go.clone(), delay))
                })
                .collect();
            let mut times = Vec::with_capacity(PROBES);
            for p in probes {
                times.push(p.await.unwrap());
            }
            times.sort();
            let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
            println!(
                "  round {round:>2} ({}): p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>6.3} ms, {} database calls",
                if spread { "spread over 1 s" } else { "all at once" },
                at(0.50).as_secs_f64() * 1e3,
                at(0.99).as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
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
