//! Outbound calls: `external_api_duration_seconds{service, endpoint, status_code}`.
//!
//! [`ExternalCallLayer`] wraps any tower HTTP client (a hyper client, a
//! tonic channel); [`ExternalCalls::time`] times any future, for SDK clients
//! that are not tower services. `endpoint` is bounded (past the bound:
//! `__other__`); give the layer an endpoint function that returns templates
//! (`/v1/charges/{id}`) rather than raw paths.
//!
//! ```
//! use plimsoll_core::Telemetry;
//! use plimsoll_http::ExternalCalls;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::builder().build().unwrap();
//! let calls = ExternalCalls::new(&telemetry).unwrap();
//! let tenant = telemetry.tenant("acme");
//! let charged: Result<u32, String> = calls
//!     .time(&tenant, "payments", "charge", async { Ok(42) })
//!     .await;
//! assert_eq!(charged, Ok(42));
//! assert_eq!(calls.count(&tenant, "payments", "charge", "ok"), 1);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use pin_project_lite::pin_project;
use plimsoll_core::{
    Histogram, LabelGuard, LabelKey, LabelValue, LabelValues, RegisterError, Telemetry, Tenant,
    impl_label_set,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::names;

/// Default bound on distinct `endpoint` values.
pub const DEFAULT_MAX_ENDPOINTS: usize = 200;
/// Default bound on distinct `service` values.
pub const DEFAULT_MAX_SERVICES: usize = 100;

/// The `status_code` of an outbound call.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CallStatus {
    /// An HTTP status code.
    Code(u16),
    /// A non-HTTP call that succeeded.
    Ok,
    /// A call that failed without a status (transport error, `Err`).
    Error,
    /// A call dropped before it completed.
    Cancelled,
}

impl LabelValue for CallStatus {
    fn write_value(&self, out: &mut LabelValues<'_>) {
        match self {
            CallStatus::Code(code) => code.write_value(out),
            CallStatus::Ok => out.push("ok"),
            CallStatus::Error => out.push("error"),
            CallStatus::Cancelled => out.push("cancelled"),
        }
    }
}

impl CallStatus {
    fn parse(label: &str) -> Self {
        match label {
            "ok" => CallStatus::Ok,
            "error" => CallStatus::Error,
            "cancelled" => CallStatus::Cancelled,
            code => code.parse().map_or(CallStatus::Error, CallStatus::Code),
        }
    }
}

/// Labels of `external_api_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ExternalLabels {
    /// The called service (`payments`).
    pub service: Arc<str>,
    /// The endpoint (`/v1/charges`), bounded.
    pub endpoint: Arc<str>,
    /// The outcome.
    pub status_code: CallStatus,
}
impl_label_set!(ExternalLabels {
    service,
    endpoint,
    status_code
});

#[derive(Hash)]
struct ExternalKey<'a> {
    service: &'a str,
    endpoint: &'a str,
    status_code: CallStatus,
}

impl LabelKey<ExternalLabels> for ExternalKey<'_> {
    fn matches(&self, l: &ExternalLabels) -> bool {
        *l.service == *self.service
            && *l.endpoint == *self.endpoint
            && l.status_code == self.status_code
    }
    fn to_labels(&self) -> ExternalLabels {
        ExternalLabels {
            service: self.service.into(),
            endpoint: self.endpoint.into(),
            status_code: self.status_code,
        }
    }
}

/// Records outbound calls; cheap to clone.
#[derive(Clone, Debug)]
pub struct ExternalCalls {
    histogram: Histogram<ExternalLabels>,
    services: LabelGuard,
    endpoints: LabelGuard,
}

impl ExternalCalls {
    /// Registers `external_api_duration_seconds` on `telemetry`.
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        Ok(Self {
            histogram: telemetry.histogram(names::EXTERNAL_API_DURATION, names::HELP_EXTERNAL)?,
            services: telemetry.label_guard(
                names::EXTERNAL_API_DURATION,
                "service",
                DEFAULT_MAX_SERVICES,
            ),
            endpoints: telemetry.label_guard(
                names::EXTERNAL_API_DURATION,
                "endpoint",
                DEFAULT_MAX_ENDPOINTS,
            ),
        })
    }

    /// Records one call that took `seconds`.
    pub fn record(
        &self,
        tenant: &Tenant,
        service: &str,
        endpoint: &str,
        status: CallStatus,
        seconds: f64,
    ) {
        let service = self.services.admit(service);
        let endpoint = self.endpoints.admit(endpoint);
        self.record_admitted(tenant, &service, &endpoint, status, seconds);
    }

    /// Records with labels that went through the guards already.
    fn record_admitted(
        &self,
        tenant: &Tenant,
        service: &str,
        endpoint: &str,
        status: CallStatus,
        seconds: f64,
    ) {
        let key = ExternalKey {
            service,
            endpoint,
            status_code: status,
        };
        self.histogram.observe(tenant, &key, seconds);
    }

    /// Awaits `call` and records it: `ok` or `error` from its result, or
    /// `cancelled` if it is dropped first.
    pub async fn time<F>(
        &self,
        tenant: &Tenant,
        service: &str,
        endpoint: &str,
        call: F,
    ) -> F::Output
    where
        F: Future,
        F::Output: CallOutcome,
    {
        let mut pending = Pending {
            calls: self,
            tenant,
            service,
            endpoint,
            start: Instant::now(),
            done: false,
        };
        let output = call.await;
        pending.done = true;
        self.record(
            tenant,
            service,
            endpoint,
            output.call_status(),
            pending.start.elapsed().as_secs_f64(),
        );
        output
    }

    /// The number of recorded calls with these labels (`status` as written: `200`, `ok`…).
    pub fn count(&self, tenant: &Tenant, service: &str, endpoint: &str, status: &str) -> u64 {
        let key = ExternalKey {
            service,
            endpoint,
            status_code: CallStatus::parse(status),
        };
        self.histogram.count(tenant, &key)
    }
}

/// Records a timed call as cancelled if its future is dropped.
struct Pending<'a> {
    calls: &'a ExternalCalls,
    tenant: &'a Tenant,
    service: &'a str,
    endpoint: &'a str,
    start: Instant,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.calls.record(
                self.tenant,
                self.service,
                self.endpoint,
                CallStatus::Cancelled,
                self.start.elapsed().as_secs_f64(),
            );
        }
    }
}

/// How a call's output maps to `status_code`.
pub trait CallOutcome {
    /// The status of this output.
    fn call_status(&self) -> CallStatus;
}

impl<T, E> CallOutcome for Result<T, E> {
    fn call_status(&self) -> CallStatus {
        if self.is_ok() {
            CallStatus::Ok
        } else {
            CallStatus::Error
        }
    }
}

/// Maps a request to its endpoint label.
pub type EndpointFn = dyn Fn(&http::Method, &http::Uri) -> String + Send + Sync;

/// Tower layer timing outbound HTTP calls to one service, to the response
/// headers. The tenant is a [`Tenant`] extension on the outbound request,
/// or `__system__`.
#[derive(Clone)]
pub struct ExternalCallLayer {
    calls: ExternalCalls,
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
    /// A layer for calls to `service`; endpoints default to the request path (bounded).
    pub fn new(telemetry: &Telemetry, service: &str) -> Result<Self, RegisterError> {
        let calls = ExternalCalls::new(telemetry)?;
        // Admitted once here; each call then admits only its endpoint.
        let service = calls.services.admit(service);
        Ok(Self {
            calls,
            service,
            endpoint: None,
        })
    }

    /// Names the endpoint of each request (return a template, not a raw path).
    pub fn with_endpoint<F>(mut self, endpoint: F) -> Self
    where
        F: Fn(&http::Method, &http::Uri) -> String + Send + Sync + 'static,
    {
        self.endpoint = Some(Arc::new(endpoint));
        self
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
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let endpoints = &self.layer.calls.endpoints;
        let endpoint = match &self.layer.endpoint {
            Some(f) => endpoints.admit(&f(req.method(), req.uri())),
            None => endpoints.admit(req.uri().path()),
        };
        let tenant = req
            .extensions()
            .get::<Tenant>()
            .cloned()
            .unwrap_or_else(Tenant::system);
        CallFuture {
            inner: self.inner.call(req),
            record: Some(CallRecord {
                calls: self.layer.calls.clone(),
                service: self.layer.service.clone(),
                endpoint,
                tenant,
                start: Instant::now(),
            }),
        }
    }
}

struct CallRecord {
    calls: ExternalCalls,
    /// Both labels went through their guards already.
    service: Arc<str>,
    endpoint: Arc<str>,
    tenant: Tenant,
    start: Instant,
}

impl CallRecord {
    fn record(&self, status: CallStatus) {
        self.calls.record_admitted(
            &self.tenant,
            &self.service,
            &self.endpoint,
            status,
            self.start.elapsed().as_secs_f64(),
        );
    }
}

pin_project! {
    /// Response future of [`ExternalCall`].
    pub struct CallFuture<F> {
        #[pin]
        inner: F,
        record: Option<CallRecord>,
    }

    impl<F> PinnedDrop for CallFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(record) = this.project().record.take() {
                record.record(CallStatus::Cancelled);
            }
        }
    }
}

impl<F> fmt::Debug for CallFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for CallFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(record) = this.record.take() {
            record.record(match &output {
                Ok(response) => CallStatus::Code(response.status().as_u16()),
                Err(_) => CallStatus::Error,
            });
        }
        Poll::Ready(output)
    }
}
