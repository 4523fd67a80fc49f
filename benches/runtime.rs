//! What the tokio runtime families add to a scrape, on an 8-worker
//! runtime: a scrape of a telemetry without them, and of one with them, in
//! the same run. First, a report that they add nothing to a request: the
//! RED layer's request with and without them registered, interleaved.
//!
//! Run: `cargo bench --bench runtime --features runtime,http` (`-- nomatch`:
//! the report alone).

mod harness;
use std::hint::black_box;

use axum::Router;
use criterion::Criterion;
use plimsoll::Format;

/// The request path with and without the runtime families, interleaved.
fn request_report() {
    const PER_ROUND: u64 = 2_000;
    let rt = harness::runtime();
    let (plain, with) = (harness::telemetry(), harness::telemetry());
    plimsoll::runtime::register(&with, rt.handle()).unwrap();
    let (plain, with) = (harness::orders_app(&plain), harness::orders_app(&with));
    let round = |app: &Router| {
        harness::run_orders(&rt, app, PER_ROUND).as_nanos() as f64 / PER_ROUND as f64
    };
    harness::interleaved(
        "requests through the RED layer, 2,000 per round",
        41,
        &mut [
            ("red", Box::new(|| round(&plain))),
            ("red+runtime", Box::new(|| round(&with))),
        ],
    );
}

fn scrape(c: &mut Criterion) {
    request_report();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .build()
        .unwrap();
    let bare = harness::telemetry();
    let with = harness::telemetry();
    plimsoll::runtime::register(&with, rt.handle()).unwrap();
    let mut group = c.benchmark_group("scrape_8_workers");
    group.bench_function("without", |b| {
        b.iter(|| black_box(bare.encode(Format::Prometheus)))
    });
    group.bench_function("with_runtime", |b| {
        b.iter(|| black_box(with.encode(Format::Prometheus)))
    });
    group.finish();
}

harness::bench_main!(3, scrape);
