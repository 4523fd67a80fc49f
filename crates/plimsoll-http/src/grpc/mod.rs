//! RED metrics for gRPC servers (tonic or any `http`-based gRPC stack).
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `grpc_server_handled_total` | grpc_service, grpc_method, grpc_code |
//! | `grpc_server_handling_seconds` | grpc_service, grpc_method |
//!
//! Service and method come from the `:path` (`/orders.v1.Orders/GetOrder`);
//! the code from `grpc-status` in the response headers (trailers-only
//! responses) or in the trailers at the end of the stream, so streaming
//! calls are timed and classified when they end. A call answered
//! `UNIMPLEMENTED` is recorded under `__unmatched__`, so paths a client
//! makes up never become labels; implemented methods are bounded too. A
//! call dropped before it ends is `CANCELLED`.
//!
//! Each call runs in a request [`Scope`] (its tenant and span), like HTTP
//! requests; latency is timed by the kit's [`Operation`] guard.
//!
//! With tonic: `Server::builder().layer(GrpcMetricsLayer::builder(&telemetry).build()?)`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use plimsoll_core::classify::{GrpcCode, Outcome};
use plimsoll_core::names::{OTHER, UNMATCHED};
use plimsoll_core::operation::{Completed, Operation, RecordOperation};
use plimsoll_core::scope::{self, Scope};
use plimsoll_core::{Counter, Histogram, LabelGuard, Telemetry, impl_label_set, label_key};
use tower_layer::Layer;
use tower_service::Service;

use crate::families;
use crate::red::HttpBuildError;
use crate::tenant::TenantResolver;

pub use crate::families::DEFAULT_MAX_METHODS;
mod body;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
use layer::{Call, Calls, GrpcShared, grpc_status};
pub use layer::{GrpcMetricsBuilder, GrpcMetricsLayer};
pub use service::GrpcMetrics;

/// Labels of `grpc_server_handled_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct HandledLabels {
    /// Fully qualified service (`orders.v1.Orders`).
    pub grpc_service: Arc<str>,
    /// Method (`GetOrder`).
    pub grpc_method: Arc<str>,
    /// The status code.
    pub grpc_code: GrpcCode,
}
impl_label_set!(HandledLabels {
    grpc_service,
    grpc_method,
    grpc_code
});
label_key!(
    /// The borrowed form of [`HandledLabels`].
    pub struct HandledKey for HandledLabels { grpc_service: Arc<str>, grpc_method: Arc<str>, grpc_code: GrpcCode }
);

/// Labels of `grpc_server_handling_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct MethodLabels {
    /// Fully qualified service.
    pub grpc_service: Arc<str>,
    /// Method.
    pub grpc_method: Arc<str>,
}
impl_label_set!(MethodLabels {
    grpc_service,
    grpc_method
});
label_key!(
    /// The borrowed form of [`MethodLabels`].
    pub struct MethodKey for MethodLabels { grpc_service: Arc<str>, grpc_method: Arc<str> }
);
