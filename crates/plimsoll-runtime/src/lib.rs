//! Tokio runtime metrics for plimsoll: workers, alive tasks, queue depths,
//! each worker's busy time and parks, read from the runtime at each scrape
//! (nothing on the request path).
//!
//! ```
//! use plimsoll_core::Telemetry;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(2)
//!     .build()?;
//! let telemetry = Telemetry::builder().build()?;
//! plimsoll_runtime::register(&telemetry, runtime.handle())?;
//!
//! let text = telemetry.encode(plimsoll_core::Format::Prometheus);
//! assert!(text.contains("tokio_workers{tenant_id=\"__system__\"} 2\n"));
//! assert!(text.contains("tokio_worker_busy_seconds_total{tenant_id=\"__system__\",worker=\"1\"}"));
//! # Ok(())
//! # }
//! ```
//!
//! # What is read
//!
//! | metric | type | labels (plus `tenant_id`, always `__system__`) |
//! |---|---|---|
//! | `tokio_workers` | gauge | — |
//! | `tokio_alive_tasks` | gauge | — |
//! | `tokio_global_queue_depth` | gauge | — |
//! | `tokio_worker_busy_seconds_total` | counter | worker |
//! | `tokio_worker_parks_total` | counter | worker |
//!
//! Built with `RUSTFLAGS="--cfg tokio_unstable"`, tokio offers more, and
//! they are read too: `tokio_blocking_threads`,
//! `tokio_idle_blocking_threads`, `tokio_blocking_queue_depth`,
//! `tokio_budget_forced_yields_total`, `tokio_spawned_tasks_total`,
//! `tokio_worker_polls_total{worker}`, `tokio_worker_steals_total{worker}`,
//! `tokio_worker_local_queue_depth{worker}`, and the histograms
//! `tokio_poll_time_seconds` (when the runtime was built with
//! `enable_metrics_poll_time_histogram()`) and
//! `tokio_schedule_delay_seconds` (with this crate's feature
//! `schedule-latency` and `enable_metrics_schedule_latency_histogram()`),
//! in the runtime's own buckets (tokio keeps no sum: `_sum` is estimated
//! from the buckets' midpoints).
//!
//! # Task monitors
//!
//! [`TaskMonitors`] counts the futures of named long-running tasks (a queue
//! consumer, a refresher): `tokio_task_polls_total{task}`,
//! `tokio_task_poll_seconds_total{task}` (a task whose polls take long
//! holds its worker), `tokio_task_schedules_total{task}` and
//! `tokio_task_schedule_delay_seconds_total{task}` (polls that followed a
//! wake, and the time from the wake to that poll: a task waiting for a
//! worker) and `tokio_task_alive{task}`, on any build.
//!
//! ```
//! # let telemetry = plimsoll_core::Telemetry::builder().build().unwrap();
//! let monitors = plimsoll_runtime::TaskMonitors::new(&telemetry)?;
//! let consumer = monitors.monitor("orders-consumer");
//! # let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! # rt.block_on(async {
//! tokio::spawn(consumer.instrument(async { /* consume */ })).await?;
//! # Ok::<_, tokio::task::JoinError>(()) })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! A scrape reads a few counters per worker: a few microseconds for an
//! 8-worker runtime (`benches/runtime.rs`, docs/benchmarks.md).

pub mod families;
mod tasks;

pub use tasks::{Monitored, TaskMonitor, TaskMonitors};

use std::sync::Arc;

use plimsoll_core::family::FamilyDecl;
use plimsoll_core::{RegisterError, Telemetry, Tenant};
use tokio::runtime::Handle;

use families::WorkerLabels;

/// Registers the runtime families on `telemetry`, read from the runtime
/// `handle` points at (for example `tokio::runtime::Handle::current()`
/// inside `#[tokio::main]`) at each scrape. Once per telemetry: a second
/// call is a [`RegisterError`].
pub fn register(telemetry: &Telemetry, handle: &Handle) -> Result<(), RegisterError> {
    let workers: Arc<[WorkerLabels]> = (0..handle.metrics().num_workers())
        .map(|i| WorkerLabels {
            worker: i.to_string().into(),
        })
        .collect();
    declare(
        telemetry,
        handle,
        &workers,
        &[
            (&families::WORKERS, |m| m.num_workers() as f64),
            (&families::ALIVE_TASKS, |m| m.num_alive_tasks() as f64),
            (&families::GLOBAL_QUEUE_DEPTH, |m| {
                m.global_queue_depth() as f64
            }),
        ],
        &[
            (&families::WORKER_BUSY, |m, w| {
                m.worker_total_busy_duration(w).as_secs_f64()
            }),
            (&families::WORKER_PARKS, |m, w| {
                m.worker_park_count(w) as f64
            }),
        ],
    )?;
    #[cfg(tokio_unstable)]
    unstable::register(telemetry, handle, &workers)?;
    Ok(())
}

type Metrics = tokio::runtime::RuntimeMetrics;

/// A family with one `__system__` series, and how to read it.
type Single = (&'static FamilyDecl, fn(&Metrics) -> f64);
/// A family with one series per worker, and how to read a worker's.
type PerWorker = (&'static FamilyDecl, fn(&Metrics, usize) -> f64);

/// Declares each of `singles` and `per_worker`, read at scrape time.
fn declare(
    telemetry: &Telemetry,
    handle: &Handle,
    workers: &Arc<[WorkerLabels]>,
    singles: &[Single],
    per_worker: &[PerWorker],
) -> Result<(), RegisterError> {
    for &(family, read) in singles {
        single(telemetry, family, handle, read)?;
    }
    for &(family, read) in per_worker {
        self::per_worker(telemetry, family, handle, workers, read)?;
    }
    Ok(())
}

/// A family with one `__system__` series, read by `read`.
fn single(
    telemetry: &Telemetry,
    family: &FamilyDecl,
    handle: &Handle,
    read: fn(&Metrics) -> f64,
) -> Result<(), RegisterError> {
    let handle = handle.clone();
    telemetry.declare_scraped::<()>(family, move |out| {
        let _ = out.set(&Tenant::system(), &(), read(&handle.metrics()));
    })
}

/// A family with one series per worker, read by `read`.
fn per_worker(
    telemetry: &Telemetry,
    family: &FamilyDecl,
    handle: &Handle,
    workers: &Arc<[WorkerLabels]>,
    read: fn(&Metrics, usize) -> f64,
) -> Result<(), RegisterError> {
    let (handle, workers) = (handle.clone(), workers.clone());
    telemetry.declare_scraped::<WorkerLabels>(family, move |out| {
        let metrics = handle.metrics();
        for (i, labels) in workers.iter().enumerate() {
            let _ = out.set(&Tenant::system(), labels, read(&metrics, i));
        }
    })
}

#[cfg(tokio_unstable)]
mod unstable;
