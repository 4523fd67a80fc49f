//! A monotonic clock for timing requests, cheaper to read than
//! [`Instant`] where the hardware allows.
//!
//! On x86-64 Linux, when the kernel itself keeps time with the time-stamp
//! counter (`current_clocksource` is `tsc`, which the kernel chooses only
//! for a counter that is invariant and synchronised across cores), a
//! [`Stamp`] is a raw counter read (about 10 ns, against about 27 ns for
//! `Instant::now` through the vDSO), converted to time with a rate measured
//! against [`Instant`] once per process. Elsewhere, or when the environment
//! variable `PLIMSOLL_CLOCK` is `instant`, it falls back to [`Instant`].
//!
//! # Example
//!
//! ```
//! use plimsoll_core::clock::Stamp;
//!
//! let start = Stamp::now();
//! std::thread::sleep(std::time::Duration::from_millis(2));
//! let elapsed = start.elapsed();
//! assert!(elapsed >= std::time::Duration::from_millis(2));
//! assert!(elapsed < std::time::Duration::from_secs(2));
//! ```

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point in time from [`Stamp::now`]; 8 bytes, `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

/// How stamps are read, decided once per process.
#[derive(Debug)]
enum Source {
    /// Time-stamp counter ticks; `secs_per_tick` measured against `Instant`.
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_os = "linux")),
        allow(dead_code)
    )]
    Counter { secs_per_tick: f64 },
    /// Nanoseconds since `anchor`.
    Instant { anchor: Instant },
}

static SOURCE: OnceLock<Source> = OnceLock::new();

#[inline]
fn source() -> &'static Source {
    SOURCE.get_or_init(calibrate)
}

impl Stamp {
    /// The current time.
    #[inline]
    pub fn now() -> Stamp {
        match source() {
            Source::Counter { .. } => Stamp(counter::read()),
            Source::Instant { anchor } => Stamp(anchor.elapsed().as_nanos() as u64),
        }
    }

    /// Seconds from `self` to `later` (0 when `later` is earlier).
    #[inline]
    pub fn seconds_until(self, later: Stamp) -> f64 {
        let delta = later.0.saturating_sub(self.0) as f64;
        match source() {
            Source::Counter { secs_per_tick } => delta * secs_per_tick,
            Source::Instant { .. } => delta * 1e-9,
        }
    }

    /// Seconds elapsed since `self`.
    #[inline]
    pub fn elapsed_seconds(self) -> f64 {
        self.seconds_until(Stamp::now())
    }

    /// Time elapsed since `self`.
    #[inline]
    pub fn elapsed(self) -> Duration {
        Duration::from_secs_f64(self.elapsed_seconds())
    }

    /// Nanoseconds from an origin fixed for the process (the machine's
    /// boot, or the first stamp), for code that keeps time as an integer.
    #[inline]
    pub fn as_nanos(self) -> u64 {
        match source() {
            Source::Counter { secs_per_tick } => (self.0 as f64 * secs_per_tick * 1e9) as u64,
            Source::Instant { .. } => self.0,
        }
    }

    /// Prepares the clock (the counter's rate takes about 2 ms to measure),
    /// so that the first request does not pay for it. Optional.
    pub fn warm_up() {
        let _ = source();
    }

    /// Whether stamps come from the CPU's time-stamp counter.
    pub fn uses_counter() -> bool {
        matches!(source(), Source::Counter { .. })
    }
}

fn calibrate() -> Source {
    if counter::usable() {
        // The rate over 2 ms of wall time: reads of either clock are exact to
        // well under a microsecond, so the rate is good to about 1e-4.
        let (i0, t0) = (Instant::now(), counter::read());
        while i0.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let (t1, i1) = (counter::read(), Instant::now());
        let ticks = t1.saturating_sub(t0);
        if ticks > 0 {
            return Source::Counter {
                secs_per_tick: (i1 - i0).as_secs_f64() / ticks as f64,
            };
        }
    }
    Source::Instant {
        anchor: Instant::now(),
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod counter {
    /// Whether the kernel keeps time with the time-stamp counter: it does so
    /// only when the counter runs at a constant rate and agrees across cores.
    pub(super) fn usable() -> bool {
        if std::env::var_os("PLIMSOLL_CLOCK").is_some_and(|v| v == "instant") {
            return false;
        }
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    }

    #[inline]
    #[allow(unsafe_code)]
    pub(super) fn read() -> u64 {
        // SAFETY: RDTSC exists on every x86-64 CPU, reads a register and
        // touches no memory; it has no preconditions. (An OS may forbid it in
        // user mode, but then the kernel could not use it as its clocksource,
        // and `usable` would have said no.)
        unsafe { core::arch::x86_64::_rdtsc() }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod counter {
    pub(super) fn usable() -> bool {
        false
    }

    pub(super) fn read() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_instant() {
        let (s, i) = (Stamp::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        let (stamp, instant) = (s.elapsed_seconds(), i.elapsed().as_secs_f64());
        // Both read 50 ms or more, and within 2% of each other.
        assert!(stamp >= 0.05, "{stamp}");
        assert!(
            (stamp - instant).abs() < instant * 0.02,
            "{stamp} vs {instant}"
        );
    }

    #[test]
    fn nanos_follow_seconds() {
        let start = Stamp::now();
        std::thread::sleep(Duration::from_millis(20));
        let end = Stamp::now();
        let nanos = end.as_nanos() - start.as_nanos();
        let seconds = start.seconds_until(end);
        assert!(nanos >= 20_000_000, "{nanos}");
        assert!(
            (nanos as f64 * 1e-9 - seconds).abs() < 1e-6,
            "{nanos} vs {seconds}"
        );
    }

    #[test]
    fn never_negative() {
        let later = Stamp::now();
        let earlier = Stamp(later.0.saturating_sub(1_000));
        assert_eq!(later.seconds_until(earlier), 0.0);
        assert!(earlier.seconds_until(later) > 0.0);
    }
}
