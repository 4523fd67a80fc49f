//! The response future and the drop guard that records every request once.

use plimsoll_core::clock::Stamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
    /// Held only when `in_flight` is an overflow series; otherwise the
    /// route is read from the in-flight series' labels.
    pub(crate) route: Option<Route>,
    pub(crate) in_flight: SeriesKey,
    pub(crate) start: Stamp,
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
            .field("route", &self.route())
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

    /// The request's route label.
    fn route(&self) -> &str {
        match &self.request.route {
            Some(route) => route.as_str(),
            None => self
                .shared
                .recorder
                .in_flight_route(&self.request.in_flight)
                .unwrap_or(plimsoll_core::names::OTHER),
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
        let seconds = r.start.elapsed_seconds();
        let recorder = &self.shared.recorder;
        let key = super::memo::duration(self.shared.id, &r.in_flight, status, || {
            recorder.duration_key(&r.tenant, r.method, self.route(), status)
        });
        recorder.observe(&key, seconds, r.trace);
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
        let route = self.route();
        self.shared.recorder.end(&Outcome {
            tenant: &r.tenant,
            method: r.method,
            route,
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
                    route,
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
        // A panic in the inner future is recorded as a 500 while it unwinds
        // through here: a catch-panic layer drops this future only after.
        let sentinel = PanicSentinel(Some(this.guard));
        let polled = this.inner.poll(cx);
        let slot = sentinel.defuse();
        match std::task::ready!(polled) {
            Ok(response) => {
                let mut guard = slot.and_then(Option::take);
                if let Some(guard) = guard.as_mut() {
                    guard.on_headers(response.status().as_u16());
                }
                Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, guard))))
            }
            Err(error) => {
                if let Some(guard) = slot.and_then(Option::take) {
                    guard.fail();
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

/// Records the request as a panic (500) when dropped by unwinding.
struct PanicSentinel<'a>(Option<&'a mut Option<Guard>>);

impl<'a> PanicSentinel<'a> {
    /// The poll returned: gives the guard back, recording nothing.
    #[inline]
    fn defuse(mut self) -> Option<&'a mut Option<Guard>> {
        self.0.take()
    }
}

impl Drop for PanicSentinel<'_> {
    fn drop(&mut self) {
        if let Some(guard) = self.0.take()
            && std::thread::panicking()
            && let Some(guard) = guard.take()
        {
            guard.panicked();
        }
    }
}
