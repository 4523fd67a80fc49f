//! Every validation error names its field.

use std::time::Duration;

use plimsoll_slo::{Slo, SloBuilder, Source};

fn err(builder: SloBuilder) -> String {
    builder.build().unwrap_err().to_string()
}

fn orders() -> SloBuilder {
    Slo::availability("orders", Source::Http).service("orders")
}

#[test]
fn every_validation_error_names_its_field() {
    assert_eq!(
        err(Slo::availability("", Source::Http).service("x")),
        "name: \"\" is not usable: names take letters, digits, '-' and '_' (a metric prefix: letters, digits, '_' and ':', not starting with a digit)"
    );
    assert_eq!(
        err(Slo::availability("a b", Source::Http).service("x")),
        "name: \"a b\" is not usable: names take letters, digits, '-' and '_' (a metric prefix: letters, digits, '_' and ':', not starting with a digit)"
    );
    assert_eq!(
        err(Slo::availability("ok", Source::Http)),
        "service: \"\" is not usable: names take letters, digits, '-' and '_' (a metric prefix: letters, digits, '_' and ':', not starting with a digit)"
    );
    assert_eq!(
        err(orders().objective(100.0)),
        "objective: must be a percentage in (0, 100), got 100"
    );
    assert_eq!(
        err(orders().objective(0.0)),
        "objective: must be a percentage in (0, 100), got 0"
    );
    assert_eq!(
        err(orders().objective(f64::NAN)),
        "objective: must be a percentage in (0, 100), got NaN"
    );
    assert_eq!(
        err(orders().window_days(0)),
        "window: must be a whole number of days, at least 3 (the longest alert window), got 0ns"
    );
    assert_eq!(
        err(orders().window_days(1)),
        "window: must be a whole number of days, at least 3 (the longest alert window), got 86400s"
    );
    assert_eq!(
        err(orders().window(Duration::from_secs(7 * 86_400 + 3_600))),
        "window: must be a whole number of days, at least 3 (the longest alert window), got 608400s"
    );
    // 90% over 30 days: paging at 14.4× the 10% budget needs 144% of requests failing.
    assert_eq!(
        err(orders().objective(90.0)),
        "objective: 90% over 30 days makes the page alert over 1h wait for an error ratio of 1.440, which can never be reached"
    );
    assert_eq!(
        err(Slo::custom("c", "x[$window]", "y[$window]")
            .service("x")
            .matching("route", "/")),
        "selector: a custom SLI carries its own selection in its PromQL"
    );
    assert_eq!(
        err(Slo::custom("c", "x[$window]", "y[$window]")
            .service("x")
            .per_tenant()),
        "per_tenant: a custom SLI carries its own selection in its PromQL"
    );
    assert_eq!(
        err(Slo::latency("l", Source::Grpc, Duration::from_millis(300)).service("x")),
        "sli.threshold: 0.3 s is not a bucket boundary of grpc_server_handling_seconds; the nearest are 0.25 s and 0.5 s"
    );
    assert_eq!(
        err(Slo::latency("l", Source::Http, Duration::from_secs(20)).service("x")),
        "sli.threshold: 20 s is not a bucket boundary of http_request_duration_seconds; the nearest are 10 s and none"
    );
    // With the telemetry's own buckets the same threshold is fine.
    Slo::latency("l", Source::Http, Duration::from_millis(300))
        .service("x")
        .buckets(&[0.1, 0.3, 1.0])
        .build()
        .unwrap();
    assert_eq!(
        err(orders().matching("path", "/x")),
        "selector: http_requests_total has no label \"path\" (labels: [\"tenant_id\", \"method\", \"route\", \"status_code\"])"
    );
    assert_eq!(
        err(orders().matching("route", "/x\"}")),
        "selector: the value of \"route\" must not contain '\"', '\\\\' or a line break"
    );
    assert_eq!(
        err(Slo::custom("c", "sum(rate(bad[5m]))", "sum(rate(all[$window]))").service("x")),
        "sli.errors: the expression must contain $window where the range goes"
    );
    assert_eq!(
        err(Slo::custom("c", "sum(rate(bad[$window]))", "sum(rate(all[5m]))").service("x")),
        "sli.total: the expression must contain $window where the range goes"
    );
    let ok = orders()
        .matching("method", "GET")
        .matching("tenant_id", "acme")
        .build()
        .unwrap();
    assert_eq!(ok.to_string(), "orders (orders): 99.9% over 30 days");
}

#[test]
fn a_custom_sli_can_count_good_events() {
    let slo = Slo::custom_good("c", "sum(rate(ok[$window]))", "sum(rate(all[$window]))")
        .service("x")
        .build()
        .unwrap();
    let (bad, total) = plimsoll_slo::rates(&slo, "5m");
    assert_eq!(total, "(sum(rate(all[5m])))");
    assert_eq!(bad, "((sum(rate(all[5m]))) - (sum(rate(ok[5m]))))");
    assert_eq!(
        err(Slo::custom_good("c", "sum(rate(ok[5m]))", "sum(rate(all[$window]))").service("x")),
        "sli.good: the expression must contain $window where the range goes"
    );
}

#[test]
fn a_threshold_takes_the_exact_bound_the_exposition_writes() {
    let computed = 3.0 * 0.1; // 0.30000000000000004
    let slo = Slo::latency("l", Source::Http, Duration::from_millis(300))
        .service("x")
        .buckets(&[0.1, computed, 1.0])
        .build()
        .unwrap();
    let (bad, _) = plimsoll_slo::rates(&slo, "5m");
    assert!(bad.contains("le=~\"0\\\\.30000000000000004\""), "{bad}");
}

#[test]
fn rules_read_the_names_the_telemetry_exposes() {
    let slo = Slo::availability("a", Source::Http)
        .service("shop")
        .naming(plimsoll_core::Naming::OpenTelemetry)
        .metric_prefix("shop_")
        .matching("route", "/cart")
        .build()
        .unwrap();
    let (bad, total) = plimsoll_slo::rates(&slo, "5m");
    assert_eq!(
        bad,
        r#"sum(rate(shop_http_server_requests_total{http_route="/cart",http_response_status_code=~"5.."}[5m]))"#
    );
    assert_eq!(
        total,
        r#"sum(rate(shop_http_server_requests_total{http_route="/cart"}[5m]))"#
    );
    let grpc = Slo::availability("g", Source::Grpc)
        .service("shop")
        .naming(plimsoll_core::Naming::OpenTelemetry)
        .build()
        .unwrap();
    assert!(
        plimsoll_slo::rates(&grpc, "5m")
            .0
            .starts_with("sum(rate(rpc_server_calls_total{")
    );
    let queries = plimsoll_slo::dashboard_queries(&[slo]);
    assert!(
        queries[0]
            .expr
            .contains("sum by (http_route) (rate(shop_http_server_requests_total{"),
        "{}",
        queries[0].expr
    );
    assert_eq!(
        err(orders().metric_prefix("9x")),
        "metric_prefix: \"9x\" is not usable: names take letters, digits, '-' and '_' (a metric prefix: letters, digits, '_' and ':', not starting with a digit)"
    );
}
