//! Resilience with visible state for plimsoll: a circuit-breaker layer, a
//! per-tenant rate limiter, and the same series for breakers and limiters
//! a service already has.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use plimsoll_core::Telemetry;
//! use plimsoll_resilience::{BreakerError, BreakerState, Quota, ResilienceMetrics, SlidingWindow};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::builder().with_process_metrics(false).build().unwrap();
//! let resilience = ResilienceMetrics::new(&telemetry).unwrap();
//!
//! // A breaker in front of a flaky dependency.
//! let payments = resilience
//!     .breaker("payments")
//!     .sliding_window(SlidingWindow::Count(20))
//!     .minimum_calls(5)
//!     .failure_rate(0.5)
//!     .open_for(Duration::from_secs(30))
//!     .build()
//!     .unwrap();
//! let charge = payments.layer().layer(service_fn(|_: ()| async { Err::<(), _>("declined") }));
//! for _ in 0..5 {
//!     let _ = charge.clone().oneshot(()).await;
//! }
//! assert_eq!(payments.state(), BreakerState::Open);
//! let shed = charge.clone().oneshot(()).await;
//! assert!(matches!(shed, Err(BreakerError::Open(_)))); // without calling payments
//!
//! // A per-tenant limit, with one tenant given more.
//! let api = resilience
//!     .limiter("api", Quota::per_second(NonZeroU32::new(10).unwrap()))
//!     .build()
//!     .unwrap();
//! api.set_override(&telemetry.tenant("bulk"), "bulk", Quota::per_second(NonZeroU32::new(100).unwrap()));
//! assert!(api.check(&telemetry.tenant("acme")).allowed);
//!
//! let text = telemetry.encode(plimsoll_core::Format::Prometheus);
//! assert!(text.contains(r#"circuit_breaker_state{tenant_id="__system__",service="payments"} 1"#));
//! assert!(text.contains(r#"circuit_breaker_calls_total{tenant_id="__system__",service="payments",outcome="rejected"} 1"#));
//! # }
//! ```
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `circuit_breaker_state` | service — 0 closed, 1 open, 2 half-open, read at scrape time |
//! | `circuit_breaker_transitions_total` | service, from, to |
//! | `circuit_breaker_calls_total` | service, outcome (`success`, `failure`, `slow`, `rejected`) |
//! | `rate_limit_hits_total` | limit_type, client_type |
//! | `api_quota_remaining` | quota_type |
//!
//! # Circuit breaker
//!
//! Closed, it judges calls over a sliding window (the last N calls, or the
//! calls of the last period) and opens when, with at least
//! `minimum_calls` in the window, the share of failures (or of slow calls)
//! reaches its threshold, or after N failures in a row. Open, it sheds
//! every call at once with [`BreakerOpen`] (the service, and when it will
//! probe) without calling the inner service; for an HTTP server,
//! [`CircuitBreakerLayer::answer_503`] answers `503` with `Retry-After`.
//! After `open_for` (growing with each failed probe when
//! `open_backoff` is set) it turns half-open at the next call: a bounded
//! number of probes pass at once; `close_after` successes close it, one
//! failure reopens it.
//!
//! Put the call's timeout *inside* the breaker
//! (`ServiceBuilder::new().layer(breaker.layer()).timeout(d)`): a timed-out
//! call is then an error the breaker counts. A call whose future is dropped
//! from outside (an outer timeout, a client gone) counts for nothing, and a
//! probe that never ends holds its slot: without an inner timeout, a hanging
//! dependency neither opens the breaker nor lets it close. A call the
//! breaker would shed is ready at once, without waiting for the inner
//! service (an open breaker in front of a full buffer fails fast); other
//! calls wait for the inner service's readiness, holding nothing of the
//! breaker's. Each call is admitted, or shed and counted, when it is made.
//! Breakers sharing a name (or folded into `__other__` past the name
//! bound) add their calls, and show no state (two states are not one).
//!
//! Which results are failures: errors by default; [`HttpServerErrors`]
//! (errors and 5xx), [`GrpcServerErrors`] (errors and the failing gRPC
//! codes of trailers-only answers), or your own [`ClassifyFailure`].
//!
//! The closed path takes no lock: the windows and counts are atomics. The
//! state gauge and the call counts are read from the breaker at scrape
//! time, so the gauge shows one series per breaker, always the state it is
//! in (a breaker that just moved never reads as two states at once).
//! [`CircuitBreaker`] is a cloneable handle: read the state for a health
//! check, force it open or closed from an admin endpoint.
//!
//! # Rate limiter
//!
//! [`RateLimiter`] runs governor's keyed GCRA limiter: a default quota,
//! per-tenant (or per-key) overrides and the default itself changeable at
//! run time ([`RateLimiter::set_override`]). Its layer answers a refused
//! HTTP request `429` with `Retry-After` (whole seconds, rounded up, never
//! 0) and `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset`, a
//! refused gRPC call `RESOURCE_EXHAUSTED`. The key is the request's tenant
//! (the `Tenant` extension set by the service's auth, or the request
//! scope's), or a header ([`RateLimitLayer::key_by_header`]). The state
//! of keys no longer limited is dropped on an interval the limiter owns,
//! so memory follows the keys active now, not every key ever seen. A
//! request costs one keyed check and nothing else: each tenant's quota
//! left (`api_quota_remaining`) is read from the limiter's state at scrape
//! time. The limiter keeps time by the process's fast clock; tests on
//! tokio's paused clock build it with [`LimiterClock::Tokio`].
//!
//! # Breakers and limiters plimsoll does not run
//!
//! [`ResilienceMetrics::report_breaker`] and
//! [`ResilienceMetrics::report_limiter`] set the same series from another
//! crate's breaker or a hand-written limiter: dashboards and alerts work
//! unchanged.

pub mod families;

mod breaker;
mod limiter;
mod metrics;

pub use breaker::layer::{
    Answer503, Answer503Future, Answer503Layer, BreakerError, CircuitBreakerLayer,
    CircuitBreakerService, ClassifyFailure, Errors, GrpcServerErrors, HttpServerErrors,
    ResponseFuture, retry_after_secs,
};
pub use breaker::{
    BreakerBuildError, BreakerBuilder, BreakerOpen, BreakerState, CallPermit, CircuitBreaker,
    SlidingWindow,
};
pub use limiter::layer::{MAX_KEY_LEN, RateLimit, RateLimitFuture, RateLimitLayer, request_tenant};
pub use limiter::{
    Decision, LimitKey, LimiterBuildError, LimiterBuilder, LimiterClock, Quota, RateLimiter,
};
pub use metrics::{BreakerReport, CallOutcome, LimiterReport, ResilienceMetrics};
