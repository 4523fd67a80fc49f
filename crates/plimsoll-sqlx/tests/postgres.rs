//! The instrumented pool against a real PostgreSQL server, started on
//! loopback for each test. Without `PLIMSOLL_REQUIRE_SERVICES=1` a missing
//! server skips the test with one line; with it (as in CI) the test fails.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use plimsoll_core::Telemetry;
use plimsoll_core::scope::Scope;
use plimsoll_core::testing::Scrape;
use plimsoll_sqlx::{MeteredPool, SqlxMetrics};
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

async fn connect(
    server: &support::PostgresServer,
    metrics: &SqlxMetrics,
    max: u32,
) -> MeteredPool<Postgres> {
    let options: PgConnectOptions = server.url().parse().unwrap();
    // Statements slower than 200 ms are cancelled by the server.
    let options = options.options([("statement_timeout", "200")]);
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await
        .unwrap();
    metrics.instrument(pool, "app")
}

fn queries(s: &Scrape, tenant: &str, operation: &str, table: &str, status: &str) -> f64 {
    s.value(
        "db_query_duration_seconds_count",
        &[
            ("tenant_id", tenant),
            ("operation", operation),
            ("table", table),
            ("database", "app"),
            ("status", status),
        ],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn statuses_tables_and_tenants_on_postgres() {
    let Some(server) = support::postgres_server() else {
        return;
    };
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let db = connect(&server, &metrics, 4).await;
    sqlx::raw_sql(
        r#"CREATE SCHEMA billing;
           CREATE TABLE billing."Invoices" (id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, cents BIGINT NOT NULL);
           CREATE TABLE customers (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);"#,
    )
    .execute(db.pool())
    .await
    .unwrap();

    Scope::new(t.tenant("acme"))
        .run(async {
            let id: i64 = sqlx::query_scalar(
                r#"INSERT INTO billing."Invoices" (tenant, cents) VALUES ($1, $2) RETURNING id"#,
            )
            .bind("acme")
            .bind(1200_i64)
            .fetch_one(&db)
            .await
            .unwrap();
            let cents: i64 = sqlx::query_scalar(
                r#"WITH mine AS (SELECT * FROM billing."Invoices" WHERE tenant = $1)
                   SELECT cents FROM mine WHERE id = $2"#,
            )
            .bind("acme")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
            assert_eq!(cents, 1200);
            let missing = sqlx::query("SELECT name FROM public.customers WHERE id = $1")
                .bind(404_i64)
                .fetch_one(&db)
                .await;
            assert!(matches!(missing, Err(sqlx::Error::RowNotFound)));
            let syntax = sqlx::query("SELEC name FROM customers").execute(&db).await;
            assert!(syntax.is_err());
            let violated = sqlx::query(r#"INSERT INTO billing."Invoices" (tenant) VALUES ('x')"#)
                .execute(&db)
                .await;
            assert!(violated.is_err(), "cents is NOT NULL");
            // Cancelled by the server's statement_timeout.
            let slow = sqlx::query("SELECT pg_sleep(5), count(*) FROM customers")
                .fetch_all(&db)
                .await;
            let code = slow
                .as_ref()
                .err()
                .and_then(|e| e.as_database_error())
                .and_then(|e| e.code())
                .map(|c| c.to_string());
            assert_eq!(code.as_deref(), Some("57014"), "{slow:?}");
            let mut tx = db.begin().await.unwrap();
            sqlx::query("UPDATE customers SET name = 'x' WHERE id = 1")
                .execute(&mut tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        })
        .await;

    let s = t.scrape();
    assert_eq!(queries(&s, "acme", "insert", "Invoices", "ok"), 1.0);
    assert_eq!(
        queries(&s, "acme", "select", "Invoices", "ok"),
        1.0,
        "read through the CTE"
    );
    assert_eq!(
        queries(&s, "acme", "select", "customers", "row_not_found"),
        1.0
    );
    assert_eq!(
        queries(&s, "acme", "other", "__none__", "error"),
        1.0,
        "SELEC is no verb"
    );
    assert_eq!(queries(&s, "acme", "insert", "Invoices", "error"), 1.0);
    assert_eq!(queries(&s, "acme", "select", "customers", "timeout"), 1.0);
    assert_eq!(queries(&s, "acme", "update", "customers", "ok"), 1.0);
    assert_eq!(
        queries(&s, "acme", "other", "__none__", "ok"),
        1.0,
        "the commit"
    );
    assert_eq!(
        s.sum("db_query_duration_seconds_count", &[("tenant_id", "acme")]),
        8.0
    );
    let slow = s
        .value(
            "db_query_duration_seconds_sum",
            &[
                ("tenant_id", "acme"),
                ("table", "customers"),
                ("status", "timeout"),
            ],
        )
        .unwrap();
    assert!((0.2..5.0).contains(&slow), "timed out after 200 ms: {slow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_gauges_match_the_pool_under_concurrent_load() {
    let Some(server) = support::postgres_server() else {
        return;
    };
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let db = connect(&server, &metrics, 8).await;
    let gauge = |s: &Scrape, state: &str| {
        s.value(
            "db_connection_pool_size",
            &[("state", state), ("database", "app")],
        )
    };
    // Twenty tasks run queries on eight connections at once; five more
    // hold a connection each until released.
    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel(5);
    let (release_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut holders = Vec::new();
    for _ in 0..5 {
        let db = db.clone();
        let held_tx = held_tx.clone();
        let mut release = release_tx.subscribe();
        holders.push(tokio::spawn(async move {
            let mut conn = db.acquire().await.unwrap();
            sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
            held_tx.send(()).await.unwrap();
            let _ = release.recv().await;
        }));
    }
    let mut load = Vec::new();
    for _ in 0..20 {
        let db = db.clone();
        load.push(tokio::spawn(async move {
            for _ in 0..10 {
                sqlx::query("SELECT pg_sleep(0.001)")
                    .execute(&db)
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..5 {
        held_rx.recv().await.unwrap();
    }
    // Under load: the figures move, but never past the pool's own.
    let s = t.scrape();
    let active = gauge(&s, "active").unwrap();
    assert!((5.0..=8.0).contains(&active), "{active}");
    assert_eq!(gauge(&s, "max"), Some(8.0));
    assert!(gauge(&s, "total").unwrap() <= 8.0);
    for task in load {
        task.await.unwrap();
    }
    // Quiet again, five still held: exactly the pool's figures.
    let pool = db.pool();
    for _ in 0..200 {
        if pool.size() - pool.num_idle() as u32 == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = t.scrape();
    assert_eq!(gauge(&s, "active"), Some(5.0));
    assert_eq!(gauge(&s, "total"), Some(f64::from(pool.size())));
    assert_eq!(gauge(&s, "idle"), Some(pool.num_idle() as f64));
    release_tx.send(()).unwrap();
    for task in holders {
        task.await.unwrap();
    }
    assert_eq!(
        queries(&s, "__system__", "select", "__none__", "ok"),
        205.0,
        "200 under load and 5 on the held connections"
    );
    pool.close().await;
}
