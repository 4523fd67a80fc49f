//! `plimsoll_cardinality_overflow_total`, and the warning logged when a bound is reached.

use super::*;

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
    pub(super) family: Arc<OverflowFamily>,
    pub(super) index: u32,
    warning: Arc<BoundWarning>,
}

/// How often a bound that keeps being reached is logged again.
pub const BOUND_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Logs a `tracing` warning the first time a bound is reached, then at
/// most once per [`BOUND_WARNING_INTERVAL`].
#[derive(Debug)]
struct BoundWarning {
    pub(super) bound: usize,
    /// Milliseconds since [`warning_epoch`] before which nothing is logged
    /// (0: never logged).
    pub(super) next: AtomicU64,
}

fn warning_epoch() -> crate::clock::Stamp {
    static EPOCH: OnceLock<crate::clock::Stamp> = OnceLock::new();
    *EPOCH.get_or_init(crate::clock::Stamp::now)
}

impl BoundWarning {
    #[cold]
    pub(super) fn reached(&self, labels: &OverflowLabels) {
        let now = (warning_epoch().elapsed_seconds() * 1e3) as u64 + 1;
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
