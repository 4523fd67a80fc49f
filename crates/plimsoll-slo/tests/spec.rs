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
        "name: \"\" must be non-empty and use only letters, digits, '-' and '_'"
    );
    assert_eq!(
        err(Slo::availability("a b", Source::Http).service("x")),
        "name: \"a b\" must be non-empty and use only letters, digits, '-' and '_'"
    );
    assert_eq!(
        err(Slo::availability("ok", Source::Http)),
        "service: \"\" must be non-empty and use only letters, digits, '-' and '_'"
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
        "window: must be a whole number of days, at least 1, got 0ns"
    );
    assert_eq!(
        err(orders().window(Duration::from_secs(86_400 + 3_600))),
        "window: must be a whole number of days, at least 1, got 90000s"
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
