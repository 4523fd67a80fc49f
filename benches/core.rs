//! Core hot paths against prometheus-client in the same run.
//!
//! - `record_warm/*`: one counter increment and one histogram observation on
//!   warm series (10,000 series, 4 labels including the tenant), single
//!   thread and two threads on the same families; raw atomics as the floor.
//! - `overflow/*`: the same recording once the series bound is reached (new
//!   label values every call), and with a tenant past the tenant bound.
//! - `encode_100k/*`: encoding 100,000 counter series.
//! - `read_10k/*`: the read API's selector totals over 10,000 series.
//!
//! Before criterion runs, bytes per warm counter series are printed for both
//! libraries (exact, from a counting allocator).
//!
//! Run: `cargo bench --bench core`.

use std::alloc::System;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use plimsoll::{Counter, Format, Histogram, MetricOpts, Telemetry, Tenant, impl_label_set};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use prometheus_client::registry::Registry;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Warm series in the recording benches; `PLIMSOLL_BENCH_SERIES` overrides
/// it for experiments (the targets are stated for 10,000).
fn series() -> usize {
    std::env::var("PLIMSOLL_BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const STATUSES: [u16; 5] = [200, 201, 400, 404, 500];

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Labels {
    method: &'static str,
    route: String,
    status: u16,
}
impl_label_set!(Labels {
    method,
    route,
    status
});

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PcLabels {
    tenant_id: String,
    method: &'static str,
    route: String,
    status: u16,
}

/// Key `i` of a family of `n`: 100 tenants × methods × statuses × routes.
fn key(i: usize) -> (String, Labels) {
    let tenant = format!("tenant-{:03}", i % 100);
    let rest = i / 100;
    let labels = Labels {
        method: METHODS[rest % 4],
        status: STATUSES[(rest / 4) % 5],
        route: format!("/api/v1/resource/{}", rest / 20),
    };
    (tenant, labels)
}

fn pc_key(i: usize) -> PcLabels {
    let (tenant, l) = key(i);
    PcLabels {
        tenant_id: tenant,
        method: l.method,
        route: l.route,
        status: l.status,
    }
}

struct Ours {
    telemetry: Telemetry,
    counter: Counter<Labels>,
    histogram: Histogram<Labels>,
    keys: Vec<(Tenant, Labels)>,
}

impl Ours {
    /// The measured work: one counter increment and one observation.
    #[inline]
    fn record(&self, tenant: &Tenant, labels: &Labels) {
        self.counter.inc(tenant, labels);
        self.histogram.observe(tenant, labels, black_box(0.042));
    }
}

impl Theirs {
    /// The same work with prometheus-client.
    #[inline]
    fn record(&self, key: &PcLabels) {
        self.counter.get_or_create(key).inc();
        self.histogram.get_or_create(key).observe(black_box(0.042));
    }
}

fn ours(series: usize, max_series: usize) -> Ours {
    let telemetry = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(100)
        .with_max_series(max_series)
        .build()
        .unwrap();
    let counter = telemetry
        .counter::<Labels>("http_requests", "Requests.")
        .unwrap();
    let histogram = telemetry
        .histogram::<Labels>("http_request_duration_seconds", "Latency.")
        .unwrap();
    let keys: Vec<(Tenant, Labels)> = (0..series)
        .map(|i| {
            let (tenant, labels) = key(i);
            (telemetry.tenant(&tenant), labels)
        })
        .collect();
    for (tenant, labels) in &keys {
        counter.inc(tenant, labels);
        histogram.observe(tenant, labels, 0.01);
    }
    Ours {
        telemetry,
        counter,
        histogram,
        keys,
    }
}

struct Theirs {
    counter: Family<PcLabels, PcCounter>,
    histogram: Family<PcLabels, PcHistogram>,
    keys: Vec<PcLabels>,
}

fn theirs(series: usize) -> Theirs {
    let counter = Family::<PcLabels, PcCounter>::default();
    let histogram = Family::<PcLabels, PcHistogram>::new_with_constructor(|| {
        PcHistogram::new(plimsoll::DEFAULT_DURATION_BUCKETS.iter().copied())
    });
    let keys: Vec<PcLabels> = (0..series).map(pc_key).collect();
    for k in &keys {
        counter.get_or_create(k).inc();
        histogram.get_or_create(k).observe(0.01);
    }
    Theirs {
        counter,
        histogram,
        keys,
    }
}

/// Visits keys in a scattered order so neither side gets prefetch help.
#[inline]
fn next(i: &mut usize, n: usize) -> usize {
    *i = (*i + 7919) % n;
    *i
}

fn record_warm(c: &mut Criterion) {
    let n = series();
    let ours = ours(n, n);
    let theirs = theirs(n);
    let atomics: Vec<[AtomicU64; 2]> = (0..n)
        .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
        .collect();

    let mut group = c.benchmark_group("record_warm/1thread");
    group.bench_function("raw_atomics", |b| {
        let mut i = 0;
        b.iter(|| {
            let a = &atomics[next(&mut i, n)];
            a[0].fetch_add(1, Ordering::Relaxed);
            a[1].fetch_add(black_box(10), Ordering::Relaxed);
        })
    });
    group.bench_function("plimsoll", |b| {
        let mut i = 0;
        b.iter(|| {
            let (tenant, labels) = &ours.keys[next(&mut i, n)];
            ours.record(tenant, labels);
        })
    });
    group.bench_function("prometheus_client", |b| {
        let mut i = 0;
        b.iter(|| {
            let k = &theirs.keys[next(&mut i, n)];
            theirs.record(k);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("record_warm/2threads");
    group.bench_function("plimsoll", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |start, iters| {
                let mut i = start;
                for _ in 0..iters {
                    let (tenant, labels) = &ours.keys[next(&mut i, n)];
                    ours.record(tenant, labels);
                }
            })
        })
    });
    group.bench_function("prometheus_client", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |start, iters| {
                let mut i = start;
                for _ in 0..iters {
                    let k = &theirs.keys[next(&mut i, n)];
                    theirs.record(k);
                }
            })
        })
    });
    group.finish();
}

/// Runs `work(start, iters)` on two threads at once; returns the wall time.
fn two_threads(iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (barrier, work) = (&barrier, &work);
            s.spawn(move || {
                barrier.wait();
                work(t * 5003, iters);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope joins both threads before returning.
        start
    })
    .elapsed()
}

fn overflow(c: &mut Criterion) {
    let n = series();
    // The bound is reached: every further key is new and overflows.
    let full = ours(n, n);
    let fresh: Vec<(Tenant, Labels)> = (0..n)
        .map(|i| {
            let (tenant, mut labels) = key(i);
            labels.route = format!("/never/seen/{i}");
            (full.telemetry.tenant(&tenant), labels)
        })
        .collect();
    // A tenant past the tenant bound: resolves to `__other__`.
    let crowded = full.telemetry.tenant("tenant-past-the-bound");
    assert!(crowded.is_overflow());
    let mut group = c.benchmark_group("overflow");
    group.bench_function("warm_path", |b| {
        let mut i = 0;
        b.iter(|| {
            let (tenant, labels) = &full.keys[next(&mut i, n)];
            full.record(tenant, labels);
        })
    });
    group.bench_function("series_bound_reached", |b| {
        let mut i = 0;
        b.iter(|| {
            let (tenant, labels) = &fresh[next(&mut i, n)];
            full.record(tenant, labels);
        })
    });
    group.bench_function("tenant_bound_reached", |b| {
        let mut i = 0;
        b.iter(|| {
            let (_, labels) = &full.keys[next(&mut i, n)];
            let tenant = full.telemetry.tenant("tenant-past-the-bound");
            full.record(&tenant, labels);
        })
    });
    group.finish();
}

fn encode_100k(c: &mut Criterion) {
    const N: usize = 100_000;
    let telemetry = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(100)
        .build()
        .unwrap();
    let counter = telemetry
        .counter_with::<Labels>(MetricOpts::new("http_requests", "Requests.").with_max_series(N))
        .unwrap();
    let mut registry = Registry::default();
    let family = Family::<PcLabels, PcCounter>::default();
    registry.register("http_requests", "Requests.", family.clone());
    for i in 0..N {
        let (tenant, labels) = key(i);
        counter.inc_by(&telemetry.tenant(&tenant), &labels, i as u64);
        family.get_or_create(&pc_key(i)).inc_by(i as u64);
    }
    assert_eq!(counter.series_count(), N);

    let mut group = c.benchmark_group("encode_100k");
    group.sample_size(20);
    group.bench_function("prometheus_client_openmetrics", |b| {
        b.iter(|| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        })
    });
    group.bench_function("plimsoll_openmetrics", |b| {
        b.iter(|| telemetry.encode(Format::OpenMetrics))
    });
    group.bench_function("plimsoll_prometheus", |b| {
        b.iter(|| telemetry.encode(Format::Prometheus))
    });
    group.finish();
}

/// The read API over 10,000 warm series: a selector total of the counter
/// and of the histogram (what an in-process SLO calculator or health check
/// does every few seconds), against encoding the same families.
fn read_10k(c: &mut Criterion) {
    let ours = ours(10_000, 10_000);
    for (tenant, labels) in &ours.keys {
        ours.record(tenant, labels);
    }
    let mut group = c.benchmark_group("read_10k");
    group.bench_function("counter_total_5xx", |b| {
        b.iter(|| {
            ours.counter
                .total(|s| s.labels().is_some_and(|l| l.status >= 500))
        })
    });
    group.bench_function("histogram_total_one_tenant", |b| {
        b.iter(|| ours.histogram.total(|s| s.tenant() == "tenant-007").count())
    });
    group.bench_function("encode_both_families", |b| {
        b.iter(|| ours.telemetry.encode(Format::Prometheus))
    });
    group.finish();
}

/// Exact bytes per warm counter series, both libraries, same keys.
fn memory_report() {
    const N: usize = 100_000;
    let region = Region::new(GLOBAL);
    let telemetry = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(100)
        .build()
        .unwrap();
    let counter = telemetry
        .counter_with::<Labels>(MetricOpts::new("c", "C.").with_max_series(N))
        .unwrap();
    let tenants: Vec<Tenant> = (0..100)
        .map(|t| telemetry.tenant(&format!("tenant-{t:03}")))
        .collect();
    let keys: Vec<Labels> = (0..N).map(|i| key(i).1).collect();
    let before = net(&region);
    for (i, labels) in keys.iter().enumerate() {
        counter.inc(&tenants[i % 100], labels);
    }
    let ours = net(&region) - before;

    let family = Family::<PcLabels, PcCounter>::default();
    let pc_keys: Vec<PcLabels> = (0..N).map(pc_key).collect();
    let before = net(&region);
    for k in &pc_keys {
        family.get_or_create(k).inc();
    }
    let theirs = net(&region) - before;
    println!(
        "memory per warm counter series ({N} series): plimsoll {:.1} B, prometheus-client {:.1} B, ratio {:.2}",
        ours as f64 / N as f64,
        theirs as f64 / N as f64,
        ours as f64 / theirs as f64
    );
    drop((counter, family, keys, pc_keys));
}

fn net(region: &Region<'_, System>) -> isize {
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = record_warm, overflow, encode_100k, read_10k
}

fn main() {
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
