//! Redis command metrics for plimsoll: wrap an async redis-rs connection
//! once, and every command and pipeline is timed, per tenant, with the
//! whole `AsyncCommands` API still available.
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `redis_command_duration_seconds` | command, status (`ok`, `error`, `timeout`, `connection_error`) |
//!
//! - `command` is the command's name from a fixed list of known commands
//!   (anything else is `__other__`, so invented commands never become
//!   labels); a pipeline is `PIPELINE`, a transaction `MULTI`.
//! - Commands record under the current request's tenant (the server layers
//!   open a request scope; outside one, `__system__`), with the request's
//!   trace as exemplar.
//! - A failed command adds no error of its own: the wrapper returns what the
//!   connection returned. A command dropped before its reply counts as
//!   `error` with the time it took.
//!
//! ```no_run
//! use plimsoll_core::Telemetry;
//! use plimsoll_redis::RedisMetrics;
//! use redis::AsyncCommands;
//!
//! # async fn run() -> redis::RedisResult<()> {
//! let telemetry = Telemetry::builder().build().unwrap();
//! let metrics = RedisMetrics::new(&telemetry).unwrap();
//! let client = redis::Client::open("redis://127.0.0.1/")?;
//! let mut conn = metrics.wrap(client.get_multiplexed_async_connection().await?);
//! let _: () = conn.set("greeting", "hello").await?;   // redis_command_duration_seconds{command="SET"}
//! let _: String = conn.get("greeting").await?;        // {command="GET"}
//! # Ok(())
//! # }
//! ```

use std::fmt;

use plimsoll_core::classify::Outcome;
use plimsoll_core::operation::{Completed, Operation, RecordOperation};
use plimsoll_core::trace::{OpenSpan, SpanKind, SpanStart};
use plimsoll_core::{Histogram, RegisterError, Telemetry, impl_label_set, label_key};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// Every family this crate records, declared once.
pub mod families {
    use plimsoll_core::family::{FamilyDecl, LabelDecl};

    /// `redis_command_duration_seconds{command, status}`.
    pub const REDIS_COMMAND_DURATION: FamilyDecl = FamilyDecl::histogram(
        "redis_command_duration_seconds",
        "Time of Redis commands and pipelines, by command and status, in seconds.",
    )
    .with_otel_name("db_client_operation_duration_seconds")
    .with_unit("seconds")
    .with_labels(&[
        LabelDecl::closed("command").with_otel_name("db_operation_name"),
        LabelDecl::closed("status"),
    ]);

    /// Every family of this crate, for the catalogue.
    pub const ALL: &[FamilyDecl] = &[REDIS_COMMAND_DURATION];
}

pub use families::REDIS_COMMAND_DURATION;

/// The commands that get a label of their own; anything else is `__other__`.
pub const KNOWN_COMMANDS: &[&str] = &[
    "APPEND",
    "AUTH",
    "BLPOP",
    "BRPOP",
    "CLIENT",
    "CONFIG",
    "COPY",
    "DBSIZE",
    "DECR",
    "DECRBY",
    "DEL",
    "DISCARD",
    "ECHO",
    "EVAL",
    "EVALSHA",
    "EXEC",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "FLUSHALL",
    "FLUSHDB",
    "GET",
    "GETDEL",
    "GETEX",
    "GETSET",
    "HDEL",
    "HELLO",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HINCRBY",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HSCAN",
    "HSET",
    "HSETNX",
    "HVALS",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "INFO",
    "KEYS",
    "LINDEX",
    "LLEN",
    "LPOP",
    "LPUSH",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "MGET",
    "MSET",
    "MULTI",
    "PERSIST",
    "PEXPIRE",
    "PING",
    "PSETEX",
    "PTTL",
    "PUBLISH",
    "RENAME",
    "RPOP",
    "RPUSH",
    "SADD",
    "SCAN",
    "SCARD",
    "SCRIPT",
    "SELECT",
    "SET",
    "SETEX",
    "SETNX",
    "SINTER",
    "SISMEMBER",
    "SMEMBERS",
    "SPOP",
    "SREM",
    "SSCAN",
    "SUNION",
    "TTL",
    "TYPE",
    "UNLINK",
    "UNWATCH",
    "WATCH",
    "XACK",
    "XADD",
    "XLEN",
    "XRANGE",
    "XREAD",
    "XREADGROUP",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZINCRBY",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZSCAN",
    "ZSCORE",
];

/// The `command` label of a pipeline.
pub const PIPELINE: &str = "PIPELINE";
/// The `command` label of a transaction (`MULTI` … `EXEC`).
pub const TRANSACTION: &str = "MULTI";

/// The label of a command's name: one of [`KNOWN_COMMANDS`] (matched
/// without regard to case), else `__other__`.
pub fn command_label(name: &[u8]) -> &'static str {
    // The list is sorted (a test keeps it so): a binary search, with the
    // name upper-cased as it is compared.
    KNOWN_COMMANDS
        .binary_search_by(|known| known.bytes().cmp(name.iter().map(u8::to_ascii_uppercase)))
        .map_or(plimsoll_core::names::OTHER, |at| KNOWN_COMMANDS[at])
}

/// Labels of `redis_command_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct CommandLabels {
    /// The command (a closed set).
    pub command: &'static str,
    /// `ok`, `error`, `timeout` or `connection_error`.
    pub status: &'static str,
}
impl_label_set!(CommandLabels { command, status });
label_key!(
    /// The borrowed form of [`CommandLabels`].
    pub struct CommandKey for CommandLabels { command: &'static str, status: &'static str }
);

/// Whether a reply is an error reply of the server (redis-rs hands those
/// back as values and turns them into errors later).
trait Reply {
    fn is_error(&self) -> bool;
}

impl Reply for Value {
    fn is_error(&self) -> bool {
        matches!(self, Value::ServerError(_))
    }
}

impl Reply for Vec<Value> {
    fn is_error(&self) -> bool {
        self.iter().any(Reply::is_error)
    }
}

/// The status of a command's result.
fn status(result: &Result<impl Reply, RedisError>) -> Outcome {
    match result {
        Ok(reply) if reply.is_error() => Outcome::Error("error"),
        Ok(_) => Outcome::Ok,
        Err(e) if e.is_timeout() => Outcome::Timeout,
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
            Outcome::Error("connection_error")
        }
        Err(_) => Outcome::Error("error"),
    }
}

/// The Redis family of one [`Telemetry`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisMetrics {
    telemetry: Telemetry,
    commands: Histogram<CommandLabels>,
}

impl RecordOperation for RedisMetrics {
    type Labels = &'static str;

    fn record(&self, done: Completed<'_, &'static str>) {
        let status = match done.outcome {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Error("connection_error") => "connection_error",
            // Errors, commands dropped before their reply, panics.
            _ => "error",
        };
        let key = CommandKey {
            command: done.labels,
            status,
        };
        self.commands
            .observe_with_exemplar(done.tenant, &key, done.seconds, done.trace);
    }

    /// A client span named by the command (`GET`).
    fn open_span(&self, telemetry: &Telemetry, command: &&'static str) -> OpenSpan {
        let attributes = [
            ("db.system.name", "redis".into()),
            ("db.operation.name", (*command).into()),
        ];
        telemetry.start_span(&SpanStart::new(command, SpanKind::Client, &attributes))
    }
}

impl RedisMetrics {
    /// Registers `redis_command_duration_seconds` on `telemetry`.
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        Ok(Self {
            telemetry: telemetry.clone(),
            commands: telemetry.declare(&REDIS_COMMAND_DURATION)?,
        })
    }

    /// Wraps a connection (a `MultiplexedConnection`, a `ConnectionManager`,
    /// anything implementing the async `ConnectionLike`).
    pub fn wrap<C>(&self, connection: C) -> InstrumentedConnection<C> {
        InstrumentedConnection {
            inner: connection,
            metrics: self.clone(),
        }
    }

    fn start(&self, command: &'static str) -> Operation<&RedisMetrics> {
        Operation::start(&self.telemetry, self, command)
    }
}

/// A connection whose commands are recorded; use it as the connection
/// it wraps (`AsyncCommands` works on it).
#[derive(Clone)]
pub struct InstrumentedConnection<C> {
    inner: C,
    metrics: RedisMetrics,
}

impl<C> fmt::Debug for InstrumentedConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedConnection")
            .finish_non_exhaustive()
    }
}

impl<C> InstrumentedConnection<C> {
    /// The wrapped connection.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection, mutably (commands sent through it directly
    /// are not recorded).
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// Unwraps the connection.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: ConnectionLike + Send> ConnectionLike for InstrumentedConnection<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let name = match cmd.args_iter().next() {
            Some(redis::Arg::Simple(name)) => command_label(name),
            _ => plimsoll_core::names::OTHER,
        };
        let operation = self.metrics.start(name);
        let inner = &mut self.inner;
        Box::pin(async move {
            let result = inner.req_packed_command(cmd).await;
            operation.finish(status(&result));
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let name = if pipeline.is_transaction() {
            TRANSACTION
        } else {
            PIPELINE
        };
        let operation = self.metrics.start(name);
        let inner = &mut self.inner;
        Box::pin(async move {
            let result = inner.req_packed_commands(pipeline, offset, count).await;
            operation.finish(status(&result));
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_a_closed_set() {
        assert_eq!(command_label(b"get"), "GET");
        assert_eq!(command_label(b"ZRangeByScore"), "ZRANGEBYSCORE");
        assert_eq!(command_label(b"MADEUP"), "__other__");
        assert_eq!(command_label(b""), "__other__");
        assert!(
            KNOWN_COMMANDS.windows(2).all(|w| w[0] < w[1]),
            "sorted, without duplicates (command_label searches it)"
        );
        for known in KNOWN_COMMANDS {
            assert_eq!(command_label(known.to_lowercase().as_bytes()), *known);
        }
    }
}
