//! RED metrics (rate, errors, duration) for HTTP servers.
//!
//! [`RedMetricsLayer`] records, per request:
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `http_requests_total` | method, route, status_code |
//! | `http_request_duration_seconds` | method, route, status_code |
//! | `http_requests_in_flight` | method, route |
//! | `http_request_errors_total` | method, route, error_type |
//!
//! (Under [`Naming::OpenTelemetry`](plimsoll_core::Naming) the names of
//! [`families`](crate::families) apply.)
//!
//! - **route** is the matched route template (axum's `MatchedPath`, nested
//!   routers included) or `__unmatched__`; the raw path is never a label.
//!   Add the layer with `Router::layer` so that the route is known.
//! - **method** is one of the standard methods or `_OTHER`.
//! - **tenant**: resolved once per request by a
//!   [`TenantResolver`](crate::TenantResolver) — a [`Tenant`](plimsoll_core::Tenant)
//!   request extension (set by your auth middleware, added as an outer
//!   layer), else a custom resolver, else the configured header, else
//!   `__unknown__` — then held and recorded.
//! - **request scope**: the handler runs inside the request's
//!   [`Scope`](plimsoll_core::scope::Scope), so queries, commands, cache
//!   lookups and outbound calls made while it runs record under the
//!   request's tenant (see [`plimsoll_core::scope`]).
//! - **exemplars**: from the telemetry's trace-context hook; by default the
//!   incoming W3C `traceparent`, when sampled.
//! - Latency runs to the end of the response body (streams included), or to
//!   the response headers on routes listed in
//!   [`with_header_timing`](RedMetricsBuilder::with_header_timing).
//! - A request dropped before its response (client gone, timeout) counts
//!   with `status_code="499"` and `error_type="cancelled"`; a panic in the
//!   handler counts as 500 `server_error`; in-flight always returns to 0.
//! - `http_requests_total` is the latency histogram's count, exposed as a
//!   counter: one lookup per request serves both.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use plimsoll_core::Telemetry;
//! use plimsoll_http::RedMetricsLayer;
//!
//! let telemetry = Telemetry::builder().build().unwrap();
//! let red = RedMetricsLayer::builder(&telemetry)
//!     .with_tenant_header("x-tenant-id")
//!     .with_ignored_paths(["/metrics", "/health"])
//!     .build()
//!     .unwrap();
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     .layer(red);
//! ```

mod body;
mod future;
mod layer;
mod memo;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub(crate) use layer::check_buckets;
pub use layer::{ExtractRoute, HttpBuildError, RedMetricsBuilder, RedMetricsLayer};
pub use service::RedMetrics;
