//! Random paths and random tenant headers against the RED layer: series
//! counts stay at their bounds and memory stays flat. (The loopback version
//! with a million requests is `scripts/load.sh`.)

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use plimsoll::http::RedMetricsLayer;
use plimsoll::{Format, Telemetry};
use tower::ServiceExt;

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// xorshift: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "current_thread")]
async fn random_paths_and_tenants_stay_within_bounds() {
    const MAX_TENANTS: usize = 50;
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(MAX_TENANTS)
        .build()
        .unwrap();
    let red = RedMetricsLayer::builder(&t)
        .with_tenant_header("x-tenant-id")
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api/v1/orders/{id}", get(|| async { "order" }))
        .layer(red);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut send = async |n: usize| {
        for _ in 0..n {
            let r = rng.next();
            let path = if r.is_multiple_of(2) {
                format!("/api/v1/orders/{}", r >> 8)
            } else {
                format!("/{:x}/{}?x={}", r, r >> 3, r >> 5)
            };
            let tenant = match r % 7 {
                0 => format!("bad tenant {r}"),
                1 => format!("__{r}"),
                _ => format!("t-{}", rng.next() % 100_000),
            };
            let req = http::Request::get(path)
                .header("x-tenant-id", tenant)
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
        }
    };
    send(5_000).await;
    let before = rss_bytes();
    send(100_000).await;
    let after = rss_bytes();

    let scrape = t.scrape();
    // At most 50 admitted tenants + __other__ + __unknown__, × (matched 200, unmatched 404).
    let bound = (MAX_TENANTS + 2) * 2;
    let series = scrape.series_count("http_requests_total");
    assert!(series <= bound, "{series} series");
    assert_eq!(scrape.series_count("http_requests_in_flight"), series);
    for tenant in ["__other__", "__unknown__"] {
        for route in ["/api/v1/orders/{id}", "__unmatched__"] {
            let v = scrape.value(
                "http_requests_total",
                &[("tenant_id", tenant), ("route", route)],
            );
            assert!(v.is_some_and(|v| v > 1000.0), "{tenant} {route}: {v:?}");
        }
    }
    assert_eq!(scrape.sum("http_requests_total", &[]), 105_000.0);
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
    let body = t.encode(Format::Prometheus);
    assert!(!body.contains("bad tenant") && !body.contains("/api/v1/orders/1"));
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        assert!(growth < 16 << 20, "RSS grew by {growth} bytes");
    }
}
