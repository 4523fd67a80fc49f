//! The trace-context hook over `tracing-opentelemetry`: spans for every
//! integration, exemplars from the real span, W3C propagation.

use std::fmt;
use std::sync::Arc;

use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{
    SpanContext as OtelSpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::trace::{
    AttrValue, Headers, HeadersMut, OpenSpan, SpanContext, SpanEnd, SpanKind, SpanStart,
    TraceContext,
};
use plimsoll_core::{RegisterError, Telemetry, Tenant, impl_label_set};
use tracing_opentelemetry::OpenTelemetrySpanExt;

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
    pub(crate) fn new(exporting: bool, sampler: Sampler, stats: Arc<Stats>) -> Self {
        OtlpContext {
            inner: Arc::new(Shared {
                exporting,
                sampler,
                stats,
                propagator: TextMapCompositePropagator::new(vec![
                    Box::new(TraceContextPropagator::new()),
                    Box::new(BaggagePropagator::new()),
                ]),
            }),
        }
    }

    fn server(&self, start: &SpanStart<'_>) -> OpenSpan {
        let sampler = self.inner.sampler;
        // Decide from the caller's flag (or a fresh trace id) before any
        // span exists: a request that is not sampled opens none.
        let remote = start
            .headers
            .and_then(|h| h.get("traceparent"))
            .and_then(|v| SpanContext::from_traceparent(v.as_bytes()));
        let (trace_id, sampled) = match remote {
            Some(parent) => (
                parent.trace_id,
                ids::child_decision(sampler, parent.trace_id, parent.sampled),
            ),
            None => ids::root_decision(sampler),
        };
        if !sampled {
            let context = match remote {
                Some(parent) => SpanContext {
                    sampled: false,
                    ..parent
                },
                None => SpanContext {
                    trace_id,
                    span_id: ids::random_u64(),
                    sampled: false,
                },
            };
            return OpenSpan::new(Some(context), None);
        }
        let span = new_span(start);
        if span.is_disabled() {
            return OpenSpan::new(remote, None);
        }
        match (remote, start.headers) {
            (Some(_), Some(headers)) => {
                let parent = self.inner.propagator.extract(&Carrier(headers));
                let _ = span.set_parent(parent);
            }
            _ => ids::set_next_trace(trace_id),
        }
        self.opened(span, start)
    }

    fn child(&self, start: &SpanStart<'_>) -> OpenSpan {
        let scope = plimsoll_core::scope::with_current(|s| s.and_then(|s| s.span()));
        let current = tracing::Span::current();
        match scope {
            // The request is not sampled: no span, but its context still
            // travels to the services it calls.
            Some(parent) if !parent.sampled => return OpenSpan::new(Some(parent), None),
            Some(_) => {}
            // Outside any request and any span: nothing to attach to.
            None if current.is_none() => return OpenSpan::default(),
            None => {}
        }
        let span = new_span(start);
        if span.is_disabled() {
            return OpenSpan::new(scope, None);
        }
        if current.is_none()
            && let Some(parent) = scope
        {
            // A task that carried the request scope but not its span.
            let _ = span.set_parent(remote_context(parent));
        }
        self.opened(span, start)
    }

    /// Sets the start attributes, starts the span and reads its context.
    fn opened(&self, span: tracing::Span, start: &SpanStart<'_>) -> OpenSpan {
        for (key, value) in start.attributes {
            set_attribute(&span, key, *value);
        }
        let cx = span.context();
        let otel = cx.span();
        let sc = otel.span_context();
        ids::set_next_trace(0);
        let context = sc.is_valid().then(|| SpanContext {
            trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
            sampled: sc.is_sampled(),
        });
        OpenSpan::new(context, Some(span))
    }
}

/// A span of each kind, named by `otel.name` (each kind is its own
/// callsite, so a filter can tell them apart: `plimsoll=info` traces all).
fn new_span(start: &SpanStart<'_>) -> tracing::Span {
    match start.kind {
        SpanKind::Server => tracing::info_span!(
            target: "plimsoll::request", "request",
            otel.name = start.name, otel.kind = "server"
        ),
        SpanKind::Client => tracing::info_span!(
            target: "plimsoll::call", "call",
            otel.name = start.name, otel.kind = "client"
        ),
        _ => tracing::info_span!(
            target: "plimsoll::operation", "operation",
            otel.name = start.name, otel.kind = "internal"
        ),
    }
}

fn set_attribute(span: &tracing::Span, key: &'static str, value: AttrValue<'_>) {
    match value {
        AttrValue::Str(v) => span.set_attribute(key, v.to_owned()),
        AttrValue::Int(v) => span.set_attribute(key, v),
        AttrValue::Bool(v) => span.set_attribute(key, v),
        _ => {}
    }
}

/// An OpenTelemetry context whose span is `parent`, as if received.
fn remote_context(parent: SpanContext) -> opentelemetry::Context {
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    opentelemetry::Context::new().with_remote_span_context(OtelSpanContext::new(
        TraceId::from(parent.trace_id),
        SpanId::from(parent.span_id),
        flags,
        true,
        TraceState::default(),
    ))
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
        match crate::layer::current_ids() {
            Some((trace_id, span_id)) => {
                let sampled = opentelemetry::Context::map_current(|cx| {
                    let span = cx.span();
                    let sc = span.span_context();
                    if sc.is_valid() {
                        sc.is_sampled()
                    } else {
                        plimsoll_core::scope::with_current(|s| {
                            s.and_then(|s| s.span()).is_some_and(|s| s.sampled)
                        })
                    }
                });
                Some(SpanContext {
                    trace_id,
                    span_id,
                    sampled,
                })
            }
            None => None,
        }
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

    fn start_span(&self, start: &SpanStart<'_>) -> OpenSpan {
        match start.kind {
            SpanKind::Server => self.server(start),
            _ => self.child(start),
        }
    }

    fn end_span(&self, span: &OpenSpan, end: &SpanEnd<'_>) {
        let Some(span) = span.span() else { return };
        for (key, value) in end.attributes {
            set_attribute(span, key, *value);
        }
        if let Some(error) = end.error {
            span.set_status(Status::error(error.to_owned()));
        }
    }

    fn inject(&self, span: &OpenSpan, headers: &mut dyn HeadersMut) {
        match span.span() {
            Some(span) => {
                let cx = span.context();
                self.inner
                    .propagator
                    .inject_context(&cx, &mut Outgoing(headers));
            }
            None => {
                if let Some(context) = span.context() {
                    headers.set("traceparent", &context.traceparent());
                }
            }
        }
    }
}
