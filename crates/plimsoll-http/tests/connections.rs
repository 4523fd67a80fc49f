//! Long-lived connections: a real WebSocket upgrade over TCP.

mod support;

use support::wait_for;

use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::extract::ws::Message;
use axum::routing::get;
use plimsoll_core::Telemetry;
use plimsoll_http::{ConnectionGauge, RedMetricsLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn upgraded_connections_count_exactly_and_leave_request_latency_alone() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let sockets = ConnectionGauge::new(&t).unwrap();
    let red = RedMetricsLayer::builder(&t)
        .with_tenant_header("x-tenant-id")
        .build()
        .unwrap();
    let t2 = t.clone();
    let app = Router::new()
        .route(
            "/ws/chat",
            get(move |ws: WebSocketUpgrade| {
                let (sockets, tenant) = (sockets.clone(), t2.tenant("acme"));
                async move {
                    ws.on_upgrade(move |mut socket| async move {
                        let _open = sockets.open(&tenant, "chat");
                        // Echo until the client goes away: every exit drops the guard.
                        while let Some(Ok(msg)) = socket.recv().await {
                            if matches!(msg, Message::Close(_)) || socket.send(msg).await.is_err() {
                                break;
                            }
                        }
                    })
                }
            }),
        )
        .layer(red);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app).into_future());

    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"GET /ws/chat HTTP/1.1\r\nhost: x\r\nx-tenant-id: acme\r\nconnection: upgrade\r\n\
                  upgrade: websocket\r\nsec-websocket-version: 13\r\n\
                  sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        clients.push(stream);
    }
    wait_for(&t, |s| {
        s.value("websocket_connections_active", &[("namespace", "chat")]) == Some(3.0)
    })
    .await;
    // The upgrade request ended with its 101: in flight 0, one short latency each.
    let scrape = t.scrape();
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[("route", "/ws/chat"), ("status_code", "101")]
        ),
        Some(3.0)
    );
    let sum = scrape
        .value(
            "http_request_duration_seconds_sum",
            &[("route", "/ws/chat")],
        )
        .unwrap();
    assert!(sum < 1.0, "upgrade latency {sum}");

    clients.pop();
    wait_for(&t, |s| {
        s.value("websocket_connections_active", &[("namespace", "chat")]) == Some(2.0)
    })
    .await;
    clients.clear();
    wait_for(&t, |s| {
        s.value("websocket_connections_active", &[("namespace", "chat")]) == Some(0.0)
    })
    .await;
    server.abort();
}

#[test]
fn a_panicking_connection_handler_still_closes_its_connection() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let sockets = ConnectionGauge::new(&t).unwrap();
    let tenant = t.tenant("acme");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _open = sockets.open(&tenant, "feed");
        assert_eq!(sockets.active(&tenant, "feed"), 1.0);
        panic!("handler bug");
    }));
    assert!(result.is_err());
    assert_eq!(sockets.active(&tenant, "feed"), 0.0);
}
