//! The handle of one key of the facade: its family, its label values,
//! and the series each tenant records into.

use std::sync::OnceLock;

use metrics::{CounterFn, GaugeFn, HistogramFn};
use plimsoll_core::scope::with_current;
use plimsoll_core::{DynLabels, LabelGuard, SeriesKey, Telemetry, Tenant};

/// Runs `f` with the tenant of the current request scope, else `__system__`.
#[inline]
fn with_tenant<R>(f: impl FnOnce(&Tenant) -> R) -> R {
    with_current(|scope| match scope {
        Some(scope) => f(scope.tenant()),
        None => f(&Tenant::system()),
    })
}

/// A plimsoll family the handles of a metric record into.
pub(crate) trait Keyed {
    /// The key of the series of `tenant` and `labels`, created if the
    /// bound allows (else the tenant's overflow series).
    fn series(&self, tenant: &Tenant, labels: &DynLabels) -> SeriesKey;
}

impl Keyed for plimsoll_core::Counter<DynLabels> {
    fn series(&self, tenant: &Tenant, labels: &DynLabels) -> SeriesKey {
        self.key(tenant, labels)
    }
}

impl Keyed for plimsoll_core::Gauge<DynLabels> {
    fn series(&self, tenant: &Tenant, labels: &DynLabels) -> SeriesKey {
        self.key(tenant, labels)
    }
}

impl Keyed for plimsoll_core::Histogram<DynLabels> {
    fn series(&self, tenant: &Tenant, labels: &DynLabels) -> SeriesKey {
        self.key(tenant, labels)
    }
}

/// Tenant slots a handle keeps series keys for; tenants past them (a
/// tenant bound set very high) are looked up at each use.
const MAX_SLOTS: usize = 4096;
/// Series keys are kept this many tenants at a time, allocated at first use.
const CHUNK: usize = 16;

/// The handle of one key: its family, its label values, and the series
/// key of each tenant it was used for (found once per tenant: no hashing
/// after that).
pub(crate) struct Handle<F> {
    family: F,
    labels: DynLabels,
    /// The guards of the labels whose value was made `__other__` (the
    /// series is shared with other keys): each use counts in each.
    folded: Box<[LabelGuard]>,
    telemetry: Telemetry,
    slots: Box<[OnceLock<Chunk>]>,
}

/// The series keys of `CHUNK` tenants.
type Chunk = Box<[OnceLock<SeriesKey>]>;

impl<F: Keyed> Handle<F> {
    pub(crate) fn new(
        family: F,
        labels: DynLabels,
        folded: Box<[LabelGuard]>,
        telemetry: &Telemetry,
    ) -> Self {
        let chunks = telemetry.tenant_slots().min(MAX_SLOTS).div_ceil(CHUNK);
        Self {
            family,
            labels,
            folded,
            telemetry: telemetry.clone(),
            slots: (0..chunks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Runs `f` with the series of the current request's tenant.
    #[inline]
    fn with_series<R>(&self, f: impl FnOnce(&F, &SeriesKey) -> R) -> R {
        if !self.folded.is_empty() {
            self.folded.iter().for_each(LabelGuard::count_overflow);
        }
        with_tenant(|tenant| {
            let find = || self.family.series(tenant, &self.labels);
            let key = match self.telemetry.tenant_slot(tenant) {
                Some(slot) if slot / CHUNK < self.slots.len() => {
                    let chunk = self.slots[slot / CHUNK]
                        .get_or_init(|| (0..CHUNK).map(|_| OnceLock::new()).collect());
                    *chunk[slot % CHUNK].get_or_init(find)
                }
                _ => find(),
            };
            f(&self.family, &key)
        })
    }
}

pub(crate) type CounterHandle = Handle<plimsoll_core::Counter<DynLabels>>;
pub(crate) type GaugeHandle = Handle<plimsoll_core::Gauge<DynLabels>>;
pub(crate) type HistogramHandle = Handle<plimsoll_core::Histogram<DynLabels>>;

impl CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        self.with_series(|counter, key| counter.inc_at(key, value));
    }

    /// Raises the series to `value` (never lowers it). A key past a
    /// bound shares an `__other__` series with others: a level cannot be
    /// set there, so nothing is recorded, and the use is counted as
    /// overflow.
    fn absolute(&self, value: u64) {
        if !self.folded.is_empty() {
            self.folded.iter().for_each(LabelGuard::count_overflow);
            return;
        }
        self.with_series(|counter, key| match key.is_overflow_series() {
            // Adds nothing; counts the overflow.
            true => counter.inc_at(key, 0),
            false => counter.raise_at(key, value),
        });
    }
}

impl GaugeFn for GaugeHandle {
    #[inline]
    fn increment(&self, value: f64) {
        self.with_series(|gauge, key| gauge.add_at(key, value));
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.with_series(|gauge, key| gauge.add_at(key, -value));
    }

    #[inline]
    fn set(&self, value: f64) {
        self.with_series(|gauge, key| gauge.set_at(key, value));
    }
}

impl HistogramFn for HistogramHandle {
    #[inline]
    fn record(&self, value: f64) {
        self.with_series(|histogram, key| histogram.observe_at(key, value, None));
    }
}
