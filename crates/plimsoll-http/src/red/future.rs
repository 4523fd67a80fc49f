//! The response future and the drop guard that records every request once.

use plimsoll_core::clock::Stamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use plimsoll_core::{SeriesKey, TraceRef};

use super::body::ResponseBody;
use super::{Outcome, Record, Route, Shared};
use crate::labels::ErrorType;
use crate::names::STATUS_CANCELLED;

/// What is known of a request when it starts. Kept small, because the
/// guard travels inside the response future and body, which are moved
/// several times: tenant, method and route are read back from the
/// in-flight series when needed.
pub(crate) struct Request {
    pub(crate) in_flight: SeriesKey,
    pub(crate) start: Stamp,
    /// Method and route, held only when `in_flight` is an overflow series
    /// (it has no labels to read them from).
    pub(crate) overflow: Option<Box<(&'static str, Route)>>,
    /// From `Content-Length`; [`UNKNOWN_SIZE`] when absent or not recorded.
    pub(crate) request_size: u64,
    pub(crate) trace: CompactTrace,
    pub(crate) header_timing: bool,
}

/// A request size that is not known (an `Option<u64>` would take 16 bytes).
pub(crate) const UNKNOWN_SIZE: u64 = u64::MAX;

/// An optional [`TraceRef`] in 24 bytes aligned to 8 (a span id is never 0).
#[derive(Clone, Copy)]
pub(crate) struct CompactTrace([u64; 3]);

impl CompactTrace {
    #[inline]
    pub(crate) fn new(trace: Option<TraceRef>) -> Self {
        match trace {
            Some(t) => Self([(t.trace_id >> 64) as u64, t.trace_id as u64, t.span_id]),
            None => Self([0; 3]),
        }
    }

    #[inline]
    fn get(self) -> Option<TraceRef> {
        let [high, low, span_id] = self.0;
        (span_id != 0).then_some(TraceRef {
            trace_id: (u128::from(high) << 64) | u128::from(low),
            span_id,
        })
    }
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
            .field("route", &self.labels().1)
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

    /// The request's method and route labels.
    fn labels(&self) -> (&'static str, &str) {
        super::request_labels(
            &self.shared.recorder,
            &self.request.in_flight,
            self.request.overflow.as_deref(),
        )
    }

    /// The response headers are ready.
    #[inline]
    pub(crate) fn on_headers(&mut self, status: u16) {
        self.status = Some(status);
        if self.request.header_timing {
            self.record_header_timing(status);
        }
    }

    /// On a header-timing route, latency ends with the response headers.
    #[inline(never)]
    fn record_header_timing(&mut self, status: u16) {
        if let Some((key, seconds)) = self.take_duration(status) {
            let trace = self.request.trace.get();
            self.shared.recorder.observe(&key, seconds, trace);
        }
    }

    /// The latency so far and its series for `status`, unless it was
    /// recorded already (at the response headers); marks it recorded.
    #[inline]
    fn take_duration(&mut self, status: u16) -> Option<(SeriesKey, f64)> {
        if self.duration_recorded {
            return None;
        }
        self.duration_recorded = true;
        let r = &self.request;
        let seconds = r.start.elapsed_seconds();
        let key = super::memo::duration(self.shared.id, &r.in_flight, status, || {
            self.duration_key(status)
        });
        Some((key, seconds))
    }

    /// Records the latency (unless recorded at the headers) and takes the
    /// request off the in-flight gauge, with one dispatch on the naming scheme.
    #[inline]
    fn record_warm(&mut self, status: u16) {
        let duration = self.take_duration(status);
        let r = &self.request;
        self.shared
            .recorder
            .end_warm(&r.in_flight, duration, r.trace.get());
    }

    /// The latency series for `status`, looked up in the family (a memo miss).
    fn duration_key(&self, status: u16) -> SeriesKey {
        let recorder = &self.shared.recorder;
        let (method, route) = self.labels();
        let tenant = recorder.in_flight_tenant(&self.request.in_flight);
        recorder.duration_key(&tenant, method, route, status)
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

    #[inline]
    fn record(&mut self, status: u16, error: Option<ErrorType>) {
        self.done = true;
        self.record_warm(status);
        let error = error.or_else(|| {
            self.shared
                .classify(http::StatusCode::from_u16(status).ok()?)
        });
        if error.is_some() || self.shared.end_extras {
            self.record_extras(status, error);
        }
    }

    /// What only some requests need at the end: the error counter, body
    /// sizes, the slow-request log.
    #[inline(never)]
    fn record_extras(&self, status: u16, error: Option<ErrorType>) {
        let r = &self.request;
        self.shared.recorder.end(&Outcome {
            in_flight: &r.in_flight,
            overflow: r.overflow.as_deref(),
            error,
            request_size: (r.request_size != UNKNOWN_SIZE).then_some(r.request_size),
            response_size: self.response_size,
        });
        if let Some(threshold) = self.shared.slow {
            let elapsed = r.start.elapsed();
            if elapsed >= threshold {
                let tenant = self.shared.recorder.in_flight_tenant(&r.in_flight);
                tracing::warn!(
                    target: "plimsoll::http",
                    route = self.labels().1,
                    tenant = tenant.as_str(),
                    status,
                    duration_ms = elapsed.as_secs_f64() * 1e3,
                    "slow request"
                );
            }
        }
    }

    /// Dropped before the end was recorded.
    #[cold]
    #[inline(never)]
    fn dropped(&mut self) {
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

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.dropped();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The guard rides in the response future and body, which axum moves
    /// several times per request: it must stay small.
    #[test]
    fn the_guard_stays_small() {
        assert!(
            std::mem::size_of::<Option<Guard>>() <= 96,
            "{}",
            std::mem::size_of::<Option<Guard>>()
        );
    }

    #[test]
    fn compact_trace_round_trips() {
        let trace = TraceRef {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 0x00f0_67aa_0ba9_02b7,
        };
        assert_eq!(CompactTrace::new(Some(trace)).get(), Some(trace));
        assert_eq!(CompactTrace::new(None).get(), None);
    }
}
