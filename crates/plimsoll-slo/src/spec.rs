//! SLO specs: what is measured (the SLI), the objective, the window, and
//! the checks that name the field of anything wrong.

use std::fmt;
use std::time::Duration;

use plimsoll_core::Naming;
use plimsoll_core::family::FamilyDecl;
use plimsoll_http::families as http;

/// The requests an SLI reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The HTTP server families (`http_requests_total`,
    /// `http_request_duration_seconds`).
    Http,
    /// The gRPC server families (`grpc_server_handled_total`,
    /// `grpc_server_handling_seconds`).
    Grpc,
}

impl Source {
    /// The counter of requests by outcome.
    pub fn requests(self) -> &'static FamilyDecl {
        match self {
            Source::Http => &http::HTTP_REQUESTS,
            Source::Grpc => &http::GRPC_SERVER_HANDLED,
        }
    }

    /// The duration histogram.
    pub fn durations(self) -> &'static FamilyDecl {
        match self {
            Source::Http => &http::HTTP_REQUEST_DURATION,
            Source::Grpc => &http::GRPC_SERVER_HANDLING,
        }
    }
}

/// What an SLO measures.
#[derive(Clone, Debug, PartialEq)]
pub enum Sli {
    /// The share of requests that did not fail (HTTP 5xx; the gRPC codes
    /// that are the server's failures).
    Availability {
        /// Which families.
        source: Source,
    },
    /// The share of requests that finished within `threshold` seconds (a
    /// bucket boundary of the duration histogram).
    Latency {
        /// Which families.
        source: Source,
        /// The threshold, in seconds.
        threshold: f64,
    },
    /// Your own PromQL: the rate of bad events and of all events, each an
    /// expression with `$window` where the range goes (`sum(rate(x[$window]))`).
    Custom {
        /// Bad events per second over `$window`.
        errors: String,
        /// All events per second over `$window`.
        total: String,
    },
    /// Your own PromQL as good and total events, each with `$window`.
    CustomGood {
        /// Good events per second over `$window`.
        good: String,
        /// All events per second over `$window`.
        total: String,
    },
}

/// An invalid SLO; the message names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// A name that is not usable in a rule or alert name.
    #[error(
        "{field}: {value:?} is not usable: names take letters, digits, '-' and '_' (a metric prefix: letters, digits, '_' and ':', not starting with a digit)"
    )]
    InvalidName {
        /// `name` or `service`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The objective is outside (0, 100).
    #[error("objective: must be a percentage in (0, 100), got {0}")]
    Objective(f64),
    /// The window is shorter than a day or not whole days.
    #[error(
        "window: must be a whole number of days, at least 3 (the longest alert window), got {0:?}"
    )]
    Window(Duration),
    /// A latency threshold that is not a bucket boundary of its histogram:
    /// the ratio of requests under it cannot be read from the buckets.
    #[error(
        "sli.threshold: {threshold} s is not a bucket boundary of {family}; the nearest are {below} and {above}"
    )]
    NotABucket {
        /// The threshold given.
        threshold: f64,
        /// The histogram.
        family: &'static str,
        /// The nearest boundary below (or `none`).
        below: String,
        /// The nearest boundary above (or `none`).
        above: String,
    },
    /// A selector names a label the family does not have.
    #[error("selector: {family} has no label {label:?} (labels: {known:?})")]
    UnknownLabel {
        /// The family.
        family: &'static str,
        /// The label given.
        label: String,
        /// The family's labels.
        known: Vec<&'static str>,
    },
    /// An objective and window for which an alert's threshold is an error
    /// ratio of 1 or more: the alert could never fire.
    #[error(
        "objective: {objective}% over {days} days makes the {severity} alert over {long} wait for an error ratio of {threshold:.3}, which can never be reached"
    )]
    Unreachable {
        /// The objective.
        objective: f64,
        /// The window in days.
        days: u64,
        /// `page` or `ticket`.
        severity: &'static str,
        /// The alert's long window.
        long: &'static str,
        /// The error ratio it would need.
        threshold: f64,
    },
    /// A setting that a custom SLI (your own PromQL) does not take.
    #[error("{field}: a custom SLI carries its own selection in its PromQL")]
    NotForCustom {
        /// The setting.
        field: &'static str,
    },
    /// A custom SLI expression without `$window`.
    #[error("sli.{field}: the expression must contain $window where the range goes")]
    NoWindow {
        /// `errors`, `good` or `total`.
        field: &'static str,
    },
    /// A label value with a character that cannot go into a selector.
    #[error("selector: the value of {label:?} must not contain '\"', '\\\\' or a line break")]
    InvalidValue {
        /// The label.
        label: String,
    },
}

/// An SLO: declared once, checked, then turned into rules and gauges.
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    pub(crate) name: String,
    pub(crate) service: String,
    pub(crate) sli: Sli,
    pub(crate) objective: f64,
    pub(crate) window: Duration,
    pub(crate) selector: Vec<(String, String)>,
    pub(crate) per_tenant: bool,
    pub(crate) runbook: Option<String>,
    pub(crate) dashboard: Option<String>,
    pub(crate) absent_alert: bool,
    /// Which burn-rate alerts to write (`page`, `ticket`).
    pub(crate) page_alert: bool,
    pub(crate) ticket_alert: bool,
    /// How the telemetry names its metrics: the scheme and the prefix.
    pub(crate) naming: Naming,
    pub(crate) prefix: String,
}

impl Slo {
    /// An availability SLO named `name` over the `source` families.
    pub fn availability(name: &str, source: Source) -> SloBuilder {
        SloBuilder::new(name, Sli::Availability { source })
    }

    /// A latency SLO: the share of requests under `threshold`.
    pub fn latency(name: &str, source: Source, threshold: Duration) -> SloBuilder {
        SloBuilder::new(
            name,
            Sli::Latency {
                source,
                threshold: threshold.as_secs_f64(),
            },
        )
    }

    /// An SLO over your own PromQL rates (see [`Sli::Custom`]).
    pub fn custom(name: &str, errors: &str, total: &str) -> SloBuilder {
        SloBuilder::new(
            name,
            Sli::Custom {
                errors: errors.into(),
                total: total.into(),
            },
        )
    }

    /// An SLO over your own PromQL rates of good and of all events.
    pub fn custom_good(name: &str, good: &str, total: &str) -> SloBuilder {
        SloBuilder::new(
            name,
            Sli::CustomGood {
                good: good.into(),
                total: total.into(),
            },
        )
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The service it belongs to.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// What it measures.
    pub fn sli(&self) -> &Sli {
        &self.sli
    }

    /// The objective, in percent (99.9).
    pub fn objective(&self) -> f64 {
        self.objective
    }

    /// The share of events that may fail: `1 - objective / 100`.
    pub fn error_budget(&self) -> f64 {
        1.0 - self.objective / 100.0
    }

    /// The compliance window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The label matchers its SLI is restricted to.
    pub fn selector(&self) -> &[(String, String)] {
        &self.selector
    }

    /// Whether rules are computed per tenant.
    pub fn per_tenant(&self) -> bool {
        self.per_tenant
    }
}

/// Builds an [`Slo`].
#[derive(Clone, Debug)]
pub struct SloBuilder {
    slo: Slo,
    buckets: Vec<f64>,
}

impl SloBuilder {
    fn new(name: &str, sli: Sli) -> Self {
        Self {
            slo: Slo {
                name: name.into(),
                service: String::new(),
                sli,
                objective: 99.9,
                window: Duration::from_secs(30 * 86_400),
                selector: Vec::new(),
                per_tenant: false,
                runbook: None,
                dashboard: None,
                absent_alert: false,
                page_alert: true,
                ticket_alert: true,
                naming: Naming::Prometheus,
                prefix: String::new(),
            },
            buckets: plimsoll_core::DEFAULT_DURATION_BUCKETS.to_vec(),
        }
    }

    /// The service it belongs to (a label on every rule and alert).
    pub fn service(mut self, service: &str) -> Self {
        self.slo.service = service.into();
        self
    }

    /// The objective in percent, in (0, 100) (default 99.9).
    pub fn objective(mut self, percent: f64) -> Self {
        self.slo.objective = percent;
        self
    }

    /// The compliance window, whole days (default 30 days).
    pub fn window_days(mut self, days: u64) -> Self {
        self.slo.window = Duration::from_secs(days.saturating_mul(86_400));
        self
    }

    /// The compliance window (whole days).
    pub fn window(mut self, window: Duration) -> Self {
        self.slo.window = window;
        self
    }

    /// Restricts the SLI to requests whose `label` is `value` (`route`,
    /// `method`, `tenant_id`, `grpc_service` …).
    pub fn matching(mut self, label: &str, value: &str) -> Self {
        self.slo.selector.push((label.into(), value.into()));
        self
    }

    /// Computes the rules and alerts per tenant (`sum by (tenant_id)`).
    pub fn per_tenant(mut self) -> Self {
        self.slo.per_tenant = true;
        self
    }

    /// The runbook linked from its alerts.
    pub fn runbook(mut self, url: &str) -> Self {
        self.slo.runbook = Some(url.into());
        self
    }

    /// The dashboard linked from its alerts.
    pub fn dashboard(mut self, url: &str) -> Self {
        self.slo.dashboard = Some(url.into());
        self
    }

    /// Also alerts when its requests have no series at all (the target is gone).
    pub fn absent_alert(mut self) -> Self {
        self.slo.absent_alert = true;
        self
    }

    /// The naming scheme of the telemetry whose metrics the rules read
    /// (default [`Naming::Prometheus`]): the family and label names follow.
    pub fn naming(mut self, naming: Naming) -> Self {
        self.slo.naming = naming;
        self
    }

    /// The telemetry's metric prefix (`with_prefix`), written before every
    /// family name the rules read (`shop_` reads `shop_http_requests_total`).
    pub fn metric_prefix(mut self, prefix: &str) -> Self {
        self.slo.prefix = prefix.into();
        self
    }

    /// Leaves out the page (or ticket) burn-rate alert.
    pub fn without_alert(mut self, severity: &str) -> Self {
        match severity {
            "page" => self.slo.page_alert = false,
            "ticket" => self.slo.ticket_alert = false,
            _ => {}
        }
        self
    }

    /// The bucket boundaries of the duration histogram a latency SLI reads
    /// (default: plimsoll's default duration buckets; give the telemetry's
    /// `buckets_for(..)` when they were changed).
    pub fn buckets(mut self, buckets: &[f64]) -> Self {
        self.buckets = buckets.to_vec();
        self
    }

    /// Checks every field.
    pub fn build(self) -> Result<Slo, SloError> {
        let mut slo = self.slo;
        for (field, value) in [("name", &slo.name), ("service", &slo.service)] {
            let ok = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(SloError::InvalidName {
                    field,
                    value: value.clone(),
                });
            }
        }
        let prefix_ok = slo.prefix.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
        if !prefix_ok {
            return Err(SloError::InvalidName {
                field: "metric_prefix",
                value: slo.prefix.clone(),
            });
        }
        if !(slo.objective > 0.0 && slo.objective < 100.0) {
            return Err(SloError::Objective(slo.objective));
        }
        // The longest alert window is 3 days: a shorter SLO window cannot
        // hold it.
        if slo.window.as_secs() < 3 * 86_400
            || !slo.window.as_secs().is_multiple_of(86_400)
            || slo.window.subsec_nanos() != 0
        {
            return Err(SloError::Window(slo.window));
        }
        for burn in crate::rules::BURN_WINDOWS {
            let threshold = crate::rules::burn_factor(burn, slo.window) * slo.error_budget();
            if threshold >= 1.0 {
                return Err(SloError::Unreachable {
                    objective: slo.objective,
                    days: slo.window.as_secs() / 86_400,
                    severity: burn.severity,
                    long: burn.long,
                    threshold,
                });
            }
        }
        let family = match &mut slo.sli {
            Sli::Availability { source } => Some(source.requests()),
            Sli::Latency { source, threshold } => {
                *threshold = check_bucket(*threshold, source.durations(), &self.buckets)?;
                Some(source.durations())
            }
            Sli::Custom { errors, total } => {
                has_window(&[("errors", &*errors), ("total", &*total)])?;
                None
            }
            Sli::CustomGood { good, total } => {
                has_window(&[("good", &*good), ("total", &*total)])?;
                None
            }
        };
        if family.is_none() {
            // Your own PromQL carries its own selection.
            for (field, set) in [
                ("selector", !slo.selector.is_empty()),
                ("per_tenant", slo.per_tenant),
                ("absent_alert", slo.absent_alert),
            ] {
                if set {
                    return Err(SloError::NotForCustom { field });
                }
            }
        }
        for (label, value) in &slo.selector {
            if let Some(family) = family {
                let known: Vec<&'static str> = std::iter::once("tenant_id")
                    .chain(family.labels().iter().map(|l| l.name()))
                    .collect();
                if !known.contains(&label.as_str()) {
                    return Err(SloError::UnknownLabel {
                        family: family.name(),
                        label: label.clone(),
                        known,
                    });
                }
            }
            if value.contains(['"', '\\', '\n', '\r']) {
                return Err(SloError::InvalidValue {
                    label: label.clone(),
                });
            }
        }
        Ok(slo)
    }
}

fn has_window(exprs: &[(&'static str, &str)]) -> Result<(), SloError> {
    for (field, expr) in exprs {
        if !expr.contains("$window") {
            return Err(SloError::NoWindow { field });
        }
    }
    Ok(())
}

/// The bucket bound the threshold is (within rounding): the value the
/// exposition writes, used from then on.
fn check_bucket(threshold: f64, family: &FamilyDecl, buckets: &[f64]) -> Result<f64, SloError> {
    if let Some(bound) = buckets
        .iter()
        .find(|b| (*b - threshold).abs() <= threshold.abs() * 1e-12)
    {
        return Ok(*bound);
    }
    let show = |b: Option<&f64>| b.map_or_else(|| "none".to_string(), |b| format!("{b} s"));
    Err(SloError::NotABucket {
        threshold,
        family: family.name(),
        below: show(buckets.iter().rev().find(|b| **b < threshold)),
        above: show(buckets.iter().find(|b| **b > threshold)),
    })
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}% over {} days",
            self.name,
            self.service,
            self.objective,
            self.window.as_secs() / 86_400
        )
    }
}
