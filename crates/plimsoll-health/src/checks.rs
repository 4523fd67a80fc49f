//! Checks for the dependencies a service usually has. Any async closure
//! returning a [`Report`] is a check too.
//!
//! Their details are fixed texts: the errors behind them (which can name
//! hosts) are kept apart, shown only with
//! [`show_errors`](crate::HealthBuilder::show_errors).

#[allow(unused_imports)]
use crate::check::{Check, CheckFuture, Report};

/// How long the pool check waits for a connection when every one is in
/// use before it reports the pool saturated.
#[cfg(feature = "sqlx")]
pub const SATURATION_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// How long the pool check waits for a connection otherwise (opening one
/// if need be). Keep the component's timeout above it (the default 2 s
/// is).
#[cfg(feature = "sqlx")]
pub const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// `SELECT 1` through a sqlx pool (any database sqlx supports). A pool
/// whose connections are all in use and none frees up within
/// [`SATURATION_WAIT`] is degraded (`pool saturated (n/n in use)`).
/// Feature `sqlx`.
///
/// Give it the plain pool (`MeteredPool::pool()` for a metered one), so
/// the probes' queries stay out of the query metrics.
#[cfg(feature = "sqlx")]
pub fn sqlx_pool<DB>(pool: sqlx_core::pool::Pool<DB>) -> impl Check
where
    DB: sqlx_core::database::Database,
    for<'c> &'c mut DB::Connection: sqlx_core::executor::Executor<'c, Database = DB>,
{
    SqlxPool(pool)
}

#[cfg(feature = "sqlx")]
struct SqlxPool<DB: sqlx_core::database::Database>(sqlx_core::pool::Pool<DB>);

#[cfg(feature = "sqlx")]
impl<DB> Check for SqlxPool<DB>
where
    DB: sqlx_core::database::Database,
    for<'c> &'c mut DB::Connection: sqlx_core::executor::Executor<'c, Database = DB>,
{
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let pool = &self.0;
            if pool.is_closed() {
                return Report::unhealthy("pool closed");
            }
            let max = pool.options().get_max_connections();
            let size = pool.size();
            // Every connection in use is normal for a moment (a pool of
            // one often is); saturated when none frees up soon. Otherwise
            // a connection is opened if need be, within a second (sqlx
            // itself retries a refused connection until its own acquire
            // timeout, 30 s by default).
            let saturated = size >= max && pool.num_idle() == 0;
            let wait = if saturated {
                SATURATION_WAIT
            } else {
                CONNECT_WAIT
            };
            let mut connection = match tokio::time::timeout(wait, pool.acquire()).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => return Report::unhealthy("no connection").with_error(e),
                Err(_) if saturated => {
                    return Report::degraded(format!("pool saturated ({size}/{max} in use)"));
                }
                Err(_) => {
                    return Report::unhealthy(format!(
                        "no connection within {} ms",
                        CONNECT_WAIT.as_millis()
                    ));
                }
            };
            match sqlx_core::raw_sql::raw_sql("SELECT 1")
                .execute(&mut *connection)
                .await
            {
                Ok(_) => Report::healthy(),
                Err(e) => Report::unhealthy("SELECT 1 failed").with_error(e),
            }
        })
    }
}

/// `PING` on a Redis connection (a `MultiplexedConnection`, a
/// `ConnectionManager`, any async `ConnectionLike` that can be cloned).
/// A connection that does not reconnect by itself stays unhealthy after
/// an outage: for those, use [`redis_client`]. Feature `redis`.
#[cfg(feature = "redis")]
pub fn redis<C>(connection: C) -> impl Check
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    move || {
        let mut connection = connection.clone();
        async move {
            let pong: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut connection).await;
            ping_report(pong)
        }
    }
}

/// `PING` on a fresh connection from `client` each time: the check sees
/// the server come back after an outage. Feature `redis`.
#[cfg(feature = "redis")]
pub fn redis_client(client: redis::Client) -> impl Check {
    move || {
        let client = client.clone();
        async move {
            let pong = match client.get_multiplexed_async_connection().await {
                Ok(mut connection) => {
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await
                }
                Err(e) => Err(e),
            };
            ping_report(pong)
        }
    }
}

#[cfg(feature = "redis")]
fn ping_report(pong: redis::RedisResult<String>) -> Report {
    match pong {
        Ok(pong) if pong == "PONG" => Report::healthy(),
        Ok(_) => Report::unhealthy("PING answered something else than PONG"),
        Err(e) => Report::unhealthy("PING failed").with_error(e),
    }
}

/// A circuit breaker's state: closed is healthy; open or half-open is
/// degraded (the dependency is being shed or probed). An open breaker
/// reads open until a call probes it after its open time, so with no
/// traffic it stays degraded. Feature `resilience`.
#[cfg(feature = "resilience")]
pub fn breaker(breaker: plimsoll_resilience::CircuitBreaker) -> impl Check {
    use plimsoll_resilience::BreakerState;
    move || {
        let state = breaker.state();
        async move {
            match state {
                BreakerState::Closed => Report::healthy(),
                BreakerState::Open => Report::degraded("circuit breaker open"),
                _ => Report::degraded("circuit breaker half-open"),
            }
        }
    }
}

/// Free space on the file system holding `path`: unhealthy under
/// `min_free_bytes` available, degraded under twice that. Feature `disk`.
#[cfg(feature = "disk")]
pub fn disk_space(path: impl Into<std::path::PathBuf>, min_free_bytes: u64) -> impl Check {
    let path = path.into();
    move || {
        let path = path.clone();
        async move {
            // A hung mount blocks `statvfs`: off the runtime's threads.
            let found = tokio::task::spawn_blocking(move || {
                rustix::fs::statvfs(&path)
                    .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
                    .map_err(std::io::Error::from)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match found {
                Ok(free) if free < min_free_bytes => {
                    Report::unhealthy(format!("{} MiB free", free >> 20))
                }
                Ok(free) if free < min_free_bytes.saturating_mul(2) => {
                    Report::degraded(format!("{} MiB free", free >> 20))
                }
                Ok(free) => Report {
                    detail: format!("{} MiB free", free >> 20).into(),
                    ..Report::healthy()
                },
                Err(e) => Report::unhealthy("free space unknown").with_error(e),
            }
        }
    }
}
