//! The tokio runtime families through `promtool check metrics` and the
//! reference OpenMetrics parser (their values: `crates/plimsoll-runtime/tests`).
#![cfg(feature = "runtime")]

mod support;

use plimsoll::{Format, Telemetry};

#[test]
fn runtime_families_pass_both_validators() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    plimsoll::runtime::register(&t, rt.handle()).unwrap();
    rt.block_on(rt.spawn(async {})).unwrap();
    let text = t.encode(Format::Prometheus);
    assert!(
        text.contains("# TYPE tokio_worker_busy_seconds_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("tokio_workers{tenant_id=\"__system__\"} 2\n"),
        "{text}"
    );
    if support::have_promtool() {
        support::promtool_check(&text).unwrap();
    }
    if support::have_openmetrics_parser() {
        let samples = support::openmetrics_check(&t.encode(Format::OpenMetrics)).unwrap();
        // 3 runtime values, and busy time and parks of each of 2 workers.
        assert_eq!(samples, 3 + 2 * 2);
    }
}
