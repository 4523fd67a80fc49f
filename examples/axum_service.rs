//! A small multi-tenant orders API with plimsoll's RED metrics.
//!
//! Shows: the RED layer on an axum router, tenants resolved by an auth
//! middleware from the `x-tenant-id` header and handed to plimsoll as a
//! trusted request extension, a flaky downstream "payments" call timed as an
//! external call, a moka cache in front of order reads, a business
//! counter, and `/metrics` for Prometheus. Orders live in SQLite (in
//! memory) through a metered sqlx pool; `DATABASE_URL` switches to
//! PostgreSQL. The queries, the payment call and the cache record under the
//! request's tenant without being passed it, and each request's query count
//! is recorded by route. The payment call sits behind a circuit breaker,
//! and the API behind a per-tenant rate limit (tenant `trial` gets a
//! smaller quota). With `REDIS_URL` set, `POST /api/v1/orders`
//! honours an `idempotency-key` header through Redis, and its commands are
//! timed too. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, every request is
//! traced over OTLP, its queries, cache loads, Redis commands and payment
//! call as child spans, and the latency histograms carry the traces' ids
//! as exemplars.
//!
//! Run: `cargo run --example axum_service --features full`
//! (listens on `PLIMSOLL_ADDR`, default `127.0.0.1:3000`), then:
//!
//! ```text
//! curl -H 'x-tenant-id: acme' -X POST localhost:3000/api/v1/orders -d '{"item":"tea","quantity":2}' -H 'content-type: application/json'
//! curl -H 'x-tenant-id: acme' localhost:3000/api/v1/orders
//! curl localhost:3000/metrics
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use plimsoll::cache::{CacheMetrics, MokaCache};
use plimsoll::health::{Component, Health, checks};
use plimsoll::http::{ExternalCalls, MetricsService, RedMetricsLayer, metrics_router};
use plimsoll::redis::{InstrumentedConnection, RedisMetrics};
use plimsoll::resilience::{CircuitBreaker, Quota, ResilienceMetrics, SlidingWindow};
use plimsoll::sqlx::{MeteredPool, SqlxMetrics};
use plimsoll::{Counter, Telemetry, Tenant, impl_label_set};

/// Default listen address; `PLIMSOLL_ADDR` overrides it.
const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// Default database; `DATABASE_URL` overrides it (`postgres://…`).
pub(crate) const DEFAULT_DATABASE: &str = "sqlite::memory:";

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct OrderLabels {
    item: &'static str,
}
impl_label_set!(OrderLabels { item });

/// Items on the menu: a closed set, so a label that cannot explode.
const ITEMS: [&str; 4] = ["tea", "coffee", "cake", "other"];

#[derive(Clone, Debug)]
struct Order {
    id: i64,
    item: String,
    quantity: i64,
}

impl Order {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(Self {
            id: row.try_get("id")?,
            item: row.try_get("item")?,
            quantity: row.try_get("quantity")?,
        })
    }
}

#[derive(Clone)]
struct AppState {
    telemetry: Telemetry,
    /// The order store: every query on it is timed.
    db: MeteredPool<sqlx::Any>,
    next_id: Arc<AtomicU64>,
    placed: Counter<OrderLabels>,
    payments: ExternalCalls,
    /// Sheds payment calls while the provider is failing.
    payments_breaker: CircuitBreaker,
    /// Order reads by (tenant, id), in front of the order store.
    order_cache: Arc<MokaCache<(String, i64), String>>,
    /// Idempotency keys of order creations, when `REDIS_URL` is set.
    redis: Option<InstrumentedConnection<redis::aio::MultiplexedConnection>>,
}

/// A read of an order that is not there, or failed (not cached).
#[derive(Debug)]
enum ReadError {
    NotFound,
    Database,
}

/// The service's own auth: here any valid `x-tenant-id` is accepted. It puts
/// the resolved (validated, bounded) tenant into the request, for plimsoll
/// and for the handlers; the API refuses requests without one.
async fn auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let tenant = req
        .headers()
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|raw| state.telemetry.try_tenant(raw).ok());
    match tenant {
        Some(tenant) => {
            req.extensions_mut().insert(tenant);
        }
        None if req.uri().path().starts_with("/api/") && !is_probe(req.uri().path()) => {
            return (StatusCode::UNAUTHORIZED, "x-tenant-id header required\n").into_response();
        }
        None => {}
    }
    next.run(req).await
}

/// The health endpoints, which load balancers call without a tenant.
fn is_probe(path: &str) -> bool {
    matches!(path, "/api/v1/health" | "/api/v1/ready" | "/api/v1/status")
        || path.starts_with("/api/v1/health/")
}

fn order_json(o: &Order) -> String {
    format!(
        r#"{{"id":{},"item":"{}","quantity":{}}}"#,
        o.id,
        o.item.replace(['"', '\\'], ""),
        o.quantity
    )
}

async fn list_orders(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
) -> Response {
    let rows = sqlx::query("SELECT id, item, quantity FROM orders WHERE tenant = $1 ORDER BY id")
        .bind(tenant.as_str())
        .fetch_all(&state.db)
        .await;
    let orders: Result<Vec<Order>, _> =
        rows.and_then(|rows| rows.iter().map(Order::from_row).collect());
    match orders {
        Ok(orders) => {
            let list: Vec<String> = orders.iter().map(order_json).collect();
            json(StatusCode::OK, format!("[{}]", list.join(",")))
        }
        Err(_) => unavailable(),
    }
}

async fn get_order(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<i64>,
) -> Response {
    let load = async {
        let row =
            sqlx::query("SELECT id, item, quantity FROM orders WHERE tenant = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&state.db)
                .await
                .map_err(|_| ReadError::Database)?;
        let order = row
            .as_ref()
            .map(Order::from_row)
            .transpose()
            .map_err(|_| ReadError::Database)?;
        order.map(|o| order_json(&o)).ok_or(ReadError::NotFound)
    };
    match state
        .order_cache
        .try_get_with((tenant.as_str().to_string(), id), load)
        .await
    {
        Ok(order) => json(StatusCode::OK, order),
        Err(e) if matches!(*e, ReadError::NotFound) => {
            json(StatusCode::NOT_FOUND, r#"{"error":"no such order"}"#.into())
        }
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"order store unavailable"}"#.into(),
    )
}

/// Parses `{"item": "...", "quantity": N}` without a JSON library.
fn parse_order(body: &str) -> Option<(String, i64)> {
    let field = |name: &str| -> Option<&str> {
        let start = body.find(&format!("\"{name}\""))? + name.len() + 2;
        let rest = body[start..].trim_start().strip_prefix(':')?.trim_start();
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim().trim_matches('"'))
    };
    Some((field("item")?.to_string(), field("quantity")?.parse().ok()?))
}

async fn create_order(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    // A retried creation with the same idempotency key is refused.
    if let (Some(redis), Some(key)) = (&state.redis, headers.get("idempotency-key")) {
        let key = format!(
            "idempotency:{tenant}:{}",
            String::from_utf8_lossy(key.as_bytes())
        );
        let first: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(86_400)
            .query_async(&mut redis.clone())
            .await;
        if let Ok(None) = first {
            return json(
                StatusCode::CONFLICT,
                r#"{"error":"duplicate request"}"#.into(),
            );
        }
    }
    let Some((item, quantity)) = parse_order(&body) else {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"want {\"item\":..,\"quantity\":..}"}"#.into(),
        );
    };
    let id = state.next_id.fetch_add(1, Ordering::Relaxed) as i64;
    // The downstream payment provider: slow now and then, failing 1 in 10,
    // behind a circuit breaker. Recorded under the request's tenant without
    // passing it: the RED layer runs the handler in the request's scope.
    let permit = match state.payments_breaker.try_call() {
        Ok(permit) => permit,
        Err(open) => {
            let retry = plimsoll::resilience::retry_after_secs(open.retry_in).to_string();
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", retry)],
                r#"{"error":"payments unavailable"}"#,
            )
                .into_response();
        }
    };
    let charged = state
        .payments
        .time("payments", "/v1/charges", charge(id as u64))
        .await;
    permit.done(charged.is_err());
    if charged.is_err() {
        return json(
            StatusCode::BAD_GATEWAY,
            r#"{"error":"payment failed"}"#.into(),
        );
    }
    let label = ITEMS
        .iter()
        .copied()
        .find(|i| *i == item)
        .unwrap_or("other");
    state.placed.inc(&tenant, &OrderLabels { item: label });
    let stored =
        sqlx::query("INSERT INTO orders (id, tenant, item, quantity) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(tenant.as_str())
            .bind(item.as_str())
            .bind(quantity)
            .execute(&state.db)
            .await;
    if stored.is_err() {
        return unavailable();
    }
    json(
        StatusCode::CREATED,
        order_json(&Order { id, item, quantity }),
    )
}

/// Simulated payment call.
async fn charge(id: u64) -> Result<(), &'static str> {
    let millis = 5 + (id * 37) % 40;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    if id % 10 == 9 {
        Err("declined")
    } else {
        Ok(())
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// Opens the order store at `url` (SQLite or PostgreSQL), metered, and
/// creates its table.
pub(crate) async fn open_orders(
    telemetry: &Telemetry,
    url: &str,
) -> Result<MeteredPool<sqlx::Any>, sqlx::Error> {
    sqlx::any::install_default_drivers();
    // Each in-memory SQLite connection is a database of its own: one.
    let connections = if url.starts_with("sqlite::memory:") {
        1
    } else {
        10
    };
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await?;
    let metrics = SqlxMetrics::builder(telemetry)
        .slow_query(Duration::from_millis(250))
        .queries_per_request_warning(10)
        .build()
        .expect("sqlx metrics register");
    let db = metrics.instrument(pool, "orders");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, tenant TEXT NOT NULL, item TEXT NOT NULL, quantity BIGINT NOT NULL)",
    )
    .execute(&db)
    .await?;
    Ok(db)
}

/// The API's per-tenant quota: 20 requests per second, bursts of 40.
fn api_quota() -> Quota {
    Quota::per_second(std::num::NonZeroU32::new(20).unwrap())
        .allow_burst(std::num::NonZeroU32::new(40).unwrap())
}

/// The tenant on a trial plan, and its smaller quota: 2 per second, bursts of 5.
pub(crate) const TRIAL_TENANT: &str = "trial";
fn trial_quota() -> Quota {
    Quota::per_second(std::num::NonZeroU32::new(2).unwrap())
        .allow_burst(std::num::NonZeroU32::new(5).unwrap())
}

/// The app, with what an operator's tools hold on to.
pub(crate) struct App {
    pub(crate) router: Router,
    /// Drained on shutdown.
    pub(crate) health: Health,
    /// Read by the health check; an admin tool would force it open while
    /// the provider is known to be down, or closed once it is back (the
    /// tests do).
    #[cfg_attr(not(test), expect(dead_code, reason = "this binary has no admin tool"))]
    pub(crate) payments_breaker: CircuitBreaker,
}

/// Builds the app on an order store (with Redis for idempotency keys when
/// given a connection), and its health (the database, Redis when
/// configured, the payments breaker); the tests build the same one.
pub(crate) async fn app_with(
    telemetry: &Telemetry,
    db: MeteredPool<sqlx::Any>,
    redis: Option<redis::aio::MultiplexedConnection>,
) -> Result<App, sqlx::Error> {
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM orders")
        .fetch_one(&db)
        .await?;
    // The runtime's workers, tasks and queues, read at each scrape.
    plimsoll::runtime::register(telemetry, &tokio::runtime::Handle::current())
        .expect("the runtime families register once per telemetry");
    // Health: probes read the last results of checks run every 5 s.
    let mut health = Health::builder(telemetry)
        .service("orders-api")
        .version(env!("CARGO_PKG_VERSION"))
        .interval(Duration::from_secs(5))
        .drain_period(Duration::from_secs(5))
        // A busy pool (degraded) must not take every instance out of
        // rotation at once under a load spike.
        .degraded_is_ready(true)
        .component(Component::new(
            "database",
            checks::sqlx_pool(db.pool().clone()),
        ));
    // Redis only serves idempotency keys: its loss degrades, not stops,
    // the service. (This connection does not reconnect by itself; a
    // `redis::Client` with `checks::redis_client` would see it come back.)
    if let Some(conn) = &redis {
        health =
            health.component(Component::new("redis", checks::redis(conn.clone())).critical(false));
    }
    let redis = redis.map(|conn| {
        RedisMetrics::new(telemetry)
            .expect("redis metrics register")
            .wrap(conn)
    });
    let resilience = ResilienceMetrics::new(telemetry).expect("resilience metrics register");
    let payments_breaker = resilience
        .breaker("payments")
        .sliding_window(SlidingWindow::Count(50))
        .minimum_calls(10)
        .failure_rate(0.5)
        .open_for(Duration::from_secs(10))
        .open_backoff(2.0, Duration::from_secs(120))
        .build()
        .expect("breaker settings are valid");
    // An open payments breaker degrades the service without making it
    // unready: orders are still listed and read.
    let health = health
        .component(
            Component::new("payments", checks::breaker(payments_breaker.clone())).critical(false),
        )
        .build()
        .expect("health settings are valid");
    let limiter = resilience
        .limiter("api", api_quota())
        .build()
        .expect("limiter settings are valid");
    limiter.set_override(telemetry.tenant(TRIAL_TENANT), "trial", trial_quota());
    let state = AppState {
        payments_breaker: payments_breaker.clone(),
        redis,
        telemetry: telemetry.clone(),
        db,
        next_id: Arc::new(AtomicU64::new(last as u64 + 1)),
        placed: telemetry
            .counter("orders_placed", "Orders placed, by item.")
            .expect("orders_placed registers"),
        payments: ExternalCalls::new(telemetry).expect("external calls register"),
        order_cache: Arc::new(MokaCache::new(
            &CacheMetrics::new(telemetry).expect("cache metrics register"),
            "orders",
            moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60)),
        )),
    };
    let red = RedMetricsLayer::builder(telemetry)
        .with_ignored_paths([
            "/metrics",
            "/health",
            "/api/v1/health",
            "/api/v1/ready",
            "/api/v1/status",
            "/api/v1/health/{component}",
        ])
        .with_slow_request_threshold(Duration::from_millis(500))
        .build()
        .expect("RED layer builds");
    // The API is rate limited per tenant (inside the RED layer, so a 429 is
    // recorded as one); health and metrics are not.
    let api = Router::new()
        .route("/api/v1/orders", get(list_orders).post(create_order))
        .route("/api/v1/orders/{id}", get(get_order))
        .layer(limiter.layer());
    let mut app = Router::new()
        .merge(api)
        .nest("/api/v1", health.router())
        .route("/health", get(|| async { "ok\n" }))
        .merge(metrics_router(MetricsService::new(telemetry)));
    // Layers go last so they wrap every route and the 404 fallback. Auth is
    // added after (outside) the RED layer, so the tenant it resolves is known
    // when the request is recorded. `PLIMSOLL_RED=off` leaves the layer out,
    // for the load comparison in `scripts/load.sh`.
    if std::env::var("PLIMSOLL_RED").as_deref() != Ok("off") {
        app = app.layer(red);
    }
    // The orders API's SLOs, live in /metrics (the rules for Prometheus
    // come from the same declarations: see docs/slo.md).
    plimsoll::slo::LiveSlos::register(telemetry, &order_slos()).expect("SLO gauges register");
    let router = app
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state);
    Ok(App {
        router,
        health,
        payments_breaker,
    })
}

/// Serves the app on a free loopback port in the background: how the tests
/// that include this file start it.
#[cfg(test)]
pub(crate) async fn serve_loopback(
    telemetry: &Telemetry,
    db: MeteredPool<sqlx::Any>,
    redis: Option<redis::aio::MultiplexedConnection>,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let app = app_with(telemetry, db, redis)
        .await
        .expect("the app builds");
    serve(app.router).await
}

/// Serves `router` on a free loopback port in the background.
#[cfg(test)]
pub(crate) async fn serve(
    router: Router,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    (
        addr,
        tokio::spawn(axum::serve(listener, router).into_future()),
    )
}

/// The orders API's SLOs: 99.9% of requests succeed, 99% finish within
/// 250 ms, over 30 days.
pub(crate) fn order_slos() -> Vec<plimsoll::slo::Slo> {
    use plimsoll::slo::{Slo, Source};
    vec![
        Slo::availability("orders-availability", Source::Http)
            .service("orders-api")
            .matching("route", "/api/v1/orders")
            .objective(99.9)
            .build()
            .expect("a valid SLO"),
        Slo::latency("orders-latency", Source::Http, Duration::from_millis(250))
            .service("orders-api")
            .matching("route", "/api/v1/orders")
            .objective(99.0)
            .build()
            .expect("a valid SLO"),
    ]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs (RUST_LOG, PLIMSOLL_LOG_FORMAT=json), and traces when
    // OTEL_EXPORTER_OTLP_ENDPOINT is set; flushed when `tracing` drops.
    let tracing = plimsoll::otlp::Tracing::from_env()
        .service_name("orders-api")
        .service_version(env!("CARGO_PKG_VERSION"))
        .init()?;
    let telemetry = Telemetry::builder()
        .with_trace_context(tracing.trace_context())
        .with_const_label("environment", "dev")
        .with_build_info(plimsoll::BuildInfo::new(
            "orders-api",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_max_tenants(100)
        .build()?;
    let addr = std::env::var("PLIMSOLL_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_string());
    let redis = match std::env::var("REDIS_URL") {
        Ok(url) => Some(
            redis::Client::open(url)?
                .get_multiplexed_async_connection()
                .await?,
        ),
        Err(_) => None,
    };
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE.to_string());
    let db = open_orders(&telemetry, &database).await?;
    let App {
        router: app,
        health,
        ..
    } = app_with(&telemetry, db, redis).await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!("orders-api listening on http://{local}");
    println!("  API:     http://{local}/api/v1/orders   (send x-tenant-id: acme)");
    println!("  metrics: http://{local}/metrics");
    println!("  health:  http://{local}/api/v1/status  (/api/v1/ready, /api/v1/health)");
    println!(
        "  traces:  {}",
        if tracing.is_exporting() {
            "exported over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)"
        } else {
            "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export)"
        }
    );
    println!(
        "  orders:  {}",
        if database.starts_with("sqlite") {
            "SQLite (set DATABASE_URL for PostgreSQL)"
        } else {
            "DATABASE_URL"
        }
    );
    // On SIGTERM (or Ctrl-C): /api/v1/ready answers 503 at once, requests
    // in flight finish during the drain period, then the server stops.
    let signal = plimsoll::health::shutdown_signal();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            signal.await;
            health.drain().await;
        })
        .await?;
    Ok(())
}
