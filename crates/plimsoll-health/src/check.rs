//! What a check says, and the components that run checks.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The state of a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Working.
    Healthy,
    /// Working, but impaired (a saturated pool, an open breaker).
    Degraded,
    /// Not working.
    Unhealthy,
}

impl Status {
    /// `healthy`, `degraded` or `unhealthy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }

    /// The value of `health_status`: 1, 0.5 or 0.
    pub const fn value(self) -> f64 {
        match self {
            Status::Healthy => 1.0,
            Status::Degraded => 0.5,
            Status::Unhealthy => 0.0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one run of a check found: a status, a short detail safe to show
/// anyone (no hostnames, no connection strings), and the raw error, shown
/// only where the service allows it
/// ([`show_errors`](crate::HealthBuilder::show_errors)).
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The status.
    pub status: Status,
    /// A short, fixed text (`SELECT 1 failed`, `pool saturated (10/10)`).
    pub detail: Cow<'static, str>,
    /// The error behind it, which may name hosts or addresses.
    pub error: Option<String>,
}

impl Report {
    /// Healthy, detail `ok`.
    pub fn healthy() -> Self {
        Report {
            status: Status::Healthy,
            detail: Cow::Borrowed("ok"),
            error: None,
        }
    }

    /// Degraded, with a detail.
    pub fn degraded(detail: impl Into<Cow<'static, str>>) -> Self {
        Report {
            status: Status::Degraded,
            detail: detail.into(),
            error: None,
        }
    }

    /// Unhealthy, with a detail.
    pub fn unhealthy(detail: impl Into<Cow<'static, str>>) -> Self {
        Report {
            status: Status::Unhealthy,
            detail: detail.into(),
            error: None,
        }
    }

    /// The error behind the report (shown only where allowed).
    pub fn with_error(mut self, error: impl fmt::Display) -> Self {
        self.error = Some(error.to_string());
        self
    }
}

/// A boxed future of a [`Report`].
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Report> + Send + 'a>>;

/// An async health check. Any `Fn() -> impl Future<Output = Report>` is
/// one.
pub trait Check: Send + Sync + 'static {
    /// Runs the check once.
    fn check(&self) -> CheckFuture<'_>;
}

impl<F, Fut> Check for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Report> + Send + 'static,
{
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(self())
    }
}

/// A named dependency and its check: how long a run may take, whether the
/// service is ready without it, and how many results in a row change its
/// reported state.
#[derive(Clone)]
pub struct Component {
    pub(crate) name: String,
    pub(crate) check: Arc<dyn Check>,
    pub(crate) critical: bool,
    pub(crate) timeout: Duration,
    pub(crate) fail_after: u32,
    pub(crate) recover_after: u32,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .field("timeout", &self.timeout)
            .field("fail_after", &self.fail_after)
            .field("recover_after", &self.recover_after)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// A critical component named `name` (lower-case letters, digits,
    /// `_` and `-`) checked by `check`, each run allowed 2 s, its state
    /// changed by one result.
    pub fn new(name: impl Into<String>, check: impl Check) -> Self {
        Component {
            name: name.into(),
            check: Arc::new(check),
            critical: true,
            timeout: Duration::from_secs(2),
            fail_after: 1,
            recover_after: 1,
        }
    }

    /// Whether `/ready` needs it healthy (default: yes).
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// The longest a run may take; past it the run reports unhealthy
    /// (`timed out`). Default 2 s (the sqlx pool check needs more than
    /// its 1 s connection wait).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many worse results in a row turn its reported state worse
    /// (`fail_after`), and how many better ones in a row turn it better
    /// (`recover_after`): a flapping check is not reported as a new state
    /// on every run. Default 1 and 1; the first result is reported at once.
    pub fn thresholds(mut self, fail_after: u32, recover_after: u32) -> Self {
        self.fail_after = fail_after;
        self.recover_after = recover_after;
        self
    }
}
