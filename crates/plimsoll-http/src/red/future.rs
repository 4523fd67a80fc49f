//! The response future and the drop guard that records every request once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use plimsoll_core::clock::Stamp;
use plimsoll_core::scope::{self, Scope};
use plimsoll_core::trace::{OpenSpan, SpanEnd};
use plimsoll_core::{SeriesKey, Tenant, TraceRef};

use super::body::ResponseBody;
use super::layer::{Finished, Route, Shared};
use crate::labels::ErrorType;
use crate::names::STATUS_CANCELLED;

/// What is known of a request when it starts.
pub(crate) struct Request {
    /// The request's tenant and span: current while the handler runs.
    /// While it is (during a poll), this holds the scope it replaced.
    pub(crate) scope: Option<Scope>,
    pub(crate) method: crate::labels::Method,
    pub(crate) route: Route,
    pub(crate) in_flight: SeriesKey,
    pub(crate) start: Stamp,
    /// From `Content-Length`, when body sizes are recorded.
    pub(crate) request_size: Option<u64>,
    pub(crate) header_timing: bool,
    /// The request's server span, when the telemetry opens spans: entered
    /// while the handler and the body are polled, ended with the guard.
    pub(crate) trace: OpenSpan,
}

/// Records the request exactly once: when the response ends, or, if it is
/// dropped first, as cancelled (or as a 500 when dropped by a panic).
pub(crate) struct Guard {
    shared: Arc<Shared>,
    request: Request,
    status: Option<u16>,
    duration_recorded: bool,
    done: bool,
    pub(crate) response_size: u64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("tenant", &self.tenant().as_str())
            .field("method", &self.request.method)
            .field("route", &self.request.route.as_str())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Guard {
    #[inline]
    pub(crate) fn new(shared: Arc<Shared>, request: Request) -> Self {
        Self {
            shared,
            request,
            status: None,
            duration_recorded: false,
            done: false,
            response_size: 0,
        }
    }

    /// Polls `poll` with the request's scope current (its scope is back in
    /// the guard when this returns, or unwinds).
    #[inline]
    pub(crate) fn in_scope<T>(&mut self, poll: impl FnOnce() -> T) -> T {
        let Request { trace, scope, .. } = &mut self.request;
        trace.in_span(|| scope::poll_in(scope, poll))
    }

    /// The request's tenant.
    #[inline]
    fn tenant(&self) -> &Tenant {
        static UNKNOWN: Tenant = Tenant::unknown();
        self.request.scope.as_ref().map_or(&UNKNOWN, Scope::tenant)
    }

    /// The exemplar: the request's span, when sampled.
    #[inline]
    fn trace(&self) -> Option<TraceRef> {
        self.request.scope.as_ref()?.span()?.exemplar()
    }

    /// The response headers are ready.
    #[inline]
    pub(crate) fn on_headers(&mut self, status: u16) {
        self.status = Some(status);
        if self.request.header_timing {
            self.duration_recorded = true;
            let r = &self.request;
            self.shared.observe(
                self.tenant(),
                r.method,
                r.route.as_str(),
                &r.in_flight,
                status,
                r.start.elapsed_seconds(),
                self.trace(),
            );
        }
    }

    /// The response ended normally.
    pub(crate) fn finish(mut self) {
        let status = self.status.unwrap_or(500);
        self.record(status, None);
    }

    /// The request or response failed: the inner service returned an error
    /// or the body stream broke.
    pub(crate) fn fail(mut self) {
        let status = self.status.unwrap_or(500);
        self.record(status, Some(ErrorType::ServerError));
    }

    /// The handler panicked; an outer catch-panic layer answers 500.
    fn panicked(mut self) {
        self.record(500, Some(ErrorType::ServerError));
    }

    /// Logs a slow request, in its scope and span (so a log line carries
    /// its trace and tenant).
    #[inline(never)]
    fn warn_slow(&mut self, status: u16, elapsed: f64) {
        let route = self.request.route.as_str().to_owned();
        let tenant = self.tenant().as_str().to_owned();
        self.in_scope(|| {
            tracing::warn!(
                target: "plimsoll::http",
                route,
                tenant,
                status,
                duration_ms = elapsed * 1e3,
                "slow request"
            )
        });
    }

    /// Ends the server span: the status code, and an error status for
    /// server errors and cancelled requests (a 4xx is the client's).
    #[inline(never)]
    fn end_span(&self, status: u16, error: Option<ErrorType>) {
        let error = match error {
            Some(ErrorType::ServerError) => Some("server_error"),
            Some(ErrorType::Cancelled) => Some("cancelled"),
            _ => None,
        };
        let attributes = [("http.response.status_code", status.into())];
        self.shared
            .telemetry
            .end_span(&self.request.trace, &SpanEnd::new(error, &attributes));
    }

    fn record(&mut self, status: u16, error: Option<ErrorType>) {
        self.done = true;
        let r = &self.request;
        let elapsed = r.start.elapsed_seconds();
        let error = error.or_else(|| self.shared.classify(status));
        self.shared.end(Finished {
            tenant: self.tenant(),
            method: r.method,
            route: r.route.as_str(),
            in_flight: r.in_flight,
            seconds: (!self.duration_recorded).then_some(elapsed),
            status,
            error,
            trace: self.trace(),
            request_size: r.request_size,
            response_size: self.response_size,
        });
        if self.request.trace.is_recorded() {
            self.end_span(status, error);
        }
        if let Some(threshold) = self.shared.slow
            && elapsed >= threshold.as_secs_f64()
        {
            self.warn_slow(status, elapsed);
        }
        let r = &self.request;
        if let Some(scope) = &r.scope
            && scope.owns_count()
        {
            self.shared.telemetry.request_ended(r.route.as_str(), scope);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if std::thread::panicking() {
            // An outer catch-panic layer answers 500.
            self.record(500, Some(ErrorType::ServerError));
        } else {
            // No response yet: 499; a response whose body was cut: its status.
            let status = self.status.unwrap_or(STATUS_CANCELLED);
            self.record(status, Some(ErrorType::Cancelled));
        }
    }
}

pin_project! {
    /// Response future of [`RedMetrics`](super::RedMetrics).
    pub struct ResponseFuture<F> {
        #[pin]
        pub(crate) inner: F,
        pub(crate) guard: Option<Guard>,
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("guard", &self.guard)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let polled = poll_guarded(this.guard, || inner.poll(cx));
        match std::task::ready!(polled) {
            Ok(response) => {
                let mut guard = this.guard.take();
                if let Some(guard) = guard.as_mut() {
                    guard.on_headers(response.status().as_u16());
                }
                Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, guard))))
            }
            Err(error) => {
                if let Some(guard) = this.guard.take() {
                    guard.fail();
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

/// Runs the handler's poll in the request's scope. A panic in it is
/// recorded as a 500 while it unwinds through here: a catch-panic layer
/// drops the future only after, when the thread no longer panics.
#[inline]
fn poll_guarded<T>(slot: &mut Option<Guard>, poll: impl FnOnce() -> T) -> T {
    let mut sentinel = PanicSentinel { slot, armed: true };
    let result = match sentinel.slot.as_mut() {
        Some(guard) => guard.in_scope(poll),
        None => poll(),
    };
    sentinel.armed = false;
    result
}

/// Records the request as a panic (500) when dropped by unwinding.
struct PanicSentinel<'a> {
    slot: &'a mut Option<Guard>,
    armed: bool,
}

impl Drop for PanicSentinel<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.armed
            && let Some(guard) = self.slot.take()
        {
            guard.panicked();
        }
    }
}
