//! A per-thread memo of series keys, so that a warm request finds its
//! series without hashing label strings or taking a shard lock.
//!
//! The memo is keyed by identity, not content: the layer's id (never
//! reused), the method's `&'static str`, and the addresses of the tenant's
//! and the route's label values. A slot holds clones of the tenant and the
//! route it was filled with, so the addresses it compares cannot be freed
//! and reused for another value while the slot lives: equal addresses mean
//! equal values. A tenant still in its raw header is keyed by its bytes
//! instead, so that a warm request does not resolve it again (resolution is
//! deterministic: a tenant admitted stays admitted, one refused stays
//! refused). The latency series is keyed by the in-flight series (which
//! stands for tenant, method and route) and the status.
//!
//! A miss (or a thread whose memo is gone) falls back to the family lookup,
//! which gives the same key: a series, once resolved, keeps its key (series
//! are never removed, and a key past the series bound stays past it).

use std::cell::RefCell;

use plimsoll_core::tenant::MAX_TENANT_ID_LEN;
use plimsoll_core::{SeriesKey, Tenant};

use super::{Route, RouteRef};
use crate::tenant::Found;

/// Slots per table: a power of two.
const SLOTS: usize = 64;

struct StartSlot {
    /// 0: empty.
    layer: u64,
    method: usize,
    tenant: HeldTenant,
    /// The address of `route`'s label value, compared on a hit.
    route_addr: u64,
    /// Held (never read) so that `route_addr` cannot be reused by another route.
    #[allow(dead_code)]
    route: Route,
    key: Option<SeriesKey>,
}

/// The tenant a start slot was filled with.
enum HeldTenant {
    /// A resolved tenant, compared by identity.
    Tenant(Tenant),
    /// A raw header value (valid ids are at most this long; longer values
    /// are not remembered), compared by content.
    Raw(u8, [u8; MAX_TENANT_ID_LEN]),
}

impl HeldTenant {
    #[inline]
    fn holds(&self, found: &Found<'_>) -> bool {
        match (self, found) {
            (HeldTenant::Tenant(held), Found::Tenant(tenant)) => held.same(tenant),
            (HeldTenant::Tenant(held), Found::Resolved(tenant)) => held.same(tenant),
            (HeldTenant::Raw(len, bytes), Found::Header(raw)) => {
                &bytes[..usize::from(*len)] == *raw
            }
            _ => false,
        }
    }

    /// What to hold for `found`; `None` when it is not to be remembered.
    fn new(found: &Found<'_>) -> Option<Self> {
        Some(match found {
            Found::Tenant(tenant) => HeldTenant::Tenant((*tenant).clone()),
            Found::Resolved(tenant) => HeldTenant::Tenant(tenant.clone()),
            Found::Header(raw) => {
                let mut bytes = [0; MAX_TENANT_ID_LEN];
                bytes.get_mut(..raw.len())?.copy_from_slice(raw);
                HeldTenant::Raw(raw.len() as u8, bytes)
            }
        })
    }
}

/// A cheap, stable word for a tenant as found: the label's address for a
/// resolved tenant, a mix of length and bytes for a raw value.
#[inline]
fn tenant_word(found: &Found<'_>) -> u64 {
    match found {
        Found::Tenant(tenant) => addr(tenant.as_str()),
        Found::Resolved(tenant) => addr(tenant.as_str()),
        Found::Header(raw) => raw.chunks(8).fold(raw.len() as u64, |word, chunk| {
            let mut bytes = [0; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            (word.rotate_left(29) ^ u64::from_le_bytes(bytes)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }),
    }
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
                method: 0,
                tenant: HeldTenant::Tenant(Tenant::unknown()),
                route_addr: 0,
                route: Route::Unmatched,
                key: None,
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

#[inline]
fn addr(s: &str) -> u64 {
    s.as_ptr() as usize as u64
}

/// The in-flight series of (tenant, method, route) in layer `layer`;
/// `resolve` looks it up in the family on a miss.
#[inline]
pub(crate) fn in_flight(
    layer: u64,
    tenant: &Found<'_>,
    method: &'static str,
    route: &RouteRef<'_>,
    resolve: impl FnOnce() -> SeriesKey,
) -> SeriesKey {
    let method = method.as_ptr() as usize;
    let route_addr = addr(route.as_str());
    let at = position(layer ^ method as u64, tenant_word(tenant), route_addr);
    memoized(
        |memo| &mut memo.start[at],
        |slot| {
            (slot.layer == layer
                && slot.method == method
                && slot.route_addr == route_addr
                && slot.tenant.holds(tenant))
            .then_some(slot.key)
            .flatten()
        },
        resolve,
        |key| {
            Some(StartSlot {
                layer,
                method,
                tenant: HeldTenant::new(tenant)?,
                route_addr,
                route: route.to_route(),
                key: Some(key),
            })
        },
    )
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
        |key| {
            Some(EndSlot {
                layer,
                in_flight: index,
                status,
                key: Some(key),
            })
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
    fill: impl FnOnce(SeriesKey) -> Option<S>,
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
    fill: impl FnOnce(SeriesKey) -> Option<S>,
) -> SeriesKey {
    let key = resolve();
    let _ = MEMO.try_with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut()
            && let Some(filled) = fill(key)
        {
            *slot(&mut memo) = filled;
        }
    });
    key
}
