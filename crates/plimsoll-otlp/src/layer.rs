//! The `tracing` side: the subscriber's layers and the JSON log format.

use std::cell::Cell;
use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

thread_local! {
    static EXPORT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as the export thread: spans opened on it (by the
/// exporter's HTTP and gRPC stack) are never traced, so export cannot
/// feed itself.
pub(crate) fn mark_export_thread() {
    EXPORT_THREAD.with(|t| t.set(true));
}

pub(crate) fn on_export_thread() -> bool {
    EXPORT_THREAD.with(Cell::get)
}

thread_local! {
    /// The context `UnsampledParent` made current for a span being
    /// created, until `ReleaseParent` sees the span created.
    static LENT: std::cell::RefCell<Vec<opentelemetry::ContextGuard>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs before the OpenTelemetry layer when a `tracing` span is created:
/// a span of the service's own opened in a request that is not sampled
/// (where no OpenTelemetry context is current, to spare the request path)
/// gets the request's context as its parent, so it is not sampled either
/// instead of starting a trace of its own.
#[derive(Debug, Default)]
pub(crate) struct UnsampledParent;

impl<S> tracing_subscriber::Layer<S> for UnsampledParent
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        // Only spans whose parent the OpenTelemetry layer takes from the
        // current context: contextual, with no `tracing` span current.
        if !attrs.is_contextual() || ctx.lookup_current().is_some() {
            return;
        }
        if opentelemetry::Context::map_current(|cx| cx.span().span_context().is_valid()) {
            return;
        }
        let Some(parent) =
            plimsoll_core::scope::with_current(|s| s.and_then(|s| s.span())).filter(|p| !p.sampled)
        else {
            return;
        };
        let guard = crate::hook::with_parent(opentelemetry::Context::new(), parent).attach();
        LENT.with(|lent| lent.borrow_mut().push(guard));
    }
}

/// Runs after the OpenTelemetry layer: gives back what `UnsampledParent`
/// lent.
#[derive(Debug, Default)]
pub(crate) struct ReleaseParent;

impl<S: Subscriber> tracing_subscriber::Layer<S> for ReleaseParent {
    fn on_new_span(
        &self,
        _attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        LENT.with(|lent| lent.borrow_mut().pop());
    }
}

/// The span of the code running now: the current OpenTelemetry context's
/// (a plimsoll span being polled, or an entered span of the service's),
/// else the request scope's.
pub(crate) fn current_span() -> Option<plimsoll_core::trace::SpanContext> {
    opentelemetry::Context::map_current(|cx| {
        crate::hook::plimsoll_context(cx.span().span_context())
    })
    .or_else(|| plimsoll_core::scope::with_current(|scope| scope.and_then(|s| s.span())))
}

/// One JSON object per event: `timestamp`, `level`, `target`, `message`,
/// the event's other fields, and `trace_id`, `span_id` (32 and 16
/// lower-case hex digits) and `tenant_id` when the event happens inside a
/// traced or tenant-scoped request.
#[derive(Debug, Default)]
pub(crate) struct JsonFormat;

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut time = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(time));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        if let Some(message) = fields.remove("message") {
            line.insert("message".into(), message);
        }
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        if let Some(span) = current_span() {
            let (trace_id, span_id) = (span.trace_id, span.span_id);
            line.insert("trace_id".into(), Value::String(format!("{trace_id:032x}")));
            line.insert("span_id".into(), Value::String(format!("{span_id:016x}")));
        }
        if let Some(tenant) =
            plimsoll_core::scope::with_current(|s| s.map(|s| s.tenant().as_str().to_owned()))
        {
            line.insert("tenant_id".into(), Value::String(tenant));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}
