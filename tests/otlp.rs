//! Traces end to end, against a real OTLP collector (`rotel-agent`) and a
//! real Prometheus: span names, parent/child links, attributes and
//! resource as the collector received them; the incoming `traceparent` as
//! the server span's parent and forwarded to a second service; exemplars
//! in Prometheus naming the traces the collector holds.
#![cfg(all(feature = "http", feature = "grpc", feature = "sqlx", feature = "otlp"))]

#[path = "../examples/support/orders.rs"]
#[allow(dead_code, unreachable_pub)]
mod orders;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use http_body_util::BodyExt;
use plimsoll::http::{ExternalCallLayer, GrpcMetricsLayer, RedMetricsLayer};
use plimsoll::otlp::{Protocol, Sampler, Tracing, TracingGuard};
use plimsoll::sqlx::{MeteredPool, SqlxMetrics};
use plimsoll::{Format, Telemetry};
use sqlx::Sqlite;
use support::CollectedSpan;
use tower::{Service, ServiceExt};

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<bytes::Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// A pipeline exporting to `collector`, not installed.
fn pipeline(
    endpoint: String,
    protocol: Protocol,
    sampler: Sampler,
) -> (TracingGuard, tracing::Dispatch) {
    Tracing::builder()
        .endpoint(endpoint)
        .protocol(protocol)
        .sampler(sampler)
        .service_name("orders-test")
        .service_version("1.2.3")
        .environment("test")
        .schedule_delay(Duration::from_millis(50))
        .logs(false)
        .build()
        .unwrap()
}

fn telemetry(guard: &TracingGuard) -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .with_trace_context(guard.trace_context())
        .build()
        .unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The downstream service: answers with the `traceparent` it received.
fn stock(t: &Telemetry) -> Router {
    async fn sku(headers: http::HeaderMap) -> String {
        let header = |name| {
            headers
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        match header("baggage") {
            baggage if baggage.is_empty() => header("traceparent"),
            baggage => format!("{} baggage {baggage}", header("traceparent")),
        }
    }
    Router::new()
        .route("/stock/{sku}", get(sku))
        .layer(RedMetricsLayer::builder(t).build().unwrap())
}

#[derive(Clone)]
struct Orders {
    db: MeteredPool<Sqlite>,
    stock: SocketAddr,
    calls: ExternalCallLayer,
}

/// The service under test: a query, then a call to the stock service;
/// answers with what the stock service received.
fn orders_app(t: &Telemetry, state: Orders) -> Router {
    async fn order(State(s): State<Orders>, Path(id): Path<i64>) -> String {
        // The service's own span joins the request's trace.
        let pricing = async { tokio::task::yield_now().await };
        tracing::Instrument::instrument(pricing, tracing::info_span!("pricing", order = id)).await;
        let _: Option<i64> = sqlx::query_scalar("SELECT total FROM orders WHERE id = ?")
            .bind(id)
            .fetch_optional(&s.db)
            .await
            .unwrap();
        let mut call = tower::ServiceBuilder::new()
            .layer(s.calls.clone())
            .service(client());
        let uri = format!("http://{}/stock/{id}", s.stock);
        let request = http::Request::get(uri)
            .body(http_body_util::Empty::new())
            .unwrap();
        let response = call.ready().await.unwrap().call(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        tracing::info!(order = id, "order served");
        String::from_utf8(body.to_vec()).unwrap()
    }
    Router::new()
        .route("/orders/{id}", get(order))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
        .layer(
            RedMetricsLayer::builder(t)
                .with_tenant_header("x-tenant-id")
                .with_ignored_paths(["/health"])
                .build()
                .unwrap(),
        )
}

async fn orders_service(t: &Telemetry) -> SocketAddr {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    let db = SqlxMetrics::new(t).unwrap().instrument(pool, "main");
    let stock = serve(stock(t)).await;
    let calls = ExternalCallLayer::builder(t, "stock").build().unwrap();
    serve(orders_app(t, Orders { db, stock, calls })).await
}

/// GET `path` with optional `traceparent`; the status and body.
async fn get_with(addr: SocketAddr, path: &str, traceparent: Option<&str>) -> (u16, String) {
    get_with_headers(
        addr,
        path,
        traceparent.map(|tp| ("traceparent", tp)).as_slice(),
    )
    .await
}

async fn get_with_headers(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request =
        http::Request::get(format!("http://{addr}{path}")).header("x-tenant-id", "acme");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client()
        .request(request.body(http_body_util::Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn find<'a>(spans: &'a [CollectedSpan], trace: &str, name: &str) -> &'a CollectedSpan {
    spans
        .iter()
        .find(|s| s.trace_id == trace && s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in trace {trace}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[test]
fn spans_arrive_linked_with_their_attributes_and_resource() {
    let Some(collector) = support::otlp_collector() else {
        return;
    };
    let (guard, dispatch) = pipeline(collector.grpc_endpoint(), Protocol::Grpc, Sampler::AlwaysOn);
    let _default = tracing::dispatcher::set_default(&dispatch);
    let t = telemetry(&guard);
    let forwarded = runtime().block_on(async {
        let addr = orders_service(&t).await;
        let traceparent = format!("00-{TRACE}-{PARENT}-01");
        let headers = [
            ("traceparent", traceparent.as_str()),
            ("baggage", "team=checkout"),
        ];
        let (status, forwarded) = get_with_headers(addr, "/orders/7", &headers).await;
        assert_eq!(status, 200);
        forwarded
    });
    guard.flush();
    let spans = collector.wait_for(|s| s.iter().filter(|s| s.trace_id == TRACE).count() >= 5);

    let server = find(&spans, TRACE, "GET /orders/{id}");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        server.parent_id, PARENT,
        "the incoming traceparent is the parent"
    );
    for (k, v) in [
        ("http.request.method", "GET"),
        ("http.route", "/orders/{id}"),
        ("url.path", "/orders/7"),
        ("tenant.id", "acme"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            server.attributes.get(k).map(String::as_str),
            Some(v),
            "{k}: {server:#?}"
        );
    }
    for (k, v) in [
        ("service.name", "orders-test"),
        ("service.version", "1.2.3"),
        ("deployment.environment.name", "test"),
    ] {
        assert_eq!(server.resource.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(server.resource["service.instance.id"].len(), 36);

    let pricing = find(&spans, TRACE, "pricing");
    assert_eq!(
        pricing.parent_id, server.span_id,
        "a span of the service's own"
    );
    assert_eq!(pricing.attributes["order"], "7");

    let query = find(&spans, TRACE, "SELECT orders");
    assert_eq!(query.kind, "SPAN_KIND_CLIENT");
    assert_eq!(query.parent_id, server.span_id);
    assert_eq!(query.attributes["db.collection.name"], "orders");
    assert_eq!(query.attributes["db.namespace"], "main");
    assert_eq!(
        query.attributes["db.query.text"],
        "SELECT total FROM orders WHERE id = ?"
    );

    let call = find(&spans, TRACE, "GET");
    assert_eq!(call.kind, "SPAN_KIND_CLIENT");
    assert_eq!(call.parent_id, server.span_id);
    assert_eq!(call.attributes["peer.service"], "stock");
    assert_eq!(call.attributes["http.response.status_code"], "200");

    // The stock service received the call's context, and its server span
    // is the call's child in the same trace.
    assert_eq!(
        forwarded,
        format!("00-{TRACE}-{}-01 baggage team=checkout", call.span_id),
        "the call carries the trace context and the baggage received"
    );
    let downstream = find(&spans, TRACE, "GET /stock/{sku}");
    assert_eq!(downstream.parent_id, call.span_id);

    // Every duration histogram observed inside the trace carries its ids.
    let body = t.encode(Format::OpenMetrics);
    for (family, span) in [
        ("http_request_duration_seconds_bucket", server),
        ("db_query_duration_seconds_bucket", query),
        ("external_api_duration_seconds_bucket", call),
    ] {
        let exemplar = format!("# {{trace_id=\"{TRACE}\",span_id=\"{}\"}}", span.span_id);
        assert!(
            body.lines()
                .any(|l| l.starts_with(family) && l.contains(&exemplar)),
            "{family} has no exemplar {exemplar}:\n{body}"
        );
    }
    assert!(body.contains(
        "plimsoll_spans_dropped_total{tenant_id=\"__system__\",reason=\"queue_full\"} 0"
    ));
}

#[test]
fn a_request_not_sampled_opens_no_span_and_forwards_its_flag() {
    let Some(collector) = support::otlp_collector() else {
        return;
    };
    let (guard, dispatch) = pipeline(
        collector.http_endpoint(),
        Protocol::HttpProtobuf,
        Sampler::ParentBased(plimsoll::otlp::Root::AlwaysOn),
    );
    let _default = tracing::dispatcher::set_default(&dispatch);
    let t = telemetry(&guard);
    const UNSAMPLED: &str = "0af7651916cd43dd8448eb211c80319c";
    let (forwarded, sampled) = runtime().block_on(async {
        let addr = orders_service(&t).await;
        let traceparent = format!("00-{UNSAMPLED}-b7ad6b7169203331-00");
        let headers = [
            ("traceparent", traceparent.as_str()),
            ("baggage", "team=unsampled"),
        ];
        let (_, forwarded) = get_with_headers(addr, "/orders/1", &headers).await;
        // Without baggage (nothing made current for it on the request path).
        let bare = format!("00-{UNSAMPLED}-c7ad6b7169203331-00");
        let (_, forwarded_bare) = get_with(addr, "/orders/4", Some(&bare)).await;
        assert!(
            forwarded_bare.starts_with(&format!("00-{UNSAMPLED}-"))
                && forwarded_bare.ends_with("-00"),
            "{forwarded_bare}"
        );
        // An ignored path opens no span, even in a sampled trace.
        const IGNORED: &str = "3af7651916cd43dd8448eb211c80319c";
        let (status, _) = get_with(
            addr,
            "/health",
            Some(&format!("00-{IGNORED}-b7ad6b7169203331-01")),
        )
        .await;
        assert_eq!(status, 200);
        // Then one sampled request (over HTTP/protobuf) to know when
        // export has happened.
        let (_, sampled) = get_with(addr, "/orders/2", None).await;
        (forwarded, sampled)
    });
    guard.flush();
    let sampled_trace = sampled.split('-').nth(1).unwrap().to_owned();
    let spans =
        collector.wait_for(|s| s.iter().filter(|s| s.trace_id == sampled_trace).count() >= 4);
    assert!(
        spans.iter().all(|s| s.trace_id != UNSAMPLED),
        "spans of a trace not sampled: {spans:#?}"
    );
    // The service's own span in the request not sampled is not exported
    // either (nor turned into a trace of its own).
    let pricing: Vec<&str> = spans
        .iter()
        .filter(|s| s.name == "pricing")
        .map(|s| s.trace_id.as_str())
        .collect();
    assert_eq!(pricing, [sampled_trace.as_str()]);
    assert!(
        spans.iter().all(|s| !s.name.contains("/health")),
        "a span for an ignored path: {spans:#?}"
    );
    // The caller's decision travels on with the same trace id.
    assert!(
        forwarded.starts_with(&format!("00-{UNSAMPLED}-")),
        "{forwarded}"
    );
    assert!(
        forwarded.ends_with("-00 baggage team=unsampled"),
        "the flag and the baggage travel on: {forwarded}"
    );
    let body = t.encode(Format::OpenMetrics);
    assert!(
        !body.contains(UNSAMPLED),
        "an exemplar of a trace not sampled"
    );
    assert!(body.contains(&sampled_trace));
}

#[test]
fn grpc_server_spans_carry_rpc_attributes() {
    let Some(collector) = support::otlp_collector() else {
        return;
    };
    let (guard, dispatch) = pipeline(collector.grpc_endpoint(), Protocol::Grpc, Sampler::AlwaysOn);
    let _default = tracing::dispatcher::set_default(&dispatch);
    let t = telemetry(&guard);
    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let layer = GrpcMetricsLayer::builder(&t)
            .with_tenant_header("x-tenant-id")
            .build()
            .unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(layer)
                .add_service(orders::OrdersServer::new())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let mut client = orders::OrdersClient::connect(addr).await.unwrap();
        let mut request = tonic::Request::new(orders::GetOrderRequest { id: 0 });
        request.metadata_mut().insert(
            "traceparent",
            format!("00-{TRACE}-{PARENT}-01").parse().unwrap(),
        );
        request
            .metadata_mut()
            .insert("x-tenant-id", "acme".parse().unwrap());
        let missing = client.get_order(request).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    });
    guard.flush();
    let name = orders::GET_ORDER_PATH.trim_start_matches('/');
    let spans = collector.wait_for(|s| s.iter().any(|s| s.name == name));
    let span = find(&spans, TRACE, name);
    assert_eq!(span.kind, "SPAN_KIND_SERVER");
    assert_eq!(span.parent_id, PARENT);
    let (service, method) = name.split_once('/').unwrap();
    assert_eq!(span.attributes["rpc.system"], "grpc");
    assert_eq!(span.attributes["rpc.service"], service);
    assert_eq!(span.attributes["rpc.method"], method);
    assert_eq!(span.attributes["tenant.id"], "acme");
    assert_eq!(span.attributes["rpc.grpc.status_code"], "5");
    // NOT_FOUND is the caller's mistake, not the server's: no error status.
    assert!(
        span.status.contains("STATUS_CODE_UNSET"),
        "{:?}",
        span.status
    );
    let body = t.encode(Format::OpenMetrics);
    let exemplar = format!("# {{trace_id=\"{TRACE}\",span_id=\"{}\"}}", span.span_id);
    assert!(
        body.lines()
            .any(|l| l.starts_with("grpc_server_handling_seconds_bucket") && l.contains(&exemplar)),
        "no gRPC exemplar {exemplar}"
    );
}

#[test]
fn prometheus_exemplars_name_the_traces_the_collector_received() {
    let Some(collector) = support::otlp_collector() else {
        return;
    };
    let (guard, dispatch) = pipeline(collector.grpc_endpoint(), Protocol::Grpc, Sampler::AlwaysOn);
    let _default = tracing::dispatcher::set_default(&dispatch);
    let t = telemetry(&guard);
    let rt = runtime();
    let metrics_port = rt.block_on(async {
        let addr = orders_service(&t).await;
        for id in 0..5 {
            assert_eq!(get_with(addr, &format!("/orders/{id}"), None).await.0, 200);
        }
        let scrape = t.clone();
        let metrics = Router::new().route(
            "/metrics",
            get(move || {
                let t = scrape.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            plimsoll::OPENMETRICS_CONTENT_TYPE,
                        )],
                        t.encode(Format::OpenMetrics),
                    )
                }
            }),
        );
        serve(metrics).await.port()
    });
    // Serve /metrics while Prometheus scrapes, on a thread of its own.
    let serving = std::thread::spawn(move || {
        rt.block_on(async { tokio::time::sleep(Duration::from_secs(60)).await });
    });
    let Some(prometheus) = support::prometheus_server(&[format!("127.0.0.1:{metrics_port}")], None)
    else {
        return;
    };
    guard.flush();
    let spans =
        collector.wait_for(|s| s.iter().filter(|s| s.name == "GET /orders/{id}").count() >= 5);
    let received: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.trace_id.as_str()).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut exemplars = Vec::new();
    for _ in 0..60 {
        let answer = support::http_get(
            prometheus.port,
            &format!(
                "/api/v1/query_exemplars?query={}&start={}&end={}",
                support::url_encode("http_request_duration_seconds_bucket"),
                now - 600,
                now + 600
            ),
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
        exemplars = json["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect();
        if !exemplars.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!exemplars.is_empty(), "Prometheus stored no exemplar");
    for trace in &exemplars {
        assert!(
            received.contains(trace.as_str()),
            "exemplar trace {trace} never reached the collector ({received:?})"
        );
    }
    drop(serving);
}

/// A log writer into memory.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn json_log_lines_carry_trace_span_and_tenant() {
    let Some(collector) = support::otlp_collector() else {
        return;
    };
    let lines = Lines::default();
    let writer = lines.clone();
    let (guard, dispatch) = Tracing::builder()
        .endpoint(collector.grpc_endpoint())
        .sampler(Sampler::AlwaysOn)
        .schedule_delay(Duration::from_millis(50))
        .log_format(plimsoll::otlp::LogFormat::Json)
        .log_filter("info")
        .log_writer(move || writer.clone())
        .build()
        .unwrap();
    let _default = tracing::dispatcher::set_default(&dispatch);
    let t = telemetry(&guard);
    runtime().block_on(async {
        let addr = orders_service(&t).await;
        let tp = format!("00-{TRACE}-{PARENT}-01");
        assert_eq!(get_with(addr, "/orders/3", Some(&tp)).await.0, 200);
    });
    tracing::info!(outside = true, "no request here");
    guard.flush();
    let spans = collector.wait_for(|s| s.iter().any(|s| s.name == "GET /orders/{id}"));
    let server = find(&spans, TRACE, "GET /orders/{id}");

    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let served = lines
        .iter()
        .find(|l| l["message"] == "order served")
        .unwrap_or_else(|| panic!("no line: {text}"));
    assert_eq!(served["level"], "INFO");
    assert_eq!(served["target"], "otlp");
    assert_eq!(served["order"], 3);
    assert_eq!(served["trace_id"], TRACE);
    assert_eq!(served["span_id"], server.span_id.as_str());
    assert_eq!(served["tenant_id"], "acme");
    assert!(served["timestamp"].as_str().unwrap().ends_with('Z'));
    let outside = lines
        .iter()
        .find(|l| l["message"] == "no request here")
        .unwrap();
    assert_eq!(outside["outside"], true);
    assert!(outside.get("trace_id").is_none() && outside.get("tenant_id").is_none());
}
