//! The per-tenant rate limiter: governor's keyed GCRA limiter with a
//! default quota, per-tenant overrides changeable at run time, and its
//! keyed state cleaned on an interval so memory follows the active keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

pub use governor::Quota;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use plimsoll_core::Tenant;

use crate::metrics::ResilienceMetrics;

pub(crate) mod layer;

/// Marks the cleanup task stopped when dropped.
struct Running(Weak<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.cleaner.store(false, Ordering::Release);
        }
    }
}

/// governor on tokio's clock, so `tokio::time::pause()` drives it in tests
/// (outside a paused runtime it is the monotonic clock).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
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

type Keyed = governor::RateLimiter<
    LimitKey,
    DashMapStateStore<LimitKey, foldhash::fast::RandomState>,
    TokioClock,
    StateInformationMiddleware,
>;

/// One quota and the keyed state of the tenants under it.
struct Tier {
    name: Arc<str>,
    quota: Quota,
    limiter: Keyed,
}

impl Tier {
    fn new(name: Arc<str>, quota: Quota) -> Arc<Self> {
        Arc::new(Self {
            name,
            quota,
            limiter: governor::RateLimiter::dashmap_with_clock_and_hasher(
                quota,
                TokioClock,
                foldhash::fast::RandomState::default(),
            )
            .with_middleware::<StateInformationMiddleware>(),
        })
    }
}

/// The default tier and the tenants given another.
struct Tiers {
    default: Arc<Tier>,
    overrides: HashMap<LimitKey, Arc<Tier>>,
}

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
}

impl LimiterBuilder {
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
        let default = Tier::new(self.metrics.tier("default"), self.quota);
        Ok(RateLimiter {
            inner: Arc::new(Inner {
                name: self.metrics.limit(&self.name),
                tiers: RwLock::new(Arc::new(Tiers {
                    default,
                    overrides: HashMap::new(),
                })),
                cleanup: self.cleanup,
                cleaner: AtomicBool::new(false),
                metrics: self.metrics,
            }),
        })
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
    /// Read at every check; replaced whole when a quota changes.
    tiers: RwLock<Arc<Tiers>>,
    cleanup: Duration,
    /// Whether the cleanup task runs: started by the first check made in a
    /// runtime, and again if that runtime shut down.
    cleaner: AtomicBool,
    pub(crate) metrics: ResilienceMetrics,
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
        self.inner
            .tiers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&Tiers) -> Tiers) {
        let mut tiers = self.inner.tiers.write().unwrap_or_else(|e| e.into_inner());
        *tiers = Arc::new(change(&tiers));
    }

    /// Gives `key` (a tenant, or a raw key) the quota `quota`, as the tier
    /// named `tier` (the `client_type` label, bounded); takes effect at its
    /// next request. Keys given the same tier name and quota share one
    /// keyed state (each key its own entry in it).
    pub fn set_override(&self, key: impl Into<LimitKey>, tier: &str, quota: Quota) {
        let key = key.into();
        let tier = self.inner.metrics.tier(tier);
        self.update(|tiers| {
            let existing = std::iter::once(&tiers.default)
                .chain(tiers.overrides.values())
                .find(|t| t.name == tier && t.quota == quota)
                .cloned();
            let mut overrides = tiers.overrides.clone();
            overrides.insert(key, existing.unwrap_or_else(|| Tier::new(tier, quota)));
            Tiers {
                default: tiers.default.clone(),
                overrides,
            }
        });
    }

    /// Puts `key` back on the default quota.
    pub fn remove_override(&self, key: impl Into<LimitKey>) {
        let key = key.into();
        self.update(|tiers| {
            let mut overrides = tiers.overrides.clone();
            overrides.remove(&key);
            Tiers {
                default: tiers.default.clone(),
                overrides,
            }
        });
    }

    /// Changes the default quota (tenants start afresh under it).
    pub fn set_default(&self, quota: Quota) {
        self.update(|tiers| Tiers {
            default: Tier::new(tiers.default.name.clone(), quota),
            overrides: tiers.overrides.clone(),
        });
    }

    /// The quota `key` is under.
    pub fn quota_of(&self, key: impl Into<LimitKey>) -> Quota {
        let tiers = self.tiers();
        tiers
            .overrides
            .get(&key.into())
            .unwrap_or(&tiers.default)
            .quota
    }

    /// Checks one request of `tenant`, keyed by the tenant.
    pub fn check(&self, tenant: &Tenant) -> Decision {
        self.check_key(&LimitKey::Tenant(tenant.clone()), tenant)
    }

    /// Checks one request keyed by `key`, made for `tenant` (the series'
    /// tenant): counts a refusal, sets the quota it has left.
    pub fn check_key(&self, key: &LimitKey, tenant: &Tenant) -> Decision {
        self.start_cleaner();
        let tiers = self.inner.tiers.read().unwrap_or_else(|e| e.into_inner());
        let tier = if tiers.overrides.is_empty() {
            &tiers.default
        } else {
            tiers.overrides.get(key).unwrap_or(&tiers.default)
        };
        let limit = tier.quota.burst_size().get();
        let per_request = tier.quota.replenish_interval();
        let metrics = &self.inner.metrics;
        match tier.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                metrics.remaining(tenant, &self.inner.name, remaining);
                Decision {
                    allowed: true,
                    limit,
                    remaining,
                    reset: per_request * (limit - remaining),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                metrics.hit(tenant, &self.inner.name, &tier.name);
                metrics.remaining(tenant, &self.inner.name, 0);
                let wait = not_until.wait_time_from(TokioClock.now());
                Decision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset: wait + per_request * (limit - 1),
                    retry_after: wait,
                }
            }
        }
    }

    /// Drops the keyed state of tenants no longer limited (their next
    /// request starts with a full burst, as it would anyway) and gives the
    /// memory back. The limiter runs this itself on its cleanup interval.
    pub fn clean(&self) {
        let tiers = self.tiers();
        for tier in std::iter::once(&tiers.default).chain(tiers.overrides.values()) {
            tier.limiter.retain_recent();
            tier.limiter.shrink_to_fit();
        }
    }

    /// Keys with keyed state now.
    pub fn keys(&self) -> usize {
        let tiers = self.tiers();
        let mut seen: Vec<*const Tier> = Vec::new();
        let mut keys = 0;
        for tier in std::iter::once(&tiers.default).chain(tiers.overrides.values()) {
            if !seen.contains(&Arc::as_ptr(tier)) {
                seen.push(Arc::as_ptr(tier));
                keys += tier.limiter.len();
            }
        }
        keys
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
