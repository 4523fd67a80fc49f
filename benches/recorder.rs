//! The `metrics` facade's warm path through plimsoll's recorder, beside a
//! warm plimsoll counter increment and metrics-exporter-prometheus's
//! recorder for the same key, in the same run: rounds of 100,000
//! increments interleaved (the report first), then criterion's.
//!
//! Run: `cargo bench --bench recorder --features recorder` (`-- nomatch`:
//! the report alone).

mod harness;
use std::hint::black_box;

use criterion::Criterion;
use plimsoll::recorder::Recorder;
use plimsoll::{LabelSet, Tenant, impl_label_set};

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Path {
    path: &'static str,
}
impl_label_set!(Path { path });

const PER_ROUND: usize = 100_000;

/// `f` run `PER_ROUND` times, in ns per run.
fn timed(mut f: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..PER_ROUND {
        f();
    }
    start.elapsed().as_nanos() as f64 / PER_ROUND as f64
}

fn facade_increment() {
    metrics::counter!("requests", "path" => "/orders").increment(black_box(1));
}

fn warm_paths(c: &mut Criterion) {
    let telemetry = harness::telemetry();
    let counter = telemetry
        .counter::<Path>("own_requests", "Requests.")
        .unwrap();
    let labels = Path { path: "/orders" };
    let ours = Recorder::builder(&telemetry).build().unwrap();
    let theirs = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let system = Tenant::system();
    let plimsoll_inc = || counter.inc(&system, black_box(&labels));
    assert!(<Path as LabelSet>::NAMES == ["path"]);

    let added = harness::interleaved(
        "warm increment, 100,000 per round",
        31,
        &mut [
            ("plimsoll", Box::new(|| timed(plimsoll_inc))),
            (
                "recorder",
                Box::new(|| metrics::with_local_recorder(&ours, || timed(facade_increment))),
            ),
            (
                "exporter",
                Box::new(|| metrics::with_local_recorder(&theirs, || timed(facade_increment))),
            ),
        ],
    );
    let _ = added;

    let mut group = c.benchmark_group("warm_increment");
    group.bench_function("plimsoll_counter", |b| b.iter(plimsoll_inc));
    group.bench_function("recorder", |b| {
        metrics::with_local_recorder(&ours, || b.iter(facade_increment))
    });
    group.bench_function("metrics_exporter_prometheus", |b| {
        metrics::with_local_recorder(&theirs, || b.iter(facade_increment))
    });
    group.finish();
}

harness::bench_main!(3, warm_paths);
