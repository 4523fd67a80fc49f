//! A per-thread memo of series keys, so that a warm request finds its two
//! series (in flight, latency) without hashing label strings or taking a
//! shard lock. Measured against the plain lookups in the same run (the
//! `red_plain` bench variant): see `docs/benchmarks.md`.
//!
//! Sound by construction:
//! - A slot is keyed by identity, not content: the layer's id (never
//!   reused), the method (a closed set), and the addresses of the
//!   tenant's and the route's label values. The slot holds clones of the
//!   tenant and the route it was filled with, so those addresses cannot be
//!   freed and reused for another value while the slot lives: equal
//!   addresses mean equal values.
//! - The latency series is keyed by the in-flight series (which stands for
//!   tenant, method and route within the layer) and the status.
//! - What the memo returns is a [`SeriesKey`], which names its family by an
//!   id that is never reused: used with the wrong family it does nothing.
//!
//! - A slot also holds a request scope for its tenant with no span: scopes
//!   are immutable, so requests of that tenant without a span share it
//!   instead of allocating one each.
//!
//! A miss (or a thread whose memo is gone) falls back to the family lookup,
//! which gives the same key: a series, once resolved, keeps its key (series
//! are never removed, and a key past the series bound stays past it).

use std::cell::RefCell;

use plimsoll_core::scope::Scope;
use plimsoll_core::{SeriesKey, Tenant};

use super::layer::Route;
use crate::labels::Method;

/// Slots per table: a power of two.
const SLOTS: usize = 64;

struct StartSlot {
    /// 0: empty.
    layer: u64,
    method: Method,
    /// Compared by identity ([`Tenant::same`]).
    tenant: Tenant,
    /// The address of `route`'s label value, compared on a hit.
    route_addr: usize,
    /// Held (never read) so that `route_addr` cannot be reused by another route.
    _route: Route,
    key: Option<SeriesKey>,
    /// A request scope for `tenant` with no span, shared by the requests
    /// that hit this slot without one (a scope is immutable).
    scope: Option<Scope>,
}

struct EndSlot {
    /// 0: empty.
    layer: u64,
    in_flight: u32,
    status: u16,
    key: Option<SeriesKey>,
}

struct Memo {
    start: [StartSlot; SLOTS],
    end: [EndSlot; SLOTS],
}

impl Memo {
    fn new() -> Self {
        Self {
            start: std::array::from_fn(|_| StartSlot {
                layer: 0,
                method: Method::Other,
                tenant: Tenant::unknown(),
                route_addr: 0,
                _route: Route::Unmatched,
                key: None,
                scope: None,
            }),
            end: std::array::from_fn(|_| EndSlot {
                layer: 0,
                in_flight: 0,
                status: 0,
                key: None,
            }),
        }
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::new());
}

#[inline]
fn position(a: u64, b: u64, c: u64) -> usize {
    let mixed = (a ^ b.rotate_left(21) ^ c.rotate_left(42)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The in-flight series of (tenant, method, route) in layer `layer`, and
/// on a hit a scope for `tenant` without a span; `resolve` looks the series
/// up in the family on a miss.
#[inline]
pub(crate) fn in_flight(
    layer: u64,
    tenant: &Tenant,
    method: Method,
    route: &Route,
    resolve: impl FnOnce() -> SeriesKey,
) -> (SeriesKey, Option<Scope>) {
    let route_addr = route.as_str().as_ptr() as usize;
    let tenant_addr = tenant.as_str().as_ptr() as usize;
    let at = position(layer ^ method as u64, tenant_addr as u64, route_addr as u64);
    let found = MEMO.try_with(|memo| {
        let memo = memo.try_borrow().ok()?;
        let slot = &memo.start[at];
        (slot.layer == layer
            && slot.method == method
            && slot.route_addr == route_addr
            && slot.tenant.same(tenant))
        .then(|| Some((slot.key?, slot.scope.clone())))
        .flatten()
    });
    if let Ok(Some(hit)) = found {
        return hit;
    }
    let key = miss(
        |memo| &mut memo.start[at],
        resolve,
        |key| StartSlot {
            layer,
            method,
            tenant: tenant.clone(),
            route_addr,
            _route: route.clone(),
            key: Some(key),
            scope: Some(Scope::new(tenant.clone())),
        },
    );
    (key, None)
}

/// The latency series of the request whose in-flight series is `in_flight`,
/// for `status`; `resolve` looks it up in the family on a miss.
#[inline]
pub(crate) fn duration(
    layer: u64,
    in_flight: &SeriesKey,
    status: u16,
    resolve: impl FnOnce() -> SeriesKey,
) -> SeriesKey {
    // An overflow series stands for many routes: not a key for the memo.
    if in_flight.is_overflow_series() {
        return resolve();
    }
    let index = in_flight.index();
    let at = position(layer, u64::from(index), u64::from(status));
    memoized(
        |memo| &mut memo.end[at],
        |slot| {
            (slot.layer == layer && slot.in_flight == index && slot.status == status)
                .then_some(slot.key)
                .flatten()
        },
        resolve,
        |key| EndSlot {
            layer,
            in_flight: index,
            status,
            key: Some(key),
        },
    )
}

/// The key in `slot` if `hit` finds it there; otherwise the family's
/// answer, kept in the slot for next time. Without a memo (the thread's is
/// being torn down) every call asks the family.
#[inline]
fn memoized<S>(
    slot: impl Fn(&mut Memo) -> &mut S,
    hit: impl Fn(&S) -> Option<SeriesKey>,
    resolve: impl FnOnce() -> SeriesKey,
    fill: impl FnOnce(SeriesKey) -> S,
) -> SeriesKey {
    let found = MEMO.try_with(|memo| hit(slot(&mut *memo.try_borrow_mut().ok()?)));
    if let Ok(Some(key)) = found {
        return key;
    }
    miss(slot, resolve, fill)
}

/// A memo miss: out of line, so that the warm path stays compact.
#[cold]
#[inline(never)]
fn miss<S>(
    slot: impl Fn(&mut Memo) -> &mut S,
    resolve: impl FnOnce() -> SeriesKey,
    fill: impl FnOnce(SeriesKey) -> S,
) -> SeriesKey {
    let key = resolve();
    let _ = MEMO.try_with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut() {
            *slot(&mut memo) = fill(key);
        }
    });
    key
}
