//! The breaker's settings, checked when it is built.

use super::*;

/// Builds a [`CircuitBreaker`]; get one from
/// [`ResilienceMetrics::breaker`](crate::ResilienceMetrics::breaker).
#[derive(Debug)]
pub struct BreakerBuilder {
    metrics: ResilienceMetrics,
    service: String,
    config: Config,
}

impl BreakerBuilder {
    pub(crate) fn new(metrics: ResilienceMetrics, service: String) -> Self {
        Self {
            metrics,
            service,
            config: Config::default(),
        }
    }

    /// The window closed-state calls are judged over (default the last 100 calls).
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.window = window;
        self
    }

    /// Opens when at least this share of the window's calls failed (default 0.5).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = rate;
        self
    }

    /// Judges no rate before the window holds this many calls (default 20).
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// Also opens after this many failures in a row, whatever the rate.
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.config.consecutive_failures = Some(failures);
        self
    }

    /// Counts a successful call that took at least `threshold` as slow, and
    /// opens when at least `rate` of the window's calls were slow.
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.config.slow_call = Some((threshold, rate));
        self
    }

    /// How long it stays open before probing (default 30 s).
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.config.open_for = duration;
        self
    }

    /// Each opening that follows a failed probe stays open `factor` times
    /// longer than the one before, up to `max`; a close resets it.
    pub fn open_backoff(mut self, factor: f64, max: Duration) -> Self {
        self.config.backoff = Some((factor, max));
        self
    }

    /// Probe calls admitted at once while half-open (default 1).
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.config.probes = probes;
        self
    }

    /// Successful probes that close it (default 3).
    pub fn close_after(mut self, successes: u32) -> Self {
        self.config.close_after = successes;
        self
    }

    /// Checks the settings and registers the breaker (its state is read at
    /// every scrape while a handle to it lives).
    pub fn build(self) -> Result<CircuitBreaker, BreakerBuildError> {
        let c = &self.config;
        let rate = |field, value: f64| {
            if value > 0.0 && value <= 1.0 {
                Ok(())
            } else {
                Err(BreakerBuildError::InvalidRate { field, value })
            }
        };
        rate("failure_rate", c.failure_rate)?;
        if let Some((threshold, slow_rate)) = c.slow_call {
            rate("slow_calls.rate", slow_rate)?;
            if threshold.is_zero() {
                return Err(BreakerBuildError::Zero {
                    field: "slow_calls.threshold",
                });
            }
        }
        let zero = |field, is_zero: bool| {
            if is_zero {
                Err(BreakerBuildError::Zero { field })
            } else {
                Ok(())
            }
        };
        zero("minimum_calls", c.minimum_calls == 0)?;
        zero("consecutive_failures", c.consecutive_failures == Some(0))?;
        zero("open_for", c.open_for.is_zero())?;
        zero("half_open_probes", c.probes == 0)?;
        zero("close_after", c.close_after == 0)?;
        match c.window {
            SlidingWindow::Count(n) if n > 0 && c.minimum_calls > n => {
                return Err(BreakerBuildError::MinimumAboveWindow {
                    minimum_calls: c.minimum_calls,
                    window: n,
                });
            }
            SlidingWindow::Count(n) => zero("sliding_window", n == 0)?,
            SlidingWindow::Time(d) => zero("sliding_window", d.is_zero())?,
        }
        if let Some((factor, max)) = c.backoff {
            if !(factor >= 1.0 && factor.is_finite()) {
                return Err(BreakerBuildError::InvalidBackoff {
                    field: "open_backoff.factor",
                    reason: "must be a finite number of at least 1",
                });
            }
            if max < c.open_for {
                return Err(BreakerBuildError::InvalidBackoff {
                    field: "open_backoff.max",
                    reason: "must be at least open_for",
                });
            }
        }
        let window = match c.window {
            SlidingWindow::Count(n) => Window::Count(CountWindow::new(n)),
            SlidingWindow::Time(d) => Window::Time(Box::new(TimeWindow::new(d))),
        };
        let service = self.metrics.service(&self.service);
        let timed = matches!(c.window, SlidingWindow::Time(_)) || c.slow_call.is_some();
        let core = Arc::new(Core {
            config: self.config,
            service: service.clone(),
            word: AtomicU64::new(pack(BreakerState::Closed, 0)),
            forced: AtomicU8::new(FORCED_NONE),
            open_until: AtomicU64::new(0),
            open_generation: AtomicU64::new(u64::MAX),
            openings: AtomicU32::new(0),
            consecutive: AtomicU32::new(0),
            probes: AtomicI64::new(0),
            probe_successes: AtomicU32::new(0),
            window,
            timed,
            counts: Counts::default(),
            start: tokio::time::Instant::now(),
            metrics: self.metrics.clone(),
        });
        self.metrics.watch_breaker(service, Arc::downgrade(&core));
        Ok(CircuitBreaker { core })
    }
}
