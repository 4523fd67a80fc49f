//! Tenant-scoped metric families: [`Counter`], [`Gauge`], [`Histogram`].
//!
//! A family is registered on a [`Telemetry`](crate::Telemetry) with a label
//! struct (see [`LabelSet`]); every recording call takes a [`Tenant`] and the
//! labels. The first observation for a key creates its series, unless the
//! family's series bound is reached, in which case it is recorded in the
//! tenant's overflow series (user labels `__other__`) and counted in
//! `plimsoll_cardinality_overflow_total`.
//!
//! # Example
//!
//! ```
//! use plimsoll_core::{Telemetry, impl_label_set};
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct Labels { queue: &'static str }
//! impl_label_set!(Labels { queue });
//!
//! let telemetry = Telemetry::builder().build().unwrap();
//! let jobs = telemetry.counter::<Labels>("jobs_processed", "Jobs processed.").unwrap();
//! let acme = telemetry.tenant("acme");
//! jobs.inc(&acme, &Labels { queue: "email" });
//! assert_eq!(jobs.get(&acme, &Labels { queue: "email" }), 1);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::encoding::{Encoder, Format, MetricKind, write_f64, write_u64};
use crate::labels::{LabelKey, LabelSet, LabelValues};
use crate::names::{OTHER, SYSTEM};
use crate::store::{Entry, Store};
use crate::tenant::{Tenant, TenantLabel, TenantRegistry};
use crate::trace::TraceRef;

/// An exemplar kept on a histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) value: f64,
    /// Since the Unix epoch.
    pub(crate) timestamp: Duration,
}

/// The value of one series; how it is written.
pub(crate) trait Cell: Send + Sync + 'static {
    const KIND: MetricKind;
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, labels: &str, shape: &Shape);
}

/// Per-family data a cell needs to be created and written.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// Histogram bucket upper bounds, without `+Inf`.
    pub(crate) bounds: Arc<[f64]>,
    /// `le` values of the buckets, `+Inf` last.
    pub(crate) le: Box<[String]>,
}

#[derive(Debug, Default)]
pub(crate) struct CounterCell(AtomicU64);

impl Cell for CounterCell {
    const KIND: MetricKind = MetricKind::Counter;
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, labels: &str, _: &Shape) {
        enc.sample_start(name, "_total", labels, None);
        write_u64(enc.out, self.0.load(Ordering::Relaxed));
        enc.out.push('\n');
    }
}

#[derive(Debug, Default)]
pub(crate) struct GaugeCell(AtomicU64);

impl GaugeCell {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    #[inline]
    fn add(&self, v: f64) {
        add_f64(&self.0, v);
    }
}

#[inline]
fn add_f64(cell: &AtomicU64, v: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(current) + v).to_bits();
        match cell.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

impl Cell for GaugeCell {
    const KIND: MetricKind = MetricKind::Gauge;
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, labels: &str, _: &Shape) {
        enc.sample_start(name, "", labels, None);
        write_f64(enc.out, self.get());
        enc.out.push('\n');
    }
}

/// The sum (as `f64` bits, first, so that it shares a cache line with the
/// low buckets) and the buckets (not cumulative; the last is `+Inf`). The
/// count is the sum of the buckets, so the exposition is always consistent.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    sum_and_buckets: Counts,
    exemplars: Mutex<Option<Box<[Option<Exemplar>]>>>,
}

/// Up to this many words (sum + buckets) live inline in the series entry,
/// next to its key, which saves a cache miss per observation; the default
/// layout (13 bounds + `+Inf` + sum = 15) fits.
const INLINE_WORDS: usize = 16;

#[derive(Debug)]
enum Counts {
    Inline(u8, [AtomicU64; INLINE_WORDS]),
    Heap(Box<[AtomicU64]>),
}

impl HistogramCell {
    fn new(bounds: usize) -> Self {
        let words = bounds + 2;
        let sum_and_buckets = if words <= INLINE_WORDS {
            Counts::Inline(words as u8, std::array::from_fn(|_| AtomicU64::new(0)))
        } else {
            Counts::Heap((0..words).map(|_| AtomicU64::new(0)).collect())
        };
        Self {
            sum_and_buckets,
            exemplars: Mutex::new(None),
        }
    }

    #[inline]
    fn words(&self) -> &[AtomicU64] {
        match &self.sum_and_buckets {
            Counts::Inline(len, words) => &words[..usize::from(*len)],
            Counts::Heap(words) => words,
        }
    }

    #[inline]
    fn sum(&self) -> &AtomicU64 {
        &self.words()[0]
    }

    #[inline]
    fn buckets(&self) -> &[AtomicU64] {
        &self.words()[1..]
    }

    #[inline]
    fn observe(&self, bounds: &[f64], value: f64, trace: Option<TraceRef>) {
        let bucket = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.buckets()[bucket].fetch_add(1, Ordering::Relaxed);
        if !value.is_nan() {
            add_f64(self.sum(), value);
        }
        if let Some(trace) = trace {
            self.keep_exemplar(bucket, value, trace);
        }
    }

    /// Keeps the latest exemplar of a bucket; skipped rather than waited for
    /// when a scrape or another recorder holds the lock.
    #[inline(never)]
    fn keep_exemplar(&self, bucket: usize, value: f64, trace: TraceRef) {
        let Ok(mut slots) = self.exemplars.try_lock() else {
            return;
        };
        let slots = slots.get_or_insert_with(|| vec![None; self.buckets().len()].into());
        slots[bucket] = Some(Exemplar {
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            value,
            timestamp: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        });
    }

    fn count(&self) -> u64 {
        self.buckets()
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }
}

impl Cell for HistogramCell {
    const KIND: MetricKind = MetricKind::Histogram;
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, labels: &str, shape: &Shape) {
        let exemplars = if enc.format == Format::OpenMetrics {
            self.exemplars
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            None
        };
        let mut cumulative = 0;
        for (i, bucket) in self.buckets().iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            enc.sample_start(name, "_bucket", labels, Some(&shape.le[i]));
            write_u64(enc.out, cumulative);
            if let Some(exemplar) = exemplars.as_ref().and_then(|e| e[i].as_ref()) {
                enc.exemplar(exemplar);
            }
            enc.out.push('\n');
        }
        let sum = f64::from_bits(self.sum().load(Ordering::Relaxed));
        enc.sum_and_count(name, labels, sum, cumulative);
    }
}

/// Labels of `plimsoll_cardinality_overflow_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct OverflowLabels {
    pub(crate) metric: Arc<str>,
    pub(crate) label: Arc<str>,
}
crate::impl_label_set!(OverflowLabels { metric, label });

pub(crate) type OverflowFamily = Family<OverflowLabels, CounterCell>;

/// One series of `plimsoll_cardinality_overflow_total`, and the warning
/// logged when its bound is reached.
#[derive(Clone)]
pub(crate) struct OverflowCounter {
    family: Arc<OverflowFamily>,
    index: u32,
    warning: Arc<BoundWarning>,
}

/// How often a bound that keeps being reached is logged again.
pub const BOUND_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Logs a `tracing` warning the first time a bound is reached, then at
/// most once per [`BOUND_WARNING_INTERVAL`].
#[derive(Debug)]
struct BoundWarning {
    bound: usize,
    /// Milliseconds since [`warning_epoch`] before which nothing is logged
    /// (0: never logged).
    next: AtomicU64,
}

fn warning_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl BoundWarning {
    #[cold]
    fn reached(&self, labels: &OverflowLabels) {
        let now = warning_epoch().elapsed().as_millis() as u64 + 1;
        let next = self.next.load(Ordering::Relaxed);
        if now < next {
            return;
        }
        let later = now + BOUND_WARNING_INTERVAL.as_millis() as u64;
        if self
            .next
            .compare_exchange(next, later, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                target: "plimsoll",
                metric = &*labels.metric,
                label = &*labels.label,
                bound = self.bound,
                "cardinality bound reached: further values are recorded as __other__ \
                 and counted in plimsoll_cardinality_overflow_total"
            );
        }
    }
}

impl fmt::Debug for OverflowCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels = self.family.store.entry(self.index).labels.as_ref();
        f.debug_struct("OverflowCounter")
            .field("labels", &labels)
            .finish()
    }
}

impl OverflowCounter {
    pub(crate) fn new(
        family: &Arc<OverflowFamily>,
        metric: &str,
        label: &str,
        bound: usize,
    ) -> Self {
        let labels = OverflowLabels {
            metric: Arc::from(metric),
            label: Arc::from(label),
        };
        let (index, _) =
            family
                .store
                .get_or_create(&TenantLabel::Static(SYSTEM), &labels, CounterCell::default);
        Self {
            family: family.clone(),
            index,
            warning: Arc::new(BoundWarning {
                bound,
                next: AtomicU64::new(0),
            }),
        }
    }

    #[inline]
    pub(crate) fn inc(&self) {
        let entry = self.family.store.entry(self.index);
        entry.cell.0.fetch_add(1, Ordering::Relaxed);
        if let Some(labels) = &entry.labels {
            self.warning.reached(labels);
        }
    }
}

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
    id: u64,
    pub(crate) store: Store<L, C>,
    pub(crate) meta: Meta,
    /// The label names written, in `L`'s order (under the naming scheme).
    pub(crate) label_names: Box<[&'static str]>,
    pub(crate) shape: Shape,
    tenants: Arc<TenantRegistry>,
    /// `None` only for the overflow family itself.
    overflow_family: Option<Arc<OverflowFamily>>,
    tenant_overflow: OnceLock<OverflowCounter>,
    series_overflow: OnceLock<OverflowCounter>,
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
        debug_assert_eq!(label_names.len(), L::NAMES.len());
        Self {
            id: NEXT_FAMILY_ID.fetch_add(1, Ordering::Relaxed),
            store: Store::new(max_series),
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
    fn overflow_counter<'a>(
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
    fn count(&self, flags: Overflows) {
        if flags != Overflows::NONE {
            self.count_slow(flags);
        }
    }

    #[cold]
    fn count_slow(&self, flags: Overflows) {
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
    fn resolve<Q: LabelKey<L> + ?Sized>(
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
    fn record<Q: LabelKey<L> + ?Sized>(
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
        let mut labels = String::with_capacity(128);
        for entry in self.store.iter() {
            enc.render_labels(&mut labels, entry.tenant.as_str(), |buf| {
                write_labels::<L>(buf, &self.label_names, entry.labels.as_ref())
            });
            entry
                .cell
                .encode(enc, &self.meta.name, &labels, &self.shape);
        }
    }

    #[inline]
    fn entry(&self, index: u32) -> &Entry<L, C> {
        self.store.entry(index)
    }

    /// The key of a series, resolved (and created if the bound allows) now.
    #[inline]
    fn key<Q: LabelKey<L> + ?Sized>(
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
    fn entry_at(&self, key: &SeriesKey) -> Option<&Entry<L, C>> {
        if key.family != self.id {
            return None;
        }
        self.store.get(key.index)
    }

    /// The cell of `key`, with its observation counted in the overflow
    /// counters; `None` (and a debug assertion) for a key of another family.
    #[inline]
    fn record_at(&self, key: &SeriesKey) -> Option<&C> {
        let entry = self.entry_at(key)?;
        self.count(key.overflows);
        Some(&entry.cell)
    }

    /// The series of a key if it exists (never creates).
    fn existing<Q: LabelKey<L> + ?Sized>(&self, tenant: &Tenant, labels: &Q) -> Option<&C> {
        let tenant = self.tenants.rebind(tenant);
        self.store
            .find(&tenant.label, labels)
            .map(|i| &self.entry(i).cell)
    }
}

fn write_labels<L: LabelSet>(buf: &mut String, names: &[&'static str], labels: Option<&L>) {
    let mut values = LabelValues::new(buf, names);
    match labels {
        Some(labels) => labels.write_values(&mut values),
        None => {
            for _ in L::NAMES {
                values.push(OTHER);
            }
        }
    }
    values.finish();
}

/// Which bounds a series overflowed: each recording into it counts once in
/// the matching overflow counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Overflows {
    tenant: bool,
    series: bool,
}

impl Overflows {
    const NONE: Overflows = Overflows {
        tenant: false,
        series: false,
    };
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
        let mut labels = String::with_capacity(128);
        for entry in store.iter() {
            enc.render_labels(&mut labels, entry.tenant.as_str(), |buf| {
                write_labels::<L>(buf, &self.histogram.label_names, entry.labels.as_ref())
            });
            enc.sample_start(&self.meta.name, "_total", &labels, None);
            write_u64(enc.out, entry.cell.count());
            enc.out.push('\n');
        }
    }
    fn series_count(&self) -> usize {
        0
    }
}

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

/// One series as the read API sees it: its tenant and labels.
#[derive(Debug)]
pub struct SeriesRef<'a, L> {
    tenant: &'a str,
    labels: Option<&'a L>,
}

impl<'a, L> SeriesRef<'a, L> {
    /// The `tenant_id` label value.
    #[inline]
    pub fn tenant(&self) -> &'a str {
        self.tenant
    }

    /// The user labels; `None` for a tenant's overflow series (its labels
    /// are all `__other__`: it stands for every label set past the bound).
    #[inline]
    pub fn labels(&self) -> Option<&'a L> {
        self.labels
    }
}

impl<L: LabelSet, C: Cell> Family<L, C> {
    /// Calls `f` with every series and its cell, in creation order.
    fn for_each_cell(&self, mut f: impl FnMut(SeriesRef<'_, L>, &C)) {
        for entry in self.store.iter() {
            f(
                SeriesRef {
                    tenant: entry.tenant.as_str(),
                    labels: entry.labels.as_ref(),
                },
                &entry.cell,
            );
        }
    }
}

/// The counts of a histogram series (or of several, summed): what the
/// read API returns.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    bounds: Arc<[f64]>,
    /// Per bucket, not cumulative; the last is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl HistogramSnapshot {
    /// An empty snapshot over `bounds` (upper bounds without `+Inf`).
    pub fn empty(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.into(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Records one observation (for snapshots built by hand, e.g. for
    /// scrape-time histograms).
    pub fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        if !value.is_nan() {
            self.sum += value;
        }
    }

    fn of(cell: &HistogramCell, bounds: &Arc<[f64]>) -> Self {
        Self {
            bounds: bounds.clone(),
            counts: cell
                .buckets()
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: f64::from_bits(cell.sum().load(Ordering::Relaxed)),
        }
    }

    /// Adds another snapshot over the same bounds; `false` (and nothing
    /// added) when the bounds differ.
    pub fn merge(&mut self, other: &HistogramSnapshot) -> bool {
        if self.bounds != other.bounds {
            return false;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        true
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The bucket upper bounds, without `+Inf`.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut cumulative = 0;
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(move |(bound, count)| {
                cumulative += count;
                (bound, cumulative)
            })
    }

    /// Observations at most `bound`, when `bound` is one of the bucket
    /// bounds (`None` otherwise: the histogram cannot tell).
    pub fn count_le(&self, bound: f64) -> Option<u64> {
        if bound == f64::INFINITY {
            return Some(self.count());
        }
        let at = self.bounds.iter().position(|b| *b == bound)?;
        Some(self.counts[..=at].iter().sum())
    }

    /// Per-bucket counts (not cumulative), `+Inf` last.
    pub(crate) fn counts(&self) -> &[u64] {
        &self.counts
    }
}

/// A tenant-scoped counter family. Get one from
/// [`Telemetry::counter`](crate::Telemetry::counter).
pub struct Counter<L: LabelSet = ()> {
    pub(crate) family: Arc<Family<L, CounterCell>>,
}

/// One series of a [`Counter`], looked up once; recording through it skips the lookup.
pub struct CounterSeries<L: LabelSet = ()> {
    family: Arc<Family<L, CounterCell>>,
    index: u32,
    overflows: Overflows,
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
    family: u64,
    index: u32,
    overflows: Overflows,
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
    family: Arc<Family<L, GaugeCell>>,
    index: u32,
    overflows: Overflows,
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
            .map_or(0.0, GaugeCell::get)
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

    /// The tenant of the series of `key`, as recorded (for a key of
    /// another family: `None`). Recording with it reaches the same tenant's
    /// series in every family of this `Telemetry`.
    pub fn tenant_at(&self, key: &SeriesKey) -> Option<Tenant> {
        let entry = self.family.entry_at(key)?;
        Some(self.family.tenants.tenant_of(&entry.tenant))
    }

    /// The user labels of the series of `key`; `None` for an overflow
    /// series (its labels are `__other__`) or a key of another family.
    #[inline]
    pub fn labels_at(&self, key: &SeriesKey) -> Option<&L> {
        self.family.entry_at(key)?.labels.as_ref()
    }

    /// Adds `value` to the series of `key` (from [`key`](Gauge::key) of this family).
    #[inline]
    pub fn add_at(&self, key: &SeriesKey, value: f64) {
        if let Some(cell) = self.family.record_at(key) {
            cell.add(value);
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
    fn cell(&self) -> &GaugeCell {
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
    family: Arc<Family<L, HistogramCell>>,
    index: u32,
    overflows: Overflows,
}

family_common!(Histogram, HistogramSeries);

impl<L: LabelSet> Histogram<L> {
    #[inline]
    fn make(&self) -> impl Fn() -> HistogramCell + '_ {
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
            .map_or(0, HistogramCell::count)
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
        Some(HistogramSnapshot::of(cell, &self.family.shape.bounds))
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
    series: HistogramSeries<L>,
    start: crate::clock::Stamp,
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
