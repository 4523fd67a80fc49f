//! The export pipeline: a bounded queue of finished spans, drained in
//! batches by a thread of its own, with every span counted as exported or
//! dropped (and why).
//!
//! The SDK's batch processor drops spans silently when its queue is full
//! and keeps no count of failed exports, so this one replaces it. The
//! exporter runs on a single-threaded tokio runtime owned by the export
//! thread, so it needs nothing from the service's runtime and works with
//! both the gRPC (tonic) and the HTTP (hyper) transport.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{Notify, mpsc};

use crate::config::Settings;

/// Why a span was not exported: the `reason` label of
/// `plimsoll_spans_dropped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drop {
    /// The queue was full (the collector is slower than the service).
    QueueFull,
    /// The collector refused the batch, or could not be reached.
    ExportFailed,
    /// The export took longer than the timeout.
    Timeout,
    /// The pipeline had shut down.
    Shutdown,
}

impl Drop {
    pub(crate) const ALL: [Drop; 4] = [
        Drop::QueueFull,
        Drop::ExportFailed,
        Drop::Timeout,
        Drop::Shutdown,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Drop::QueueFull => "queue_full",
            Drop::ExportFailed => "export_failed",
            Drop::Timeout => "timeout",
            Drop::Shutdown => "shutdown",
        }
    }
}

/// The pipeline's counters, read at scrape time.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) exported: AtomicU64,
    dropped: [AtomicU64; 4],
    /// When a drop was last logged, in milliseconds since `since`.
    last_warning: AtomicU64,
    warned: AtomicBool,
    since: Instant,
    interval: Duration,
}

impl Stats {
    pub(crate) fn new(interval: Duration) -> Self {
        Stats {
            exported: AtomicU64::new(0),
            dropped: Default::default(),
            last_warning: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            since: Instant::now(),
            interval,
        }
    }

    pub(crate) fn dropped(&self, reason: Drop) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Counts `n` spans dropped for `reason`, and logs it unless a drop was
    /// logged within the interval.
    fn drop_spans(&self, reason: Drop, n: u64, detail: &dyn fmt::Display) {
        self.dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
        let now = self.since.elapsed().as_millis() as u64;
        let last = self.last_warning.load(Ordering::Relaxed);
        let due = !self.warned.load(Ordering::Relaxed)
            || now.saturating_sub(last) >= self.interval.as_millis() as u64;
        if due
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.warned.store(true, Ordering::Relaxed);
            tracing::warn!(
                target: "plimsoll::otlp",
                reason = reason.as_str(),
                spans = n,
                "spans dropped: {detail} (counted in plimsoll_spans_dropped_total; \
                 logged at most once per {:?})",
                self.interval
            );
        }
    }
}

enum Control {
    Flush(std::sync::mpsc::SyncSender<()>),
    Shutdown(std::sync::mpsc::SyncSender<()>),
}

/// The bounded queue between the service's threads and the export
/// thread. A span is pushed under a short lock; the export thread is woken
/// once per full batch (waking it for every span would cost a system call
/// each), and otherwise drains the queue on its schedule.
struct Queue {
    spans: Mutex<Vec<SpanData>>,
    capacity: usize,
    batch_size: usize,
    closed: AtomicBool,
    batch_ready: Notify,
}

impl Queue {
    /// Queues a span; `Err` with why it was dropped.
    fn push(&self, span: SpanData) -> Result<(), Drop> {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock: a span queued after the last drain would be
        // lost uncounted.
        if self.closed.load(Ordering::Relaxed) {
            return Err(Drop::Shutdown);
        }
        if spans.len() >= self.capacity {
            return Err(Drop::QueueFull);
        }
        spans.push(span);
        let full_batch = spans.len() == self.batch_size;
        drop(spans);
        if full_batch {
            self.batch_ready.notify_one();
        }
        Ok(())
    }

    /// Refuses spans from now on.
    fn close(&self) {
        let _spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Takes up to one batch of spans.
    fn take_batch(&self) -> Vec<SpanData> {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        if spans.len() <= self.batch_size {
            std::mem::take(&mut *spans)
        } else {
            spans.drain(..self.batch_size).collect()
        }
    }
}

/// The span processor: queues sampled spans for the export thread.
pub(crate) struct Processor {
    queue: Arc<Queue>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<Stats>,
    shutdown_timeout: Duration,
}

impl fmt::Debug for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// Starts the export thread with the exporter `make` builds on it.
    pub(crate) fn start<E, M>(
        settings: &Settings,
        stats: Arc<Stats>,
        make: M,
    ) -> Result<Processor, String>
    where
        E: SpanExporter + 'static,
        M: FnOnce() -> Result<E, String> + Send + 'static,
    {
        let queue = Arc::new(Queue {
            spans: Mutex::new(Vec::new()),
            capacity: settings.queue_size,
            batch_size: settings.batch_size,
            closed: AtomicBool::new(false),
            batch_ready: Notify::new(),
        });
        let (control, control_rx) = mpsc::unbounded_channel();
        let (ready, ready_rx) = std::sync::mpsc::sync_channel(1);
        let worker = Worker {
            queue: queue.clone(),
            control: control_rx,
            stats: stats.clone(),
            delay: settings.schedule_delay,
            timeout: settings.timeout,
        };
        std::thread::Builder::new()
            .name("plimsoll-otlp".into())
            .spawn(move || {
                crate::layer::mark_export_thread();
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start the export runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match make() {
                        Ok(exporter) => {
                            let _ = ready.send(Ok(()));
                            worker.run(exporter).await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| format!("cannot start the export thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the export thread stopped while starting".to_string())??;
        Ok(Processor {
            queue,
            control,
            stats,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    fn ask(
        &self,
        make: fn(std::sync::mpsc::SyncSender<()>) -> Control,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.control.send(make(tx)).is_err() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        match rx.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(OTelSdkError::AlreadyShutdown)
            }
        }
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.queue.push(span) {
            Ok(()) => {}
            Err(Drop::QueueFull) => {
                self.stats
                    .drop_spans(Drop::QueueFull, 1, &"the export queue is full");
            }
            Err(reason) => {
                self.stats
                    .drop_spans(reason, 1, &"the export pipeline has shut down");
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush, self.shutdown_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.ask(Control::Shutdown, timeout)
    }
}

struct Worker {
    queue: Arc<Queue>,
    control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<Stats>,
    delay: Duration,
    timeout: Duration,
}

impl Worker {
    async fn run<E: SpanExporter>(mut self, exporter: E) {
        let mut tick = tokio::time::interval(self.delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                control = self.control.recv() => {
                    // Export everything queued so far, then answer.
                    self.drain(&exporter).await;
                    match control {
                        Some(Control::Flush(done)) => {
                            let _ = done.send(());
                        }
                        Some(Control::Shutdown(done)) => {
                            self.queue.close();
                            self.drain(&exporter).await;
                            let _ = exporter.shutdown_with_timeout(self.timeout);
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    }
                }
                _ = self.queue.batch_ready.notified() => self.drain(&exporter).await,
                _ = tick.tick() => self.drain(&exporter).await,
            }
        }
    }

    /// Exports batch after batch until the queue is empty.
    async fn drain<E: SpanExporter>(&self, exporter: &E) {
        loop {
            let batch = self.queue.take_batch();
            if batch.is_empty() {
                return;
            }
            self.export(exporter, batch).await;
        }
    }

    async fn export<E: SpanExporter>(&self, exporter: &E, spans: Vec<SpanData>) {
        let n = spans.len() as u64;
        match tokio::time::timeout(self.timeout, exporter.export(spans)).await {
            Ok(Ok(())) => {
                self.stats.exported.fetch_add(n, Ordering::Relaxed);
            }
            Ok(Err(e)) => self.stats.drop_spans(
                Drop::ExportFailed,
                n,
                &format_args!("the collector did not take a batch: {e}"),
            ),
            Err(_) => self.stats.drop_spans(
                Drop::Timeout,
                n,
                &format_args!("an export took longer than {:?}", self.timeout),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn drops_are_counted_each_time_and_logged_once_per_interval() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let stats = Stats::new(Duration::from_millis(200));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..100 {
                stats.drop_spans(Drop::QueueFull, 1, &"full");
            }
            stats.drop_spans(Drop::ExportFailed, 7, &"refused");
            std::thread::sleep(Duration::from_millis(250));
            stats.drop_spans(Drop::ExportFailed, 3, &"refused again");
        });
        assert_eq!(stats.dropped(Drop::QueueFull), 100);
        assert_eq!(stats.dropped(Drop::ExportFailed), 10);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logged: Vec<&str> = text.lines().collect();
        assert_eq!(logged.len(), 2, "{text}");
        assert!(logged[0].contains("spans dropped: full") && logged[0].contains("queue_full"));
        assert!(logged[1].contains("refused again") && logged[1].contains("spans=3"));
    }
}
