//! Tower layers that give any `http`-based service bounded, tenant-scoped
//! RED metrics, plus the `/metrics` endpoint.
//!
//! ```
//! use axum::{Router, routing::get};
//! use plimsoll_core::Telemetry;
//! use plimsoll_http::{MetricsService, RedMetricsLayer, metrics_router};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tower::ServiceExt;
//! let telemetry = Telemetry::builder().with_process_metrics(false).build().unwrap();
//! let app = Router::new()
//!     .route("/orders/{id}", get(|| async { "an order" }))
//!     .layer(RedMetricsLayer::builder(&telemetry).with_tenant_header("x-tenant-id").build().unwrap())
//!     .merge(metrics_router(MetricsService::new(&telemetry)));
//!
//! let request = http::Request::get("/orders/42")
//!     .header("x-tenant-id", "acme")
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
//!
//! let body = telemetry.encode(plimsoll_core::Format::Prometheus);
//! assert!(body.contains(
//!     r#"http_requests_total{tenant_id="acme",method="GET",route="/orders/{id}",status_code="200"} 1"#
//! ));
//! # }
//! ```
//!
//! - [`RedMetricsLayer`]: HTTP servers (axum, hyper) — see [`red`].
//! - [`GrpcMetricsLayer`]: gRPC servers (tonic) — see [`grpc`].
//! - [`ExternalCallLayer`] and [`ExternalCalls`]: outbound calls — see [`client`].
//! - [`MetricsService`], [`metrics_router`]: the `/metrics` endpoint.
//! - [`ConnectionGauge`]: long-lived connections (WebSocket, SSE).
//! - [`families`]: every family these layers record, declared once (names
//!   under both naming schemes, labels, bounds).
//! - [`TenantResolver`]: how a request's tenant is found, for layers of
//!   your own.
//!
//! The server layers run each request in its
//! [`Scope`](plimsoll_core::scope::Scope): whatever the handler records
//! through the kit (outbound calls here, queries and commands in the data
//! crates) carries the request's tenant. To instrument something else the
//! same way, see the repository's `docs/extending.md`.

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose
/// wrapped service is the field `inner`.
macro_rules! inner_access {
    ($service:ident) => {
        impl<S> $service<S> {
            /// The inner service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The inner service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// Unwraps the inner service.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }
    };
}
pub(crate) use inner_access;

pub mod client;
pub mod connections;
pub mod families;
pub mod grpc;
pub mod labels;
pub mod metrics;
pub mod names;
pub mod red;
pub mod tenant;

pub use client::{ExternalCallBuilder, ExternalCallLayer, ExternalCalls};
pub use connections::{ConnectionGauge, ConnectionGuard};
pub use grpc::{GrpcMetricsBuilder, GrpcMetricsLayer};
pub use labels::{ErrorType, Method};
pub use metrics::MetricsService;
#[cfg(feature = "axum")]
pub use metrics::metrics_router;
#[cfg(feature = "server")]
pub use metrics::serve_metrics;
pub use red::{HttpBuildError, RedMetrics, RedMetricsBuilder, RedMetricsLayer};
pub use tenant::{InvalidHeaderName, ResolveTenant, TenantResolver};
