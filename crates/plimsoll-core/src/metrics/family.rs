//! A family: its store of series, how it bounds, counts and writes them.

use super::*;

/// Static description of a family.
#[derive(Debug)]
pub(crate) struct Meta {
    /// Name without prefix and, for counters, without `_total`.
    pub(crate) name: String,
    /// The name as it appears in `plimsoll_cardinality_overflow_total{metric}`.
    pub(crate) exposed: String,
    pub(crate) help: String,
}

/// Ids of families: never reused, never 0, so that a [`SeriesKey`] can
/// never name a series of another family, live or dropped.
static NEXT_FAMILY_ID: AtomicU64 = AtomicU64::new(1);

/// A family: storage plus what is needed to bound, count and write it.
pub(crate) struct Family<L, C> {
    pub(super) id: u64,
    pub(crate) store: Store<L, C>,
    pub(crate) meta: Meta,
    /// The label names written, in `L`'s order (under the naming scheme).
    pub(crate) label_names: Box<[&'static str]>,
    pub(crate) shape: Shape,
    pub(super) tenants: Arc<TenantRegistry>,
    /// `None` only for the overflow family itself.
    pub(super) overflow_family: Option<Arc<OverflowFamily>>,
    pub(super) tenant_overflow: OnceLock<OverflowCounter>,
    pub(super) series_overflow: OnceLock<OverflowCounter>,
}

impl<L, C> fmt::Debug for Family<L, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.meta.exposed)
            .finish_non_exhaustive()
    }
}

impl<L: LabelSet, C: Cell> Family<L, C> {
    pub(crate) fn new(
        meta: Meta,
        label_names: Box<[&'static str]>,
        shape: Shape,
        max_series: usize,
        tenants: Arc<TenantRegistry>,
        overflow_family: Option<Arc<OverflowFamily>>,
    ) -> Self {
        debug_assert!(L::DYNAMIC || label_names.len() == L::NAMES.len());
        Self {
            id: NEXT_FAMILY_ID.fetch_add(1, Ordering::Relaxed),
            store: Store::new(max_series, label_names.len()),
            meta,
            label_names,
            shape,
            tenants,
            overflow_family,
            tenant_overflow: OnceLock::new(),
            series_overflow: OnceLock::new(),
        }
    }

    /// The overflow counter of one bound, created on first use with the
    /// label that `label` names.
    pub(super) fn overflow_counter<'a>(
        &'a self,
        which: &'a OnceLock<OverflowCounter>,
        label: impl FnOnce() -> (String, usize),
    ) -> Option<&'a OverflowCounter> {
        let family = self.overflow_family.as_ref()?;
        Some(which.get_or_init(|| {
            let (label, bound) = label();
            OverflowCounter::new(family, &self.meta.exposed, &label, bound)
        }))
    }

    /// Counts one observation in the overflow counters that `flags` name.
    #[inline]
    pub(super) fn count(&self, flags: Overflows) {
        if flags != Overflows::NONE {
            self.count_slow(flags);
        }
    }

    #[cold]
    pub(super) fn count_slow(&self, flags: Overflows) {
        if flags.tenant
            && let Some(c) = self.overflow_counter(&self.tenant_overflow, || {
                (crate::names::TENANT_LABEL.to_string(), self.tenants.limit())
            })
        {
            c.inc();
        }
        if flags.series
            && let Some(c) = self.overflow_counter(&self.series_overflow, || {
                (self.label_names.join(","), self.store.max_series())
            })
        {
            c.inc();
        }
    }

    /// Resolves the series of a key: its index and which bounds it overflowed.
    #[inline]
    pub(super) fn resolve<Q: LabelKey<L> + ?Sized>(
        &self,
        tenant: &Tenant,
        labels: &Q,
        make: impl Fn() -> C,
    ) -> (u32, Overflows) {
        let tenant: Cow<'_, Tenant> = self.tenants.rebind(tenant);
        let (index, series) = self.store.get_or_create(&tenant.label, labels, make);
        (
            index,
            Overflows {
                tenant: tenant.is_overflow(),
                series,
            },
        )
    }

    /// Resolves a key and counts the observation about to be recorded.
    #[inline]
    pub(super) fn record<Q: LabelKey<L> + ?Sized>(
        &self,
        tenant: &Tenant,
        labels: &Q,
        make: impl Fn() -> C,
    ) -> &C {
        let (index, flags) = self.resolve(tenant, labels, make);
        self.count(flags);
        &self.entry(index).cell
    }

    /// Writes the family; nothing when it has no series.
    pub(crate) fn encode(&self, enc: &mut Encoder<'_>) {
        if self.store.len() == 0 {
            return;
        }
        enc.header(&self.meta.name, &self.meta.help, C::KIND);
        let folds = Folds::of(&self.store);
        let mut labels = String::with_capacity(128);
        for (entry, folded) in folds.entries(&self.store) {
            enc.render_labels(&mut labels, entry.tenant.as_str(), |buf| {
                write_labels::<L>(buf, &self.label_names, entry.labels.as_ref())
            });
            match folded {
                None => entry
                    .cell
                    .encode(enc, &self.meta.name, &labels, &self.shape),
                Some(folded) => entry.cell.merged(&folded.cell).encode(
                    enc,
                    &self.meta.name,
                    &labels,
                    &self.shape,
                ),
            }
        }
    }

    #[inline]
    pub(super) fn entry(&self, index: u32) -> &Entry<L, C> {
        self.store.entry(index)
    }

    /// The key of a series, resolved (and created if the bound allows) now.
    #[inline]
    pub(super) fn key<Q: LabelKey<L> + ?Sized>(
        &self,
        tenant: &Tenant,
        labels: &Q,
        make: impl Fn() -> C,
    ) -> SeriesKey {
        let (index, overflows) = self.resolve(tenant, labels, make);
        SeriesKey {
            family: self.id,
            index,
            overflows,
        }
    }

    /// The entry of `key`; `None` for a key of another family. Family ids
    /// are never reused, so a key of this family names one of its series.
    #[inline]
    pub(super) fn entry_at(&self, key: &SeriesKey) -> Option<&Entry<L, C>> {
        if key.family != self.id {
            return None;
        }
        self.store.get(key.index)
    }

    /// The cell of `key`, with its observation counted in the overflow
    /// counters; `None` (and a debug assertion) for a key of another family.
    #[inline]
    pub(super) fn record_at(&self, key: &SeriesKey) -> Option<&C> {
        let entry = self.entry_at(key)?;
        self.count(key.overflows);
        Some(&entry.cell)
    }

    /// The series of a key as it is written (never creates): its cell,
    /// merged with the tenant's overflow series when its labels are all
    /// `__other__` (the two are written as one).
    pub(super) fn existing<Q: LabelKey<L> + ?Sized>(
        &self,
        tenant: &Tenant,
        labels: &Q,
    ) -> Option<Read<'_, C>> {
        let tenant = self.tenants.rebind(tenant);
        let overflow = || self.store.find_overflow(&tenant.label);
        match self.store.find(&tenant.label, labels) {
            Some(index) => {
                let entry = self.entry(index);
                if entry.folded
                    && let Some(other) = overflow()
                {
                    return Some(Read::Merged(entry.cell.merged(&self.entry(other).cell)));
                }
                Some(Read::One(&entry.cell))
            }
            None if crate::labels::all_other(&labels.to_labels(), self.label_names.len()) => {
                overflow().map(|other| Read::One(&self.entry(other).cell))
            }
            None => None,
        }
    }
}

pub(crate) fn write_labels<L: LabelSet>(
    buf: &mut String,
    names: &[&'static str],
    labels: Option<&L>,
) {
    let mut values = LabelValues::new(buf, names);
    match labels {
        Some(labels) => labels.write_values(&mut values),
        None => {
            for _ in names {
                values.push(OTHER);
            }
        }
    }
    values.finish();
}

/// Which bounds a series overflowed: each recording into it counts once in
/// the matching overflow counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Overflows {
    pub(super) tenant: bool,
    pub(super) series: bool,
}

impl Overflows {
    const NONE: Overflows = Overflows {
        tenant: false,
        series: false,
    };
}

/// Which entries of a store are written together: a tenant's overflow
/// series and its entry whose labels are all `__other__` (folded by label
/// guards) read the same, so they are written as one series.
#[derive(Debug, Default)]
struct Folds {
    /// Overflow series → the folded entry written with it.
    partner: std::collections::HashMap<u32, u32>,
    /// Folded entries written with their tenant's overflow series.
    skip: std::collections::HashSet<u32>,
}

impl Folds {
    fn of<L: LabelSet, C>(store: &Store<L, C>) -> Self {
        let mut folds = Folds::default();
        if !store.has_folded() {
            return folds;
        }
        let mut overflow = std::collections::HashMap::new();
        let mut folded = Vec::new();
        for (index, entry) in store.iter_indexed() {
            if entry.labels.is_none() {
                overflow.insert(entry.tenant.as_str(), index);
            } else if entry.folded {
                folded.push((entry.tenant.as_str(), index));
            }
        }
        for (tenant, index) in folded {
            if let Some(&series) = overflow.get(tenant) {
                folds.partner.insert(series, index);
                folds.skip.insert(index);
            }
        }
        folds
    }

    /// The entries of `store` to write, in creation order, each with the
    /// folded entry written together with it.
    fn entries<'a, L: LabelSet, C>(
        &'a self,
        store: &'a Store<L, C>,
    ) -> impl Iterator<Item = (&'a Entry<L, C>, Option<&'a Entry<L, C>>)> + 'a {
        store
            .iter_indexed()
            .filter(|(index, _)| !self.skip.contains(index))
            .map(|(index, entry)| {
                let folded = self.partner.get(&index).map(|f| store.entry(*f));
                (entry, folded)
            })
    }
}

/// A cell read back: one series', or two merged.
pub(super) enum Read<'a, C> {
    One(&'a C),
    Merged(C),
}

impl<C> std::ops::Deref for Read<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        match self {
            Read::One(cell) => cell,
            Read::Merged(cell) => cell,
        }
    }
}

/// Object-safe view of a family for the registry.
pub(crate) trait EncodeFamily: Send + Sync {
    fn encode(&self, enc: &mut Encoder<'_>);
    fn series_count(&self) -> usize;
}

impl<L: LabelSet, C: Cell> EncodeFamily for Family<L, C> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        Family::encode(self, enc)
    }
    fn series_count(&self) -> usize {
        self.store.len()
    }
}

/// Exposes the observation counts of a histogram as a counter family (see
/// [`Telemetry::register_count_view`](crate::Telemetry::register_count_view)).
pub(crate) struct CountView<L> {
    pub(crate) histogram: Arc<Family<L, HistogramCell>>,
    pub(crate) meta: Meta,
}

impl<L: LabelSet> EncodeFamily for CountView<L> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        let store = &self.histogram.store;
        if store.len() == 0 {
            return;
        }
        enc.header(&self.meta.name, &self.meta.help, MetricKind::Counter);
        let folds = Folds::of(store);
        let mut labels = String::with_capacity(128);
        for (entry, folded) in folds.entries(store) {
            enc.render_labels(&mut labels, entry.tenant.as_str(), |buf| {
                write_labels::<L>(buf, &self.histogram.label_names, entry.labels.as_ref())
            });
            let folded = folded.map_or(0, |f| f.cell.count());
            enc.sample_start(&self.meta.name, "_total", &labels, None);
            write_u64(enc.out, entry.cell.count() + folded);
            enc.out.push('\n');
        }
    }
    fn series_count(&self) -> usize {
        0
    }
}
