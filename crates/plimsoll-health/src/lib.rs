//! Health, readiness and status endpoints for plimsoll, tied to real
//! dependency checks, with graceful shutdown and health gauges.
//!
//! ```
//! use std::time::Duration;
//! use plimsoll_core::Telemetry;
//! use plimsoll_health::{Component, Health, Report};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let telemetry = Telemetry::builder().with_process_metrics(false).build()?;
//! let health = Health::builder(&telemetry)
//!     .service("orders-api")
//!     .version("1.4.0")
//!     .interval(Duration::from_secs(5))
//!     .component(Component::new("queue", || async { Report::healthy() }))
//!     .component(
//!         Component::new("search", || async { Report::degraded("index rebuilding") })
//!             .critical(false)
//!             .timeout(Duration::from_millis(500)),
//!     )
//!     .build()?;
//! health.check_now().await;
//! assert!(health.is_ready()); // `search` is not critical
//!
//! // GET /api/v1/health, /api/v1/ready, /api/v1/status, /api/v1/health/{component}
//! let app: axum::Router = axum::Router::new().nest("/api/v1", health.router());
//! # let _ = app;
//! let text = telemetry.encode(plimsoll_core::Format::Prometheus);
//! assert!(text.contains(r#"health_status{tenant_id="__system__",component="search"} 0.5"#));
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//!
//! Each component's check runs in the background, on its own, every
//! interval (default 10 s), within its timeout (default 2 s; a run past it
//! reports unhealthy, `timed out after … ms`, and delays no other
//! component; a check that panics reports unhealthy, `check panicked`).
//! Checks must not block their thread (run blocking work in
//! `tokio::task::spawn_blocking`, as `disk_space` does). The endpoints answer from the last results, so a storm of
//! probes never reaches a dependency. A component's reported state changes
//! after `fail_after` worse results in a row, or `recover_after` better
//! ones ([`Component::thresholds`], default 1 and 1).
//!
//! | endpoint | answers |
//! |---|---|
//! | `GET /health` | liveness: 200 `ok` while the process answers; calls nothing |
//! | `GET /ready` | 200 `{"status":"ready"}` when serving and every critical component is healthy (or degraded, with [`HealthBuilder::degraded_is_ready`]); else 503 `{"status":"not_ready","phase":…,"failing":[…]}` |
//! | `GET /status` | 200, the document below |
//! | `GET /health/{component}` | the component's entry (with its `name`): 200, or 503 when unhealthy or not checked yet; 404 for an unknown name |
//!
//! The phase is `starting` until every critical component has been
//! checked once,
//! `serving`, then `draining` once [`Health::drain`] is called (on
//! SIGTERM): `/ready` answers 503 at once, so the load balancer stops
//! sending requests while those in flight finish.
//!
//! # The `/status` document
//!
//! ```json
//! {
//!   "service": "orders-api",
//!   "version": "1.4.0",
//!   "uptime_seconds": 3605.2,
//!   "status": "degraded",
//!   "phase": "serving",
//!   "ready": true,
//!   "components": {
//!     "database": {
//!       "status": "healthy",
//!       "critical": true,
//!       "detail": "ok",
//!       "latency_ms": 1.9,
//!       "last_checked": "2026-11-29T22:50:15.123Z"
//!     },
//!     "payments-breaker": {
//!       "status": "degraded",
//!       "critical": false,
//!       "detail": "circuit breaker open",
//!       "latency_ms": 0.004,
//!       "last_checked": "2026-11-29T22:50:15.101Z"
//!     }
//!   }
//! }
//! ```
//!
//! - `status`: the worst component status (`healthy`, `degraded`,
//!   `unhealthy`); a component's is `unknown` before its first check, when
//!   its `last_checked` is `null`.
//! - `phase`: `starting`, `serving` or `draining`; `ready`: what `/ready`
//!   answers.
//! - `detail` is a fixed text from the check (never a connection string or
//!   host). The raw error behind it is added as `error` (a string or
//!   `null`) only with [`HealthBuilder::show_errors`].
//!
//! # Graceful shutdown
//!
//! ```no_run
//! # async fn serve(health: plimsoll_health::Health, app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         plimsoll_health::shutdown_signal().await; // SIGTERM or Ctrl-C
//!         health.drain().await; // /ready 503, wait the drain period
//!     })
//!     .await
//! # }
//! ```
//!
//! After the drain period the server stops accepting connections and
//! waits for the requests in flight.
//!
//! # Built-in checks ([`checks`])
//!
//! `sqlx_pool` (`SELECT 1` through the pool within 1 s; a pool with no
//! connection free for 250 ms is degraded;
//! feature `sqlx`), `redis` and `redis_client` (`PING`; feature `redis`),
//! `breaker` (open or half-open is degraded; feature `resilience`),
//! `disk_space` (feature `disk`), and any async closure.
//!
//! # Metrics
//!
//! | metric | labels (plus `tenant_id`, always `__system__`) |
//! |---|---|
//! | `health_status` | `component`: 1 healthy, 0.5 degraded, 0 unhealthy, read at scrape time |
//! | `health_check_duration_seconds` | `component` |

mod check;
pub mod checks;
mod health;
mod http;

pub use check::{Check, CheckFuture, Component, Report, Status};
pub use health::{
    ComponentState, FAMILIES, HEALTH_CHECK_DURATION, HEALTH_STATUS, Health, HealthBuildError,
    HealthBuilder, MAX_COMPONENTS, Phase,
};

/// Waits for SIGTERM (what Kubernetes and systemd send) or Ctrl-C. The
/// handlers are installed when this is called (inside a tokio runtime),
/// so a signal sent after the call is seen even before the future is
/// first polled.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(
                target: "plimsoll::health",
                "cannot listen for {name}: {e}; the service will not drain on it"
            );
            None
        }
    };
    let term = listen(SignalKind::terminate(), "SIGTERM");
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    async move {
        let wait = |listener: Option<tokio::signal::unix::Signal>| async move {
            match listener {
                Some(mut listener) => {
                    listener.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {}
            _ = wait(interrupt) => {}
        }
    }
}

/// Waits for Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
