//! The rewriting, line by line, in both formats.

use super::*;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family as PcFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Unit;

const CONSTS: &str = r#",service="shop""#;

/// `text` rewritten in `format` with the constant label `service="shop"`.
fn rewritten(text: &str, format: Format) -> String {
    let mut out = String::new();
    let consts = ConstLabels::new(CONSTS);
    rewrite(text, &mut out, format, &consts, &mut Names::default());
    out
}

fn text_of(registry: &Registry) -> String {
    let mut text = String::new();
    assert!(encode_text(registry, &mut text));
    text
}

/// Asserts the rewrite of `registry` in both formats.
#[track_caller]
fn assert_both(registry: &Registry, openmetrics: &str, prometheus: &str) {
    let text = text_of(registry);
    assert_eq!(
        rewritten(&text, Format::OpenMetrics),
        openmetrics,
        "from:\n{text}"
    );
    assert_eq!(
        rewritten(&text, Format::Prometheus),
        prometheus,
        "from:\n{text}"
    );
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Trace {
    trace_id: String,
}

#[test]
fn counter() {
    let mut registry = Registry::default();
    let requests = PcFamily::<Request, Counter>::default();
    registry.register("client_requests", "Requests sent", requests.clone());
    requests
        .get_or_create(&Request {
            method: "GET".into(),
            code: 200,
        })
        .inc_by(3);
    assert_both(
        &registry,
        "# HELP client_requests Requests sent.\n\
         # TYPE client_requests counter\n\
         client_requests_total{tenant_id=\"__system__\",method=\"GET\",code=\"200\",service=\"shop\"} 3\n",
        "# HELP client_requests_total Requests sent.\n\
         # TYPE client_requests_total counter\n\
         client_requests_total{tenant_id=\"__system__\",method=\"GET\",code=\"200\",service=\"shop\"} 3\n",
    );
}

#[test]
fn gauge() {
    let mut registry = Registry::default();
    let open = Gauge::<i64>::default();
    let ratio = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    registry.register("connections_open", "Open connections", open.clone());
    registry.register_with_unit("pool_usage", "Pool usage", Unit::Ratios, ratio.clone());
    open.set(7);
    ratio.set(0.25);
    assert_both(
        &registry,
        "# HELP connections_open Open connections.\n\
         # TYPE connections_open gauge\n\
         connections_open{tenant_id=\"__system__\",service=\"shop\"} 7\n\
         # HELP pool_usage_ratios Pool usage.\n\
         # TYPE pool_usage_ratios gauge\n\
         # UNIT pool_usage_ratios ratios\n\
         pool_usage_ratios{tenant_id=\"__system__\",service=\"shop\"} 0.25\n",
        "# HELP connections_open Open connections.\n\
         # TYPE connections_open gauge\n\
         connections_open{tenant_id=\"__system__\",service=\"shop\"} 7\n\
         # HELP pool_usage_ratios Pool usage.\n\
         # TYPE pool_usage_ratios gauge\n\
         pool_usage_ratios{tenant_id=\"__system__\",service=\"shop\"} 0.25\n",
    );
}

#[test]
fn histogram_with_exemplar() {
    let mut registry = Registry::default();
    let latency = HistogramWithExemplars::<Trace>::new([0.1, 1.0].into_iter());
    registry.register_with_unit(
        "payment_duration",
        "Payment latency",
        Unit::Seconds,
        latency.clone(),
    );
    latency.observe(0.05, None, None);
    latency.observe(
        0.5,
        Some(Trace {
            trace_id: "4bf92f3577b34da6".into(),
        }),
        None,
    );
    assert_both(
        &registry,
        "# HELP payment_duration_seconds Payment latency.\n\
         # TYPE payment_duration_seconds histogram\n\
         # UNIT payment_duration_seconds seconds\n\
         payment_duration_seconds_sum{tenant_id=\"__system__\",service=\"shop\"} 0.55\n\
         payment_duration_seconds_count{tenant_id=\"__system__\",service=\"shop\"} 2\n\
         payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.1\"} 1\n\
         payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2 # {trace_id=\"4bf92f3577b34da6\"} 0.5\n\
         payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
        "# HELP payment_duration_seconds Payment latency.\n\
         # TYPE payment_duration_seconds histogram\n\
         payment_duration_seconds_sum{tenant_id=\"__system__\",service=\"shop\"} 0.55\n\
         payment_duration_seconds_count{tenant_id=\"__system__\",service=\"shop\"} 2\n\
         payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.1\"} 1\n\
         payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2\n\
         payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
    );
}

#[test]
fn histogram_with_a_negative_sum_has_no_sum_in_openmetrics() {
    let mut registry = Registry::default();
    let deltas = Histogram::new([0.0, 10.0]);
    registry.register("balance_delta", "Balance changes", deltas.clone());
    deltas.observe(-3.0);
    deltas.observe(1.0);
    assert_both(
        &registry,
        "# HELP balance_delta Balance changes.\n\
         # TYPE balance_delta histogram\n\
         balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.0\"} 1\n\
         balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"10.0\"} 2\n\
         balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
        "# HELP balance_delta Balance changes.\n\
         # TYPE balance_delta histogram\n\
         balance_delta_sum{tenant_id=\"__system__\",service=\"shop\"} -2.0\n\
         balance_delta_count{tenant_id=\"__system__\",service=\"shop\"} 2\n\
         balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.0\"} 1\n\
         balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"10.0\"} 2\n\
         balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
    );
}

#[test]
fn info() {
    let mut registry = Registry::default();
    registry.register(
        "payment_client",
        "Payment client build",
        Info::new(vec![("version", "1.2.3")]),
    );
    assert_both(
        &registry,
        "# HELP payment_client Payment client build.\n\
         # TYPE payment_client info\n\
         payment_client_info{tenant_id=\"__system__\",version=\"1.2.3\",service=\"shop\"} 1\n",
        "# HELP payment_client_info Payment client build.\n\
         # TYPE payment_client_info gauge\n\
         payment_client_info{tenant_id=\"__system__\",version=\"1.2.3\",service=\"shop\"} 1\n",
    );
}

// prometheus-client 0.25 writes no stateset, gaugehistogram, summary or
// `_created`; the rewrite still maps them, checked on OpenMetrics text.

#[test]
fn stateset() {
    let text = "# HELP breaker Breaker state.\n\
                # TYPE breaker stateset\n\
                breaker{peer=\"db\",breaker=\"open\"} 0\n\
                breaker{peer=\"db\",breaker=\"closed\"} 1\n\
                # EOF\n";
    assert_eq!(
        rewritten(text, Format::OpenMetrics),
        "# HELP breaker Breaker state.\n\
         # TYPE breaker stateset\n\
         breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"open\",service=\"shop\"} 0\n\
         breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"closed\",service=\"shop\"} 1\n"
    );
    assert_eq!(
        rewritten(text, Format::Prometheus),
        "# HELP breaker Breaker state.\n\
         # TYPE breaker gauge\n\
         breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"open\",service=\"shop\"} 0\n\
         breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"closed\",service=\"shop\"} 1\n"
    );
}

#[test]
fn gaugehistogram_summary_unknown_and_created() {
    let text = "# HELP queue_wait Queue wait.\n\
                # TYPE queue_wait gaugehistogram\n\
                queue_wait_bucket{le=\"1.0\"} 2\n\
                queue_wait_bucket{le=\"+Inf\"} 3\n\
                queue_wait_gcount 3\n\
                queue_wait_gsum 4.5\n\
                # HELP jobs Jobs.\n\
                # TYPE jobs counter\n\
                jobs_total 5 # {trace_id=\"ab\"} 1 1700000000.5\n\
                jobs_created 1700000000.25\n\
                # HELP rpc RPC latency.\n\
                # TYPE rpc summary\n\
                rpc{quantile=\"0.5\"} 0.2\n\
                rpc_sum 1.5\n\
                rpc_count 7\n\
                rpc_created 1700000000\n\
                # HELP temp Temperature.\n\
                # TYPE temp unknown\n\
                temp 21.5 1700000000.123\n";
    assert_eq!(
        rewritten(text, Format::OpenMetrics),
        "# HELP queue_wait Queue wait.\n\
         # TYPE queue_wait gaugehistogram\n\
         queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2\n\
         queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 3\n\
         queue_wait_gcount{tenant_id=\"__system__\",service=\"shop\"} 3\n\
         queue_wait_gsum{tenant_id=\"__system__\",service=\"shop\"} 4.5\n\
         # HELP jobs Jobs.\n\
         # TYPE jobs counter\n\
         jobs_total{tenant_id=\"__system__\",service=\"shop\"} 5 # {trace_id=\"ab\"} 1 1700000000.5\n\
         jobs_created{tenant_id=\"__system__\",service=\"shop\"} 1700000000.25\n\
         # HELP rpc RPC latency.\n\
         # TYPE rpc summary\n\
         rpc{tenant_id=\"__system__\",quantile=\"0.5\",service=\"shop\"} 0.2\n\
         rpc_sum{tenant_id=\"__system__\",service=\"shop\"} 1.5\n\
         rpc_count{tenant_id=\"__system__\",service=\"shop\"} 7\n\
         rpc_created{tenant_id=\"__system__\",service=\"shop\"} 1700000000\n\
         # HELP temp Temperature.\n\
         # TYPE temp unknown\n\
         temp{tenant_id=\"__system__\",service=\"shop\"} 21.5 1700000000.123\n"
    );
    assert_eq!(
        rewritten(text, Format::Prometheus),
        "# HELP queue_wait_bucket Queue wait.\n\
         # TYPE queue_wait_bucket untyped\n\
         queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2\n\
         queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 3\n\
         # HELP queue_wait_gcount Queue wait.\n\
         # TYPE queue_wait_gcount gauge\n\
         queue_wait_gcount{tenant_id=\"__system__\",service=\"shop\"} 3\n\
         # HELP queue_wait_gsum Queue wait.\n\
         # TYPE queue_wait_gsum gauge\n\
         queue_wait_gsum{tenant_id=\"__system__\",service=\"shop\"} 4.5\n\
         # HELP jobs_total Jobs.\n\
         # TYPE jobs_total counter\n\
         jobs_total{tenant_id=\"__system__\",service=\"shop\"} 5\n\
         # HELP rpc RPC latency.\n\
         # TYPE rpc summary\n\
         rpc{tenant_id=\"__system__\",quantile=\"0.5\",service=\"shop\"} 0.2\n\
         rpc_sum{tenant_id=\"__system__\",service=\"shop\"} 1.5\n\
         rpc_count{tenant_id=\"__system__\",service=\"shop\"} 7\n\
         # HELP temp Temperature.\n\
         # TYPE temp untyped\n\
         temp{tenant_id=\"__system__\",service=\"shop\"} 21.5 1700000000123\n"
    );
}

#[test]
fn hostile_label_values_and_help() {
    let mut registry = Registry::default();
    let notes = PcFamily::<Vec<(&'static str, String)>, Counter>::default();
    registry.register(
        "notes",
        "Help with \\ and\nnewline and \"quotes\"",
        notes.clone(),
    );
    notes
        .get_or_create(&vec![(
            "text",
            "say \"hi\" \\ line\nbreak ünïcødé ✓".to_string(),
        )])
        .inc();
    assert_both(
        &registry,
        "# HELP notes Help with \\\\ and\\nnewline and \\\"quotes\\\".\n\
         # TYPE notes counter\n\
         notes_total{tenant_id=\"__system__\",text=\"say \\\"hi\\\" \\\\ line\\nbreak ünïcødé ✓\",service=\"shop\"} 1\n",
        "# HELP notes_total Help with \\\\ and\\nnewline and \"quotes\".\n\
         # TYPE notes_total counter\n\
         notes_total{tenant_id=\"__system__\",text=\"say \\\"hi\\\" \\\\ line\\nbreak ünïcødé ✓\",service=\"shop\"} 1\n",
    );
}

#[test]
fn tenant_id_and_const_label_names_are_exported() {
    let mut registry = Registry::default();
    let logins = PcFamily::<Vec<(&'static str, &'static str)>, Counter>::default();
    registry.register("logins", "Logins", logins.clone());
    logins
        .get_or_create(&vec![
            ("tenant_id", "acme"),
            ("service", "auth"),
            ("exported_service", "sso"),
        ])
        .inc();
    let text = text_of(&registry);
    let line = "logins_total{tenant_id=\"__system__\",exported_tenant_id=\"acme\",\
                exported_exported_service=\"auth\",exported_service=\"sso\",service=\"shop\"} 1\n";
    assert!(rewritten(&text, Format::OpenMetrics).ends_with(line));
    assert!(rewritten(&text, Format::Prometheus).ends_with(line));
}

#[test]
fn values_are_spelt_as_both_formats_read_them() {
    let text = "# HELP g G.\n# TYPE g gauge\ng{a=\"1\"} inf\ng{a=\"2\"} -inf\ng{a=\"3\"} nan\n";
    let out = rewritten(text, Format::Prometheus);
    assert!(
        out.contains("g{tenant_id=\"__system__\",a=\"1\",service=\"shop\"} +Inf\n"),
        "{out}"
    );
    assert!(out.contains("a=\"2\",service=\"shop\"} -Inf\n"), "{out}");
    assert!(out.contains("a=\"3\",service=\"shop\"} NaN\n"), "{out}");
}

#[test]
fn taken_names_and_broken_families_are_left_out() {
    let text = "# HELP a_total A.\n# TYPE a_total gauge\na_total 1\n\
                # HELP b B.\n# TYPE b gauge\nb_total 1\n\
                # HELP c-d C.\n# TYPE c-d gauge\nc-d 1\n\
                # HELP e E.\n# TYPE e gauge\ne{f-g=\"1\"} 1\n\
                # HELP h H.\n# TYPE h gauge\nh 2\n";
    let mut taken = Names::default();
    taken.insert("a", Type::Counter);
    let mut out = String::new();
    let skipped = rewrite(
        text,
        &mut out,
        Format::OpenMetrics,
        &ConstLabels::new(""),
        &mut taken,
    );
    assert_eq!(
        out,
        "# HELP h H.\n# TYPE h gauge\nh{tenant_id=\"__system__\"} 2\n"
    );
    assert_eq!(
        skipped,
        [
            Skipped::Clash("a_total".into()),
            Skipped::Unreadable(Problem::Stray("b_total".into())),
            Skipped::Unreadable(Problem::InvalidName("c-d".into())),
            Skipped::Unreadable(Problem::InvalidLabelName {
                metric: "e".into(),
                label: "f-g".into()
            }),
        ]
    );
    // What was written is taken: a second registry cannot write `h` again.
    let skipped = rewrite(
        text,
        &mut out,
        Format::OpenMetrics,
        &ConstLabels::new(""),
        &mut taken,
    );
    assert_eq!(skipped.last(), Some(&Skipped::Clash("h".into())));
}

#[test]
fn plimsoll_families_take_every_sample_name_their_name_can_have() {
    let mut taken = Names::default();
    taken.insert_plimsoll("shop_orders");
    for (name, kind) in [
        ("shop_orders", Type::Gauge),
        ("shop_orders_total", Type::Gauge),
        ("shop_orders_count", Type::Unknown),
        ("shop_orders", Type::Info),
    ] {
        assert!(taken.clashes(name, kind), "{name} {kind:?}");
    }
    assert!(!taken.clashes("shop_orders_placed", Type::Counter));
    assert!(!taken.clashes("shop", Type::Histogram));
    assert!(!taken.clashes("orders", Type::Counter));
}

#[test]
fn plimsoll_names_are_read_alike_from_both_formats() {
    let mut om = Names::default();
    om.scan(
        "# TYPE shop_x counter\nshop_x_total 1\n# TYPE shop_y gauge\n",
        Format::OpenMetrics,
    );
    let mut prom = Names::default();
    prom.scan(
        "# TYPE shop_x_total counter\nshop_x_total 1\n# TYPE shop_y gauge\n",
        Format::Prometheus,
    );
    assert_eq!(om.0, prom.0);
    assert!(om.clashes("shop_x_total", Type::Gauge));
    assert!(om.clashes("shop_x", Type::Gauge));
    assert!(!om.clashes("shop", Type::Info));
    assert!(om.clashes("shop_y", Type::Summary));
}

#[test]
fn candidates_refuse_clashes_with_themselves() {
    let mut registry = Registry::default();
    registry.register("dup", "One", Counter::<u64>::default());
    registry.register("dup", "Two", Gauge::<i64>::default());
    assert_eq!(
        Candidate::new(registry).unwrap_err(),
        RegisterError::Conflict("dup".into())
    );
    let mut registry = Registry::default();
    registry.register("bad name", "Bad", Counter::<u64>::default());
    assert_eq!(
        Candidate::new(registry).unwrap_err(),
        RegisterError::InvalidName("bad name".into())
    );
}
