//! Queries per request, end to end: the HTTP layer counts the queries each
//! request runs; `db_queries_per_request{route}` records them and a request
//! past the threshold logs a warning naming its route and tenant (the N+1
//! query). Slow queries log their shape, never their values. In its own
//! test binary, as it listens to `tracing`.
#![cfg(all(feature = "http", feature = "sqlx"))]

#[path = "support/capture.rs"]
mod capture;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::get;
use capture::{Capture, Captured};
use plimsoll::Telemetry;
use plimsoll::http::RedMetricsLayer;
use plimsoll::sqlx::{MeteredPool, SqlxMetrics};
use sqlx::Sqlite;
use sqlx::sqlite::SqlitePoolOptions;
use tower::ServiceExt;

/// Runs `n` queries, one per order: the N+1 shape.
async fn orders(State(db): State<MeteredPool<Sqlite>>, Path(n): Path<u32>) -> String {
    let mut total = 0_i64;
    for id in 0..n {
        let found: Option<i64> = sqlx::query_scalar("SELECT total FROM orders WHERE id = ?")
            .bind(i64::from(id))
            .fetch_optional(&db)
            .await
            .unwrap();
        total += found.unwrap_or(0);
    }
    total.to_string()
}

async fn send(app: &Router, uri: &str, tenant: &str) {
    let request = http::Request::get(uri)
        .header("x-tenant-id", tenant)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
}

#[tokio::test]
async fn queries_per_request_and_the_warnings() {
    let capture = Capture::default();
    let events = capture.events.clone();
    let _listening = tracing::subscriber::set_default(capture);
    tracing::callsite::rebuild_interest_cache();

    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let metrics = SqlxMetrics::builder(&t)
        .queries_per_request_warning(5)
        .slow_query(Duration::from_nanos(1))
        .build()
        .unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER, email TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    let db = metrics.instrument(pool, "main");
    let app = Router::new()
        .route("/orders/{n}", get(orders))
        .with_state(db.clone())
        .layer(
            RedMetricsLayer::builder(&t)
                .with_tenant_header("x-tenant-id")
                .build()
                .unwrap(),
        );

    send(&app, "/orders/0", "acme").await;
    send(&app, "/orders/3", "acme").await;
    send(&app, "/orders/5", "acme").await;
    send(&app, "/orders/12", "globex").await;
    // Outside any request: counted nowhere, and no route.
    sqlx::query("SELECT count(*) FROM orders WHERE email = 'ann@example.com'")
        .fetch_one(&db)
        .await
        .unwrap();

    let s = t.scrape();
    let route = [("route", "/orders/{n}")];
    let acme = [("tenant_id", "acme"), route[0]];
    let globex = [("tenant_id", "globex"), route[0]];
    assert_eq!(s.value("db_queries_per_request_count", &acme), Some(3.0));
    assert_eq!(s.value("db_queries_per_request_sum", &acme), Some(8.0));
    assert_eq!(s.value("db_queries_per_request_count", &globex), Some(1.0));
    assert_eq!(s.value("db_queries_per_request_sum", &globex), Some(12.0));
    let bucket = |le: &str| {
        s.value(
            "db_queries_per_request_bucket",
            &[("tenant_id", "acme"), route[0], ("le", le)],
        )
    };
    assert_eq!(bucket("0.0"), Some(1.0));
    assert_eq!(bucket("3.0"), Some(2.0));
    assert_eq!(bucket("5.0"), Some(3.0));
    // The queries carry the request's tenant.
    assert_eq!(
        s.sum(
            "db_query_duration_seconds_count",
            &[("tenant_id", "acme"), ("table", "orders")]
        ),
        8.0
    );
    assert_eq!(
        s.sum(
            "db_query_duration_seconds_count",
            &[("tenant_id", "__system__"), ("table", "orders")]
        ),
        1.0
    );

    let events = events.lock().unwrap();
    let warnings = |message: &str| -> Vec<&Captured> {
        events
            .iter()
            .filter(|e| {
                e.level == tracing::Level::WARN
                    && e.target == "plimsoll::sqlx"
                    && e.fields.get("message").is_some_and(|m| m.contains(message))
            })
            .collect()
    };
    // Only the request past 5 queries warns, naming route, tenant and count.
    let n_plus_one = warnings("more queries than the threshold");
    assert_eq!(n_plus_one.len(), 1, "{events:#?}");
    let fields = &n_plus_one[0].fields;
    assert_eq!(fields["route"], "/orders/{n}");
    assert_eq!(fields["tenant"], "globex");
    assert_eq!(fields["queries"], "12");
    assert_eq!(fields["threshold"], "5");
    // Every query is slow at 1 ns: each logs its shape, never its values.
    let slow = warnings("slow query");
    assert_eq!(slow.len(), 21, "20 in requests, 1 outside");
    assert!(
        slow.iter().all(
            |e| e.fields["statement"] == "SELECT total FROM orders WHERE id = ?"
                || e.fields["statement"] == "SELECT count (*) FROM orders WHERE email = ?"
        ),
        "{slow:#?}"
    );
    assert!(!format!("{events:?}").contains("ann@example.com"));
    assert_eq!(slow[0].fields["table"], "orders");
    assert_eq!(slow[0].fields["tenant"], "acme");
}
