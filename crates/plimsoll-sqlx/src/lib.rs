//! Database metrics for plimsoll: every sqlx query timed by operation,
//! table and status, per tenant; pool sizes read at scrape time; the wait
//! for a pooled connection; and the queries each request runs, with a
//! warning when one runs too many (the N+1 query).
//!
//! ```
//! use plimsoll_core::{Format, Telemetry};
//! use plimsoll_sqlx::SqlxMetrics;
//! use sqlx::sqlite::SqlitePoolOptions;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let telemetry = Telemetry::builder().with_process_metrics(false).build()?;
//! let metrics = SqlxMetrics::new(&telemetry)?;
//! // One connection: each in-memory SQLite connection is a database of its own.
//! let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
//! let db = metrics.instrument(pool, "orders"); // the one changed line
//!
//! sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)")
//!     .execute(&db)
//!     .await?;
//! sqlx::query("INSERT INTO orders (total) VALUES (?)").bind(42).execute(&db).await?;
//! let missing = sqlx::query("SELECT total FROM orders WHERE id = ?").bind(7).fetch_one(&db).await;
//! assert!(matches!(missing, Err(sqlx::Error::RowNotFound)));
//!
//! let text = telemetry.encode(Format::Prometheus);
//! assert!(text.contains(
//!     r#"db_query_duration_seconds_count{tenant_id="__system__",operation="insert",table="orders",database="orders",status="ok"} 1"#
//! ));
//! assert!(text.contains(r#"operation="select",table="orders",database="orders",status="row_not_found"} 1"#));
//! assert!(text.contains(r#"db_connection_pool_size{tenant_id="__system__",state="max",database="orders"} 1"#));
//! # Ok(())
//! # }
//! ```
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `db_query_duration_seconds` | operation, table, database, status |
//! | `db_connection_pool_size` | state (`active`, `idle`, `total`, `max`), database — read at scrape time |
//! | `db_pool_acquire_duration_seconds` | database |
//! | `db_pool_acquire_timeouts_total` | database |
//! | `db_queries_per_request` | route |
//!
//! # Adoption: one line
//!
//! [`SqlxMetrics::instrument`] turns a `Pool` into a [`MeteredPool`], which
//! is a sqlx `Executor` like the pool itself. Replace the pool in the
//! service's state with it and call sites do not change
//! (`.fetch_one(&state.db)`); a call site that names the pool changes
//! `&pool` to `&db`. Transactions: `db.begin()` (statements run with
//! `&mut tx` instead of `&mut *tx`), pooled connections: `db.acquire()`.
//!
//! # Why an executor, and not sqlx's `tracing` events
//!
//! sqlx has no metrics hook. It does emit a `tracing` event on target
//! `sqlx::query` after each query, with the statement and its elapsed
//! time, which a subscriber layer could turn into metrics with no change
//! to the service at all. It was not chosen because that event carries no
//! error: a failed query, a timeout and `RowNotFound` would all look like
//! successes, and the `status` label would lie. It also arrives only if
//! the subscriber enables sqlx's log level, and says nothing of the pool
//! wait. The executor sees the `Result` of every call, so each status is
//! exact, and it acquires the connection itself, so the wait is measured.
//!
//! The sqlx maintainers do not support executors outside sqlx: the
//! `Executor` trait may grow. This crate depends on sqlx 0.9 with its
//! `macros` feature, which fixes the trait's set of methods whatever
//! features the service enables, and every method hands the query on
//! unchanged (same text, prepared statement, arguments and persistence).
//!
//! # Labels
//!
//! - `operation` and `table` are read from the SQL text ([`sql::parse`]):
//!   the first table after `FROM`, `INTO`, `UPDATE` or `JOIN`; `WITH`
//!   lists, quoted and schema-qualified names, comments and literals are
//!   handled, and only the first statement of a batch counts. A statement
//!   without a table records `table="__none__"`. Override the table for a
//!   call with [`MeteredPool::with_table`] or
//!   [`MeteredConnection::with_table`]. Tables are bounded
//!   ([`DEFAULT_MAX_TABLES`](families::DEFAULT_MAX_TABLES), set with the
//!   telemetry's `with_label_bound`); past the bound, `__other__`.
//! - `status`: `ok`; `row_not_found` (`fetch_one` found no row); `timeout`
//!   (`PoolTimedOut`, PostgreSQL's `statement_timeout` or `lock_timeout`,
//!   SQLite's busy timeout); `error` (any other error); `cancelled` (the
//!   query's future was dropped before it ended, e.g. by a
//!   `tokio::time::timeout` around it or a client that went away; a row
//!   stream dropped after yielding rows is `ok`).
//! - The duration runs from the call to the last row, waiting for a pooled
//!   connection included (`db_pool_acquire_duration_seconds` has the wait
//!   alone).
//! - Queries record under the current request's tenant and trace (the
//!   server layers open a request scope); outside a request, `__system__`.
//!   Pool gauges belong to no tenant: `__system__`.
//!
//! # Queries per request
//!
//! With the HTTP or gRPC layer of `plimsoll-http` in front, every request
//! counts the queries it runs; when it ends, `db_queries_per_request{route}`
//! records the count (a gRPC call's route is `/service/method`), and a request that ran more than
//! [`queries_per_request_warning`](SqlxMetricsBuilder::queries_per_request_warning)
//! queries logs a warning naming its route and tenant. Queries run in a
//! spawned task count when the task carries the scope
//! (`plimsoll_core::scope::carry`).
//!
//! # Slow queries
//!
//! A query slower than [`slow_query`](SqlxMetricsBuilder::slow_query) logs a
//! warning with the statement's [shape](sql::shape): its text with every
//! literal replaced by `?`, so values never reach the logs.

pub mod families;
pub mod sql;

mod executor;
mod metrics;

pub use executor::{AsConnection, Backend, MeteredConnection, MeteredPool};
pub use families::{
    DB_POOL_ACQUIRE_DURATION, DB_POOL_ACQUIRE_TIMEOUTS, DB_POOL_SIZE, DB_QUERIES_PER_REQUEST,
    DB_QUERY_DURATION,
};
pub use metrics::{
    DEFAULT_QUERIES_PER_REQUEST_WARNING, DEFAULT_SLOW_QUERY, SqlxBuildError, SqlxMetrics,
    SqlxMetricsBuilder,
};
