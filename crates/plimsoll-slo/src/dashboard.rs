//! Grafana dashboards from SLOs: RED by route, a per-tenant breakdown, SLO
//! compliance and budget, the data layer and the breakers. The datasource
//! is a variable, never a hard-coded uid.

use serde_json::{Value, json};

use crate::rules::ratio_name;
use crate::spec::Slo;

/// The datasource variable every panel reads from.
pub const DATASOURCE: &str = "${datasource}";

/// A query of a dashboard panel, as Grafana sends it (with `$tenant` and
/// `$__rate_interval` in it).
#[derive(Clone, Debug, PartialEq)]
pub struct PanelQuery {
    /// The panel's title.
    pub panel: String,
    /// The row it is in.
    pub row: &'static str,
    /// The PromQL.
    pub expr: String,
}

fn queries(slos: &[Slo]) -> Vec<PanelQuery> {
    let q = |row: &'static str, panel: &str, expr: String| PanelQuery {
        panel: panel.into(),
        row,
        expr,
    };
    let t = r#"tenant_id=~"$tenant""#;
    let mut out = vec![
        q(
            "RED",
            "Requests per second by route",
            format!("sum by (route) (rate(http_requests_total{{{t}}}[$__rate_interval]))"),
        ),
        q(
            "RED",
            "Error ratio (5xx) by route",
            format!(
                "sum by (route) (rate(http_requests_total{{{t},status_code=~\"5..\"}}[$__rate_interval]))\n/\nsum by (route) (rate(http_requests_total{{{t}}}[$__rate_interval]))"
            ),
        ),
    ];
    for (quantile, name) in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")] {
        out.push(q("RED", &format!("Latency {name} by route"), format!(
            "histogram_quantile({quantile}, sum by (route, le) (rate(http_request_duration_seconds_bucket{{{t}}}[$__rate_interval])))"
        )));
    }
    out.push(q(
        "Tenants",
        "Requests per second by tenant",
        format!("sum by (tenant_id) (rate(http_requests_total{{{t}}}[$__rate_interval]))"),
    ));
    out.push(q("Tenants", "Error ratio (5xx) by tenant", format!(
        "sum by (tenant_id) (rate(http_requests_total{{{t},status_code=~\"5..\"}}[$__rate_interval]))\n/\nsum by (tenant_id) (rate(http_requests_total{{{t}}}[$__rate_interval]))"
    )));
    for slo in slos {
        let mut sel = format!("slo=\"{}\",service=\"{}\"", slo.name, slo.service);
        if slo.per_tenant {
            sel.push_str(&format!(",{t}"));
        }
        let window = format!("{}d", slo.window.as_secs() / 86_400);
        out.push(q(
            "SLOs",
            &format!("{}: compliance over {window}", slo.name),
            format!("1 - {}{{{sel}}}", ratio_name(&window)),
        ));
        out.push(q(
            "SLOs",
            &format!("{}: error budget left", slo.name),
            format!("slo:error_budget_remaining:ratio{{{sel}}}"),
        ));
        out.push(q(
            "SLOs",
            &format!("{}: burn rate", slo.name),
            format!("{}{{{sel}}} / {}", ratio_name("1h"), slo.error_budget()),
        ));
    }
    out.push(q("Data layer", "Query p95 by table", format!(
        "histogram_quantile(0.95, sum by (table, le) (rate(db_query_duration_seconds_bucket{{{t}}}[$__rate_interval])))"
    )));
    out.push(q("Data layer", "Pool connections in use / max", "max by (database) (db_connection_pool_size{state=\"active\"})\n/\nmax by (database) (db_connection_pool_size{state=\"max\"})".into()));
    out.push(q("Data layer", "Queries per request p95 by route", format!(
        "histogram_quantile(0.95, sum by (route, le) (rate(db_queries_per_request_bucket{{{t}}}[$__rate_interval])))"
    )));
    out.push(q(
        "Resilience",
        "Breaker state (0 closed, 1 open, 2 half-open)",
        "max by (service) (circuit_breaker_state)".into(),
    ));
    out.push(q("Resilience", "Calls shed per second", "sum by (service) (rate(circuit_breaker_calls_total{outcome=\"rejected\"}[$__rate_interval]))".into()));
    out.push(q(
        "Resilience",
        "Requests refused by rate limits per second",
        format!(
            "sum by (tenant_id, limit_type) (rate(rate_limit_hits_total{{{t}}}[$__rate_interval]))"
        ),
    ));
    out
}

/// Every query the dashboard runs, by panel: to check them against a
/// Prometheus (substitute `$tenant` and `$__rate_interval`).
pub fn dashboard_queries(slos: &[Slo]) -> Vec<PanelQuery> {
    queries(slos)
}

/// A Grafana dashboard (JSON, importable by Grafana's dashboard import)
/// titled `title`, with a `datasource` variable and a `tenant` variable.
pub fn dashboard(title: &str, slos: &[Slo]) -> String {
    let datasource = json!({ "type": "prometheus", "uid": DATASOURCE });
    let mut panels: Vec<Value> = Vec::new();
    let mut y = 0;
    let mut id = 1;
    let mut row = "";
    let mut column = 0;
    for query in queries(slos) {
        if query.row != row {
            if column != 0 {
                y += 8;
                column = 0;
            }
            row = query.row;
            panels.push(json!({
                "id": id, "type": "row", "title": row, "collapsed": false,
                "gridPos": { "h": 1, "w": 24, "x": 0, "y": y }, "panels": []
            }));
            id += 1;
            y += 1;
        }
        panels.push(json!({
            "id": id,
            "type": "timeseries",
            "title": query.panel,
            "datasource": datasource,
            "gridPos": { "h": 8, "w": 12, "x": column * 12, "y": y },
            "targets": [{
                "refId": "A",
                "datasource": datasource,
                "expr": query.expr,
                "legendFormat": "__auto",
            }],
        }));
        id += 1;
        column += 1;
        if column == 2 {
            column = 0;
            y += 8;
        }
    }
    let uid: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let dashboard = json!({
        "uid": uid,
        "title": title,
        "tags": ["plimsoll"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "time": { "from": "now-6h", "to": "now" },
        "refresh": "30s",
        "templating": { "list": [
            {
                "name": "datasource", "label": "Data source", "type": "datasource",
                "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
            },
            {
                "name": "tenant", "label": "Tenant", "type": "query",
                "datasource": datasource,
                "query": { "query": "label_values(http_requests_total, tenant_id)", "refId": "tenants" },
                "definition": "label_values(http_requests_total, tenant_id)",
                "includeAll": true, "multi": true, "allValue": ".*",
                "current": { "text": "All", "value": "$__all" },
                "refresh": 2, "hide": 0,
            },
        ]},
        "panels": panels,
    });
    serde_json::to_string_pretty(&dashboard).expect("a JSON value serialises")
}
