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
use plimsoll_core::trace::SpanContext;
use plimsoll_core::{Counter, Histogram, LabelGuard, Telemetry, impl_label_set, label_key};
use tower_layer::Layer;
use tower_service::Service;

use crate::families;
use crate::red::HttpBuildError;
use crate::tenant::TenantResolver;

pub use crate::families::DEFAULT_MAX_METHODS;

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

/// `grpc-status` from headers or trailers.
fn grpc_status(headers: &http::HeaderMap) -> Option<GrpcCode> {
    Some(GrpcCode::from_header(
        headers.get("grpc-status")?.as_bytes(),
    ))
}

struct GrpcShared {
    handled: Counter<HandledLabels>,
    handling: Histogram<MethodLabels>,
    tenants: TenantResolver,
    methods: LabelGuard,
    telemetry: Telemetry,
}

impl fmt::Debug for GrpcShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcShared")
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// Records finished calls; the operation carries the call's path.
#[derive(Clone, Debug)]
struct Calls(Arc<GrpcShared>);

impl RecordOperation for Calls {
    type Labels = Option<PathAndQuery>;

    fn record(&self, done: Completed<'_, Option<PathAndQuery>>) {
        let code = match done.outcome {
            Outcome::Grpc(code) => code,
            Outcome::Cancelled => GrpcCode::Cancelled,
            Outcome::Timeout => GrpcCode::DeadlineExceeded,
            _ => GrpcCode::Unknown,
        };
        let shared = &self.0;
        let admitted;
        let (service, method) = if code == GrpcCode::Unimplemented {
            (UNMATCHED, UNMATCHED)
        } else {
            match done
                .labels
                .as_ref()
                .and_then(|p| p.path().strip_prefix('/'))
                .filter(|p| p.contains('/'))
            {
                None => (UNMATCHED, UNMATCHED),
                Some(full) => {
                    admitted = shared.methods.admit(full);
                    admitted.split_once('/').unwrap_or((OTHER, OTHER))
                }
            }
        };
        shared.handled.inc(
            done.tenant,
            &HandledKey {
                grpc_service: service,
                grpc_method: method,
                grpc_code: code,
            },
        );
        shared.handling.observe_with_exemplar(
            done.tenant,
            &MethodKey {
                grpc_service: service,
                grpc_method: method,
            },
            done.seconds,
            done.trace,
        );
    }
}

/// Builds a [`GrpcMetricsLayer`].
#[derive(Debug)]
pub struct GrpcMetricsBuilder {
    telemetry: Telemetry,
    tenant_header: Option<String>,
    max_methods: Option<usize>,
    buckets: Option<Vec<f64>>,
}

impl GrpcMetricsBuilder {
    /// Also reads the tenant from this metadata key (validated and bounded).
    pub fn with_tenant_header(mut self, name: impl Into<String>) -> Self {
        self.tenant_header = Some(name.into());
        self
    }

    /// Bound on distinct `service/method` pairs (default
    /// [`DEFAULT_MAX_METHODS`], or the telemetry's `with_label_bound` for
    /// `grpc_method`).
    pub fn with_max_methods(mut self, max: usize) -> Self {
        self.max_methods = Some(max);
        self
    }

    /// Latency buckets (default: the telemetry's for `grpc_server_handling_seconds`).
    pub fn with_buckets(mut self, buckets: Vec<f64>) -> Self {
        self.buckets = Some(buckets);
        self
    }

    /// Registers the families and builds the layer.
    pub fn build(self) -> Result<GrpcMetricsLayer, HttpBuildError> {
        let telemetry = self.telemetry;
        let mut tenants = TenantResolver::new(&telemetry);
        if let Some(header) = &self.tenant_header {
            tenants = tenants.with_header(header)?;
        }
        if self.max_methods == Some(0) {
            return Err(HttpBuildError::ZeroLimit {
                field: "max_methods",
            });
        }
        crate::red::check_buckets("buckets", &self.buckets)?;
        let methods = match self.max_methods {
            Some(max) => {
                let decl = &families::GRPC_SERVER_HANDLED;
                let label = decl
                    .label("grpc_method")
                    .map_or("grpc_method", |l| l.name_for(telemetry.naming()));
                telemetry.bounded_label(decl.name_for(telemetry.naming()), label, max)?
            }
            None => telemetry.label_guard(&families::GRPC_SERVER_HANDLED, "grpc_method")?,
        };
        let handling = match self.buckets {
            None => telemetry.declare(&families::GRPC_SERVER_HANDLING)?,
            Some(b) => telemetry.declare_with_buckets(&families::GRPC_SERVER_HANDLING, b)?,
        };
        Ok(GrpcMetricsLayer {
            shared: Arc::new(GrpcShared {
                handled: telemetry.declare(&families::GRPC_SERVER_HANDLED)?,
                handling,
                tenants,
                methods,
                telemetry,
            }),
        })
    }
}

/// Tower layer recording gRPC server metrics; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    shared: Arc<GrpcShared>,
}

impl GrpcMetricsLayer {
    /// A builder for a layer recording into `telemetry`.
    pub fn builder(telemetry: &Telemetry) -> GrpcMetricsBuilder {
        GrpcMetricsBuilder {
            telemetry: telemetry.clone(),
            tenant_header: None,
            max_methods: None,
            buckets: None,
        }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`GrpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
    shared: Arc<GrpcShared>,
}

crate::inner_access!(GrpcMetrics);

/// The W3C trace context header.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcMetrics<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        let tenant = shared.tenants.resolve(req.headers(), req.extensions());
        // The span: the trace-context hook's when one is set, else the
        // incoming `traceparent` (which the default hook reads back from
        // the scope).
        let span = if shared.telemetry.has_trace_context_hook() {
            shared.telemetry.current_span()
        } else {
            crate::tenant::header(req.headers(), &TRACEPARENT)
                .and_then(|v| SpanContext::from_traceparent(v.as_bytes()))
        };
        let scope = Scope::with_span(tenant.clone(), span);
        let trace = span.and_then(|s| s.exemplar());
        let call = Operation::start_for(
            tenant,
            trace,
            Calls(shared.clone()),
            req.uri().path_and_query().cloned(),
        );
        let mut scope = Some(scope);
        let inner = scope::poll_in(&mut scope, || self.inner.call(req));
        ResponseFuture {
            inner,
            call: Some(call),
            scope,
        }
    }
}

pin_project! {
    /// Response future of [`GrpcMetrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Operation<Calls>>,
        scope: Option<Scope>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let polled = scope::poll_in(this.scope, || inner.poll(cx));
        match std::task::ready!(polled) {
            Ok(response) => {
                // Not a gRPC answer: classified by its HTTP status.
                let code = grpc_status(response.headers()).or_else(|| {
                    (!response.status().is_success())
                        .then(|| GrpcCode::from_http_status(response.status().as_u16()))
                });
                let (parts, body) = response.into_parts();
                let body = ResponseBody::new(body, this.call.take(), code, this.scope.take());
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(error) => {
                if let Some(call) = this.call.take() {
                    call.finish(Outcome::Grpc(GrpcCode::Unknown));
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

pin_project! {
    /// Response body of [`GrpcMetrics`]: the call ends with its trailers
    /// (or with the headers of a trailers-only response).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        call: Option<Operation<Calls>>,
        // From the response headers, for trailers-only responses.
        code: Option<GrpcCode>,
        scope: Option<Scope>,
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("call", &self.call)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl<B: Body> ResponseBody<B> {
    fn new(
        inner: B,
        mut call: Option<Operation<Calls>>,
        code: Option<GrpcCode>,
        scope: Option<Scope>,
    ) -> Self {
        if inner.is_end_stream()
            && let Some(call) = call.take()
        {
            call.finish(Outcome::Grpc(code.unwrap_or(GrpcCode::Unknown)));
        }
        Self {
            inner,
            call,
            code,
            scope,
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let inner = this.inner.as_mut();
        let frame = std::task::ready!(scope::poll_in(this.scope, || inner.poll_frame(cx)));
        let end = |call: &mut Option<Operation<Calls>>, code: GrpcCode| {
            if let Some(call) = call.take() {
                call.finish(Outcome::Grpc(code));
            }
        };
        let headers_code = this.code.unwrap_or(GrpcCode::Unknown);
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    end(this.call, code);
                } else if this.inner.is_end_stream() {
                    end(this.call, headers_code);
                }
            }
            Some(Err(_)) => end(this.call, GrpcCode::Unknown),
            None => end(this.call, headers_code),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
