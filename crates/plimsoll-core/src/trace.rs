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
    /// Parses a W3C `traceparent` value (`00-<trace>-<span>-<flags>`).
    /// `None` for anything malformed, version `ff`, or all-zero ids.
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
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
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

/// Where the trace context of the running code comes from.
///
/// Called when an operation or a request starts (not per observation), on
/// the thread running it.
pub trait TraceContext: Send + Sync + fmt::Debug + 'static {
    /// The span running now, if any.
    fn current(&self) -> Option<SpanContext>;
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
