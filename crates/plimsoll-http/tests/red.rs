//! The RED layer against real axum routers, in process and over TCP.

#[path = "../../../tests/support/capture.rs"]
mod capture;
mod support;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use support::wait_for;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body::Frame;
use plimsoll_core::{Format, Naming, Telemetry, Tenant};
use plimsoll_http::{MetricsService, RedMetricsLayer, metrics_router};
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

fn layer(t: &Telemetry) -> RedMetricsLayer {
    RedMetricsLayer::builder(t)
        .with_tenant_header("x-tenant-id")
        .with_ignored_paths(["/metrics", "/health"])
        .build()
        .unwrap()
}

async fn send(app: &Router, req: http::request::Builder) -> (StatusCode, Bytes) {
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
}

fn get_req(path: &str, tenant: &str) -> http::request::Builder {
    http::Request::get(path).header("x-tenant-id", tenant)
}

fn api() -> Router {
    let orders = Router::new()
        .route("/orders", post(|| async { (StatusCode::CREATED, "made") }))
        .route("/orders/{id}", get(|| async { "an order" }))
        .route("/boom", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    Router::new()
        .nest("/api/v1", orders)
        .route("/health", get(|| async { "ok" }))
}

#[tokio::test]
async fn route_templates_from_nested_routers_and_exact_series() {
    let t = telemetry();
    let app = api().layer(layer(&t));
    for id in [1, 2, 3] {
        send(&app, get_req(&format!("/api/v1/orders/{id}"), "acme")).await;
    }
    send(
        &app,
        http::Request::post("/api/v1/orders").header("x-tenant-id", "acme"),
    )
    .await;
    send(&app, get_req("/api/v1/boom", "globex")).await;
    let body = t.encode(Format::Prometheus);
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("http_requests_total") || l.starts_with("http_request_errors_total")
        })
        .collect();
    assert_eq!(
        lines,
        [
            r#"http_requests_total{tenant_id="acme",method="GET",route="/api/v1/orders/{id}",status_code="200"} 3"#,
            r#"http_requests_total{tenant_id="acme",method="POST",route="/api/v1/orders",status_code="201"} 1"#,
            r#"http_requests_total{tenant_id="globex",method="GET",route="/api/v1/boom",status_code="503"} 1"#,
            r#"http_request_errors_total{tenant_id="globex",method="GET",route="/api/v1/boom",error_type="server_error"} 1"#,
        ]
    );
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "http_request_duration_seconds_count",
            &[("route", "/api/v1/orders/{id}"), ("tenant_id", "acme")]
        ),
        Some(3.0)
    );
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
}

#[tokio::test]
async fn unmatched_paths_share_one_series_and_never_leak_the_raw_path() {
    let t = telemetry();
    let app = api().layer(layer(&t));
    for i in 0..500 {
        let (status, _) = send(&app, get_req(&format!("/wp-admin/{i}/x.php?q={i}"), "acme")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 1);
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[("route", "__unmatched__"), ("status_code", "404")]
        ),
        Some(500.0)
    );
    assert!(!t.encode(Format::Prometheus).contains("wp-admin"));
}

#[tokio::test]
async fn invented_methods_share_one_method_label() {
    let t = telemetry();
    let app = api().layer(layer(&t));
    for method in ["BREW", "PROPFIND", "X-ANYTHING-GOES"] {
        let req = http::Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri("/api/v1/orders/1")
            .header("x-tenant-id", "acme");
        let (status, _) = send(&app, req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 1);
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[
                ("method", "_OTHER"),
                ("route", "/api/v1/orders/{id}"),
                ("status_code", "405")
            ]
        ),
        Some(3.0)
    );
    let text = t.encode(Format::Prometheus);
    assert!(
        !text.contains("BREW") && !text.contains("PROPFIND"),
        "{text}"
    );
}

#[tokio::test]
async fn ignored_paths_are_absent() {
    let t = telemetry();
    let app = api()
        .merge(metrics_router(MetricsService::new(&t)))
        .layer(layer(&t));
    send(&app, get_req("/health", "acme")).await;
    send(&app, get_req("/metrics", "acme")).await;
    send(&app, get_req("/api/v1/orders/1", "acme")).await;
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 1);
    assert_eq!(
        scrape
            .find("http_requests_total", &[("route", "/health")])
            .count(),
        0
    );
    assert_eq!(
        scrape
            .find("http_requests_in_flight", &[("route", "/metrics")])
            .count(),
        0
    );
}

#[tokio::test]
async fn tenant_from_the_extension_beats_the_header() {
    let t = telemetry();
    let trusted = t.tenant("trusted");
    let auth = move |mut req: Request, next: Next| {
        let trusted = trusted.clone();
        async move {
            req.extensions_mut().insert(trusted);
            next.run(req).await
        }
    };
    let app = api().layer(layer(&t)).layer(middleware::from_fn(auth));
    send(&app, get_req("/api/v1/orders/1", "spoofed")).await;
    let scrape = t.scrape();
    assert_eq!(
        scrape.value("http_requests_total", &[("tenant_id", "trusted")]),
        Some(1.0)
    );
    assert_eq!(
        scrape
            .find("http_requests_total", &[("tenant_id", "spoofed")])
            .count(),
        0
    );
}

#[tokio::test]
async fn custom_resolver_runs_before_the_header() {
    let t = telemetry();
    let t2 = t.clone();
    let red = RedMetricsLayer::builder(&t)
        .with_tenant_header("x-tenant-id")
        .with_tenant_resolver(move |headers, _| {
            let key = headers.get("x-api-key")?.to_str().ok()?;
            Some(t2.tenant(key.strip_prefix("key-")?))
        })
        .build()
        .unwrap();
    let app = api().layer(red);
    send(
        &app,
        get_req("/api/v1/orders/1", "from-header").header("x-api-key", "key-from-key"),
    )
    .await;
    send(&app, get_req("/api/v1/orders/1", "from-header")).await;
    let scrape = t.scrape();
    assert_eq!(
        scrape.value("http_requests_total", &[("tenant_id", "from-key")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("http_requests_total", &[("tenant_id", "from-header")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn invalid_tenant_headers_never_reach_a_label() {
    let t = telemetry();
    let app = api().layer(layer(&t));
    let long = "t".repeat(65);
    let hostile: Vec<HeaderValue> = vec![
        HeaderValue::from_static("a b"),
        HeaderValue::from_static("x\"y"),
        HeaderValue::from_static("__system__"),
        HeaderValue::from_static("__other__"),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_bytes(b"\xff\xfe\xc3\x28").unwrap(),
        HeaderValue::from_static(""),
    ];
    for value in &hostile {
        send(
            &app,
            http::Request::get("/api/v1/orders/1").header("x-tenant-id", value.clone()),
        )
        .await;
    }
    send(&app, http::Request::get("/api/v1/orders/1")).await;
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 1);
    assert_eq!(
        scrape.value("http_requests_total", &[("tenant_id", "__unknown__")]),
        Some(hostile.len() as f64 + 1.0)
    );
    let body = t.encode(Format::Prometheus);
    assert!(!body.contains("ttttt") && !body.contains("a b") && !body.contains('\u{fffd}'));
}

#[tokio::test]
async fn tenants_past_the_bound_are_folded_and_counted() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(3)
        .build()
        .unwrap();
    let app = api().layer(layer(&t));
    for i in 0..10 {
        send(&app, get_req("/api/v1/orders/1", &format!("tenant-{i}"))).await;
    }
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 4);
    assert_eq!(
        scrape.value("http_requests_total", &[("tenant_id", "__other__")]),
        Some(7.0)
    );
    assert_eq!(
        scrape.value(
            "plimsoll_cardinality_overflow_total",
            &[
                ("metric", "http_request_duration_seconds"),
                ("label", "tenant_id")
            ]
        ),
        Some(7.0)
    );
}

fn slow_app(t: &Telemetry) -> Router {
    Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .layer(layer(t))
}

#[tokio::test]
async fn cancelled_requests_count_as_499_and_in_flight_returns_to_zero() {
    let t = telemetry();
    let app = slow_app(&t);
    let task = tokio::spawn({
        let app = app.clone();
        async move { send(&app, get_req("/slow", "acme")).await }
    });
    wait_for(&t, |s| {
        s.sum("http_requests_in_flight", &[("route", "/slow")]) == 1.0
    })
    .await;
    task.abort();
    let _ = task.await;
    // A timeout dropping the future counts the same way.
    let timed_out = tokio::time::timeout(
        Duration::from_millis(50),
        send(&app, get_req("/slow", "acme")),
    )
    .await;
    assert!(timed_out.is_err());
    let scrape = t.scrape();
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[("route", "/slow"), ("status_code", "499")]
        ),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "http_request_errors_total",
            &[("route", "/slow"), ("error_type", "cancelled")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn client_disconnect_over_tcp_is_cancelled_and_in_flight_returns_to_zero() {
    let t = telemetry();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, slow_app(&t)).into_future());
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nx-tenant-id: acme\r\n\r\n")
            .await
            .unwrap();
        wait_for(&t, |s| s.sum("http_requests_in_flight", &[]) == 1.0).await;
        drop(stream);
        wait_for(&t, |s| s.sum("http_requests_in_flight", &[]) == 0.0).await;
    }
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[("tenant_id", "acme"), ("status_code", "499")]
        ),
        Some(3.0)
    );
    server.abort();
}

/// A minimal catch-panic service: a panic in the inner future becomes a 500.
#[derive(Clone)]
struct CatchPanic<S>(S);

struct CatchPanicFuture<F>(Pin<Box<F>>);

impl<F: Future<Output = Result<Response, Infallible>>> Future for CatchPanicFuture<F> {
    type Output = Result<Response, Infallible>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(polled) => polled,
            Err(_) => {
                let mut response = Response::new(Body::from("panicked"));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                Poll::Ready(Ok(response))
            }
        }
    }
}

impl<S> tower::Service<Request> for CatchPanic<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CatchPanicFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: Request) -> Self::Future {
        CatchPanicFuture(Box::pin(self.0.call(req)))
    }
}

#[tokio::test]
async fn a_panicking_handler_counts_as_a_500() {
    let t = telemetry();
    let app = Router::new()
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "never"
            }),
        )
        .layer(layer(&t));
    let response = CatchPanic(app)
        .oneshot(get_req("/panic", "acme").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[("route", "/panic"), ("status_code", "500")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "http_request_errors_total",
            &[("error_type", "server_error")]
        ),
        Some(1.0)
    );
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
}

/// A body of `chunks` chunks, each after `delay`.
struct SlowBody {
    chunks: u32,
    delay: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.chunks == 0 {
            return Poll::Ready(None);
        }
        let delay = self.delay;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        std::task::ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.chunks -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"data: tick\n\n")))))
    }
}

#[tokio::test]
async fn streams_are_timed_to_end_of_body_or_to_headers_where_configured() {
    let t = telemetry();
    let stream = || async {
        Body::new(SlowBody {
            chunks: 3,
            delay: Duration::from_millis(200),
            sleep: None,
        })
    };
    let red = RedMetricsLayer::builder(&t)
        .with_header_timing(["/events/headers"])
        .with_body_sizes(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/events/body", get(stream))
        .route("/events/headers", get(stream))
        .layer(red);
    let (_, body) = send(&app, http::Request::get("/events/body")).await;
    assert_eq!(body.len(), 36);
    send(&app, http::Request::get("/events/headers")).await;
    let scrape = t.scrape();
    let to_end = scrape
        .value(
            "http_request_duration_seconds_sum",
            &[("route", "/events/body")],
        )
        .unwrap();
    let to_headers = scrape
        .value(
            "http_request_duration_seconds_sum",
            &[("route", "/events/headers")],
        )
        .unwrap();
    assert!(to_end >= 0.6, "timed to end of body: {to_end}");
    assert!(to_headers < 0.5, "timed to headers: {to_headers}");
    assert_eq!(
        scrape.value("http_response_size_bytes_sum", &[("route", "/events/body")]),
        Some(36.0)
    );
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
}

#[tokio::test]
async fn body_sizes_from_content_length_and_bytes_sent() {
    let t = telemetry();
    let red = RedMetricsLayer::builder(&t)
        .with_body_sizes(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/echo", post(|body: Bytes| async move { body }))
        .layer(red);
    let response = app
        .clone()
        .oneshot(
            http::Request::post("/echo")
                .header("content-length", "5")
                .body(Body::from("hello"))
                .unwrap(),
        )
        .await
        .unwrap();
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let scrape = t.scrape();
    assert_eq!(
        scrape.value("http_request_size_bytes_sum", &[("route", "/echo")]),
        Some(5.0)
    );
    assert_eq!(
        scrape.value("http_response_size_bytes_sum", &[("route", "/echo")]),
        Some(5.0)
    );
}

#[tokio::test]
async fn opentelemetry_naming_scheme() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_naming(Naming::OpenTelemetry)
        .build()
        .unwrap();
    let app = api().layer(layer(&t));
    send(&app, get_req("/api/v1/orders/7", "acme")).await;
    let scrape = t.scrape();
    let labels = [
        ("http_request_method", "GET"),
        ("http_route", "/api/v1/orders/{id}"),
        ("http_response_status_code", "200"),
        ("tenant_id", "acme"),
    ];
    assert_eq!(
        scrape.value("http_server_request_duration_seconds_count", &labels),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("http_server_requests_total", &labels),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "http_server_active_requests",
            &[("http_route", "/api/v1/orders/{id}")]
        ),
        Some(0.0)
    );
    assert_eq!(scrape.series_count("http_requests_total"), 0);
}

#[tokio::test]
async fn traceparent_becomes_the_latency_exemplar() {
    let t = telemetry();
    let app = api().layer(layer(&t));
    send(
        &app,
        get_req("/api/v1/orders/1", "acme").header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    )
    .await;
    let scrape = t.scrape();
    let exemplar = scrape
        .find(
            "http_request_duration_seconds_bucket",
            &[("tenant_id", "acme")],
        )
        .find_map(|s| s.exemplar.clone())
        .expect("an exemplar");
    assert_eq!(
        exemplar.labels["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(exemplar.labels["span_id"], "00f067aa0ba902b7");
}

#[tokio::test]
async fn custom_route_extractor_is_bounded() {
    let t = telemetry();
    let red = RedMetricsLayer::builder(&t)
        .with_route_extractor(|uri, _| Some(uri.path().to_string()))
        .with_max_routes(5)
        .build()
        .unwrap();
    let svc = tower::service_fn(|_req: http::Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    });
    let svc = tower::Layer::layer(&red, svc);
    for i in 0..50 {
        let response = svc
            .clone()
            .oneshot(
                http::Request::get(format!("/items/{i}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        axum::body::to_bytes(Body::new(response.into_body()), usize::MAX)
            .await
            .unwrap();
    }
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 6);
    assert_eq!(
        scrape.value("http_requests_total", &[("route", "__other__")]),
        Some(45.0)
    );
    assert_eq!(
        scrape.value(
            "plimsoll_cardinality_overflow_total",
            &[
                ("metric", "http_request_duration_seconds"),
                ("label", "route")
            ]
        ),
        Some(45.0)
    );
}

#[tokio::test]
async fn metrics_endpoint_negotiates_and_checks_the_bearer_token() {
    let t = telemetry();
    let app = api()
        .merge(metrics_router(
            MetricsService::new(&t).with_bearer_token("s3cret"),
        ))
        .layer(layer(&t));
    send(&app, get_req("/api/v1/orders/1", "acme")).await;
    let (status, _) = send(&app, http::Request::get("/metrics")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        &app,
        http::Request::get("/metrics").header("authorization", "Bearer wrong!"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = app
        .clone()
        .oneshot(
            http::Request::get("/metrics")
                .header("authorization", "Bearer s3cret")
                .header("accept", "application/openmetrics-text; version=1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = std::str::from_utf8(&body).unwrap();
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains(r#"http_requests_total{tenant_id="acme",method="GET",route="/api/v1/orders/{id}",status_code="200"} 1"#));
}

#[test]
fn slow_requests_are_logged_with_route_tenant_status_and_duration() {
    let t = telemetry();
    let capture = capture::Capture::default();
    let events = capture.events.clone();
    let _guard = tracing::subscriber::set_default(capture);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let red = RedMetricsLayer::builder(&t)
            .with_tenant_header("x-tenant-id")
            .with_slow_request_threshold(Duration::from_millis(50))
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                    "late"
                }),
            )
            .route("/fast", get(|| async { "quick" }))
            .layer(red);
        send(&app, get_req("/slow", "acme")).await;
        send(&app, get_req("/fast", "acme")).await;
    });
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let fields = &events[0].fields;
    assert_eq!(fields["route"], "/slow");
    assert_eq!(fields["tenant"], "acme");
    assert_eq!(fields["status"], "200");
    assert_eq!(fields["message"], "slow request");
}

#[test]
fn builder_errors_name_the_field() {
    let t = telemetry();
    let err = RedMetricsLayer::builder(&t)
        .with_tenant_header("bad header\n")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tenant_header: \"bad header\\n\" is not a valid header name"
    );
    let err = RedMetricsLayer::builder(&t)
        .with_max_routes(0)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_routes: must be at least 1");
}

#[tokio::test]
async fn the_tenant_extension_is_a_plain_request_extension() {
    // Services that resolve tenants elsewhere insert the resolved Tenant.
    let t = telemetry();
    let app = api().layer(layer(&t));
    let mut req = http::Request::get("/api/v1/orders/1")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(Tenant::system());
    app.oneshot(req).await.unwrap();
    assert_eq!(
        t.scrape()
            .value("http_requests_total", &[("tenant_id", "__system__")]),
        Some(1.0)
    );
}

/// Warm requests find their series through a per-thread memo keyed by the
/// addresses of label values. Routers are built and dropped in turn behind
/// one layer, with route templates of one length (so that the allocator
/// reuses addresses), and two layers share the thread: every request must
/// still land in its own route's series, in its own telemetry.
#[tokio::test(flavor = "current_thread")]
async fn remembered_series_follow_the_route_value_and_the_layer() {
    let (t, other) = (telemetry(), telemetry());
    let red = layer(&t);
    let other_app = api().layer(layer(&other));
    for i in 0..40 {
        let route = format!("/r{i:02}/{{id}}");
        let app = Router::new()
            .route(&route, get(|| async { "ok" }))
            .layer(red.clone());
        for _ in 0..=i % 3 {
            send(&app, get_req(&format!("/r{i:02}/7"), "acme")).await;
            send(&other_app, get_req("/api/v1/orders/1", "acme")).await;
        }
        drop(app);
    }
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("http_requests_total"), 40);
    for i in 0..40 {
        let route = format!("/r{i:02}/{{id}}");
        let expected = f64::from(i % 3 + 1);
        assert_eq!(
            scrape.value("http_requests_total", &[("route", &route)]),
            Some(expected),
            "{route}"
        );
        assert_eq!(
            scrape.value("http_request_duration_seconds_count", &[("route", &route)]),
            Some(expected),
            "{route}"
        );
    }
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
    assert_eq!(
        scrape.series_count("http_requests_in_flight"),
        40,
        "one in-flight series per route"
    );
    let other = other.scrape();
    assert_eq!(other.series_count("http_requests_total"), 1);
    let sent: u32 = (0..40).map(|i| i % 3 + 1).sum();
    assert_eq!(other.sum("http_requests_total", &[]), f64::from(sent));
}

/// Warm requests remember raw tenant header values: repeated values,
/// values past the tenant bound and invalid values keep their exact
/// outcome on every round, and the overflow counter counts each request.
#[tokio::test(flavor = "current_thread")]
async fn remembered_tenant_headers_resolve_as_on_first_sight() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(2)
        .build()
        .unwrap();
    let app = api().layer(layer(&t));
    let long = "x".repeat(100);
    let headers = [
        "acme",
        "globex",
        "initech",
        "acme",
        "bad id",
        long.as_str(),
        "initech",
    ];
    for _ in 0..5 {
        for tenant in headers {
            send(&app, get_req("/api/v1/orders/1", tenant)).await;
        }
    }
    let scrape = t.scrape();
    let count = |tenant: &str| scrape.value("http_requests_total", &[("tenant_id", tenant)]);
    assert_eq!(count("acme"), Some(10.0));
    assert_eq!(count("globex"), Some(5.0));
    assert_eq!(count("__other__"), Some(10.0));
    assert_eq!(count("__unknown__"), Some(10.0));
    assert_eq!(scrape.series_count("http_requests_total"), 4);
    assert_eq!(
        scrape.value(
            "plimsoll_cardinality_overflow_total",
            &[
                ("metric", "http_request_duration_seconds"),
                ("label", "tenant_id")
            ]
        ),
        Some(10.0)
    );
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
    assert!(!t.encode(Format::Prometheus).contains("initech"));
}

/// When the in-flight family is past its series bound, the request's
/// in-flight series is its tenant's overflow series, which has no route to
/// read back: the request keeps its own, and the error counter (still below
/// its bound) gets the real route.
#[tokio::test]
async fn requests_on_an_overflowed_in_flight_series_keep_their_route() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_series(2)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/a", get(|| async { "ok" }))
        .route("/b", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route("/c", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .layer(layer(&t));
    for path in ["/a", "/b", "/c", "/c"] {
        send(&app, get_req(path, "acme")).await;
    }
    let scrape = t.scrape();
    let in_flight_overflow = [("method", "__other__"), ("route", "__other__")];
    assert_eq!(
        scrape.value("http_requests_in_flight", &in_flight_overflow),
        Some(0.0)
    );
    assert_eq!(scrape.sum("http_requests_in_flight", &[]), 0.0);
    assert_eq!(
        scrape.value("http_request_errors_total", &[("route", "/c")]),
        Some(2.0)
    );
    assert_eq!(
        scrape.value("http_request_errors_total", &[("route", "/b")]),
        Some(1.0)
    );
    assert_eq!(scrape.sum("http_request_duration_seconds_count", &[]), 4.0);
}
