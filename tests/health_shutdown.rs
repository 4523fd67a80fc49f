//! SIGTERM, for real: `/ready` turns 503 at once while a slow request in
//! flight still completes with 200, new connections are served during the
//! drain period, and the server stops after it. In its own test binary: it signals its own process.
#![cfg(all(feature = "health", unix))]

use std::time::{Duration, Instant};

use axum::routing::get;
use plimsoll::Telemetry;
use plimsoll::health::{Component, Health, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.ok()?;
    String::from_utf8_lossy(&out).get(9..12)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_before_the_server_stops() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let drain = Duration::from_millis(1200);
    let health = Health::builder(&t)
        .interval(Duration::from_millis(50))
        .drain_period(drain)
        .component(Component::new("queue", || async { Report::healthy() }))
        .build()
        .unwrap();
    health.check_now().await;
    let app = axum::Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }),
        )
        .merge(health.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let draining = health.clone();
    // The signal handler is in place before the signal is sent.
    let (armed, is_armed) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let signal = plimsoll::health::shutdown_signal();
            let _ = armed.send(());
            signal.await;
            draining.drain().await;
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .unwrap();
    });
    is_armed.await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get_status(addr, "/ready").await, Some(200));

    let slow = tokio::spawn(async move { get_status(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // At once: not ready, still alive.
    loop {
        if get_status(addr, "/ready").await == Some(503) {
            break;
        }
        assert!(sent.elapsed() < Duration::from_secs(1), "/ready still 200");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get_status(addr, "/health").await, Some(200));
    // The request in flight completes.
    assert_eq!(slow.await.unwrap(), Some(200));
    // During the drain period, new connections are still served (the load
    // balancer may not have noticed yet).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sent.elapsed() < drain, "{:?}", sent.elapsed());
    assert_eq!(get_status(addr, "/health").await, Some(200));
    // The server stops after the drain period.
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops")
        .unwrap();
    assert!(sent.elapsed() >= drain, "{:?}", sent.elapsed());
    assert_eq!(get_status(addr, "/health").await, None);
}
