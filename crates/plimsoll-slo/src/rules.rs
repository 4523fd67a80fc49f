//! Prometheus rules from SLOs: the SLI's error ratio recorded over each
//! window, the error budget left, and multi-window multi-burn-rate alerts;
//! plus the standard service alerts of the catalogue.

use std::fmt::Write as _;
use std::time::Duration;

use plimsoll_core::classify::{GrpcCode, GrpcFailures};
use plimsoll_core::family::FamilyDecl;

use crate::spec::{Sli, Slo, Source};

/// The windows the error ratio is recorded over (the SLO's own window too).
pub const WINDOWS: &[&str] = &["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// A burn-rate alert: fires when, over both its long and its short window,
/// the budget burns fast enough to spend `budget_share` of it within the
/// long window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurnWindow {
    /// `page` or `ticket`.
    pub severity: &'static str,
    /// The long window.
    pub long: &'static str,
    /// The short window (a twelfth of the long one): the alert stops soon
    /// after the burn does.
    pub short: &'static str,
    /// The share of the whole budget spent over the long window at this burn.
    pub budget_share: f64,
}

/// The SRE workbook's windows (Sloth's defaults): page on 2% of the budget
/// in 1 h or 5% in 6 h, ticket on 10% in 1 d or 10% in 3 d.
pub const BURN_WINDOWS: &[BurnWindow] = &[
    BurnWindow {
        severity: "page",
        long: "1h",
        short: "5m",
        budget_share: 0.02,
    },
    BurnWindow {
        severity: "page",
        long: "6h",
        short: "30m",
        budget_share: 0.05,
    },
    BurnWindow {
        severity: "ticket",
        long: "1d",
        short: "2h",
        budget_share: 0.10,
    },
    BurnWindow {
        severity: "ticket",
        long: "3d",
        short: "6h",
        budget_share: 0.10,
    },
];

/// A PromQL duration in seconds.
/// A window written as PromQL writes it (`5m`, `1h`, `3d`) as a duration.
pub(crate) fn window_duration(window: &str) -> Duration {
    let (n, unit) = window.split_at(window.len().saturating_sub(1));
    let n: u64 = n.parse().unwrap_or(0);
    Duration::from_secs(
        n * match unit {
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => 1,
        },
    )
}

/// The burn factor of `burn` for an SLO window: how many times faster than
/// "exactly the whole budget over the window" the budget burns.
/// For 30 days: 14.4, 6, 3, 1.
pub fn burn_factor(burn: &BurnWindow, slo_window: Duration) -> f64 {
    burn.budget_share * slo_window.as_secs_f64() / window_duration(burn.long).as_secs_f64()
}

/// `x` without the binary noise of its last digits (1 − 0.999 is
/// 0.0010000000000000009): twelve significant digits.
pub(crate) fn round(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// The SLO window as a PromQL range (`30d`).
fn slo_range(slo: &Slo) -> String {
    format!("{}d", slo.window.as_secs() / 86_400)
}

/// A float as PromQL and Prometheus 3 write a bucket bound: shortest form,
/// and with a decimal point (`1` and `1.0`; `0.25` once).
fn le_forms(bound: f64) -> Vec<String> {
    let short = format!("{bound}");
    let mut forms = vec![short.clone()];
    if !short.contains(['.', 'e', 'E']) {
        forms.push(format!("{short}.0"));
    }
    forms
}

/// A family's name as the SLO's telemetry exposes it.
fn metric(slo: &Slo, family: &FamilyDecl) -> String {
    format!("{}{}", slo.prefix, family.name_for(slo.naming))
}

/// A label's name (catalogue name given) as the SLO's telemetry exposes it.
fn label(slo: &Slo, family: &FamilyDecl, name: &str) -> String {
    family
        .labels()
        .iter()
        .find(|l| l.name() == name)
        .map_or_else(|| name.to_string(), |l| l.name_for(slo.naming).to_string())
}

/// The label matchers of the SLO's selector on `family`, plus `extra`.
fn matchers(slo: &Slo, family: &FamilyDecl, extra: &str) -> String {
    let mut out: Vec<String> = slo
        .selector
        .iter()
        .map(|(k, v)| format!("{}=\"{v}\"", label(slo, family, k)))
        .collect();
    if !extra.is_empty() {
        out.push(extra.to_string());
    }
    out.join(",")
}

fn grpc_failure_codes() -> String {
    let failures = GrpcFailures::default();
    GrpcCode::ALL
        .iter()
        .filter(|c| failures.is_failure(**c))
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join("|")
}

/// `sum(...)` or `sum by (tenant_id) (...)`.
fn sum(slo: &Slo, inner: &str) -> String {
    if slo.per_tenant {
        format!("sum by (tenant_id) ({inner})")
    } else {
        format!("sum({inner})")
    }
}

/// The SLI's bad events and all events per second over `window`.
pub fn rates(slo: &Slo, window: &str) -> (String, String) {
    match &slo.sli {
        Sli::Availability { source } => {
            let decl = source.requests();
            let family = metric(slo, decl);
            let bad = match source {
                Source::Http => format!("{}=~\"5..\"", label(slo, decl, "status_code")),
                Source::Grpc => format!(
                    "{}=~\"{}\"",
                    label(slo, decl, "grpc_code"),
                    grpc_failure_codes()
                ),
            };
            let rate = |extra: &str| {
                sum(
                    slo,
                    &format!("rate({family}{{{}}}[{window}])", matchers(slo, decl, extra)),
                )
            };
            (rate(&bad), rate(""))
        }
        Sli::Latency { source, threshold } => {
            let decl = source.durations();
            let family = metric(slo, decl);
            let le = le_forms(*threshold)
                .iter()
                .map(|f| f.replace('.', "\\\\."))
                .collect::<Vec<_>>()
                .join("|");
            let total = sum(
                slo,
                &format!(
                    "rate({family}_count{{{}}}[{window}])",
                    matchers(slo, decl, "")
                ),
            );
            let good = sum(
                slo,
                &format!(
                    "rate({family}_bucket{{{}}}[{window}])",
                    matchers(slo, decl, &format!("le=~\"{le}\""))
                ),
            );
            (format!("({total} - {good})"), total)
        }
        Sli::Custom { errors, total } => (
            format!("({})", errors.replace("$window", window)),
            format!("({})", total.replace("$window", window)),
        ),
        Sli::CustomGood { good, total } => {
            let total = format!("({})", total.replace("$window", window));
            (
                format!("({total} - ({}))", good.replace("$window", window)),
                total,
            )
        }
    }
}

/// One rule of a group.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// A recording rule.
    Record {
        /// The series it records.
        record: String,
        /// Its expression.
        expr: String,
        /// Its labels.
        labels: Vec<(String, String)>,
    },
    /// An alerting rule.
    Alert {
        /// The alert's name.
        alert: String,
        /// Its expression.
        expr: String,
        /// How long it must hold before firing (`None`: at once).
        for_: Option<String>,
        /// Its labels.
        labels: Vec<(String, String)>,
        /// Its annotations.
        annotations: Vec<(String, String)>,
    },
}

/// A rule group.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// Its rules, in evaluation order.
    pub rules: Vec<Rule>,
}

/// The name of the recorded error ratio over `window`.
pub fn ratio_name(window: &str) -> String {
    format!("slo:sli_error:ratio_rate{window}")
}

fn slo_labels(slo: &Slo) -> Vec<(String, String)> {
    vec![
        ("slo".into(), slo.name.clone()),
        ("service".into(), slo.service.clone()),
    ]
}

/// The selector of one SLO's recorded series.
fn recorded(slo: &Slo, window: &str) -> String {
    format!(
        "{}{{slo=\"{}\",service=\"{}\"}}",
        ratio_name(window),
        slo.name,
        slo.service
    )
}

/// The recording rules and alerts of one SLO.
pub fn slo_groups(slo: &Slo) -> Vec<Group> {
    let labels = slo_labels(slo);
    let slo_window = slo_range(slo);
    let mut windows: Vec<String> = WINDOWS.iter().map(|w| w.to_string()).collect();
    if !windows.contains(&slo_window) {
        windows.push(slo_window.clone());
    }
    let mut records: Vec<Rule> = windows
        .iter()
        .map(|w| {
            let (bad, total) = rates(slo, w);
            Rule::Record {
                record: ratio_name(w),
                expr: format!("{bad}\n/\n{total}"),
                labels: labels.clone(),
            }
        })
        .collect();
    // The budget left over the SLO window; no traffic spends nothing (no NaN).
    let (bad, total) = rates(slo, &slo_window);
    records.push(Rule::Record {
        record: "slo:error_budget_remaining:ratio".into(),
        expr: format!(
            "1 - (\n  (({bad}) / ({total}) > 0)\n  or\n  ({total} * 0)\n) / {budget}",
            budget = round(slo.error_budget())
        ),
        labels: labels.clone(),
    });
    records.push(Rule::Record {
        record: "slo:objective:ratio".into(),
        expr: format!("vector({})", round(slo.objective / 100.0)),
        labels: labels.clone(),
    });

    let mut alerts = Vec::new();
    for (severity, on) in [("page", slo.page_alert), ("ticket", slo.ticket_alert)] {
        if !on {
            continue;
        }
        let parts: Vec<String> = BURN_WINDOWS
            .iter()
            .filter(|b| b.severity == severity)
            .map(|b| {
                let threshold = round(burn_factor(b, slo.window) * slo.error_budget());
                format!(
                    "(\n  {} > {threshold}\n  and\n  {} > {threshold}\n)",
                    recorded(slo, b.long),
                    recorded(slo, b.short)
                )
            })
            .collect();
        let mut alert_labels = labels.clone();
        alert_labels.push(("severity".into(), severity.into()));
        alerts.push(Rule::Alert {
            alert: "SloErrorBudgetBurn".into(),
            expr: parts.join("\nor\n"),
            for_: None,
            labels: alert_labels,
            annotations: annotations(
                slo,
                &format!(
                    "{} ({}) is burning its error budget too fast ({severity})",
                    slo.name, slo.service
                ),
            ),
        });
    }
    if slo.absent_alert {
        let family = match &slo.sli {
            Sli::Availability { source } => {
                Some((metric(slo, source.requests()), source.requests()))
            }
            Sli::Latency { source, .. } => Some((
                format!("{}_count", metric(slo, source.durations())),
                source.durations(),
            )),
            Sli::Custom { .. } | Sli::CustomGood { .. } => None,
        };
        if let Some((family, decl)) = family {
            let mut alert_labels = labels.clone();
            alert_labels.push(("severity".into(), "ticket".into()));
            alerts.push(Rule::Alert {
                alert: "SloNoData".into(),
                expr: format!("absent({family}{{{}}})", matchers(slo, decl, "")),
                for_: Some("10m".into()),
                labels: alert_labels,
                annotations: annotations(
                    slo,
                    &format!(
                        "{} ({}) has no requests to judge: is the target gone?",
                        slo.name, slo.service
                    ),
                ),
            });
        }
    }
    vec![
        Group {
            name: format!("slo-{}-{}-recordings", slo.service, slo.name),
            rules: records,
        },
        Group {
            name: format!("slo-{}-{}-alerts", slo.service, slo.name),
            rules: alerts,
        },
    ]
}

fn annotations(slo: &Slo, summary: &str) -> Vec<(String, String)> {
    let mut out = vec![("summary".to_string(), summary.to_string())];
    out.push((
        "description".into(),
        format!(
            "Objective {}% over {} days.",
            slo.objective,
            slo.window.as_secs() / 86_400
        ),
    ));
    if let Some(runbook) = &slo.runbook {
        out.push(("runbook_url".into(), runbook.clone()));
    }
    if let Some(dashboard) = &slo.dashboard {
        out.push(("dashboard".into(), dashboard.clone()));
    }
    out
}

/// Thresholds of the standard service alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceAlerts {
    /// 5xx share of a route's requests over 5 minutes (default 0.05).
    pub error_ratio: f64,
    /// p95 of a route's latency over 5 minutes, seconds (default 1).
    pub p95_seconds: f64,
}

impl Default for ServiceAlerts {
    fn default() -> Self {
        Self {
            error_ratio: 0.05,
            p95_seconds: 1.0,
        }
    }
}

impl ServiceAlerts {
    /// The catalogue's standard alerts: 5xx ratio, p95 latency, target
    /// down, cardinality overflow rising, spans dropped, a pool exhausted,
    /// a breaker open.
    pub fn group(&self) -> Group {
        let alert =
            |name: &str, expr: String, for_: &str, severity: &str, summary: &str| Rule::Alert {
                alert: name.into(),
                expr,
                for_: Some(for_.into()),
                labels: vec![("severity".into(), severity.into())],
                annotations: vec![("summary".into(), summary.into())],
            };
        Group {
            name: "plimsoll-service".into(),
            rules: vec![
                alert(
                    "HttpHighErrorRatio",
                    format!(
                        "sum by (route) (rate(http_requests_total{{status_code=~\"5..\"}}[5m]))\n/\nsum by (route) (rate(http_requests_total[5m]))\n> {}",
                        self.error_ratio
                    ),
                    "5m",
                    "page",
                    "{{ $labels.route }} answers 5xx to {{ $value | humanizePercentage }} of requests",
                ),
                alert(
                    "HttpHighLatencyP95",
                    format!(
                        "histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket[5m])))\n> {}",
                        self.p95_seconds
                    ),
                    "10m",
                    "ticket",
                    "p95 latency of {{ $labels.route }} is {{ $value | humanizeDuration }}",
                ),
                alert("TargetDown", "up == 0".into(), "5m", "page", "{{ $labels.instance }} cannot be scraped"),
                alert(
                    "CardinalityOverflowRising",
                    "sum by (metric, label) (rate(plimsoll_cardinality_overflow_total[15m])) > 0".into(),
                    "15m",
                    "ticket",
                    "{{ $labels.metric }}.{{ $labels.label }} is past its bound: values fold into __other__",
                ),
                alert(
                    "SpansDropped",
                    "sum(rate(plimsoll_spans_dropped_total[5m])) > 0".into(),
                    "10m",
                    "ticket",
                    "traces are being dropped before export",
                ),
                alert(
                    "DbPoolExhausted",
                    "max by (database) (db_connection_pool_size{state=\"active\"})\n>= on (database)\nmax by (database) (db_connection_pool_size{state=\"max\"})".into(),
                    "5m",
                    "page",
                    "every connection of {{ $labels.database }} is in use",
                ),
                alert(
                    "CircuitBreakerOpen",
                    "max by (service) (circuit_breaker_state) == 1".into(),
                    "1m",
                    "ticket",
                    "the breaker in front of {{ $labels.service }} is open",
                ),
            ],
        }
    }
}

/// A YAML double-quoted string.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render_groups(groups: &[Group], indent: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{indent}groups:");
    for group in groups {
        let _ = writeln!(out, "{indent}  - name: {}", quoted(&group.name));
        let _ = writeln!(out, "{indent}    rules:");
        for rule in &group.rules {
            let (head, expr, labels) = match rule {
                Rule::Record {
                    record,
                    expr,
                    labels,
                } => (format!("record: {record}"), expr, labels),
                Rule::Alert {
                    alert,
                    expr,
                    labels,
                    ..
                } => (format!("alert: {alert}"), expr, labels),
            };
            let _ = writeln!(out, "{indent}      - {head}");
            let _ = writeln!(out, "{indent}        expr: |-");
            for line in expr.lines() {
                let _ = writeln!(out, "{indent}          {line}");
            }
            if let Rule::Alert {
                for_: Some(for_), ..
            } = rule
            {
                let _ = writeln!(out, "{indent}        for: {for_}");
            }
            let mut maps = vec![("labels", labels)];
            if let Rule::Alert { annotations, .. } = rule {
                maps.push(("annotations", annotations));
            }
            for (key, map) in maps {
                if map.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "{indent}        {key}:");
                for (k, v) in map {
                    let _ = writeln!(out, "{indent}          {k}: {}", quoted(v));
                }
            }
        }
    }
    out
}

/// A Prometheus rules file (`rule_files:`, `promtool check rules`).
pub fn rules_file(groups: &[Group]) -> String {
    format!(
        "# Generated by plimsoll-slo. Do not edit: regenerate.\n{}",
        render_groups(groups, "")
    )
}

/// The same rules as a Kubernetes `PrometheusRule` (prometheus-operator).
pub fn prometheus_rule(name: &str, groups: &[Group]) -> String {
    format!(
        "# Generated by plimsoll-slo. Do not edit: regenerate.\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {}\n  labels:\n    app.kubernetes.io/managed-by: plimsoll\nspec:\n{}",
        quoted(name),
        render_groups(groups, "  ")
    )
}

/// Every group for `slos`, then the standard service alerts. Two SLOs with
/// the same name and service would record the same series and name the
/// same groups: give each its own name (SLO files are checked for it).
pub fn all_groups(slos: &[Slo], service_alerts: &ServiceAlerts) -> Vec<Group> {
    let mut groups: Vec<Group> = slos.iter().flat_map(slo_groups).collect();
    groups.push(service_alerts.group());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_factors_follow_from_the_window() {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        let factors: Vec<f64> = BURN_WINDOWS
            .iter()
            .map(|b| burn_factor(b, days(30)))
            .collect();
        for (got, want) in factors.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{factors:?}");
        }
        let factors: Vec<f64> = BURN_WINDOWS
            .iter()
            .map(|b| burn_factor(b, days(28)))
            .collect();
        for (got, want) in factors.iter().zip([13.44, 5.6, 2.8, 0.9333333333333333]) {
            assert!((got - want).abs() < 1e-9, "{factors:?}");
        }
    }

    #[test]
    fn bucket_bounds_match_both_spellings() {
        assert_eq!(le_forms(1.0), ["1", "1.0"]);
        assert_eq!(le_forms(0.25), ["0.25"]);
        assert_eq!(le_forms(10.0), ["10", "10.0"]);
    }
}
