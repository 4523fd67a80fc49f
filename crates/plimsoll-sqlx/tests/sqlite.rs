//! The instrumented pool against SQLite (in process): exact series for
//! each status, tables read from real statements, overrides, transactions,
//! tenants, the pool gauges, acquire timeouts and the table bound.

use std::time::Duration;

use plimsoll_core::scope::Scope;
use plimsoll_core::testing::Scrape;
use plimsoll_core::{Format, Telemetry};
use plimsoll_sqlx::{MeteredPool, SqlxMetrics};
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

/// One in-memory database (each in-memory connection is its own: one connection).
async fn memory_db(metrics: &SqlxMetrics) -> MeteredPool<Sqlite> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let db = metrics.instrument(pool, "main");
    sqlx::raw_sql(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, total INTEGER NOT NULL);
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE \"Order Lines\" (order_id INTEGER, sku TEXT);",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db
}

/// Queries recorded for `(tenant, operation, table, status)`.
fn queries(scrape: &Scrape, tenant: &str, operation: &str, table: &str, status: &str) -> f64 {
    scrape
        .value(
            "db_query_duration_seconds_count",
            &[
                ("tenant_id", tenant),
                ("operation", operation),
                ("table", table),
                ("database", "main"),
                ("status", status),
            ],
        )
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_status_is_exact() {
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let db = memory_db(&metrics).await;

    sqlx::query("INSERT INTO orders (tenant, total) VALUES (?, ?)")
        .bind("acme")
        .bind(42)
        .execute(&db)
        .await
        .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT total FROM orders WHERE id = ?")
        .bind(1)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(total, 42);
    let none = sqlx::query("SELECT total FROM orders WHERE id = ?")
        .bind(99)
        .fetch_one(&db)
        .await;
    assert!(matches!(none, Err(sqlx::Error::RowNotFound)));
    let optional = sqlx::query("SELECT total FROM orders WHERE id = ?")
        .bind(99)
        .fetch_optional(&db)
        .await
        .unwrap();
    assert!(optional.is_none(), "fetch_optional finding nothing is ok");
    let broken = sqlx::query("SELECT nope FROM orders").fetch_all(&db).await;
    assert!(broken.is_err());
    let missing_table = sqlx::query("DELETE FROM nowhere").execute(&db).await;
    assert!(missing_table.is_err());
    let rows = sqlx::query("SELECT * FROM orders")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // Given up while waiting (here for the only connection): cancelled.
    let held = db.acquire().await.unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(30),
        sqlx::query("UPDATE orders SET total = 0").execute(&db),
    )
    .await;
    assert!(gave_up.is_err());
    drop(held);
    // A row stream dropped after its first row: ok.
    {
        use futures_util::StreamExt;
        let mut stream = sqlx::query("SELECT id FROM orders").fetch(&db);
        assert!(stream.next().await.unwrap().is_ok());
    }

    let s = t.scrape();
    let sys = "__system__";
    assert_eq!(queries(&s, sys, "insert", "orders", "ok"), 1.0);
    assert_eq!(
        queries(&s, sys, "select", "orders", "ok"),
        4.0,
        "fetch_one, fetch_optional, fetch_all, the dropped stream"
    );
    assert_eq!(queries(&s, sys, "select", "orders", "row_not_found"), 1.0);
    assert_eq!(queries(&s, sys, "select", "orders", "error"), 1.0);
    assert_eq!(queries(&s, sys, "delete", "nowhere", "error"), 1.0);
    assert_eq!(queries(&s, sys, "update", "orders", "cancelled"), 1.0);
    assert_eq!(s.sum("db_query_duration_seconds_count", &[]), 9.0);
    // Every query but the cancelled one waited for the connection once,
    // and so did the connection held.
    assert_eq!(
        s.value(
            "db_pool_acquire_duration_seconds_count",
            &[("database", "main")]
        ),
        Some(9.0)
    );
}

#[tokio::test]
async fn tables_are_read_from_real_statements() {
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let db = memory_db(&metrics).await;
    let statements: &[(&str, &str, &str)] = &[
        (
            "INSERT INTO main.orders (tenant, total) VALUES ('a', 1)",
            "insert",
            "orders",
        ),
        (
            "insert into \"Order Lines\" values (1, 'x')",
            "insert",
            "Order Lines",
        ),
        (
            "SELECT o.id FROM orders o JOIN customers c ON c.id = o.id",
            "select",
            "orders",
        ),
        (
            "WITH big AS (SELECT * FROM orders WHERE total > 0) SELECT count(*) FROM big",
            "select",
            "orders",
        ),
        (
            "/* report */ SELECT count(*) FROM [Order Lines] -- trailing",
            "select",
            "Order Lines",
        ),
        (
            "UPDATE customers SET name = 'FROM x' WHERE id = 1",
            "update",
            "customers",
        ),
        (
            "DELETE FROM \"Order Lines\" WHERE sku = ';'",
            "delete",
            "Order Lines",
        ),
        ("SELECT 1", "select", "__none__"),
        ("PRAGMA user_version", "other", "__none__"),
    ];
    for (sql, _, _) in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&db)
            .await
            .unwrap();
    }
    // A batch: the first statement labels it.
    sqlx::raw_sql("SELECT * FROM customers; DELETE FROM orders")
        .execute(&db)
        .await
        .unwrap();
    let s = t.scrape();
    for (sql, operation, table) in statements {
        assert!(
            queries(&s, "__system__", operation, table, "ok") >= 1.0,
            "{sql}: no {operation} on {table}"
        );
    }
    assert_eq!(queries(&s, "__system__", "select", "customers", "ok"), 1.0);
    assert_eq!(queries(&s, "__system__", "delete", "orders", "ok"), 0.0);
}

#[tokio::test]
async fn request_tenant_overrides_and_transactions() {
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let db = memory_db(&metrics).await;
    Scope::new(t.tenant("acme"))
        .run(async {
            sqlx::query("SELECT * FROM orders")
                .fetch_all(&db)
                .await
                .unwrap();
            // The table named for one call.
            sqlx::query("SELECT count(*) FROM orders")
                .fetch_one(&db.with_table("order_report"))
                .await
                .unwrap();
            let mut tx = db.begin().await.unwrap();
            sqlx::query("INSERT INTO orders (tenant, total) VALUES ('acme', 5)")
                .execute(&mut tx)
                .await
                .unwrap();
            sqlx::query("UPDATE orders SET total = 6")
                .execute(&mut tx.with_table("orders_audit"))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let mut tx = db.begin().await.unwrap();
            sqlx::query("DELETE FROM orders")
                .execute(&mut tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
        })
        .await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        left, 1,
        "the commit kept the insert, the rollback undid the delete"
    );

    let s = t.scrape();
    assert_eq!(queries(&s, "acme", "select", "orders", "ok"), 1.0);
    assert_eq!(queries(&s, "acme", "select", "order_report", "ok"), 1.0);
    assert_eq!(queries(&s, "acme", "insert", "orders", "ok"), 1.0);
    assert_eq!(queries(&s, "acme", "update", "orders_audit", "ok"), 1.0);
    assert_eq!(queries(&s, "acme", "delete", "orders", "ok"), 1.0);
    assert_eq!(
        queries(&s, "acme", "other", "__none__", "ok"),
        2.0,
        "commit and rollback"
    );
    assert_eq!(queries(&s, "__system__", "select", "__none__", "ok"), 0.0);
    assert_eq!(queries(&s, "__system__", "select", "orders", "ok"), 1.0);
}

#[tokio::test]
async fn acquire_timeouts_are_counted_and_the_query_times_out() {
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(50))
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let db = metrics.instrument(pool, "main");
    let held = db.acquire().await.unwrap();
    let result = sqlx::query("SELECT 1").fetch_one(&db).await;
    assert!(
        matches!(result, Err(sqlx::Error::PoolTimedOut)),
        "{result:?}"
    );
    drop(held);
    let s = t.scrape();
    assert_eq!(
        queries(&s, "__system__", "select", "__none__", "timeout"),
        1.0
    );
    assert_eq!(
        s.value("db_pool_acquire_timeouts_total", &[("database", "main")]),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "db_pool_acquire_duration_seconds_count",
            &[("database", "main")]
        ),
        Some(2.0),
        "the held connection's acquire and the one that timed out"
    );
    let waited = s
        .value(
            "db_pool_acquire_duration_seconds_sum",
            &[("database", "main")],
        )
        .unwrap();
    assert!(
        waited >= 0.05,
        "the timed-out acquire waited its 50 ms: {waited}"
    );
}

#[tokio::test]
async fn a_busy_database_is_a_timeout() {
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let dir = std::env::temp_dir().join(format!("plimsoll-sqlite-busy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.join("busy.db"))
        .create_if_missing(true)
        .busy_timeout(Duration::from_millis(20));
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let db = metrics.instrument(pool, "main");
    sqlx::query("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
        .execute(&db)
        .await
        .unwrap();
    let mut writer = db.begin().await.unwrap();
    sqlx::query("INSERT INTO kv VALUES ('a', '1')")
        .execute(&mut writer)
        .await
        .unwrap();
    // A second writer waits 20 ms for the lock, then gives up.
    let blocked = sqlx::query("INSERT INTO kv VALUES ('b', '2')")
        .execute(&db)
        .await;
    assert!(blocked.is_err(), "{blocked:?}");
    writer.rollback().await.unwrap();
    let s = t.scrape();
    assert_eq!(queries(&s, "__system__", "insert", "kv", "timeout"), 1.0);
    assert_eq!(queries(&s, "__system__", "insert", "kv", "ok"), 1.0);
    db.pool().close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn pool_gauges_are_the_pools_own_figures_while_connections_are_held() {
    let t = telemetry();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(5)
        .min_connections(0)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let db = metrics.instrument(pool, "main");
    // Three tasks hold a connection each, concurrently.
    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel(3);
    let (release_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let db = db.clone();
        let held_tx = held_tx.clone();
        let mut release = release_tx.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut conn = db.acquire().await.unwrap();
            sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
            held_tx.send(()).await.unwrap();
            let _ = release.recv().await;
        }));
    }
    for _ in 0..3 {
        held_rx.recv().await.unwrap();
    }
    let gauge = |s: &Scrape, state: &str| {
        s.value(
            "db_connection_pool_size",
            &[
                ("state", state),
                ("database", "main"),
                ("tenant_id", "__system__"),
            ],
        )
    };
    let s = t.scrape();
    let pool = db.pool();
    assert_eq!(gauge(&s, "active"), Some(3.0));
    assert_eq!(gauge(&s, "total"), Some(f64::from(pool.size())));
    assert_eq!(gauge(&s, "idle"), Some(pool.num_idle() as f64));
    assert_eq!(gauge(&s, "max"), Some(5.0));
    release_tx.send(()).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    // Returned connections go back to the pool in the background.
    for _ in 0..100 {
        if pool.num_idle() as u32 == pool.size() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = t.scrape();
    assert_eq!(gauge(&s, "active"), Some(0.0));
    assert_eq!(gauge(&s, "idle"), Some(f64::from(pool.size())));
    // A closed pool is no longer read.
    pool.close().await;
    assert_eq!(t.scrape().series_count("db_connection_pool_size"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_tables_stay_within_the_bound() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_label_bound(&plimsoll_sqlx::DB_QUERY_DURATION, "table", 50)
        .build()
        .unwrap();
    let metrics = SqlxMetrics::new(&t).unwrap();
    let db = memory_db(&metrics).await;
    for i in 0..100_000 {
        // Tables that do not exist: the statement fails at once, its table
        // is still read.
        let sql = format!("SELECT * FROM generated_{i}");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .fetch_optional(&db)
            .await;
    }
    let s = t.scrape();
    assert_eq!(
        s.series_count("db_query_duration_seconds_count"),
        51,
        "50 tables and __other__"
    );
    assert_eq!(
        queries(&s, "__system__", "select", "__other__", "error"),
        99_950.0
    );
    assert_eq!(
        s.value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "db_query_duration_seconds"), ("label", "table")]
        ),
        Some(99_950.0)
    );
    let text = t.encode(Format::Prometheus);
    assert!(!text.contains("generated_99999"));
}

#[tokio::test]
async fn bad_configuration_is_a_build_error_naming_the_field() {
    let t = telemetry();
    let zero = SqlxMetrics::builder(&t).slow_query(Duration::ZERO).build();
    assert_eq!(
        zero.unwrap_err().to_string(),
        "slow_query: must be greater than zero"
    );
    let zero = SqlxMetrics::builder(&t)
        .queries_per_request_warning(0)
        .build();
    assert_eq!(
        zero.unwrap_err().to_string(),
        "queries_per_request_warning: must be greater than zero"
    );
    SqlxMetrics::new(&t).unwrap();
    let twice = SqlxMetrics::new(&t);
    assert!(
        twice
            .unwrap_err()
            .to_string()
            .contains("db_connection_pool_size")
    );
}
