//! Task monitors: polls, time in polls and scheduling delay of named
//! long-running tasks (a queue consumer, a cache refresher), read at
//! scrape time.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;
use plimsoll_core::clock::Stamp;
use plimsoll_core::family::FamilyDecl;
use plimsoll_core::{LabelGuard, RegisterError, Telemetry, Tenant};

use crate::families::{self, TaskLabels};

/// What a task name's monitored futures did.
#[derive(Debug, Default)]
struct Counts {
    polls: AtomicU64,
    poll_nanos: AtomicU64,
    /// Polls that followed a wake, and the time from each wake to its poll.
    schedules: AtomicU64,
    schedule_nanos: AtomicU64,
    alive: AtomicU64,
}

type Watched = Mutex<HashMap<Arc<str>, Arc<Counts>>>;

/// Reads one family's value from a task name's counts.
type Read = fn(&Counts) -> f64;

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
        // The telemetry keeps the names watched, so that monitors (and
        // their futures) outlive this value and stay counted.
        let read = |value: fn(&Counts) -> f64| {
            let watched = watched.clone();
            move |out: &mut plimsoll_core::ScrapeWriter<'_, TaskLabels>| {
                let watched = watched.lock().unwrap_or_else(|e| e.into_inner());
                for (task, counts) in watched.iter() {
                    let labels = TaskLabels { task: task.clone() };
                    let _ = out.set(&Tenant::system(), &labels, value(counts));
                }
            }
        };
        fn count(n: &AtomicU64) -> f64 {
            n.load(Ordering::Relaxed) as f64
        }
        let families: [(&FamilyDecl, Read); 5] = [
            (&families::TASK_POLLS, |c| count(&c.polls)),
            (&families::TASK_POLL_SECONDS, |c| {
                count(&c.poll_nanos) * 1e-9
            }),
            (&families::TASK_SCHEDULES, |c| count(&c.schedules)),
            (&families::TASK_SCHEDULE_DELAY, |c| {
                count(&c.schedule_nanos) * 1e-9
            }),
            (&families::TASK_ALIVE, |c| count(&c.alive)),
        ];
        for (family, value) in families {
            telemetry.declare_scraped(family, read(value))?;
        }
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
    /// `future`, counted: each poll, the time it took, the time from each
    /// wake to the poll that follows it, and whether the future is alive
    /// (made and not yet finished or dropped).
    pub fn instrument<F: Future>(&self, future: F) -> Monitored<F> {
        self.counts.alive.fetch_add(1, Ordering::Relaxed);
        let wakes = Arc::new(Wakes::default());
        Monitored {
            future,
            waker: Waker::from(wakes.clone()),
            wakes,
            alive: Alive(Some(self.counts.clone())),
        }
    }
}

/// The waker a monitored future is polled with: it notes when the future
/// was woken, then wakes the task's own waker.
#[derive(Debug, Default)]
struct Wakes {
    /// `Stamp::as_nanos` of the first wake since the last poll (0: none);
    /// a wake during a poll counts from the poll's end (the task was
    /// running, not waiting).
    woken_at: AtomicU64,
    /// The waker of the last poll (none once the future is done).
    waker: AtomicWaker,
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let now = Stamp::now().as_nanos().max(1);
        let _ = self
            .woken_at
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.waker.wake();
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
        waker: Waker,
        wakes: Arc<Wakes>,
        alive: Alive,
    }
}

impl<F: Future> Future for Monitored<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.wakes.waker.register(cx.waker());
        let woken_at = this.wakes.woken_at.swap(0, Ordering::Relaxed);
        let start = Stamp::now();
        let poll = this.future.poll(&mut Context::from_waker(this.waker));
        let end = Stamp::now();
        // A wake during the poll: the wait for a worker starts now.
        let _ = this
            .wakes
            .woken_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |at| {
                (at != 0 && at < end.as_nanos()).then_some(end.as_nanos())
            });
        if let Some(counts) = &this.alive.0 {
            counts.polls.fetch_add(1, Ordering::Relaxed);
            let nanos = end.as_nanos().saturating_sub(start.as_nanos());
            counts.poll_nanos.fetch_add(nanos, Ordering::Relaxed);
            if woken_at != 0 {
                let delay = start.as_nanos().saturating_sub(woken_at);
                counts.schedules.fetch_add(1, Ordering::Relaxed);
                counts.schedule_nanos.fetch_add(delay, Ordering::Relaxed);
            }
        }
        if poll.is_ready() {
            this.alive.end();
            drop(this.wakes.waker.take());
        }
        poll
    }
}
