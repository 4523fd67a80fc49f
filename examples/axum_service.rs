//! A small multi-tenant orders API with plimsoll's RED metrics.
//!
//! Shows: the RED layer on an axum router, tenants resolved by an auth
//! middleware from the `x-tenant-id` header and handed to plimsoll as a
//! trusted request extension, a flaky downstream "payments" call timed as an
//! external call, a moka cache in front of order reads, a business
//! counter, and `/metrics` for Prometheus. The payment call and the cache
//! record under the request's tenant without being passed it. With
//! `REDIS_URL` set, `POST /api/v1/orders` honours an `idempotency-key`
//! header through Redis, and its commands are timed too.
//!
//! Run: `cargo run --example axum_service --features full`
//! (listens on `PLIMSOLL_ADDR`, default `127.0.0.1:3000`), then:
//!
//! ```text
//! curl -H 'x-tenant-id: acme' -X POST localhost:3000/api/v1/orders -d '{"item":"tea","quantity":2}' -H 'content-type: application/json'
//! curl -H 'x-tenant-id: acme' localhost:3000/api/v1/orders
//! curl localhost:3000/metrics
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use plimsoll::cache::{CacheMetrics, MokaCache};
use plimsoll::http::{ExternalCalls, MetricsService, RedMetricsLayer, metrics_router};
use plimsoll::redis::{InstrumentedConnection, RedisMetrics};
use plimsoll::{Counter, Telemetry, Tenant, impl_label_set};

/// Default listen address; `PLIMSOLL_ADDR` overrides it.
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct OrderLabels {
    item: &'static str,
}
impl_label_set!(OrderLabels { item });

/// Items on the menu: a closed set, so a label that cannot explode.
const ITEMS: [&str; 4] = ["tea", "coffee", "cake", "other"];

#[derive(Clone, Debug)]
struct Order {
    id: u64,
    item: String,
    quantity: u32,
}

#[derive(Clone)]
struct AppState {
    telemetry: Telemetry,
    orders: Arc<Mutex<HashMap<String, Vec<Order>>>>,
    next_id: Arc<AtomicU64>,
    placed: Counter<OrderLabels>,
    payments: ExternalCalls,
    /// Order reads by (tenant, id), in front of the order store.
    order_cache: Arc<MokaCache<(String, u64), String>>,
    /// Idempotency keys of order creations, when `REDIS_URL` is set.
    redis: Option<InstrumentedConnection<redis::aio::MultiplexedConnection>>,
}

/// A read of an order that is not there (not cached).
#[derive(Debug)]
struct NotFound;

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
        None if req.uri().path().starts_with("/api/") => {
            return (StatusCode::UNAUTHORIZED, "x-tenant-id header required\n").into_response();
        }
        None => {}
    }
    next.run(req).await
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
    let orders = state.orders.lock().unwrap();
    let list: Vec<String> = orders
        .get(tenant.as_str())
        .map(|v| v.iter().map(order_json).collect())
        .unwrap_or_default();
    json(StatusCode::OK, format!("[{}]", list.join(",")))
}

async fn get_order(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<u64>,
) -> Response {
    let load = async {
        let orders = state.orders.lock().unwrap();
        orders
            .get(tenant.as_str())
            .and_then(|v| v.iter().find(|o| o.id == id))
            .map(order_json)
            .ok_or(NotFound)
    };
    match state
        .order_cache
        .try_get_with((tenant.as_str().to_string(), id), load)
        .await
    {
        Ok(order) => json(StatusCode::OK, order),
        Err(_) => json(StatusCode::NOT_FOUND, r#"{"error":"no such order"}"#.into()),
    }
}

/// Parses `{"item": "...", "quantity": N}` without a JSON library.
fn parse_order(body: &str) -> Option<(String, u32)> {
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
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    // The downstream payment provider: slow now and then, failing 1 in 10.
    // Recorded under the request's tenant without passing it: the RED
    // layer runs the handler in the request's scope.
    let charged = state
        .payments
        .time("payments", "/v1/charges", charge(id))
        .await;
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
    let order = Order { id, item, quantity };
    let body = order_json(&order);
    state
        .orders
        .lock()
        .unwrap()
        .entry(tenant.as_str().to_string())
        .or_default()
        .push(order);
    json(StatusCode::CREATED, body)
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

/// Builds the app (with Redis for idempotency keys when given a
/// connection); the tests build the same one.
pub(crate) fn app_with(
    telemetry: &Telemetry,
    redis: Option<redis::aio::MultiplexedConnection>,
) -> Router {
    let redis = redis.map(|conn| {
        RedisMetrics::new(telemetry)
            .expect("redis metrics register")
            .wrap(conn)
    });
    let state = AppState {
        redis,
        telemetry: telemetry.clone(),
        orders: Arc::default(),
        next_id: Arc::new(AtomicU64::new(1)),
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
        .with_ignored_paths(["/metrics", "/health"])
        .with_slow_request_threshold(Duration::from_millis(500))
        .build()
        .expect("RED layer builds");
    let mut app = Router::new()
        .route("/api/v1/orders", get(list_orders).post(create_order))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/health", get(|| async { "ok\n" }))
        .merge(metrics_router(MetricsService::new(telemetry)));
    // Layers go last so they wrap every route and the 404 fallback. Auth is
    // added after (outside) the RED layer, so the tenant it resolves is known
    // when the request is recorded. `PLIMSOLL_RED=off` leaves the layer out,
    // for the load comparison in `scripts/load.sh`.
    if std::env::var("PLIMSOLL_RED").as_deref() != Ok("off") {
        app = app.layer(red);
    }
    app.layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = Telemetry::builder()
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
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!("orders-api listening on http://{local}");
    println!("  API:     http://{local}/api/v1/orders   (send x-tenant-id: acme)");
    println!("  metrics: http://{local}/metrics");
    println!("  health:  http://{local}/health");
    axum::serve(listener, app_with(&telemetry, redis))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
