//! The `metrics` facade's recorder: the request's tenant, bounds under a
//! library that sends 100,000 label values, histogram buckets from the
//! configuration, refusals counted, and both exposition formats through
//! promtool and the reference OpenMetrics parser.
#![cfg(feature = "recorder")]

mod support;

use plimsoll::recorder::Recorder;
use plimsoll::scope::Scope;
use plimsoll::{Format, Telemetry};

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

/// What a library does: a labelled counter per call, a gauge, a histogram.
fn library_call(path: &str, seconds: f64) {
    metrics::counter!("lib.requests", "path" => path.to_string()).increment(1);
    metrics::histogram!("lib.latency", "path" => path.to_string()).record(seconds);
}

#[test]
fn values_carry_the_request_tenant_even_through_a_kept_handle() {
    let t = telemetry();
    let recorder = Recorder::builder(&t).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        let kept = metrics::counter!("jobs", "queue" => "email");
        kept.increment(1);
        Scope::new(t.tenant("acme")).enter(|| {
            kept.increment(2);
            metrics::gauge!("inflight").increment(3.0);
            metrics::gauge!("inflight").decrement(1.0);
        });
        Scope::new(t.tenant("globex")).enter(|| {
            metrics::gauge!("inflight").set(7.0);
            metrics::counter!("jobs", "queue" => "email").absolute(10);
            metrics::counter!("jobs", "queue" => "email").absolute(4); // never lowers
        });
    });
    let text = t.encode(Format::Prometheus);
    for line in [
        r#"jobs_total{tenant_id="__system__",queue="email"} 1"#,
        r#"jobs_total{tenant_id="acme",queue="email"} 2"#,
        r#"jobs_total{tenant_id="globex",queue="email"} 10"#,
        r#"inflight{tenant_id="acme"} 2"#,
        r#"inflight{tenant_id="globex"} 7"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }
}

#[test]
fn a_hundred_thousand_label_values_stay_within_the_bounds() {
    let t = telemetry();
    let recorder = Recorder::builder(&t).max_series(50).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..100_000 {
            library_call(&format!("/items/{i}"), 0.01);
        }
    });
    let s = t.scrape();
    // 50 series, and the tenant's `__other__` series for the rest: nothing lost.
    assert_eq!(s.series_count("lib_requests_total"), 51);
    assert_eq!(s.sum("lib_requests_total", &[]), 100_000.0);
    assert_eq!(
        s.value("lib_requests_total", &[("path", "__other__")]),
        Some(99_950.0)
    );
    assert_eq!(
        s.value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "lib_requests_total"), ("label", "path")]
        ),
        Some(99_950.0)
    );
    assert_eq!(
        s.value("lib_latency_count", &[("path", "__other__")]),
        Some(99_950.0)
    );
    // The recorder keeps a handle for at most 50 keys per metric.
    assert_eq!(recorder.kept_handles(), 100);

    // metrics-exporter-prometheus, for comparison, keeps every one.
    let theirs = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = theirs.handle();
    metrics::with_local_recorder(&theirs, || {
        for i in 0..100_000 {
            library_call(&format!("/items/{i}"), 0.01);
        }
    });
    let rendered = handle.render();
    let series = rendered
        .lines()
        .filter(|l| l.starts_with("lib_requests{"))
        .count();
    assert_eq!(series, 100_000);
}

#[test]
fn a_noisy_label_is_bounded_on_its_own_and_the_others_keep_their_values() {
    let t = telemetry();
    let recorder = Recorder::builder(&t)
        .max_series(1_000)
        .max_label_values(10)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..10_000 {
            let status = ["200", "404", "500"][i % 3];
            // A request id in a label: what a library should not do.
            let c = metrics::counter!("calls", "status" => status, "request" => format!("r{i}"));
            c.increment(1);
            c.increment(1); // a kept handle of a folded key counts each use
            c.absolute(1_000_000); // no level to set in a shared series
        }
    });
    let s = t.scrape();
    // Ten request ids keep their own series (raised to the level set);
    // every status keeps its own label beside `__other__`, and nothing
    // is lost.
    assert_eq!(s.series_count("calls_total"), 10 + 3);
    assert_eq!(
        s.value("calls_total", &[("status", "404"), ("request", "r1")]),
        Some(1_000_000.0)
    );
    assert_eq!(
        s.sum("calls_total", &[]),
        10.0 * 1_000_000.0 + 2.0 * 9_990.0
    );
    for status in ["200", "404", "500"] {
        let want = (0..10_000).filter(|i| ["200", "404", "500"][i % 3] == status && *i >= 10);
        assert_eq!(
            s.value(
                "calls_total",
                &[("status", status), ("request", "__other__")]
            ),
            Some(2.0 * want.count() as f64),
            "{status}"
        );
    }
    // Each use past the bound is counted, under the label that
    // overflowed, even the `absolute` that recorded nothing.
    assert_eq!(
        s.value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "calls_total"), ("label", "request")]
        ),
        Some(3.0 * 9_990.0)
    );
    assert_eq!(
        s.value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "calls_total"), ("label", "status")]
        ),
        None
    );
    // Only keys of their own keep a handle.
    assert_eq!(recorder.kept_handles(), 10);
    // A second recorder on the telemetry keeps the label's bound of 10.
    let second = Recorder::builder(&t).max_label_values(50).build().unwrap();
    metrics::with_local_recorder(&second, || {
        metrics::counter!("calls", "status" => "200", "request" => "r20").increment(1);
    });
    assert_eq!(
        t.scrape().value(
            "calls_total",
            &[("status", "200"), ("request", "__other__")]
        ),
        Some(2.0 * 3_330.0 + 1.0)
    );
    let err = Recorder::builder(&t)
        .max_label_values(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "max_label_values: must be greater than zero"
    );
}

#[test]
fn histograms_take_the_configured_buckets() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_buckets(vec![0.5, 5.0])
        .build()
        .unwrap();
    let recorder = Recorder::builder(&t)
        .buckets("lib.latency", vec![0.1, 1.0])
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        library_call("/a", 0.05);
        metrics::histogram!("db.wait").record(2.0);
    });
    let text = t.encode(Format::Prometheus);
    for line in [
        r#"lib_latency_bucket{tenant_id="__system__",path="/a",le="0.1"} 1"#,
        r#"lib_latency_bucket{tenant_id="__system__",path="/a",le="1.0"} 1"#,
        r#"lib_latency_bucket{tenant_id="__system__",path="/a",le="+Inf"} 1"#,
        r#"db_wait_bucket{tenant_id="__system__",le="0.5"} 0"#,
        r#"db_wait_bucket{tenant_id="__system__",le="5.0"} 1"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }
    let err = Recorder::builder(&t)
        .buckets("x", vec![1.0, 0.5])
        .build()
        .unwrap_err();
    assert!(err.to_string().starts_with("buckets for x:"), "{err}");
    let err = Recorder::builder(&t).max_series(0).build().unwrap_err();
    assert_eq!(err.to_string(), "max_series: must be greater than zero");
}

#[test]
fn names_labels_help_and_refusals() {
    let t = telemetry();
    t.counter::<()>("taken", "A plimsoll family of its own.")
        .unwrap();
    let recorder = Recorder::builder(&t).max_metrics(4).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("http.client.calls", "Calls made by the client.");
        metrics::counter!("http.client.calls", "tenant_id" => "spoofed", "status.code" => "200")
            .increment(1);
        // Other label names than the first key's: missing empty, extra dropped.
        metrics::counter!("http.client.calls", "status.code" => "500", "extra" => "x").increment(1);
        metrics::counter!("taken", "kind" => "x").increment(1); // conflict
        metrics::gauge!("depth").set(1.0);
        metrics::counter!("depth").increment(1); // one name, two types
        metrics::gauge!("third").set(1.0);
        metrics::gauge!("fourth").set(1.0); // past the bound of 4 metrics
    });
    let text = t.encode(Format::Prometheus);
    for line in [
        "# HELP http_client_calls_total Calls made by the client.",
        r#"http_client_calls_total{tenant_id="__system__",exported_tenant_id="spoofed",status_code="200"} 1"#,
        r#"http_client_calls_total{tenant_id="__system__",exported_tenant_id="",status_code="500"} 1"#,
        r#"plimsoll_recorder_refused_total{tenant_id="__system__",reason="conflict"} 1"#,
        r#"plimsoll_recorder_refused_total{tenant_id="__system__",reason="kind"} 1"#,
        r#"plimsoll_recorder_refused_total{tenant_id="__system__",reason="metrics_bound"} 1"#,
        r#"depth{tenant_id="__system__"} 1"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }
    assert!(!text.contains("fourth"), "{text}");
}

#[test]
fn both_formats_pass_their_validators() {
    let t = telemetry();
    let recorder = Recorder::builder(&t).max_series(5).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..20 {
            Scope::new(t.tenant("acme")).enter(|| library_call(&format!("/p{i}"), 0.2));
        }
        metrics::gauge!("pool.idle", "pool" => "main").set(2.0);
    });
    if support::have_promtool() {
        support::promtool_check(&t.encode(Format::Prometheus)).unwrap();
    }
    if support::have_openmetrics_parser() {
        let samples = support::openmetrics_check(&t.encode(Format::OpenMetrics)).unwrap();
        assert!(samples > 60, "{samples}");
    }
}

#[test]
fn two_recorders_and_many_threads_keep_apart() {
    let (one, two) = (telemetry(), telemetry());
    let first = Recorder::builder(&one).build().unwrap();
    let second = Recorder::builder(&two).build().unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    metrics::with_local_recorder(&first, || {
                        metrics::counter!("shared", "k" => "v").increment(1)
                    });
                    metrics::with_local_recorder(&second, || {
                        metrics::counter!("shared", "k" => "v").increment(2)
                    });
                }
            });
        }
    });
    assert_eq!(
        one.scrape().value("shared_total", &[("k", "v")]),
        Some(400.0)
    );
    assert_eq!(
        two.scrape().value("shared_total", &[("k", "v")]),
        Some(800.0)
    );
}

#[test]
fn label_names_made_alike_stay_apart_and_values_named_other_fold() {
    let t = telemetry();
    let recorder = Recorder::builder(&t).max_series(1).build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("dup", "a.b" => "1", "a_b" => "2").increment(1);
        metrics::histogram!("sizes", "le" => "x").record(1.0);
        metrics::counter!("odd", "k" => "x").increment(1);
        // A value that reads like the overflow series is counted in it:
        // never two series with the same labels.
        metrics::counter!("odd", "k" => "__other__").increment(1);
        metrics::counter!("odd", "k" => "y").increment(1); // past the bound
        metrics::counter!("odd", "k" => "z").absolute(100); // past the bound: no level to set
    });
    let text = t.encode(Format::Prometheus);
    for line in [
        r#"dup_total{tenant_id="__system__",a_b="1",a_b_2="2"} 1"#,
        r#"sizes_count{tenant_id="__system__",exported_le="x"} 1"#,
        r#"odd_total{tenant_id="__system__",k="x"} 1"#,
        r#"odd_total{tenant_id="__system__",k="__other__"} 2"#,
        // Each use past the bound, the `absolute` that recorded nothing too.
        r#"plimsoll_cardinality_overflow_total{tenant_id="__system__",metric="odd_total",label="k"} 3"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }
    assert_eq!(text.matches("odd_total{").count(), 2, "{text}");
    if support::have_promtool() {
        support::promtool_check(&text).unwrap();
    }
}

#[test]
fn install_makes_it_the_process_recorder_once() {
    let t = telemetry();
    Recorder::builder(&t).build().unwrap().install().unwrap();
    // Outside any local recorder (the other tests' local ones take
    // precedence while they run), the macros reach the installed one.
    std::thread::spawn(|| metrics::counter!("installed_calls").increment(3))
        .join()
        .unwrap();
    assert_eq!(t.scrape().value("installed_calls_total", &[]), Some(3.0));
    let again = Recorder::builder(&telemetry()).build().unwrap().install();
    assert_eq!(
        again.unwrap_err().to_string(),
        "a global metrics recorder is installed already"
    );
}

#[test]
fn absolute_from_two_recorders_and_many_threads_raises_once() {
    let t = telemetry();
    let (first, second) = (
        Recorder::builder(&t).build().unwrap(),
        Recorder::builder(&t).build().unwrap(),
    );
    std::thread::scope(|s| {
        for thread in 0..4u64 {
            let recorder = if thread % 2 == 0 { &first } else { &second };
            s.spawn(move || {
                metrics::with_local_recorder(recorder, || {
                    for level in 1..=1_000 {
                        metrics::counter!("bytes_sent").absolute(level * 10 + thread);
                    }
                })
            });
        }
    });
    // The highest level any thread set, never a sum of two reads.
    assert_eq!(t.scrape().value("bytes_sent_total", &[]), Some(10_003.0));
}
