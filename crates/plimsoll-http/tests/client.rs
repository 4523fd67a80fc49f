//! The outbound call layer and timing helper against a real local server.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use plimsoll_core::classify::Outcome;
use plimsoll_core::scope::Scope;
use plimsoll_core::{Telemetry, Tenant};
use plimsoll_http::ExternalCallLayer;
use plimsoll_http::client::ExternalCalls;
use tower::{ServiceBuilder, ServiceExt};

async fn downstream() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/v1/charges/{id}", get(|| async { "charged" }))
        .route(
            "/v1/refunds",
            get(|| async { (StatusCode::CONFLICT, "no") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

#[tokio::test]
async fn layer_records_status_codes_with_bounded_templated_endpoints() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let addr = downstream().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let layer = ExternalCallLayer::builder(&t, "payments")
        .with_endpoint(|_, uri| {
            // Templates, not raw ids.
            let path = uri.path();
            match path.strip_prefix("/v1/charges/") {
                Some(_) => "/v1/charges/{id}".to_string(),
                None => path.to_string(),
            }
        })
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(client);
    let acme = t.tenant("acme");
    for id in 0..5 {
        let mut req = http::Request::get(format!("http://{addr}/v1/charges/{id}"))
            .body(Empty::new())
            .unwrap();
        req.extensions_mut().insert(acme.clone());
        let res = svc.clone().oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
    }
    let req = http::Request::get(format!("http://{addr}/v1/refunds"))
        .body(Empty::new())
        .unwrap();
    svc.clone()
        .oneshot(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    // Nothing listens there: a transport error.
    let req = http::Request::get("http://127.0.0.1:1/v1/refunds")
        .body(Empty::new())
        .unwrap();
    assert!(svc.clone().oneshot(req).await.is_err());

    let scrape = t.scrape();
    let count =
        |labels: &[(&str, &str)]| scrape.value("external_api_duration_seconds_count", labels);
    assert_eq!(
        count(&[
            ("tenant_id", "acme"),
            ("service", "payments"),
            ("endpoint", "/v1/charges/{id}"),
            ("status_code", "200")
        ]),
        Some(5.0)
    );
    assert_eq!(
        count(&[
            ("tenant_id", "__system__"),
            ("endpoint", "/v1/refunds"),
            ("status_code", "409")
        ]),
        Some(1.0)
    );
    assert_eq!(
        count(&[("endpoint", "/v1/refunds"), ("status_code", "error")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.series_count("external_api_duration_seconds_count"),
        3
    );
}

#[tokio::test]
async fn raw_endpoints_are_bounded() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let calls = ExternalCalls::new(&t).unwrap();
    let tenant = Tenant::system();
    for i in 0..(plimsoll_http::client::DEFAULT_MAX_ENDPOINTS + 50) {
        calls.record(
            &tenant,
            "search",
            &format!("/q/{i}"),
            Outcome::Http(200),
            0.01,
        );
    }
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "external_api_duration_seconds_count",
            &[("endpoint", "__other__")]
        ),
        Some(50.0)
    );
    assert_eq!(
        scrape.value(
            "plimsoll_cardinality_overflow_total",
            &[
                ("metric", "external_api_duration_seconds"),
                ("label", "endpoint")
            ]
        ),
        Some(50.0)
    );
}

#[tokio::test]
async fn timed_futures_record_ok_error_and_cancelled() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let calls = ExternalCalls::new(&t).unwrap();
    let acme = t.tenant("acme");
    // Inside a request scope the calls carry its tenant without being given it.
    Scope::new(acme.clone())
        .run(async {
            let ok: Result<(), ()> = calls.time("sdk", "put", async { Ok(()) }).await;
            assert!(ok.is_ok());
            let err: Result<(), &str> = calls.time("sdk", "put", async { Err("denied") }).await;
            assert!(err.is_err());
            let slow = calls.time("sdk", "put", async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<(), ()>(())
            });
            assert!(
                tokio::time::timeout(Duration::from_millis(20), slow)
                    .await
                    .is_err()
            );
        })
        .await;
    for status in [Outcome::Ok, Outcome::Error("error"), Outcome::Cancelled] {
        assert_eq!(calls.count(&acme, "sdk", "put", status), 1, "{status:?}");
    }
    // Outside any request: `__system__`.
    let _: Result<(), ()> = calls.time("sdk", "put", async { Ok(()) }).await;
    assert_eq!(calls.count(&Tenant::system(), "sdk", "put", Outcome::Ok), 1);
}

#[cfg(feature = "server")]
#[tokio::test]
async fn standalone_metrics_server_serves_only_metrics() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    t.counter::<()>("jobs", "Jobs.")
        .unwrap()
        .inc(&t.tenant("acme"), &());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(plimsoll_http::serve_metrics(
        listener,
        plimsoll_http::MetricsService::new(&t).with_bearer_token("tok"),
    ));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let get = |path: &str, token: Option<&str>| {
        let mut req = http::Request::get(format!("http://{addr}{path}"));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        client.request(req.body(Empty::new()).unwrap())
    };
    let ok = get("/metrics", Some("tok")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = ok.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{tenant_id=\"acme\"} 1\n"
    );
    assert_eq!(
        get("/metrics", None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/other", Some("tok")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    server.abort();
}
