//! The circuit breaker: its settings, its state machine, and the handle
//! that reads and forces its state.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64};
use std::time::Duration;

use crate::metrics::{Counts, ResilienceMetrics};
use plimsoll_core::trace::{OpenSpan, SpanEnd, SpanKind, SpanStart};

mod builder;
pub(crate) mod layer;
mod window;

pub use builder::BreakerBuilder;

use window::{CountWindow, Mark, TimeWindow, Window};

/// A breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BreakerState {
    /// Calls pass; their outcomes are judged.
    Closed = 0,
    /// Calls are shed until the open time passes.
    Open = 1,
    /// A bounded number of probe calls pass; their outcomes decide.
    HalfOpen = 2,
}

impl BreakerState {
    /// The label value: `closed`, `open`, `half_open`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0, 1, 2.
    pub const fn value(self) -> f64 {
        self as u8 as f64
    }

    pub(crate) const fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The window a closed breaker judges calls over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last period of time.
    Time(Duration),
}

/// An invalid breaker setting; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerBuildError {
    /// A rate outside (0, 1].
    #[error("{field}: must be a rate in (0, 1], got {value}")]
    InvalidRate {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A count or duration that is zero.
    #[error("{field}: must be greater than zero")]
    Zero {
        /// The setting.
        field: &'static str,
    },
    /// A growth factor below 1, or a cap below the open time.
    #[error("{field}: {reason}")]
    InvalidBackoff {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A count window smaller than the calls it must hold to judge.
    #[error(
        "minimum_calls: {minimum_calls} can never be reached in a window of the last {window} calls"
    )]
    MinimumAboveWindow {
        /// The minimum given.
        minimum_calls: u32,
        /// The window's size.
        window: u32,
    },
    /// The families could not be registered.
    #[error(transparent)]
    Register(#[from] plimsoll_core::RegisterError),
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) window: SlidingWindow,
    pub(crate) failure_rate: f64,
    pub(crate) minimum_calls: u32,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) slow_call: Option<(Duration, f64)>,
    pub(crate) open_for: Duration,
    pub(crate) backoff: Option<(f64, Duration)>,
    pub(crate) probes: u32,
    pub(crate) close_after: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: SlidingWindow::Count(100),
            failure_rate: 0.5,
            minimum_calls: 20,
            consecutive_failures: None,
            slow_call: None,
            open_for: Duration::from_secs(30),
            backoff: None,
            probes: 1,
            close_after: 3,
        }
    }
}

const FORCED_NONE: u8 = 0;
const FORCED_OPEN: u8 = 1;
const FORCED_CLOSED: u8 = 2;

pub(crate) struct Core {
    config: Config,
    pub(crate) service: Arc<str>,
    /// The state and its generation ([`pack`]).
    word: AtomicU64,
    forced: AtomicU8,
    /// Nanoseconds since `start` when an open breaker may probe…
    open_until: AtomicU64,
    /// …for the opening of this generation.
    open_generation: AtomicU64,
    /// Openings since it was last closed (for the backoff).
    openings: AtomicU32,
    consecutive: AtomicU32,
    /// Probes in flight while half-open (freed never below zero: a slot
    /// given back after its period's reset frees nothing).
    probes: AtomicI64,
    probe_successes: AtomicU32,
    window: Window,
    /// Whether calls need the clock (a time window, or slow calls).
    pub(crate) timed: bool,
    pub(crate) counts: Counts,
    start: tokio::time::Instant,
    metrics: ResilienceMetrics,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("service", &self.service)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Why a call was not made: the breaker is open (or full of probes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker for {service} is {state}: retry in {retry_in:?}")]
pub struct BreakerOpen {
    /// The dependency.
    pub service: Arc<str>,
    /// Its state (`Open`, or `HalfOpen` with every probe slot taken).
    pub state: BreakerState,
    /// When it will admit a probe (zero: as soon as a probe slot frees).
    pub retry_in: Duration,
}

/// Admission to make one call, stamped with the breaker's generation (its
/// count of transitions) when it was given: an outcome that arrives after
/// the breaker moved on is not judged in a period it does not belong to.
#[derive(Debug)]
pub(crate) enum Permit {
    /// A call while closed (or forced closed).
    Closed(u64),
    /// A probe while half-open: holds a probe slot until it ends.
    Probe(u64),
}

/// The state in the low byte, the generation above it: one word, so a
/// transition changes both at once.
fn pack(state: BreakerState, generation: u64) -> u64 {
    generation << 8 | state as u64
}

impl Core {
    /// The state and its generation.
    fn load(&self) -> (BreakerState, u64) {
        let word = self.word.load(Acquire);
        (BreakerState::from_u8((word & 0xff) as u8), word >> 8)
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.load().0
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Moves `from` → `to` (a new generation) if the state is still
    /// `from`; records it. Only one of racing callers wins.
    fn transition(&self, from: BreakerState, to: BreakerState) -> Option<u64> {
        let mut word = self.word.load(Acquire);
        loop {
            if (word & 0xff) as u8 != from as u8 {
                return None;
            }
            let generation = (word >> 8) + 1;
            match self
                .word
                .compare_exchange_weak(word, pack(to, generation), AcqRel, Acquire)
            {
                Ok(_) => {
                    self.metrics.transition(&self.service, from, to);
                    return Some(generation);
                }
                Err(now) => word = now,
            }
        }
    }

    /// Opens from `from`: only the caller that wins the transition counts
    /// an opening and sets the time to probe.
    fn open(&self, from: BreakerState) {
        if self.forced.load(Relaxed) == FORCED_CLOSED {
            return;
        }
        let Some(generation) = self.transition(from, BreakerState::Open) else {
            return;
        };
        let openings = self.openings.fetch_add(1, Relaxed);
        let mut wait = self.config.open_for;
        if let Some((factor, max)) = self.config.backoff {
            let grown =
                wait.as_secs_f64() * factor.powi(i32::try_from(openings).unwrap_or(i32::MAX));
            wait = Duration::try_from_secs_f64(grown).unwrap_or(max).min(max);
        }
        let until = self
            .now_nanos()
            .saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
        self.probes.store(0, Relaxed);
        self.probe_successes.store(0, Relaxed);
        self.open_until.store(until, Relaxed);
        // The deadline belongs to this opening from now on.
        self.open_generation.store(generation, Release);
    }

    /// Counts a shed call (and gives it a span, opened and ended at once,
    /// as rejected).
    pub(crate) fn rejected(&self, state: BreakerState, retry_in: Duration) -> BreakerOpen {
        self.counts.rejected.fetch_add(1, Relaxed);
        let span = self.open_span();
        self.end_span(&span, Some("rejected"));
        BreakerOpen {
            service: self.service.clone(),
            state,
            retry_in,
        }
    }

    /// The span of one call through the breaker, when the telemetry opens
    /// spans: `circuit_breaker <service>`, with the state it found.
    pub(crate) fn open_span(&self) -> OpenSpan {
        let telemetry = self.metrics.telemetry();
        if !telemetry.opens_spans() || telemetry.sample_span(SpanKind::Internal, None).is_err() {
            return OpenSpan::default();
        }
        self.span_in(telemetry)
    }

    #[inline(never)]
    fn span_in(&self, telemetry: &plimsoll_core::Telemetry) -> OpenSpan {
        let name = format!("circuit_breaker {}", self.service);
        let attributes = [
            ("plimsoll.breaker.name", (&*self.service).into()),
            ("plimsoll.breaker.state", self.state().as_str().into()),
        ];
        telemetry.start_span(&SpanStart::new(&name, SpanKind::Internal, &attributes))
    }

    /// Ends a call's span: `rejected`, `failure`, or fine.
    pub(crate) fn end_span(&self, span: &OpenSpan, error: Option<&str>) {
        if span.is_recorded() {
            self.metrics
                .telemetry()
                .end_span(span, &SpanEnd::new(error, &[]));
        }
    }

    /// The state and wait with which [`acquire`](Self::acquire) would
    /// shed a call now, if it would: found without taking, counting or
    /// moving anything.
    pub(crate) fn shedding(&self) -> Option<(BreakerState, Duration)> {
        match self.forced.load(Relaxed) {
            FORCED_NONE => {}
            FORCED_OPEN => return Some((BreakerState::Open, self.config.open_for)),
            _ => return None,
        }
        let (state, generation) = self.load();
        match state {
            BreakerState::Closed => None,
            BreakerState::Open => self.open_wait(generation).map(|w| (state, w)),
            BreakerState::HalfOpen => (self.probes.load(Acquire) >= i64::from(self.config.probes))
                .then_some((state, Duration::ZERO)),
        }
    }

    /// While open in `generation`: the wait before it probes, or `None`
    /// once it may.
    fn open_wait(&self, generation: u64) -> Option<Duration> {
        if self.open_generation.load(Acquire) != generation {
            // Opened a moment ago; its deadline is being set.
            return Some(self.config.open_for);
        }
        let (now, until) = (self.now_nanos(), self.open_until.load(Relaxed));
        (now < until).then(|| Duration::from_nanos(until - now))
    }

    /// Frees a probe slot, never below zero (a slot given back after its
    /// period's reset has nothing to free).
    fn free_probe(&self) {
        let _ = self
            .probes
            .fetch_update(AcqRel, Acquire, |taken| (taken > 0).then(|| taken - 1));
    }

    /// Admits a call, or sheds it.
    pub(crate) fn acquire(&self) -> Result<Permit, BreakerOpen> {
        loop {
            match self.forced.load(Relaxed) {
                FORCED_NONE => {}
                FORCED_OPEN => {
                    return Err(self.rejected(BreakerState::Open, self.config.open_for));
                }
                _ => return Ok(Permit::Closed(self.load().1)),
            }
            let (state, generation) = self.load();
            match state {
                BreakerState::Closed => return Ok(Permit::Closed(generation)),
                BreakerState::Open => {
                    if let Some(wait) = self.open_wait(generation) {
                        return Err(self.rejected(state, wait));
                    }
                    self.transition(BreakerState::Open, BreakerState::HalfOpen);
                    // Half-open now (by this call or another): take a probe slot.
                }
                BreakerState::HalfOpen => {
                    let taken = self.probes.fetch_add(1, AcqRel);
                    if self.load().1 != generation {
                        // It moved on while the slot was taken: give it back, look again.
                        self.free_probe();
                        continue;
                    }
                    if taken < i64::from(self.config.probes) {
                        return Ok(Permit::Probe(generation));
                    }
                    self.free_probe();
                    return Err(self.rejected(BreakerState::HalfOpen, Duration::ZERO));
                }
            }
        }
    }

    /// The time of a call's start, when the breaker needs it.
    pub(crate) fn call_start(&self) -> Option<tokio::time::Instant> {
        self.timed.then(tokio::time::Instant::now)
    }

    /// A call admitted with `permit` and started at `start` ended, failed or not.
    pub(crate) fn record(
        &self,
        permit: Permit,
        failure: bool,
        start: Option<tokio::time::Instant>,
    ) {
        let slow = !failure
            && self
                .config
                .slow_call
                .zip(start)
                .is_some_and(|((threshold, _), start)| start.elapsed() >= threshold);
        let counter = match (failure, slow) {
            (true, _) => &self.counts.failure,
            (false, true) => &self.counts.slow,
            (false, false) => &self.counts.success,
        };
        counter.fetch_add(1, Relaxed);
        let (state, generation) = self.load();
        match permit {
            Permit::Closed(given) => {
                if given != generation || self.forced.load(Relaxed) != FORCED_NONE {
                    return;
                }
                let now = if self.timed { self.now_nanos() } else { 0 };
                self.window.record(now, Mark { failure, slow });
                let consecutive = if failure {
                    self.consecutive.fetch_add(1, Relaxed) + 1
                } else {
                    self.consecutive.store(0, Relaxed);
                    0
                };
                if state == BreakerState::Closed && self.should_open(now, consecutive) {
                    self.open(BreakerState::Closed);
                }
            }
            Permit::Probe(given) => {
                if given != generation {
                    return; // its period ended; the slots were reset
                }
                self.free_probe();
                if self.forced.load(Relaxed) != FORCED_NONE {
                    return;
                }
                if failure {
                    self.open(BreakerState::HalfOpen);
                } else if self.probe_successes.fetch_add(1, AcqRel) + 1 >= self.config.close_after
                    && self
                        .transition(BreakerState::HalfOpen, BreakerState::Closed)
                        .is_some()
                {
                    self.closed_afresh();
                }
            }
        }
    }

    /// A probe ended with no outcome (dropped): its slot frees.
    pub(crate) fn release(&self, permit: Permit) {
        if let Permit::Probe(given) = permit
            && given == self.load().1
        {
            self.free_probe();
        }
    }

    fn closed_afresh(&self) {
        self.window.reset();
        self.consecutive.store(0, Relaxed);
        self.openings.store(0, Relaxed);
    }

    fn should_open(&self, now: u64, consecutive: u32) -> bool {
        let c = &self.config;
        if c.consecutive_failures.is_some_and(|n| consecutive >= n) {
            return true;
        }
        let totals = self.window.totals(now);
        if totals.calls < c.minimum_calls || totals.calls == 0 {
            return false;
        }
        let calls = f64::from(totals.calls);
        f64::from(totals.failures) / calls >= c.failure_rate
            || c.slow_call
                .is_some_and(|(_, rate)| f64::from(totals.slow) / calls >= rate)
    }
}

/// A circuit breaker: a cloneable handle to read its state and force it,
/// and the source of its tower layer ([`layer`](CircuitBreaker::layer)).
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    pub(crate) core: Arc<Core>,
}

impl CircuitBreaker {
    /// The dependency it guards.
    pub fn service(&self) -> &str {
        &self.core.service
    }

    /// Its state now. An open breaker whose open time has passed reads
    /// `Open` until the next call probes.
    pub fn state(&self) -> BreakerState {
        self.core.state()
    }

    /// Forces it open: every call is shed until [`release`](CircuitBreaker::release).
    pub fn force_open(&self) {
        self.core.forced.store(FORCED_OPEN, Relaxed);
        let state = self.core.state();
        if state != BreakerState::Open {
            self.core.open(state);
        }
    }

    /// Forces it closed: every call passes, outcomes are not judged, until
    /// [`release`](CircuitBreaker::release).
    pub fn force_closed(&self) {
        self.core.forced.store(FORCED_CLOSED, Relaxed);
        let state = self.core.state();
        if state != BreakerState::Closed
            && self.core.transition(state, BreakerState::Closed).is_some()
        {
            self.core.closed_afresh();
        }
    }

    /// Ends a forced state: the breaker judges calls again, from closed.
    pub fn release(&self) {
        self.core.forced.store(FORCED_NONE, Relaxed);
        let state = self.core.state();
        if state != BreakerState::Closed
            && self.core.transition(state, BreakerState::Closed).is_some()
        {
            self.core.closed_afresh();
        }
    }

    /// Asks to make a call now: `Err` says why not. For a call the layer
    /// does not make (a hand-written client): then report how it went with
    /// [`CallPermit::done`].
    pub fn try_call(&self) -> Result<CallPermit, BreakerOpen> {
        let permit = self.core.acquire()?;
        Ok(CallPermit {
            core: self.core.clone(),
            permit: Some(permit),
            start: self.core.call_start(),
            span: self.core.open_span(),
        })
    }
}

/// Leave to make one call through a [`CircuitBreaker`]. Dropped without
/// [`done`](CallPermit::done), the call counts for nothing (a probe's slot frees).
#[derive(Debug)]
#[must_use = "report the call with `done`"]
pub struct CallPermit {
    core: Arc<Core>,
    permit: Option<Permit>,
    start: Option<tokio::time::Instant>,
    /// The call's span, when the telemetry opens spans.
    span: OpenSpan,
}

impl CallPermit {
    /// The call ended: failed or not.
    pub fn done(mut self, failure: bool) {
        if let Some(permit) = self.permit.take() {
            self.core.record(permit, failure, self.start);
            self.core.end_span(&self.span, failure.then_some("failure"));
        }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.core.release(permit);
        }
    }
}
