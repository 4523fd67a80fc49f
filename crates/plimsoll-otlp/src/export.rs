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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::mpsc;

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

/// The span processor: queues sampled spans for the export thread.
pub(crate) struct Processor {
    spans: mpsc::Sender<SpanData>,
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
        let (spans, spans_rx) = mpsc::channel(settings.queue_size);
        let (control, control_rx) = mpsc::unbounded_channel();
        let (ready, ready_rx) = std::sync::mpsc::sync_channel(1);
        let worker = Worker {
            spans: spans_rx,
            control: control_rx,
            stats: stats.clone(),
            batch_size: settings.batch_size,
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
            spans,
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
        match self.spans.try_send(span) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats
                    .drop_spans(Drop::QueueFull, 1, &"the export queue is full");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.stats
                    .drop_spans(Drop::Shutdown, 1, &"the export pipeline has shut down");
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
    spans: mpsc::Receiver<SpanData>,
    control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<Stats>,
    batch_size: usize,
    delay: Duration,
    timeout: Duration,
}

impl Worker {
    async fn run<E: SpanExporter>(mut self, exporter: E) {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut tick = tokio::time::interval(self.delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                control = self.control.recv() => {
                    // Export everything queued so far, then answer.
                    while let Ok(span) = self.spans.try_recv() {
                        batch.push(span);
                        if batch.len() >= self.batch_size {
                            self.export(&exporter, &mut batch).await;
                        }
                    }
                    self.export(&exporter, &mut batch).await;
                    match control {
                        Some(Control::Flush(done)) => {
                            let _ = done.send(());
                        }
                        Some(Control::Shutdown(done)) => {
                            self.spans.close();
                            let _ = exporter.shutdown_with_timeout(self.timeout);
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    }
                }
                span = self.spans.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= self.batch_size {
                            self.export(&exporter, &mut batch).await;
                        }
                    }
                    None => {
                        self.export(&exporter, &mut batch).await;
                        return;
                    }
                },
                _ = tick.tick() => self.export(&exporter, &mut batch).await,
            }
        }
    }

    async fn export<E: SpanExporter>(&self, exporter: &E, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::replace(batch, Vec::with_capacity(self.batch_size));
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
