//! The families of one telemetry, what each query records, the pool
//! gauges read at scrape time, and the queries-per-request observer.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use plimsoll_core::classify::Outcome;
use plimsoll_core::clock::Stamp;
use plimsoll_core::operation::{Completed, Operation, RecordOperation};
use plimsoll_core::scope::{RequestObserver, Scope};
use plimsoll_core::trace::{Attribute, OpenSpan, SpanKind, SpanStart};
use plimsoll_core::{Counter, Histogram, LabelGuard, RegisterError, Telemetry, Tenant};
use sqlx_core::database::Database;
use sqlx_core::error::Error;
use sqlx_core::pool::{Pool, PoolConnection};
use sqlx_core::sql_str::SqlStr;

use crate::families::{
    self, DatabaseKey, DatabaseLabels, PoolLabels, QueryKey, QueryLabels, RouteKey, RouteLabels,
};
use crate::sql;

/// Default slow-query threshold.
pub const DEFAULT_SLOW_QUERY: Duration = Duration::from_secs(1);
/// Default number of queries in one request past which a warning is logged.
pub const DEFAULT_QUERIES_PER_REQUEST_WARNING: u32 = 25;

/// An invalid [`SqlxMetricsBuilder`] setting; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SqlxBuildError {
    /// A threshold is zero.
    #[error("{field}: must be greater than zero")]
    ZeroThreshold {
        /// The setting.
        field: &'static str,
    },
    /// A family could not be registered (e.g. a second `SqlxMetrics` on
    /// the same telemetry: its scrape-time family would be registered twice).
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Reads a pool's `(size, idle, max)`; `None` once it is closed.
type Sizes = Box<dyn Fn() -> Option<(u32, u32, u32)> + Send + Sync>;
/// The pools read at scrape time, by database name.
type Watched = Mutex<Vec<(Arc<str>, Sizes)>>;

/// The sqlx families of one [`Telemetry`]: create one (with
/// [`new`](SqlxMetrics::new) or [`builder`](SqlxMetrics::builder)), then
/// [`instrument`](SqlxMetrics::instrument) each pool. Cheap to clone.
#[derive(Clone)]
pub struct SqlxMetrics {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) telemetry: Telemetry,
    queries: Histogram<QueryLabels>,
    acquires: Histogram<DatabaseLabels>,
    acquire_timeouts: Counter<DatabaseLabels>,
    tables: LabelGuard,
    databases: LabelGuard,
    slow: Option<Duration>,
    pools: Arc<Watched>,
}

impl fmt::Debug for SqlxMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxMetrics")
            .field("databases", &self.shared.databases.len())
            .field("tables", &self.shared.tables.len())
            .field("slow_query", &self.shared.slow)
            .finish_non_exhaustive()
    }
}

/// Builds [`SqlxMetrics`].
#[derive(Debug)]
pub struct SqlxMetricsBuilder {
    telemetry: Telemetry,
    slow_query: Option<Duration>,
    per_request: Option<u32>,
}

impl SqlxMetricsBuilder {
    /// Logs a `tracing` warning (target `plimsoll::sqlx`) for each query
    /// that takes at least `threshold`, with the statement's
    /// [shape](crate::sql::shape) (no literal, no parameter value), its
    /// table, database, tenant and duration. Default
    /// [`DEFAULT_SLOW_QUERY`]; zero is a build error.
    pub fn slow_query(mut self, threshold: Duration) -> Self {
        self.slow_query = Some(threshold);
        self
    }

    /// Logs no slow-query warning.
    pub fn no_slow_query_warning(mut self) -> Self {
        self.slow_query = None;
        self
    }

    /// Logs a `tracing` warning (target `plimsoll::sqlx`) naming the route
    /// and tenant of each request that runs more than `queries` queries:
    /// the N+1 query, found in production. Default
    /// [`DEFAULT_QUERIES_PER_REQUEST_WARNING`]; zero is a build error.
    pub fn queries_per_request_warning(mut self, queries: u32) -> Self {
        self.per_request = Some(queries);
        self
    }

    /// Records no `db_queries_per_request` and logs no N+1 warning (the
    /// server layers then do not count queries per request).
    pub fn without_queries_per_request(mut self) -> Self {
        self.per_request = None;
        self
    }

    /// Registers the families on the telemetry.
    pub fn build(self) -> Result<SqlxMetrics, SqlxBuildError> {
        if self.slow_query == Some(Duration::ZERO) {
            return Err(SqlxBuildError::ZeroThreshold {
                field: "slow_query",
            });
        }
        if self.per_request == Some(0) {
            return Err(SqlxBuildError::ZeroThreshold {
                field: "queries_per_request_warning",
            });
        }
        let telemetry = self.telemetry;
        let pools: Arc<Watched> = Arc::default();
        let watched = Arc::downgrade(&pools);
        telemetry.declare_scraped(&families::DB_POOL_SIZE, move |out| {
            for (database, (size, idle, max)) in read_sizes(&watched) {
                let active = size.saturating_sub(idle);
                for (state, value) in [
                    ("active", active),
                    ("idle", idle),
                    ("total", size),
                    ("max", max),
                ] {
                    let labels = PoolLabels {
                        state,
                        database: database.clone(),
                    };
                    let _ = out.set(&Tenant::system(), &labels, f64::from(value));
                }
            }
        })?;
        let shared = Shared {
            queries: telemetry.declare(&families::DB_QUERY_DURATION)?,
            acquires: telemetry.declare(&families::DB_POOL_ACQUIRE_DURATION)?,
            acquire_timeouts: telemetry.declare(&families::DB_POOL_ACQUIRE_TIMEOUTS)?,
            tables: telemetry.label_guard(&families::DB_QUERY_DURATION, "table")?,
            databases: telemetry.label_guard(&families::DB_QUERY_DURATION, "database")?,
            slow: self.slow_query,
            pools,
            telemetry: telemetry.clone(),
        };
        if let Some(threshold) = self.per_request {
            let observer = PerRequest {
                queries: telemetry.declare(&families::DB_QUERIES_PER_REQUEST)?,
                threshold,
            };
            telemetry.observe_requests(Arc::new(observer));
        }
        Ok(SqlxMetrics {
            shared: Arc::new(shared),
        })
    }
}

fn read_sizes(pools: &Weak<Watched>) -> Vec<(Arc<str>, (u32, u32, u32))> {
    let Some(pools) = pools.upgrade() else {
        return Vec::new();
    };
    let mut pools = pools.lock().unwrap_or_else(|e| e.into_inner());
    let mut sizes = Vec::with_capacity(pools.len());
    pools.retain(|(name, read)| match read() {
        Some(size) => {
            sizes.push((name.clone(), size));
            true
        }
        None => false,
    });
    sizes
}

impl SqlxMetrics {
    /// Registers the families on `telemetry` with the defaults: slow-query
    /// warning at [`DEFAULT_SLOW_QUERY`], queries per request recorded with
    /// a warning past [`DEFAULT_QUERIES_PER_REQUEST_WARNING`].
    pub fn new(telemetry: &Telemetry) -> Result<Self, SqlxBuildError> {
        Self::builder(telemetry).build()
    }

    /// A builder with the defaults.
    pub fn builder(telemetry: &Telemetry) -> SqlxMetricsBuilder {
        SqlxMetricsBuilder {
            telemetry: telemetry.clone(),
            slow_query: Some(DEFAULT_SLOW_QUERY),
            per_request: Some(DEFAULT_QUERIES_PER_REQUEST_WARNING),
        }
    }

    /// Instruments `pool` as the database named `database` (bounded): use
    /// the returned pool where the pool was used. Its sizes are read at
    /// every scrape while it is open.
    pub fn instrument<DB: Database>(
        &self,
        pool: Pool<DB>,
        database: &str,
    ) -> crate::MeteredPool<DB> {
        let db = self.database(database);
        let watched = pool.clone();
        self.shared
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                db.database.clone(),
                Box::new(move || {
                    (!watched.is_closed()).then(|| {
                        let size = watched.size();
                        let idle = u32::try_from(watched.num_idle()).unwrap_or(u32::MAX);
                        (
                            size,
                            idle.min(size),
                            watched.options().get_max_connections(),
                        )
                    })
                }),
            ));
        crate::MeteredPool::new(pool, db)
    }

    fn database(&self, name: &str) -> Db {
        Db {
            database: self.shared.databases.admit(name),
            shared: self.shared.clone(),
        }
    }
}

/// One instrumented database: where its queries record.
pub(crate) struct Db {
    pub(crate) shared: Arc<Shared>,
    pub(crate) database: Arc<str>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// What a query carries from its start to its end.
pub(crate) struct Query {
    operation: sql::Operation,
    table: Arc<str>,
    /// The statement, kept for the slow-query warning.
    sql: Option<SqlStr>,
    /// How its database writes literals, for its shape.
    dialect: sql::Dialect,
}

/// The operation guard of one query.
pub(crate) type QueryOp<'a> = Operation<&'a Db>;

/// The status of a failed query.
pub(crate) fn failure(database: &str, error: &Error) -> Outcome {
    match error {
        Error::RowNotFound => Outcome::Error("row_not_found"),
        Error::PoolTimedOut => Outcome::Timeout,
        Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Outcome::Timeout,
        Error::Database(e)
            if e.code()
                .is_some_and(|code| is_timeout_code(database, &code)) =>
        {
            Outcome::Timeout
        }
        _ => Outcome::Error("error"),
    }
}

/// Database error codes that mean a timeout, by database (`Database::NAME`):
/// PostgreSQL's `query_canceled` (a `statement_timeout`) and
/// `lock_not_available` (a `lock_timeout`); SQLite's `SQLITE_BUSY` (the busy
/// timeout ran out); MySQL's lock wait timeout and statement time limit.
fn is_timeout_code(database: &str, code: &str) -> bool {
    match database {
        "PostgreSQL" => matches!(code, "57014" | "55P03"),
        // SQLite reports the extended code; the primary is its low byte.
        "SQLite" => code.parse::<u32>().is_ok_and(|c| c & 0xff == 5),
        "MySQL" => matches!(code, "1205" | "3024"),
        _ => false,
    }
}

/// The outcome of a query's result on the database named `database`.
pub(crate) fn outcome<T>(database: &str, result: &Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(error) => failure(database, error),
    }
}

impl Db {
    /// Starts timing a statement: reads its operation and table (or takes
    /// `table`), counts it in the request's scope.
    pub(crate) fn start(
        &self,
        sql: &SqlStr,
        table: Option<&Arc<str>>,
        database: &'static str,
    ) -> QueryOp<'_> {
        let dialect = sql::Dialect::of(database);
        let parsed = sql::parse_in(sql.as_str(), dialect);
        let table = match table {
            Some(table) => table.clone(),
            None => {
                let name = parsed.table.as_deref().unwrap_or(sql::NO_TABLE);
                self.shared.tables.admit(sql::truncate_table(name))
            }
        };
        plimsoll_core::scope::count_query();
        let query = Query {
            operation: parsed.operation,
            table,
            sql: self.shared.slow.map(|_| sql.clone()),
            dialect,
        };
        Operation::start(&self.shared.telemetry, self, query)
    }

    /// Starts timing a statement that is not in the text: commit, rollback.
    pub(crate) fn start_other(&self) -> QueryOp<'_> {
        plimsoll_core::scope::count_query();
        let query = Query {
            operation: sql::Operation::Other,
            table: self.shared.tables.admit(sql::NO_TABLE),
            sql: None,
            dialect: sql::Dialect::Standard,
        };
        Operation::start(&self.shared.telemetry, self, query)
    }

    /// A table name given by the caller, admitted through the bound.
    pub(crate) fn table(&self, name: &str) -> Arc<str> {
        self.shared.tables.admit(sql::truncate_table(name))
    }

    /// Acquires a pooled connection, timing the wait.
    pub(crate) async fn acquire<DB: Database>(
        &self,
        pool: &Pool<DB>,
    ) -> Result<PoolConnection<DB>, Error> {
        let start = Stamp::now();
        let result = pool.acquire().await;
        let tenant = plimsoll_core::scope::current_tenant();
        let key = DatabaseKey {
            database: &self.database,
        };
        let shared = &self.shared;
        shared
            .acquires
            .observe(&tenant, &key, start.elapsed_seconds());
        if matches!(result, Err(Error::PoolTimedOut)) {
            shared.acquire_timeouts.inc(&tenant, &key);
        }
        result
    }
}

impl RecordOperation for Db {
    type Labels = Query;

    fn record(&self, done: Completed<'_, Query>) {
        let status = match done.outcome {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
            Outcome::Error("row_not_found") => "row_not_found",
            _ => "error",
        };
        let query = done.labels;
        let key = QueryKey {
            operation: query.operation.as_str(),
            table: &query.table,
            database: &self.database,
            status,
        };
        self.shared
            .queries
            .observe_with_exemplar(done.tenant, &key, done.seconds, done.trace);
        if let (Some(threshold), Some(statement)) = (self.shared.slow, &query.sql)
            && done.seconds >= threshold.as_secs_f64()
        {
            tracing::warn!(
                target: "plimsoll::sqlx",
                database = &*self.database,
                operation = query.operation.as_str(),
                table = &*query.table,
                status,
                tenant = done.tenant.as_str(),
                duration_ms = done.seconds * 1e3,
                statement = sql::shape_in(statement.as_str(), query.dialect),
                "slow query"
            );
        }
    }

    /// A client span named `OPERATION table` (`SELECT orders`), with the
    /// statement's shape (every literal replaced by `?`) as its text.
    fn open_span(&self, telemetry: &Telemetry, query: &Query) -> OpenSpan {
        let operation = query.operation.as_str().to_ascii_uppercase();
        let name = if &*query.table == sql::NO_TABLE {
            operation.clone()
        } else {
            format!("{operation} {}", query.table)
        };
        let shape = query
            .sql
            .as_ref()
            .map(|statement| sql::shape_in(statement.as_str(), query.dialect));
        let mut attributes: Vec<Attribute<'_>> = vec![
            ("db.namespace", (&*self.database).into()),
            ("db.operation.name", operation.as_str().into()),
            ("db.collection.name", (&*query.table).into()),
        ];
        if let Some(shape) = &shape {
            attributes.push(("db.query.text", shape.as_str().into()));
        }
        telemetry.start_span(&SpanStart::new(&name, SpanKind::Client, &attributes))
    }
}

/// Records `db_queries_per_request` when a request ends, and warns past the
/// threshold.
struct PerRequest {
    queries: Histogram<RouteLabels>,
    threshold: u32,
}

impl RequestObserver for PerRequest {
    fn request_ended(&self, route: &str, scope: &Scope) {
        let Some(queries) = scope.queries() else {
            return;
        };
        let key = RouteKey { route };
        self.queries
            .observe(scope.tenant(), &key, f64::from(queries));
        if queries > self.threshold {
            tracing::warn!(
                target: "plimsoll::sqlx",
                route,
                tenant = scope.tenant().as_str(),
                queries,
                threshold = self.threshold,
                "one request ran more queries than the threshold (an N+1 query?)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_codes_are_read_per_database() {
        assert!(is_timeout_code("PostgreSQL", "57014"));
        assert!(is_timeout_code("PostgreSQL", "55P03"));
        // insufficient_privilege: its low byte is SQLite's BUSY, and it is no timeout.
        assert!(!is_timeout_code("PostgreSQL", "42501"));
        assert!(is_timeout_code("SQLite", "5"));
        assert!(is_timeout_code("SQLite", "517"));
        assert!(!is_timeout_code("SQLite", "19"));
        assert!(is_timeout_code("MySQL", "1205"));
        assert!(!is_timeout_code("MySQL", "1062"));
    }
}
