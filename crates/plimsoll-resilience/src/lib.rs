//! Resilience with visible state for plimsoll: a circuit-breaker layer, a
//! per-tenant rate limiter, and the same series for breakers and limiters
//! a service already has.

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
    Decision, LimitKey, LimiterBuildError, LimiterBuilder, Quota, RateLimiter, TokioClock,
};
pub use metrics::{BreakerReport, CallOutcome, LimiterReport, ResilienceMetrics};
