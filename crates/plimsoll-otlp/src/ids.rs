//! Trace and span ids, and the sampling decision made before a span is
//! opened (so a request that is not sampled opens no span at all).

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::IdGenerator;

use crate::config::{Root, Sampler};

thread_local! {
    /// A per-thread generator (wyrand), seeded from the OS's hasher keys.
    static RNG: Cell<u64> = Cell::new(seed());
    /// The trace id the next root span started on this thread takes: the
    /// one its sampling decision was made on.
    static NEXT_TRACE: Cell<u128> = const { Cell::new(0) };
    /// A new trace sampled in by `sample`, for the server span that
    /// `start_span` opens next on this thread.
    static NEXT_ROOT: Cell<u128> = const { Cell::new(0) };
}

/// Hands a sampled new trace from `sample` to the next server span.
pub(crate) fn set_next_root(trace_id: u128) {
    NEXT_ROOT.with(|next| next.set(trace_id));
}

/// The trace `sample` chose for this server span, if any.
pub(crate) fn take_next_root() -> Option<u128> {
    let chosen = NEXT_ROOT.with(|next| next.replace(0));
    (chosen != 0).then_some(chosen)
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() | 1
}

/// A random, non-zero u64.
pub(crate) fn random_u64() -> u64 {
    RNG.with(|state| {
        loop {
            let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
            state.set(s);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            let v = (t >> 64) as u64 ^ t as u64;
            if v != 0 {
                return v;
            }
        }
    })
}

/// A random, non-zero u128.
pub(crate) fn random_u128() -> u128 {
    (u128::from(random_u64()) << 64) | u128::from(random_u64())
}

/// Whether a trace id falls in `ratio`: the rule of OpenTelemetry's
/// `TraceIdRatioBased` sampler (the low 63 bits of the id against the
/// ratio), so this decision and the SDK's agree.
pub(crate) fn in_ratio(ratio: f64, trace_id: u128) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < bound
}

/// The decision for a trace that starts here, and its id.
pub(crate) fn root_decision(sampler: Sampler) -> (u128, bool) {
    let trace_id = random_u128();
    let sampled = match sampler {
        Sampler::AlwaysOn | Sampler::ParentBased(Root::AlwaysOn) => true,
        Sampler::AlwaysOff | Sampler::ParentBased(Root::AlwaysOff) => false,
        Sampler::Ratio(r) | Sampler::ParentBased(Root::Ratio(r)) => in_ratio(r, trace_id),
    };
    (trace_id, sampled)
}

/// The decision for a request whose caller sent a sampled flag.
pub(crate) fn child_decision(sampler: Sampler, trace_id: u128, parent_sampled: bool) -> bool {
    match sampler {
        Sampler::ParentBased(_) => parent_sampled,
        Sampler::AlwaysOn => true,
        Sampler::AlwaysOff => false,
        Sampler::Ratio(r) => in_ratio(r, trace_id),
    }
}

/// The SDK's sampler for `sampler`.
pub(crate) fn sdk_sampler(sampler: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    let root = |root: Root| match root {
        Root::AlwaysOn => S::AlwaysOn,
        Root::AlwaysOff => S::AlwaysOff,
        Root::Ratio(r) => S::TraceIdRatioBased(r),
    };
    match sampler {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::Ratio(r) => S::TraceIdRatioBased(r),
        Sampler::ParentBased(r) => S::ParentBased(Box::new(root(r))),
    }
}

/// Makes the next root span started on this thread take `trace_id`.
pub(crate) fn set_next_trace(trace_id: u128) {
    NEXT_TRACE.with(|next| next.set(trace_id));
}

/// The SDK's id generator: random ids, except a root span's trace id
/// chosen (and sampled) beforehand by [`set_next_trace`].
#[derive(Debug, Default)]
pub(crate) struct Ids;

impl IdGenerator for Ids {
    fn new_trace_id(&self) -> TraceId {
        let chosen = NEXT_TRACE.with(|next| next.replace(0));
        TraceId::from(if chosen != 0 { chosen } else { random_u128() })
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from(random_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_matches_the_sdk_rule() {
        // The SDK samples ids whose low 63 bits are under ratio * 2^63.
        assert!(in_ratio(0.5, 0));
        assert!(in_ratio(0.5, (1u128 << 63) - 2));
        assert!(!in_ratio(0.5, u128::from(u64::MAX)));
        assert!(!in_ratio(0.0, 2));
        assert!(in_ratio(1.0, u128::MAX));
        let sampled = (0..20_000)
            .filter(|_| root_decision(Sampler::Ratio(0.1)).1)
            .count();
        assert!((1_500..2_500).contains(&sampled), "{sampled}");
    }

    #[test]
    fn a_chosen_trace_id_is_used_once() {
        set_next_trace(42);
        assert_eq!(Ids.new_trace_id(), TraceId::from(42u128));
        assert_ne!(Ids.new_trace_id(), TraceId::from(42u128));
    }
}
