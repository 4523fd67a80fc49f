//! The foundation's promises, checked against exact exposition lines, the
//! real `promtool` and the reference OpenMetrics parser.

mod support;

use plimsoll::family::{FamilyDecl, LabelDecl};
use plimsoll::{Format, MetricOpts, RegisterError, Telemetry, Tenant, TraceRef, impl_label_set};

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Channel {
    channel: &'static str,
}
impl_label_set!(Channel { channel });

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Free {
    value: String,
}
impl_label_set!(Free { value });

fn quiet() -> plimsoll::TelemetryBuilder {
    Telemetry::builder().with_process_metrics(false)
}

fn shop() -> Telemetry {
    let t = quiet()
        .with_prefix("shop")
        .with_const_label("service", "orders")
        .build()
        .unwrap();
    let orders = t
        .counter::<Channel>("orders_placed_total", "Orders placed.")
        .unwrap();
    let depth = t.gauge::<()>("queue_depth", "Jobs waiting.").unwrap();
    let latency = t
        .histogram_with::<Channel>(
            MetricOpts::new("checkout_duration_seconds", "Checkout latency.")
                .with_buckets(vec![0.1, 1.0]),
        )
        .unwrap();
    let (acme, globex) = (t.tenant("acme"), t.tenant("globex"));
    let web = Channel { channel: "web" };
    orders.inc(&acme, &web);
    orders.inc(&acme, &web);
    orders.inc(&globex, &Channel { channel: "mobile" });
    depth.set(&Tenant::system(), &(), 4.5);
    latency.observe(&acme, &web, 0.25);
    latency.observe_with_exemplar(
        &acme,
        &web,
        0.5,
        Some(TraceRef {
            trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
            span_id: 0x00f067aa0ba902b7,
        }),
    );
    latency.observe(&acme, &web, 4.0);
    t
}

const SHOP_PROMETHEUS: &str = r#"# HELP shop_orders_placed_total Orders placed.
# TYPE shop_orders_placed_total counter
shop_orders_placed_total{tenant_id="acme",channel="web",service="orders"} 2
shop_orders_placed_total{tenant_id="globex",channel="mobile",service="orders"} 1
# HELP shop_queue_depth Jobs waiting.
# TYPE shop_queue_depth gauge
shop_queue_depth{tenant_id="__system__",service="orders"} 4.5
# HELP shop_checkout_duration_seconds Checkout latency.
# TYPE shop_checkout_duration_seconds histogram
shop_checkout_duration_seconds_bucket{tenant_id="acme",channel="web",service="orders",le="0.1"} 0
shop_checkout_duration_seconds_bucket{tenant_id="acme",channel="web",service="orders",le="1.0"} 2
shop_checkout_duration_seconds_bucket{tenant_id="acme",channel="web",service="orders",le="+Inf"} 3
shop_checkout_duration_seconds_sum{tenant_id="acme",channel="web",service="orders"} 4.75
shop_checkout_duration_seconds_count{tenant_id="acme",channel="web",service="orders"} 3
"#;

#[test]
fn prometheus_text_is_exact() {
    assert_eq!(shop().encode(Format::Prometheus), SHOP_PROMETHEUS);
}

#[test]
fn openmetrics_text_is_exact_with_exemplars() {
    let body = shop().encode(Format::OpenMetrics);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "# HELP shop_orders_placed Orders placed.");
    assert_eq!(lines[1], "# TYPE shop_orders_placed counter");
    assert_eq!(
        lines[2],
        r#"shop_orders_placed_total{tenant_id="acme",channel="web",service="orders"} 2"#
    );
    let bucket = lines
        .iter()
        .find(|l| l.contains(r#"le="1.0""#))
        .expect("1.0 bucket");
    assert!(
        bucket.starts_with(
            r#"shop_checkout_duration_seconds_bucket{tenant_id="acme",channel="web",service="orders",le="1.0"} 2 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.5 "#
        ),
        "{bucket}"
    );
    assert_eq!(lines.last(), Some(&"# EOF"));
    // Exemplars only in OpenMetrics.
    assert!(!shop().encode(Format::Prometheus).contains("trace_id"));
}

#[test]
fn expositions_pass_promtool_and_the_reference_parser() {
    let t = shop();
    if support::have_promtool() {
        support::promtool_check(&t.encode(Format::Prometheus)).unwrap();
    }
    if support::have_openmetrics_parser() {
        assert_eq!(
            support::openmetrics_check(&t.encode(Format::OpenMetrics)),
            Ok(8)
        );
    }
}

fn hostile_values() -> Vec<String> {
    vec![
        "say \"hi\"".into(),
        "line\nbreak\n".into(),
        "back\\slash\\".into(),
        "\\n literally".into(),
        String::from_utf8_lossy(b"bad \xff\xfe utf8 \xc3\x28").into_owned(),
        "x".repeat(10 * 1024),
        "tab\tcr\rnul\0".into(),
        "{}=,# EOF".into(),
        "ünïcødé ✓".into(),
        String::new(),
    ]
}

#[test]
fn hostile_label_values_are_escaped_and_round_trip() {
    let t = Telemetry::builder()
        .with_const_label("environment", "q\"a\\b\nc")
        .build()
        .unwrap();
    let free = t
        .counter::<Free>("hostile", "Help with \\ and\nnewline and \"quotes\".")
        .unwrap();
    let tenant = t.tenant("acme");
    for value in hostile_values() {
        free.inc(&tenant, &Free { value });
    }
    let scrape = t.scrape();
    for value in hostile_values() {
        assert_eq!(
            scrape.value("hostile_total", &[("value", &value)]),
            Some(1.0),
            "{value:?}"
        );
    }
    if support::have_promtool() {
        support::promtool_check(&t.encode(Format::Prometheus)).unwrap();
    }
    if support::have_openmetrics_parser() {
        let samples = support::openmetrics_check(&t.encode(Format::OpenMetrics)).unwrap();
        assert!(samples >= hostile_values().len(), "{samples}");
    }
}

#[test]
fn tenant_past_the_bound_lands_in_other_and_is_counted() {
    let t = quiet().with_max_tenants(2).build().unwrap();
    let jobs = t.counter::<()>("jobs", "Jobs.").unwrap();
    for raw in ["a", "b", "c", "d", "a", "c"] {
        jobs.inc(&t.tenant(raw), &());
    }
    let scrape = t.scrape();
    assert_eq!(scrape.value("jobs_total", &[("tenant_id", "a")]), Some(2.0));
    assert_eq!(scrape.value("jobs_total", &[("tenant_id", "b")]), Some(1.0));
    assert_eq!(
        scrape.value("jobs_total", &[("tenant_id", "__other__")]),
        Some(3.0)
    );
    assert_eq!(scrape.series_count("jobs_total"), 3);
    assert_eq!(
        scrape.value(
            "plimsoll_cardinality_overflow_total",
            &[
                ("metric", "jobs_total"),
                ("label", "tenant_id"),
                ("tenant_id", "__system__")
            ]
        ),
        Some(3.0)
    );
}

#[test]
fn invalid_tenants_never_reach_a_label() {
    let t = quiet().build().unwrap();
    let jobs = t.counter::<()>("jobs", "Jobs.").unwrap();
    for raw in ["", "a\"b", "x\ny", "__system__", &"t".repeat(65), "ü"] {
        jobs.inc(&t.tenant(raw), &());
        assert!(t.try_tenant(raw).is_err(), "{raw:?}");
    }
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("jobs_total"), 1);
    assert_eq!(
        scrape.value("jobs_total", &[("tenant_id", "__unknown__")]),
        Some(6.0)
    );
}

#[test]
fn series_cap_holds_under_100k_distinct_values_and_loses_nothing() {
    let t = quiet().build().unwrap();
    let free = t
        .counter_with::<Free>(MetricOpts::new("requests", "Requests.").with_max_series(1000))
        .unwrap();
    let tenant = t.tenant("acme");
    for i in 0..100_000 {
        free.inc(
            &tenant,
            &Free {
                value: format!("/users/{i}"),
            },
        );
    }
    assert_eq!(free.series_count(), 1001);
    let scrape = t.scrape();
    assert_eq!(scrape.series_count("requests_total"), 1001);
    assert_eq!(scrape.sum("requests_total", &[]), 100_000.0);
    assert_eq!(
        scrape.value(
            "requests_total",
            &[("value", "__other__"), ("tenant_id", "acme")]
        ),
        Some(99_000.0)
    );
    assert_eq!(
        scrape.value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "requests_total"), ("label", "value")]
        ),
        Some(99_000.0)
    );
    assert!(t.series_count() <= 1003);
}

#[test]
fn hostile_tenants_keep_the_tenant_set_bounded() {
    let t = quiet().with_max_tenants(50).build().unwrap();
    let jobs = t.counter::<()>("jobs", "Jobs.").unwrap();
    for i in 0..100_000 {
        jobs.inc(&t.tenant(&format!("tenant-{i}")), &());
    }
    assert_eq!(jobs.series_count(), 51);
    let scrape = t.scrape();
    assert_eq!(scrape.sum("jobs_total", &[]), 100_000.0);
    assert_eq!(
        scrape.value("jobs_total", &[("tenant_id", "__other__")]),
        Some(99_950.0)
    );
}

#[test]
fn user_label_named_tenant_id_is_refused() {
    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Sneaky {
        tenant_id: String,
    }
    impl_label_set!(Sneaky { tenant_id });
    let t = quiet().with_const_label("service", "x").build().unwrap();
    let err = t.counter::<Sneaky>("sneaky", "Sneaky.").unwrap_err();
    assert!(matches!(&err, RegisterError::ReservedLabel { label, .. } if label == "tenant_id"));
    assert_eq!(
        err.to_string(),
        "metric \"sneaky\": label \"tenant_id\" is reserved (plimsoll adds tenant_id to every series)"
    );

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Le {
        le: u8,
    }
    impl_label_set!(Le { le });
    assert!(matches!(
        t.histogram::<Le>("h", "H.").unwrap_err(),
        RegisterError::ReservedLabel { .. }
    ));

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Service {
        service: u8,
    }
    impl_label_set!(Service { service });
    assert!(matches!(
        t.gauge::<Service>("g", "G.").unwrap_err(),
        RegisterError::ReservedLabel { .. }
    ));
    assert_eq!(
        t.gauge::<()>("bad-name", "x").unwrap_err(),
        RegisterError::InvalidName("bad-name".into())
    );
}

#[test]
fn registration_is_idempotent_and_conflicts_are_errors() {
    let t = quiet().build().unwrap();
    let a = t.counter::<Channel>("hits", "Hits.").unwrap();
    let b = t.counter::<Channel>("hits_total", "Hits.").unwrap();
    let acme = t.tenant("acme");
    a.inc(&acme, &Channel { channel: "web" });
    assert_eq!(b.get(&acme, &Channel { channel: "web" }), 1);
    assert_eq!(
        t.gauge::<Channel>("hits", "Hits.").unwrap_err(),
        RegisterError::Conflict("hits".into())
    );
    assert!(t.counter::<()>("hits", "Hits.").is_err());
}

#[test]
fn two_telemetries_do_not_see_each_others_series() {
    let one = quiet().with_max_tenants(1).build().unwrap();
    let two = quiet().with_max_tenants(1).build().unwrap();
    let c1 = one.counter::<()>("shared_name", "One.").unwrap();
    let c2 = two.counter::<()>("shared_name", "Two.").unwrap();
    c1.inc(&one.tenant("acme"), &());
    c2.inc_by(&two.tenant("globex"), &(), 5);
    // A tenant admitted by `one` is refused by `two` (recorded as
    // `__unknown__`, admitting nothing) unless adopted explicitly, which
    // bounds it by `two`'s policy.
    c2.inc(&one.tenant("acme"), &());
    c2.inc(&two.adopt(&one.tenant("acme")), &());
    let (s1, s2) = (one.scrape(), two.scrape());
    assert_eq!(s1.samples().len(), 1);
    assert_eq!(
        s1.value("shared_name_total", &[("tenant_id", "acme")]),
        Some(1.0)
    );
    assert_eq!(
        s2.value("shared_name_total", &[("tenant_id", "globex")]),
        Some(5.0)
    );
    assert_eq!(
        s2.value("shared_name_total", &[("tenant_id", "__unknown__")]),
        Some(1.0)
    );
    assert_eq!(
        s2.value("shared_name_total", &[("tenant_id", "__other__")]),
        Some(1.0)
    );
    assert_eq!(
        s2.value("shared_name_total", &[("tenant_id", "acme")]),
        None
    );
}

#[test]
fn process_metrics_and_build_info() {
    let t = Telemetry::builder()
        .with_build_info(plimsoll::BuildInfo::new("orders", "1.2.3"))
        .build()
        .unwrap();
    let scrape = t.scrape();
    assert_eq!(
        scrape.value(
            "build_info",
            &[
                ("service", "orders"),
                ("version", "1.2.3"),
                ("tenant_id", "__system__")
            ]
        ),
        Some(1.0)
    );
    if cfg!(target_os = "linux") {
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_threads",
        ] {
            let v = scrape.value(name, &[("tenant_id", "__system__")]);
            assert!(v.is_some_and(|v| v >= 0.0), "{name}: {v:?}");
        }
        assert!(scrape.value("process_resident_memory_bytes", &[]).unwrap() > 1e6);
        let start = scrape.value("process_start_time_seconds", &[]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            start > now - 3600.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
        assert_eq!(scrape.metric_type("process_cpu_seconds"), Some("counter"));
    }
    if support::have_promtool() {
        support::promtool_check(&t.encode(Format::Prometheus)).unwrap();
    }
    if support::have_openmetrics_parser() {
        support::openmetrics_check(&t.encode(Format::OpenMetrics)).unwrap();
    }
}

#[test]
fn builder_errors_name_the_field() {
    let cases: Vec<(plimsoll::TelemetryBuilder, &str)> = vec![
        (Telemetry::builder().with_prefix("9x"), "prefix: \"9x\""),
        (
            Telemetry::builder().with_const_label("tenant_id", "x"),
            "const_labels: \"tenant_id\" is reserved",
        ),
        (
            Telemetry::builder().with_const_label("a-b", "x"),
            "const_labels: \"a-b\"",
        ),
        (
            Telemetry::builder().with_buckets(vec![1.0, 0.5]),
            "buckets:",
        ),
        (
            Telemetry::builder().with_buckets(vec![f64::NAN]),
            "buckets:",
        ),
        (
            Telemetry::builder().with_family_buckets(&H, vec![]),
            "family_buckets[h]:",
        ),
        (
            Telemetry::builder().with_family_max_series(&H, 0),
            "family_max_series[h]: must be at least 1",
        ),
        (
            Telemetry::builder().with_label_bound(&ROUTES, "route", 0),
            "label_bounds[requests_total.route]: must be at least 1",
        ),
        (
            Telemetry::builder().with_label_bound(&ROUTES, "method", 5),
            "label_bounds[requests_total.method]: \"requests_total\" has no open label \"method\" (open labels: [\"route\"])",
        ),
        (
            Telemetry::builder().with_max_series(0),
            "max_series: must be at least 1",
        ),
        (
            Telemetry::builder().with_max_tenants(0),
            "max_tenants: must be at least 1",
        ),
        (
            Telemetry::builder().with_allowed_tenants(["ok", "not ok"]),
            "allowed_tenants: \"not ok\"",
        ),
        (
            Telemetry::builder()
                .with_const_label("service", "a")
                .with_build_info(plimsoll::BuildInfo::new("b", "1")),
            "build_info: label \"service\"",
        ),
    ];
    for (builder, want) in cases {
        let err = builder.build().unwrap_err().to_string();
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
    }
}

#[test]
fn series_handles_and_timers_record_into_the_same_series() {
    let t = quiet().build().unwrap();
    let h = t.histogram::<()>("work_seconds", "Work.").unwrap();
    let acme = t.tenant("acme");
    {
        let _timer = h.start_timer(&acme, &());
    }
    let series = h.series(&acme, &());
    series.observe(0.2);
    assert_eq!(h.count(&acme, &()), 2);
    let g = t.gauge::<()>("in_flight", "In flight.").unwrap();
    let s = g.series(&acme, &());
    s.inc();
    s.inc();
    s.dec();
    assert_eq!(g.get(&acme, &()), 1.0);
}

#[test]
fn overflowed_handles_count_each_recording() {
    let t = quiet().with_max_tenants(1).build().unwrap();
    let c = t.counter::<()>("c", "C.").unwrap();
    let _ = t.tenant("first");
    let series = c.series(&t.tenant("second"), &());
    assert_eq!(
        t.scrape().value("plimsoll_cardinality_overflow_total", &[]),
        None
    );
    series.inc();
    series.inc();
    assert_eq!(
        t.scrape().value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "c_total")]
        ),
        Some(2.0)
    );
}

#[test]
fn negotiation_picks_openmetrics_for_prometheus_scrapers() {
    let t = shop();
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = t.render(Some(accept));
    assert_eq!(om.format, Format::OpenMetrics);
    assert_eq!(
        om.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("# EOF\n"));
    let text = t.render(Some("text/plain"));
    assert_eq!(
        text.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(text.body, SHOP_PROMETHEUS);
}

const H: FamilyDecl = FamilyDecl::histogram("h", "H.");
const ROUTES: FamilyDecl = FamilyDecl::counter("requests_total", "Requests.")
    .with_labels(&[LabelDecl::closed("method"), LabelDecl::open("route", 3)]);

#[test]
fn label_guard_bounds_one_label_and_counts_overflow() {
    let t = quiet()
        .with_label_bound(&ROUTES, "route", 2)
        .build()
        .unwrap();
    let guard = t.label_guard(&ROUTES, "route").unwrap();
    assert_eq!(&*guard.admit("/a"), "/a");
    assert_eq!(&*guard.admit("/b"), "/b");
    assert_eq!(&*guard.admit("/c"), "__other__");
    assert_eq!(&*guard.admit("/a"), "/a");
    assert_eq!(&*guard.admit("/d"), "__other__");
    assert_eq!(guard.len(), 2);
    assert_eq!(
        t.scrape().value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "requests_total"), ("label", "route")]
        ),
        Some(2.0)
    );
    // Resolved once, counted at each use: `try_admit` counts nothing.
    assert_eq!(guard.try_admit("/e"), None);
    assert_eq!(guard.try_admit("/a").as_deref(), Some("/a"));
    guard.count_overflow();
    assert_eq!(
        t.scrape().value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "requests_total"), ("label", "route")]
        ),
        Some(3.0)
    );
    // The declared bound applies when none is configured.
    let t = quiet().build().unwrap();
    let guard = t.label_guard(&ROUTES, "route").unwrap();
    for route in ["/a", "/b", "/c", "/d"] {
        guard.admit(route);
    }
    assert_eq!(guard.len(), 3);
    // A closed or unknown label has no guard; a bound of 0 is refused.
    assert_eq!(
        t.label_guard(&ROUTES, "method").unwrap_err().to_string(),
        "metric \"requests_total\": \"method\" is not an open label of it (open labels: [\"route\"])"
    );
    assert!(t.label_guard(&ROUTES, "nope").is_err());
    assert_eq!(
        t.bounded_label("jobs", "queue", 0).unwrap_err().to_string(),
        "metric \"jobs\": the bound of label \"queue\" must be at least 1"
    );
}

#[test]
fn count_view_exposes_histogram_counts_as_a_counter() {
    let t = quiet().build().unwrap();
    let h = t
        .histogram::<Channel>("req_duration_seconds", "Latency.")
        .unwrap();
    t.register_count_view("req_total", "Requests.", &h).unwrap();
    // Registering the same view again is fine; another histogram under the name is not.
    t.register_count_view("req_total", "Requests.", &h).unwrap();
    let other = t.histogram::<Channel>("other_seconds", "Other.").unwrap();
    assert!(
        t.register_count_view("req_total", "Requests.", &other)
            .is_err()
    );
    let acme = t.tenant("acme");
    for v in [0.01, 0.2, 3.0] {
        h.observe(&acme, &Channel { channel: "web" }, v);
    }
    let scrape = t.scrape();
    assert_eq!(scrape.metric_type("req"), Some("counter"));
    assert_eq!(
        scrape.value("req_total", &[("tenant_id", "acme"), ("channel", "web")]),
        Some(3.0)
    );
    if support::have_promtool() {
        support::promtool_check(&t.encode(Format::Prometheus)).unwrap();
    }
}

#[test]
fn gauge_keys_record_into_their_series() {
    let t = quiet().build().unwrap();
    let g = t.gauge::<Channel>("in_flight", "In flight.").unwrap();
    let acme = t.tenant("acme");
    let key = g.key(&acme, &Channel { channel: "web" });
    g.add_at(&key, 1.0);
    g.add_at(&key, 1.0);
    g.add_at(&key, -1.0);
    assert_eq!(g.get(&acme, &Channel { channel: "web" }), 1.0);
}

#[test]
fn series_keys_read_back_their_tenant_and_labels_and_stay_in_their_family() {
    let t = quiet()
        .with_max_series(1)
        .with_max_tenants(1)
        .build()
        .unwrap();
    let g = t.gauge::<Channel>("in_flight", "In flight.").unwrap();
    let other = t.gauge::<Channel>("queued", "Queued.").unwrap();
    let h = t.histogram::<Channel>("latency", "Latency.").unwrap();
    let (acme, globex) = (t.tenant("acme"), t.tenant("globex"));
    let web = g.key(&acme, &Channel { channel: "web" });
    assert_eq!(g.labels_at(&web), Some(&Channel { channel: "web" }));
    assert_eq!(
        g.tenant_at(&web).map(|t| t.as_str().to_owned()),
        Some("acme".into())
    );
    assert!(!web.is_overflow_series());
    // Past the series bound: the tenant's overflow series, with no labels.
    let api = g.key(&acme, &Channel { channel: "api" });
    assert!(api.is_overflow_series());
    assert_eq!(g.labels_at(&api), None);
    assert_eq!(g.tenant_at(&api).unwrap().as_str(), "acme");
    // Past the tenant bound: the tenant read back is the overflow tenant.
    let folded = g.key(&globex, &Channel { channel: "web" });
    assert!(g.tenant_at(&folded).unwrap().is_overflow());
    // A key of another family reads nothing there.
    assert_eq!(other.labels_at(&web), None);
    assert!(other.tenant_at(&web).is_none());
    // Histogram keys record into their series, with the exemplar kept.
    let key = h.key(&acme, &Channel { channel: "web" });
    let trace = plimsoll_core::TraceRef {
        trace_id: 7,
        span_id: 9,
    };
    h.observe_at(&key, 0.25, Some(trace));
    h.observe_at(&key, 0.5, None);
    assert_eq!(h.count(&acme, &Channel { channel: "web" }), 2);
    assert_eq!(h.sum(&acme, &Channel { channel: "web" }), 0.75);
    assert!(
        t.encode(Format::OpenMetrics)
            .contains("trace_id=\"00000000000000000000000000000007\"")
    );
}

#[test]
fn dynamic_labels_with_a_missing_value_are_not_the_overflow_series() {
    use plimsoll::DynLabels;
    let t = quiet().build().unwrap();
    let c = t
        .counter_dyn(
            MetricOpts::new("calls", "Calls.").with_max_series(2),
            &["status", "request"],
        )
        .unwrap();
    let acme = t.tenant("acme");
    // `request` missing (empty), `status` past a bound: not all `__other__`.
    c.inc_by(&acme, &DynLabels::new(["__other__"]), 1);
    c.inc_by(&acme, &DynLabels::new(["__other__", ""]), 1);
    // Both past their bounds: the overflow series, as is a key past the
    // series bound.
    c.inc_by(&acme, &DynLabels::new(["__other__", "__other__"]), 10);
    c.inc_by(&acme, &DynLabels::new(["200", "r1"]), 100);
    let text = t.encode(Format::Prometheus);
    for line in [
        r#"calls_total{tenant_id="acme",status="__other__",request=""} 2"#,
        r#"calls_total{tenant_id="acme",status="__other__",request="__other__"} 110"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }
    assert_eq!(text.matches("calls_total{").count(), 2, "{text}");
}
