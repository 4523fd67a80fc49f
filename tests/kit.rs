//! The integration kit, end to end: family declarations under both naming
//! schemes, bounded labels, the ambient tenant through the real HTTP layer,
//! the operation guard, exemplars from the trace-context hook, scrape-time
//! families, the read API, series keys, bound warnings and the errors of
//! refused configurations. Every assertion is on an exact value, series
//! count or exposition line.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use plimsoll::classify::{GrpcCode, Outcome};
use plimsoll::family::{FamilyDecl, LabelDecl};
use plimsoll::http::{GrpcMetricsLayer, HttpBuildError, RedMetricsLayer};
use plimsoll::operation::{Completed, Operation, RecordOperation};
use plimsoll::trace::{SpanContext, TraceContext};
use plimsoll::{
    BuildError, ClosedLabel, Counter, Format, Gauge, Histogram, HistogramSnapshot, InvalidTenant,
    MetricKind, MetricOpts, Naming, RegisterError, ScrapeError, Telemetry, TelemetryBuilder,
    Tenant, TenantError, impl_label_set,
};
use tower::ServiceExt;

fn quiet() -> TelemetryBuilder {
    Telemetry::builder().with_process_metrics(false)
}

/// The lines of `body` that start with `prefix`.
fn lines<'a>(body: &'a str, prefix: &str) -> Vec<&'a str> {
    body.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Sends a request through `app` and reads the whole response body.
async fn send(app: &Router, request: http::request::Builder) -> (http::StatusCode, String) {
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

// ---------------------------------------------------------------------------
// 1. One declaration, two naming schemes
// ---------------------------------------------------------------------------

const ORDERS: FamilyDecl = FamilyDecl::counter("orders_placed_total", "Orders placed.")
    .with_otel_name("shop_orders_placed_total")
    .with_labels(&[
        LabelDecl::closed("channel").with_otel_name("shop_channel"),
        LabelDecl::open("region", 20).with_otel_name("cloud_region"),
    ]);

const CHECKOUT: FamilyDecl = FamilyDecl::histogram("checkout_duration_seconds", "Checkouts.")
    .with_otel_name("shop_checkout_duration")
    .with_unit("seconds")
    .with_labels(&[LabelDecl::closed("channel").with_otel_name("shop_channel")])
    .with_buckets(&[0.5]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct OrderLabels {
    channel: &'static str,
    region: Arc<str>,
}
impl_label_set!(OrderLabels { channel, region });

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ChannelLabels {
    channel: &'static str,
}
impl_label_set!(ChannelLabels { channel });

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct WrongLabels {
    channel: &'static str,
    zone: &'static str,
}
impl_label_set!(WrongLabels { channel, zone });

#[test]
fn one_declaration_gives_both_naming_schemes_and_refuses_mismatches() {
    let expected = [
        (
            Naming::Prometheus,
            [
                "# HELP orders_placed_total Orders placed.",
                "# TYPE orders_placed_total counter",
                r#"orders_placed_total{tenant_id="acme",channel="web",region="eu-west"} 2"#,
                "# HELP checkout_duration_seconds Checkouts.",
                "# TYPE checkout_duration_seconds histogram",
                r#"checkout_duration_seconds_bucket{tenant_id="acme",channel="web",le="0.5"} 1"#,
                r#"checkout_duration_seconds_bucket{tenant_id="acme",channel="web",le="+Inf"} 1"#,
                r#"checkout_duration_seconds_sum{tenant_id="acme",channel="web"} 0.25"#,
                r#"checkout_duration_seconds_count{tenant_id="acme",channel="web"} 1"#,
            ],
        ),
        (
            Naming::OpenTelemetry,
            [
                "# HELP shop_orders_placed_total Orders placed.",
                "# TYPE shop_orders_placed_total counter",
                r#"shop_orders_placed_total{tenant_id="acme",shop_channel="web",cloud_region="eu-west"} 2"#,
                "# HELP shop_checkout_duration Checkouts.",
                "# TYPE shop_checkout_duration histogram",
                r#"shop_checkout_duration_bucket{tenant_id="acme",shop_channel="web",le="0.5"} 1"#,
                r#"shop_checkout_duration_bucket{tenant_id="acme",shop_channel="web",le="+Inf"} 1"#,
                r#"shop_checkout_duration_sum{tenant_id="acme",shop_channel="web"} 0.25"#,
                r#"shop_checkout_duration_count{tenant_id="acme",shop_channel="web"} 1"#,
            ],
        ),
    ];
    for (naming, expected) in expected {
        let t = quiet().with_naming(naming).build().unwrap();
        let orders: Counter<OrderLabels> = t.declare(&ORDERS).unwrap();
        let checkout: Histogram<ChannelLabels> = t.declare(&CHECKOUT).unwrap();
        let regions = t.label_guard(&ORDERS, "region").unwrap();
        let acme = t.tenant("acme");
        let eu_west = OrderLabels {
            channel: "web",
            region: regions.admit("eu-west"),
        };
        orders.inc_by(&acme, &eu_west, 2);
        checkout.observe(&acme, &ChannelLabels { channel: "web" }, 0.25);
        let body = t.encode(Format::Prometheus);
        assert_eq!(
            body.lines().collect::<Vec<_>>(),
            expected,
            "{naming:?}:\n{body}"
        );

        // Declaring again returns the same family.
        let again: Counter<OrderLabels> = t.declare(&ORDERS).unwrap();
        assert_eq!(again.get(&acme, &eu_west), 2);

        // A label set whose names are not the declaration's is refused.
        let exposed = ORDERS.name_for(naming);
        assert_eq!(
            t.declare::<Counter<WrongLabels>>(&ORDERS).unwrap_err(),
            RegisterError::LabelMismatch {
                metric: exposed.to_string(),
                declared: vec!["channel", "region"],
                label_set: vec!["channel", "zone"],
            }
        );
        // A counter declaration registered as a histogram is refused.
        assert_eq!(
            t.declare::<Histogram<OrderLabels>>(&ORDERS).unwrap_err(),
            RegisterError::KindMismatch {
                metric: exposed.to_string(),
                declared: MetricKind::Counter,
                registered: MetricKind::Histogram,
            }
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Closed and open labels hold their bounds
// ---------------------------------------------------------------------------

const RPC_CODES: FamilyDecl = FamilyDecl::counter("rpc_codes_total", "Calls by code.")
    .with_labels(&[LabelDecl::closed("grpc_code")]);

const ROWS_READ: FamilyDecl = FamilyDecl::counter("rows_read_total", "Rows read, by table.")
    .with_labels(&[LabelDecl::open("table", 50)]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct CodeLabels {
    grpc_code: GrpcCode,
}
impl_label_set!(CodeLabels { grpc_code });

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct TableLabels {
    table: Arc<str>,
}
impl_label_set!(TableLabels { table });

#[test]
fn closed_and_open_labels_hold_their_bounds_under_100k_distinct_inputs() {
    const INPUTS: u64 = 100_000;
    let t = quiet().build().unwrap();
    let system = Tenant::system();

    // Closed set: 17 gRPC codes, whatever the input.
    let codes: Counter<CodeLabels> = t.declare(&RPC_CODES).unwrap();
    for i in 0..INPUTS as usize {
        let raw = match GrpcCode::ALL.get(i) {
            Some(code) => code.as_str().to_string(),
            None => format!("NOT_A_CODE_{i}"),
        };
        codes.inc(
            &system,
            &CodeLabels {
                grpc_code: GrpcCode::from_label(&raw),
            },
        );
    }
    assert_eq!(codes.series_count(), 17);
    let unknown = CodeLabels {
        grpc_code: GrpcCode::Unknown,
    };
    assert_eq!(codes.get(&system, &unknown), 1 + (INPUTS - 17));
    assert_eq!(
        codes.get(
            &system,
            &CodeLabels {
                grpc_code: GrpcCode::NotFound
            }
        ),
        1
    );
    assert_eq!(codes.total(|_| true), INPUTS);

    // Open label: bound 50 from the declaration.
    let rows: Counter<TableLabels> = t.declare(&ROWS_READ).unwrap();
    let tables = t.label_guard(&ROWS_READ, "table").unwrap();
    for i in 0..INPUTS {
        let table = tables.admit(&format!("table_{i}"));
        rows.inc(&system, &TableLabels { table });
    }
    assert_eq!(tables.len(), 50);
    assert_eq!(rows.series_count(), 51, "50 tables and __other__");
    assert_eq!(
        rows.get(
            &system,
            &TableLabels {
                table: "table_49".into()
            }
        ),
        1
    );
    assert_eq!(
        rows.get(
            &system,
            &TableLabels {
                table: "table_50".into()
            }
        ),
        0
    );
    assert_eq!(
        rows.get(
            &system,
            &TableLabels {
                table: "__other__".into()
            }
        ),
        INPUTS - 50
    );
    assert_eq!(rows.total(|_| true), INPUTS);

    let body = t.encode(Format::Prometheus);
    assert_eq!(
        lines(&body, "plimsoll_cardinality_overflow_total{"),
        [
            r#"plimsoll_cardinality_overflow_total{tenant_id="__system__",metric="rows_read_total",label="table"} 99950"#
        ],
        "only the open label overflowed"
    );
    assert_eq!(lines(&body, "rpc_codes_total{").len(), 17);
    assert_eq!(lines(&body, "rows_read_total{").len(), 51);
}

/// A counter declared without `_total` (which `FamilyDecl::counter` allows:
/// "it is added") is exposed as `jobs_done_total`, and its series-bound
/// overflow says `metric="jobs_done_total"`; so should its label guard's.
const JOBS_DONE: FamilyDecl = FamilyDecl::counter("jobs_done", "Jobs done, by queue.")
    .with_labels(&[LabelDecl::open("queue", 1)]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct QueueLabels {
    queue: Arc<str>,
}
impl_label_set!(QueueLabels { queue });

#[test]
fn a_label_guard_overflow_names_the_metric_as_exposed() {
    let t = quiet().build().unwrap();
    let jobs: Counter<QueueLabels> = t.declare(&JOBS_DONE).unwrap();
    let queues = t.label_guard(&JOBS_DONE, "queue").unwrap();
    let system = Tenant::system();
    for queue in ["email", "sms"] {
        jobs.inc(
            &system,
            &QueueLabels {
                queue: queues.admit(queue),
            },
        );
    }
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        lines(&body, "jobs_done_total{"),
        [
            r#"jobs_done_total{tenant_id="__system__",queue="email"} 1"#,
            r#"jobs_done_total{tenant_id="__system__",queue="__other__"} 1"#,
        ]
    );
    assert_eq!(
        lines(&body, "plimsoll_cardinality_overflow_total{"),
        [
            r#"plimsoll_cardinality_overflow_total{tenant_id="__system__",metric="jobs_done_total",label="queue"} 1"#
        ],
        "{body}"
    );
}

#[test]
fn a_declared_open_label_bound_holds_across_guards() {
    let t = quiet().build().unwrap();
    let rows: Counter<TableLabels> = t.declare(&ROWS_READ).unwrap();
    let first = t.label_guard(&ROWS_READ, "table").unwrap();
    let second = t.label_guard(&ROWS_READ, "table").unwrap();
    let system = Tenant::system();
    for i in 0..100 {
        let guard = if i % 2 == 0 { &first } else { &second };
        rows.inc(
            &system,
            &TableLabels {
                table: guard.admit(&format!("table_{i}")),
            },
        );
    }
    assert_eq!(rows.total(|_| true), 100);
    assert_eq!(
        rows.series_count(),
        51,
        "50 tables (the declared bound) and __other__"
    );
}

// ---------------------------------------------------------------------------
// 3. The ambient tenant through the real HTTP layer
// ---------------------------------------------------------------------------

const DB_QUERY: FamilyDecl = FamilyDecl::histogram("db_query_duration_seconds", "Queries.")
    .with_unit("seconds")
    .with_labels(&[
        LabelDecl::closed("operation"),
        LabelDecl::open("table", 50),
        LabelDecl::closed("status"),
    ]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct QueryLabels {
    operation: &'static str,
    table: &'static str,
    status: Outcome,
}
impl_label_set!(QueryLabels {
    operation,
    table,
    status
});

/// A minimal integration: records finished queries into `DB_QUERY`.
#[derive(Clone, Debug)]
struct Queries(Histogram<QueryLabels>);

impl RecordOperation for Queries {
    /// `(operation, table)`.
    type Labels = (&'static str, &'static str);

    fn record(&self, done: Completed<'_, Self::Labels>) {
        let (operation, table) = done.labels;
        let labels = QueryLabels {
            operation,
            table,
            status: done.outcome,
        };
        self.0
            .observe_with_exemplar(done.tenant, &labels, done.seconds, done.trace);
    }
}

/// A query that succeeds, timed as an operation; the tenant is whatever is current.
async fn run_query(t: &Telemetry, queries: &Queries, table: &'static str) {
    let result: Result<(), ()> = Operation::start(t, queries.clone(), ("select", table))
        .time(async { Ok(()) }, Outcome::classify_result)
        .await;
    assert_eq!(result, Ok(()));
}

fn query(table: &'static str) -> QueryLabels {
    QueryLabels {
        operation: "select",
        table,
        status: Outcome::Ok,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_in_a_request_record_under_its_tenant_without_being_passed_it() {
    let t = quiet().build().unwrap();
    let queries = Queries(t.declare(&DB_QUERY).unwrap());
    let handler = {
        let (t, queries) = (t.clone(), queries.clone());
        move || {
            let (t, queries) = (t.clone(), queries.clone());
            async move {
                run_query(&t, &queries, "in_handler").await;
                let carried = {
                    let (t, queries) = (t.clone(), queries.clone());
                    tokio::spawn(plimsoll::scope::carry(async move {
                        run_query(&t, &queries, "carried").await;
                        plimsoll::scope::current_tenant().to_string()
                    }))
                };
                let detached = {
                    let (t, queries) = (t.clone(), queries.clone());
                    tokio::spawn(async move {
                        run_query(&t, &queries, "spawned_without_carry").await;
                        plimsoll::scope::current_tenant().to_string()
                    })
                };
                format!(
                    "{} {} {}",
                    plimsoll::scope::current_tenant(),
                    carried.await.unwrap(),
                    detached.await.unwrap()
                )
            }
        }
    };
    let app = Router::new().route("/orders", get(handler)).layer(
        RedMetricsLayer::builder(&t)
            .with_tenant_header("x-tenant-id")
            .build()
            .unwrap(),
    );

    let (status, body) = send(
        &app,
        http::Request::get("/orders").header("x-tenant-id", "acme"),
    )
    .await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(body, "acme acme __system__");

    // Outside any request.
    run_query(&t, &queries, "outside").await;

    let acme = t.tenant("acme");
    let system = Tenant::system();
    let h = &queries.0;
    assert_eq!(h.count(&acme, &query("in_handler")), 1);
    assert_eq!(h.count(&acme, &query("carried")), 1);
    assert_eq!(h.count(&system, &query("spawned_without_carry")), 1);
    assert_eq!(h.count(&system, &query("outside")), 1);
    assert_eq!(h.series_count(), 4);
    assert_eq!(h.total(|s| s.tenant() == "acme").count(), 2);
    assert_eq!(h.total(|s| s.tenant() == "__system__").count(), 2);

    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "http_requests_total",
            &[("tenant_id", "acme"), ("route", "/orders")]
        ),
        Some(1.0)
    );
}

// ---------------------------------------------------------------------------
// 4. The operation guard: each outcome exactly once
// ---------------------------------------------------------------------------

const JOB_DURATION: FamilyDecl = FamilyDecl::histogram("job_duration_seconds", "Jobs.")
    .with_unit("seconds")
    .with_labels(&[LabelDecl::closed("job"), LabelDecl::closed("outcome")]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct JobLabels {
    job: &'static str,
    outcome: Outcome,
}
impl_label_set!(JobLabels { job, outcome });

/// Records jobs, and counts how often it is called.
#[derive(Clone, Debug)]
struct Jobs {
    histogram: Histogram<JobLabels>,
    calls: Arc<Mutex<u32>>,
}

impl RecordOperation for Jobs {
    type Labels = &'static str;

    fn record(&self, done: Completed<'_, &'static str>) {
        *self.calls.lock().unwrap() += 1;
        let labels = JobLabels {
            job: done.labels,
            outcome: done.outcome,
        };
        self.histogram
            .observe_with_exemplar(done.tenant, &labels, done.seconds, done.trace);
    }
}

async fn panics_when_polled() {
    panic!("the job failed while polled");
}

#[tokio::test]
async fn the_operation_guard_records_each_outcome_exactly_once() {
    let t = quiet().build().unwrap();
    let jobs = Jobs {
        histogram: t.declare(&JOB_DURATION).unwrap(),
        calls: Arc::default(),
    };
    let acme = t.tenant("acme");
    let start = |job| Operation::start_for(acme.clone(), None, jobs.clone(), job);
    let count = |job, outcome| {
        jobs.histogram
            .snapshot(&acme, &JobLabels { job, outcome })
            .map(|s| s.count())
    };

    let ok: Result<u8, &str> = start("ok")
        .time(async { Ok(1) }, Outcome::classify_result)
        .await;
    assert_eq!(ok, Ok(1));

    let failed: Result<u8, &str> = start("error")
        .time(async { Err("no") }, Outcome::classify_result)
        .await;
    assert_eq!(failed, Err("no"));

    let timed_out = start("timeout")
        .time(
            tokio::time::timeout(Duration::from_millis(5), std::future::pending::<()>()),
            |r| match r {
                Ok(()) => Outcome::Ok,
                Err(_) => Outcome::Timeout,
            },
        )
        .await;
    assert!(timed_out.is_err());

    {
        let mut cancelled = pin!(
            start("cancelled").time(std::future::pending::<Result<(), ()>>(), |r| {
                Outcome::classify_result(r)
            })
        );
        let mut cx = Context::from_waker(Waker::noop());
        assert!(cancelled.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count("cancelled", Outcome::Cancelled), None, "not yet");
    } // dropped here, before it completed

    assert_eq!(count("ok", Outcome::Ok), Some(1));
    assert_eq!(count("error", Outcome::Error("error")), Some(1));
    assert_eq!(count("timeout", Outcome::Timeout), Some(1));
    assert_eq!(count("cancelled", Outcome::Cancelled), Some(1));
    assert_eq!(jobs.histogram.series_count(), 4);
    assert_eq!(*jobs.calls.lock().unwrap(), 4);

    // Dropped while a panic unwinds: `Error("panic")`, once.
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _operation = start("panic_sync");
        panic!("the job failed");
    }));
    assert!(panicked.is_err());
    // A future that panics while polled as an operation.
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut timed = pin!(start("panic_poll").time(panics_when_polled(), |_| Outcome::Ok));
        let _ = timed.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    }));
    assert!(panicked.is_err());
    assert_eq!(count("panic_sync", Outcome::Error("panic")), Some(1));
    assert_eq!(count("panic_poll", Outcome::Error("panic")), Some(1));
    assert_eq!(jobs.histogram.series_count(), 6);
    assert_eq!(*jobs.calls.lock().unwrap(), 6);

    let body = t.encode(Format::Prometheus);
    assert_eq!(
        lines(&body, "job_duration_seconds_count{"),
        [
            r#"job_duration_seconds_count{tenant_id="acme",job="ok",outcome="ok"} 1"#,
            r#"job_duration_seconds_count{tenant_id="acme",job="error",outcome="error"} 1"#,
            r#"job_duration_seconds_count{tenant_id="acme",job="timeout",outcome="timeout"} 1"#,
            r#"job_duration_seconds_count{tenant_id="acme",job="cancelled",outcome="cancelled"} 1"#,
            r#"job_duration_seconds_count{tenant_id="acme",job="panic_sync",outcome="panic"} 1"#,
            r#"job_duration_seconds_count{tenant_id="acme",job="panic_poll",outcome="panic"} 1"#,
        ]
    );
}

// ---------------------------------------------------------------------------
// 5. Exemplars from the trace-context hook
// ---------------------------------------------------------------------------

/// Every observation belongs to one fixed span.
#[derive(Debug)]
struct FixedSpan(SpanContext);

impl TraceContext for FixedSpan {
    fn current(&self) -> Option<SpanContext> {
        Some(self.0)
    }
}

/// W3C's example ids; the trace id starts with a 0 (padding is checked).
const HOOK_SPAN: SpanContext = SpanContext {
    trace_id: 0x0af7651916cd43dd8448eb211c80319c,
    span_id: 0x00f067aa0ba902b7,
    sampled: true,
};
const HOOK_EXEMPLAR: &str =
    r#" # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="00f067aa0ba902b7"} "#;

const PUBLISH: FamilyDecl = FamilyDecl::histogram("publish_seconds", "Publishes.")
    .with_unit("seconds")
    .with_labels(&[LabelDecl::closed("job"), LabelDecl::closed("outcome")])
    // One bucket no test run reaches the end of: the observation's bucket is known.
    .with_buckets(&[3600.0]);

fn publishes(t: &Telemetry) -> Jobs {
    Jobs {
        histogram: t.declare(&PUBLISH).unwrap(),
        calls: Arc::default(),
    }
}

/// The bucket lines of `metric` in an OpenMetrics scrape of `t`.
fn bucket_lines(t: &Telemetry, metric: &str) -> Vec<String> {
    let body = t.encode(Format::OpenMetrics);
    lines(&body, &format!("{metric}_bucket{{"))
        .into_iter()
        .map(String::from)
        .collect()
}

/// What `red_app`'s handler records into: an operation started inside the request.
#[derive(Clone, Debug)]
struct InRequest {
    telemetry: Telemetry,
    jobs: Jobs,
}

fn red_app(t: &Telemetry, in_request: Option<InRequest>) -> Router {
    let handler = move || {
        let in_request = in_request.clone();
        async move {
            if let Some(InRequest { telemetry, jobs }) = in_request {
                Operation::start(&telemetry, jobs, "in_request").finish(Outcome::Ok);
            }
            "ok"
        }
    };
    Router::new().route("/checkout", get(handler)).layer(
        RedMetricsLayer::builder(t)
            .with_tenant_header("x-tenant-id")
            .with_buckets(vec![3600.0])
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn exemplars_come_from_the_trace_context_hook() {
    // (a) An operation records the hook's span as its exemplar.
    let t = quiet()
        .with_trace_context(FixedSpan(HOOK_SPAN))
        .build()
        .unwrap();
    let jobs = publishes(&t);
    Operation::start(&t, jobs.clone(), "publish").finish(Outcome::Ok);
    let buckets = bucket_lines(&t, "publish_seconds");
    assert_eq!(buckets.len(), 2, "{buckets:#?}");
    let first = r#"publish_seconds_bucket{tenant_id="__system__",job="publish",outcome="ok",le="3600.0"} 1"#;
    assert!(
        buckets[0].starts_with(&format!("{first}{HOOK_EXEMPLAR}")),
        "{buckets:#?}"
    );
    assert_eq!(
        buckets[1],
        r#"publish_seconds_bucket{tenant_id="__system__",job="publish",outcome="ok",le="+Inf"} 1"#,
        "only the bucket the observation fell in has the exemplar"
    );
    // Prometheus text 0.0.4 carries no exemplars.
    assert!(!t.encode(Format::Prometheus).contains("trace_id"));

    // (b) A request without `traceparent` gets the hook's exemplar.
    let app = red_app(&t, None);
    let (status, _) = send(
        &app,
        http::Request::get("/checkout").header("x-tenant-id", "acme"),
    )
    .await;
    assert_eq!(status, http::StatusCode::OK);
    let buckets = bucket_lines(&t, "http_request_duration_seconds");
    let first = r#"http_request_duration_seconds_bucket{tenant_id="acme",method="GET",route="/checkout",status_code="200",le="3600.0"} 1"#;
    assert_eq!(buckets.len(), 2, "{buckets:#?}");
    assert!(
        buckets[0].starts_with(&format!("{first}{HOOK_EXEMPLAR}")),
        "{buckets:#?}"
    );

    // (c) An unsampled span gives no exemplar, to operations or requests.
    let unsampled = quiet()
        .with_trace_context(FixedSpan(SpanContext {
            sampled: false,
            ..HOOK_SPAN
        }))
        .build()
        .unwrap();
    assert_eq!(unsampled.current_trace(), None);
    let jobs = publishes(&unsampled);
    Operation::start(&unsampled, jobs.clone(), "publish").finish(Outcome::Ok);
    let app = red_app(&unsampled, None);
    send(
        &app,
        http::Request::get("/checkout").header("x-tenant-id", "acme"),
    )
    .await;
    let body = unsampled.encode(Format::OpenMetrics);
    assert_eq!(jobs.histogram.total(|_| true).count(), 1);
    assert_eq!(
        lines(&body, "http_request_duration_seconds_count{").len(),
        1
    );
    assert!(!body.contains(" # {"), "{body}");

    // (d) With the default hook, a sampled incoming `traceparent` is the
    // exemplar of the request and of the operations run while it is served.
    let t = quiet().build().unwrap();
    let jobs = publishes(&t);
    let app = red_app(
        &t,
        Some(InRequest {
            telemetry: t.clone(),
            jobs: jobs.clone(),
        }),
    );
    let (status, _) = send(
        &app,
        http::Request::get("/checkout")
            .header("x-tenant-id", "acme")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
    )
    .await;
    assert_eq!(status, http::StatusCode::OK);
    let incoming =
        r#" # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} "#;
    let buckets = bucket_lines(&t, "http_request_duration_seconds");
    let first = r#"http_request_duration_seconds_bucket{tenant_id="acme",method="GET",route="/checkout",status_code="200",le="3600.0"} 1"#;
    assert!(
        buckets[0].starts_with(&format!("{first}{incoming}")),
        "{buckets:#?}"
    );
    let buckets = bucket_lines(&t, "publish_seconds");
    let first =
        r#"publish_seconds_bucket{tenant_id="acme",job="in_request",outcome="ok",le="3600.0"} 1"#;
    assert!(
        buckets[0].starts_with(&format!("{first}{incoming}")),
        "{buckets:#?}"
    );
    // Outside the request the default hook has no span.
    assert_eq!(t.current_trace(), None);
}

// ---------------------------------------------------------------------------
// 6. Scrape-time families
// ---------------------------------------------------------------------------

const POOL_CONNECTIONS: FamilyDecl =
    FamilyDecl::gauge("pool_connections", "Connections of the pool, by state.")
        .with_labels(&[LabelDecl::closed("pool"), LabelDecl::closed("state")]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}
impl_label_set!(PoolLabels { pool, state });

const QUEUE_DEPTH: FamilyDecl = FamilyDecl::gauge("queue_depth", "Jobs waiting, by queue.")
    .with_labels(&[LabelDecl::open("queue", 100)]);

const BATCH_SIZES: FamilyDecl = FamilyDecl::histogram("batch_size", "Batch sizes.")
    .with_labels(&[LabelDecl::closed("queue")])
    .with_buckets(&[1.0, 8.0]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct StaticQueue {
    queue: &'static str,
}
impl_label_set!(StaticQueue { queue });

#[test]
fn scrape_time_families_are_declared_checked_and_bounded() {
    let t = quiet()
        .with_family_max_series(&QUEUE_DEPTH, 3)
        .build()
        .unwrap();

    // A gauge with labels, one tenant's and the system's.
    let acme = t.tenant("acme");
    t.declare_scraped(&POOL_CONNECTIONS, move |out| {
        let idle = PoolLabels {
            pool: "main",
            state: "idle",
        };
        out.set(&acme, &idle, 3.0).unwrap();
        out.set(
            &acme,
            &PoolLabels {
                pool: "main",
                state: "active",
            },
            2.0,
        )
        .unwrap();
        out.set(&acme, &idle, 4.0).unwrap(); // written twice: the last value
        out.set(
            &Tenant::system(),
            &PoolLabels {
                pool: "jobs",
                state: "idle",
            },
            1.5,
        )
        .unwrap();
    })
    .unwrap();
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        body.lines().collect::<Vec<_>>(),
        [
            "# HELP pool_connections Connections of the pool, by state.",
            "# TYPE pool_connections gauge",
            r#"pool_connections{tenant_id="acme",pool="main",state="idle"} 4"#,
            r#"pool_connections{tenant_id="acme",pool="main",state="active"} 2"#,
            r#"pool_connections{tenant_id="__system__",pool="jobs",state="idle"} 1.5"#,
        ]
    );

    // Conflicts: a family registered before, and one registered after.
    let queued: Gauge<StaticQueue> = t.gauge("jobs_queued", "Queued jobs.").unwrap();
    const JOBS_QUEUED: FamilyDecl =
        FamilyDecl::gauge("jobs_queued", "Queued jobs.").with_labels(&[LabelDecl::closed("queue")]);
    assert_eq!(
        t.declare_scraped::<StaticQueue>(&JOBS_QUEUED, |_| {}),
        Err(RegisterError::Conflict("jobs_queued".into()))
    );
    queued.set(&Tenant::system(), &StaticQueue { queue: "a" }, 1.0);
    // Declared first, then claimed by a family of each kind.
    const WORKERS: FamilyDecl = FamilyDecl::gauge("workers_busy", "Busy workers.");
    t.declare_scraped::<()>(&WORKERS, |out| {
        out.set(&Tenant::system(), &(), 2.0).unwrap()
    })
    .unwrap();
    assert_eq!(
        t.gauge::<()>("workers_busy", "Busy workers.").unwrap_err(),
        RegisterError::Conflict("workers_busy".into())
    );
    assert_eq!(
        t.declare::<Gauge<()>>(&WORKERS).unwrap_err(),
        RegisterError::Conflict("workers_busy".into())
    );
    assert_eq!(
        t.declare_scraped::<()>(&WORKERS, |_| {}),
        Err(RegisterError::Conflict("workers_busy".into()))
    );

    // Past `with_family_max_series(&QUEUE_DEPTH, 3)`: summed into `__other__`.
    t.declare_scraped(&QUEUE_DEPTH, |out| {
        let system = Tenant::system();
        for (i, queue) in ["q1", "q2", "q3", "q4", "q5", "q6"].into_iter().enumerate() {
            out.set(&system, &StaticQueue { queue }, (i + 1) as f64)
                .unwrap();
        }
    })
    .unwrap();

    // A histogram computed at scrape time, and the errors of wrong writes.
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    t.declare_scraped(&BATCH_SIZES, move |out| {
        let mut sizes = HistogramSnapshot::empty(out.bounds());
        for size in [1.0, 4.0, 4.0, 100.0] {
            sizes.observe(size);
        }
        let labels = StaticQueue { queue: "email" };
        out.set_histogram(&Tenant::system(), &labels, &sizes)
            .unwrap();
        let mut seen = seen.lock().unwrap();
        seen.push(out.set(&Tenant::system(), &labels, 1.0).unwrap_err());
        let wrong = HistogramSnapshot::empty(&[1.0, 2.0]);
        seen.push(
            out.set_histogram(&Tenant::system(), &labels, &wrong)
                .unwrap_err(),
        );
    })
    .unwrap();
    // A gauge written as a histogram.
    const GAUGE_AS_HISTOGRAM: FamilyDecl = FamilyDecl::gauge("temperature", "Temperature.");
    let seen = errors.clone();
    t.declare_scraped::<()>(&GAUGE_AS_HISTOGRAM, move |out| {
        let snapshot = HistogramSnapshot::empty(&[1.0]);
        seen.lock().unwrap().push(
            out.set_histogram(&Tenant::system(), &(), &snapshot)
                .unwrap_err(),
        );
    })
    .unwrap();

    // A collector that panics is left out; the rest is intact.
    const BROKEN: FamilyDecl = FamilyDecl::gauge("broken_gauge", "Always panics.");
    t.declare_scraped::<()>(&BROKEN, |_| panic!("the collector failed"))
        .unwrap();

    let body = t.encode(Format::Prometheus);
    assert_eq!(
        body.lines().collect::<Vec<_>>(),
        [
            "# HELP pool_connections Connections of the pool, by state.",
            "# TYPE pool_connections gauge",
            r#"pool_connections{tenant_id="acme",pool="main",state="idle"} 4"#,
            r#"pool_connections{tenant_id="acme",pool="main",state="active"} 2"#,
            r#"pool_connections{tenant_id="__system__",pool="jobs",state="idle"} 1.5"#,
            "# HELP jobs_queued Queued jobs.",
            "# TYPE jobs_queued gauge",
            r#"jobs_queued{tenant_id="__system__",queue="a"} 1"#,
            "# HELP workers_busy Busy workers.",
            "# TYPE workers_busy gauge",
            r#"workers_busy{tenant_id="__system__"} 2"#,
            "# HELP queue_depth Jobs waiting, by queue.",
            "# TYPE queue_depth gauge",
            r#"queue_depth{tenant_id="__system__",queue="q1"} 1"#,
            r#"queue_depth{tenant_id="__system__",queue="q2"} 2"#,
            r#"queue_depth{tenant_id="__system__",queue="q3"} 3"#,
            r#"queue_depth{tenant_id="__system__",queue="__other__"} 15"#,
            "# HELP batch_size Batch sizes.",
            "# TYPE batch_size histogram",
            r#"batch_size_bucket{tenant_id="__system__",queue="email",le="1.0"} 1"#,
            r#"batch_size_bucket{tenant_id="__system__",queue="email",le="8.0"} 3"#,
            r#"batch_size_bucket{tenant_id="__system__",queue="email",le="+Inf"} 4"#,
            r#"batch_size_sum{tenant_id="__system__",queue="email"} 109"#,
            r#"batch_size_count{tenant_id="__system__",queue="email"} 4"#,
            "# HELP plimsoll_cardinality_overflow_total Observations recorded under the overflow value because a cardinality bound was reached.",
            "# TYPE plimsoll_cardinality_overflow_total counter",
            r#"plimsoll_cardinality_overflow_total{tenant_id="__system__",metric="queue_depth",label="queue"} 3"#,
        ],
        "{body}"
    );
    assert_eq!(
        *errors.lock().unwrap(),
        [
            ScrapeError::Kind {
                metric: "batch_size".into(),
                kind: MetricKind::Histogram,
            },
            ScrapeError::Buckets {
                metric: "batch_size".into(),
                given: vec![1.0, 2.0],
                expected: vec![1.0, 8.0],
            },
            ScrapeError::Kind {
                metric: "temperature".into(),
                kind: MetricKind::Gauge,
            },
        ]
    );
    // The OpenMetrics scrape parses, with the broken family left out.
    let scrape = t.scrape();
    assert_eq!(scrape.metric_type("broken_gauge"), None);
    assert_eq!(
        scrape.value("queue_depth", &[("queue", "__other__")]),
        Some(15.0)
    );
}

const LAT_COUNT: FamilyDecl = FamilyDecl::gauge("lat_count", "Looks like lat's count.");
const JOBS_TOTAL: FamilyDecl = FamilyDecl::gauge("jobs_total", "Looks like jobs' samples.");

#[test]
fn a_scrape_time_family_whose_samples_collide_with_a_family_is_refused() {
    let t = quiet().build().unwrap();
    let lat: Histogram<()> = t.histogram("lat", "Latency.").unwrap();
    lat.observe(&Tenant::system(), &(), 0.1);
    // Registered before.
    assert_eq!(
        t.declare_scraped::<()>(&LAT_COUNT, |out| out
            .set(&Tenant::system(), &(), 7.0)
            .unwrap()),
        Err(RegisterError::Conflict("lat_count".into()))
    );
    // Registered after.
    t.declare_scraped::<()>(&JOBS_TOTAL, |out| {
        out.set(&Tenant::system(), &(), 1.0).unwrap()
    })
    .unwrap();
    assert_eq!(
        t.counter::<()>("jobs", "Jobs.").unwrap_err(),
        RegisterError::Conflict("jobs".into())
    );
}

// ---------------------------------------------------------------------------
// 7. The read API
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RequestLabels {
    route: &'static str,
    code: u16,
}
impl_label_set!(RequestLabels { route, code });

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Shard {
    shard: u32,
}
impl_label_set!(Shard { shard });

#[test]
fn the_read_api_returns_exact_values_and_selector_totals() {
    let t = quiet().build().unwrap();
    let (a, b) = (t.tenant("a"), t.tenant("b"));
    let requests: Counter<RequestLabels> = t.counter("requests", "Requests.").unwrap();
    for (tenant, route, code, n) in [
        (&a, "/orders", 200, 7),
        (&a, "/orders", 503, 2),
        (&a, "/cart", 200, 5),
        (&b, "/orders", 200, 11),
        (&b, "/cart", 500, 3),
    ] {
        requests.inc_by(tenant, &RequestLabels { route, code }, n);
    }
    assert_eq!(
        requests.get(
            &a,
            &RequestLabels {
                route: "/orders",
                code: 200
            }
        ),
        7
    );
    assert_eq!(
        requests.get(
            &b,
            &RequestLabels {
                route: "/orders",
                code: 503
            }
        ),
        0
    );
    assert_eq!(requests.series_count(), 5, "get never creates a series");
    assert_eq!(requests.total(|s| s.tenant() == "a"), 14);
    assert_eq!(requests.total(|s| s.tenant() == "b"), 14);
    assert_eq!(
        requests.total(|s| s.labels().is_some_and(|l| l.code >= 500)),
        5
    );
    assert_eq!(
        requests.total(|s| s.tenant() == "b" && s.labels().is_some_and(|l| l.route == "/cart")),
        3
    );
    let mut seen = Vec::new();
    requests.for_each(|s, v| seen.push((s.tenant().to_string(), s.labels().cloned(), v)));
    assert_eq!(seen.len(), 5);
    assert_eq!(
        seen[3],
        (
            "b".to_string(),
            Some(RequestLabels {
                route: "/orders",
                code: 200
            }),
            11
        )
    );

    let latency: Histogram<RequestLabels> = t
        .histogram_with(
            MetricOpts::new("latency_seconds", "Latency.").with_buckets(vec![0.125, 0.5, 1.0]),
        )
        .unwrap();
    let orders = RequestLabels {
        route: "/orders",
        code: 200,
    };
    for v in [0.0625, 0.125, 0.25, 0.75, 2.0] {
        latency.observe(&a, &orders, v);
    }
    latency.observe(&b, &orders, 0.5);
    let snapshot = latency.snapshot(&a, &orders).unwrap();
    assert_eq!(snapshot.count(), 5);
    assert_eq!(snapshot.sum(), 3.1875);
    assert_eq!(snapshot.bounds(), [0.125, 0.5, 1.0]);
    assert_eq!(snapshot.count_le(0.125), Some(2), "a bound is inclusive");
    assert_eq!(snapshot.count_le(0.5), Some(3));
    assert_eq!(snapshot.count_le(1.0), Some(4));
    assert_eq!(snapshot.count_le(f64::INFINITY), Some(5));
    assert_eq!(snapshot.count_le(0.3), None, "not a bucket bound");
    assert_eq!(
        snapshot.buckets().collect::<Vec<_>>(),
        [(0.125, 2), (0.5, 3), (1.0, 4), (f64::INFINITY, 5)]
    );
    assert_eq!(
        latency.snapshot(
            &b,
            &RequestLabels {
                route: "/cart",
                code: 200
            }
        ),
        None
    );
    let total = latency.total(|_| true);
    assert_eq!(total.count(), 6);
    assert_eq!(total.sum(), 3.6875);
    assert_eq!(total.count_le(0.5), Some(4));
    let of_b = latency.total(|s| s.tenant() == "b");
    assert_eq!(
        of_b.buckets().collect::<Vec<_>>(),
        [(0.125, 0), (0.5, 1), (1.0, 1), (f64::INFINITY, 1)]
    );
    assert_eq!(latency.total(|s| s.tenant() == "nobody").count(), 0);

    // Many series: 10,000 (the default bound), summed exactly.
    let shards: Counter<Shard> = t.counter("shard_writes", "Writes by shard.").unwrap();
    for shard in 0..10_000u32 {
        shards.inc_by(&a, &Shard { shard }, u64::from(shard));
    }
    assert_eq!(shards.series_count(), 10_000);
    assert_eq!(shards.total(|_| true), 49_995_000);
    assert_eq!(
        shards.total(|s| s.labels().is_none()),
        0,
        "no overflow series"
    );
    assert_eq!(
        shards.total(|s| s.labels().is_some_and(|l| l.shard % 2 == 1)),
        25_000_000
    );
    assert_eq!(shards.get(&a, &Shard { shard: 9_999 }), 9_999);
}

// ---------------------------------------------------------------------------
// 8. Series keys used with the wrong or a dropped family
// ---------------------------------------------------------------------------

#[test]
fn stale_or_foreign_series_keys_are_harmless() {
    let t = quiet().build().unwrap();
    let acme = t.tenant("acme");
    let labels = StaticQueue { queue: "email" };
    let a: Gauge<StaticQueue> = t.gauge("gauge_a", "A.").unwrap();
    let b: Gauge<StaticQueue> = t.gauge("gauge_b", "B.").unwrap();
    b.set(&Tenant::system(), &StaticQueue { queue: "b0" }, 1.0); // b's series 0
    let key = a.key(&acme, &labels);
    assert_eq!(key.index(), 0);
    assert!(!key.is_overflow_series());

    // A valid key works.
    a.add_at(&key, 2.5);
    a.add_at(&key, 0.5);
    assert_eq!(a.get(&acme, &labels), 3.0);
    assert_eq!(a.labels_at(&key), Some(&labels));
    assert_eq!(
        a.tenant_at(&key).map(|t| t.to_string()),
        Some("acme".into())
    );

    // Another family's key does nothing.
    b.add_at(&key, 100.0);
    assert_eq!(b.labels_at(&key), None);
    assert_eq!(b.tenant_at(&key), None);
    assert_eq!(b.get(&Tenant::system(), &StaticQueue { queue: "b0" }), 1.0);
    assert_eq!(b.get(&acme, &labels), 0.0);
    assert_eq!(b.series_count(), 1);
    let h: Histogram<StaticQueue> = t.histogram("histogram_c", "C.").unwrap();
    h.observe(&acme, &labels, 0.1);
    h.observe_at(&key, 0.2, None);
    assert_eq!(h.count(&acme, &labels), 1);

    // Keys outliving their telemetry and family, used with a new family of
    // the same name and label type (maybe at the same address).
    let mut stale = Vec::new();
    for round in 0..50 {
        let old = quiet().build().unwrap();
        let gauge: Gauge<StaticQueue> = old.gauge("reused", "Reused.").unwrap();
        stale.push(gauge.key(&old.tenant("acme"), &labels));
        drop((gauge, old));

        let new = quiet().build().unwrap();
        let gauge: Gauge<StaticQueue> = new.gauge("reused", "Reused.").unwrap();
        let acme = new.tenant("acme");
        gauge.set(&acme, &labels, 1.0); // series 0, as the stale keys' were
        for key in &stale {
            gauge.add_at(key, 100.0);
            assert_eq!(gauge.labels_at(key), None, "round {round}");
            assert_eq!(gauge.tenant_at(key), None, "round {round}");
        }
        assert_eq!(gauge.get(&acme, &labels), 1.0, "round {round}");
        assert_eq!(gauge.series_count(), 1);
        let own = gauge.key(&acme, &labels);
        gauge.add_at(&own, 1.0);
        assert_eq!(gauge.get(&acme, &labels), 2.0);
    }
}

// ---------------------------------------------------------------------------
// 9. Bounds speak up
// ---------------------------------------------------------------------------

#[test]
fn try_tenant_says_why_an_id_gets_no_label_of_its_own() {
    let bounded = quiet().with_max_tenants(1).build().unwrap();
    assert_eq!(
        bounded.try_tenant("acme").map(|t| t.to_string()),
        Ok("acme".into())
    );
    assert_eq!(
        bounded.try_tenant("acme").map(|t| t.to_string()),
        Ok("acme".into())
    );
    assert_eq!(
        bounded.try_tenant("globex").unwrap_err(),
        TenantError::BoundReached {
            id: "globex".into(),
            limit: 1
        }
    );
    assert_eq!(
        bounded.try_tenant("bad id").unwrap_err(),
        TenantError::Invalid(InvalidTenant::Character {
            ch: ' ',
            position: 3
        })
    );
    assert_eq!(
        bounded.try_tenant("").unwrap_err(),
        TenantError::Invalid(InvalidTenant::Empty)
    );
    assert_eq!(
        bounded.try_tenant("__system__").unwrap_err(),
        TenantError::Invalid(InvalidTenant::ReservedPrefix)
    );
    // `tenant` gives the value each refusal stands for.
    assert_eq!(bounded.tenant("globex").as_str(), "__other__");
    assert_eq!(bounded.tenant("bad id").as_str(), "__unknown__");

    let allowed = quiet()
        .with_allowed_tenants(["acme", "initech"])
        .build()
        .unwrap();
    assert_eq!(
        allowed.try_tenant("initech").map(|t| t.to_string()),
        Ok("initech".into())
    );
    assert_eq!(
        allowed.try_tenant("globex").unwrap_err(),
        TenantError::NotAllowed {
            id: "globex".into()
        }
    );
    assert_eq!(allowed.tenant("globex").as_str(), "__other__");
}

// ---------------------------------------------------------------------------
// 10. Refused configurations name their field
// ---------------------------------------------------------------------------

#[test]
fn each_refused_configuration_names_its_field() {
    let t = quiet().build().unwrap();

    let err = RedMetricsLayer::builder(&t)
        .with_max_routes(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        HttpBuildError::ZeroLimit {
            field: "max_routes"
        }
    );
    assert!(err.to_string().contains("max_routes"), "{err}");

    let err = RedMetricsLayer::builder(&t)
        .with_buckets(vec![2.0, 1.0])
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        HttpBuildError::InvalidBuckets {
            field: "buckets",
            buckets: vec![2.0, 1.0]
        }
    );
    assert!(err.to_string().starts_with("buckets: "), "{err}");

    let err = RedMetricsLayer::builder(&t)
        .with_tenant_header("bad header")
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        HttpBuildError::InvalidHeader {
            field: "tenant_header",
            value: "bad header".into()
        }
    );
    assert!(err.to_string().contains("tenant_header"), "{err}");
    assert!(err.to_string().contains("bad header"), "{err}");

    let err = GrpcMetricsLayer::builder(&t)
        .with_max_methods(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        HttpBuildError::ZeroLimit {
            field: "max_methods"
        }
    );
    assert!(err.to_string().contains("max_methods"), "{err}");

    let err = quiet()
        .with_label_bound(&ROWS_READ, "nope", 5)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::UnknownLabelBound {
            family: "rows_read_total",
            label: "nope".into(),
            open: vec!["table"],
        }
    );
    assert!(
        err.to_string()
            .starts_with("label_bounds[rows_read_total.nope]"),
        "{err}"
    );
    // A closed label has no bound to set, and a bound is at least 1.
    let err = quiet()
        .with_label_bound(&RPC_CODES, "grpc_code", 5)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("label_bounds[rpc_codes_total.grpc_code]"),
        "{err}"
    );
    let err = quiet()
        .with_label_bound(&ROWS_READ, "table", 0)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("label_bounds[rows_read_total.table]"),
        "{err}"
    );

    // A refused layer leaves the telemetry usable: a valid one builds after.
    RedMetricsLayer::builder(&t)
        .with_tenant_header("x-tenant-id")
        .build()
        .unwrap();
}

#[test]
fn every_family_type_has_the_same_key_api() {
    let t = quiet().build().unwrap();
    let acme = t.tenant("acme");
    let calls = t.counter::<QueueLabels>("key_calls", "Calls.").unwrap();
    let sizes = t.histogram::<QueueLabels>("key_sizes", "Sizes.").unwrap();
    let labels = QueueLabels {
        queue: "email".into(),
    };
    let c = calls.key(&acme, &labels);
    let h = sizes.key(&acme, &labels);
    calls.inc_at(&c, 3);
    sizes.observe_at(&h, 0.5, None);
    assert_eq!(calls.get(&acme, &labels), 3);
    assert_eq!(sizes.count(&acme, &labels), 1);
    assert_eq!(calls.tenant_at(&c).unwrap().as_str(), "acme");
    assert_eq!(sizes.labels_at(&h), Some(&labels));
    // Keys of the other family do nothing and read nothing.
    calls.inc_at(&h, 100);
    assert_eq!(calls.get(&acme, &labels), 3);
    assert!(calls.labels_at(&h).is_none() && sizes.tenant_at(&c).is_none());
}

// ---------------------------------------------------------------------------
// Found in review
// ---------------------------------------------------------------------------

const QUEUED: FamilyDecl = FamilyDecl::counter("queued_total", "Queued, by queue.")
    .with_labels(&[LabelDecl::open("queue", 2)]);

#[test]
fn values_folded_by_a_guard_and_by_the_series_bound_share_one_series() {
    let t = quiet().with_family_max_series(&QUEUED, 3).build().unwrap();
    let queued: Counter<QueueLabels> = t.declare(&QUEUED).unwrap();
    let queues = t.label_guard(&QUEUED, "queue").unwrap();
    let (acme, globex) = (t.tenant("acme"), t.tenant("globex"));
    let record = |tenant: &Tenant, queue: &str| {
        queued.inc(
            tenant,
            &QueueLabels {
                queue: queues.admit(queue),
            },
        )
    };
    record(&globex, "a");
    record(&globex, "b");
    record(&acme, "c"); // past the guard's bound: queue="__other__"
    record(&acme, "a");
    record(&acme, "b"); // past the family's series bound (3)
    let body = t.encode(Format::Prometheus);
    // "c" (folded by the guard: a series of its own whose labels read
    // `__other__`, the family's third) and "a", "b" (past the series bound:
    // the tenant's overflow series) are written as one series.
    assert_eq!(
        lines(&body, "queued_total{tenant_id=\"acme\""),
        [r#"queued_total{tenant_id="acme",queue="__other__"} 3"#],
        "{body}"
    );
    // Never two series with the same labels.
    let mut seen = std::collections::HashSet::new();
    for line in body.lines().filter(|l| l.starts_with("queued_total{")) {
        let labels = line.rsplit_once(' ').unwrap().0;
        assert!(seen.insert(labels.to_string()), "{labels} twice:\n{body}");
    }
    // Every observation is still counted, and read back as it is written.
    assert_eq!(queued.total(|_| true), 5);
    assert_eq!(queued.total(|s| s.tenant() == "acme"), 3);
    let other = QueueLabels {
        queue: "__other__".into(),
    };
    assert_eq!(queued.get(&acme, &other), 3);
    assert_eq!(queued.get(&globex, &other), 0);
}

#[test]
fn a_scrape_time_counter_refuses_negative_and_nan_values() {
    const DONE: FamilyDecl = FamilyDecl::counter("jobs_done_scraped_total", "Done.");
    let t = quiet().build().unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    t.declare_scraped::<()>(&DONE, move |out| {
        let system = Tenant::system();
        let mut seen = seen.lock().unwrap();
        seen.push(out.set(&system, &(), -3.0).unwrap_err().to_string());
        seen.push(out.set(&system, &(), f64::NAN).unwrap_err().to_string());
        out.set(&system, &(), 4.0).unwrap();
    })
    .unwrap();
    let body = t.encode(Format::Prometheus);
    assert!(
        body.contains("jobs_done_scraped_total{tenant_id=\"__system__\"} 4\n"),
        "{body}"
    );
    assert_eq!(
        errors.lock().unwrap()[0],
        "metric \"jobs_done_scraped_total\": a counter cannot be -3"
    );
}

#[test]
fn a_histogram_with_negative_bounds_has_no_sum_in_openmetrics() {
    let t = quiet().build().unwrap();
    let delta = t
        .histogram_with::<()>(
            plimsoll::MetricOpts::new("temp_delta", "Delta.").with_buckets(vec![-1.0, 0.0, 1.0]),
        )
        .unwrap();
    delta.observe(&t.tenant("acme"), &(), 0.5);
    let om = t.encode(Format::OpenMetrics);
    assert!(
        !om.contains("temp_delta_sum") && !om.contains("temp_delta_count"),
        "{om}"
    );
    assert!(om.contains("temp_delta_bucket{tenant_id=\"acme\",le=\"+Inf\"} 1\n"));
    assert!(
        t.encode(Format::Prometheus)
            .contains("temp_delta_sum{tenant_id=\"acme\"} 0.5\n")
    );
}

#[tokio::test]
async fn layers_inside_the_red_layer_run_their_call_in_the_request_scope() {
    #[derive(Clone)]
    struct Seen<S> {
        inner: S,
        tenants: Arc<Mutex<Vec<String>>>,
    }
    impl<S: tower::Service<http::Request<Body>>> tower::Service<http::Request<Body>> for Seen<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }
        fn call(&mut self, req: http::Request<Body>) -> Self::Future {
            let tenant = plimsoll::scope::current_tenant();
            self.tenants.lock().unwrap().push(tenant.to_string());
            self.inner.call(req)
        }
    }
    let t = quiet().build().unwrap();
    let tenants = Arc::new(Mutex::new(Vec::new()));
    let seen = tenants.clone();
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(tower::layer::layer_fn(move |inner| Seen {
            inner,
            tenants: seen.clone(),
        }))
        .layer(
            RedMetricsLayer::builder(&t)
                .with_tenant_header("x-tenant-id")
                .build()
                .unwrap(),
        );
    let request = http::Request::get("/x")
        .header("x-tenant-id", "acme")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(*tenants.lock().unwrap(), ["acme"]);
}

#[tokio::test]
async fn the_grpc_layer_takes_a_custom_tenant_resolver() {
    let t = quiet().build().unwrap();
    let resolving = t.clone();
    let layer = GrpcMetricsLayer::builder(&t)
        .with_tenant_resolver(move |headers, _| {
            let key = headers.get("x-api-key")?.to_str().ok()?;
            Some(resolving.tenant(key.strip_prefix("key-")?))
        })
        .build()
        .unwrap();
    let service = tower::service_fn(|_req: http::Request<()>| async {
        let response = http::Response::builder()
            .header("grpc-status", "0")
            .body(http_body_util::Empty::<axum::body::Bytes>::new())
            .unwrap();
        Ok::<_, std::convert::Infallible>(response)
    });
    let request = http::Request::post("/orders.v1.Orders/Get")
        .header("x-api-key", "key-acme")
        .body(())
        .unwrap();
    let response = tower::Layer::layer(&layer, service)
        .oneshot(request)
        .await
        .unwrap();
    drop(response);
    let body = t.encode(Format::Prometheus);
    assert!(
        body.contains(
            "grpc_server_handled_total{tenant_id=\"acme\",grpc_service=\"orders.v1.Orders\",grpc_method=\"Get\",grpc_code=\"OK\"} 1\n"
        ),
        "{body}"
    );
}

#[test]
fn settings_that_would_do_nothing_are_refused() {
    let err = Telemetry::builder()
        .with_label_bound(
            &plimsoll::http::families::HTTP_REQUESTS_IN_FLIGHT,
            "route",
            5,
        )
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("label_bounds[http_requests_in_flight.route]"),
        "{err}"
    );
    let err = Telemetry::builder()
        .with_family_buckets(&QUEUED, vec![1.0])
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "family_buckets[queued]: \"queued_total\" is not a histogram, it has no buckets"
    );
}

const WAITS: FamilyDecl = FamilyDecl::histogram("queue_wait_seconds", "Waits, by queue.")
    .with_labels(&[LabelDecl::open("queue", 1)])
    .with_buckets(&[1.0, 10.0]);

#[test]
fn a_folded_histogram_series_and_the_overflow_series_are_written_as_one() {
    let t = quiet().with_family_max_series(&WAITS, 2).build().unwrap();
    let waits: Histogram<QueueLabels> = t.declare(&WAITS).unwrap();
    let queues = t.label_guard(&WAITS, "queue").unwrap();
    let (acme, globex) = (t.tenant("acme"), t.tenant("globex"));
    let observe = |tenant: &Tenant, queue: &str, value: f64| {
        let labels = QueueLabels {
            queue: queues.admit(queue),
        };
        waits.observe(tenant, &labels, value)
    };
    observe(&globex, "x", 0.5); // series 1
    observe(&acme, "y", 2.0); // folded by the guard: series 2, labels `__other__`
    observe(&acme, "x", 20.0); // past the series bound: acme's overflow series
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let body = t.encode(format);
        assert_eq!(
            lines(&body, "queue_wait_seconds_bucket{tenant_id=\"acme\""),
            [
                r#"queue_wait_seconds_bucket{tenant_id="acme",queue="__other__",le="1.0"} 0"#,
                r#"queue_wait_seconds_bucket{tenant_id="acme",queue="__other__",le="10.0"} 1"#,
                r#"queue_wait_seconds_bucket{tenant_id="acme",queue="__other__",le="+Inf"} 2"#,
            ],
            "{body}"
        );
        assert_eq!(
            lines(&body, "queue_wait_seconds_sum{tenant_id=\"acme\""),
            [r#"queue_wait_seconds_sum{tenant_id="acme",queue="__other__"} 22"#]
        );
    }
    let other = QueueLabels {
        queue: "__other__".into(),
    };
    let read = waits.snapshot(&acme, &other).unwrap();
    assert_eq!((read.count(), read.sum()), (2, 22.0));
}

#[test]
fn a_count_view_takes_no_series_bound_of_its_own() {
    let err = Telemetry::builder()
        .with_family_max_series(&plimsoll::http::families::HTTP_REQUESTS, 10)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "family_max_series[http_requests]: \"http_requests_total\" shows a histogram's counts; bound the histogram instead"
    );
}

#[test]
fn folded_histograms_with_negative_sums_merge_without_overflowing() {
    let t = quiet().with_family_max_series(&WAITS, 2).build().unwrap();
    let waits: Histogram<QueueLabels> = t.declare(&WAITS).unwrap();
    let queues = t.label_guard(&WAITS, "queue").unwrap();
    let (acme, globex) = (t.tenant("acme"), t.tenant("globex"));
    let observe = |tenant: &Tenant, queue: &str, value: f64| {
        let labels = QueueLabels {
            queue: queues.admit(queue),
        };
        waits.observe(tenant, &labels, value)
    };
    observe(&globex, "x", 0.5);
    observe(&acme, "y", -1.0); // folded, a negative sum
    observe(&acme, "x", 4.0); // acme's overflow series
    let body = t.encode(Format::Prometheus);
    assert!(
        body.contains("queue_wait_seconds_sum{tenant_id=\"acme\",queue=\"__other__\"} 3\n"),
        "{body}"
    );
    let other = QueueLabels {
        queue: "__other__".into(),
    };
    let read = waits.snapshot(&acme, &other).unwrap();
    assert_eq!((read.count(), read.sum()), (2, 3.0));
    assert!(!t.encode(Format::OpenMetrics).is_empty());
}

#[tokio::test]
async fn the_series_memo_records_exactly_what_the_plain_lookups_record() {
    let mut bodies = Vec::new();
    for memo in [true, false] {
        let t = quiet().with_max_tenants(2).build().unwrap();
        let app = Router::new()
            .route("/a/{id}", get(|| async { "a" }))
            .route(
                "/fail",
                get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "no") }),
            )
            .layer(
                RedMetricsLayer::builder(&t)
                    .with_tenant_header("x-tenant-id")
                    .with_series_memo(memo)
                    .build()
                    .unwrap(),
            );
        // Tenants within and past the bound, invalid ones, several routes
        // and statuses, each twice so that warm requests hit the memo.
        for _ in 0..2 {
            for tenant in ["acme", "globex", "initech", "bad id", ""] {
                for path in ["/a/1", "/a/2", "/fail", "/nowhere"] {
                    send(&app, http::Request::get(path).header("x-tenant-id", tenant)).await;
                }
            }
        }
        let body = t.encode(Format::Prometheus);
        bodies.push(
            body.lines()
                // Latencies vary from run to run; counts do not.
                .filter(|l| {
                    !l.starts_with("http_request_duration_seconds_sum")
                        && !l.starts_with("http_request_duration_seconds_bucket")
                })
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        bodies[0]
            .iter()
            .any(|l| l.contains("tenant_id=\"__other__\""))
    );
    assert_eq!(bodies[0], bodies[1]);
}
