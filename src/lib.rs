//! plimsoll: production telemetry for multi-tenant services in a few lines.
//!
//! This facade re-exports the plimsoll crates, each behind a feature. The
//! core (always on) is [`plimsoll_core`], re-exported at the root.
//!
//! ```
//! let telemetry = plimsoll::Telemetry::builder().build()?;
//! let tenant = telemetry.tenant("acme");
//! let jobs = telemetry.counter::<()>("jobs", "Jobs run.")?;
//! jobs.inc(&tenant, &());
//! assert_eq!(jobs.get(&tenant, &()), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use plimsoll_core::*;

/// Derives for your own label sets and closed-set label enums (feature
/// `derive`); see [`plimsoll_macros`].
#[cfg(feature = "derive")]
pub use plimsoll_macros::{LabelSet, LabelValue};

/// Tower layers for HTTP and gRPC servers, outbound calls and `/metrics`
/// (features `http`, `grpc`).
#[cfg(any(feature = "http", feature = "grpc"))]
pub use plimsoll_http as http;

/// Cache metrics: an instrumented cache and a moka adapter (feature `cache`).
#[cfg(feature = "cache")]
pub use plimsoll_cache as cache;

/// Redis command metrics (feature `redis`).
#[cfg(feature = "redis")]
pub use plimsoll_redis as redis;

/// SLOs: recording rules, error budgets, burn-rate alerts (feature `slo`).
#[cfg(feature = "slo")]
pub use plimsoll_slo as slo;

/// Circuit breakers and per-tenant rate limits (feature `resilience`).
#[cfg(feature = "resilience")]
pub use plimsoll_resilience as resilience;

/// Database metrics for sqlx: queries, pools, queries per request (feature `sqlx`).
#[cfg(feature = "sqlx")]
pub use plimsoll_sqlx as sqlx;

/// OpenTelemetry traces: OTLP export, W3C propagation, exemplars from real
/// spans, correlated JSON logs (feature `otlp`).
#[cfg(feature = "otlp")]
pub use plimsoll_otlp as otlp;

/// Health, readiness and status endpoints with background dependency
/// checks and graceful shutdown (feature `health`).
#[cfg(feature = "health")]
pub use plimsoll_health as health;

/// Tokio runtime metrics: workers, tasks, queues, busy time, read at
/// scrape time (feature `runtime`).
#[cfg(feature = "runtime")]
pub use plimsoll_runtime as runtime;

/// A recorder for the `metrics` facade: other libraries' `counter!`,
/// `gauge!` and `histogram!`, tenant-scoped and bounded (feature
/// `recorder`).
#[cfg(feature = "recorder")]
pub use plimsoll_recorder as recorder;
