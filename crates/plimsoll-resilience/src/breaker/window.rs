//! The sliding windows a closed breaker judges its calls over, lock-free.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What one call was, as the window keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

impl Mark {
    fn bits(self) -> u8 {
        1 | u8::from(self.failure) << 1 | u8::from(self.slow) << 2
    }
}

/// Totals over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

/// The last `n` calls: a ring of marks and running totals. Every change
/// to a slot (a call, a reset) applies its difference to the totals, so
/// the totals always come back to the sum of the slots; a thread paused
/// between its slot and its totals leaves them off by one for a moment
/// (signed, and read clamped to `0..=n`), never wrapped.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    /// Applies a slot's change from `old` to `new` bits to the totals.
    fn moved(&self, old: u8, new: u8) {
        for (counter, bit) in [(&self.calls, 1), (&self.failures, 2), (&self.slow, 4)] {
            let delta = i64::from(new & bit != 0) - i64::from(old & bit != 0);
            if delta != 0 {
                counter.fetch_add(delta, Relaxed);
            }
        }
    }

    fn record(&self, mark: Mark) {
        let at = self.next.fetch_add(1, Relaxed) % self.slots.len() as u64;
        // The slot's old call leaves the window as the new one enters.
        let old = self.slots[at as usize].swap(mark.bits(), Relaxed);
        self.moved(old, mark.bits());
    }

    fn totals(&self) -> Totals {
        let n = self.slots.len() as i64;
        let read = |c: &AtomicI64| u32::try_from(c.load(Relaxed).clamp(0, n)).unwrap_or(0);
        Totals {
            calls: read(&self.calls),
            failures: read(&self.failures),
            slow: read(&self.slow),
        }
    }

    fn reset(&self) {
        for slot in self.slots.iter() {
            let old = slot.swap(0, Relaxed);
            self.moved(old, 0);
        }
    }
}

/// Buckets of a time window.
const BUCKETS: u64 = 10;

#[derive(Debug, Default)]
struct Bucket {
    /// Which bucket of time it holds (time since the start / bucket length).
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

/// The calls of the last `length` of time, in ten buckets: a call lands in
/// its bucket, a bucket older than the window is reused. Two calls racing
/// into a bucket being reused may lose one count: the window is a
/// judgement over many calls, not a ledger.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: [Bucket; BUCKETS as usize],
}

impl TimeWindow {
    pub(crate) fn new(length: Duration) -> Self {
        let nanos = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        Self {
            bucket_nanos: (nanos / BUCKETS).max(1),
            buckets: Default::default(),
        }
    }

    fn record(&self, now_nanos: u64, mark: Mark) {
        // Epochs start at 1: 0 marks a bucket never used.
        let epoch = now_nanos / self.bucket_nanos + 1;
        let bucket = &self.buckets[(epoch % BUCKETS) as usize];
        let seen = bucket.epoch.load(Relaxed);
        // Only forward: a call delayed past a whole window does not wipe
        // the bucket of the present.
        if seen < epoch
            && bucket
                .epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            bucket.calls.store(0, Relaxed);
            bucket.failures.store(0, Relaxed);
            bucket.slow.store(0, Relaxed);
        }
        bucket.calls.fetch_add(1, Relaxed);
        if mark.failure {
            bucket.failures.fetch_add(1, Relaxed);
        }
        if mark.slow {
            bucket.slow.fetch_add(1, Relaxed);
        }
    }

    fn totals(&self, now_nanos: u64) -> Totals {
        let epoch = now_nanos / self.bucket_nanos + 1;
        let mut totals = Totals::default();
        for bucket in &self.buckets {
            let at = bucket.epoch.load(Relaxed);
            if at != 0 && at + BUCKETS > epoch && at <= epoch {
                totals.calls += bucket.calls.load(Relaxed);
                totals.failures += bucket.failures.load(Relaxed);
                totals.slow += bucket.slow.load(Relaxed);
            }
        }
        totals
    }

    fn reset(&self) {
        for bucket in &self.buckets {
            bucket.epoch.store(0, Relaxed);
        }
    }
}

/// A count- or time-based window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(Box<TimeWindow>),
}

impl Window {
    pub(crate) fn record(&self, now_nanos: u64, mark: Mark) {
        match self {
            Window::Count(w) => w.record(mark),
            Window::Time(w) => w.record(now_nanos, mark),
        }
    }

    pub(crate) fn totals(&self, now_nanos: u64) -> Totals {
        match self {
            Window::Count(w) => w.totals(),
            Window::Time(w) => w.totals(now_nanos),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            Window::Count(w) => w.reset(),
            Window::Time(w) => w.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Mark = Mark {
        failure: false,
        slow: false,
    };
    const FAIL: Mark = Mark {
        failure: true,
        slow: false,
    };
    const SLOW: Mark = Mark {
        failure: false,
        slow: true,
    };

    #[test]
    fn a_count_window_keeps_the_last_n_calls() {
        let w = Window::Count(CountWindow::new(4));
        for mark in [FAIL, FAIL, OK, SLOW] {
            w.record(0, mark);
        }
        assert_eq!(
            w.totals(0),
            Totals {
                calls: 4,
                failures: 2,
                slow: 1
            }
        );
        // Two more: the two failures leave.
        w.record(0, OK);
        w.record(0, SLOW);
        assert_eq!(
            w.totals(0),
            Totals {
                calls: 4,
                failures: 0,
                slow: 2
            }
        );
        w.reset();
        assert_eq!(w.totals(0), Totals::default());
    }

    #[test]
    fn totals_follow_the_slots_whatever_order_changes_land_in() {
        let w = CountWindow::new(3);
        // A call's slot lands, a reset sweeps it, then its totals land:
        // the totals come back to the slots (none), not one off.
        let old = w.slots[0].swap(FAIL.bits(), Relaxed);
        let swept = w.slots[0].swap(0, Relaxed);
        w.moved(swept, 0);
        w.moved(old, FAIL.bits());
        assert_eq!(w.totals(), Totals::default(), "clamped while off");
        assert_eq!(w.failures.load(Relaxed), 0);
        assert_eq!(w.calls.load(Relaxed), 0);
        // Negative for a moment reads as 0, never as a wrapped huge count.
        w.failures.fetch_sub(1, Relaxed);
        assert_eq!(w.totals().failures, 0);
    }

    #[test]
    fn a_time_window_forgets_calls_older_than_its_length() {
        let second = 1_000_000_000;
        let w = Window::Time(Box::new(TimeWindow::new(Duration::from_secs(10))));
        w.record(0, FAIL);
        w.record(5 * second, OK);
        w.record(9 * second, SLOW);
        assert_eq!(
            w.totals(9 * second),
            Totals {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        // At 10.5 s the call at 0 s is out, the others in.
        assert_eq!(
            w.totals(10 * second + second / 2),
            Totals {
                calls: 2,
                failures: 0,
                slow: 1
            }
        );
        // A bucket reused after a full turn starts empty.
        w.record(20 * second, OK);
        assert_eq!(
            w.totals(20 * second),
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        w.reset();
        assert_eq!(w.totals(20 * second), Totals::default());
    }
}
