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
//! With tonic: `Server::builder().layer(GrpcMetricsLayer::new(&telemetry)?)`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use plimsoll_core::names::{OTHER, UNMATCHED};
use plimsoll_core::{
    Counter, Histogram, LabelGuard, LabelKey, RegisterError, Telemetry, Tenant, impl_label_set,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::names;
use crate::red::HttpBuildError;
use crate::tenant::TenantSource;

/// Default bound on distinct `service/method` pairs.
pub const DEFAULT_MAX_METHODS: usize = 1_000;

/// gRPC status code names, indexed by code.
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const CANCELLED: u8 = 1;
const UNKNOWN: u8 = 2;
const UNIMPLEMENTED: u8 = 12;

fn code_name(code: u8) -> &'static str {
    CODE_NAMES
        .get(usize::from(code))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// `grpc-status` from headers or trailers; unknown values are `UNKNOWN`.
fn grpc_status(headers: &HeaderMap) -> Option<u8> {
    let value = headers.get("grpc-status")?;
    let code = value.to_str().ok().and_then(|v| v.parse::<u8>().ok());
    Some(
        code.filter(|c| usize::from(*c) < CODE_NAMES.len())
            .unwrap_or(UNKNOWN),
    )
}

/// Labels of `grpc_server_handled_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct HandledLabels {
    /// Fully qualified service (`orders.v1.Orders`).
    pub grpc_service: Arc<str>,
    /// Method (`GetOrder`).
    pub grpc_method: Arc<str>,
    /// Status code name (`OK`, `NOT_FOUND`…).
    pub grpc_code: &'static str,
}
impl_label_set!(HandledLabels {
    grpc_service,
    grpc_method,
    grpc_code
});

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

#[derive(Hash)]
struct HandledKey<'a> {
    grpc_service: &'a str,
    grpc_method: &'a str,
    grpc_code: &'static str,
}

impl LabelKey<HandledLabels> for HandledKey<'_> {
    fn matches(&self, l: &HandledLabels) -> bool {
        *l.grpc_service == *self.grpc_service
            && *l.grpc_method == *self.grpc_method
            && l.grpc_code == self.grpc_code
    }
    fn to_labels(&self) -> HandledLabels {
        HandledLabels {
            grpc_service: self.grpc_service.into(),
            grpc_method: self.grpc_method.into(),
            grpc_code: self.grpc_code,
        }
    }
}

#[derive(Hash)]
struct MethodKey<'a> {
    grpc_service: &'a str,
    grpc_method: &'a str,
}

impl LabelKey<MethodLabels> for MethodKey<'_> {
    fn matches(&self, l: &MethodLabels) -> bool {
        *l.grpc_service == *self.grpc_service && *l.grpc_method == *self.grpc_method
    }
    fn to_labels(&self) -> MethodLabels {
        MethodLabels {
            grpc_service: self.grpc_service.into(),
            grpc_method: self.grpc_method.into(),
        }
    }
}

struct GrpcShared {
    handled: Counter<HandledLabels>,
    handling: Histogram<MethodLabels>,
    tenants: TenantSource,
    methods: LabelGuard,
}

impl fmt::Debug for GrpcShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcShared")
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl GrpcShared {
    fn record(&self, tenant: &Tenant, path: Option<&PathAndQuery>, code: u8, seconds: f64) {
        let admitted;
        let (service, method) = if code == UNIMPLEMENTED {
            (UNMATCHED, UNMATCHED)
        } else {
            match path
                .and_then(|p| p.path().strip_prefix('/'))
                .filter(|p| p.contains('/'))
            {
                None => (UNMATCHED, UNMATCHED),
                Some(full) => {
                    admitted = self.methods.admit(full);
                    admitted.split_once('/').unwrap_or((OTHER, OTHER))
                }
            }
        };
        self.handled.inc(
            tenant,
            &HandledKey {
                grpc_service: service,
                grpc_method: method,
                grpc_code: code_name(code),
            },
        );
        self.handling.observe(
            tenant,
            &MethodKey {
                grpc_service: service,
                grpc_method: method,
            },
            seconds,
        );
    }
}

/// Tower layer recording gRPC server metrics; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    shared: Arc<GrpcShared>,
}

impl GrpcMetricsLayer {
    /// A layer recording into `telemetry`; tenants from the [`Tenant`] extension only.
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        Ok(Self {
            shared: Arc::new(GrpcShared {
                handled: telemetry.counter(names::GRPC_SERVER_HANDLED, names::HELP_GRPC_HANDLED)?,
                handling: telemetry
                    .histogram(names::GRPC_SERVER_HANDLING, names::HELP_GRPC_HANDLING)?,
                tenants: TenantSource::new(telemetry),
                methods: telemetry.label_guard(
                    names::GRPC_SERVER_HANDLED,
                    "grpc_service,grpc_method",
                    DEFAULT_MAX_METHODS,
                ),
            }),
        })
    }

    /// Also reads the tenant from this metadata key (validated and bounded).
    pub fn with_tenant_header(self, name: &str) -> Result<Self, HttpBuildError> {
        let header =
            http::HeaderName::try_from(name).map_err(|_| HttpBuildError::InvalidHeader {
                field: "tenant_header",
                value: name.to_string(),
            })?;
        let old = &self.shared;
        let mut tenants = old.tenants.clone();
        tenants.header = Some(header);
        Ok(Self {
            shared: Arc::new(GrpcShared {
                handled: old.handled.clone(),
                handling: old.handling.clone(),
                tenants,
                methods: old.methods.clone(),
            }),
        })
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

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcMetrics<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body,
{
    type Response = Response<GrpcBody<ResB>>;
    type Error = S::Error;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let guard = CallGuard {
            shared: self.shared.clone(),
            tenant: self.shared.tenants.resolve(req.headers(), req.extensions()),
            path: req.uri().path_and_query().cloned(),
            start: Instant::now(),
            code: None,
            done: false,
        };
        GrpcFuture {
            inner: self.inner.call(req),
            guard: Some(guard),
        }
    }
}

/// Records a call once: at the end of its stream, or as `CANCELLED` when dropped.
struct CallGuard {
    shared: Arc<GrpcShared>,
    tenant: Tenant,
    path: Option<PathAndQuery>,
    start: Instant,
    code: Option<u8>,
    done: bool,
}

impl CallGuard {
    fn finish(mut self, code: u8) {
        self.record(code);
    }

    fn record(&mut self, code: u8) {
        self.done = true;
        self.shared.record(
            &self.tenant,
            self.path.as_ref(),
            code,
            self.start.elapsed().as_secs_f64(),
        );
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            self.record(CANCELLED);
        }
    }
}

pin_project! {
    /// Response future of [`GrpcMetrics`].
    pub struct GrpcFuture<F> {
        #[pin]
        inner: F,
        guard: Option<CallGuard>,
    }
}

impl<F> fmt::Debug for GrpcFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<GrpcBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.inner.poll(cx)) {
            Ok(response) => {
                let mut guard = this.guard.take();
                if let Some(guard) = guard.as_mut() {
                    guard.code = grpc_status(response.headers()).or_else(|| {
                        // Not a gRPC answer: classify by HTTP status.
                        (!response.status().is_success()).then_some(
                            match response.status().as_u16() {
                                404 => UNIMPLEMENTED,
                                401 => 16,
                                403 => 7,
                                429 | 502..=504 => 14,
                                _ => UNKNOWN,
                            },
                        )
                    });
                }
                let (parts, body) = response.into_parts();
                Poll::Ready(Ok(Response::from_parts(parts, GrpcBody::new(body, guard))))
            }
            Err(error) => {
                if let Some(guard) = this.guard.take() {
                    guard.finish(UNKNOWN);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

pin_project! {
    /// Response body of [`GrpcMetrics`]: reads the status from the trailers.
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        guard: Option<CallGuard>,
    }
}

impl<B> fmt::Debug for GrpcBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcBody").finish_non_exhaustive()
    }
}

impl<B: Body> GrpcBody<B> {
    fn new(inner: B, mut guard: Option<CallGuard>) -> Self {
        if inner.is_end_stream() {
            // Trailers-only response: the status is in the headers.
            if let Some(guard) = guard.take() {
                let code = guard.code.unwrap_or(UNKNOWN);
                guard.finish(code);
            }
        }
        Self { inner, guard }
    }
}

impl<B: Body> Body for GrpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    if let Some(guard) = this.guard.take() {
                        guard.finish(code);
                    }
                } else if this.inner.is_end_stream()
                    && let Some(guard) = this.guard.take()
                {
                    let code = guard.code.unwrap_or(UNKNOWN);
                    guard.finish(code);
                }
            }
            Some(Err(_)) => {
                if let Some(guard) = this.guard.take() {
                    guard.finish(UNKNOWN);
                }
            }
            None => {
                if let Some(guard) = this.guard.take() {
                    let code = guard.code.unwrap_or(UNKNOWN);
                    guard.finish(code);
                }
            }
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
