//! A gRPC service (tonic) with plimsoll's gRPC metrics and a `/metrics`
//! endpoint on its own port. No protoc needed: the service code that
//! tonic-build would generate is written out in `support/orders.rs`.
//!
//! Shows: `GrpcMetricsLayer` on a tonic server (unary and server-streaming
//! calls, codes read from trailers), tenants from the `x-tenant-id`
//! metadata, and the standalone `/metrics` server for services without axum.
//!
//! Run: `cargo run --example tonic_service --features full`
//! (gRPC on `PLIMSOLL_GRPC_ADDR`, default `127.0.0.1:50051`; metrics on
//! `PLIMSOLL_METRICS_ADDR`, default `127.0.0.1:9464`). With `--demo` it
//! also makes a few calls to itself, prints the metrics and exits.

#[path = "support/orders.rs"]
#[allow(dead_code, unreachable_pub)]
mod orders;

use plimsoll::Telemetry;
use plimsoll::http::{GrpcMetricsLayer, MetricsService, serve_metrics};
use tokio_stream::wrappers::TcpListenerStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = Telemetry::builder()
        .with_const_label("environment", "dev")
        .with_build_info(plimsoll::BuildInfo::new(
            "orders-grpc",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()?;
    let grpc_addr =
        std::env::var("PLIMSOLL_GRPC_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let metrics_addr =
        std::env::var("PLIMSOLL_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".into());

    let grpc_listener = tokio::net::TcpListener::bind(&grpc_addr).await?;
    let metrics_listener = tokio::net::TcpListener::bind(&metrics_addr).await?;
    let grpc_local = grpc_listener.local_addr()?;
    println!("orders-grpc serving orders.v1.Orders on {grpc_local}");
    println!(
        "  metrics: http://{}/metrics",
        metrics_listener.local_addr()?
    );

    tokio::spawn(serve_metrics(
        metrics_listener,
        MetricsService::new(&telemetry),
    ));
    let layer = GrpcMetricsLayer::builder(&telemetry)
        .with_tenant_header("x-tenant-id")
        .build()?;
    let server = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(orders::OrdersServer::new())
        .serve_with_incoming(TcpListenerStream::new(grpc_listener));

    if std::env::args().any(|a| a == "--demo") {
        let server = tokio::spawn(server);
        let mut client = orders::OrdersClient::connect(grpc_local).await?;
        let mut request = tonic::Request::new(orders::GetOrderRequest { id: 7 });
        request
            .metadata_mut()
            .insert("x-tenant-id", "acme".parse()?);
        println!(
            "GetOrder(7) -> {:?}",
            client.get_order(request).await?.into_inner()
        );
        let missing = client.get_order(orders::GetOrderRequest { id: 0 }).await;
        println!(
            "GetOrder(0) -> {:?}",
            missing.map(|r| r.into_inner()).map_err(|s| s.code())
        );
        let mut stream = client
            .list_orders(orders::ListOrdersRequest { count: 3 })
            .await?
            .into_inner();
        while let Some(order) = stream.message().await? {
            println!("ListOrders -> {order:?}");
        }
        print!("{}", telemetry.encode(plimsoll::Format::Prometheus));
        server.abort();
        return Ok(());
    }
    server.await?;
    Ok(())
}
