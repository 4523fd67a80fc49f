//! The flagship example's app, served over loopback: its API works, and its
//! `/metrics` passes promtool and the reference OpenMetrics parser.

#[path = "../examples/axum_service.rs"]
#[allow(dead_code)]
mod example;
mod support;

use plimsoll::Telemetry;

async fn request(addr: std::net::SocketAddr, raw: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n")
}

#[tokio::test]
async fn example_serves_its_api_and_a_valid_metrics_endpoint() {
    let t = Telemetry::builder()
        .with_const_label("environment", "test")
        .with_build_info(plimsoll::BuildInfo::new("orders-api", "test"))
        .build()
        .unwrap();
    let db = example::open_orders(&t, example::DEFAULT_DATABASE)
        .await
        .unwrap();
    let (addr, server) = example::serve_loopback(&t, db, None).await;

    let body = r#"{"item":"tea","quantity":2}"#;
    let created = request(addr, &post_order("x-tenant-id: acme\r\n", body)).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let listed = request(addr, &get("/api/v1/orders", "x-tenant-id: acme\r\n")).await;
    for _ in 0..2 {
        let order = request(addr, &get("/api/v1/orders/1", "x-tenant-id: acme\r\n")).await;
        assert!(order.starts_with("HTTP/1.1 200"), "{order}");
    }
    assert!(listed.contains(r#""item":"tea""#), "{listed}");
    let refused = request(addr, &get("/api/v1/orders", "")).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    // The probes need no tenant, and the database is checked at once.
    let ready = request(addr, &get("/api/v1/ready", "")).await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let status = request(addr, &get("/api/v1/status", "")).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let doc: serde_json::Value =
        serde_json::from_str(&status[status.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(doc["service"], "orders-api");
    assert_eq!(doc["components"]["database"]["status"], "healthy");
    assert_eq!(doc["components"]["payments"]["critical"], false);
    assert!(
        doc["components"].get("redis").is_none(),
        "no Redis configured"
    );
    request(addr, &get("/wp-login.php", "x-tenant-id: acme\r\n")).await;

    let text = request(addr, &get("/metrics", "")).await;
    let text = &text[text.find("\r\n\r\n").unwrap() + 4..];
    assert!(text.contains(
        r#"http_requests_total{tenant_id="acme",method="POST",route="/api/v1/orders",status_code="201",environment="test"} 1"#
    ), "{text}");
    assert!(text.contains(
        r#"http_requests_total{tenant_id="acme",method="GET",route="__unmatched__",status_code="404",environment="test"} 1"#
    ));
    assert!(
        text.contains(r#"orders_placed_total{tenant_id="acme",item="tea",environment="test"} 1"#)
    );
    assert!(!text.contains("wp-login"));
    // The order reads went through the cache, under the request's tenant.
    for line in [
        r#"cache_operations_total{tenant_id="acme",operation="get",cache_name="orders",status="miss",environment="test"} 1"#,
        r#"cache_operations_total{tenant_id="acme",operation="get",cache_name="orders",status="hit",environment="test"} 1"#,
        r#"cache_operations_total{tenant_id="acme",operation="load",cache_name="orders",status="success",environment="test"} 1"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // The order store's queries, under the request's tenant, and the
    // queries each request ran.
    for line in [
        r#"db_query_duration_seconds_count{tenant_id="acme",operation="insert",table="orders",database="orders",status="ok",environment="test"} 1"#,
        r#"db_query_duration_seconds_count{tenant_id="acme",operation="select",table="orders",database="orders",status="ok",environment="test"} 2"#,
        r#"db_queries_per_request_count{tenant_id="acme",route="/api/v1/orders/{id}",environment="test"} 2"#,
        r#"db_queries_per_request_sum{tenant_id="acme",route="/api/v1/orders/{id}",environment="test"} 1"#,
        r#"db_connection_pool_size{tenant_id="__system__",state="max",database="orders",environment="test"} 1"#,
        // One POST and one list, both fine: fully compliant, nothing burnt.
        r#"slo_compliance_percentage{tenant_id="__system__",slo_name="orders-availability",service="orders-api",window="5m",environment="test"} 100"#,
        r#"slo_burn_rate{tenant_id="__system__",slo_name="orders-availability",service="orders-api",window="1h",environment="test"} 0"#,
        r#"error_budget_remaining_percentage{tenant_id="__system__",slo_name="orders-availability",service="orders-api",environment="test"} 100"#,
        // The test's runtime: one thread.
        r#"tokio_workers{tenant_id="__system__",environment="test"} 1"#,
        r#"tokio_worker_busy_seconds_total{tenant_id="__system__",worker="0",environment="test"} "#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    if support::have_promtool() {
        support::promtool_check(text).unwrap();
    }
    let om = request(
        addr,
        &get(
            "/metrics",
            "accept: application/openmetrics-text; version=1.0.0\r\n",
        ),
    )
    .await;
    let om = &om[om.find("\r\n\r\n").unwrap() + 4..];
    if support::have_openmetrics_parser() {
        support::openmetrics_check(om).unwrap();
    }
    server.abort();
}

#[tokio::test]
async fn a_burst_from_one_tenant_is_limited_while_the_others_are_served() {
    let t = Telemetry::builder().build().unwrap();
    let db = example::open_orders(&t, example::DEFAULT_DATABASE)
        .await
        .unwrap();
    let (addr, server) = example::serve_loopback(&t, db, None).await;
    let trial = format!("x-tenant-id: {}\r\n", example::TRIAL_TENANT);
    let mut refused = 0;
    let burst = std::time::Instant::now();
    for _ in 0..20 {
        let answer = request(addr, &get("/api/v1/orders", &trial)).await;
        if answer.starts_with("HTTP/1.1 429") {
            assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
            assert!(answer.contains("ratelimit-limit: 5\r\n"), "{answer}");
            refused += 1;
        } else {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
    }
    assert!(
        refused >= 14,
        "a burst of 5, then about 2 a second: {refused} refused"
    );
    for _ in 0..10 {
        let answer = request(addr, &get("/api/v1/orders", "x-tenant-id: acme\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let text = request(addr, &get("/metrics", "")).await;
    for line in [
        format!(
            r#"rate_limit_hits_total{{tenant_id="trial",limit_type="api",client_type="trial"}} {refused}"#
        ),
        format!(
            r#"http_requests_total{{tenant_id="trial",method="GET",route="/api/v1/orders",status_code="429"}} {refused}"#
        ),
        r#"circuit_breaker_state{tenant_id="__system__",service="payments"} 0"#.to_string(),
    ] {
        assert!(text.contains(&line), "{line}\n{text}");
    }
    assert!(!text.contains(r#"rate_limit_hits_total{tenant_id="acme""#));
    // The quota left is read at the scrape: trial's burst of 5 is spent (it
    // comes back at 2 a second), acme's 40 barely touched.
    let remaining = |tenant: &str| -> f64 {
        let series = format!(r#"api_quota_remaining{{tenant_id="{tenant}",quota_type="api"}} "#);
        let line = text.lines().find_map(|l| l.strip_prefix(series.as_str()));
        line.unwrap_or_else(|| panic!("{series}\n{text}"))
            .parse()
            .unwrap()
    };
    // At most what 2 a second brought back since the burst (nothing, on a
    // machine that answers within half a second).
    let back = (2.0 * burst.elapsed().as_secs_f64()).floor().min(5.0);
    assert!(remaining("trial") <= back, "{back}\n{text}");
    assert!(remaining("acme") >= 30.0, "{text}");
    server.abort();
}

/// One tea: an order's body.
const TEA: &str = r#"{"item":"tea","quantity":1}"#;

/// `POST /api/v1/orders` with `extra` headers (each ending in CRLF) and `body`.
fn post_order(extra: &str, body: &str) -> String {
    format!(
        "POST /api/v1/orders HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn an_open_payments_breaker_sheds_orders_with_503_and_shows_in_metrics() {
    let t = Telemetry::builder().build().unwrap();
    let db = example::open_orders(&t, example::DEFAULT_DATABASE)
        .await
        .unwrap();
    let app = example::app_with(&t, db, None).await.unwrap();
    let breaker = app.payments_breaker.clone();
    let (addr, server) = example::serve(app.router).await;
    let placed = request(addr, &post_order("x-tenant-id: acme\r\n", TEA)).await;
    assert!(placed.starts_with("HTTP/1.1 201"), "{placed}");

    // The provider is known to be down: an operator opens the breaker.
    breaker.force_open();
    let shed = request(addr, &post_order("x-tenant-id: acme\r\n", TEA)).await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(shed.contains("retry-after: 10\r\n"), "{shed}");
    assert!(
        shed.ends_with(r#"{"error":"payments unavailable"}"#),
        "{shed}"
    );
    // Orders are still listed: the service is degraded, not down.
    let listed = request(addr, &get("/api/v1/orders", "x-tenant-id: acme\r\n")).await;
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    let text = request(addr, &get("/metrics", "")).await;
    for line in [
        r#"circuit_breaker_state{tenant_id="__system__",service="payments"} 1"#,
        r#"circuit_breaker_calls_total{tenant_id="__system__",service="payments",outcome="success"} 1"#,
        r#"circuit_breaker_calls_total{tenant_id="__system__",service="payments",outcome="rejected"} 1"#,
        r#"circuit_breaker_transitions_total{tenant_id="__system__",service="payments",from="closed",to="open"} 1"#,
        r#"http_requests_total{tenant_id="acme",method="POST",route="/api/v1/orders",status_code="503"} 1"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }

    // Back: closed again, orders are placed.
    breaker.force_closed();
    let placed = request(addr, &post_order("x-tenant-id: acme\r\n", TEA)).await;
    assert!(placed.starts_with("HTTP/1.1 201"), "{placed}");
    let text = request(addr, &get("/metrics", "")).await;
    let closed = r#"circuit_breaker_state{tenant_id="__system__",service="payments"} 0"#;
    assert!(text.contains(&format!("{closed}\n")), "{text}");
    server.abort();
}

#[tokio::test]
async fn with_a_database_url_the_orders_live_in_postgres() {
    let Some(pg) = support::postgres_server() else {
        return;
    };
    let t = Telemetry::builder().build().unwrap();
    let db = example::open_orders(&t, &pg.url()).await.unwrap();
    let (addr, server) = example::serve_loopback(&t, db.clone(), None).await;
    let body = r#"{"item":"cake","quantity":3}"#;
    let created = request(addr, &post_order("x-tenant-id: globex\r\n", body)).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let order = request(addr, &get("/api/v1/orders/1", "x-tenant-id: globex\r\n")).await;
    assert!(order.contains(r#""item":"cake","quantity":3"#), "{order}");
    let stored: i64 = sqlx::query_scalar("SELECT quantity FROM orders WHERE tenant = 'globex'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(stored, 3);
    let text = t.encode(plimsoll::Format::Prometheus);
    assert!(
        text.contains(
            r#"db_query_duration_seconds_count{tenant_id="globex",operation="insert",table="orders",database="orders",status="ok"} 1"#
        ),
        "{text}"
    );
    server.abort();
}

#[tokio::test]
async fn with_redis_a_retried_order_is_refused_and_its_commands_are_timed() {
    let Some(redis) = support::redis_server() else {
        return;
    };
    let t = Telemetry::builder().build().unwrap();
    let conn = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let db = example::open_orders(&t, example::DEFAULT_DATABASE)
        .await
        .unwrap();
    let (addr, server) = example::serve_loopback(&t, db, Some(conn)).await;
    let post = post_order("x-tenant-id: acme\r\nidempotency-key: k-1\r\n", TEA);
    let first = request(addr, &post).await;
    let second = request(addr, &post).await;
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");
    assert!(second.starts_with("HTTP/1.1 409"), "{second}");
    let text = t.encode(plimsoll::Format::Prometheus);
    assert!(
        text.contains(
            r#"redis_command_duration_seconds_count{tenant_id="acme",command="SET",status="ok"} 2"#
        ),
        "{text}"
    );
    server.abort();
}

#[tokio::test]
async fn with_a_collector_its_work_is_traced_under_each_request() {
    let (Some(collector), Some(redis)) = (support::otlp_collector(), support::redis_server())
    else {
        return;
    };
    let (guard, dispatch) = plimsoll::otlp::Tracing::builder()
        .endpoint(collector.grpc_endpoint())
        .service_name("orders-api")
        .schedule_delay(std::time::Duration::from_millis(50))
        .logs(false)
        .build()
        .unwrap();
    let _default = tracing::dispatcher::set_default(&dispatch);
    let t = Telemetry::builder()
        .with_trace_context(guard.trace_context())
        .build()
        .unwrap();
    let conn = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let db = example::open_orders(&t, example::DEFAULT_DATABASE)
        .await
        .unwrap();
    let (addr, server) = example::serve_loopback(&t, db, Some(conn)).await;
    const CREATE: &str = "11111111111111111111111111111111";
    const READ: &str = "22222222222222222222222222222222";
    let body = r#"{"item":"tea","quantity":1}"#;
    let created = request(
        addr,
        &post_order(&format!("x-tenant-id: acme\r\nidempotency-key: k-9\r\ntraceparent: 00-{CREATE}-1111111111111111-01\r\n"), body),
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let read = request(
        addr,
        &get(
            "/api/v1/orders/1",
            &format!("x-tenant-id: acme\r\ntraceparent: 00-{READ}-2222222222222222-01\r\n"),
        ),
    )
    .await;
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
    guard.flush();
    let spans = collector.wait_for(|s| {
        s.iter()
            .any(|s| s.trace_id == CREATE && s.name == "POST /api/v1/orders")
            && s.iter()
                .any(|s| s.trace_id == READ && s.name == "GET /api/v1/orders/{id}")
    });
    let children = |trace: &str, root: &str| {
        let root = spans
            .iter()
            .find(|s| s.trace_id == trace && s.name == root)
            .unwrap();
        let mut names: Vec<&str> = spans
            .iter()
            .filter(|s| s.trace_id == trace && s.parent_id == root.span_id)
            .map(|s| s.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let created = children(CREATE, "POST /api/v1/orders");
    for expected in [
        "SET",
        "circuit_breaker payments",
        "payments /v1/charges",
        "INSERT orders",
    ] {
        assert!(
            created.contains(&expected),
            "{expected} not under the request: {created:?}"
        );
    }
    let read = children(READ, "GET /api/v1/orders/{id}");
    assert!(read.contains(&"cache load orders"), "{read:?}");
    // The query of the load runs inside the load's span.
    let load = spans
        .iter()
        .find(|s| s.trace_id == READ && s.name == "cache load orders")
        .unwrap();
    assert!(
        spans.iter().any(|s| s.trace_id == READ
            && s.parent_id == load.span_id
            && s.name == "SELECT orders"),
        "{spans:#?}"
    );
    // The Redis, cache and query histograms carry the traces' exemplars.
    let body = t.encode(plimsoll::Format::OpenMetrics);
    for (family, trace) in [
        ("redis_command_duration_seconds_bucket", CREATE),
        ("cache_operation_duration_seconds_bucket", READ),
        ("db_query_duration_seconds_bucket", READ),
    ] {
        assert!(
            body.lines()
                .any(|l| l.starts_with(family) && l.contains(&format!("trace_id=\"{trace}\""))),
            "{family} has no exemplar of trace {trace}"
        );
    }
    server.abort();
}
