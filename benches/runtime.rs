//! What the tokio runtime families add to a scrape, on an 8-worker
//! runtime: a scrape of a telemetry without them, and of one with them, in
//! the same run.
//!
//! Run: `cargo bench --bench runtime --features runtime`.

mod harness;
use std::hint::black_box;

use criterion::Criterion;
use plimsoll::Format;

fn scrape(c: &mut Criterion) {
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
