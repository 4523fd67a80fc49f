//! The value cells of series: counter, gauge, histogram (with exemplars).

use super::*;

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
    /// A cell holding the sum of `self` and `other`, to write two series
    /// whose labels read the same as one.
    fn merged(&self, other: &Self) -> Self;
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
pub(crate) struct CounterCell(pub(super) AtomicU64);

impl Cell for CounterCell {
    const KIND: MetricKind = MetricKind::Counter;
    fn merged(&self, other: &Self) -> Self {
        let sum = self.0.load(Ordering::Relaxed) + other.0.load(Ordering::Relaxed);
        CounterCell(AtomicU64::new(sum))
    }
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, labels: &str, _: &Shape) {
        enc.sample_start(name, "_total", labels, None);
        write_u64(enc.out, self.0.load(Ordering::Relaxed));
        enc.out.push('\n');
    }
}

#[derive(Debug, Default)]
pub(crate) struct GaugeCell(AtomicU64);

impl GaugeCell {
    pub(super) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    pub(super) fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    #[inline]
    pub(super) fn add(&self, v: f64) {
        add_f64(&self.0, v);
    }
}

#[inline]
pub(super) fn add_f64(cell: &AtomicU64, v: f64) {
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
    fn merged(&self, other: &Self) -> Self {
        let sum = GaugeCell::default();
        sum.set(self.get() + other.get());
        sum
    }
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
    pub(super) exemplars: Mutex<Option<Box<[Option<Exemplar>]>>>,
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
    pub(super) fn new(bounds: usize) -> Self {
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
    pub(super) fn words(&self) -> &[AtomicU64] {
        match &self.sum_and_buckets {
            Counts::Inline(len, words) => &words[..usize::from(*len)],
            Counts::Heap(words) => words,
        }
    }

    #[inline]
    pub(super) fn sum(&self) -> &AtomicU64 {
        &self.words()[0]
    }

    #[inline]
    pub(super) fn buckets(&self) -> &[AtomicU64] {
        &self.words()[1..]
    }

    #[inline]
    pub(super) fn observe(&self, bounds: &[f64], value: f64, trace: Option<TraceRef>) {
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
    pub(super) fn keep_exemplar(&self, bucket: usize, value: f64, trace: TraceRef) {
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

    pub(super) fn count(&self) -> u64 {
        self.buckets()
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }
}

/// Writes a histogram series: its cumulative buckets (from per-bucket
/// `counts`, `+Inf` last) with their exemplars, then its sum and count.
pub(crate) fn write_histogram(
    enc: &mut Encoder<'_>,
    name: &str,
    labels: &str,
    shape: &Shape,
    counts: impl Iterator<Item = u64>,
    exemplars: Option<&[Option<Exemplar>]>,
    sum: f64,
) {
    let mut cumulative = 0;
    for (i, count) in counts.enumerate() {
        cumulative += count;
        enc.sample_start(name, "_bucket", labels, Some(&shape.le[i]));
        write_u64(enc.out, cumulative);
        if let Some(exemplar) = exemplars.and_then(|e| e[i].as_ref()) {
            enc.exemplar(exemplar);
        }
        enc.out.push('\n');
    }
    enc.sum_and_count(name, labels, &shape.bounds, sum, cumulative);
}

impl Cell for HistogramCell {
    const KIND: MetricKind = MetricKind::Histogram;
    fn merged(&self, other: &Self) -> Self {
        let sum = HistogramCell::new(self.buckets().len() - 1);
        for (to, (a, b)) in sum
            .buckets()
            .iter()
            .zip(self.buckets().iter().zip(other.buckets()))
        {
            to.store(
                a.load(Ordering::Relaxed) + b.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        let total = f64::from_bits(self.sum().load(Ordering::Relaxed))
            + f64::from_bits(other.sum().load(Ordering::Relaxed));
        sum.sum().store(total.to_bits(), Ordering::Relaxed);
        let exemplars = |cell: &HistogramCell| {
            cell.exemplars
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        };
        *sum.exemplars.lock().unwrap_or_else(|e| e.into_inner()) =
            exemplars(self).or_else(|| exemplars(other));
        sum
    }
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, labels: &str, shape: &Shape) {
        let exemplars = if enc.format == Format::OpenMetrics {
            self.exemplars
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            None
        };
        let counts = self.buckets().iter().map(|b| b.load(Ordering::Relaxed));
        let sum = f64::from_bits(self.sum().load(Ordering::Relaxed));
        write_histogram(enc, name, labels, shape, counts, exemplars.as_deref(), sum);
    }
}
