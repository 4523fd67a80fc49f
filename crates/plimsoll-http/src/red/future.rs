//! The response future and the drop guard that records every request once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::Response;
use pin_project_lite::pin_project;
use plimsoll_core::{SeriesKey, Tenant, TraceRef};

use super::body::ResponseBody;
use super::{Outcome, Route, Shared};
use crate::labels::ErrorType;
use crate::names::STATUS_CANCELLED;

/// What is known of a request when it starts.
pub(crate) struct Request {
    pub(crate) tenant: Tenant,
    pub(crate) method: &'static str,
    pub(crate) route: Route,
    pub(crate) in_flight: SeriesKey,
    pub(crate) start: Instant,
    pub(crate) request_size: Option<u64>,
    pub(crate) trace: Option<TraceRef>,
    pub(crate) header_timing: bool,
}

/// Records the request exactly once: when the response ends, or, if it is
/// dropped first, as cancelled (or as a 500 when dropped by a panic).
pub(crate) struct Guard {
    shared: Arc<Shared>,
    request: Request,
    status: Option<u16>,
    duration_recorded: bool,
    pub(crate) response_size: u64,
    done: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("route", &self.request.route.as_str())
            .field("tenant", &self.request.tenant.as_str())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub(crate) fn new(shared: Arc<Shared>, request: Request) -> Self {
        Self {
            shared,
            request,
            status: None,
            duration_recorded: false,
            response_size: 0,
            done: false,
        }
    }

    /// The response headers are ready.
    pub(crate) fn on_headers(&mut self, status: u16) {
        self.status = Some(status);
        if self.request.header_timing {
            self.record_duration(status);
        }
    }

    fn record_duration(&mut self, status: u16) {
        if self.duration_recorded {
            return;
        }
        self.duration_recorded = true;
        let r = &self.request;
        self.shared.recorder.duration(
            &r.tenant,
            r.method,
            r.route.as_str(),
            status,
            r.start.elapsed().as_secs_f64(),
            r.trace,
        );
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
    pub(crate) fn panicked(mut self) {
        self.record(500, Some(ErrorType::ServerError));
    }

    fn record(&mut self, status: u16, error: Option<ErrorType>) {
        self.done = true;
        self.record_duration(status);
        let error =
            error.or_else(|| (self.shared.classify)(http::StatusCode::from_u16(status).ok()?));
        let r = &self.request;
        self.shared.recorder.end(&Outcome {
            tenant: &r.tenant,
            method: r.method,
            route: r.route.as_str(),
            in_flight: &r.in_flight,
            error,
            request_size: r.request_size,
            response_size: self.response_size,
        });
        if let Some(threshold) = self.shared.slow {
            let elapsed = r.start.elapsed();
            if elapsed >= threshold {
                tracing::warn!(
                    target: "plimsoll::http",
                    route = r.route.as_str(),
                    tenant = r.tenant.as_str(),
                    status,
                    duration_ms = elapsed.as_secs_f64() * 1e3,
                    "slow request"
                );
            }
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
        // A panic is recorded as a 500 here, then goes on unwinding: a
        // catch-panic layer drops this future only after unwinding.
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx)));
        let polled = match polled {
            Ok(polled) => polled,
            Err(panic) => {
                if let Some(guard) = this.guard.take() {
                    guard.panicked();
                }
                std::panic::resume_unwind(panic)
            }
        };
        match std::task::ready!(polled) {
            Ok(response) => {
                let mut guard = this.guard.take();
                if let Some(guard) = guard.as_mut() {
                    guard.on_headers(response.status().as_u16());
                }
                let (parts, body) = response.into_parts();
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    ResponseBody::new(body, guard),
                )))
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
