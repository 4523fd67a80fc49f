//! SLOs and error budgets for plimsoll: declare an SLO once in code, get
//! the Prometheus recording rules of its error ratio over every window,
//! its error budget, and multi-window multi-burn-rate alerts.
//!
//! ```
//! use std::time::Duration;
//! use plimsoll_slo::{ServiceAlerts, Slo, Source, all_groups, rules_file};
//!
//! let availability = Slo::availability("orders-availability", Source::Http)
//!     .service("orders")
//!     .matching("route", "/api/v1/orders")
//!     .objective(99.9)
//!     .window_days(30)
//!     .build()
//!     .unwrap();
//! let latency = Slo::latency("orders-latency", Source::Http, Duration::from_millis(250))
//!     .service("orders")
//!     .objective(99.0)
//!     .build()
//!     .unwrap();
//! let yaml = rules_file(&all_groups(&[availability, latency], &ServiceAlerts::default()));
//! assert!(yaml.contains("record: slo:sli_error:ratio_rate5m"));
//! assert!(yaml.contains("alert: SloErrorBudgetBurn"));
//!
//! // A latency threshold must be a bucket boundary: the error names the nearest.
//! let err = Slo::latency("slow", Source::Http, Duration::from_millis(300)).service("orders").build();
//! assert_eq!(
//!     err.unwrap_err().to_string(),
//!     "sli.threshold: 0.3 s is not a bucket boundary of http_request_duration_seconds; the nearest are 0.25 s and 0.5 s"
//! );
//! ```
//!
//! # The rules
//!
//! - `slo:sli_error:ratio_rate<window>{slo, service}` for 5m, 30m, 1h, 2h,
//!   6h, 1d, 3d and the SLO's window: the rate of bad events divided by
//!   the rate of all events (rates are divided, never ratios averaged).
//!   With no traffic the ratio is NaN, and no alert compares true on NaN.
//! - `slo:error_budget_remaining:ratio{slo, service}`: 1 − the error ratio
//!   over the SLO window / the budget; no traffic spends nothing (1, not NaN).
//! - `SloErrorBudgetBurn{severity="page"}` when the budget burns 14.4×
//!   over 1 h and 5 m, or 6× over 6 h and 30 m; `severity="ticket"` at 3×
//!   over 1 d and 2 h, or 1× over 3 d and 6 h — the factors for a 30-day
//!   window, derived for others from the share of budget each pair spends
//!   ([`burn_factor`]).
//! - A latency SLI counts the requests above its threshold as bad, reading
//!   the histogram's bucket at the threshold whichever way it is spelled
//!   (`le="1"` or Prometheus 3's `le="1.0"`); so the threshold must be a
//!   bucket boundary, and [`SloBuilder::build`] says so when it is not.
//! - [`ServiceAlerts`]: the catalogue's standard alerts (5xx ratio, p95
//!   latency, target down, cardinality overflow, spans dropped, a pool
//!   exhausted, a breaker open).
//!
//! Write them as a rules file ([`rules_file`]) or a Kubernetes
//! `PrometheusRule` ([`prometheus_rule`]).
//!
//! # Dashboards and live gauges
//!
//! [`dashboard`] writes a Grafana dashboard (RED by route, a per-tenant
//! breakdown with a `tenant` variable, each SLO's compliance, budget and
//! burn rate, the data layer, the breakers and limits) whose datasource is
//! a variable. [`LiveSlos`] computes compliance, burn rates and the budget
//! in the process, at scrape time ([`live`]).

mod dashboard;
#[cfg(feature = "cli")]
mod file;
pub mod live;
mod rules;
mod spec;

pub use dashboard::{DATASOURCE, PanelQuery, dashboard, dashboard_queries};
#[cfg(feature = "cli")]
pub use file::{FileError, parse_file};
pub use live::{LiveError, LiveSlos};
pub use rules::{
    BURN_WINDOWS, BurnWindow, Group, Rule, ServiceAlerts, WINDOWS, all_groups, burn_factor,
    prometheus_rule, rates, ratio_name, rules_file, slo_groups,
};
pub use spec::{Sli, Slo, SloBuilder, SloError, Source};
