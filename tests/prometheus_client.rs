//! A service's own prometheus-client registry exposed through plimsoll's
//! `/metrics`: exact lines in both formats, checked by the real `promtool`
//! and the reference OpenMetrics parser, and clashing names refused when
//! they are registered.
#![cfg(feature = "prometheus-client")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plimsoll::{BuildInfo, Format, RegisterError, Telemetry, Tenant, impl_label_set};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Channel {
    channel: &'static str,
}
impl_label_set!(Channel { channel });

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
enum Method {
    GET,
}

/// Labels of the payment client's calls (prometheus-client's derive).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    method: Method,
    status: u16,
}

/// Labels named like plimsoll's own: `tenant_id`, and the constant `service`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Owner {
    tenant_id: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Trace {
    trace_id: String,
}

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .with_prefix("shop")
        .with_const_label("service", "orders")
        .build()
        .unwrap()
}

/// plimsoll's `shop_orders_placed` next to a payment client's registry.
fn shop() -> Telemetry {
    let t = telemetry();
    let orders = t
        .counter::<Channel>("orders_placed", "Orders placed.")
        .unwrap();
    orders.inc_by(&t.tenant("acme"), &Channel { channel: "web" }, 2);

    let mut registry = Registry::default();
    let calls = Family::<Call, Counter>::default();
    registry.register(
        "payment_calls",
        "Calls to the payment provider",
        calls.clone(),
    );
    let pool = Gauge::<i64>::default();
    registry.register(
        "payment_pool_connections",
        "Open connections to the payment provider",
        pool.clone(),
    );
    let latency = HistogramWithExemplars::<Trace>::new([0.1, 1.0].into_iter());
    registry.register_with_unit(
        "payment_call_duration",
        "Payment call latency",
        Unit::Seconds,
        latency.clone(),
    );
    registry.register(
        "payment_client",
        "Payment client build",
        Info::new(vec![("version", "2.1.0")]),
    );
    let jobs = Family::<Owner, Counter>::default();
    registry.register("batch_jobs", "Batch jobs, by owner", jobs.clone());
    t.register_prometheus_client(registry).unwrap();

    calls
        .get_or_create(&Call {
            method: Method::GET,
            status: 200,
        })
        .inc_by(3);
    pool.set(4);
    latency.observe(0.05, None, None);
    latency.observe(
        0.5,
        Some(Trace {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        }),
        None,
    );
    jobs.get_or_create(&Owner {
        tenant_id: "acme".into(),
        service: "billing".into(),
    })
    .inc_by(5);
    t
}

const SHOP_OPENMETRICS: &str = r#"# HELP shop_orders_placed Orders placed.
# TYPE shop_orders_placed counter
shop_orders_placed_total{tenant_id="acme",channel="web",service="orders"} 2
# HELP payment_calls Calls to the payment provider.
# TYPE payment_calls counter
payment_calls_total{tenant_id="__system__",method="GET",status="200",service="orders"} 3
# HELP payment_pool_connections Open connections to the payment provider.
# TYPE payment_pool_connections gauge
payment_pool_connections{tenant_id="__system__",service="orders"} 4
# HELP payment_call_duration_seconds Payment call latency.
# TYPE payment_call_duration_seconds histogram
# UNIT payment_call_duration_seconds seconds
payment_call_duration_seconds_sum{tenant_id="__system__",service="orders"} 0.55
payment_call_duration_seconds_count{tenant_id="__system__",service="orders"} 2
payment_call_duration_seconds_bucket{tenant_id="__system__",service="orders",le="0.1"} 1
payment_call_duration_seconds_bucket{tenant_id="__system__",service="orders",le="1.0"} 2 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.5
payment_call_duration_seconds_bucket{tenant_id="__system__",service="orders",le="+Inf"} 2
# HELP payment_client Payment client build.
# TYPE payment_client info
payment_client_info{tenant_id="__system__",version="2.1.0",service="orders"} 1
# HELP batch_jobs Batch jobs, by owner.
# TYPE batch_jobs counter
batch_jobs_total{tenant_id="__system__",exported_tenant_id="acme",exported_service="billing",service="orders"} 5
# EOF
"#;

const SHOP_PROMETHEUS: &str = r#"# HELP shop_orders_placed_total Orders placed.
# TYPE shop_orders_placed_total counter
shop_orders_placed_total{tenant_id="acme",channel="web",service="orders"} 2
# HELP payment_calls_total Calls to the payment provider.
# TYPE payment_calls_total counter
payment_calls_total{tenant_id="__system__",method="GET",status="200",service="orders"} 3
# HELP payment_pool_connections Open connections to the payment provider.
# TYPE payment_pool_connections gauge
payment_pool_connections{tenant_id="__system__",service="orders"} 4
# HELP payment_call_duration_seconds Payment call latency.
# TYPE payment_call_duration_seconds histogram
payment_call_duration_seconds_sum{tenant_id="__system__",service="orders"} 0.55
payment_call_duration_seconds_count{tenant_id="__system__",service="orders"} 2
payment_call_duration_seconds_bucket{tenant_id="__system__",service="orders",le="0.1"} 1
payment_call_duration_seconds_bucket{tenant_id="__system__",service="orders",le="1.0"} 2
payment_call_duration_seconds_bucket{tenant_id="__system__",service="orders",le="+Inf"} 2
# HELP payment_client_info Payment client build.
# TYPE payment_client_info gauge
payment_client_info{tenant_id="__system__",version="2.1.0",service="orders"} 1
# HELP batch_jobs_total Batch jobs, by owner.
# TYPE batch_jobs_total counter
batch_jobs_total{tenant_id="__system__",exported_tenant_id="acme",exported_service="billing",service="orders"} 5
"#;

/// Samples in [`SHOP_OPENMETRICS`]: 1 + 1 + 1 + 5 + 1 + 1.
const SHOP_SAMPLES: usize = 10;

#[test]
fn openmetrics_is_exact() {
    assert_eq!(shop().encode(Format::OpenMetrics), SHOP_OPENMETRICS);
}

#[test]
fn prometheus_text_is_exact() {
    assert_eq!(shop().encode(Format::Prometheus), SHOP_PROMETHEUS);
}

#[test]
fn both_formats_pass_promtool_and_the_reference_parser() {
    let t = shop();
    if support::have_promtool() {
        support::promtool_check(&t.encode(Format::Prometheus)).unwrap();
    }
    if support::have_openmetrics_parser() {
        assert_eq!(
            support::openmetrics_check(&t.encode(Format::OpenMetrics)),
            Ok(SHOP_SAMPLES)
        );
    }
}

fn registry_with(names: &[&str]) -> Registry {
    let mut registry = Registry::default();
    for name in names {
        registry.register(*name, "Clashing", Counter::<u64>::default());
    }
    registry
}

#[test]
fn clashing_names_are_refused_at_registration() {
    let t = shop();
    let before = t.encode(Format::OpenMetrics);
    // The family name of plimsoll's counter, and its sample name as a gauge.
    assert_eq!(
        t.register_prometheus_client(registry_with(&["fine", "shop_orders_placed"])),
        Err(RegisterError::Conflict("shop_orders_placed".into()))
    );
    let mut gauge = Registry::default();
    gauge.register(
        "shop_orders_placed_total",
        "Clashing",
        Gauge::<i64>::default(),
    );
    let err = t.register_prometheus_client(gauge).unwrap_err();
    assert_eq!(
        err,
        RegisterError::Conflict("shop_orders_placed_total".into())
    );
    assert!(
        err.to_string().contains("\"shop_orders_placed_total\""),
        "{err}"
    );
    // Another registry's family, and two families of one registry.
    assert_eq!(
        t.register_prometheus_client(registry_with(&["payment_calls"])),
        Err(RegisterError::Conflict("payment_calls".into()))
    );
    assert_eq!(
        t.register_prometheus_client(registry_with(&["twice", "twice"])),
        Err(RegisterError::Conflict("twice".into()))
    );
    // Nothing of a refused registry is exposed (not even `fine`).
    assert_eq!(t.encode(Format::OpenMetrics), before);

    // Without the prefix, the same name is someone else's: no clash.
    t.register_prometheus_client(registry_with(&["orders_placed"]))
        .unwrap();
    assert!(
        t.encode(Format::Prometheus)
            .contains("\norders_placed_total{tenant_id=\"__system__\",service=\"orders\"} 0\n")
    );
}

#[test]
fn build_info_and_the_overflow_counter_are_plimsoll_names() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_build_info(BuildInfo::new("shop", "1.0.0"))
        .build()
        .unwrap();
    let mut registry = Registry::default();
    registry.register("build_info", "Clashing", Gauge::<i64>::default());
    assert_eq!(
        t.register_prometheus_client(registry),
        Err(RegisterError::Conflict("build_info".into()))
    );
    assert_eq!(
        t.register_prometheus_client(registry_with(&["plimsoll_cardinality_overflow"])),
        Err(RegisterError::Conflict(
            "plimsoll_cardinality_overflow".into()
        ))
    );
}

#[test]
fn plimsoll_families_registered_later_are_refused_when_they_clash() {
    let t = telemetry();
    let mut registry = Registry::default();
    registry.register("shop_refunds", "Refunds", Gauge::<i64>::default());
    registry.register_with_unit(
        "shop_wait",
        "Wait",
        Unit::Seconds,
        HistogramWithExemplars::<Trace>::new([1.0].into_iter()),
    );
    t.register_prometheus_client(registry).unwrap();
    assert_eq!(
        t.counter::<()>("refunds", "Refunds.").err(),
        Some(RegisterError::Conflict("refunds".into()))
    );
    assert_eq!(
        t.gauge::<()>("wait_seconds_count", "Waits.").err(),
        Some(RegisterError::Conflict("wait_seconds_count".into()))
    );
    assert_eq!(
        t.histogram::<()>("wait_seconds", "Waits.").err(),
        Some(RegisterError::Conflict("wait_seconds".into()))
    );
    t.counter::<()>("refunds_issued", "Refunds issued.")
        .unwrap();
}

/// Writes `shop_late_jobs` once `on` is set: a family that appears after
/// registration.
#[derive(Debug)]
struct Late {
    on: Arc<AtomicBool>,
}

impl Collector for Late {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if self.on.load(Ordering::Relaxed) {
            let gauge = ConstGauge::new(1_i64);
            let metric = encoder.encode_descriptor(
                "shop_late_jobs",
                "Late jobs",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[test]
fn a_family_that_clashes_later_is_left_out_of_scrapes() {
    let t = telemetry();
    let on = Arc::new(AtomicBool::new(false));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Late { on: on.clone() }));
    // prometheus-client writes nothing of a family with labels until its
    // first series.
    let retries = Family::<Call, Counter>::default();
    registry.register("shop_retries", "Retries", retries.clone());
    let ticks = Gauge::<i64>::default();
    registry.register("ticks", "Ticks", ticks.clone());
    t.register_prometheus_client(registry).unwrap();
    // Neither name shows yet, so plimsoll can take both.
    let late = t.counter::<()>("late_jobs", "Late jobs.").unwrap();
    let retried = t.gauge::<()>("retries", "Retries.").unwrap();
    late.inc(&t.tenant("acme"), &());
    retried.set(&Tenant::system(), &(), 2.0);
    on.store(true, Ordering::Relaxed);
    retries
        .get_or_create(&Call {
            method: Method::GET,
            status: 503,
        })
        .inc();

    let openmetrics = t.encode(Format::OpenMetrics);
    let prometheus = t.encode(Format::Prometheus);
    for body in [&openmetrics, &prometheus] {
        assert!(!body.contains("shop_late_jobs{"), "{body}");
        assert!(!body.contains("shop_retries_total{"), "{body}");
        for line in [
            "shop_late_jobs_total{tenant_id=\"acme\",service=\"orders\"} 1\n",
            "shop_retries{tenant_id=\"__system__\",service=\"orders\"} 2\n",
            "ticks{tenant_id=\"__system__\",service=\"orders\"} 0\n",
        ] {
            assert!(body.contains(line), "{line}{body}");
        }
    }
    if support::have_promtool() {
        support::promtool_check(&prometheus).unwrap();
    }
    if support::have_openmetrics_parser() {
        assert_eq!(support::openmetrics_check(&openmetrics), Ok(3));
    }
}

#[test]
fn a_family_with_labels_takes_its_name_once_it_has_a_series() {
    let t = telemetry();
    let mut registry = Registry::default();
    let retries = Family::<Call, Counter>::default();
    registry.register("shop_retries", "Retries", retries.clone());
    t.register_prometheus_client(registry).unwrap();
    retries
        .get_or_create(&Call {
            method: Method::GET,
            status: 503,
        })
        .inc();
    assert_eq!(
        t.counter::<()>("retries", "Retries.").err(),
        Some(RegisterError::Conflict("retries".into()))
    );
    // Once written, the name stays taken, series or not.
    retries.clear();
    assert_eq!(
        t.gauge::<()>("retries_total", "Retries.").err(),
        Some(RegisterError::Conflict("retries_total".into()))
    );
    t.gauge::<()>("retry_budget", "Retry budget.").unwrap();
}

#[test]
fn hostile_foreign_label_values_pass_both_checkers() {
    let t = telemetry();
    let mut registry = Registry::default();
    let notes = Family::<Vec<(&'static str, String)>, Counter>::default();
    registry.register(
        "notes",
        "Help with \\ and\nnewline and \"quotes\"",
        notes.clone(),
    );
    let values = [
        "say \"hi\"",
        "line\nbreak\n",
        "back\\slash\\",
        "ünïcødé ✓",
        "{}=,# EOF",
        "",
    ];
    for value in values {
        notes
            .get_or_create(&vec![("text", value.to_string())])
            .inc();
    }
    t.register_prometheus_client(registry).unwrap();
    let prometheus = t.encode(Format::Prometheus);
    assert!(
        prometheus.contains("# HELP notes_total Help with \\\\ and\\nnewline and \"quotes\".\n"),
        "{prometheus}"
    );
    assert!(
        prometheus.contains(
            "notes_total{tenant_id=\"__system__\",text=\"line\\nbreak\\n\",service=\"orders\"} 1\n"
        ),
        "{prometheus}"
    );
    if support::have_promtool() {
        support::promtool_check(&prometheus).unwrap();
    }
    if support::have_openmetrics_parser() {
        assert_eq!(
            support::openmetrics_check(&t.encode(Format::OpenMetrics)),
            Ok(values.len())
        );
    }
}

#[test]
fn a_histogram_with_a_negative_sum_passes_both_checkers() {
    let t = telemetry();
    let mut registry = Registry::default();
    let deltas = Histogram::new([0.0, 10.0]);
    registry.register("balance_delta", "Balance changes", deltas.clone());
    deltas.observe(-3.0);
    t.register_prometheus_client(registry).unwrap();
    let openmetrics = t.encode(Format::OpenMetrics);
    assert!(!openmetrics.contains("balance_delta_sum"), "{openmetrics}");
    let prometheus = t.encode(Format::Prometheus);
    assert!(
        prometheus
            .contains("balance_delta_sum{tenant_id=\"__system__\",service=\"orders\"} -3.0\n"),
        "{prometheus}"
    );
    if support::have_promtool() {
        support::promtool_check(&prometheus).unwrap();
    }
    if support::have_openmetrics_parser() {
        assert_eq!(support::openmetrics_check(&openmetrics), Ok(3));
    }
}
