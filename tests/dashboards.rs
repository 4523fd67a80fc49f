//! The generated dashboard and rules against a real Prometheus scraping the
//! example under traffic: every panel's query runs without error, and the
//! RED and SLO panels return data. Under `PLIMSOLL_REQUIRE_SERVICES=1` a
//! missing Prometheus fails the test.
#![cfg(all(feature = "http", feature = "sqlx", feature = "slo"))]

#[path = "../examples/axum_service.rs"]
#[allow(dead_code)]
mod example;
mod support;

use std::time::Duration;

use plimsoll::Telemetry;
use plimsoll::slo::{ServiceAlerts, all_groups, dashboard, dashboard_queries, rules_file};

async fn send(addr: std::net::SocketAddr, raw: String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_in_prometheus_and_red_and_slo_panels_have_data() {
    let t = Telemetry::builder().build().unwrap();
    let db = example::open_orders(&t, example::DEFAULT_DATABASE)
        .await
        .unwrap();
    let (addr, server) = example::serve_loopback(&t, db, None).await;

    let slos = example::order_slos();
    let rules = rules_file(&all_groups(&slos, &ServiceAlerts::default()));
    let Some(prometheus) = support::prometheus_server(&[addr.to_string()], Some(&rules)) else {
        server.abort();
        return;
    };
    // Traffic for a few seconds: orders created and read, a 404 now and then.
    let body = r#"{"item":"tea","quantity":1}"#;
    for i in 0..40 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        send(addr, format!(
            "POST /api/v1/orders HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-tenant-id: {tenant}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )).await;
        send(addr, format!("GET /api/v1/orders HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-tenant-id: {tenant}\r\n\r\n")).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Wait until the recording rules of every SLO have data, over the
    // shortest and the longest window (the rule groups are evaluated
    // apart).
    let mut ready = false;
    for _ in 0..150 {
        ready = ["orders-availability", "orders-latency"]
            .iter()
            .flat_map(|slo| ["5m", "30d"].map(move |w| (slo, w)))
            .all(|(slo, window)| {
                prometheus
                    .query(&format!(
                        r#"slo:sli_error:ratio_rate{window}{{slo="{slo}"}}"#
                    ))
                    .unwrap_or_default()
                    .contains("\"value\"")
            });
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "the recording rules never produced data");

    let json = dashboard("Orders API", &slos);
    assert!(json.contains("\"uid\": \"${datasource}\""));
    assert!(
        !json.contains("\"uid\": \"P"),
        "no hard-coded datasource uid"
    );
    let mut failures = Vec::new();
    for query in dashboard_queries(&slos) {
        let expr = query
            .expr
            .replace("$tenant", ".*")
            .replace("$__rate_interval", "30s");
        let answer = prometheus.query(&expr).unwrap();
        if !answer.contains("\"status\":\"success\"") {
            failures.push(format!("{} / {}: {answer}", query.row, query.panel));
            continue;
        }
        let has_data = answer.contains("\"value\"");
        if (query.row == "RED" || query.row == "SLOs" || query.row == "Tenants") && !has_data {
            failures.push(format!(
                "{} / {}: no data: {expr}\n{answer}",
                query.row, query.panel
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    server.abort();
}
