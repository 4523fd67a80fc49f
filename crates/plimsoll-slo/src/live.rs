//! The live view: compliance, error budget and burn rates computed in the
//! process from its own counters, read at scrape time (nothing on the
//! request path), over rolling windows kept in bounded memory.
//!
//! This is one instance's view, since it started: the rules are the fleet's.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::{
    ClosedLabel, Counter, Histogram, RegisterError, SeriesRef, Telemetry, Tenant, impl_label_set,
};
use plimsoll_http::grpc::{HandledLabels, MethodLabels};
use plimsoll_http::labels::RequestLabels;

use crate::rules::WINDOWS;
use crate::spec::{Sli, Slo, Source};

/// Why the live gauges could not be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// A latency SLO's threshold is not a bucket boundary of the histogram
    /// as registered on this telemetry (its layer chose other buckets).
    #[error(
        "{slo}: sli.threshold: {threshold} s is not a bucket boundary of the registered {family} (bounds: {bounds:?})"
    )]
    NotABucket {
        /// The SLO.
        slo: String,
        /// The threshold.
        threshold: f64,
        /// The histogram.
        family: &'static str,
        /// Its bounds.
        bounds: Vec<f64>,
    },
    /// A family could not be registered.
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Default bound on distinct SLO names.
pub const DEFAULT_MAX_SLOS: usize = 100;

const SLO_NAME: LabelDecl = LabelDecl::open("slo_name", DEFAULT_MAX_SLOS);
const SLO_NAME_VIA: LabelDecl =
    LabelDecl::bounded_via("slo_name", "slo_compliance_percentage", "slo_name");

/// `slo_compliance_percentage{slo_name, service, window}`: the share of
/// good events over each window, in percent.
pub const SLO_COMPLIANCE: FamilyDecl = FamilyDecl::gauge(
    "slo_compliance_percentage",
    "Share of good events of each SLO over each window, in percent (this instance, since it started).",
)
.with_labels(&[SLO_NAME, LabelDecl::closed("service"), LabelDecl::closed("window")]);

/// `error_budget_remaining_percentage{slo_name, service}`: the budget left
/// over the SLO's window, in percent (negative when overspent).
pub const ERROR_BUDGET_REMAINING: FamilyDecl = FamilyDecl::gauge(
    "error_budget_remaining_percentage",
    "Error budget left over each SLO's window, in percent; negative when overspent (this instance).",
)
.with_labels(&[SLO_NAME_VIA, LabelDecl::closed("service")]);

/// `slo_burn_rate{slo_name, service, window}`: how many times faster than
/// its budget allows each SLO spends it, over each window.
pub const SLO_BURN_RATE: FamilyDecl = FamilyDecl::gauge(
    "slo_burn_rate",
    "Error ratio of each SLO over each window divided by its error budget (1: spent exactly over the SLO window).",
)
.with_labels(&[SLO_NAME_VIA, LabelDecl::closed("service"), LabelDecl::closed("window")]);

/// Every live family, for the catalogue.
pub const LIVE_FAMILIES: &[FamilyDecl] = &[SLO_COMPLIANCE, ERROR_BUDGET_REMAINING, SLO_BURN_RATE];

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct WindowLabels {
    slo_name: Arc<str>,
    service: Arc<str>,
    window: Arc<str>,
}
impl_label_set!(WindowLabels {
    slo_name,
    service,
    window
});

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct BudgetLabels {
    slo_name: Arc<str>,
    service: Arc<str>,
}
impl_label_set!(BudgetLabels { slo_name, service });

/// Reads an SLI's cumulative (bad, total) events now.
type Read = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Cumulative (bad, total) at an instant.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    at: Duration,
    bad: u64,
    total: u64,
}

/// One resolution of history: a sample every `step`, `capacity` of them.
#[derive(Debug)]
struct Ring {
    step: Duration,
    capacity: usize,
    samples: VecDeque<Sample>,
}

impl Ring {
    fn new(step: Duration, span: Duration) -> Self {
        let capacity = (span.as_secs() / step.as_secs().max(1)) as usize + 2;
        Self {
            step,
            capacity,
            samples: VecDeque::with_capacity(capacity),
        }
    }

    fn push(&mut self, sample: Sample) {
        let due = self
            .samples
            .back()
            .is_none_or(|last| sample.at >= last.at + self.step);
        if due {
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
            }
            self.samples.push_back(sample);
        }
    }

    /// The latest sample at or before `at`, if this ring reaches back that far.
    fn at_or_before(&self, at: Duration) -> Option<Sample> {
        if self.samples.front()?.at > at {
            return None;
        }
        let i = self.samples.partition_point(|s| s.at <= at);
        self.samples.get(i.checked_sub(1)?).copied()
    }
}

/// The history of one SLO in three resolutions: 10 s for 3 hours, 1 min for
/// 3 days, and the SLO window in 1,000 steps — a few thousand samples at most.
#[derive(Debug)]
struct History {
    rings: [Ring; 3],
    first: Option<Sample>,
}

impl History {
    fn new(window: Duration) -> Self {
        let coarse = Duration::from_secs((window.as_secs() / 1_000).max(60));
        Self {
            rings: [
                Ring::new(Duration::from_secs(10), Duration::from_secs(3 * 3_600)),
                Ring::new(Duration::from_secs(60), Duration::from_secs(3 * 86_400)),
                Ring::new(coarse, window),
            ],
            first: None,
        }
    }

    fn push(&mut self, sample: Sample) {
        self.first.get_or_insert(sample);
        for ring in &mut self.rings {
            ring.push(sample);
        }
    }

    /// The sample that starts a window ending now: the latest at or before
    /// `now - window`, from the finest ring that reaches back; the first
    /// sample when the process is younger than the window.
    fn start_of(&self, now: Duration, window: Duration) -> Option<Sample> {
        let at = now.saturating_sub(window);
        self.rings
            .iter()
            .find_map(|ring| ring.at_or_before(at))
            .or(self.first)
    }
}

struct Tracked {
    name: Arc<str>,
    service: Arc<str>,
    budget: f64,
    window: Duration,
    window_label: Arc<str>,
    read: Read,
    history: Mutex<History>,
}

/// The live gauges of a set of SLOs on one telemetry; see the module docs.
#[derive(Clone)]
pub struct LiveSlos {
    tracked: Arc<Vec<Tracked>>,
    start: tokio::time::Instant,
}

impl fmt::Debug for LiveSlos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSlos")
            .field("slos", &self.tracked.len())
            .finish_non_exhaustive()
    }
}

/// A PromQL-style window label for a duration (`5m`, `1h`, `30d`).
fn window_label(window: Duration) -> String {
    let s = window.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3_600) {
        format!("{}h", s / 3_600)
    } else {
        format!("{}m", s / 60)
    }
}

/// Whether a series of the requests families is selected by the SLO.
/// Whether a series is selected by the SLO; `is(labels, name, value)`
/// says whether the series' label `name` has `value` (no label: no).
fn selected<L>(slo: &Slo, series: &SeriesRef<'_, L>, is: impl Fn(&L, &str, &str) -> bool) -> bool {
    slo.selector.iter().all(|(name, value)| {
        if name == "tenant_id" {
            return series.tenant() == value;
        }
        series
            .labels()
            .is_some_and(|labels| is(labels, name, value))
    })
}

fn http_label(labels: &RequestLabels, name: &str, value: &str) -> bool {
    match name {
        "method" => ClosedLabel::as_str(&labels.method) == value,
        "route" => &*labels.route == value,
        "status_code" => value.parse() == Ok(labels.status_code),
        _ => false,
    }
}

fn grpc_label(service: &str, method: &str, code: Option<&str>, name: &str, value: &str) -> bool {
    match name {
        "grpc_service" => service == value,
        "grpc_method" => method == value,
        "grpc_code" => code == Some(value),
        _ => false,
    }
}

impl LiveSlos {
    /// Registers the live gauges of `slos` on `telemetry`, reading the
    /// families the server layers record (register it after building them).
    /// Custom SLIs are PromQL: they have no live view and are left out.
    pub fn register(telemetry: &Telemetry, slos: &[Slo]) -> Result<Self, LiveError> {
        let mut tracked = Vec::new();
        for slo in slos {
            let Some(read) = reader(telemetry, slo)? else {
                continue;
            };
            tracked.push(Tracked {
                name: slo.name.as_str().into(),
                service: slo.service.as_str().into(),
                budget: crate::rules::round(slo.error_budget()),
                window: slo.window,
                window_label: window_label(slo.window).into(),
                read,
                history: Mutex::new(History::new(slo.window)),
            });
        }
        let live = Self {
            tracked: Arc::new(tracked),
            start: tokio::time::Instant::now(),
        };
        live.sample();
        let compliance = live.clone();
        telemetry.declare_scraped(&SLO_COMPLIANCE, move |out| {
            for (t, window, ratio, _) in compliance.read_windows() {
                let labels = WindowLabels {
                    slo_name: t.name.clone(),
                    service: t.service.clone(),
                    window,
                };
                let _ = out.set(&Tenant::system(), &labels, 100.0 * (1.0 - ratio));
            }
        })?;
        let burn = live.clone();
        telemetry.declare_scraped(&SLO_BURN_RATE, move |out| {
            for (t, window, ratio, _) in burn.read_windows() {
                let labels = WindowLabels {
                    slo_name: t.name.clone(),
                    service: t.service.clone(),
                    window,
                };
                let _ = out.set(&Tenant::system(), &labels, ratio / t.budget);
            }
        })?;
        let budget = live.clone();
        telemetry.declare_scraped(&ERROR_BUDGET_REMAINING, move |out| {
            for (t, _, ratio, whole) in budget.read_windows() {
                if whole {
                    let labels = BudgetLabels {
                        slo_name: t.name.clone(),
                        service: t.service.clone(),
                    };
                    let _ = out.set(&Tenant::system(), &labels, 100.0 * (1.0 - ratio / t.budget));
                }
            }
        })?;
        Ok(live)
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Takes a sample of every SLO's counters now (at most one a second:
    /// the three gauges of one scrape share it). Every scrape takes one; a
    /// service scraped rarely can call this on a timer for finer windows.
    pub fn sample(&self) {
        let at = self.now();
        let recent = self.tracked.iter().all(|t| {
            let history = t.history.lock().unwrap_or_else(|e| e.into_inner());
            history.rings[0]
                .samples
                .back()
                .is_some_and(|last| at < last.at + Duration::from_secs(1))
        });
        if recent && !self.tracked.is_empty() {
            return;
        }
        for t in self.tracked.iter() {
            let (bad, total) = (t.read)();
            t.history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Sample { at, bad, total });
        }
    }

    /// For every SLO and window (the SLO's own last): the error ratio, and
    /// whether it is the SLO's window. No events in a window: ratio 0.
    fn read_windows(&self) -> Vec<(&Tracked, Arc<str>, f64, bool)> {
        self.sample();
        let now = self.now();
        let mut out = Vec::new();
        for t in self.tracked.iter() {
            let history = t.history.lock().unwrap_or_else(|e| e.into_inner());
            let Some(last) = history.rings[0].samples.back().copied() else {
                continue;
            };
            let mut windows: Vec<(Arc<str>, Duration, bool)> = WINDOWS
                .iter()
                .map(|w| (Arc::from(*w), crate::rules::window_duration(w), false))
                .filter(|(_, d, _)| *d < t.window)
                .collect();
            windows.push((t.window_label.clone(), t.window, true));
            for (label, window, whole) in windows {
                let start = history.start_of(now, window).unwrap_or(last);
                let total = last.total.saturating_sub(start.total);
                let bad = last.bad.saturating_sub(start.bad);
                let ratio = if total == 0 {
                    0.0
                } else {
                    bad as f64 / total as f64
                };
                out.push((t, label, ratio, whole));
            }
        }
        out
    }
}

/// How to read an SLO's (bad, total) from the process's families.
fn reader(telemetry: &Telemetry, slo: &Slo) -> Result<Option<Read>, LiveError> {
    let slo = slo.clone();
    Ok(Some(match slo.sli.clone() {
        Sli::Availability {
            source: Source::Http,
        } => {
            // `http_requests_total` is a count view of the duration
            // histogram: read the histogram's counts.
            let durations: Histogram<RequestLabels> =
                telemetry.declare(&plimsoll_http::families::HTTP_REQUEST_DURATION)?;
            Box::new(move || {
                // One pass: bad and total from the same reading of each series.
                let (mut bad, mut total) = (0, 0);
                durations.for_each(|series, counts| {
                    if selected(&slo, &series, http_label) {
                        total += counts.count();
                        if series.labels().is_some_and(|l| l.status_code >= 500) {
                            bad += counts.count();
                        }
                    }
                });
                (bad, total)
            })
        }
        Sli::Availability {
            source: Source::Grpc,
        } => {
            let handled: Counter<HandledLabels> =
                telemetry.declare(&plimsoll_http::families::GRPC_SERVER_HANDLED)?;
            let failures = plimsoll_core::classify::GrpcFailures::default();
            Box::new(move || {
                let (mut bad, mut total) = (0, 0);
                handled.for_each(|series, value| {
                    let picked = selected(&slo, &series, |l: &HandledLabels, name, value| {
                        grpc_label(
                            &l.grpc_service,
                            &l.grpc_method,
                            Some(ClosedLabel::as_str(&l.grpc_code)),
                            name,
                            value,
                        )
                    });
                    if picked {
                        total += value;
                        if series
                            .labels()
                            .is_some_and(|l| failures.is_failure(l.grpc_code))
                        {
                            bad += value;
                        }
                    }
                });
                (bad, total)
            })
        }
        Sli::Latency {
            source: Source::Http,
            threshold,
        } => {
            let durations: Histogram<RequestLabels> =
                telemetry.declare(&plimsoll_http::families::HTTP_REQUEST_DURATION)?;
            check_bound(&slo, threshold, &durations.total(|_| false), Source::Http)?;
            Box::new(move || {
                let all = durations.total(|series| selected(&slo, series, http_label));
                let good = all.count_le(threshold).unwrap_or(0);
                (all.count().saturating_sub(good), all.count())
            })
        }
        Sli::Latency {
            source: Source::Grpc,
            threshold,
        } => {
            let durations: Histogram<MethodLabels> =
                telemetry.declare(&plimsoll_http::families::GRPC_SERVER_HANDLING)?;
            check_bound(&slo, threshold, &durations.total(|_| false), Source::Grpc)?;
            Box::new(move || {
                let all = durations.total(|series| {
                    selected(&slo, series, |l: &MethodLabels, name, value| {
                        grpc_label(&l.grpc_service, &l.grpc_method, None, name, value)
                    })
                });
                let good = all.count_le(threshold).unwrap_or(0);
                (all.count().saturating_sub(good), all.count())
            })
        }
        Sli::Custom { .. } | Sli::CustomGood { .. } => return Ok(None),
    }))
}

fn check_bound(
    slo: &Slo,
    threshold: f64,
    empty: &plimsoll_core::HistogramSnapshot,
    source: Source,
) -> Result<(), LiveError> {
    match empty.count_le(threshold) {
        Some(_) => Ok(()),
        None => Err(LiveError::NotABucket {
            slo: slo.name.clone(),
            threshold,
            family: source.durations().name(),
            bounds: empty.bounds().to_vec(),
        }),
    }
}
