//! The gRPC layer on a real tonic server over loopback.

#[path = "../examples/support/orders.rs"]
#[allow(dead_code, unreachable_pub)]
mod orders;
mod support;

use std::net::SocketAddr;

use plimsoll::http::GrpcMetricsLayer;
use plimsoll::{Format, Telemetry};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;

async fn start(t: &Telemetry) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = GrpcMetricsLayer::builder(t)
        .with_tenant_header("x-tenant-id")
        .build()
        .unwrap();
    let server = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(orders::OrdersServer::new())
        .serve_with_incoming(TcpListenerStream::new(listener));
    let handle = tokio::spawn(async move {
        server.await.unwrap();
    });
    (addr, handle)
}

fn quiet() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

fn with_tenant<T>(message: T, tenant: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-tenant-id", tenant.parse().unwrap());
    request
}

/// Calls `path` with a `GetOrderRequest`, whatever the server implements.
async fn call_path(addr: SocketAddr, path: &'static str) -> tonic::Code {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let result: Result<tonic::Response<orders::Order>, tonic::Status> = grpc
        .unary(
            tonic::Request::new(orders::GetOrderRequest { id: 1 }),
            http::uri::PathAndQuery::from_static(path),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    result.map_or_else(|s| s.code(), |_| Code::Ok)
}

#[tokio::test]
async fn unary_codes_from_trailers_and_trailers_only_responses() {
    let t = quiet();
    let (addr, server) = start(&t).await;
    let mut client = orders::OrdersClient::connect(addr).await.unwrap();
    for id in 1..=3 {
        client
            .get_order(with_tenant(orders::GetOrderRequest { id }, "acme"))
            .await
            .unwrap();
    }
    let missing = client
        .get_order(with_tenant(orders::GetOrderRequest { id: 0 }, "acme"))
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    let body = t.encode(Format::Prometheus);
    let handled: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("grpc_server_handled_total"))
        .collect();
    assert_eq!(
        handled,
        [
            r#"grpc_server_handled_total{tenant_id="acme",grpc_service="orders.v1.Orders",grpc_method="GetOrder",grpc_code="OK"} 3"#,
            r#"grpc_server_handled_total{tenant_id="acme",grpc_service="orders.v1.Orders",grpc_method="GetOrder",grpc_code="NOT_FOUND"} 1"#,
        ]
    );
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "grpc_server_handling_seconds_count",
            &[("grpc_method", "GetOrder"), ("tenant_id", "acme")]
        ),
        Some(4.0)
    );
    if support::have_promtool() {
        support::promtool_check(&body).unwrap();
    }
    server.abort();
}

#[tokio::test]
async fn server_streaming_status_arrives_in_trailers() {
    let t = quiet();
    let (addr, server) = start(&t).await;
    let mut client = orders::OrdersClient::connect(addr).await.unwrap();
    let mut ok = client
        .list_orders(with_tenant(orders::ListOrdersRequest { count: 5 }, "acme"))
        .await
        .unwrap()
        .into_inner();
    let mut received = 0;
    while ok.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 5);
    // Headers and one message go out with 200; the failure is only in the trailers.
    let mut failing = client
        .list_orders(with_tenant(
            orders::ListOrdersRequest { count: 1000 },
            "acme",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(failing.message().await.unwrap().is_some());
    assert_eq!(
        failing.message().await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    drop(failing);
    let scrape = t.scrape();
    let method = [("grpc_method", "ListOrders"), ("tenant_id", "acme")];
    assert_eq!(
        scrape.value(
            "grpc_server_handled_total",
            &[method[0], method[1], ("grpc_code", "OK")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "grpc_server_handled_total",
            &[method[0], method[1], ("grpc_code", "RESOURCE_EXHAUSTED")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("grpc_server_handling_seconds_count", &method),
        Some(2.0)
    );
    server.abort();
}

#[tokio::test]
async fn unimplemented_and_invented_paths_never_become_labels() {
    let t = quiet();
    let (addr, server) = start(&t).await;
    assert_eq!(
        call_path(addr, "/orders.v1.Orders/DropTables").await,
        Code::Unimplemented
    );
    assert_eq!(
        call_path(addr, "/evil.Scanner/Probe1").await,
        Code::Unimplemented
    );
    assert_eq!(
        call_path(addr, "/evil.Scanner/Probe2").await,
        Code::Unimplemented
    );
    assert_eq!(call_path(addr, orders::GET_ORDER_PATH).await, Code::Ok);
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "grpc_server_handled_total",
            &[
                ("grpc_service", "__unmatched__"),
                ("grpc_method", "__unmatched__"),
                ("grpc_code", "UNIMPLEMENTED")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(scrape.series_count("grpc_server_handled_total"), 2);
    let body = t.encode(Format::Prometheus);
    assert!(!body.contains("evil") && !body.contains("DropTables"));
    // Calls without tenant metadata are recorded under __unknown__.
    assert_eq!(
        scrape.value(
            "grpc_server_handled_total",
            &[("grpc_code", "OK"), ("tenant_id", "__unknown__")]
        ),
        Some(1.0)
    );
    server.abort();
}

/// Keeps what the request observer saw: route, tenant, queries.
#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<(String, String, Option<u32>)>>);

impl plimsoll::scope::RequestObserver for Seen {
    fn request_ended(&self, route: &str, scope: &plimsoll::scope::Scope) {
        self.0.lock().unwrap().push((
            route.to_string(),
            scope.tenant().as_str().to_string(),
            scope.queries(),
        ));
    }
}

#[tokio::test]
async fn request_observers_see_each_call_end_with_its_bounded_route() {
    let t = quiet();
    let seen = std::sync::Arc::new(Seen::default());
    t.observe_requests(seen.clone());
    let (addr, server) = start(&t).await;
    assert_eq!(call_path(addr, orders::GET_ORDER_PATH).await, Code::Ok);
    assert_eq!(
        call_path(addr, "/evil.Scanner/Probe1").await,
        Code::Unimplemented
    );
    // The call ends with its trailers, after the client has its answer.
    for _ in 0..100 {
        if seen.0.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let seen = seen.0.lock().unwrap();
    assert_eq!(
        *seen,
        vec![
            (
                orders::GET_ORDER_PATH.to_string(),
                "__unknown__".to_string(),
                Some(0)
            ),
            (
                "/__unmatched__/__unmatched__".to_string(),
                "__unknown__".to_string(),
                Some(0)
            ),
        ]
    );
    server.abort();
}

#[tokio::test]
async fn outbound_layer_times_calls_over_a_tonic_channel() {
    let server_side = quiet();
    let (addr, server) = start(&server_side).await;
    let t = quiet();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let layer = plimsoll::http::ExternalCallLayer::builder(&t, "orders")
        .build()
        .unwrap();
    let channel = tower::ServiceBuilder::new().layer(layer).service(channel);
    let mut grpc = tonic::client::Grpc::new(channel);
    for id in [1, 2] {
        grpc.ready().await.unwrap();
        let _: tonic::Response<orders::Order> = grpc
            .unary(
                tonic::Request::new(orders::GetOrderRequest { id }),
                http::uri::PathAndQuery::from_static(orders::GET_ORDER_PATH),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap();
    }
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "external_api_duration_seconds_count",
            &[
                ("service", "orders"),
                ("endpoint", orders::GET_ORDER_PATH),
                ("status_code", "200"),
                ("tenant_id", "__system__")
            ]
        ),
        Some(2.0)
    );
    server.abort();
}
