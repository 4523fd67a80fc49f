//! The sqlx instrumentation over the bare pool, in the same run: a
//! primary-key `SELECT` on an in-memory SQLite database, 100 per iteration,
//! through the bare `Pool` and through the [`MeteredPool`] inside a
//! request scope (parse, table bound, count per request, record, exemplar).
//!
//! Run: `cargo bench --bench sqlx --features sqlx`.

mod harness;
use std::hint::black_box;

use criterion::Criterion;
use plimsoll::scope::Scope;
use plimsoll::sqlx::{MeteredPool, SqlxMetrics};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Pool, Sqlite};

const SELECTS: i64 = 100;
const SQL: &str = "SELECT id, tenant, total FROM orders WHERE id = ?";

async fn bare(pool: &Pool<Sqlite>) {
    for id in 1..=SELECTS {
        let row: (i64, String, i64) = sqlx::query_as(SQL).bind(id).fetch_one(pool).await.unwrap();
        black_box(row);
    }
}

async fn metered(db: &MeteredPool<Sqlite>) {
    for id in 1..=SELECTS {
        let row: (i64, String, i64) = sqlx::query_as(SQL).bind(id).fetch_one(db).await.unwrap();
        black_box(row);
    }
}

fn selects(c: &mut Criterion) {
    let rt = harness::runtime();
    let telemetry = harness::telemetry();
    let metrics = SqlxMetrics::new(&telemetry).unwrap();
    let pool = rt.block_on(async {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant TEXT, total INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        for id in 1..=SELECTS {
            sqlx::query("INSERT INTO orders VALUES (?, 'acme', ?)")
                .bind(id)
                .bind(id * 100)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool
    });
    // Same pool, same connection, same prepared statement: only the
    // instrumentation differs.
    let db = metrics.instrument(pool.clone(), "main");
    let scope = Scope::counting(telemetry.tenant("acme"), None);
    let mut group = c.benchmark_group("sqlite_pk_select_x100");
    group.bench_function("bare", |b| b.iter(|| rt.block_on(bare(&pool))));
    group.bench_function("plimsoll", |b| {
        b.iter(|| rt.block_on(scope.clone().run(metered(&db))))
    });
    group.finish();
}

harness::bench_main!(5, selects);
