//! The trace context of what is running now: the hook every histogram's
//! exemplars come from.
//!
//! Exemplars link a latency observation to the trace that produced it.
//! Where the trace and span ids come from is one hook, a [`TraceContext`]
//! set on the [`TelemetryBuilder`](crate::TelemetryBuilder). The default,
//! [`ScopeTraceContext`], reads the span context of the current request
//! scope (see [`scope`](crate::scope)), which the HTTP and gRPC server
//! layers fill from the incoming W3C `traceparent`. A tracing backend (the
//! OpenTelemetry crate of plimsoll, or your own) plugs in its current span
//! instead, and no integration changes.
//!
//! A hook may also open spans ([`TraceContext::opens_spans`]): then every
//! integration asks it, through [`Telemetry::sample_span`] and
//! [`Telemetry::start_span`], for a span around its work (a server span
//! per request, client spans for queries, commands and calls), ends it
//! with [`Telemetry::end_span`] and writes its context into outgoing
//! requests with [`Telemetry::inject`]; the [`Operation`] guard does all
//! of it for operations. `plimsoll-otlp` is such a hook.
//!
//! [`Telemetry::sample_span`]: crate::Telemetry::sample_span
//! [`Telemetry::start_span`]: crate::Telemetry::start_span
//! [`Telemetry::end_span`]: crate::Telemetry::end_span
//! [`Telemetry::inject`]: crate::Telemetry::inject
//! [`Operation`]: crate::operation::Operation
//!
//! # Example
//!
//! ```
//! use plimsoll_core::trace::{SpanContext, TraceContext};
//! use plimsoll_core::Telemetry;
//!
//! /// Every observation belongs to one fixed span (a test double).
//! #[derive(Debug)]
//! struct Fixed;
//! impl TraceContext for Fixed {
//!     fn current(&self) -> Option<SpanContext> {
//!         Some(SpanContext { trace_id: 0xabc, span_id: 0x12, sampled: true })
//!     }
//! }
//!
//! let telemetry = Telemetry::builder().with_trace_context(Fixed).build().unwrap();
//! let trace = telemetry.current_trace().unwrap();
//! assert_eq!((trace.trace_id, trace.span_id), (0xabc, 0x12));
//! ```

use std::fmt;

/// Trace and span ids to attach to an observation as an exemplar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceRef {
    /// The W3C trace id.
    pub trace_id: u128,
    /// The W3C span id.
    pub span_id: u64,
}

/// The identity of a span and whether it is sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// The W3C trace id (not 0).
    pub trace_id: u128,
    /// The W3C span id (not 0).
    pub span_id: u64,
    /// Whether the trace is sampled (recorded by the tracing backend).
    pub sampled: bool,
}

impl SpanContext {
    /// Parses a W3C `traceparent` value (`00-<trace>-<span>-<flags>`,
    /// lower-case hex). `None` for anything malformed, version `ff`, or
    /// all-zero ids.
    ///
    /// ```
    /// use plimsoll_core::trace::SpanContext;
    /// let span = SpanContext::from_traceparent(
    ///     b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert!(span.sampled);
    /// assert_eq!(span.span_id, 0x00f067aa0ba902b7);
    /// ```
    pub fn from_traceparent(value: &[u8]) -> Option<SpanContext> {
        let value = std::str::from_utf8(value).ok()?;
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2
            || version == "ff"
            || trace.len() != 32
            || span.len() != 16
            || flags.len() != 2
            || (version == "00" && parts.next().is_some())
        {
            return None;
        }
        let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !(hex(version) && hex(trace) && hex(span) && hex(flags)) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The W3C `traceparent` value of this span.
    ///
    /// ```
    /// use plimsoll_core::trace::SpanContext;
    /// let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let span = SpanContext::from_traceparent(value.as_bytes()).unwrap();
    /// assert_eq!(span.traceparent(), value);
    /// ```
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The exemplar of this span: its ids when sampled, else `None` (an
    /// exemplar pointing to a trace that was not kept leads nowhere).
    #[inline]
    pub fn exemplar(&self) -> Option<TraceRef> {
        self.sampled.then_some(TraceRef {
            trace_id: self.trace_id,
            span_id: self.span_id,
        })
    }
}

/// Where the trace context of the running code comes from, and how
/// integrations open spans.
///
/// [`current`](TraceContext::current) is called when an operation or a
/// request starts (not per observation), on the thread running it. The
/// span methods are called only when
/// [`opens_spans`](TraceContext::opens_spans) is true: a hook that only
/// supplies exemplars leaves them as they are.
pub trait TraceContext: Send + Sync + fmt::Debug + 'static {
    /// The span running now, if any.
    fn current(&self) -> Option<SpanContext>;

    /// Whether the hook is in use. A telemetry built with a hook that is
    /// not (a tracing backend whose export is off) behaves as if none was
    /// set. Default: yes.
    fn enabled(&self) -> bool {
        true
    }

    /// Declares the hook's own families (exporter counters …) on a
    /// telemetry built with it; called once by
    /// [`build`](crate::TelemetryBuilder::build). Default: nothing.
    fn register(&self, telemetry: &crate::Telemetry) -> Result<(), crate::RegisterError> {
        let _ = telemetry;
        Ok(())
    }

    /// Whether integrations should open spans through this hook (read once
    /// when the telemetry is built). Default: no.
    fn opens_spans(&self) -> bool {
        false
    }

    /// Decides, before an integration describes a span of `kind`, whether
    /// it would be recorded (`headers`: a server span's incoming headers),
    /// so work that is not traced costs no description. `Err` says it
    /// would not, with what stands for it: the context to propagate, if
    /// any, made current while the work runs like a span (so the
    /// service's own spans inside it are not recorded either). `Ok`:
    /// describe it and call [`start_span`](TraceContext::start_span) next,
    /// on this thread. Default: `Ok`.
    fn sample(&self, kind: SpanKind, headers: Option<&dyn Headers>) -> Result<(), OpenSpan> {
        let _ = (kind, headers);
        Ok(())
    }

    /// Opens a span for a request or operation that starts now. A server
    /// span takes its parent from [`SpanStart::headers`]; any other span is
    /// a child of the span running now. The result may carry a context
    /// without a span (a request that is not sampled still has a trace to
    /// propagate), or nothing. Default: nothing.
    fn start_span(&self, start: &SpanStart<'_>) -> OpenSpan {
        let _ = start;
        OpenSpan::default()
    }

    /// Records how a span's work ended, before the span is dropped.
    /// Default: nothing.
    fn end_span(&self, span: &OpenSpan, end: &SpanEnd<'_>) {
        let _ = (span, end);
    }

    /// Writes the context of `span` into an outgoing request's headers.
    /// Default: a W3C `traceparent` from the span's context, if any.
    fn inject(&self, span: &OpenSpan, headers: &mut dyn HeadersMut) {
        if let Some(context) = span.context() {
            headers.set("traceparent", &context.traceparent());
        }
    }
}

/// The kind of span an integration opens, as OpenTelemetry names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// A request this service serves.
    Server,
    /// A call this service makes to another (HTTP, gRPC, a database, Redis).
    Client,
    /// Work inside this service (a cache load, a circuit breaker's call).
    Internal,
}

impl SpanKind {
    /// The kind's name in lower case (`server`, `client`, `internal`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Internal => "internal",
        }
    }
}

/// The value of a span attribute.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum AttrValue<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl<'a> From<&'a str> for AttrValue<'a> {
    fn from(value: &'a str) -> Self {
        AttrValue::Str(value)
    }
}

impl From<i64> for AttrValue<'_> {
    fn from(value: i64) -> Self {
        AttrValue::Int(value)
    }
}

impl From<u16> for AttrValue<'_> {
    fn from(value: u16) -> Self {
        AttrValue::Int(value.into())
    }
}

impl From<bool> for AttrValue<'_> {
    fn from(value: bool) -> Self {
        AttrValue::Bool(value)
    }
}

/// An attribute of a span: an OpenTelemetry semantic-convention key and
/// its value.
pub type Attribute<'a> = (&'static str, AttrValue<'a>);

/// Read access to an incoming request's headers, to extract the remote
/// trace context (`traceparent`, `tracestate`, `baggage`).
pub trait Headers {
    /// The first value of header `name` (lower case), if it is text.
    fn get(&self, name: &str) -> Option<&str>;
}

/// Write access to an outgoing request's headers, to inject the trace
/// context.
pub trait HeadersMut {
    /// Sets header `name` (lower case) to `value`, replacing any value.
    fn set(&mut self, name: &str, value: &str);
}

/// What an integration knows when the work of a span starts.
#[non_exhaustive]
pub struct SpanStart<'a> {
    /// The span's name: `GET /orders/{id}`, `SELECT orders`, `GET` …
    pub name: &'a str,
    /// The span's kind.
    pub kind: SpanKind,
    /// Semantic-convention attributes known at the start.
    pub attributes: &'a [Attribute<'a>],
    /// The incoming request's headers, for a server span's remote parent.
    pub headers: Option<&'a dyn Headers>,
}

impl<'a> SpanStart<'a> {
    /// A span named `name` of kind `kind` with `attributes`.
    pub fn new(name: &'a str, kind: SpanKind, attributes: &'a [Attribute<'a>]) -> Self {
        SpanStart {
            name,
            kind,
            attributes,
            headers: None,
        }
    }

    /// The incoming headers a server span takes its parent from.
    pub fn with_headers(mut self, headers: &'a dyn Headers) -> Self {
        self.headers = Some(headers);
        self
    }
}

impl fmt::Debug for SpanStart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanStart")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("attributes", &self.attributes)
            .field("headers", &self.headers.is_some())
            .finish()
    }
}

/// How the work of a span ended.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SpanEnd<'a> {
    /// The failure, if the work failed (the span's status is then error,
    /// with this description).
    pub error: Option<&'a str>,
    /// Semantic-convention attributes known at the end.
    pub attributes: &'a [Attribute<'a>],
}

impl<'a> SpanEnd<'a> {
    /// An end that succeeded, or failed with `error`, with `attributes`.
    pub fn new(error: Option<&'a str>, attributes: &'a [Attribute<'a>]) -> Self {
        SpanEnd { error, attributes }
    }
}

/// A span as the tracing backend records it, behind the trace-context
/// hook. Ended (and exported) when dropped.
pub trait RecordedSpan: Send + Sync + fmt::Debug + 'static {
    /// Runs `f` with this span current: spans, logs and exemplars made
    /// inside belong to it.
    fn in_span(&self, f: &mut dyn FnMut());

    /// The backend's own type, for the hook that made it.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A span opened by the trace-context hook: its context (for exemplars,
/// the request scope and propagation) and the backend's span recording it,
/// when it is recorded. The span ends when this is dropped.
#[derive(Debug, Default)]
pub struct OpenSpan {
    context: Option<SpanContext>,
    span: Option<Box<dyn RecordedSpan>>,
}

impl OpenSpan {
    /// A span with `context`, recorded by `span` when it is `Some`.
    pub fn new(context: Option<SpanContext>, span: Option<Box<dyn RecordedSpan>>) -> Self {
        OpenSpan { context, span }
    }

    /// The span's context (a request that is not sampled still has one).
    #[inline]
    pub fn context(&self) -> Option<SpanContext> {
        self.context
    }

    /// The backend's span, if the work is recorded.
    #[inline]
    pub fn recorded(&self) -> Option<&dyn RecordedSpan> {
        self.span.as_deref()
    }

    /// Whether the work is recorded (a span of a sampled trace).
    #[inline]
    pub fn is_recorded(&self) -> bool {
        self.span.is_some() && self.context.is_some_and(|c| c.sampled)
    }

    /// Whether anything was opened.
    #[inline]
    pub fn is_none(&self) -> bool {
        self.context.is_none() && self.span.is_none()
    }

    /// Runs `f` with this span current, if it is recorded (else just
    /// runs it).
    #[inline]
    pub fn in_span<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.span {
            None => f(),
            Some(span) => {
                let mut f = Some(f);
                let mut out = None;
                span.in_span(&mut || out = f.take().map(|f| f()));
                out.expect("a recorded span runs what it is given")
            }
        }
    }
}

/// The default [`TraceContext`]: the span context of the current request
/// scope (the server layers set it from the incoming `traceparent`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ScopeTraceContext;

impl TraceContext for ScopeTraceContext {
    #[inline]
    fn current(&self) -> Option<SpanContext> {
        crate::scope::with_current(|scope| scope.and_then(|s| s.span()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let sampled = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = SpanContext::from_traceparent(sampled).unwrap();
        assert_eq!(
            span.exemplar(),
            Some(TraceRef {
                trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
                span_id: 0x00f067aa0ba902b7
            })
        );
        let unsampled = SpanContext::from_traceparent(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )
        .unwrap();
        assert!(!unsampled.sampled);
        assert_eq!(unsampled.exemplar(), None);
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"garbage",
            b"\xff\xfe",
        ] {
            assert_eq!(SpanContext::from_traceparent(bad), None, "{bad:?}");
        }
        // A future version may carry more fields.
        assert!(
            SpanContext::from_traceparent(
                b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
            )
            .is_some()
        );
    }
}
