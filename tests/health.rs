//! Health endpoints against real dependencies: SQLite, PostgreSQL and a
//! Redis server stopped and restarted; a hanging check; the `/status`
//! document; the gauges; a storm of probes.
#![cfg(all(
    feature = "health",
    feature = "sqlx",
    feature = "redis",
    feature = "resilience"
))]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plimsoll::Telemetry;
use plimsoll::health::{Check, Component, Health, Report, Status, checks};

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

async fn serve(health: &Health) -> SocketAddr {
    let app: axum::Router = axum::Router::new().nest("/api/v1", health.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// GET `path`: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn gauge(t: &Telemetry, component: &str) -> Option<f64> {
    t.scrape().value(
        "health_status",
        &[("tenant_id", "__system__"), ("component", component)],
    )
}

/// Waits (up to 5 s) until `probe` holds.
async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if probe().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn ready_follows_redis_down_and_back_while_live_stays_up() {
    let Some(mut redis) = support::redis_server() else {
        return;
    };
    let t = telemetry();
    let interval = Duration::from_millis(200);
    let sqlite = sqlx::sqlite::SqlitePoolOptions::new()
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let health = Health::builder(&t)
        .service("orders-api")
        .interval(interval)
        .component(Component::new("database", checks::sqlx_pool(sqlite)))
        .component(
            Component::new("redis", checks::redis_client(client))
                .timeout(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    let addr = serve(&health).await;
    eventually("ready", async || get(addr, "/api/v1/ready").await.0 == 200).await;
    assert_eq!(gauge(&t, "redis"), Some(1.0));

    redis.stop();
    let down = eventually("503 with redis down", async || {
        get(addr, "/api/v1/ready").await.0 == 503
    })
    .await;
    // Within an interval, plus the run's own time (its timeout at most),
    // plus slack for a loaded machine.
    let bound = interval + Duration::from_millis(300) + Duration::from_secs(1);
    assert!(down <= bound, "{down:?}");
    let (_, body) = get(addr, "/api/v1/ready").await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
    assert_eq!(body["phase"], "serving");
    assert_eq!(get(addr, "/api/v1/health").await, (200, "ok".to_owned()));
    assert_eq!(gauge(&t, "redis"), Some(0.0));
    assert_eq!(gauge(&t, "database"), Some(1.0));
    let (code, one) = get(addr, "/api/v1/health/redis").await;
    assert_eq!(code, 503);
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["detail"], "PING failed");
    assert!(
        one.get("error").is_none(),
        "errors are hidden by default: {one}"
    );

    redis.start();
    eventually("200 with redis back", async || {
        get(addr, "/api/v1/ready").await.0 == 200
    })
    .await;
    assert_eq!(get(addr, "/api/v1/health").await.0, 200);
    assert_eq!(gauge(&t, "redis"), Some(1.0));
    let runs = t.scrape().value(
        "health_check_duration_seconds_count",
        &[("tenant_id", "__system__"), ("component", "redis")],
    );
    assert!(runs.unwrap() >= 3.0, "{runs:?}");
}

// Paused time: the timers fire in order, however loaded the machine.
#[tokio::test(start_paused = true)]
async fn a_hanging_check_times_out_without_delaying_the_others() {
    let t = telemetry();
    let fast_runs = Arc::new(AtomicU64::new(0));
    let counted = fast_runs.clone();
    let health = Health::builder(&t)
        .interval(Duration::from_millis(50))
        .component(
            Component::new("stuck", || async {
                std::future::pending::<()>().await;
                Report::healthy()
            })
            .timeout(Duration::from_millis(400)),
        )
        .component(Component::new("fast", move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Report::healthy() }
        }))
        .build()
        .unwrap();
    // While `stuck` hangs for its first run, `fast` is checked every 50 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fast_runs.load(Ordering::Relaxed) >= 4, "{fast_runs:?}");
    assert_eq!(
        health.component("fast").unwrap().status,
        Some(Status::Healthy)
    );
    assert_eq!(health.component("stuck").unwrap().status, None);
    assert!(
        !health.is_ready(),
        "starting until every component is checked"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stuck = health.component("stuck").unwrap();
    assert_eq!(stuck.status, Some(Status::Unhealthy));
    assert_eq!(stuck.detail, "timed out after 400 ms");
    assert!(stuck.latency >= Duration::from_millis(400));
    assert_eq!(health.failing(), vec![Arc::<str>::from("stuck")]);
}

#[tokio::test]
async fn status_matches_the_documented_schema_and_unknown_components_are_404() {
    let t = telemetry();
    let health = Health::builder(&t)
        .service("orders-api")
        .version("1.4.0")
        .show_errors(true)
        .component(Component::new("queue", || async { Report::healthy() }))
        .component(
            Component::new("search", || async {
                Report::degraded("index rebuilding").with_error("node 10.0.0.7 lagging")
            })
            .critical(false),
        )
        .build()
        .unwrap();
    health.check_now().await;
    let addr = serve(&health).await;
    let (code, body) = get(addr, "/api/v1/status").await;
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&doc),
        [
            "components",
            "phase",
            "ready",
            "service",
            "status",
            "uptime_seconds",
            "version"
        ]
    );
    assert_eq!(doc["service"], "orders-api");
    assert_eq!(doc["version"], "1.4.0");
    assert!(doc["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(doc["status"], "degraded");
    assert_eq!(doc["phase"], "serving");
    assert_eq!(doc["ready"], true);
    let search = &doc["components"]["search"];
    assert_eq!(
        keys(search),
        [
            "critical",
            "detail",
            "error",
            "last_checked",
            "latency_ms",
            "status"
        ]
    );
    assert_eq!(search["status"], "degraded");
    assert_eq!(search["critical"], false);
    assert_eq!(search["detail"], "index rebuilding");
    assert_eq!(search["error"], "node 10.0.0.7 lagging");
    assert!(search["latency_ms"].as_f64().unwrap() >= 0.0);
    let checked = search["last_checked"].as_str().unwrap();
    assert!(
        checked.len() == 24 && checked.ends_with('Z') && &checked[10..11] == "T",
        "{checked}"
    );
    assert_eq!(get(addr, "/api/v1/health/queue").await.0, 200);
    let (code, body) = get(addr, "/api/v1/health/nope").await;
    assert_eq!(
        (code, body.as_str()),
        (404, r#"{"error":"no such component"}"#)
    );
    assert_eq!(gauge(&t, "search"), Some(0.5));
    assert_eq!(gauge(&t, "queue"), Some(1.0));

    // Without `show_errors`, the error (here a host) is not shown.
    let t = telemetry();
    let quiet = Health::builder(&t)
        .component(Component::new("search", || async {
            Report::unhealthy("no answer").with_error("node 10.0.0.7 refused")
        }))
        .build()
        .unwrap();
    quiet.check_now().await;
    let doc = quiet.status_json();
    assert_eq!(doc["components"]["search"]["detail"], "no answer");
    assert!(doc["components"]["search"].get("error").is_none(), "{doc}");
    assert!(!doc.to_string().contains("10.0.0.7"));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_reports_unhealthy_and_keeps_being_checked() {
    let t = telemetry();
    let runs = Arc::new(AtomicU64::new(0));
    let counted = runs.clone();
    let health = Health::builder(&t)
        .interval(Duration::from_millis(100))
        .component(Component::new("flaky", move || {
            let n = counted.fetch_add(1, Ordering::Relaxed);
            async move {
                if n.is_multiple_of(2) {
                    panic!("a bug in the check");
                }
                Report::healthy()
            }
        }))
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = health.component("flaky").unwrap();
    assert_eq!(
        (first.status, first.detail.as_str()),
        (Some(Status::Unhealthy), "check panicked")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health.component("flaky").unwrap().status,
        Some(Status::Healthy)
    );
    assert!(runs.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn a_probe_storm_does_not_multiply_database_calls() {
    let t = telemetry();
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let check = Arc::new(checks::sqlx_pool(pool));
    let interval = Duration::from_millis(500);
    let health = Health::builder(&t)
        .interval(interval)
        .component(Component::new("database", move || {
            counted.fetch_add(1, Ordering::Relaxed);
            let check = check.clone();
            async move { check.check().await }
        }))
        .build()
        .unwrap();
    let addr = serve(&health).await;
    eventually("ready", async || get(addr, "/api/v1/ready").await.0 == 200).await;
    let before = calls.load(Ordering::Relaxed);
    let start = Instant::now();
    let probes: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(async move { get(addr, "/api/v1/ready").await.0 }))
        .collect();
    for probe in probes {
        assert_eq!(probe.await.unwrap(), 200);
    }
    let elapsed = start.elapsed();
    let made = calls.load(Ordering::Relaxed) - before;
    let allowed = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        made <= allowed,
        "{made} database calls for 1,000 probes in {elapsed:?}"
    );
}

#[tokio::test]
async fn pool_checks_against_sqlite_and_postgres() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let check = checks::sqlx_pool(pool.clone());
    assert_eq!(check.check().await.status, Status::Healthy);
    let held = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    let saturated = check.check().await;
    assert_eq!(saturated.status, Status::Degraded);
    assert_eq!(saturated.detail, "pool saturated (2/2 in use)");
    drop(held);
    assert_eq!(check.check().await.status, Status::Healthy);
    pool.close().await;
    assert_eq!(check.check().await.detail, "pool closed");

    let Some(pg) = support::postgres_server() else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&pg.url())
        .await
        .unwrap();
    let check = checks::sqlx_pool(pool.clone());
    assert_eq!(check.check().await, Report::healthy());
    drop(pg); // the server goes away
    let gone = check.check().await;
    // Its idle connection fails the pool's test, and no new one opens.
    assert_eq!(
        (gone.status, &*gone.detail),
        (Status::Unhealthy, "no connection")
    );
    assert!(gone.error.is_some());
}

#[tokio::test]
async fn a_breaker_check_follows_the_breaker() {
    let t = telemetry();
    let resilience = plimsoll::resilience::ResilienceMetrics::new(&t).unwrap();
    let breaker = resilience.breaker("payments").build().unwrap();
    let check = checks::breaker(breaker.clone());
    assert_eq!(check.check().await.status, Status::Healthy);
    breaker.force_open();
    assert_eq!(
        check.check().await,
        Report::degraded("circuit breaker open")
    );
    breaker.release();
    assert_eq!(check.check().await.status, Status::Healthy);
}

#[tokio::test]
async fn disk_space_of_the_temp_directory() {
    let dir = std::env::temp_dir();
    assert_eq!(
        checks::disk_space(&dir, 1).check().await.status,
        Status::Healthy
    );
    let full = checks::disk_space(&dir, u64::MAX / 4).check().await;
    assert_eq!(full.status, Status::Unhealthy);
    assert!(full.detail.ends_with("MiB free"), "{}", full.detail);
    let missing = checks::disk_space("/no/such/dir", 1).check().await;
    assert_eq!(missing.detail, "free space unknown");
}
