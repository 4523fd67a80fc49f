//! The public handles: families, series, series keys, the timer.

use super::*;

macro_rules! family_common {
    ($ty:ident, $series:ident) => {
        impl<L: LabelSet> Clone for $ty<L> {
            fn clone(&self) -> Self {
                Self {
                    family: self.family.clone(),
                }
            }
        }

        impl<L: LabelSet> fmt::Debug for $ty<L> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("name", &self.family.meta.exposed)
                    .field("series", &self.family.store.len())
                    .finish()
            }
        }

        impl<L: LabelSet> $ty<L> {
            /// The number of series, overflow series included.
            pub fn series_count(&self) -> usize {
                self.family.store.len()
            }

            /// The tenant of the series of `key`, as recorded (for a key of
            /// another family: `None`). Recording with it reaches the same
            /// tenant's series in every family of this `Telemetry`.
            pub fn tenant_at(&self, key: &SeriesKey) -> Option<Tenant> {
                let entry = self.family.entry_at(key)?;
                Some(self.family.tenants.tenant_of(&entry.tenant))
            }

            /// The user labels of the series of `key`; `None` for an
            /// overflow series (its labels are `__other__`) or a key of
            /// another family.
            #[inline]
            pub fn labels_at(&self, key: &SeriesKey) -> Option<&L> {
                self.family.entry_at(key)?.labels.as_ref()
            }
        }

        impl<L: LabelSet> Clone for $series<L> {
            fn clone(&self) -> Self {
                Self {
                    family: self.family.clone(),
                    index: self.index,
                    overflows: self.overflows.clone(),
                }
            }
        }

        impl<L: LabelSet> fmt::Debug for $series<L> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let entry = self.family.entry(self.index);
                f.debug_struct(stringify!($series))
                    .field("name", &self.family.meta.exposed)
                    .field("tenant", &entry.tenant.as_str())
                    .field("labels", &entry.labels)
                    .finish()
            }
        }
    };
}

/// A tenant-scoped counter family. Get one from
/// [`Telemetry::counter`](crate::Telemetry::counter).
pub struct Counter<L: LabelSet = ()> {
    pub(crate) family: Arc<Family<L, CounterCell>>,
}

/// One series of a [`Counter`], looked up once; recording through it skips the lookup.
pub struct CounterSeries<L: LabelSet = ()> {
    pub(super) family: Arc<Family<L, CounterCell>>,
    pub(super) index: u32,
    pub(super) overflows: Overflows,
}

family_common!(Counter, CounterSeries);

impl<L: LabelSet> Counter<L> {
    /// Adds one.
    #[inline]
    pub fn inc(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) {
        self.inc_by(tenant, labels, 1);
    }

    /// Adds `value`.
    #[inline]
    pub fn inc_by(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized), value: u64) {
        self.family
            .record(tenant, labels, CounterCell::default)
            .0
            .fetch_add(value, Ordering::Relaxed);
    }

    /// The current value of a series; 0 when it does not exist (never creates it).
    pub fn get(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> u64 {
        self.family
            .existing(tenant, labels)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }

    /// The key of a series (created now if the bound allows), for
    /// [`inc_at`](Counter::inc_at): a lookup done once, held without a
    /// reference count.
    #[inline]
    pub fn key(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> SeriesKey {
        self.family.key(tenant, labels, CounterCell::default)
    }

    /// Adds `value` to the series of `key` (from [`key`](Counter::key) of
    /// this family; a key of another family does nothing).
    #[inline]
    pub fn inc_at(&self, key: &SeriesKey, value: u64) {
        if let Some(cell) = self.family.record_at(key) {
            cell.0.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// Raises the series of `key` to `value` if it is below (a counter
    /// mirrored from a total kept elsewhere: it never goes down). One
    /// atomic step, whoever else raises or adds to it meanwhile.
    #[inline]
    pub fn raise_at(&self, key: &SeriesKey, value: u64) {
        if let Some(cell) = self.family.record_at(key) {
            cell.0.fetch_max(value, Ordering::Relaxed);
        }
    }

    /// Calls `f` with every series and its value.
    pub fn for_each(&self, mut f: impl FnMut(SeriesRef<'_, L>, u64)) {
        self.family
            .for_each_cell(|series, cell| f(series, cell.0.load(Ordering::Relaxed)));
    }

    /// The sum over the series `select` picks (a label selector: by
    /// tenant, by any labels).
    ///
    /// ```
    /// # use plimsoll_core::{Telemetry, impl_label_set};
    /// # #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    /// # struct Status { code: u16 }
    /// # impl_label_set!(Status { code });
    /// let telemetry = Telemetry::builder().build().unwrap();
    /// let requests = telemetry.counter::<Status>("requests", "Requests.").unwrap();
    /// for (tenant, code) in [("a", 200), ("a", 503), ("b", 500), ("b", 200)] {
    ///     requests.inc(&telemetry.tenant(tenant), &Status { code });
    /// }
    /// let errors = requests.total(|s| s.labels().is_some_and(|l| l.code >= 500));
    /// assert_eq!(errors, 2);
    /// assert_eq!(requests.total(|s| s.tenant() == "a"), 2);
    /// ```
    pub fn total(&self, mut select: impl FnMut(&SeriesRef<'_, L>) -> bool) -> u64 {
        let mut total = 0;
        self.for_each(|series, value| {
            if select(&series) {
                total += value;
            }
        });
        total
    }

    /// A handle to one series, created now if the bound allows.
    pub fn series(
        &self,
        tenant: &Tenant,
        labels: &(impl LabelKey<L> + ?Sized),
    ) -> CounterSeries<L> {
        let (index, overflows) = self.family.resolve(tenant, labels, CounterCell::default);
        CounterSeries {
            family: self.family.clone(),
            index,
            overflows,
        }
    }
}

impl<L: LabelSet> CounterSeries<L> {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `value`.
    #[inline]
    pub fn inc_by(&self, value: u64) {
        self.family.count(self.overflows);
        self.family
            .entry(self.index)
            .cell
            .0
            .fetch_add(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.family.entry(self.index).cell.0.load(Ordering::Relaxed)
    }
}

/// A series of one family, resolved once: recording through it with the
/// family's `*_at` methods skips the lookup without holding a reference
/// count.
///
/// A key names its family by an id that is never reused, not by address:
/// used with another family, or with a family registered after its own was
/// dropped, it is ignored (reads return `None`, records do nothing). It
/// can never reach another family's series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesKey {
    pub(super) family: u64,
    pub(super) index: u32,
    pub(super) overflows: Overflows,
}

impl SeriesKey {
    /// Whether the key is its tenant's overflow series (the family's series
    /// bound was reached): its user labels are `__other__`, so it stands
    /// for many label sets.
    #[inline]
    pub fn is_overflow_series(&self) -> bool {
        self.overflows.series
    }

    /// The position of the series in its family: with the family, it names
    /// the series for as long as the family lives (series are never removed).
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// A tenant-scoped gauge family (an `f64` that goes up and down). Get one
/// from [`Telemetry::gauge`](crate::Telemetry::gauge).
pub struct Gauge<L: LabelSet = ()> {
    pub(crate) family: Arc<Family<L, GaugeCell>>,
}

/// One series of a [`Gauge`].
pub struct GaugeSeries<L: LabelSet = ()> {
    pub(super) family: Arc<Family<L, GaugeCell>>,
    pub(super) index: u32,
    pub(super) overflows: Overflows,
}

family_common!(Gauge, GaugeSeries);

impl<L: LabelSet> Gauge<L> {
    /// Sets the value.
    #[inline]
    pub fn set(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized), value: f64) {
        self.family
            .record(tenant, labels, GaugeCell::default)
            .set(value);
    }

    /// Adds `value` (which may be negative).
    #[inline]
    pub fn add(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized), value: f64) {
        self.family
            .record(tenant, labels, GaugeCell::default)
            .add(value);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) {
        self.add(tenant, labels, 1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) {
        self.add(tenant, labels, -1.0);
    }

    /// The current value of a series; 0 when it does not exist (never creates it).
    pub fn get(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> f64 {
        self.family
            .existing(tenant, labels)
            .map_or(0.0, |c| c.get())
    }

    /// Calls `f` with every series and its value.
    pub fn for_each(&self, mut f: impl FnMut(SeriesRef<'_, L>, f64)) {
        self.family
            .for_each_cell(|series, cell| f(series, cell.get()));
    }

    /// The key of one series, created now if the bound allows.
    pub fn key(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> SeriesKey {
        self.family.key(tenant, labels, GaugeCell::default)
    }

    /// Adds `value` to the series of `key` (from [`key`](Gauge::key) of this family).
    #[inline]
    pub fn add_at(&self, key: &SeriesKey, value: f64) {
        if let Some(cell) = self.family.record_at(key) {
            cell.add(value);
        }
    }

    /// Sets the series of `key` (from [`key`](Gauge::key) of this family).
    #[inline]
    pub fn set_at(&self, key: &SeriesKey, value: f64) {
        if let Some(cell) = self.family.record_at(key) {
            cell.set(value);
        }
    }

    /// A handle to one series, created now if the bound allows.
    pub fn series(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> GaugeSeries<L> {
        let (index, overflows) = self.family.resolve(tenant, labels, GaugeCell::default);
        GaugeSeries {
            family: self.family.clone(),
            index,
            overflows,
        }
    }
}

impl<L: LabelSet> GaugeSeries<L> {
    pub(super) fn cell(&self) -> &GaugeCell {
        &self.family.entry(self.index).cell
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.family.count(self.overflows);
        self.cell().set(value);
    }

    /// Adds `value` (which may be negative).
    #[inline]
    pub fn add(&self, value: f64) {
        self.family.count(self.overflows);
        self.cell().add(value);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.cell().get()
    }
}

/// A tenant-scoped histogram family. Get one from
/// [`Telemetry::histogram`](crate::Telemetry::histogram).
///
/// Observations of `NaN` land in the `+Inf` bucket and leave the sum alone.
pub struct Histogram<L: LabelSet = ()> {
    pub(crate) family: Arc<Family<L, HistogramCell>>,
}

/// One series of a [`Histogram`].
pub struct HistogramSeries<L: LabelSet = ()> {
    pub(super) family: Arc<Family<L, HistogramCell>>,
    pub(super) index: u32,
    pub(super) overflows: Overflows,
}

family_common!(Histogram, HistogramSeries);

impl<L: LabelSet> Histogram<L> {
    #[inline]
    pub(super) fn make(&self) -> impl Fn() -> HistogramCell + '_ {
        || HistogramCell::new(self.family.shape.bounds.len())
    }

    /// Records one observation.
    #[inline]
    pub fn observe(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized), value: f64) {
        self.observe_with_exemplar(tenant, labels, value, None);
    }

    /// Records one observation and, when `trace` is given, keeps it as the
    /// bucket's exemplar (shown in OpenMetrics).
    #[inline]
    pub fn observe_with_exemplar(
        &self,
        tenant: &Tenant,
        labels: &(impl LabelKey<L> + ?Sized),
        value: f64,
        trace: Option<TraceRef>,
    ) {
        self.family.record(tenant, labels, self.make()).observe(
            &self.family.shape.bounds,
            value,
            trace,
        );
    }

    /// Starts a timer that records the elapsed seconds when dropped.
    pub fn start_timer(
        &self,
        tenant: &Tenant,
        labels: &(impl LabelKey<L> + ?Sized),
    ) -> HistogramTimer<L> {
        HistogramTimer {
            series: self.series(tenant, labels),
            start: crate::clock::Stamp::now(),
        }
    }

    /// The number of observations of a series; 0 when it does not exist.
    pub fn count(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> u64 {
        self.family
            .existing(tenant, labels)
            .map_or(0, |c| c.count())
    }

    /// The sum of observations of a series; 0 when it does not exist.
    pub fn sum(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> f64 {
        self.family
            .existing(tenant, labels)
            .map_or(0.0, |c| f64::from_bits(c.sum().load(Ordering::Relaxed)))
    }

    /// The bucket upper bounds, without `+Inf`.
    pub fn bounds(&self) -> &[f64] {
        &self.family.shape.bounds
    }

    /// The counts of a series; `None` when it does not exist (never creates it).
    pub fn snapshot(
        &self,
        tenant: &Tenant,
        labels: &(impl LabelKey<L> + ?Sized),
    ) -> Option<HistogramSnapshot> {
        let cell = self.family.existing(tenant, labels)?;
        Some(HistogramSnapshot::of(&cell, &self.family.shape.bounds))
    }

    /// Calls `f` with every series and its counts.
    pub fn for_each(&self, mut f: impl FnMut(SeriesRef<'_, L>, &HistogramSnapshot)) {
        let bounds = &self.family.shape.bounds;
        self.family.for_each_cell(|series, cell| {
            f(series, &HistogramSnapshot::of(cell, bounds));
        });
    }

    /// The counts summed over the series `select` picks (a label selector).
    pub fn total(&self, mut select: impl FnMut(&SeriesRef<'_, L>) -> bool) -> HistogramSnapshot {
        let mut total = HistogramSnapshot::empty(&self.family.shape.bounds);
        self.family.for_each_cell(|series, cell| {
            if select(&series) {
                for (sum, bucket) in total.counts.iter_mut().zip(cell.buckets()) {
                    *sum += bucket.load(Ordering::Relaxed);
                }
                total.sum += f64::from_bits(cell.sum().load(Ordering::Relaxed));
            }
        });
        total
    }

    /// The key of a series (created now if the bound allows), for
    /// [`observe_at`](Histogram::observe_at): a lookup done once, held
    /// without a reference count.
    #[inline]
    pub fn key(&self, tenant: &Tenant, labels: &(impl LabelKey<L> + ?Sized)) -> SeriesKey {
        self.family.key(tenant, labels, self.make())
    }

    /// Records one observation (and its exemplar) into the series of `key`
    /// (from [`key`](Histogram::key) of this family).
    #[inline]
    pub fn observe_at(&self, key: &SeriesKey, value: f64, trace: Option<TraceRef>) {
        if let Some(cell) = self.family.record_at(key) {
            cell.observe(&self.family.shape.bounds, value, trace);
        }
    }

    /// A handle to one series, created now if the bound allows.
    pub fn series(
        &self,
        tenant: &Tenant,
        labels: &(impl LabelKey<L> + ?Sized),
    ) -> HistogramSeries<L> {
        let (index, overflows) = self.family.resolve(tenant, labels, self.make());
        HistogramSeries {
            family: self.family.clone(),
            index,
            overflows,
        }
    }
}

impl<L: LabelSet> HistogramSeries<L> {
    /// Records one observation.
    #[inline]
    pub fn observe(&self, value: f64) {
        self.observe_with_exemplar(value, None);
    }

    /// Records one observation with an optional exemplar.
    #[inline]
    pub fn observe_with_exemplar(&self, value: f64, trace: Option<TraceRef>) {
        self.family.count(self.overflows);
        self.family
            .entry(self.index)
            .cell
            .observe(&self.family.shape.bounds, value, trace);
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.family.entry(self.index).cell.count()
    }
}

/// Records the time since it was started into a histogram series when dropped.
#[derive(Debug)]
pub struct HistogramTimer<L: LabelSet = ()> {
    pub(super) series: HistogramSeries<L>,
    pub(super) start: crate::clock::Stamp,
}

impl<L: LabelSet> HistogramTimer<L> {
    /// Records now and consumes the timer; returns the elapsed time.
    pub fn observe(self) -> Duration {
        self.start.elapsed()
    }
}

impl<L: LabelSet> Drop for HistogramTimer<L> {
    fn drop(&mut self) {
        self.series.observe(self.start.elapsed_seconds());
    }
}
