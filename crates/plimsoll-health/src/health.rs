//! The registry of components, the background checks, readiness and
//! draining.

use std::sync::atomic::{AtomicU8, Ordering};

use futures_util::FutureExt as _;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::{Histogram, RegisterError, Telemetry, Tenant, impl_label_set};

use crate::check::{Component, Report, Status};

/// `health_status{component}`: 1 healthy, 0.5 degraded, 0 unhealthy.
pub const HEALTH_STATUS: FamilyDecl = FamilyDecl::gauge(
    "health_status",
    "Each component's reported state: 1 healthy, 0.5 degraded, 0 unhealthy; read at scrape time.",
)
.with_labels(&[LabelDecl::open("component", 100)]);

/// `health_check_duration_seconds{component}`: how long each check run took.
pub const HEALTH_CHECK_DURATION: FamilyDecl = FamilyDecl::histogram(
    "health_check_duration_seconds",
    "How long each run of a component's health check took (a run that timed out counts its timeout).",
)
.with_unit("seconds")
.with_labels(&[LabelDecl::open("component", 100)]);

/// The most components one registry takes (the `component` label's bound).
pub const MAX_COMPONENTS: usize = 100;

/// The families this crate declares, for the catalogue.
pub const FAMILIES: &[FamilyDecl] = &[HEALTH_STATUS, HEALTH_CHECK_DURATION];

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ComponentLabels {
    component: Arc<str>,
}
impl_label_set!(ComponentLabels { component });

/// An invalid [`HealthBuilder`] setting; the message names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthBuildError {
    /// A component name that is empty, too long, not `[a-z0-9_-]`, or
    /// given twice.
    #[error("component {0:?}: names are 1 to 64 of a-z, 0-9, _ and -, each used once")]
    InvalidName(String),
    /// A duration that must be more than zero.
    #[error("{field}: must be more than zero")]
    ZeroDuration {
        /// The setting.
        field: String,
    },
    /// A threshold that must be at least 1.
    #[error("{field}: must be at least 1")]
    ZeroThreshold {
        /// The setting.
        field: String,
    },
    /// The health families could not be registered.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// More components than the `component` label's bound.
    #[error("component: {0} components, more than the {MAX_COMPONENTS} the label allows")]
    TooMany(usize),
    /// `build` was called outside a tokio runtime (the checks run on it).
    #[error("build: must be called inside a tokio runtime (the checks run on it)")]
    NoRuntime,
}

/// Settings of a [`Health`] registry.
#[derive(Debug)]
#[must_use]
pub struct HealthBuilder {
    telemetry: Telemetry,
    service: String,
    version: String,
    interval: Duration,
    drain: Duration,
    show_errors: bool,
    degraded_is_ready: bool,
    components: Vec<Component>,
}

/// The phase of the service, for `/ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not every critical component has been checked yet.
    Starting,
    /// Serving.
    Serving,
    /// Shutting down: `/ready` answers 503 while requests finish.
    Draining,
}

impl Phase {
    /// `starting`, `serving` or `draining`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Serving => "serving",
            Phase::Draining => "draining",
        }
    }
}

/// The last known state of one component.
#[derive(Clone, Debug)]
pub struct ComponentState {
    /// Its name.
    pub name: Arc<str>,
    /// Whether `/ready` needs it.
    pub critical: bool,
    /// Its reported status (`None` before its first check).
    pub status: Option<Status>,
    /// The detail of the last run.
    pub detail: String,
    /// The error of the last run (shown only where allowed).
    pub error: Option<String>,
    /// How long the last run took.
    pub latency: Duration,
    /// When the last run ended.
    pub last_checked: Option<SystemTime>,
    /// Runs so far.
    pub runs: u64,
}

struct Slot {
    component: Component,
    name: Arc<str>,
    state: RwLock<Tracked>,
    /// One run at a time (the loop's and `check_now`'s).
    running: tokio::sync::Mutex<()>,
}

struct Tracked {
    shown: ComponentState,
    /// Results in a row that differ from the reported status: whether
    /// they are worse, and how many.
    pending: Option<(bool, u32)>,
}

pub(crate) struct Inner {
    pub(crate) service: String,
    pub(crate) version: String,
    pub(crate) started: Instant,
    pub(crate) show_errors: bool,
    degraded_is_ready: bool,
    interval: Duration,
    drain: Duration,
    phase: AtomicU8,
    slots: Vec<Slot>,
    durations: Histogram<ComponentLabels>,
    tasks: RwLock<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().map(std::mem::take).unwrap_or_default() {
            task.abort();
        }
    }
}

/// The health of a service: its components' checks, run in the
/// background, and what `/health`, `/ready` and `/status` answer from
/// them. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("service", &self.inner.service)
            .field("phase", &self.phase())
            .field("components", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

const STARTING: u8 = 0;
const SERVING: u8 = 1;
const DRAINING: u8 = 2;

impl Health {
    /// A registry for `telemetry`'s service.
    pub fn builder(telemetry: &Telemetry) -> HealthBuilder {
        HealthBuilder {
            telemetry: telemetry.clone(),
            service: "unknown_service".into(),
            version: String::new(),
            interval: Duration::from_secs(10),
            drain: Duration::from_secs(10),
            show_errors: false,
            degraded_is_ready: false,
            components: Vec::new(),
        }
    }

    /// The service's phase.
    pub fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::Acquire) {
            STARTING => Phase::Starting,
            SERVING => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Every component's last known state, in the order they were added.
    pub fn components(&self) -> Vec<ComponentState> {
        self.inner
            .slots
            .iter()
            .map(|slot| read(&slot.state).shown.clone())
            .collect()
    }

    /// One component's last known state.
    pub fn component(&self, name: &str) -> Option<ComponentState> {
        let slot = self.inner.slots.iter().find(|s| &*s.name == name)?;
        Some(read(&slot.state).shown.clone())
    }

    /// The overall status: the worst of the components' (healthy when
    /// there are none or none is checked yet).
    pub fn status(&self) -> Status {
        self.inner
            .slots
            .iter()
            .filter_map(|slot| read(&slot.state).shown.status)
            .max()
            .unwrap_or(Status::Healthy)
    }

    /// The critical components keeping the service from being ready
    /// (unchecked, or not healthy).
    pub fn failing(&self) -> Vec<Arc<str>> {
        let ready_at = if self.inner.degraded_is_ready {
            Status::Degraded
        } else {
            Status::Healthy
        };
        self.inner
            .slots
            .iter()
            .filter(|slot| slot.component.critical)
            .filter(|slot| {
                read(&slot.state)
                    .shown
                    .status
                    .is_none_or(|status| status > ready_at)
            })
            .map(|slot| slot.name.clone())
            .collect()
    }

    /// Whether `/ready` answers 200: serving (not starting, not draining)
    /// and every critical component healthy (or degraded, when
    /// [`degraded_is_ready`](HealthBuilder::degraded_is_ready)).
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Serving && self.failing().is_empty()
    }

    /// Turns `/ready` to 503 at once (the load balancer stops sending new
    /// requests) and waits the drain period while requests in flight
    /// finish. Give it to the server's graceful shutdown, after the
    /// signal: `axum::serve(..).with_graceful_shutdown(async move {
    /// shutdown_signal().await; health.drain().await })`.
    pub async fn drain(&self) {
        self.begin_drain();
        tokio::time::sleep(self.inner.drain).await;
    }

    /// Turns `/ready` to 503 at once, without waiting.
    pub fn begin_drain(&self) {
        self.inner.phase.store(DRAINING, Ordering::Release);
        tracing::info!(
            target: "plimsoll::health",
            drain_ms = self.inner.drain.as_millis() as u64,
            "draining: /ready answers 503"
        );
    }

    /// Runs every check once now (and reports the results), then returns.
    pub async fn check_now(&self) {
        let runs = (0..self.inner.slots.len()).map(|i| run_once(&self.inner, i));
        futures_util::future::join_all(runs).await;
    }

    /// How often each component is checked.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs component `i`'s check once, with its timeout, and records it.
async fn run_once(inner: &Inner, i: usize) {
    let slot = &inner.slots[i];
    let _one_at_a_time = slot.running.lock().await;
    // Tokio's clock: a paused runtime (a test) sees its own time.
    let started = tokio::time::Instant::now();
    // The whole check (its synchronous start too) runs under the timeout,
    // and a panic in it is a result, not the end of the component's loop.
    let run = std::panic::AssertUnwindSafe(async { slot.component.check.check().await });
    let report = match tokio::time::timeout(slot.component.timeout, run.catch_unwind()).await {
        Ok(Ok(report)) => report,
        Ok(Err(_)) => Report::unhealthy("check panicked"),
        Err(_) => Report::unhealthy(format!(
            "timed out after {} ms",
            slot.component.timeout.as_millis()
        )),
    };
    let latency = started.elapsed();
    inner.durations.observe(
        &Tenant::system(),
        &ComponentLabels {
            component: slot.name.clone(),
        },
        latency.as_secs_f64(),
    );
    let changed = {
        let mut tracked = write(&slot.state);
        record(&mut tracked, &slot.component, report, latency)
    };
    if let Some((from, to)) = changed {
        let component = &*slot.name;
        let from = from.map_or("unchecked", Status::as_str);
        // A warning when it gets worse; a recovery (or a healthy first
        // check) is news, not trouble.
        if to == Status::Healthy {
            tracing::info!(target: "plimsoll::health", component, from, to = to.as_str(), "component state changed");
        } else {
            tracing::warn!(target: "plimsoll::health", component, from, to = to.as_str(), "component state changed");
        }
    }
    // Serving once every critical component has been checked.
    if inner.phase.load(Ordering::Acquire) == STARTING
        && inner
            .slots
            .iter()
            .filter(|slot| slot.component.critical)
            .all(|slot| read(&slot.state).shown.status.is_some())
    {
        let _ =
            inner
                .phase
                .compare_exchange(STARTING, SERVING, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Applies one run's report; `Some((from, to))` when the reported status
/// changed.
fn record(
    tracked: &mut Tracked,
    component: &Component,
    report: Report,
    latency: Duration,
) -> Option<(Option<Status>, Status)> {
    let shown = &mut tracked.shown;
    shown.latency = latency;
    shown.last_checked = Some(SystemTime::now());
    shown.runs += 1;
    let before = shown.status;
    let after = match before {
        // The first result is reported at once.
        None => Some(report.status),
        Some(current) if current == report.status => {
            tracked.pending = None;
            Some(current)
        }
        Some(current) => {
            // Results in a row worse than the reported state (degraded or
            // unhealthy alike), or better: the streak's direction counts.
            let worse = report.status > current;
            let count = match tracked.pending {
                Some((was_worse, n)) if was_worse == worse => n + 1,
                _ => 1,
            };
            tracked.pending = Some((worse, count));
            let needed = if worse {
                component.fail_after
            } else {
                component.recover_after
            };
            (count >= needed).then_some(report.status)
        }
    };
    // The detail shown is the one of the state shown.
    let after = after?;
    shown.detail = report.detail.into_owned();
    shown.error = report.error;
    if before != Some(after) {
        tracked.pending = None;
    }
    shown.status = Some(after);
    (before != Some(after)).then_some((before, after))
}

/// Component `i`'s loop: a run every interval, until the registry goes.
async fn run_forever(inner: Weak<Inner>, i: usize, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        run_once(&inner, i).await;
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl HealthBuilder {
    /// The service's name, shown by `/status` (default `unknown_service`).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = name.into();
        self
    }

    /// The service's version, shown by `/status`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// How often every component is checked (default 10 s). Probes read
    /// the last results: however many arrive, a dependency is called once
    /// per interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long [`Health::drain`] waits with `/ready` at 503 before the
    /// server stops (default 10 s: a few of the load balancer's probe
    /// intervals).
    pub fn drain_period(mut self, period: Duration) -> Self {
        self.drain = period;
        self
    }

    /// Shows each check's raw error in `/status` and
    /// `/health/{component}` (default: no; errors can name hosts and
    /// addresses, so only the fixed detail is shown).
    pub fn show_errors(mut self, show: bool) -> Self {
        self.show_errors = show;
        self
    }

    /// Counts a degraded critical component as ready (default: no, only
    /// healthy ones are).
    pub fn degraded_is_ready(mut self, ready: bool) -> Self {
        self.degraded_is_ready = ready;
        self
    }

    /// Adds a component.
    pub fn component(mut self, component: Component) -> Self {
        self.components.push(component);
        self
    }

    /// Checks the settings, registers the health families (one registry
    /// per telemetry: a second one is a `Register` error) and starts
    /// checking every component in the background, on the current tokio
    /// runtime (each component on its own, so a hanging check delays no
    /// other). `/ready` answers 503 (`starting`) until every critical
    /// component has been checked once.
    pub fn build(self) -> Result<Health, HealthBuildError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| HealthBuildError::NoRuntime)?;
        if self.interval.is_zero() {
            return Err(HealthBuildError::ZeroDuration {
                field: "interval".into(),
            });
        }
        if self.components.len() > MAX_COMPONENTS {
            return Err(HealthBuildError::TooMany(self.components.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.components {
            if !valid_name(&c.name) || !seen.insert(c.name.clone()) {
                return Err(HealthBuildError::InvalidName(c.name.clone()));
            }
            if c.timeout.is_zero() {
                return Err(HealthBuildError::ZeroDuration {
                    field: format!("component {:?}: timeout", c.name),
                });
            }
            if c.fail_after == 0 || c.recover_after == 0 {
                return Err(HealthBuildError::ZeroThreshold {
                    field: format!("component {:?}: thresholds", c.name),
                });
            }
        }
        let slots: Vec<Slot> = self
            .components
            .into_iter()
            .map(|component| {
                let name: Arc<str> = component.name.as_str().into();
                Slot {
                    state: RwLock::new(Tracked {
                        shown: ComponentState {
                            name: name.clone(),
                            critical: component.critical,
                            status: None,
                            detail: "not checked yet".into(),
                            error: None,
                            latency: Duration::ZERO,
                            last_checked: None,
                            runs: 0,
                        },
                        pending: None,
                    }),
                    running: tokio::sync::Mutex::new(()),
                    name,
                    component,
                }
            })
            .collect();
        let durations = self.telemetry.declare(&HEALTH_CHECK_DURATION)?;
        let inner = Arc::new(Inner {
            service: self.service,
            version: self.version,
            started: Instant::now(),
            show_errors: self.show_errors,
            degraded_is_ready: self.degraded_is_ready,
            interval: self.interval,
            drain: self.drain,
            phase: AtomicU8::new(if slots.iter().any(|s| s.component.critical) {
                STARTING
            } else {
                SERVING
            }),
            slots,
            durations,
            tasks: RwLock::new(Vec::new()),
        });
        let weak = Arc::downgrade(&inner);
        self.telemetry.declare_scraped(&HEALTH_STATUS, move |out| {
            let Some(inner) = weak.upgrade() else { return };
            for slot in &inner.slots {
                if let Some(status) = read(&slot.state).shown.status {
                    let labels = ComponentLabels {
                        component: slot.name.clone(),
                    };
                    let _ = out.set(&Tenant::system(), &labels, status.value());
                }
            }
        })?;
        let tasks = (0..inner.slots.len())
            .map(|i| runtime.spawn(run_forever(Arc::downgrade(&inner), i, inner.interval)))
            .collect();
        *write(&inner.tasks) = tasks;
        Ok(Health { inner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> Component {
        Component::new("db", || async { Report::healthy() }).thresholds(3, 2)
    }

    fn tracked() -> Tracked {
        Tracked {
            shown: ComponentState {
                name: "db".into(),
                critical: true,
                status: None,
                detail: String::new(),
                error: None,
                latency: Duration::ZERO,
                last_checked: None,
                runs: 0,
            },
            pending: None,
        }
    }

    #[test]
    fn a_flapping_check_changes_the_state_only_after_enough_results_in_a_row() {
        let c = component();
        let mut t = tracked();
        let run = |t: &mut Tracked, r: Report| record(t, &c, r, Duration::ZERO);
        assert_eq!(
            run(&mut t, Report::healthy()),
            Some((None, Status::Healthy))
        );
        // Two failures, a success, two failures: never three in a row.
        for r in [
            Report::unhealthy("x"),
            Report::unhealthy("x"),
            Report::healthy(),
            Report::unhealthy("x"),
            Report::unhealthy("x"),
        ] {
            assert_eq!(run(&mut t, r), None);
            assert_eq!(t.shown.status, Some(Status::Healthy));
        }
        assert_eq!(
            run(&mut t, Report::unhealthy("x")),
            Some((Some(Status::Healthy), Status::Unhealthy))
        );
        assert_eq!(t.shown.detail, "x");
        assert_eq!(run(&mut t, Report::healthy()), None);
        assert_eq!(
            run(&mut t, Report::healthy()),
            Some((Some(Status::Unhealthy), Status::Healthy))
        );
        assert_eq!(t.shown.runs, 9);
    }

    #[test]
    fn results_worse_in_a_row_count_whether_degraded_or_unhealthy() {
        let c = component();
        let mut t = tracked();
        let run = |t: &mut Tracked, r: Report| record(t, &c, r, Duration::ZERO);
        run(&mut t, Report::healthy());
        assert_eq!(run(&mut t, Report::degraded("d")), None);
        assert_eq!(run(&mut t, Report::unhealthy("u")), None);
        // The third worse result in a row: reported, as it is.
        assert_eq!(
            run(&mut t, Report::degraded("d")),
            Some((Some(Status::Healthy), Status::Degraded))
        );
        assert_eq!(t.shown.detail, "d");
        // A pending change does not show its detail.
        assert_eq!(run(&mut t, Report::healthy()), None);
        assert_eq!(t.shown.detail, "d");
    }
}
