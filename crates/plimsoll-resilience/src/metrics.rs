//! The families of one telemetry, the breakers read at scrape time, and
//! the hooks that report breakers and limiters plimsoll does not run.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};

use plimsoll_core::{Counter, Gauge, LabelGuard, RegisterError, Telemetry, Tenant};

use crate::breaker::{BreakerBuilder, BreakerState, Core};
use crate::families::{
    self, CallKey, CallLabels, HitKey, HitLabels, QuotaKey, QuotaLabels, ServiceLabels,
    TransitionKey, TransitionLabels,
};

/// Reads a breaker's state; `None` once it is gone.
type ReadState = Box<dyn Fn() -> Option<BreakerState> + Send + Sync>;
type Watched = Mutex<Vec<(Arc<str>, ReadState)>>;

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
    calls: Counter<CallLabels>,
    hits: Counter<HitLabels>,
    remaining: Gauge<QuotaLabels>,
    services: LabelGuard,
    limits: LabelGuard,
    tiers: LabelGuard,
    breakers: Arc<Watched>,
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
            let Some(breakers) = watched.upgrade() else {
                return;
            };
            let mut breakers = breakers.lock().unwrap_or_else(|e| e.into_inner());
            breakers.retain(|(service, read)| match read() {
                Some(state) => {
                    let labels = ServiceLabels {
                        service: service.clone(),
                    };
                    let _ = out.set(&Tenant::system(), &labels, state.value());
                    true
                }
                None => false,
            });
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                transitions: telemetry.declare(&families::CIRCUIT_BREAKER_TRANSITIONS)?,
                calls: telemetry.declare(&families::CIRCUIT_BREAKER_CALLS)?,
                hits: telemetry.declare(&families::RATE_LIMIT_HITS)?,
                remaining: telemetry.declare(&families::API_QUOTA_REMAINING)?,
                services: telemetry.label_guard(&families::CIRCUIT_BREAKER_STATE, "service")?,
                limits: telemetry.label_guard(&families::RATE_LIMIT_HITS, "limit_type")?,
                tiers: telemetry.label_guard(&families::RATE_LIMIT_HITS, "client_type")?,
                breakers,
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

    fn watch(&self, service: Arc<str>, read: ReadState) {
        self.inner
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((service, read));
    }

    pub(crate) fn watch_breaker(&self, service: Arc<str>, core: Weak<Core>) {
        self.watch(service, Box::new(move || Some(core.upgrade()?.state())));
    }

    pub(crate) fn transition(&self, service: &Arc<str>, from: BreakerState, to: BreakerState) {
        let key = TransitionKey {
            service,
            from: from.as_str(),
            to: to.as_str(),
        };
        self.inner.transitions.inc(&Tenant::system(), &key);
    }

    pub(crate) fn call(&self, tenant: &Tenant, service: &Arc<str>, outcome: &'static str) {
        self.inner.calls.inc(tenant, &CallKey { service, outcome });
    }

    pub(crate) fn hit(&self, tenant: &Tenant, limit: &Arc<str>, tier: &Arc<str>) {
        let key = HitKey {
            limit_type: limit,
            client_type: tier,
        };
        self.inner.hits.inc(tenant, &key);
    }

    pub(crate) fn remaining(&self, tenant: &Tenant, limit: &Arc<str>, remaining: u32) {
        let key = QuotaKey { quota_type: limit };
        self.inner.remaining.set(tenant, &key, f64::from(remaining));
    }

    /// Reports a breaker plimsoll does not run (another crate's, a
    /// hand-written one) under the same series as its own: set its state
    /// as it changes and count its calls, and dashboards and alerts work
    /// unchanged.
    pub fn report_breaker(&self, service: &str) -> BreakerReport {
        let service = self.service(service);
        let state = Arc::new(AtomicU8::new(BreakerState::Closed as u8));
        let weak = Arc::downgrade(&state);
        self.watch(
            service.clone(),
            Box::new(move || {
                Some(BreakerState::from_u8(
                    weak.upgrade()?.load(Ordering::Acquire),
                ))
            }),
        );
        BreakerReport {
            metrics: self.clone(),
            service,
            state,
        }
    }

    /// Reports a limiter plimsoll does not run: count refused requests and
    /// the quota left, under the same series as its own limiters.
    pub fn report_limiter(&self, limit: &str) -> LimiterReport {
        LimiterReport {
            metrics: self.clone(),
            limit: self.limit(limit),
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
    state: Arc<AtomicU8>,
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
        let old = BreakerState::from_u8(self.state.swap(state as u8, Ordering::AcqRel));
        if old != state {
            self.metrics.transition(&self.service, old, state);
        }
    }

    /// One call through the breaker ended so, under the current request's tenant.
    pub fn call(&self, outcome: CallOutcome) {
        let label = match outcome {
            CallOutcome::Success => "success",
            CallOutcome::Failure => "failure",
            CallOutcome::Slow => "slow",
            CallOutcome::Rejected => "rejected",
        };
        let tenant = plimsoll_core::scope::current_tenant();
        self.metrics.call(&tenant, &self.service, label);
    }
}

/// Reports a limiter plimsoll does not run; see
/// [`ResilienceMetrics::report_limiter`].
#[derive(Clone, Debug)]
pub struct LimiterReport {
    metrics: ResilienceMetrics,
    limit: Arc<str>,
}

impl LimiterReport {
    /// `tenant`'s request was refused; `tier` is its quota tier (bounded).
    pub fn refused(&self, tenant: &Tenant, tier: &str) {
        let tier = self.metrics.tier(tier);
        self.metrics.hit(tenant, &self.limit, &tier);
    }

    /// `tenant` may still send `remaining` requests at once.
    pub fn remaining(&self, tenant: &Tenant, remaining: u32) {
        self.metrics.remaining(tenant, &self.limit, remaining);
    }
}
