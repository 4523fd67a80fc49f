//! The trace-context hook over `tracing-opentelemetry`: spans for every
//! integration, exemplars from the real span, W3C propagation.

use std::fmt;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{
    SpanContext as OtelSpanContext, SpanId, SpanKind as OtelKind, Status, TraceContextExt,
    TraceFlags, TraceId, Tracer as _,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracer;
use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::trace::{
    AttrValue, Headers, HeadersMut, OpenSpan, RecordedSpan, SpanContext, SpanEnd, SpanKind,
    SpanStart, TraceContext,
};
use plimsoll_core::{RegisterError, Telemetry, Tenant, impl_label_set};

use crate::config::Sampler;
use crate::export::{Drop, Stats};
use crate::ids;

/// `plimsoll_spans_exported_total`: spans the collector accepted.
pub const SPANS_EXPORTED: FamilyDecl = FamilyDecl::counter(
    "plimsoll_spans_exported_total",
    "Spans the OTLP collector accepted; read at scrape time.",
);

/// `plimsoll_spans_dropped_total{reason}`: spans lost before the collector.
pub const SPANS_DROPPED: FamilyDecl = FamilyDecl::counter(
    "plimsoll_spans_dropped_total",
    "Spans lost before reaching the OTLP collector, by reason: queue_full (the collector is slower than the service), export_failed (refused or unreachable), timeout (an export took longer than its timeout), shutdown; read at scrape time.",
)
.with_labels(&[LabelDecl::closed("reason")]);

/// The families this crate declares, for the catalogue.
pub const FAMILIES: &[FamilyDecl] = &[SPANS_EXPORTED, SPANS_DROPPED];

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Reason {
    reason: &'static str,
}
impl_label_set!(Reason { reason });

/// The trace-context hook of a tracing pipeline: give it to
/// [`TelemetryBuilder::with_trace_context`](plimsoll_core::TelemetryBuilder::with_trace_context)
/// and every integration built on that telemetry opens spans through it,
/// takes its exemplars from them, and propagates their context.
///
/// When export is off, the hook is not [`enabled`](TraceContext::enabled):
/// the telemetry behaves as if none was given, at no cost.
#[derive(Clone)]
pub struct OtlpContext {
    inner: Arc<Shared>,
}

struct Shared {
    /// The tracer of plimsoll's spans; `None` when export is off.
    tracer: Option<SdkTracer>,
    exporting: bool,
    sampler: Sampler,
    stats: Arc<Stats>,
    propagator: TextMapCompositePropagator,
}

impl fmt::Debug for OtlpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpContext")
            .field("exporting", &self.inner.exporting)
            .field("sampler", &self.inner.sampler)
            .finish_non_exhaustive()
    }
}

impl OtlpContext {
    pub(crate) fn new(tracer: Option<SdkTracer>, sampler: Sampler, stats: Arc<Stats>) -> Self {
        OtlpContext {
            inner: Arc::new(Shared {
                exporting: tracer.is_some(),
                tracer,
                sampler,
                stats,
                propagator: TextMapCompositePropagator::new(vec![
                    Box::new(TraceContextPropagator::new()),
                    Box::new(BaggagePropagator::new()),
                ]),
            }),
        }
    }

    /// The decision for a request: from the caller's flag, or for a new
    /// trace from its id (taken from `sample` when it chose it). `Err`:
    /// not sampled, with the context to propagate.
    fn decide(
        &self,
        headers: Option<&dyn Headers>,
        handed_off: bool,
    ) -> Result<(Option<SpanContext>, u128), SpanContext> {
        let sampler = self.inner.sampler;
        let remote = headers
            .and_then(|h| h.get("traceparent"))
            .and_then(|v| SpanContext::from_traceparent(v.as_bytes()));
        let (trace_id, sampled) = match remote {
            Some(parent) => (
                parent.trace_id,
                ids::child_decision(sampler, parent.trace_id, parent.sampled),
            ),
            None => match ids::take_next_root().filter(|_| handed_off) {
                Some(trace_id) => (trace_id, true),
                None => ids::root_decision(sampler),
            },
        };
        if sampled {
            return Ok((remote, trace_id));
        }
        Err(match remote {
            Some(parent) => SpanContext {
                sampled: false,
                ..parent
            },
            None => SpanContext {
                trace_id,
                span_id: ids::random_u64(),
                sampled: false,
            },
        })
    }

    /// Whether a child span opened now is recorded: `Err` with the
    /// context to propagate when it is not.
    fn child_decision(&self) -> Result<(), OpenSpan> {
        match plimsoll_core::scope::with_current(|s| s.and_then(|s| s.span())) {
            // The request is not sampled: no span, but its context still
            // travels to the services it calls.
            Some(parent) if !parent.sampled => Err(OpenSpan::new(Some(parent), None)),
            Some(_) => Ok(()),
            // Outside any request: only under a span of the service's own.
            None if current_span_valid() => Ok(()),
            None => Err(OpenSpan::default()),
        }
    }

    /// What stands for a request that is not sampled: its context. The
    /// service's own spans inside it take it as their parent (see
    /// `layer::UnsampledParent`), so they are not exported as traces of
    /// their own. When the request carries a `tracestate` or baggage,
    /// its received context is made current while it runs, so they travel
    /// on to the services it calls.
    fn unsampled(&self, context: SpanContext, headers: Option<&dyn Headers>) -> OpenSpan {
        let carries_more =
            headers.is_some_and(|h| h.get("tracestate").is_some() || h.get("baggage").is_some());
        match headers {
            Some(headers) if carries_more => {
                let received = self.inner.propagator.extract(&Carrier(headers));
                let cx = with_parent(received, context);
                OpenSpan::new(Some(context), Some(Box::new(Recorded(cx))))
            }
            _ => OpenSpan::new(Some(context), None),
        }
    }

    fn server(&self, start: &SpanStart<'_>) -> OpenSpan {
        // Decided before any span exists: a request that is not sampled
        // opens none.
        let (remote, trace_id) = match self.decide(start.headers, true) {
            Ok(decided) => decided,
            Err(context) => return self.unsampled(context, start.headers),
        };
        let parent = match (remote, start.headers) {
            // The parent is the `traceparent` the decision was made on;
            // the propagators add its `tracestate` and the baggage.
            (Some(remote), Some(headers)) => {
                with_parent(self.inner.propagator.extract(&Carrier(headers)), remote)
            }
            _ => {
                ids::set_next_trace(trace_id);
                opentelemetry::Context::new()
            }
        };
        self.open(start, &parent)
    }

    fn child(&self, start: &SpanStart<'_>) -> OpenSpan {
        if let Err(open) = self.child_decision() {
            return open;
        }
        // The span running now (a plimsoll span, or the service's own
        // through the tracing layer), else the request's context (a task
        // that carried the request scope but not its span).
        let parent = if current_span_valid() {
            opentelemetry::Context::current()
        } else {
            match plimsoll_core::scope::with_current(|s| s.and_then(|s| s.span())) {
                Some(parent) => with_parent(opentelemetry::Context::new(), parent),
                None => return OpenSpan::default(),
            }
        };
        self.open(start, &parent)
    }

    /// Starts an OpenTelemetry span under `parent`, with the start's
    /// attributes. plimsoll's own spans do not go through `tracing`: a
    /// `tracing` span costs a registry slot, a lock per attribute and a
    /// conversion at its end, several times what the span itself costs.
    fn open(&self, start: &SpanStart<'_>, parent: &opentelemetry::Context) -> OpenSpan {
        let Some(tracer) = &self.inner.tracer else {
            return OpenSpan::default();
        };
        let kind = match start.kind {
            SpanKind::Server => OtelKind::Server,
            SpanKind::Client => OtelKind::Client,
            _ => OtelKind::Internal,
        };
        let attributes: Vec<KeyValue> = start
            .attributes
            .iter()
            .filter_map(|(key, value)| Some(KeyValue::new(*key, otel_value(*value)?)))
            .collect();
        let span = tracer
            .span_builder(start.name.to_owned())
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        ids::set_next_trace(0);
        let cx = parent.with_span(span);
        let context = plimsoll_context(cx.span().span_context());
        let recorded = context
            .is_some_and(|c| c.sampled)
            .then(|| Box::new(Recorded(cx)) as Box<dyn RecordedSpan>);
        OpenSpan::new(context, recorded)
    }
}

/// An OpenTelemetry span context as plimsoll's (`None` when invalid).
pub(crate) fn plimsoll_context(sc: &OtelSpanContext) -> Option<SpanContext> {
    sc.is_valid().then(|| SpanContext {
        trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
        sampled: sc.is_sampled(),
    })
}

/// Whether an OpenTelemetry span is current on this thread (a plimsoll
/// span being polled, or an entered `tracing` span of the service's).
fn current_span_valid() -> bool {
    opentelemetry::Context::map_current(|cx| cx.span().span_context().is_valid())
}

fn otel_value(value: AttrValue<'_>) -> Option<opentelemetry::Value> {
    match value {
        AttrValue::Str(v) => Some(v.to_owned().into()),
        AttrValue::Int(v) => Some(v.into()),
        AttrValue::Bool(v) => Some(v.into()),
        _ => None,
    }
}

/// `received` (baggage, `tracestate`) with `parent` as its remote span.
pub(crate) fn with_parent(
    received: opentelemetry::Context,
    parent: SpanContext,
) -> opentelemetry::Context {
    let trace_state = received.span().span_context().trace_state().clone();
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    received.with_remote_span_context(OtelSpanContext::new(
        TraceId::from(parent.trace_id),
        SpanId::from(parent.span_id),
        flags,
        true,
        trace_state,
    ))
}

/// A span: the OpenTelemetry context holding it, current while its work is
/// polled, ended when dropped. A request that is not sampled is one too,
/// whose span (its caller's, received) records nothing.
#[derive(Debug)]
struct Recorded(opentelemetry::Context);

impl RecordedSpan for Recorded {
    fn in_span(&self, f: &mut dyn FnMut()) {
        let _current = self.0.clone().attach();
        f()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl std::ops::Drop for Recorded {
    fn drop(&mut self) {
        self.0.span().end();
    }
}

fn recorded(span: &OpenSpan) -> Option<&Recorded> {
    span.recorded()?.as_any().downcast_ref::<Recorded>()
}

struct Carrier<'a>(&'a dyn Headers);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        Vec::new()
    }
}

struct Outgoing<'a>(&'a mut dyn HeadersMut);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set(key, &value);
    }
}

impl TraceContext for OtlpContext {
    fn current(&self) -> Option<SpanContext> {
        crate::layer::current_span()
    }

    fn enabled(&self) -> bool {
        self.inner.exporting
    }

    fn opens_spans(&self) -> bool {
        true
    }

    fn register(&self, telemetry: &Telemetry) -> Result<(), RegisterError> {
        let stats = Arc::downgrade(&self.inner.stats);
        telemetry.declare_scraped(&SPANS_EXPORTED, move |out| {
            if let Some(stats) = stats.upgrade() {
                let exported = stats.exported.load(std::sync::atomic::Ordering::Relaxed);
                let _ = out.set(&Tenant::system(), &(), exported as f64);
            }
        })?;
        let stats = Arc::downgrade(&self.inner.stats);
        telemetry.declare_scraped(&SPANS_DROPPED, move |out| {
            if let Some(stats) = stats.upgrade() {
                for reason in Drop::ALL {
                    let labels = Reason {
                        reason: reason.as_str(),
                    };
                    let _ = out.set(&Tenant::system(), &labels, stats.dropped(reason) as f64);
                }
            }
        })
    }

    fn sample(&self, kind: SpanKind, headers: Option<&dyn Headers>) -> Result<(), OpenSpan> {
        if kind != SpanKind::Server {
            return self.child_decision();
        }
        // A decision handed off and never taken is dropped here.
        ids::take_next_root();
        match self.decide(headers, false) {
            Ok((remote, trace_id)) => {
                if remote.is_none() {
                    ids::set_next_root(trace_id);
                }
                Ok(())
            }
            Err(context) => Err(self.unsampled(context, headers)),
        }
    }

    fn start_span(&self, start: &SpanStart<'_>) -> OpenSpan {
        match start.kind {
            SpanKind::Server => self.server(start),
            _ => self.child(start),
        }
    }

    fn end_span(&self, span: &OpenSpan, end: &SpanEnd<'_>) {
        let Some(recorded) = recorded(span) else {
            return;
        };
        let span = recorded.0.span();
        for (key, value) in end.attributes {
            if let Some(value) = otel_value(*value) {
                span.set_attribute(KeyValue::new(*key, value));
            }
        }
        if let Some(error) = end.error {
            span.set_status(Status::error(error.to_owned()));
        }
    }

    fn inject(&self, span: &OpenSpan, headers: &mut dyn HeadersMut) {
        if let Some(recorded) = recorded(span) {
            self.inner
                .propagator
                .inject_context(&recorded.0, &mut Outgoing(headers));
            return;
        }
        let Some(context) = span.context() else {
            return;
        };
        // A call in a request that is not sampled: the request's context
        // is current (with its tracestate and baggage) when it is this one.
        let current = opentelemetry::Context::map_current(|cx| {
            plimsoll_context(cx.span().span_context())
                .is_some_and(|c| (c.trace_id, c.span_id) == (context.trace_id, context.span_id))
                .then(|| cx.clone())
        });
        match current {
            Some(cx) => self
                .inner
                .propagator
                .inject_context(&cx, &mut Outgoing(headers)),
            None => headers.set("traceparent", &context.traceparent()),
        }
    }
}
