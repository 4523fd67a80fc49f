//! Per-request cost of tracing on top of the RED layer, in process (router
//! `oneshot`), in one run:
//!
//! - `red`: the RED layer, no tracing pipeline (the baseline);
//! - `export_off`: the pipeline set up with no endpoint (logs on, at
//!   `info`): its hook is inert;
//! - `not_sampled`: exporting, with a sampler that keeps no trace (a
//!   decision and a trace id per request, no span);
//! - `sampled`: exporting every request's server span to a live collector
//!   (`rotel-agent` on loopback), over gRPC.
//!
//! Each request is a `GET /api/v1/orders/{id}` carrying a tenant header,
//! whose body is read to the end. Before criterion runs, an interleaved
//! report prints each variant's median cost added to `red`, round by round
//! (`-- nomatch` for the report only).
//!
//! Run: `cargo bench --bench otlp --features http,otlp` (with
//! `rotel-agent` on `PATH` for `sampled`: `scripts/install-services.sh`).

#[path = "../tests/support/mod.rs"]
mod support;

mod harness;

use axum::Router;
use criterion::Criterion;
use plimsoll::Telemetry;
use plimsoll::otlp::{Root, Sampler, Tracing, TracingGuard};

fn app(t: &Telemetry) -> Router {
    harness::orders_app(t)
}

fn telemetry(guard: Option<&TracingGuard>) -> Telemetry {
    let mut builder = Telemetry::builder().with_process_metrics(false);
    if let Some(guard) = guard {
        builder = builder.with_trace_context(guard.trace_context());
    }
    builder.build().unwrap()
}

/// The four variants: name, router, pipeline (kept alive) and its
/// subscriber.
type Variant = (
    &'static str,
    Router,
    Option<TracingGuard>,
    Option<tracing::Dispatch>,
);

fn variants(collector: &support::Collector) -> Vec<Variant> {
    let mut out: Vec<Variant> = vec![("red", app(&telemetry(None)), None, None)];
    let (off, dispatch) = Tracing::builder().logs(true).build().unwrap();
    let routed = app(&telemetry(Some(&off)));
    out.push(("export_off", routed, Some(off), Some(dispatch)));
    for (name, sampler) in SAMPLERS {
        let (guard, dispatch) = exporting(collector, sampler);
        let routed = app(&telemetry(Some(&guard)));
        out.push((name, routed, Some(guard), Some(dispatch)));
    }
    out
}

/// The two exporting variants.
const SAMPLERS: [(&str, Sampler); 2] = [
    ("not_sampled", Sampler::ParentBased(Root::AlwaysOff)),
    ("sampled", Sampler::AlwaysOn),
];

/// A pipeline exporting to `collector` over gRPC, logs off.
fn exporting(
    collector: &support::Collector,
    sampler: Sampler,
) -> (TracingGuard, tracing::Dispatch) {
    Tracing::builder()
        .endpoint(collector.grpc_endpoint())
        .sampler(sampler)
        .logs(false)
        .build()
        .unwrap()
}

/// Figures robust to a noisy machine: the variants run interleaved in
/// short rounds, each round compared with the `red` round beside it, and
/// the median of those differences reported. After each `sampled` round
/// the queue is flushed (untimed), so its export does not run during the
/// other variants' rounds.
fn interleaved_report(collector: &support::Collector) {
    const ROUNDS: usize = 41;
    const PER_ROUND: u64 = 2_000;
    let rt = harness::runtime();
    let variants = variants(collector);
    let mut rounds: Vec<harness::Round<'_>> = variants
        .iter()
        .map(|(name, app, guard, dispatch)| {
            let rt = &rt;
            let round = move || {
                let elapsed = match dispatch {
                    Some(d) => tracing::dispatcher::with_default(d, || {
                        harness::run_orders(rt, app, PER_ROUND)
                    }),
                    None => harness::run_orders(rt, app, PER_ROUND),
                };
                if let Some(guard) = guard {
                    guard.flush();
                }
                elapsed.as_nanos() as f64 / PER_ROUND as f64
            };
            (*name, Box::new(round) as Box<dyn FnMut() -> f64>)
        })
        .collect();
    harness::interleaved(
        &format!("requests, {PER_ROUND} per round"),
        ROUNDS,
        &mut rounds,
    );
}

fn bench(c: &mut Criterion) {
    let rt = harness::runtime();
    let mut group = c.benchmark_group("otlp");

    let t = telemetry(None);
    let red = app(&t);
    group.bench_function("red", |b| {
        b.iter_custom(|n| harness::run_orders(&rt, &red, n))
    });

    let (off, dispatch) = Tracing::builder().logs(true).build().unwrap();
    assert!(!off.is_exporting());
    let t = telemetry(Some(&off));
    let routed = app(&t);
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("export_off", |b| {
            b.iter_custom(|n| harness::run_orders(&rt, &routed, n))
        });
    });

    let Some(collector) = support::quiet_otlp_collector() else {
        eprintln!("rotel-agent is missing: not_sampled and sampled are not measured");
        return;
    };
    interleaved_report(&collector);
    for (name, sampler) in SAMPLERS {
        let (guard, dispatch) = exporting(&collector, sampler);
        let t = telemetry(Some(&guard));
        let routed = app(&t);
        tracing::dispatcher::with_default(&dispatch, || {
            group.bench_function(name, |b| {
                b.iter_custom(|n| harness::run_orders(&rt, &routed, n))
            });
        });
        guard.flush();
        let scrape = t.scrape();
        let exported = scrape
            .value(
                "plimsoll_spans_exported_total",
                &[("tenant_id", "__system__")],
            )
            .unwrap_or(0.0);
        let dropped: f64 = ["queue_full", "export_failed", "timeout"]
            .iter()
            .filter_map(|r| {
                scrape.value(
                    "plimsoll_spans_dropped_total",
                    &[("tenant_id", "__system__"), ("reason", r)],
                )
            })
            .sum();
        if exported + dropped > 0.0 {
            eprintln!("{name}: {exported} spans exported, {dropped} dropped");
        }
    }
    group.finish();
}

harness::bench_main!(5, bench);
