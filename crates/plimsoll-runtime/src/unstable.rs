//! What tokio offers only to `--cfg tokio_unstable` builds.

use std::sync::Arc;
use std::time::Duration;

use plimsoll_core::family::FamilyDecl;
use plimsoll_core::{HistogramSnapshot, RegisterError, Telemetry, Tenant};
use tokio::runtime::Handle;

use crate::families::{self, WorkerLabels};
use crate::{Metrics, declare};

pub(crate) fn register(
    telemetry: &Telemetry,
    handle: &Handle,
    workers: &Arc<[WorkerLabels]>,
) -> Result<(), RegisterError> {
    declare(
        telemetry,
        handle,
        workers,
        &[
            (&families::BLOCKING_THREADS, |m| {
                m.num_blocking_threads() as f64
            }),
            (&families::IDLE_BLOCKING_THREADS, |m| {
                m.num_idle_blocking_threads() as f64
            }),
            (&families::BLOCKING_QUEUE_DEPTH, |m| {
                m.blocking_queue_depth() as f64
            }),
            (&families::BUDGET_FORCED_YIELDS, |m| {
                m.budget_forced_yield_count() as f64
            }),
            (&families::SPAWNED_TASKS, |m| m.spawned_tasks_count() as f64),
        ],
        &[
            (&families::WORKER_POLLS, |m, w| {
                m.worker_poll_count(w) as f64
            }),
            (&families::WORKER_STEALS, |m, w| {
                m.worker_steal_count(w) as f64
            }),
            (&families::WORKER_LOCAL_QUEUE_DEPTH, |m, w| {
                m.worker_local_queue_depth(w) as f64
            }),
        ],
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
    // The family's buckets are the runtime's, known only now: leaked once
    // per telemetry that registers the runtime (a few dozen floats).
    let bounds: &'static [f64] = Vec::leak(bounds);
    let family = family.with_buckets(bounds);
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
        if let Some(snapshot) = HistogramSnapshot::from_counts(bounds, counts, sum) {
            let _ = out.set_histogram(&Tenant::system(), &(), &snapshot);
        }
    })
}

/// A histogram kept by tokio in its own buckets, as upper bounds in
/// seconds (the last bucket is open: `+Inf`) and the midpoint of each
/// bucket (to estimate the sum; the open bucket counts at its start).
fn tokio_buckets(ranges: impl Iterator<Item = std::ops::Range<Duration>>) -> (Vec<f64>, Vec<f64>) {
    let ranges: Vec<_> = ranges.collect();
    let last = ranges.len().saturating_sub(1);
    let bounds = ranges[..last].iter().map(|r| r.end.as_secs_f64()).collect();
    let mids = ranges
        .iter()
        .enumerate()
        .map(|(i, r)| match i == last {
            true => r.start.as_secs_f64(),
            false => (r.start.as_secs_f64() + r.end.as_secs_f64()) / 2.0,
        })
        .collect();
    (bounds, mids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokio_buckets_become_upper_bounds_and_midpoints() {
        let ms = Duration::from_millis;
        let (bounds, mids) =
            tokio_buckets([ms(0)..ms(1), ms(1)..ms(2), ms(2)..Duration::MAX].into_iter());
        assert_eq!(bounds, [0.001, 0.002]);
        assert_eq!(mids, [0.0005, 0.0015, 0.002]);
    }
}
