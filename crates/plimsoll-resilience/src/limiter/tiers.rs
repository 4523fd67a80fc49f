//! The quota tiers of a limiter: the default one and those overrides
//! name, each a governor limiter on its own state.

use std::collections::HashMap;
use std::sync::Arc;

use governor::clock::Clock as _;
use governor::middleware::StateInformationMiddleware;

use super::store::{Clock, Probe, Store, Where};
use super::{LimitKey, Quota};

/// Looked up on every request once an override exists: a fast hash.
type Hasher = foldhash::fast::RandomState;

type Keyed = governor::RateLimiter<Probe, Store, Clock, StateInformationMiddleware>;

/// One quota and the state of the keys under it.
pub(super) struct Tier {
    pub(super) name: Arc<str>,
    pub(super) quota: Quota,
    pub(super) limiter: Keyed,
    /// The limiter's state, read by scrapes and cleaned.
    pub(super) store: Store,
    /// The clock's reading when the limiter started, at or just after
    /// governor's own (TATs count from it).
    start: u64,
}

impl Tier {
    pub(super) fn new(name: Arc<str>, quota: Quota, clock: Clock, slots: usize) -> Arc<Self> {
        let store = Store::new(slots);
        let limiter: Keyed = governor::RateLimiter::new(quota, store.clone(), clock);
        let start = clock.now().as_u64();
        Arc::new(Self {
            name,
            quota,
            limiter,
            store,
            start,
        })
    }

    /// Nanoseconds between a request's arrival and the next one's under
    /// the quota (governor's emission interval).
    fn interval(&self) -> u64 {
        u64::try_from(self.quota.replenish_interval().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The clock now, in the TATs' terms.
    pub(super) fn now(&self) -> u64 {
        self.limiter
            .clock()
            .now()
            .as_u64()
            .saturating_sub(self.start)
    }

    /// Requests that a key whose TAT is `tat` may send at once at `now`
    /// (governor's remaining burst capacity, read without a request).
    pub(super) fn remaining(&self, tat: u64, now: u64) -> u32 {
        let t = self.interval();
        let full = t.saturating_mul(u64::from(self.quota.burst_size().get()));
        let left = now.saturating_add(full).saturating_sub(tat).min(full);
        u32::try_from(left / t).unwrap_or(u32::MAX)
    }

    /// Forgets the keys whose full burst is back.
    pub(super) fn clean(&self) {
        self.store.clean(self.now().saturating_sub(self.interval()));
    }
}

/// The default tier and the keys given another; replaced whole on a change.
pub(super) struct Tiers {
    pub(super) default: Arc<Tier>,
    /// By key, as set.
    pub(super) overrides: HashMap<LimitKey, Arc<Tier>, Hasher>,
    /// The overrides of the telemetry's tenants again, by tenant slot.
    by_slot: HashMap<usize, Arc<Tier>, Hasher>,
}

impl Tiers {
    pub(super) fn new(default: Arc<Tier>) -> Self {
        Self {
            default,
            overrides: HashMap::default(),
            by_slot: HashMap::default(),
        }
    }

    /// The tier of the state found at `at`.
    #[inline]
    pub(super) fn of(&self, at: Where<'_>) -> &Arc<Tier> {
        if self.overrides.is_empty() {
            return &self.default;
        }
        let found = match at {
            Where::Tenant(slot) => self.by_slot.get(&slot),
            Where::Key(key) => self.overrides.get(key),
        };
        found.unwrap_or(&self.default)
    }

    /// The tiers, each once (overrides with the same name and quota share one).
    pub(super) fn distinct(&self) -> Vec<&Arc<Tier>> {
        let mut tiers: Vec<&Arc<Tier>> = vec![&self.default];
        for tier in self.overrides.values() {
            if !tiers.iter().any(|t| Arc::ptr_eq(t, tier)) {
                tiers.push(tier);
            }
        }
        tiers
    }

    /// These tiers with `key` (a tenant's when `slot` is its tenant slot)
    /// under `tier`, or back on the default for `None`.
    pub(super) fn with(
        &self,
        key: &LimitKey,
        slot: Option<usize>,
        tier: Option<Arc<Tier>>,
    ) -> Self {
        let (mut overrides, mut by_slot) = (self.overrides.clone(), self.by_slot.clone());
        match tier {
            Some(tier) => {
                if let Some(slot) = slot {
                    by_slot.insert(slot, tier.clone());
                }
                overrides.insert(key.clone(), tier);
            }
            None => {
                if let Some(slot) = slot {
                    by_slot.remove(&slot);
                }
                overrides.remove(key);
            }
        }
        Self {
            default: self.default.clone(),
            overrides,
            by_slot,
        }
    }

    /// These tiers with another default.
    pub(super) fn with_default(&self, default: Arc<Tier>) -> Self {
        Self {
            default,
            overrides: self.overrides.clone(),
            by_slot: self.by_slot.clone(),
        }
    }
}
