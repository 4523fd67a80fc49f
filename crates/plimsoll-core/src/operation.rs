//! Timing an operation: one drop guard that measures it, classifies its
//! outcome, records it with the current exemplar, and still records when
//! the operation is dropped before it ends.
//!
//! An integration implements [`RecordOperation`] once (which families to
//! record into, with which labels), then wraps each call: with
//! [`Operation::time`] for a future, or by holding the [`Operation`] guard
//! itself where the end is found elsewhere (a response body's trailers).
//! The tenant is the current request's ([`scope::current_tenant`](crate::scope::current_tenant))
//! unless given, and the exemplar comes from the telemetry's
//! [`TraceContext`](crate::trace::TraceContext) when the operation starts.
//!
//! # Example
//!
//! ```
//! use plimsoll_core::classify::Outcome;
//! use plimsoll_core::operation::{Completed, Operation, RecordOperation};
//! use plimsoll_core::{Histogram, Telemetry, impl_label_set};
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct Publish { topic: &'static str, outcome: Outcome }
//! impl_label_set!(Publish { topic, outcome });
//!
//! #[derive(Clone, Debug)]
//! struct Publishes(Histogram<Publish>);
//!
//! impl RecordOperation for Publishes {
//!     type Labels = &'static str; // the topic
//!     fn record(&self, done: Completed<'_, &'static str>) {
//!         let labels = Publish { topic: done.labels, outcome: done.outcome };
//!         self.0.observe_with_exemplar(done.tenant, &labels, done.seconds, done.trace);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::builder().build().unwrap();
//! let publishes = Publishes(telemetry.histogram("publish_seconds", "Publish latency.").unwrap());
//! let sent: Result<(), &str> = Operation::start(&telemetry, publishes.clone(), "orders")
//!     .time(async { Ok(()) }, Outcome::classify_result)
//!     .await;
//! assert!(sent.is_ok());
//! let system = plimsoll_core::Tenant::system(); // outside a request
//! assert_eq!(publishes.0.count(&system, &Publish { topic: "orders", outcome: Outcome::Ok }), 1);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::classify::Outcome;
use crate::clock::Stamp;
use crate::telemetry::Telemetry;
use crate::tenant::Tenant;
use crate::trace::{AttrValue, OpenSpan, SpanEnd, TraceRef};

/// What an [`Operation`] hands its recorder when it ends.
#[derive(Debug)]
#[non_exhaustive]
pub struct Completed<'a, K> {
    /// The tenant it ran for.
    pub tenant: &'a Tenant,
    /// The labels it was started with.
    pub labels: K,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// The exemplar: the trace it ran in, when sampled.
    pub trace: Option<TraceRef>,
}

/// Records finished operations into an integration's families.
pub trait RecordOperation {
    /// What the operation carries from start to end to label it (a
    /// statement's table, an endpoint, a method).
    type Labels;

    /// Records one finished operation. Called exactly once per operation.
    fn record(&self, done: Completed<'_, Self::Labels>);

    /// Opens the span of an operation with these labels, through
    /// [`Telemetry::start_span`]; called only when the telemetry opens
    /// spans. Default: no span.
    fn open_span(&self, telemetry: &Telemetry, labels: &Self::Labels) -> OpenSpan {
        let _ = (telemetry, labels);
        OpenSpan::default()
    }
}

impl<R: RecordOperation + ?Sized> RecordOperation for &R {
    type Labels = R::Labels;
    fn record(&self, done: Completed<'_, R::Labels>) {
        (**self).record(done)
    }
    fn open_span(&self, telemetry: &Telemetry, labels: &R::Labels) -> OpenSpan {
        (**self).open_span(telemetry, labels)
    }
}

impl<R: RecordOperation + ?Sized> RecordOperation for std::sync::Arc<R> {
    type Labels = R::Labels;
    fn record(&self, done: Completed<'_, R::Labels>) {
        (**self).record(done)
    }
    fn open_span(&self, telemetry: &Telemetry, labels: &R::Labels) -> OpenSpan {
        (**self).open_span(telemetry, labels)
    }
}

/// A timed operation: records itself exactly once, when
/// [`finish`](Operation::finish)ed, or when dropped before (as
/// [`Outcome::Cancelled`], or `Error("panic")` while a panic unwinds).
#[must_use = "an operation dropped at once records as cancelled"]
pub struct Operation<R: RecordOperation> {
    recorder: R,
    state: Option<(R::Labels, Tenant)>,
    trace: Option<TraceRef>,
    start: Stamp,
    /// The operation's span, when the telemetry opens spans.
    traced: Option<Box<(OpenSpan, Telemetry)>>,
}

impl<R: RecordOperation> Operation<R> {
    /// Starts an operation for the current request's tenant, with the
    /// exemplar of `telemetry`'s trace context.
    ///
    /// When the telemetry opens spans, the operation opens one through
    /// [`RecordOperation::open_span`]; it is entered while a
    /// [`time`](Operation::time)d future runs, and ends with the operation.
    pub fn start(telemetry: &Telemetry, recorder: R, labels: R::Labels) -> Self {
        if telemetry.opens_spans()
            && telemetry
                .sample_span(crate::trace::SpanKind::Internal, None)
                .is_ok()
        {
            let span = recorder.open_span(telemetry, &labels);
            let tenant = crate::scope::current_tenant();
            let trace = match span.context() {
                Some(context) => context.exemplar(),
                None => telemetry.current_trace(),
            };
            return Self::start_for(tenant, trace, recorder, labels).traced(telemetry, span);
        }
        let (tenant, trace) = if telemetry.has_trace_context_hook() {
            (crate::scope::current_tenant(), telemetry.current_trace())
        } else {
            // The default hook reads the scope: read it once for both.
            crate::scope::with_current(|scope| match scope {
                Some(scope) => (
                    scope.tenant().clone(),
                    scope.span().and_then(|span| span.exemplar()),
                ),
                None => (Tenant::system(), None),
            })
        };
        Self::start_for(tenant, trace, recorder, labels)
    }

    /// Starts an operation for a given tenant and exemplar.
    pub fn start_for(
        tenant: Tenant,
        trace: Option<TraceRef>,
        recorder: R,
        labels: R::Labels,
    ) -> Self {
        Self {
            recorder,
            state: Some((labels, tenant)),
            trace,
            start: Stamp::now(),
            traced: None,
        }
    }

    /// Attaches a span the caller opened (see [`Telemetry::start_span`]):
    /// the operation's exemplar becomes the span's, and the span ends
    /// with the operation, with its outcome.
    ///
    /// For an operation from [`start_for`](Self::start_for): one started
    /// with [`start`](Self::start) may have opened its own already.
    pub fn traced(mut self, telemetry: &Telemetry, span: OpenSpan) -> Self {
        debug_assert!(self.traced.is_none(), "an operation has one span");
        // A span that is not recorded may still stand for the request's
        // context while the work runs (its trace is not sampled).
        if span.recorded().is_some() {
            if let Some(exemplar) = span.context().and_then(|c| c.exemplar()) {
                self.trace = Some(exemplar);
            }
            self.traced = Some(Box::new((span, telemetry.clone())));
        }
        self
    }

    /// The operation's span, if it has one.
    pub fn span(&self) -> Option<&OpenSpan> {
        self.traced.as_ref().map(|t| &t.0)
    }

    /// Runs `f` with the operation's span current, if it has one (poll
    /// the operation's work inside it).
    #[inline]
    pub fn in_span<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.traced {
            None => f(),
            Some(traced) => traced.0.in_span(f),
        }
    }

    /// The tenant it runs for.
    pub fn tenant(&self) -> Option<&Tenant> {
        self.state.as_ref().map(|(_, tenant)| tenant)
    }

    /// The labels it carries, to amend before it ends.
    pub fn labels_mut(&mut self) -> Option<&mut R::Labels> {
        self.state.as_mut().map(|(labels, _)| labels)
    }

    /// Time since it started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records it as ended with `outcome`.
    pub fn finish(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Outcome) {
        if let Some((labels, tenant)) = self.state.take() {
            if let Some(traced) = self.traced.take() {
                let (span, telemetry) = &*traced;
                // A client's 4xx is a failure of the call, unlike a server's.
                let failed = match outcome {
                    Outcome::Http(status) => status >= 400,
                    _ => outcome.is_failure(),
                };
                let error = failed.then(|| outcome.describe());
                let status = match outcome {
                    Outcome::Http(status) => Some(("http.response.status_code", status.into())),
                    Outcome::Grpc(code) => {
                        Some(("rpc.grpc.status_code", AttrValue::Int(code as i64)))
                    }
                    _ => None,
                };
                let attributes = status.as_slice();
                telemetry.end_span(span, &SpanEnd::new(error, attributes));
            }
            self.recorder.record(Completed {
                tenant: &tenant,
                labels,
                outcome,
                seconds: self.start.elapsed_seconds(),
                trace: self.trace,
            });
        }
    }

    /// Awaits `future` as this operation: its output is classified by
    /// `classify` (see [`Outcome::classify_result`]); dropped before it
    /// completes, it records as cancelled.
    pub fn time<F, C>(self, future: F, classify: C) -> Timed<F, R, C>
    where
        F: Future,
        C: FnOnce(&F::Output) -> Outcome,
    {
        Timed {
            inner: future,
            end: Some((self, classify)),
        }
    }
}

impl<R: RecordOperation> Drop for Operation<R> {
    fn drop(&mut self) {
        if self.state.is_some() {
            let outcome = if std::thread::panicking() {
                Outcome::Error("panic")
            } else {
                Outcome::Cancelled
            };
            self.record(outcome);
        }
    }
}

impl<R: RecordOperation> std::fmt::Debug for Operation<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("tenant", &self.tenant())
            .field("trace", &self.trace)
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// A future timed as an [`Operation`]; see [`Operation::time`].
    pub struct Timed<F, R: RecordOperation, C> {
        #[pin]
        inner: F,
        end: Option<(Operation<R>, C)>,
    }
}

impl<F, R: RecordOperation, C> std::fmt::Debug for Timed<F, R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed")
            .field("operation", &self.end.as_ref().map(|(op, _)| op))
            .finish_non_exhaustive()
    }
}

impl<F, R, C> Future for Timed<F, R, C>
where
    F: Future,
    R: RecordOperation,
    C: FnOnce(&F::Output) -> Outcome,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        let output = match this.end.as_ref() {
            Some((op, _)) => op.in_span(|| inner.poll(cx)),
            None => inner.poll(cx),
        };
        let output = std::task::ready!(output);
        if let Some((operation, classify)) = this.end.take() {
            let outcome = classify(&output);
            operation.finish(outcome);
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Entry = (String, &'static str, Outcome);

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<Entry>>>);

    impl RecordOperation for Log {
        type Labels = &'static str;
        fn record(&self, done: Completed<'_, &'static str>) {
            self.0
                .lock()
                .unwrap()
                .push((done.tenant.to_string(), done.labels, done.outcome));
        }
    }

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn records_each_outcome_once() {
        let log = Log::default();
        let telemetry = Telemetry::builder().build().unwrap();
        let op = |name| Operation::start(&telemetry, log.clone(), name);

        let mut ok =
            std::pin::pin!(op("ok").time(async { Ok::<_, ()>(1) }, Outcome::classify_result));
        assert!(matches!(poll_once(ok.as_mut()), Poll::Ready(Ok(1))));
        let mut err =
            std::pin::pin!(op("err").time(async { Err::<(), _>(()) }, Outcome::classify_result));
        assert!(poll_once(err.as_mut()).is_ready());
        op("timeout").finish(Outcome::Timeout);
        {
            let mut pending =
                Box::pin(op("dropped").time(std::future::pending::<()>(), |_| Outcome::Ok));
            assert!(poll_once(pending.as_mut()).is_pending());
        }
        let log = log.0.lock().unwrap();
        let got: Vec<_> = log.iter().map(|(t, l, o)| (t.as_str(), *l, *o)).collect();
        assert_eq!(
            got,
            [
                ("__system__", "ok", Outcome::Ok),
                ("__system__", "err", Outcome::Error("error")),
                ("__system__", "timeout", Outcome::Timeout),
                ("__system__", "dropped", Outcome::Cancelled),
            ]
        );
    }
}
