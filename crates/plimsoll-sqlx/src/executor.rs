//! The instrumented pool and connection: sqlx executors that time every
//! statement they run and hand it on unchanged.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::TryStreamExt;
use plimsoll_core::classify::Outcome;
use sqlx_core::Either;
use sqlx_core::database::Database;
use sqlx_core::describe::Describe;
use sqlx_core::error::{BoxDynError, Error};
use sqlx_core::executor::{Execute, Executor};
use sqlx_core::ext::async_stream::TryAsyncStream;
use sqlx_core::pool::{Pool, PoolConnection};
use sqlx_core::sql_str::SqlStr;
use sqlx_core::transaction::Transaction;

use crate::metrics::{Db, QueryOp, failure, outcome};

/// A query taken apart to read its SQL, and put back together for the
/// executor it is handed to: same text, statement, arguments, persistence.
struct Parts<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Option<Result<Option<DB::Arguments>, BoxDynError>>,
    persistent: bool,
}

impl<DB: Database> Parts<DB> {
    fn of<'q, E: Execute<'q, DB>>(mut query: E) -> Self {
        // In the order the drivers read them: a query that had arguments
        // (a `query!` `Map`) says whether it persists once they are taken.
        let statement = query.statement().cloned();
        let arguments = Some(query.take_arguments());
        let persistent = query.persistent();
        Self {
            sql: query.sql(),
            statement,
            arguments,
            persistent,
        }
    }
}

impl<'q, DB: Database> Execute<'q, DB> for Parts<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        self.arguments.take().unwrap_or(Ok(None))
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// Where a statement runs: a connection acquired from a pool for it, or
/// one held by the caller.
enum Source<'e, DB: Database> {
    Pool(&'e Pool<DB>),
    Held(&'e mut DB::Connection),
}

/// A connection for one statement: pooled (returned when dropped) or held.
enum Conn<'e, DB: Database> {
    Pooled(PoolConnection<DB>),
    Held(&'e mut DB::Connection),
}

impl<DB: Database> Conn<'_, DB> {
    fn get(&mut self) -> &mut DB::Connection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Held(conn) => conn,
        }
    }
}

impl<'e, DB: Database> Source<'e, DB> {
    async fn get(self, db: &Db) -> Result<Conn<'e, DB>, Error> {
        match self {
            Source::Pool(pool) => db.acquire(pool).await.map(Conn::Pooled),
            Source::Held(conn) => Ok(Conn::Held(conn)),
        }
    }
}

/// Ends a streamed query's operation: with the first error, at the end of
/// the stream, or when the stream is dropped (ok if it yielded rows,
/// cancelled if not).
struct StreamEnd<'a> {
    op: Option<QueryOp<'a>>,
    yielded: bool,
    /// The database's name (`Database::NAME`), to read its error codes.
    database: &'static str,
}

impl<'a> StreamEnd<'a> {
    fn check<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(error) = &result
            && let Some(op) = self.op.take()
        {
            op.finish(failure(self.database, error));
        }
        result
    }
}

impl Drop for StreamEnd<'_> {
    fn drop(&mut self) {
        if let Some(op) = self.op.take()
            && (self.yielded || !std::thread::panicking())
        {
            if self.yielded {
                op.finish(Outcome::Ok);
            } else {
                drop(op); // cancelled (or a panic), as the guard records it
            }
        }
    }
}

type Step<DB> = Either<<DB as Database>::QueryResult, <DB as Database>::Row>;

/// A sqlx database whose connections run statements: every one of sqlx's
/// (SQLite, PostgreSQL, MySQL) is one. The metered executors hand their
/// statements on through it.
pub trait Backend: Database {
    /// Runs `query` on `conn`, as `conn.fetch_many(query)`.
    fn fetch_many<'e, 'q: 'e, E: 'q + Execute<'q, Self>>(
        conn: &'e mut Self::Connection,
        query: E,
    ) -> BoxStream<'e, Result<Step<Self>, Error>>;
    /// As `conn.fetch_optional(query)`.
    fn fetch_optional<'e, 'q: 'e, E: 'q + Execute<'q, Self>>(
        conn: &'e mut Self::Connection,
        query: E,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, Error>>;
    /// As `conn.fetch_one(query)`.
    fn fetch_one<'e, 'q: 'e, E: 'q + Execute<'q, Self>>(
        conn: &'e mut Self::Connection,
        query: E,
    ) -> BoxFuture<'e, Result<Self::Row, Error>>;
    /// As `conn.prepare_with(sql, parameters)`.
    fn prepare_with<'e>(
        conn: &'e mut Self::Connection,
        sql: SqlStr,
        parameters: &'e [Self::TypeInfo],
    ) -> BoxFuture<'e, Result<Self::Statement, Error>>;
    /// As `conn.describe(sql)`.
    fn describe<'e>(
        conn: &'e mut Self::Connection,
        sql: SqlStr,
    ) -> BoxFuture<'e, Result<Describe<Self>, Error>>;
}

impl<DB: Database> Backend for DB
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    fn fetch_many<'e, 'q: 'e, E: 'q + Execute<'q, Self>>(
        conn: &'e mut Self::Connection,
        query: E,
    ) -> BoxStream<'e, Result<Step<Self>, Error>> {
        conn.fetch_many(query)
    }
    fn fetch_optional<'e, 'q: 'e, E: 'q + Execute<'q, Self>>(
        conn: &'e mut Self::Connection,
        query: E,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, Error>> {
        conn.fetch_optional(query)
    }
    fn fetch_one<'e, 'q: 'e, E: 'q + Execute<'q, Self>>(
        conn: &'e mut Self::Connection,
        query: E,
    ) -> BoxFuture<'e, Result<Self::Row, Error>> {
        conn.fetch_one(query)
    }
    fn prepare_with<'e>(
        conn: &'e mut Self::Connection,
        sql: SqlStr,
        parameters: &'e [Self::TypeInfo],
    ) -> BoxFuture<'e, Result<Self::Statement, Error>> {
        conn.prepare_with(sql, parameters)
    }
    fn describe<'e>(
        conn: &'e mut Self::Connection,
        sql: SqlStr,
    ) -> BoxFuture<'e, Result<Describe<Self>, Error>> {
        conn.describe(sql)
    }
}

fn fetch_many<'e, 'q: 'e, DB, E>(
    db: &'e Db,
    table: Option<&Arc<str>>,
    source: Source<'e, DB>,
    query: E,
) -> BoxStream<'e, Result<Step<DB>, Error>>
where
    DB: Backend,
    E: 'q + Execute<'q, DB>,
{
    let parts = Parts::<DB>::of(query);
    let op = db.start(&parts.sql, table, DB::NAME);
    Box::pin(TryAsyncStream::new(move |yielder| async move {
        let mut end = StreamEnd {
            op: Some(op),
            yielded: false,
            database: DB::NAME,
        };
        let mut conn = end.check(source.get(db).await)?;
        let mut steps = DB::fetch_many(conn.get(), parts);
        while let Some(step) = end.check(steps.try_next().await)? {
            end.yielded = true;
            yielder.r#yield(step).await;
        }
        if let Some(op) = end.op.take() {
            op.finish(Outcome::Ok);
        }
        Ok(())
    }))
}

/// How a statement with one result runs on a connection.
type RunOnce<DB, T> =
    for<'a> fn(&'a mut <DB as Database>::Connection, Parts<DB>) -> BoxFuture<'a, Result<T, Error>>;

/// Runs one statement that ends in one result, timed as one query.
fn once<'e, DB: Backend, T: Send + 'e>(
    db: &'e Db,
    table: Option<&Arc<str>>,
    source: Source<'e, DB>,
    parts: Parts<DB>,
    run: RunOnce<DB, T>,
) -> BoxFuture<'e, Result<T, Error>> {
    let op = db.start(&parts.sql, table, DB::NAME);
    Box::pin(async move {
        let result = match source.get(db).await {
            Ok(mut conn) => run(conn.get(), parts).await,
            Err(error) => Err(error),
        };
        op.finish(outcome(DB::NAME, &result));
        result
    })
}

fn fetch_optional<'e, 'q: 'e, DB, E>(
    db: &'e Db,
    table: Option<&Arc<str>>,
    source: Source<'e, DB>,
    query: E,
) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
where
    DB: Backend,
    E: 'q + Execute<'q, DB>,
{
    once(db, table, source, Parts::of(query), |conn, parts| {
        DB::fetch_optional(conn, parts)
    })
}

/// `fetch_one` of its own, not the default over `fetch_optional`: the
/// missing row is `row_not_found`, not `ok`.
fn fetch_one<'e, 'q: 'e, DB, E>(
    db: &'e Db,
    table: Option<&Arc<str>>,
    source: Source<'e, DB>,
    query: E,
) -> BoxFuture<'e, Result<DB::Row, Error>>
where
    DB: Backend,
    E: 'q + Execute<'q, DB>,
{
    once(db, table, source, Parts::of(query), |conn, parts| {
        DB::fetch_one(conn, parts)
    })
}

fn prepare_with<'e, DB>(
    db: &'e Db,
    source: Source<'e, DB>,
    sql: SqlStr,
    parameters: &'e [DB::TypeInfo],
) -> BoxFuture<'e, Result<DB::Statement, Error>>
where
    DB: Backend,
{
    Box::pin(async move { DB::prepare_with(source.get(db).await?.get(), sql, parameters).await })
}

fn describe<'e, DB>(
    db: &'e Db,
    source: Source<'e, DB>,
    sql: SqlStr,
) -> BoxFuture<'e, Result<Describe<DB>, Error>>
where
    DB: Backend,
{
    Box::pin(async move { DB::describe(source.get(db).await?.get(), sql).await })
}

/// Implements `Executor` for a metered handle, given how to get its
/// database, table override and connection source.
macro_rules! metered_executor {
    ($this:ident => $db:expr, $table:expr, $source:expr) => {
        fn fetch_many<'e, 'q: 'e, E>(
            self,
            query: E,
        ) -> BoxStream<'e, Result<Step<Self::Database>, Error>>
        where
            'c: 'e,
            E: 'q + Execute<'q, Self::Database>,
        {
            let $this = self;
            fetch_many($db, $table, $source, query)
        }

        fn fetch_optional<'e, 'q: 'e, E>(
            self,
            query: E,
        ) -> BoxFuture<'e, Result<Option<<Self::Database as Database>::Row>, Error>>
        where
            'c: 'e,
            E: 'q + Execute<'q, Self::Database>,
        {
            let $this = self;
            fetch_optional($db, $table, $source, query)
        }

        fn fetch_one<'e, 'q: 'e, E>(
            self,
            query: E,
        ) -> BoxFuture<'e, Result<<Self::Database as Database>::Row, Error>>
        where
            'c: 'e,
            E: 'q + Execute<'q, Self::Database>,
        {
            let $this = self;
            fetch_one($db, $table, $source, query)
        }

        fn prepare_with<'e>(
            self,
            sql: SqlStr,
            parameters: &'e [<Self::Database as Database>::TypeInfo],
        ) -> BoxFuture<'e, Result<<Self::Database as Database>::Statement, Error>>
        where
            'c: 'e,
        {
            let $this = self;
            prepare_with($db, $source, sql, parameters)
        }

        fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Self::Database>, Error>>
        where
            'c: 'e,
        {
            let $this = self;
            describe($db, $source, sql)
        }
    };
}

/// A pool whose statements are timed: use it wherever the pool was used
/// (`.fetch_one(&db)` for `.fetch_one(&pool)`). Cheap to clone; get one
/// from [`SqlxMetrics::instrument`](crate::SqlxMetrics::instrument).
pub struct MeteredPool<DB: Database> {
    pool: Pool<DB>,
    db: Arc<Db>,
    table: Option<Arc<str>>,
}

impl<DB: Database> Clone for MeteredPool<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            db: self.db.clone(),
            table: self.table.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for MeteredPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredPool")
            .field("database", &self.db.database)
            .field("table", &self.table)
            .field("pool", &self.pool)
            .finish()
    }
}

impl<DB: Database> MeteredPool<DB> {
    pub(crate) fn new(pool: Pool<DB>, db: Db) -> Self {
        Self {
            pool,
            db: Arc::new(db),
            table: None,
        }
    }

    /// The pool (statements run on it directly are not recorded).
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The database name its statements record under.
    pub fn database(&self) -> &str {
        &self.db.database
    }

    /// This pool, with its statements recorded under `table` (bounded)
    /// instead of the table read from their SQL: for one call,
    /// `.fetch_all(&db.with_table("report"))`.
    pub fn with_table(&self, table: &str) -> Self {
        Self {
            table: Some(self.db.table(table)),
            ..self.clone()
        }
    }

    /// A pooled connection whose statements are timed; the wait is
    /// recorded in `db_pool_acquire_duration_seconds`.
    pub async fn acquire(&self) -> Result<MeteredConnection<PoolConnection<DB>>, Error> {
        let conn = self.db.acquire(&self.pool).await?;
        Ok(MeteredConnection::new(
            conn,
            self.db.clone(),
            self.table.clone(),
        ))
    }

    /// Acquires a connection and begins a transaction on it; its statements
    /// are timed, and so are its commit or rollback.
    pub async fn begin(&self) -> Result<MeteredConnection<Transaction<'static, DB>>, Error> {
        let conn = self.db.acquire(&self.pool).await?;
        let tx = Transaction::begin(conn, None).await?;
        Ok(MeteredConnection::new(
            tx,
            self.db.clone(),
            self.table.clone(),
        ))
    }
}

impl<'c, DB: Backend> Executor<'c> for &'c MeteredPool<DB> {
    type Database = DB;
    metered_executor!(this => &this.db, this.table.as_ref(), Source::Pool(&this.pool));
}

/// A connection whose statements are timed: a pooled connection
/// ([`MeteredPool::acquire`]) or a transaction ([`MeteredPool::begin`]).
/// Run statements on it as on the connection: `.execute(&mut *tx)` becomes
/// `.execute(&mut tx)`. It dereferences to the connection it wraps
/// (statements run there directly are not recorded).
pub struct MeteredConnection<C> {
    conn: C,
    db: Arc<Db>,
    table: Option<Arc<str>>,
}

impl<C> fmt::Debug for MeteredConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredConnection")
            .field("database", &self.db.database)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl<C> MeteredConnection<C> {
    fn new(conn: C, db: Arc<Db>, table: Option<Arc<str>>) -> Self {
        Self { conn, db, table }
    }

    /// Unwraps the connection.
    pub fn into_inner(self) -> C {
        self.conn
    }

    /// This connection, borrowed, with its statements recorded under
    /// `table` (bounded) instead of the table read from their SQL:
    /// `.fetch_all(&mut conn.with_table("report"))`.
    pub fn with_table(&mut self, table: &str) -> MeteredConnection<&mut C> {
        MeteredConnection {
            table: Some(self.db.table(table)),
            db: self.db.clone(),
            conn: &mut self.conn,
        }
    }
}

impl<DB: Database> MeteredConnection<Transaction<'static, DB>> {
    /// Commits the transaction (timed as an `other` statement).
    pub async fn commit(self) -> Result<(), Error> {
        let op = self.db.start_other();
        let result = self.conn.commit().await;
        op.finish(outcome(DB::NAME, &result));
        result
    }

    /// Rolls the transaction back (timed as an `other` statement).
    pub async fn rollback(self) -> Result<(), Error> {
        let op = self.db.start_other();
        let result = self.conn.rollback().await;
        op.finish(outcome(DB::NAME, &result));
        result
    }
}

impl<C> Deref for MeteredConnection<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for MeteredConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

/// What a [`MeteredConnection`] can wrap: a handle that dereferences to a
/// connection of one database (a pooled connection, a transaction, or a
/// mutable borrow of one).
pub trait AsConnection: Send {
    /// The database.
    type Database: Database;
    /// The connection.
    fn connection(&mut self) -> &mut <Self::Database as Database>::Connection;
}

impl<DB: Database> AsConnection for PoolConnection<DB> {
    type Database = DB;
    fn connection(&mut self) -> &mut DB::Connection {
        self
    }
}

impl<DB: Database> AsConnection for Transaction<'_, DB> {
    type Database = DB;
    fn connection(&mut self) -> &mut DB::Connection {
        self
    }
}

impl<C: AsConnection> AsConnection for &mut C {
    type Database = C::Database;
    fn connection(&mut self) -> &mut <C::Database as Database>::Connection {
        (**self).connection()
    }
}

impl<'c, C> Executor<'c> for &'c mut MeteredConnection<C>
where
    C: AsConnection,
    C::Database: Backend,
{
    type Database = C::Database;
    metered_executor!(this => &this.db, this.table.as_ref(), Source::<C::Database>::Held(this.conn.connection()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_handed_on_as_the_driver_would_read_it() {
        // A `query!`-style `Map` with arguments: the drivers take the
        // arguments, then ask whether it persists.
        let query = || {
            sqlx::query::<sqlx::Sqlite>("SELECT ?")
                .bind(1_i64)
                .map(|_row| ())
        };
        let mut seen_by_driver = query();
        let _ = seen_by_driver.take_arguments();
        let parts = Parts::of(query());
        assert_eq!(parts.persistent, seen_by_driver.persistent());
        assert_eq!(parts.sql.as_str(), "SELECT ?");
        assert!(matches!(parts.arguments, Some(Ok(Some(_)))));
        let plain = Parts::<sqlx::Sqlite>::of(sqlx::query("SELECT 1"));
        assert!(plain.persistent);
    }
}
