//! The per-tenant rate limiter: governor's keyed GCRA limiter with a
//! default quota, per-tenant overrides changeable at run time, and its
//! keyed state cleaned on an interval so memory follows the active keys.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use std::time::Duration;

pub use governor::Quota;
use governor::clock::Clock as _;
use plimsoll_core::Tenant;

use crate::metrics::ResilienceMetrics;
pub use store::LimiterClock;
use store::{Clock, Probe};
use tiers::{Tier, Tiers};

pub(crate) mod layer;
mod store;
mod tiers;

/// Marks the cleanup task stopped when dropped.
struct Running(Weak<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.cleaner.store(false, Ordering::Release);
        }
    }
}

/// What a limiter keys its state by: a tenant (bounded by the tenant
/// policy, so its state is too), or a raw key (an API key, a client id, an
/// address: as many states as keys seen, cleaned when idle).
#[derive(Clone, Debug)]
pub enum LimitKey {
    /// A tenant.
    Tenant(Tenant),
    /// Any other key.
    Raw(Arc<str>),
}

impl LimitKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        match self {
            LimitKey::Tenant(t) => t.as_str(),
            LimitKey::Raw(k) => k,
        }
    }
}

/// Tenants and raw keys never meet: a client sending the API key `acme`
/// does not share tenant `acme`'s state or quota.
impl PartialEq for LimitKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LimitKey::Tenant(a), LimitKey::Tenant(b)) => a == b,
            (LimitKey::Raw(a), LimitKey::Raw(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for LimitKey {}

impl std::hash::Hash for LimitKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        matches!(self, LimitKey::Raw(_)).hash(state);
        self.as_str().hash(state);
    }
}

impl From<Tenant> for LimitKey {
    fn from(tenant: Tenant) -> Self {
        LimitKey::Tenant(tenant)
    }
}

impl From<&Tenant> for LimitKey {
    fn from(tenant: &Tenant) -> Self {
        LimitKey::Tenant(tenant.clone())
    }
}

impl From<&str> for LimitKey {
    fn from(key: &str) -> Self {
        LimitKey::Raw(key.into())
    }
}

/// Tenant slots a tier's store has at most (see [`Store`](store::Store)).
const MAX_SLOTS: usize = 1 << 20;

/// What a check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The burst size of the tenant's quota (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests the tenant may still send at once (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the tenant's full burst is available again (`RateLimit-Reset`).
    pub reset: Duration,
    /// For a refused request: until one would pass (`Retry-After`).
    pub retry_after: Duration,
}

/// An allowed request, before its [`Decision`] is worked out (a division
/// and a multiplication the layer needs only for headers).
pub(crate) struct Allowed {
    snapshot: governor::middleware::StateSnapshot,
    quota: Quota,
}

impl Allowed {
    fn decide(admitted: Result<Allowed, Decision>) -> Decision {
        match admitted {
            Ok(allowed) => allowed.decision(),
            Err(refused) => refused,
        }
    }

    pub(crate) fn decision(&self) -> Decision {
        let limit = self.quota.burst_size().get();
        let remaining = self.snapshot.remaining_burst_capacity();
        Decision {
            allowed: true,
            limit,
            remaining,
            reset: self.quota.replenish_interval() * (limit - remaining),
            retry_after: Duration::ZERO,
        }
    }
}

/// An invalid limiter setting; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterBuildError {
    /// The cleanup interval is zero.
    #[error("{field}: must be greater than zero")]
    Zero {
        /// The setting.
        field: &'static str,
    },
}

/// Builds a [`RateLimiter`]; get one from
/// [`ResilienceMetrics::limiter`](crate::ResilienceMetrics::limiter).
#[derive(Debug)]
pub struct LimiterBuilder {
    metrics: ResilienceMetrics,
    name: String,
    quota: Quota,
    cleanup: Duration,
    clock: LimiterClock,
}

impl LimiterBuilder {
    /// The clock the limiter keeps time by (default [`LimiterClock::Fast`];
    /// [`LimiterClock::Tokio`] for tests on tokio's paused clock).
    pub fn clock(mut self, clock: LimiterClock) -> Self {
        self.clock = clock;
        self
    }

    /// How often the keyed state of tenants no longer limited is dropped
    /// (default 60 s).
    pub fn cleanup_every(mut self, interval: Duration) -> Self {
        self.cleanup = interval;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<RateLimiter, LimiterBuildError> {
        if self.cleanup.is_zero() {
            return Err(LimiterBuildError::Zero {
                field: "cleanup_every",
            });
        }
        let clock = Clock::new(self.clock);
        // Tenants past this many (a bound set very high) keep their state
        // in the map, so that no tier allocates a table for them all.
        let slots = self.metrics.telemetry().tenant_slots().min(MAX_SLOTS);
        let default = Tier::new(self.metrics.tier("default"), self.quota, clock, slots);
        let inner = Arc::new(Inner {
            name: self.metrics.limit(&self.name),
            tiers: ArcSwap::from_pointee(Tiers::new(default)),
            clock,
            slots,
            cleanup: self.cleanup,
            cleaner: AtomicBool::new(false),
            metrics: self.metrics.clone(),
        });
        self.metrics.watch_limiter(Arc::downgrade(&inner));
        Ok(RateLimiter { inner })
    }
}

impl ResilienceMetrics {
    /// A builder for a rate limiter named `name` (the `limit_type` and
    /// `quota_type` label, bounded) with `quota` for every tenant without
    /// an override.
    pub fn limiter(&self, name: &str, quota: Quota) -> LimiterBuilder {
        LimiterBuilder {
            metrics: self.clone(),
            name: name.to_string(),
            quota,
            cleanup: Duration::from_secs(60),
            clock: LimiterClock::default(),
        }
    }
}

/// A per-tenant rate limiter: a cloneable handle to check requests,
/// change quotas at run time, and the source of its tower layer.
#[derive(Clone)]
pub struct RateLimiter {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    /// Read at every check (without a lock: no cache line written by every
    /// call); replaced whole when a quota changes.
    tiers: ArcSwap<Tiers>,
    clock: Clock,
    /// The telemetry's tenant slots (each tier's store has one per slot).
    slots: usize,
    cleanup: Duration,
    /// Whether the cleanup task runs: started by the first check made in a
    /// runtime, and again if that runtime shut down.
    cleaner: AtomicBool,
    pub(crate) metrics: ResilienceMetrics,
}

impl Inner {
    /// Each key's remaining quota now, with the tenant it is for, for a
    /// scrape. Only the tier a key is under now is read (state left in
    /// another by a changed quota is not its quota).
    pub(crate) fn read_quotas(&self, f: &mut dyn FnMut(&Tenant, &Arc<str>, u32)) {
        let tiers = self.tiers.load_full();
        for tier in tiers.distinct() {
            let now = tier.now();
            tier.store.each(|at, tenant, tat| {
                if Arc::ptr_eq(tiers.of(at), tier) {
                    f(tenant, &self.name, tier.remaining(tat, now));
                }
            });
        }
    }

    /// A tier for `quota` named `name`.
    fn tier(&self, name: Arc<str>, quota: Quota) -> Arc<Tier> {
        Tier::new(name, quota, self.clock, self.slots)
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.inner.name)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    fn tiers(&self) -> Arc<Tiers> {
        self.inner.tiers.load_full()
    }

    /// Replaces the tiers with `change` of them (run again if another
    /// change landed meanwhile).
    fn update(&self, change: impl Fn(&Tiers) -> Tiers) {
        self.inner.tiers.rcu(|tiers| change(tiers));
    }

    /// Gives `key` (a tenant, or a raw key) the quota `quota`, as the tier
    /// named `tier` (the `client_type` label, bounded); takes effect at its
    /// next request. Keys given the same tier name and quota share one
    /// keyed state (each key its own entry in it).
    pub fn set_override(&self, key: impl Into<LimitKey>, tier: &str, quota: Quota) {
        let key = self.local_key(key.into());
        let slot = self.key_slot(&key);
        let name = self.inner.metrics.tier(tier);
        self.update(|tiers| {
            let existing = tiers
                .distinct()
                .into_iter()
                .find(|t| t.name == name && t.quota == quota)
                .cloned();
            let tier = existing.unwrap_or_else(|| self.inner.tier(name.clone(), quota));
            tiers.with(&key, slot, Some(tier))
        });
    }

    /// Puts `key` back on the default quota.
    pub fn remove_override(&self, key: impl Into<LimitKey>) {
        let key = self.local_key(key.into());
        let slot = self.key_slot(&key);
        self.update(|tiers| tiers.with(&key, slot, None));
    }

    /// Changes the default quota (tenants start afresh under it).
    pub fn set_default(&self, quota: Quota) {
        self.update(|tiers| tiers.with_default(self.inner.tier(tiers.default.name.clone(), quota)));
    }

    /// The quota `key` is under.
    pub fn quota_of(&self, key: impl Into<LimitKey>) -> Quota {
        let probe = match self.local_key(key.into()) {
            LimitKey::Tenant(tenant) => self.tenant_probe(&tenant),
            raw => Probe::Key(raw),
        };
        self.tiers().of(probe.at()).quota
    }

    /// Checks one request of `tenant`, keyed by the tenant.
    pub fn check(&self, tenant: &Tenant) -> Decision {
        Allowed::decide(self.admit_tenant(tenant))
    }

    /// Checks one request keyed by `key`, made for `tenant` (the series'
    /// tenant): counts a refusal. The quota left is read at scrape time.
    pub fn check_key(&self, key: &LimitKey, tenant: &Tenant) -> Decision {
        Allowed::decide(match key {
            LimitKey::Tenant(keyed) => {
                let local = self.local(keyed);
                self.admit(&self.tenant_probe(&local), &local, tenant)
            }
            LimitKey::Raw(_) => self.admit(&Probe::Key(key.clone()), tenant, tenant),
        })
    }

    /// `tenant` as the limiter's telemetry knows it: a tenant of another
    /// telemetry is adopted by its id, so that it has the same state,
    /// quota and series as that tenant.
    #[inline]
    fn local<'a>(&self, tenant: &'a Tenant) -> Cow<'a, Tenant> {
        let telemetry = self.inner.metrics.telemetry();
        match telemetry.tenant_slot(tenant) {
            Some(_) => Cow::Borrowed(tenant),
            None => Cow::Owned(telemetry.adopt(tenant)),
        }
    }

    /// The slot of a (local) key, for a tenant that has one.
    fn key_slot(&self, key: &LimitKey) -> Option<usize> {
        match key {
            LimitKey::Tenant(tenant) => self.slot_of(tenant),
            LimitKey::Raw(_) => None,
        }
    }

    /// `key`, its tenant (if it is one) made local.
    fn local_key(&self, key: LimitKey) -> LimitKey {
        match key {
            LimitKey::Tenant(tenant) => LimitKey::Tenant(self.local(&tenant).into_owned()),
            raw => raw,
        }
    }

    /// The slot of a (local) tenant key, when the stores have one for it.
    #[inline]
    fn slot_of(&self, tenant: &Tenant) -> Option<usize> {
        let slot = self.inner.metrics.telemetry().tenant_slot(tenant)?;
        (slot < self.inner.slots).then_some(slot)
    }

    /// How the state of requests keyed by a local `tenant` is found: its
    /// slot (else, past the stores' slots, the map).
    #[inline]
    fn tenant_probe(&self, tenant: &Tenant) -> Probe {
        match self.slot_of(tenant) {
            Some(slot) => Probe::Tenant(slot),
            None => Probe::Key(LimitKey::Tenant(tenant.clone())),
        }
    }

    /// A request keyed by its tenant, the details of an allowed one left
    /// to be worked out only when asked for.
    #[inline]
    pub(crate) fn admit_tenant(&self, tenant: &Tenant) -> Result<Allowed, Decision> {
        // One slot lookup for the limiter's own tenants (the common case).
        if let Some(slot) = self.slot_of(tenant) {
            return self.admit(&Probe::Tenant(slot), tenant, tenant);
        }
        let local = self.local(tenant);
        self.admit(&self.tenant_probe(&local), &local, tenant)
    }

    /// A request keyed by `key` (raw), made for `tenant`.
    pub(crate) fn admit_key(&self, key: LimitKey, tenant: &Tenant) -> Result<Allowed, Decision> {
        self.admit(&Probe::Key(key), tenant, tenant)
    }

    /// Checks the request probed so; `owner` is the tenant whose quota the
    /// key is (noted for scrapes), `tenant` the request's (its refusal's
    /// series).
    fn admit(&self, probe: &Probe, owner: &Tenant, tenant: &Tenant) -> Result<Allowed, Decision> {
        self.start_cleaner();
        let tiers = self.inner.tiers.load();
        let tier = tiers.of(probe.at());
        tier.store.note(probe, owner);
        match tier.limiter.check_key(probe) {
            Ok(snapshot) => Ok(Allowed {
                snapshot,
                quota: tier.quota,
            }),
            Err(not_until) => {
                // A tenant of another telemetry counts as the tenant of its id.
                let tenant = self.local(tenant);
                self.inner
                    .metrics
                    .hit(&tenant, &self.inner.name, &tier.name);
                let wait = not_until.wait_time_from(tier.limiter.clock().now());
                let limit = tier.quota.burst_size().get();
                Err(Decision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset: wait + tier.quota.replenish_interval() * (limit - 1),
                    retry_after: wait,
                })
            }
        }
    }

    /// Drops the keyed state of tenants no longer limited (their next
    /// request starts with a full burst, as it would anyway) and gives the
    /// memory back. The limiter runs this itself on its cleanup interval.
    pub fn clean(&self) {
        for tier in self.tiers().distinct() {
            tier.clean();
        }
    }

    /// Keys with keyed state now.
    pub fn keys(&self) -> usize {
        self.tiers().distinct().iter().map(|t| t.store.len()).sum()
    }

    /// Starts the cleanup task on the current runtime unless it runs; it
    /// ends when the limiter is dropped, and is started again by the next
    /// check if its runtime shut down.
    fn start_cleaner(&self) {
        if self.inner.cleaner.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .inner
            .cleaner
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let limiter: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.cleanup;
        // Dropped with the task, polled or not (its runtime shut down, or
        // the limiter is gone): the next check starts another.
        let running = Running(limiter.clone());
        runtime.spawn(async move {
            let _running = running;
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match limiter.upgrade() {
                    Some(inner) => RateLimiter { inner }.clean(),
                    None => return,
                }
            }
        });
    }
}
