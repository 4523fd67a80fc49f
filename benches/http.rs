//! Per-request overhead of the RED layer, in process (router `oneshot`).
//!
//! Three variants in one run, same router and request: `bare` (no layer),
//! `red` (the RED layer, tenant from a `Tenant` extension set by an outer
//! middleware-like step), `red_tenant_header` (tenant read from the
//! `x-tenant-id` header, validated and bounded). Each request is a
//! `GET /api/v1/orders/{id}` whose body is read to the end.
//!
//! Run: `cargo bench --bench http --features http`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use plimsoll::Telemetry;
use plimsoll::http::RedMetricsLayer;
use tower::ServiceExt;

async fn order(Path(id): Path<u64>) -> String {
    format!("order {id}")
}

fn router() -> Router {
    Router::new()
        .route("/api/v1/orders/{id}", get(order))
        .route("/api/v1/orders", get(|| async { "orders" }))
}

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

/// Runs `iters` requests through `app` on a current-thread runtime.
fn run(
    rt: &tokio::runtime::Runtime,
    app: &Router,
    iters: u64,
    header: bool,
    tenant: Option<&plimsoll::Tenant>,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let mut req = Request::get(format!("/api/v1/orders/{}", i % 64));
            if header {
                req = req.header("x-tenant-id", "acme");
            }
            let mut req = req.body(Body::empty()).unwrap();
            if let Some(tenant) = tenant {
                req.extensions_mut().insert(tenant.clone());
            }
            let response = app.clone().oneshot(req).await.unwrap();
            black_box(
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap(),
            );
        }
        start.elapsed()
    })
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = router();
    let t1 = telemetry();
    let red = router().layer(RedMetricsLayer::new(&t1).unwrap());
    let acme = t1.tenant("acme");
    let t2 = telemetry();
    let red_header = router().layer(
        RedMetricsLayer::builder(&t2)
            .with_tenant_header("x-tenant-id")
            .build()
            .unwrap(),
    );

    let mut group = c.benchmark_group("http_request");
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| run(&rt, &bare, iters, false, None))
    });
    group.bench_function("red", |b| {
        b.iter_custom(|iters| run(&rt, &red, iters, false, Some(&acme)))
    });
    group.bench_function("red_tenant_header", |b| {
        b.iter_custom(|iters| run(&rt, &red_header, iters, true, None))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = overhead
}
criterion_main!(benches);
