//! The read API: series and histogram counts read back in process.

use super::*;

/// One series as the read API sees it: its tenant and labels.
#[derive(Debug)]
pub struct SeriesRef<'a, L> {
    pub(super) tenant: &'a str,
    pub(super) labels: Option<&'a L>,
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
    pub(super) fn for_each_cell(&self, mut f: impl FnMut(SeriesRef<'_, L>, &C)) {
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
    pub(super) bounds: Arc<[f64]>,
    /// Per bucket, not cumulative; the last is `+Inf`.
    pub(super) counts: Vec<u64>,
    pub(super) sum: f64,
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

    /// A snapshot of counts kept elsewhere: `counts` per bucket (not
    /// cumulative, `+Inf` last, so one more than `bounds`) and their `sum`;
    /// `None` when the lengths disagree.
    pub fn from_counts(bounds: &[f64], counts: Vec<u64>, sum: f64) -> Option<Self> {
        (counts.len() == bounds.len() + 1).then(|| Self {
            bounds: bounds.into(),
            counts,
            sum,
        })
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

    pub(super) fn of(cell: &HistogramCell, bounds: &Arc<[f64]>) -> Self {
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
