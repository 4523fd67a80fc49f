//! What tokio offers only to `--cfg tokio_unstable` builds.

use std::sync::Arc;

use plimsoll_core::family::FamilyDecl;
use plimsoll_core::{HistogramSnapshot, RegisterError, Telemetry, Tenant};
use tokio::runtime::Handle;

use crate::families::{self, WorkerLabels};
use crate::{Metrics, per_worker, single, tokio_buckets};

pub(crate) fn register(
    telemetry: &Telemetry,
    handle: &Handle,
    workers: &Arc<[WorkerLabels]>,
) -> Result<(), RegisterError> {
    single(telemetry, &families::BLOCKING_THREADS, handle, |m| {
        m.num_blocking_threads() as f64
    })?;
    single(telemetry, &families::IDLE_BLOCKING_THREADS, handle, |m| {
        m.num_idle_blocking_threads() as f64
    })?;
    single(telemetry, &families::BLOCKING_QUEUE_DEPTH, handle, |m| {
        m.blocking_queue_depth() as f64
    })?;
    single(telemetry, &families::BUDGET_FORCED_YIELDS, handle, |m| {
        m.budget_forced_yield_count() as f64
    })?;
    single(telemetry, &families::SPAWNED_TASKS, handle, |m| {
        m.spawned_tasks_count() as f64
    })?;
    per_worker(
        telemetry,
        &families::WORKER_POLLS,
        handle,
        workers,
        |m, w| m.worker_poll_count(w) as f64,
    )?;
    per_worker(
        telemetry,
        &families::WORKER_STEALS,
        handle,
        workers,
        |m, w| m.worker_steal_count(w) as f64,
    )?;
    per_worker(
        telemetry,
        &families::WORKER_LOCAL_QUEUE_DEPTH,
        handle,
        workers,
        |m, w| m.worker_local_queue_depth(w) as f64,
    )?;
    let metrics = handle.metrics();
    if metrics.poll_time_histogram_enabled() {
        let buckets = metrics.poll_time_histogram_num_buckets();
        histogram(
            telemetry,
            families::POLL_TIME,
            handle,
            (0..buckets).map(|b| metrics.poll_time_histogram_bucket_range(b)),
            |m, w, b| m.poll_time_histogram_bucket_count(w, b),
        )?;
    }
    #[cfg(feature = "schedule-latency")]
    if metrics.schedule_latency_histogram_enabled() {
        let buckets = metrics.schedule_latency_histogram_num_buckets();
        histogram(
            telemetry,
            families::SCHEDULE_DELAY,
            handle,
            (0..buckets).map(|b| metrics.schedule_latency_histogram_bucket_range(b)),
            |m, w, b| m.schedule_latency_histogram_bucket_count(w, b),
        )?;
    }
    Ok(())
}

/// A histogram in tokio's buckets, every worker's counts added up.
fn histogram(
    telemetry: &Telemetry,
    family: FamilyDecl,
    handle: &Handle,
    ranges: impl Iterator<Item = std::ops::Range<std::time::Duration>>,
    count: fn(&Metrics, usize, usize) -> u64,
) -> Result<(), RegisterError> {
    let (bounds, mids) = tokio_buckets(ranges);
    // The family's buckets are the runtime's, known only now; declared once
    // per process, so the leak is bounded.
    let family = family.with_buckets(Vec::leak(bounds.clone()));
    let handle = handle.clone();
    telemetry.declare_scraped::<()>(&family, move |out| {
        let metrics = handle.metrics();
        let mut counts = vec![0u64; mids.len()];
        for worker in 0..metrics.num_workers() {
            for (bucket, total) in counts.iter_mut().enumerate() {
                *total += count(&metrics, worker, bucket);
            }
        }
        let sum = counts.iter().zip(&mids).map(|(c, m)| *c as f64 * m).sum();
        if let Some(snapshot) = HistogramSnapshot::from_counts(&bounds, counts, sum) {
            let _ = out.set_histogram(&Tenant::system(), &(), &snapshot);
        }
    })
}
