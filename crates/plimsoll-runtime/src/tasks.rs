//! Task monitors: polls and time in polls of named long-running tasks (a
//! queue consumer, a cache refresher), read at scrape time.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use plimsoll_core::clock::Stamp;
use plimsoll_core::{LabelGuard, RegisterError, Telemetry, Tenant};

use crate::families::{self, TaskLabels};

/// What a task name's monitored futures did.
#[derive(Debug, Default)]
struct Counts {
    polls: AtomicU64,
    poll_nanos: AtomicU64,
    alive: AtomicU64,
}

type Watched = Mutex<HashMap<Arc<str>, Arc<Counts>>>;

/// The task monitors of one [`Telemetry`]: [`monitor`](Self::monitor)
/// names one, and its futures are counted under that name. Cheap to clone.
#[derive(Clone)]
pub struct TaskMonitors {
    names: LabelGuard,
    watched: Arc<Watched>,
}

impl fmt::Debug for TaskMonitors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskMonitors").finish_non_exhaustive()
    }
}

impl TaskMonitors {
    /// Registers the task families on `telemetry` (once per telemetry).
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        let watched: Arc<Watched> = Arc::default();
        let read = |value: fn(&Counts) -> f64| {
            let watched = Arc::downgrade(&watched);
            move |out: &mut plimsoll_core::ScrapeWriter<'_, TaskLabels>| {
                let Some(watched) = watched.upgrade() else {
                    return;
                };
                let watched = watched.lock().unwrap_or_else(|e| e.into_inner());
                for (task, counts) in watched.iter() {
                    let labels = TaskLabels { task: task.clone() };
                    let _ = out.set(&Tenant::system(), &labels, value(counts));
                }
            }
        };
        telemetry.declare_scraped(
            &families::TASK_POLLS,
            read(|c| c.polls.load(Ordering::Relaxed) as f64),
        )?;
        telemetry.declare_scraped(
            &families::TASK_POLL_SECONDS,
            read(|c| c.poll_nanos.load(Ordering::Relaxed) as f64 * 1e-9),
        )?;
        telemetry.declare_scraped(
            &families::TASK_ALIVE,
            read(|c| c.alive.load(Ordering::Relaxed) as f64),
        )?;
        Ok(Self {
            names: telemetry.label_guard(&families::TASK_POLLS, "task")?,
            watched,
        })
    }

    /// The monitor of the tasks named `name` (bounded: past the bound,
    /// names are counted together as `__other__`).
    pub fn monitor(&self, name: &str) -> TaskMonitor {
        let name = self.names.admit(name);
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let counts = watched.entry(name).or_default().clone();
        TaskMonitor { counts }
    }
}

/// Counts the polls of the futures it [`instrument`](Self::instrument)s.
#[derive(Clone, Debug)]
pub struct TaskMonitor {
    counts: Arc<Counts>,
}

impl TaskMonitor {
    /// `future`, counted: each poll, the time it took, and whether the
    /// future is alive (made and not yet finished or dropped).
    pub fn instrument<F: Future>(&self, future: F) -> Monitored<F> {
        self.counts.alive.fetch_add(1, Ordering::Relaxed);
        Monitored {
            future,
            alive: Alive(Some(self.counts.clone())),
        }
    }
}

/// Counts its future out of the alive ones when it finishes or is dropped.
#[derive(Debug)]
struct Alive(Option<Arc<Counts>>);

impl Alive {
    fn end(&mut self) {
        if let Some(counts) = self.0.take() {
            counts.alive.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.end();
    }
}

pin_project! {
    /// A future counted by a [`TaskMonitor`].
    #[derive(Debug)]
    pub struct Monitored<F> {
        #[pin]
        future: F,
        alive: Alive,
    }
}

impl<F: Future> Future for Monitored<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let start = Stamp::now();
        let poll = this.future.poll(cx);
        let end = Stamp::now();
        if let Some(counts) = &this.alive.0 {
            counts.polls.fetch_add(1, Ordering::Relaxed);
            let nanos = end.as_nanos().saturating_sub(start.as_nanos());
            counts.poll_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        if poll.is_ready() {
            this.alive.end();
        }
        poll
    }
}
