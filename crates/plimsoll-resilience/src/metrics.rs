//! The families of one telemetry, the breakers read at scrape time, and
//! the hooks that report breakers and limiters plimsoll does not run.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use std::collections::HashMap;

use dashmap::DashMap;
use plimsoll_core::{Counter, LabelGuard, RegisterError, Telemetry, Tenant};

use crate::breaker::{BreakerBuilder, BreakerState, Core};
use crate::families::{
    self, CallLabels, HitKey, HitLabels, QuotaLabels, ServiceLabels, TransitionKey,
    TransitionLabels,
};
use crate::limiter::Inner as LimiterInner;

/// A breaker's calls by outcome, counted where they happen and read at
/// scrape time (no series lookup on the call path).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) success: AtomicU64,
    pub(crate) failure: AtomicU64,
    pub(crate) slow: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

impl Counts {
    fn read(&self) -> CallCounts {
        [
            ("success", self.success.load(Ordering::Relaxed)),
            ("failure", self.failure.load(Ordering::Relaxed)),
            ("slow", self.slow.load(Ordering::Relaxed)),
            ("rejected", self.rejected.load(Ordering::Relaxed)),
        ]
    }
}

/// A breaker's calls by outcome, as read.
type CallCounts = [(&'static str, u64); 4];
/// What a breaker shows at a scrape: its state and its calls.
type Reading = (BreakerState, CallCounts);
/// What a name shows at a scrape: its state (when one breaker has it) and its calls.
type NameReading = (Arc<str>, Option<BreakerState>, CallCounts);
/// Reads a breaker; `None` once it is gone.
type ReadBreaker = Box<dyn Fn() -> Option<Reading> + Send + Sync>;
type Watched = Mutex<Vec<(Arc<str>, ReadBreaker)>>;
/// Tells each tenant's remaining quota under each limit; `false` once gone.
type ReadQuotas = Box<dyn Fn(&mut dyn FnMut(&Tenant, &Arc<str>, u32)) -> bool + Send + Sync>;
type Quotas = Mutex<Vec<ReadQuotas>>;

/// Reads every live limiter (dropping the gone ones): each tenant's
/// remaining quota under each limit, the least where several keys (or
/// limiters sharing a name) hold some.
fn read_quotas(quotas: &Weak<Quotas>) -> HashMap<(Tenant, Arc<str>), u32> {
    let mut least: HashMap<(Tenant, Arc<str>), u32> = HashMap::new();
    let Some(quotas) = quotas.upgrade() else {
        return least;
    };
    let mut record = |tenant: &Tenant, limit: &Arc<str>, remaining: u32| {
        least
            .entry((tenant.clone(), limit.clone()))
            .and_modify(|value| *value = (*value).min(remaining))
            .or_insert(remaining);
    };
    quotas
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|read| read(&mut record));
    least
}

/// Reads every live breaker (dropping the gone ones), one reading per
/// name: breakers that share a name (or fold into `__other__` past the
/// bound) add their calls, and show a state only when there is one of them
/// (two states under one name would read as a third).
fn read_breakers(watched: &Weak<Watched>) -> Vec<NameReading> {
    let Some(breakers) = watched.upgrade() else {
        return Vec::new();
    };
    let mut breakers = breakers.lock().unwrap_or_else(|e| e.into_inner());
    let mut readings: Vec<NameReading> = Vec::with_capacity(breakers.len());
    breakers.retain(|(service, read)| match read() {
        Some((state, counts)) => {
            match readings.iter_mut().find(|(name, _, _)| name == service) {
                Some((_, shown, sum)) => {
                    *shown = None;
                    for (total, (_, count)) in sum.iter_mut().zip(counts) {
                        total.1 += count;
                    }
                }
                None => readings.push((service.clone(), Some(state), counts)),
            }
            true
        }
        None => false,
    });
    readings
}

/// The resilience families of one [`Telemetry`]: create one, then build
/// breakers ([`breaker`](ResilienceMetrics::breaker)) and limiters
/// ([`limiter`](ResilienceMetrics::limiter)) from it. Cheap to clone.
#[derive(Clone)]
pub struct ResilienceMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    telemetry: Telemetry,
    transitions: Counter<TransitionLabels>,
    hits: Counter<HitLabels>,
    services: LabelGuard,
    limits: LabelGuard,
    tiers: LabelGuard,
    breakers: Arc<Watched>,
    quotas: Arc<Quotas>,
}

impl fmt::Debug for ResilienceMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceMetrics")
            .field("services", &self.inner.services.len())
            .finish_non_exhaustive()
    }
}

impl ResilienceMetrics {
    /// Registers the families on `telemetry` (once per telemetry: the
    /// breaker state is a scrape-time family).
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        let breakers: Arc<Watched> = Arc::default();
        let watched = Arc::downgrade(&breakers);
        telemetry.declare_scraped(&families::CIRCUIT_BREAKER_STATE, move |out| {
            for (service, state, _) in read_breakers(&watched) {
                if let Some(state) = state {
                    let _ = out.set(&Tenant::system(), &ServiceLabels { service }, state.value());
                }
            }
        })?;
        let watched = Arc::downgrade(&breakers);
        telemetry.declare_scraped(&families::CIRCUIT_BREAKER_CALLS, move |out| {
            for (service, _, counts) in read_breakers(&watched) {
                for (outcome, count) in counts {
                    let labels = CallLabels {
                        service: service.clone(),
                        outcome,
                    };
                    let _ = out.set(&Tenant::system(), &labels, count as f64);
                }
            }
        })?;
        let quotas: Arc<Quotas> = Arc::default();
        let watched = Arc::downgrade(&quotas);
        telemetry.declare_scraped(&families::API_QUOTA_REMAINING, move |out| {
            for ((tenant, quota_type), remaining) in read_quotas(&watched) {
                let _ = out.set(&tenant, &QuotaLabels { quota_type }, f64::from(remaining));
            }
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                transitions: telemetry.declare(&families::CIRCUIT_BREAKER_TRANSITIONS)?,
                hits: telemetry.declare(&families::RATE_LIMIT_HITS)?,
                services: telemetry.label_guard(&families::CIRCUIT_BREAKER_STATE, "service")?,
                limits: telemetry.label_guard(&families::RATE_LIMIT_HITS, "limit_type")?,
                tiers: telemetry.label_guard(&families::RATE_LIMIT_HITS, "client_type")?,
                breakers,
                quotas,
                telemetry: telemetry.clone(),
            }),
        })
    }

    /// A builder for a breaker guarding the dependency `service` (bounded).
    pub fn breaker(&self, service: &str) -> BreakerBuilder {
        BreakerBuilder::new(self.clone(), service.to_string())
    }

    /// The telemetry the families are registered on.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    pub(crate) fn service(&self, name: &str) -> Arc<str> {
        self.inner.services.admit(name)
    }

    pub(crate) fn limit(&self, name: &str) -> Arc<str> {
        self.inner.limits.admit(name)
    }

    pub(crate) fn tier(&self, name: &str) -> Arc<str> {
        self.inner.tiers.admit(name)
    }

    fn watch(&self, service: Arc<str>, read: ReadBreaker) {
        self.inner
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((service, read));
    }

    pub(crate) fn watch_breaker(&self, service: Arc<str>, core: Weak<Core>) {
        self.watch(
            service,
            Box::new(move || {
                let core = core.upgrade()?;
                Some((core.state(), core.counts.read()))
            }),
        );
    }

    pub(crate) fn transition(&self, service: &Arc<str>, from: BreakerState, to: BreakerState) {
        let key = TransitionKey {
            service,
            from: from.as_str(),
            to: to.as_str(),
        };
        self.inner.transitions.inc(&Tenant::system(), &key);
    }

    pub(crate) fn hit(&self, tenant: &Tenant, limit: &Arc<str>, tier: &Arc<str>) {
        let key = HitKey {
            limit_type: limit,
            client_type: tier,
        };
        self.inner.hits.inc(tenant, &key);
    }

    fn watch_quotas(&self, read: ReadQuotas) {
        self.inner
            .quotas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(read);
    }

    pub(crate) fn watch_limiter(&self, limiter: Weak<LimiterInner>) {
        self.watch_quotas(Box::new(move |f| match limiter.upgrade() {
            Some(limiter) => {
                limiter.read_quotas(f);
                true
            }
            None => false,
        }));
    }

    /// Reports a breaker plimsoll does not run (another crate's, a
    /// hand-written one) under the same series as its own: set its state
    /// as it changes and count its calls, and dashboards and alerts work
    /// unchanged.
    pub fn report_breaker(&self, service: &str) -> BreakerReport {
        let service = self.service(service);
        let state = Arc::new(Reported::default());
        let weak = Arc::downgrade(&state);
        self.watch(
            service.clone(),
            Box::new(move || {
                let reported = weak.upgrade()?;
                let state = BreakerState::from_u8(reported.state.load(Ordering::Acquire));
                Some((state, reported.counts.read()))
            }),
        );
        BreakerReport {
            metrics: self.clone(),
            service,
            state,
        }
    }

    /// Reports a limiter plimsoll does not run: count refused requests and
    /// the quota left, under the same series as its own limiters. Keep the
    /// handle (clone it where it is needed): the quota left it reports is
    /// read at scrape time while it lives, and goes with it.
    pub fn report_limiter(&self, limit: &str) -> LimiterReport {
        let limit = self.limit(limit);
        let remaining: Arc<DashMap<Tenant, u32>> = Arc::default();
        let weak = Arc::downgrade(&remaining);
        let name = limit.clone();
        self.watch_quotas(Box::new(move |f| match weak.upgrade() {
            Some(remaining) => {
                for entry in remaining.iter() {
                    f(entry.key(), &name, *entry.value());
                }
                true
            }
            None => false,
        }));
        LimiterReport {
            metrics: self.clone(),
            limit,
            remaining,
        }
    }
}

/// Reports the state and calls of a breaker plimsoll does not run; see
/// [`ResilienceMetrics::report_breaker`]. Its state series lives as long
/// as this handle (clones share it).
#[derive(Clone, Debug)]
pub struct BreakerReport {
    metrics: ResilienceMetrics,
    service: Arc<str>,
    state: Arc<Reported>,
}

/// The state and calls of a reported breaker.
#[derive(Debug, Default)]
struct Reported {
    state: AtomicU8,
    counts: Counts,
}

/// What a reported call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// It succeeded.
    Success,
    /// It failed.
    Failure,
    /// It succeeded, slower than the breaker's threshold.
    Slow,
    /// The breaker shed it.
    Rejected,
}

impl BreakerReport {
    /// The breaker is now in `state`: the gauge follows, and a change
    /// counts one transition.
    pub fn set_state(&self, state: BreakerState) {
        let old = BreakerState::from_u8(self.state.state.swap(state as u8, Ordering::AcqRel));
        if old != state {
            self.metrics.transition(&self.service, old, state);
        }
    }

    /// One call through the breaker ended so.
    pub fn call(&self, outcome: CallOutcome) {
        let counts = &self.state.counts;
        let counter = match outcome {
            CallOutcome::Success => &counts.success,
            CallOutcome::Failure => &counts.failure,
            CallOutcome::Slow => &counts.slow,
            CallOutcome::Rejected => &counts.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reports a limiter plimsoll does not run; see
/// [`ResilienceMetrics::report_limiter`]. Its quota series live as long as
/// this handle (clones share them).
#[derive(Clone, Debug)]
pub struct LimiterReport {
    metrics: ResilienceMetrics,
    limit: Arc<str>,
    /// Each tenant's last reported quota, read at scrape time.
    remaining: Arc<DashMap<Tenant, u32>>,
}

impl LimiterReport {
    /// `tenant`'s request was refused; `tier` is its quota tier (bounded).
    pub fn refused(&self, tenant: &Tenant, tier: &str) {
        let tier = self.metrics.tier(tier);
        self.metrics.hit(tenant, &self.limit, &tier);
    }

    /// `tenant` may still send `remaining` requests at once.
    pub fn remaining(&self, tenant: &Tenant, remaining: u32) {
        match self.remaining.get_mut(tenant) {
            Some(mut value) => *value = remaining,
            None => {
                self.remaining.insert(tenant.clone(), remaining);
            }
        }
    }
}
