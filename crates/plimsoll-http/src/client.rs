//! Outbound calls: `external_api_duration_seconds{service, endpoint, status_code}`.
//!
//! [`ExternalCallLayer`] wraps any tower HTTP client (a hyper client, a
//! tonic channel); [`ExternalCalls::time`] times any future, for SDK clients
//! that are not tower services. Both time the call with the kit's
//! [`Operation`] guard: a call dropped before it completes records as
//! `cancelled`. The tenant is the current request's (the server layers
//! open a request scope), unless given. `service` and `endpoint` are
//! bounded (past the bound: `__other__`); give the layer an endpoint
//! function that returns templates (`/v1/charges/{id}`) rather than raw
//! paths. `status_code` is the HTTP status, or `ok`, `error`, `cancelled`
//! for calls without one.
//!
//! ```
//! use plimsoll_core::Telemetry;
//! use plimsoll_core::classify::Outcome;
//! use plimsoll_http::ExternalCalls;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::builder().build().unwrap();
//! let calls = ExternalCalls::new(&telemetry).unwrap();
//! let charged: Result<u32, String> = calls.time("payments", "charge", async { Ok(42) }).await;
//! assert_eq!(charged, Ok(42));
//! // Outside a request the tenant is `__system__`.
//! let system = plimsoll_core::Tenant::system();
//! assert_eq!(calls.count(&system, "payments", "charge", Outcome::Ok), 1);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use plimsoll_core::classify::Outcome;
use plimsoll_core::operation::{Completed, Operation, RecordOperation, Timed};
use plimsoll_core::trace::{OpenSpan, SpanKind, SpanStart};
use plimsoll_core::{Histogram, LabelGuard, Telemetry, Tenant, impl_label_set, label_key};
use tower_layer::Layer;
use tower_service::Service;

use crate::families;
use crate::red::HttpBuildError;

pub use crate::families::{DEFAULT_MAX_ENDPOINTS, DEFAULT_MAX_SERVICES};

/// Labels of `external_api_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ExternalLabels {
    /// The called service (`payments`), bounded.
    pub service: Arc<str>,
    /// The endpoint (`/v1/charges`), bounded.
    pub endpoint: Arc<str>,
    /// The outcome: an HTTP status, `ok`, `error`, `cancelled`.
    pub status_code: Outcome,
}
impl_label_set!(ExternalLabels {
    service,
    endpoint,
    status_code
});
label_key!(
    /// The borrowed form of [`ExternalLabels`].
    pub struct ExternalKey for ExternalLabels { service: Arc<str>, endpoint: Arc<str>, status_code: Outcome }
);

/// Records outbound calls; cheap to clone.
#[derive(Clone, Debug)]
pub struct ExternalCalls {
    histogram: Histogram<ExternalLabels>,
    services: LabelGuard,
    endpoints: LabelGuard,
    telemetry: Telemetry,
}

/// The labels an outbound call carries until it ends: both went through
/// their guards already.
#[derive(Clone, Debug)]
pub struct CallLabels {
    service: Arc<str>,
    endpoint: Arc<str>,
}

impl RecordOperation for ExternalCalls {
    type Labels = CallLabels;

    fn record(&self, done: Completed<'_, CallLabels>) {
        let key = ExternalKey {
            service: &done.labels.service,
            endpoint: &done.labels.endpoint,
            status_code: done.outcome,
        };
        self.histogram
            .observe_with_exemplar(done.tenant, &key, done.seconds, done.trace);
    }

    /// A client span named `service endpoint`.
    fn open_span(&self, telemetry: &Telemetry, labels: &CallLabels) -> OpenSpan {
        let name = format!("{} {}", labels.service, labels.endpoint);
        let attributes = [
            ("peer.service", (&*labels.service).into()),
            ("plimsoll.endpoint", (&*labels.endpoint).into()),
        ];
        telemetry.start_span(&SpanStart::new(&name, SpanKind::Client, &attributes))
    }
}

impl ExternalCalls {
    /// Registers `external_api_duration_seconds` on `telemetry`, with the
    /// bounds of `service` and `endpoint` from the telemetry (default
    /// [`DEFAULT_MAX_SERVICES`], [`DEFAULT_MAX_ENDPOINTS`]).
    pub fn new(telemetry: &Telemetry) -> Result<Self, HttpBuildError> {
        let decl = &families::EXTERNAL_API_DURATION;
        Ok(Self {
            histogram: telemetry.declare(decl)?,
            services: telemetry.label_guard(decl, "service")?,
            endpoints: telemetry.label_guard(decl, "endpoint")?,
            telemetry: telemetry.clone(),
        })
    }

    /// The labels of a call (each admitted through its bound).
    pub fn labels(&self, service: &str, endpoint: &str) -> CallLabels {
        CallLabels {
            service: self.services.admit(service),
            endpoint: self.endpoints.admit(endpoint),
        }
    }

    /// Records one call that took `seconds`.
    pub fn record(
        &self,
        tenant: &Tenant,
        service: &str,
        endpoint: &str,
        outcome: Outcome,
        seconds: f64,
    ) {
        let labels = self.labels(service, endpoint);
        let key = ExternalKey {
            service: &labels.service,
            endpoint: &labels.endpoint,
            status_code: outcome,
        };
        self.histogram.observe(tenant, &key, seconds);
    }

    /// Starts timing a call for the current request's tenant.
    pub fn start(&self, service: &str, endpoint: &str) -> Operation<&ExternalCalls> {
        Operation::start(&self.telemetry, self, self.labels(service, endpoint))
    }

    /// Awaits `call` and records it for the current request's tenant: `ok`
    /// or `error` from its result, or `cancelled` if it is dropped first.
    pub fn time<F, T, E>(&self, service: &str, endpoint: &str, call: F) -> TimedCall<'_, F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let classify: fn(&Result<T, E>) -> Outcome = Outcome::classify_result;
        self.start(service, endpoint).time(call, classify)
    }

    /// The number of recorded calls with these labels.
    pub fn count(&self, tenant: &Tenant, service: &str, endpoint: &str, outcome: Outcome) -> u64 {
        let key = ExternalKey {
            service,
            endpoint,
            status_code: outcome,
        };
        self.histogram.count(tenant, &key)
    }
}

/// The future of [`ExternalCalls::time`].
pub type TimedCall<'a, F, T, E> = Timed<F, &'a ExternalCalls, fn(&Result<T, E>) -> Outcome>;

/// Maps a request to its endpoint label.
pub type EndpointFn = dyn Fn(&http::Method, &http::Uri) -> String + Send + Sync;

/// Builds an [`ExternalCallLayer`].
pub struct ExternalCallBuilder {
    telemetry: Telemetry,
    service: String,
    endpoint: Option<Arc<EndpointFn>>,
}

impl fmt::Debug for ExternalCallBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalCallBuilder")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ExternalCallBuilder {
    /// Names the endpoint of each request (return a template, not a raw
    /// path; default: the request path, bounded).
    pub fn with_endpoint<F>(mut self, endpoint: F) -> Self
    where
        F: Fn(&http::Method, &http::Uri) -> String + Send + Sync + 'static,
    {
        self.endpoint = Some(Arc::new(endpoint));
        self
    }

    /// Registers the family and builds the layer.
    pub fn build(self) -> Result<ExternalCallLayer, HttpBuildError> {
        let calls = ExternalCalls::new(&self.telemetry)?;
        // Admitted once here; each call then admits only its endpoint.
        let service = calls.services.admit(&self.service);
        Ok(ExternalCallLayer {
            calls: Arc::new(calls),
            service,
            endpoint: self.endpoint,
        })
    }
}

/// Tower layer timing outbound HTTP calls to one service, to the response
/// headers. The tenant is a [`Tenant`] extension on the outbound request,
/// else the current request's, else `__system__`.
#[derive(Clone)]
pub struct ExternalCallLayer {
    /// Shared by every call: an operation holds it, not a copy of it.
    calls: Arc<ExternalCalls>,
    service: Arc<str>,
    endpoint: Option<Arc<EndpointFn>>,
}

impl fmt::Debug for ExternalCallLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalCallLayer")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ExternalCallLayer {
    /// A builder for calls to `service`.
    pub fn builder(telemetry: &Telemetry, service: impl Into<String>) -> ExternalCallBuilder {
        ExternalCallBuilder {
            telemetry: telemetry.clone(),
            service: service.into(),
            endpoint: None,
        }
    }
}

impl<S> Layer<S> for ExternalCallLayer {
    type Service = ExternalCall<S>;
    fn layer(&self, inner: S) -> ExternalCall<S> {
        ExternalCall {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ExternalCallLayer`].
#[derive(Clone, Debug)]
pub struct ExternalCall<S> {
    inner: S,
    layer: ExternalCallLayer,
}

crate::inner_access!(ExternalCall);

impl<S, ReqB, ResB> Service<Request<ReqB>> for ExternalCall<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let layer = &self.layer;
        let endpoint = match &layer.endpoint {
            Some(f) => layer.calls.endpoints.admit(&f(req.method(), req.uri())),
            None => layer.calls.endpoints.admit(req.uri().path()),
        };
        let labels = CallLabels {
            service: layer.service.clone(),
            endpoint,
        };
        let call = match req.extensions().get::<Tenant>() {
            Some(tenant) => Operation::start_for(
                tenant.clone(),
                layer.calls.telemetry.current_trace(),
                Arc::clone(&layer.calls),
                labels,
            ),
            // A span of the request's own opens below, not the generic one.
            None if layer.calls.telemetry.opens_spans() => Operation::start_for(
                plimsoll_core::scope::current_tenant(),
                None,
                Arc::clone(&layer.calls),
                labels,
            ),
            None => Operation::start(&layer.calls.telemetry, Arc::clone(&layer.calls), labels),
        };
        let telemetry = &layer.calls.telemetry;
        let call = if telemetry.opens_spans() {
            let span = match telemetry.sample_span(SpanKind::Client, None) {
                Ok(()) => client_span(telemetry, &layer.service, &req),
                // Not traced: the request's context (sampled flag off)
                // still goes with the call.
                Err(open) => open,
            };
            telemetry.inject(&span, &mut crate::tenant::HeaderWriter(req.headers_mut()));
            call.traced(telemetry, span)
        } else {
            call
        };
        ResponseFuture {
            inner: self.inner.call(req),
            call: Some(call),
        }
    }
}

pin_project! {
    /// Response future of [`ExternalCall`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Operation<Arc<ExternalCalls>>>,
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
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let output = match this.call.as_ref() {
            Some(call) => call.in_span(|| inner.poll(cx)),
            None => inner.poll(cx),
        };
        let output = std::task::ready!(output);
        if let Some(call) = this.call.take() {
            call.finish(match &output {
                Ok(response) => Outcome::Http(response.status().as_u16()),
                Err(_) => Outcome::Error("error"),
            });
        }
        Poll::Ready(output)
    }
}

/// The client span of an outbound HTTP request, named by its method, with
/// the semantic-convention attributes (the URL without its query).
#[inline(never)]
fn client_span<B>(telemetry: &Telemetry, service: &str, req: &Request<B>) -> OpenSpan {
    let uri = req.uri();
    let url = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    };
    let method = req.method().as_str();
    let mut attributes = vec![
        ("http.request.method", method.into()),
        ("url.full", url.as_str().into()),
        ("peer.service", service.into()),
    ];
    if let Some(host) = uri.host() {
        attributes.push(("server.address", host.into()));
    }
    if let Some(port) = uri.port_u16() {
        attributes.push(("server.port", port.into()));
    }
    telemetry.start_span(&SpanStart::new(method, SpanKind::Client, &attributes))
}
