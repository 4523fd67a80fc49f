//! Exact values from runtimes with known workers and tasks. Built with
//! `RUSTFLAGS="--cfg tokio_unstable"` (as `.ci/run` does in a second
//! pass), the unstable families are checked too.

use std::time::{Duration, Instant};

#[path = "../../../tests/support/mod.rs"]
mod support;

use plimsoll_core::Telemetry;
use plimsoll_core::testing::Scrape;

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

fn value(s: &Scrape, name: &str) -> f64 {
    s.value(name, &[("tenant_id", "__system__")])
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Scrapes until `done` holds (within 5 s), for values the workers settle into.
fn settled(t: &Telemetry, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = t.scrape();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn three_workers_and_five_waiting_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .build()
        .unwrap();
    let t = telemetry();
    plimsoll_runtime::register(&t, rt.handle()).unwrap();
    let (release, waiting) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let mut waiting = waiting.clone();
            rt.spawn(async move {
                let _ = waiting.wait_for(|go| *go).await;
            })
        })
        .collect();
    // A task that keeps a worker busy for 50 ms.
    rt.block_on(rt.spawn(async { std::thread::sleep(Duration::from_millis(50)) }))
        .unwrap();

    // tokio publishes a worker's busy time and parks when it parks: wait
    // for what is asserted.
    let s = settled(&t, |s| {
        value(s, "tokio_global_queue_depth") == 0.0
            && s.sum("tokio_worker_parks_total", &[]) >= 3.0
            && s.sum("tokio_worker_busy_seconds_total", &[]) >= 0.05
    });
    assert_eq!(value(&s, "tokio_workers"), 3.0);
    assert_eq!(value(&s, "tokio_alive_tasks"), 5.0);
    assert_eq!(value(&s, "tokio_global_queue_depth"), 0.0);
    assert_eq!(s.series_count("tokio_worker_busy_seconds_total"), 3);
    assert_eq!(s.series_count("tokio_worker_parks_total"), 3);
    for worker in ["0", "1", "2"] {
        assert!(
            s.value("tokio_worker_busy_seconds_total", &[("worker", worker)])
                .is_some()
        );
    }
    let busy = s.sum("tokio_worker_busy_seconds_total", &[]);
    assert!(busy >= 0.05, "the 50 ms task counts as busy time: {busy}");

    release.send(true).unwrap();
    rt.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    let s = settled(&t, |s| value(s, "tokio_alive_tasks") == 0.0);
    assert_eq!(value(&s, "tokio_alive_tasks"), 0.0);
}

#[test]
fn tasks_spawned_while_every_worker_is_held_wait_in_the_global_queue() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let t = telemetry();
    plimsoll_runtime::register(&t, rt.handle()).unwrap();
    // Each worker held by a task that blocks its thread.
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (held, wait) = (held.clone(), wait.clone());
            rt.spawn(async move {
                held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = wait.lock().unwrap().recv();
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the workers were not held");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Spawned from outside the runtime, with no worker free: the global queue.
    let queued: Vec<_> = (0..4).map(|_| rt.spawn(async {})).collect();
    let s = t.scrape();
    assert_eq!(value(&s, "tokio_global_queue_depth"), 4.0);
    assert_eq!(value(&s, "tokio_alive_tasks"), 6.0);
    for _ in 0..2 {
        release.send(()).unwrap();
    }
    rt.block_on(async {
        for task in holders.into_iter().chain(queued) {
            task.await.unwrap();
        }
    });
    assert_eq!(value(&t.scrape(), "tokio_global_queue_depth"), 0.0);
}

#[test]
fn a_current_thread_runtime_has_one_worker() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let t = telemetry();
    plimsoll_runtime::register(&t, rt.handle()).unwrap();
    let s = t.scrape();
    assert_eq!(value(&s, "tokio_workers"), 1.0);
    assert_eq!(value(&s, "tokio_alive_tasks"), 0.0);
    assert_eq!(s.series_count("tokio_worker_parks_total"), 1);
}

#[test]
fn registering_twice_is_an_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let t = telemetry();
    plimsoll_runtime::register(&t, rt.handle()).unwrap();
    let err = plimsoll_runtime::register(&t, rt.handle()).unwrap_err();
    assert!(err.to_string().contains("tokio_workers"), "{err}");
}

#[cfg(tokio_unstable)]
#[test]
fn unstable_builds_read_blocking_threads_yields_and_poll_times() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_metrics_poll_time_histogram();
    #[cfg(feature = "schedule-latency")]
    builder.enable_metrics_schedule_latency_histogram();
    let rt = builder.build().unwrap();
    let t = telemetry();
    plimsoll_runtime::register(&t, rt.handle()).unwrap();
    let (release, waiting) = std::sync::mpsc::channel::<()>();
    let waiting = std::sync::Arc::new(std::sync::Mutex::new(waiting));
    // Three blocking tasks for two blocking threads: one waits in the queue.
    let blocking: Vec<_> = (0..3)
        .map(|_| {
            let waiting = waiting.clone();
            rt.spawn_blocking(move || {
                let _ = waiting.lock().unwrap().recv();
            })
        })
        .collect();
    for _ in 0..4 {
        rt.block_on(rt.spawn(async { tokio::task::yield_now().await }))
            .unwrap();
    }
    // A task that finds 1,000 messages ready uses up its budget (128) and
    // is made to yield: at least 7 times.
    rt.block_on(rt.spawn(async {
        let (send, mut receive) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..1_000 {
            send.send(i).unwrap();
        }
        drop(send);
        while receive.recv().await.is_some() {}
    }))
    .unwrap();
    let s = settled(&t, |s| {
        let polls = s.sum("tokio_worker_polls_total", &[]);
        value(s, "tokio_blocking_threads") == 2.0
            && value(s, "tokio_idle_blocking_threads") == 0.0
            && value(s, "tokio_blocking_queue_depth") == 1.0
            && value(s, "tokio_budget_forced_yields_total") >= 7.0
            && polls >= 5.0
            && value(s, "tokio_poll_time_seconds_count") == polls
    });
    assert_eq!(value(&s, "tokio_blocking_threads"), 2.0);
    assert_eq!(value(&s, "tokio_idle_blocking_threads"), 0.0);
    assert_eq!(value(&s, "tokio_blocking_queue_depth"), 1.0);
    assert_eq!(value(&s, "tokio_spawned_tasks_total"), 5.0);
    assert_eq!(s.series_count("tokio_worker_polls_total"), 2);
    assert_eq!(s.series_count("tokio_worker_steals_total"), 2);
    assert_eq!(s.series_count("tokio_worker_local_queue_depth"), 2);
    let forced = value(&s, "tokio_budget_forced_yields_total");
    assert!(forced >= 7.0, "{forced}");
    // Every poll lands in the poll-time histogram.
    let polls = s.sum("tokio_worker_polls_total", &[]);
    assert!(polls >= 5.0, "five tasks, each polled: {polls}");
    assert_eq!(value(&s, "tokio_poll_time_seconds_count"), polls);
    assert!(value(&s, "tokio_poll_time_seconds_sum") > 0.0);
    #[cfg(feature = "schedule-latency")]
    assert!(value(&s, "tokio_schedule_delay_seconds_count") >= 4.0);

    for _ in 0..3 {
        release.send(()).unwrap();
    }
    rt.block_on(async {
        for task in blocking {
            task.await.unwrap();
        }
    });
    let s = settled(&t, |s| value(s, "tokio_idle_blocking_threads") == 2.0);
    assert_eq!(value(&s, "tokio_idle_blocking_threads"), 2.0);
}

/// The unstable families (histograms too) through `promtool check metrics`
/// and the reference OpenMetrics parser.
#[cfg(tokio_unstable)]
#[test]
fn unstable_families_pass_both_validators() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_metrics_poll_time_histogram()
        .build()
        .unwrap();
    let t = telemetry();
    plimsoll_runtime::register(&t, rt.handle()).unwrap();
    rt.block_on(rt.spawn(async {})).unwrap();
    let text = t.encode(plimsoll_core::Format::Prometheus);
    assert!(text.contains("tokio_poll_time_seconds_bucket{tenant_id=\"__system__\",le=\"+Inf\"}"));
    if support::have_promtool() {
        support::promtool_check(&text).unwrap();
    }
    if support::have_openmetrics_parser() {
        let open = t.encode(plimsoll_core::Format::OpenMetrics);
        let samples = support::openmetrics_check(&open).unwrap();
        assert!(samples > 10, "{samples}");
    }
}
