//! Grafana dashboards from SLOs: RED by route, a per-tenant breakdown, SLO
//! compliance and budget, the data layer and the breakers. The datasource
//! is a variable, never a hard-coded uid.

use plimsoll_core::Naming;
use plimsoll_core::family::FamilyDecl;
use plimsoll_http::families::{HTTP_REQUEST_DURATION, HTTP_REQUESTS};
use serde_json::{Value, json};

use crate::rules::ratio_name;
use crate::spec::Slo;

/// How the telemetry names its metrics (from the first SLO): scheme and prefix.
struct Names<'a> {
    naming: Naming,
    prefix: &'a str,
}

impl Names<'_> {
    fn of(slos: &[Slo]) -> Names<'_> {
        slos.first().map_or(
            Names {
                naming: Naming::Prometheus,
                prefix: "",
            },
            |s| Names {
                naming: s.naming,
                prefix: &s.prefix,
            },
        )
    }

    /// A declared family's exposed name.
    fn family(&self, decl: &FamilyDecl) -> String {
        format!("{}{}", self.prefix, decl.name_for(self.naming))
    }

    /// A declared family's exposed label name.
    fn label(&self, decl: &FamilyDecl, name: &str) -> String {
        decl.labels()
            .iter()
            .find(|l| l.name() == name)
            .map_or_else(|| name.to_string(), |l| l.name_for(self.naming).to_string())
    }

    /// A name of the data-layer or resilience catalogue, under the scheme.
    fn other(&self, catalogue: &str, otel: &str) -> String {
        match self.naming {
            Naming::OpenTelemetry => otel.to_string(),
            _ => catalogue.to_string(),
        }
    }
}

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
    let n = Names::of(slos);
    let requests = n.family(&HTTP_REQUESTS);
    let buckets = format!("{}_bucket", n.family(&HTTP_REQUEST_DURATION));
    let route = n.label(&HTTP_REQUESTS, "route");
    let status = n.label(&HTTP_REQUESTS, "status_code");
    let p = n.prefix;
    let t = r#"tenant_id=~"$tenant""#;
    let mut out = vec![
        q(
            "RED",
            "Requests per second by route",
            format!("sum by ({route}) (rate({requests}{{{t}}}[$__rate_interval]))"),
        ),
        q(
            "RED",
            "Error ratio (5xx) by route",
            format!(
                "sum by ({route}) (rate({requests}{{{t},{status}=~\"5..\"}}[$__rate_interval]))\n/\nsum by ({route}) (rate({requests}{{{t}}}[$__rate_interval]))"
            ),
        ),
    ];
    for (quantile, name) in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")] {
        out.push(q("RED", &format!("Latency {name} by route"), format!(
            "histogram_quantile({quantile}, sum by ({route}, le) (rate({buckets}{{{t}}}[$__rate_interval])))"
        )));
    }
    out.push(q(
        "Tenants",
        "Requests per second by tenant",
        format!("sum by (tenant_id) (rate({requests}{{{t}}}[$__rate_interval]))"),
    ));
    out.push(q("Tenants", "Error ratio (5xx) by tenant", format!(
        "sum by (tenant_id) (rate({requests}{{{t},{status}=~\"5..\"}}[$__rate_interval]))\n/\nsum by (tenant_id) (rate({requests}{{{t}}}[$__rate_interval]))"
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
            format!(
                "{}{{{sel}}} / {}",
                ratio_name("1h"),
                crate::rules::round(slo.error_budget())
            ),
        ));
    }
    let table = n.other("table", "db_collection_name");
    let pool = n.other("db_connection_pool_size", "db_client_connection_count");
    let state = n.other("state", "db_client_connection_state");
    let database = n.other("database", "db_namespace");
    out.push(q("Data layer", "Query p95 by table", format!(
        "histogram_quantile(0.95, sum by ({table}, le) (rate({p}db_query_duration_seconds_bucket{{{t}}}[$__rate_interval])))"
    )));
    out.push(q("Data layer", "Pool connections in use / max", format!(
        "max by ({database}) ({p}{pool}{{{state}=\"active\"}})\n/\nmax by ({database}) ({p}{pool}{{{state}=\"max\"}})"
    )));
    out.push(q("Data layer", "Queries per request p95 by route", format!(
        "histogram_quantile(0.95, sum by ({route}, le) (rate({p}db_queries_per_request_bucket{{{t}}}[$__rate_interval])))"
    )));
    out.push(q(
        "Resilience",
        "Breaker state (0 closed, 1 open, 2 half-open)",
        format!("max by (service) ({p}circuit_breaker_state)"),
    ));
    out.push(q("Resilience", "Calls shed per second", format!(
        "sum by (service) (rate({p}circuit_breaker_calls_total{{outcome=\"rejected\"}}[$__rate_interval]))"
    )));
    out.push(q("Resilience", "Requests refused by rate limits per second", format!(
        "sum by (tenant_id, limit_type) (rate({p}rate_limit_hits_total{{{t}}}[$__rate_interval]))"
    )));
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
    let tenants = format!(
        "label_values({}, tenant_id)",
        Names::of(slos).family(&HTTP_REQUESTS)
    );
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
                "query": { "query": tenants, "refId": "tenants" },
                "definition": tenants,
                "includeAll": true, "multi": true, "allValue": ".*",
                "current": { "text": "All", "value": "$__all" },
                "refresh": 2, "hide": 0,
            },
        ]},
        "panels": panels,
    });
    serde_json::to_string_pretty(&dashboard).expect("a JSON value serialises")
}
