//! The live gauges against hand-computed values, on tokio's paused clock:
//! traffic is recorded minute by minute into the HTTP families, and the
//! compliance, burn rates and budget read at a scrape are exact.

use std::sync::Arc;
use std::time::Duration;

use plimsoll_core::testing::Scrape;
use plimsoll_core::{Histogram, Telemetry};
use plimsoll_http::families::HTTP_REQUEST_DURATION;
use plimsoll_http::labels::{Method, RequestLabels};
use plimsoll_slo::{LiveError, LiveSlos, Slo, Source};

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

fn labels(route: &str, status_code: u16) -> RequestLabels {
    RequestLabels {
        method: Method::Get,
        route: Arc::from(route),
        status_code,
    }
}

fn gauge(s: &Scrape, family: &str, slo: &str, window: Option<&str>) -> f64 {
    let mut want = vec![("slo_name", slo)];
    if let Some(window) = window {
        want.push(("window", window));
    }
    s.value(family, &want)
        .unwrap_or_else(|| panic!("{family} {slo} {window:?}"))
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

#[tokio::test(start_paused = true)]
async fn availability_compliance_burn_and_budget_are_exact() {
    let t = telemetry();
    // What the RED layer records: `http_requests_total` is the count view
    // of this histogram.
    let requests: Histogram<RequestLabels> = t.declare(&HTTP_REQUEST_DURATION).unwrap();
    let slos = [
        Slo::availability("api", Source::Http)
            .service("orders")
            .matching("route", "/api")
            .objective(99.0)
            .build()
            .unwrap(),
        Slo::availability("idle", Source::Http)
            .service("orders")
            .matching("route", "/idle")
            .objective(99.0)
            .build()
            .unwrap(),
        Slo::availability("acme-api", Source::Http)
            .service("orders")
            .matching("tenant_id", "acme")
            .objective(99.0)
            .build()
            .unwrap(),
    ];
    let live = LiveSlos::register(&t, &slos).unwrap();
    let acme = t.tenant("acme");
    let globex = t.tenant("globex");
    let minute = |ok: u64, bad: u64| {
        for _ in 0..ok {
            requests.observe(&acme, &labels("/api", 200), 0.01);
        }
        for _ in 0..bad {
            requests.observe(&acme, &labels("/api", 500), 0.01);
        }
        // Other routes and tenants are not this SLO's.
        for _ in 0..7 {
            requests.observe(&globex, &labels("/other", 500), 0.01);
        }
    };
    // Ten minutes at 0.5% errors.
    for _ in 0..10 {
        minute(995, 5);
        tokio::time::advance(Duration::from_secs(60)).await;
        live.sample();
    }
    let s = t.scrape();
    // 5 m: 25 bad of 5,000: 0.5%, half the 1% budget's rate.
    close(gauge(&s, "slo_burn_rate", "api", Some("5m")), 0.5);
    close(
        gauge(&s, "slo_compliance_percentage", "api", Some("5m")),
        99.5,
    );
    // The process is younger than 30 days: its whole life, 50 of 10,000.
    close(
        gauge(&s, "slo_compliance_percentage", "api", Some("30d")),
        99.5,
    );
    close(
        gauge(&s, "error_budget_remaining_percentage", "api", None),
        50.0,
    );
    // No traffic: all compliant, nothing burnt, the whole budget left.
    close(
        gauge(&s, "slo_compliance_percentage", "idle", Some("1h")),
        100.0,
    );
    close(gauge(&s, "slo_burn_rate", "idle", Some("1h")), 0.0);
    close(
        gauge(&s, "error_budget_remaining_percentage", "idle", None),
        100.0,
    );
    // By tenant: acme's requests only (globex's 5xx are not counted).
    close(gauge(&s, "slo_burn_rate", "acme-api", Some("5m")), 0.5);

    // Five minutes at 10%.
    for _ in 0..5 {
        minute(900, 100);
        tokio::time::advance(Duration::from_secs(60)).await;
        live.sample();
    }
    let s = t.scrape();
    close(gauge(&s, "slo_burn_rate", "api", Some("5m")), 10.0);
    close(
        gauge(&s, "slo_compliance_percentage", "api", Some("5m")),
        90.0,
    );
    // 30 m reaches back past the start: 550 bad of 15,000.
    close(
        gauge(&s, "slo_burn_rate", "api", Some("30m")),
        550.0 / 15_000.0 / 0.01,
    );
    close(
        gauge(&s, "error_budget_remaining_percentage", "api", None),
        100.0 * (1.0 - 550.0 / 15_000.0 / 0.01),
    );
    // Every window below the SLO's, and the SLO's own.
    for window in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        gauge(&s, "slo_burn_rate", "api", Some(window));
    }
}

#[tokio::test(start_paused = true)]
async fn latency_counts_the_requests_past_the_threshold() {
    let t = telemetry();
    let durations: Histogram<RequestLabels> = t.declare(&HTTP_REQUEST_DURATION).unwrap();
    let slo = Slo::latency("fast", Source::Http, Duration::from_millis(250))
        .service("orders")
        .objective(95.0)
        .build()
        .unwrap();
    let live = LiveSlos::register(&t, &[slo]).unwrap();
    let acme = t.tenant("acme");
    for i in 0..100 {
        let seconds = if i % 5 == 0 { 0.5 } else { 0.1 };
        durations.observe(&acme, &labels("/api", 200), seconds);
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    live.sample();
    let s = t.scrape();
    // 20 of 100 slower than 250 ms: 80% compliant, four times the 5% budget.
    close(
        gauge(&s, "slo_compliance_percentage", "fast", Some("5m")),
        80.0,
    );
    close(gauge(&s, "slo_burn_rate", "fast", Some("5m")), 4.0);
    close(
        gauge(&s, "error_budget_remaining_percentage", "fast", None),
        -300.0,
    );
}

#[test]
fn a_threshold_off_the_registered_buckets_is_refused() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_family_buckets(&HTTP_REQUEST_DURATION, vec![0.1, 0.3, 1.0])
        .build()
        .unwrap();
    let slo = Slo::latency("fast", Source::Http, Duration::from_millis(250))
        .service("orders")
        .build()
        .unwrap();
    let err = LiveSlos::register(&t, &[slo]).unwrap_err();
    assert!(matches!(err, LiveError::NotABucket { .. }));
    assert_eq!(
        err.to_string(),
        "fast: sli.threshold: 0.25 s is not a bucket boundary of the registered http_request_duration_seconds (bounds: [0.1, 0.3, 1.0])"
    );
}

#[tokio::test(start_paused = true)]
async fn grpc_availability_counts_the_server_failure_codes_of_the_selected_service() {
    use plimsoll_core::Counter;
    use plimsoll_core::classify::GrpcCode;
    use plimsoll_http::families::GRPC_SERVER_HANDLED;
    use plimsoll_http::grpc::HandledLabels;

    let t = telemetry();
    let handled: Counter<HandledLabels> = t.declare(&GRPC_SERVER_HANDLED).unwrap();
    let slo = Slo::availability("rpc", Source::Grpc)
        .service("orders")
        .matching("grpc_service", "orders.v1.Orders")
        .objective(99.0)
        .build()
        .unwrap();
    let live = LiveSlos::register(&t, &[slo]).unwrap();
    let acme = t.tenant("acme");
    let call = |service: &str, code: GrpcCode, n: u64| {
        let labels = HandledLabels {
            grpc_service: Arc::from(service),
            grpc_method: Arc::from("Get"),
            grpc_code: code,
        };
        handled.inc_by(&acme, &labels, n);
    };
    call("orders.v1.Orders", GrpcCode::Ok, 96);
    call("orders.v1.Orders", GrpcCode::NotFound, 2); // the caller's
    call("orders.v1.Orders", GrpcCode::Unavailable, 2); // the server's
    call("billing.v1.Billing", GrpcCode::Internal, 50); // another service
    tokio::time::advance(Duration::from_secs(60)).await;
    live.sample();
    let s = t.scrape();
    // 2 failures of 100 calls: 98% compliant, twice the 1% budget.
    close(
        gauge(&s, "slo_compliance_percentage", "rpc", Some("5m")),
        98.0,
    );
    close(gauge(&s, "slo_burn_rate", "rpc", Some("5m")), 2.0);
}
