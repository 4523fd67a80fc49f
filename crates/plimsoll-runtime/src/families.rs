//! Every family of the tokio runtime metrics, declared once.

use std::sync::Arc;

use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::impl_label_set;

/// Default bound on the `worker` label: more worker threads than any
/// runtime is built with.
pub const DEFAULT_MAX_WORKERS: usize = 1024;

const WORKER: LabelDecl = LabelDecl::open("worker", DEFAULT_MAX_WORKERS);

/// `tokio_workers`: the runtime's worker threads.
pub const WORKERS: FamilyDecl = FamilyDecl::gauge(
    "tokio_workers",
    "Worker threads of the tokio runtime (1 for a current-thread runtime).",
);

/// `tokio_alive_tasks`: tasks spawned and not yet finished.
pub const ALIVE_TASKS: FamilyDecl = FamilyDecl::gauge(
    "tokio_alive_tasks",
    "Tasks spawned on the tokio runtime and not yet finished.",
);

/// `tokio_global_queue_depth`: tasks waiting in the shared queue.
pub const GLOBAL_QUEUE_DEPTH: FamilyDecl = FamilyDecl::gauge(
    "tokio_global_queue_depth",
    "Tasks waiting in the tokio runtime's global (injection) queue.",
);

/// `tokio_worker_busy_seconds_total{worker}`: time each worker spent
/// running tasks.
pub const WORKER_BUSY: FamilyDecl = FamilyDecl::counter(
    "tokio_worker_busy_seconds_total",
    "Time each tokio worker thread spent running tasks, in seconds.",
)
.with_unit("seconds")
.with_labels(&[WORKER]);

/// `tokio_worker_parks_total{worker}`: times each worker parked (ran out
/// of work and went to sleep).
pub const WORKER_PARKS: FamilyDecl = FamilyDecl::counter(
    "tokio_worker_parks_total",
    "Times each tokio worker thread parked (found no work and slept).",
)
.with_labels(&[WORKER]);

/// `tokio_blocking_threads` (`tokio_unstable`): threads of the blocking pool.
pub const BLOCKING_THREADS: FamilyDecl = FamilyDecl::gauge(
    "tokio_blocking_threads",
    "Threads of the tokio runtime's blocking pool (tokio_unstable builds).",
);

/// `tokio_idle_blocking_threads` (`tokio_unstable`): blocking threads idle.
pub const IDLE_BLOCKING_THREADS: FamilyDecl = FamilyDecl::gauge(
    "tokio_idle_blocking_threads",
    "Threads of the tokio blocking pool waiting for work (tokio_unstable builds).",
);

/// `tokio_blocking_queue_depth` (`tokio_unstable`): blocking work waiting
/// for a thread.
pub const BLOCKING_QUEUE_DEPTH: FamilyDecl = FamilyDecl::gauge(
    "tokio_blocking_queue_depth",
    "spawn_blocking work waiting for a blocking thread (tokio_unstable builds).",
);

/// `tokio_budget_forced_yields_total` (`tokio_unstable`): tasks made to
/// yield because they used up their budget.
pub const BUDGET_FORCED_YIELDS: FamilyDecl = FamilyDecl::counter(
    "tokio_budget_forced_yields_total",
    "Times a task was made to yield after using up its cooperative budget (tokio_unstable builds).",
);

/// `tokio_spawned_tasks_total` (`tokio_unstable`): tasks ever spawned.
pub const SPAWNED_TASKS: FamilyDecl = FamilyDecl::counter(
    "tokio_spawned_tasks_total",
    "Tasks spawned on the tokio runtime (tokio_unstable builds).",
);

/// `tokio_worker_polls_total{worker}` (`tokio_unstable`).
pub const WORKER_POLLS: FamilyDecl = FamilyDecl::counter(
    "tokio_worker_polls_total",
    "Task polls by each tokio worker thread (tokio_unstable builds).",
)
.with_labels(&[WORKER]);

/// `tokio_worker_steals_total{worker}` (`tokio_unstable`).
pub const WORKER_STEALS: FamilyDecl = FamilyDecl::counter(
    "tokio_worker_steals_total",
    "Tasks each tokio worker thread stole from another's queue (tokio_unstable builds).",
)
.with_labels(&[WORKER]);

/// `tokio_worker_local_queue_depth{worker}` (`tokio_unstable`).
pub const WORKER_LOCAL_QUEUE_DEPTH: FamilyDecl = FamilyDecl::gauge(
    "tokio_worker_local_queue_depth",
    "Tasks waiting in each tokio worker thread's own queue (tokio_unstable builds).",
)
.with_labels(&[WORKER]);

/// `tokio_poll_time_seconds` (`tokio_unstable`, when the runtime enables
/// its poll-time histogram): how long task polls took, every worker's.
pub const POLL_TIME: FamilyDecl = FamilyDecl::histogram(
    "tokio_poll_time_seconds",
    "How long task polls took, in the runtime's own buckets; the sum is estimated from bucket midpoints (tokio_unstable builds with the histogram enabled).",
)
.with_unit("seconds");

/// `tokio_schedule_delay_seconds` (`tokio_unstable`, when the runtime
/// enables its schedule-latency histogram): how long woken tasks waited to
/// be polled.
pub const SCHEDULE_DELAY: FamilyDecl = FamilyDecl::histogram(
    "tokio_schedule_delay_seconds",
    "How long tasks waited between being woken and being polled, in the runtime's own buckets; the sum is estimated from bucket midpoints (tokio_unstable builds with the histogram enabled).",
)
.with_unit("seconds");

/// Default bound on task monitor names.
pub const DEFAULT_MAX_TASKS: usize = 100;

const TASK: LabelDecl = LabelDecl::open("task", DEFAULT_MAX_TASKS);
const TASK_VIA: LabelDecl = LabelDecl::bounded_via("task", "tokio_task_polls_total", "task");

/// `tokio_task_polls_total{task}`: polls of the futures a task monitor
/// instruments.
pub const TASK_POLLS: FamilyDecl = FamilyDecl::counter(
    "tokio_task_polls_total",
    "Polls of the futures instrumented by each task monitor.",
)
.with_labels(&[TASK]);

/// `tokio_task_poll_seconds_total{task}`: time spent in those polls.
pub const TASK_POLL_SECONDS: FamilyDecl = FamilyDecl::counter(
    "tokio_task_poll_seconds_total",
    "Time spent polling the futures instrumented by each task monitor, in seconds.",
)
.with_unit("seconds")
.with_labels(&[TASK_VIA]);

/// `tokio_task_schedules_total{task}`: polls that followed a wake of the
/// future.
pub const TASK_SCHEDULES: FamilyDecl = FamilyDecl::counter(
    "tokio_task_schedules_total",
    "Polls of the futures instrumented by each task monitor that followed a wake.",
)
.with_labels(&[TASK_VIA]);

/// `tokio_task_schedule_delay_seconds_total{task}`: time from the first
/// wake after a poll (or that poll's end, if it came during it) to the
/// next poll.
pub const TASK_SCHEDULE_DELAY: FamilyDecl = FamilyDecl::counter(
    "tokio_task_schedule_delay_seconds_total",
    "Time the futures instrumented by each task monitor waited to be polled after a wake (from the first wake after a poll, or that poll's end if the wake came during it, to the next poll), in seconds.",
)
.with_unit("seconds")
.with_labels(&[TASK_VIA]);

/// `tokio_task_alive{task}`: instrumented futures not yet finished.
pub const TASK_ALIVE: FamilyDecl = FamilyDecl::gauge(
    "tokio_task_alive",
    "Futures instrumented by each task monitor, made and not yet finished or dropped.",
)
.with_labels(&[TASK_VIA]);

/// Every family of this crate, for the catalogue (`tokio_blocking_threads`
/// to `tokio_schedule_delay_seconds` need `--cfg tokio_unstable`).
pub const ALL: &[FamilyDecl] = &[
    WORKERS,
    ALIVE_TASKS,
    GLOBAL_QUEUE_DEPTH,
    WORKER_BUSY,
    WORKER_PARKS,
    BLOCKING_THREADS,
    IDLE_BLOCKING_THREADS,
    BLOCKING_QUEUE_DEPTH,
    BUDGET_FORCED_YIELDS,
    SPAWNED_TASKS,
    WORKER_POLLS,
    WORKER_STEALS,
    WORKER_LOCAL_QUEUE_DEPTH,
    POLL_TIME,
    SCHEDULE_DELAY,
    TASK_POLLS,
    TASK_POLL_SECONDS,
    TASK_SCHEDULES,
    TASK_SCHEDULE_DELAY,
    TASK_ALIVE,
];

/// Labels of the task monitor families.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct TaskLabels {
    /// The name given to the monitor.
    pub task: Arc<str>,
}
impl_label_set!(TaskLabels { task });

/// Labels of the per-worker families.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct WorkerLabels {
    /// The worker's index, `0` to `tokio_workers - 1`.
    pub worker: Arc<str>,
}
impl_label_set!(WorkerLabels { worker });
