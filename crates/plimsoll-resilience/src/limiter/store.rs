//! The keyed state of one quota tier and the clock it is kept by:
//! governor's GCRA decides on it, and a scrape reads it to tell each
//! tenant's remaining quota (so nothing but the decision is done per
//! request).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::state::StateStore;
use plimsoll_core::Tenant;
use plimsoll_core::clock::Stamp;

use super::LimitKey;

/// Which clock a limiter keeps time by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimiterClock {
    /// The process's fast monotonic clock
    /// ([`Stamp`](plimsoll_core::clock::Stamp)); the default.
    #[default]
    Fast,
    /// tokio's clock, so that `tokio::time::pause()` and `advance()` drive
    /// the limiter in tests (about 25 ns more per check).
    Tokio,
}

/// A [`LimiterClock`] with the origin of its readings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    tokio: Option<tokio::time::Instant>,
}

impl Clock {
    pub(crate) fn new(which: LimiterClock) -> Self {
        Self {
            tokio: (which == LimiterClock::Tokio).then(tokio::time::Instant::now),
        }
    }
}

impl governor::clock::Clock for Clock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        match self.tokio {
            None => Nanos::new(Stamp::now().as_nanos()),
            Some(origin) => {
                let since = tokio::time::Instant::now().saturating_duration_since(origin);
                Nanos::new(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
            }
        }
    }
}

/// One key's state: its theoretical arrival time (GCRA's TAT, in
/// nanoseconds from the limiter's start; 0 for none), and the tenant whose
/// quota it is (noted at its first request).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    tat: AtomicU64,
    tenant: OnceLock<Tenant>,
}

impl Slot {
    /// governor's update: decide on the last TAT, store the new one unless
    /// another request stored one first (then decide again on that).
    fn measure_and_replace<T, E>(
        &self,
        f: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    ) -> Result<T, E> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let (result, next) = f((tat != 0).then(|| Nanos::new(tat)))?;
            match self.tat.compare_exchange_weak(
                tat,
                next.as_u64(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(result),
                Err(stored) => tat = stored,
            }
        }
    }

    /// Notes whose quota this is (once: a load after that).
    #[inline]
    fn note(&self, tenant: &Tenant) {
        if self.tenant.get().is_none() {
            let _ = self.tenant.set(tenant.clone());
        }
    }

    /// Forgets the TAT if it is at or before `drop_below` (the full burst
    /// is back); whether it was.
    fn forget(&self, drop_below: u64) -> bool {
        let tat = self.tat.load(Ordering::Relaxed);
        // A slot never used, or already forgotten, is left unwritten.
        tat != 0
            && self
                .tat
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                    (tat <= drop_below).then_some(0)
                })
                .is_ok()
    }
}

/// What governor looks a request's state up by: a tenant's slot (see
/// `Telemetry::tenant_slot`: an index, no hashing, no lock, no copy of
/// the tenant), or a key in the map.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Probe {
    Tenant(usize),
    Key(LimitKey),
}

impl Probe {
    /// Where the state it finds is.
    #[inline]
    pub(crate) fn at(&self) -> Where<'_> {
        match self {
            Probe::Tenant(slot) => Where::Tenant(*slot),
            Probe::Key(key) => Where::Key(key),
        }
    }
}

/// Tenant slots are allocated this many at a time, when first used.
const CHUNK: usize = 64;

type Map = DashMap<LimitKey, Slot, foldhash::fast::RandomState>;

/// The keyed state of one tier, shared by governor's limiter and the
/// scrape: one slot per tenant of the telemetry (tenants are bounded), and
/// a map for other keys (raw keys, another telemetry's tenants).
#[derive(Clone, Debug)]
pub(crate) struct Store(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    tenants: Box<[OnceLock<Box<[Slot]>>]>,
    keys: Map,
}

impl StateStore for Store {
    type Key = Probe;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, probe: &Probe, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        match probe {
            Probe::Tenant(slot) => self.tenant(*slot).measure_and_replace(f),
            Probe::Key(key) => {
                if let Some(slot) = self.0.keys.get(key) {
                    return slot.measure_and_replace(f);
                }
                let slot = self.0.keys.entry(key.clone()).or_default();
                slot.measure_and_replace(f)
            }
        }
    }
}

impl Store {
    /// A store for `tenant_slots` tenants (`Telemetry::tenant_slots`).
    pub(crate) fn new(tenant_slots: usize) -> Self {
        let chunks = tenant_slots.div_ceil(CHUNK);
        Self(Arc::new(Inner {
            tenants: (0..chunks).map(|_| OnceLock::new()).collect(),
            keys: Map::default(),
        }))
    }

    /// The tenant slot `slot` (below the telemetry's `tenant_slots`).
    #[inline]
    fn tenant(&self, slot: usize) -> &Slot {
        let chunk = self.0.tenants[slot / CHUNK]
            .get_or_init(|| (0..CHUNK).map(|_| Slot::default()).collect());
        &chunk[slot % CHUNK]
    }

    /// Notes that requests probed so are `tenant`'s quota.
    #[inline]
    pub(crate) fn note(&self, probe: &Probe, tenant: &Tenant) {
        match probe {
            Probe::Tenant(slot) => self.tenant(*slot).note(tenant),
            // A tenant key names its tenant; a raw key's is noted when it
            // is first seen (a lookup only for raw keys).
            Probe::Key(LimitKey::Tenant(_)) => {}
            Probe::Key(key) => match self.0.keys.get(key) {
                Some(slot) => slot.note(tenant),
                None => self.0.keys.entry(key.clone()).or_default().note(tenant),
            },
        }
    }

    /// Forgets the keys whose TAT is at or before `drop_below` (their full
    /// burst is back, as for a key never seen) and gives the map's memory
    /// back.
    pub(crate) fn clean(&self, drop_below: u64) {
        for chunk in self.0.tenants.iter().filter_map(OnceLock::get) {
            for slot in chunk.iter() {
                slot.forget(drop_below);
            }
        }
        self.0
            .keys
            .retain(|_, slot| slot.tat.load(Ordering::Relaxed) > drop_below);
        self.0.keys.shrink_to_fit();
    }

    /// Keys with a state now.
    pub(crate) fn len(&self) -> usize {
        let tenants = self.0.tenants.iter().filter_map(OnceLock::get);
        let held = tenants
            .flat_map(|chunk| chunk.iter())
            .filter(|slot| slot.tat.load(Ordering::Relaxed) != 0)
            .count();
        held + self.0.keys.len()
    }

    /// Each key with a state: how it is probed (a tenant slot, or a map
    /// key), the tenant whose quota it is, and its TAT.
    pub(crate) fn each(&self, mut f: impl FnMut(Where<'_>, &Tenant, u64)) {
        for (c, chunk) in self.0.tenants.iter().enumerate() {
            let Some(chunk) = chunk.get() else { continue };
            for (i, slot) in chunk.iter().enumerate() {
                let tat = slot.tat.load(Ordering::Acquire);
                if let (Some(tenant), true) = (slot.tenant.get(), tat != 0) {
                    f(Where::Tenant(c * CHUNK + i), tenant, tat);
                }
            }
        }
        for entry in self.0.keys.iter() {
            let tenant = match (entry.key(), entry.value().tenant.get()) {
                (LimitKey::Tenant(tenant), _) => tenant,
                (LimitKey::Raw(_), Some(tenant)) => tenant,
                (LimitKey::Raw(_), None) => continue,
            };
            let tat = entry.value().tat.load(Ordering::Acquire);
            if tat != 0 {
                f(Where::Key(entry.key()), tenant, tat);
            }
        }
    }
}

/// Where [`Store::each`] found a state.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Where<'a> {
    Tenant(usize),
    Key(&'a LimitKey),
}
