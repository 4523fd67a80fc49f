//! Every family the sqlx instrumentation records, declared once, and
//! their label sets.

use std::sync::Arc;

use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::{impl_label_set, label_key};

/// Default bound on distinct table names.
pub const DEFAULT_MAX_TABLES: usize = 200;
/// Default bound on distinct database names.
pub const DEFAULT_MAX_DATABASES: usize = 16;

const DATABASE: LabelDecl =
    LabelDecl::open("database", DEFAULT_MAX_DATABASES).with_otel_name("db_namespace");
const DATABASE_VIA: LabelDecl =
    LabelDecl::bounded_via("database", "db_query_duration_seconds", "database")
        .with_otel_name("db_namespace");

/// `db_query_duration_seconds{operation, table, database, status}`.
pub const DB_QUERY_DURATION: FamilyDecl = FamilyDecl::histogram(
    "db_query_duration_seconds",
    "Time of database queries, from the call to the last row (waiting for a pooled connection included), in seconds.",
)
.with_unit("seconds")
.with_labels(&[
    LabelDecl::closed("operation").with_otel_name("db_operation_name"),
    LabelDecl::open("table", DEFAULT_MAX_TABLES).with_otel_name("db_collection_name"),
    DATABASE,
    LabelDecl::closed("status"),
]);

/// `db_connection_pool_size{state, database}`, read at scrape time.
pub const DB_POOL_SIZE: FamilyDecl = FamilyDecl::gauge(
    "db_connection_pool_size",
    "Connections of the pool by state: active (in use), idle, total (open), max (the pool's limit); read at scrape time.",
)
.with_otel_name("db_client_connection_count")
.with_labels(&[
    LabelDecl::closed("state").with_otel_name("db_client_connection_state"),
    DATABASE_VIA,
]);

/// `db_pool_acquire_duration_seconds{database}`: acquires that timed out
/// included, with the time they waited.
pub const DB_POOL_ACQUIRE_DURATION: FamilyDecl = FamilyDecl::histogram(
    "db_pool_acquire_duration_seconds",
    "Time waited for a pooled connection, acquires that timed out included, in seconds.",
)
.with_otel_name("db_client_connection_wait_time_seconds")
.with_unit("seconds")
.with_labels(&[DATABASE_VIA]);

/// `db_pool_acquire_timeouts_total{database}`: acquires that gave up
/// (`sqlx::Error::PoolTimedOut`).
pub const DB_POOL_ACQUIRE_TIMEOUTS: FamilyDecl = FamilyDecl::counter(
    "db_pool_acquire_timeouts_total",
    "Acquires of a pooled connection that timed out.",
)
.with_otel_name("db_client_connection_timeouts_total")
.with_labels(&[DATABASE_VIA]);

/// Buckets of [`DB_QUERIES_PER_REQUEST`].
pub const QUERIES_PER_REQUEST_BUCKETS: &[f64] =
    &[0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0];

/// `db_queries_per_request{route}`: the queries each HTTP request ran.
pub const DB_QUERIES_PER_REQUEST: FamilyDecl = FamilyDecl::histogram(
    "db_queries_per_request",
    "Database queries run by each request, by route.",
)
.with_labels(&[
    LabelDecl::bounded_via("route", "http_requests_total", "route").with_otel_name("http_route"),
])
.with_buckets(QUERIES_PER_REQUEST_BUCKETS);

/// Every family of this crate, for the catalogue.
pub const ALL: &[FamilyDecl] = &[
    DB_QUERY_DURATION,
    DB_POOL_SIZE,
    DB_POOL_ACQUIRE_DURATION,
    DB_POOL_ACQUIRE_TIMEOUTS,
    DB_QUERIES_PER_REQUEST,
];

/// Labels of `db_query_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct QueryLabels {
    /// `select`, `insert`, `update`, `delete` or `other`.
    pub operation: &'static str,
    /// The table, bounded.
    pub table: Arc<str>,
    /// The database's name, as given to [`SqlxMetrics::instrument`](crate::SqlxMetrics::instrument).
    pub database: Arc<str>,
    /// `ok`, `error`, `timeout`, `row_not_found` or `cancelled`.
    pub status: &'static str,
}
impl_label_set!(QueryLabels {
    operation,
    table,
    database,
    status
});
label_key!(
    /// The borrowed form of [`QueryLabels`].
    pub struct QueryKey for QueryLabels {
        operation: &'static str,
        table: Arc<str>,
        database: Arc<str>,
        status: &'static str,
    }
);

/// Labels of `db_connection_pool_size`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct PoolLabels {
    /// `active`, `idle`, `total` or `max`.
    pub state: &'static str,
    /// The database's name.
    pub database: Arc<str>,
}
impl_label_set!(PoolLabels { state, database });

/// Labels of the acquire families.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct DatabaseLabels {
    /// The database's name.
    pub database: Arc<str>,
}
impl_label_set!(DatabaseLabels { database });
label_key!(
    /// The borrowed form of [`DatabaseLabels`].
    pub struct DatabaseKey for DatabaseLabels { database: Arc<str> }
);

/// Labels of `db_queries_per_request`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RouteLabels {
    /// The route template, as the HTTP layer bounded it.
    pub route: Arc<str>,
}
impl_label_set!(RouteLabels { route });
label_key!(
    /// The borrowed form of [`RouteLabels`].
    pub struct RouteKey for RouteLabels { route: Arc<str> }
);
