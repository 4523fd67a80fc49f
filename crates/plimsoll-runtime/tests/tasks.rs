//! Task monitors: exact polls, time in polls, scheduling delay, alive
//! futures, bounded names.

use std::time::Duration;

use plimsoll_core::Telemetry;
use plimsoll_runtime::TaskMonitors;

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

/// The value of `family` for the task `consumer`.
fn of_consumer(t: &Telemetry, family: &str) -> Option<f64> {
    t.scrape()
        .value(family, &[("tenant_id", "__system__"), ("task", "consumer")])
}

#[tokio::test]
async fn a_monitored_task_counts_its_polls_time_and_life() {
    let t = telemetry();
    let monitors = TaskMonitors::new(&t).unwrap();
    let consumer = monitors.monitor("consumer");
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(consumer.instrument(async move {
        // Three yields: four polls. One poll holds its thread 20 ms.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        std::thread::sleep(Duration::from_millis(20));
        let _ = wait.await;
    }));
    // Let it run up to its wait: alive, polled.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let value = |family: &str| of_consumer(&t, family);
    assert_eq!(value("tokio_task_alive"), Some(1.0));
    assert_eq!(value("tokio_task_polls_total"), Some(4.0));
    let busy = value("tokio_task_poll_seconds_total").unwrap();
    assert!((0.02..1.0).contains(&busy), "{busy}");
    go.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(value("tokio_task_alive"), Some(0.0));
    assert_eq!(value("tokio_task_polls_total"), Some(5.0));
    // A dropped future is no longer alive either.
    drop(consumer.instrument(std::future::pending::<()>()));
    assert_eq!(value("tokio_task_alive"), Some(0.0));
}

#[test]
fn the_time_from_a_wake_to_its_poll_is_counted() {
    let t = telemetry();
    let monitors = TaskMonitors::new(&t).unwrap();
    let consumer = monitors.monitor("consumer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (ready, is_ready) = tokio::sync::oneshot::channel::<()>();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(consumer.instrument(async move {
            ready.send(()).unwrap();
            let _ = wait.await;
        }));
        is_ready.await.unwrap();
        // Woken now, the consumer waits for the one thread, held 30 ms.
        go.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        task.await.unwrap();
    });
    let value = |family: &str| of_consumer(&t, family);
    // Two polls; the first was not woken (spawned), the second was.
    assert_eq!(value("tokio_task_polls_total"), Some(2.0));
    assert_eq!(value("tokio_task_schedules_total"), Some(1.0));
    let delay = value("tokio_task_schedule_delay_seconds_total").unwrap();
    assert!((0.03..5.0).contains(&delay), "{delay}");
}

#[test]
fn a_wake_during_a_poll_counts_from_the_poll_s_end() {
    let t = telemetry();
    let monitors = TaskMonitors::new(&t).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut polled = false;
    let wakes_itself = std::future::poll_fn(move |cx| {
        if std::mem::replace(&mut polled, true) {
            return std::task::Poll::Ready(());
        }
        // Woken at once, then busy 300 ms: running, not waiting.
        cx.waker().wake_by_ref();
        std::thread::sleep(Duration::from_millis(300));
        std::task::Poll::Pending
    });
    rt.block_on(async {
        let consumer = monitors.monitor("consumer");
        tokio::spawn(consumer.instrument(wakes_itself))
            .await
            .unwrap();
    });
    assert_eq!(of_consumer(&t, "tokio_task_polls_total"), Some(2.0));
    assert_eq!(of_consumer(&t, "tokio_task_schedules_total"), Some(1.0));
    let delay = of_consumer(&t, "tokio_task_schedule_delay_seconds_total").unwrap();
    // Polled again as soon as the poll ended: far less than the 300 ms.
    assert!(delay < 0.25, "{delay}");
    let busy = of_consumer(&t, "tokio_task_poll_seconds_total").unwrap();
    assert!(busy >= 0.3, "{busy}");
}

#[test]
fn task_names_are_bounded() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_label_bound(&plimsoll_runtime::families::TASK_POLLS, "task", 2)
        .build()
        .unwrap();
    let monitors = TaskMonitors::new(&t).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for name in ["a", "b", "c", "d"] {
        rt.block_on(monitors.monitor(name).instrument(async {}));
    }
    let s = t.scrape();
    assert_eq!(s.series_count("tokio_task_polls_total"), 3);
    assert_eq!(
        s.value("tokio_task_polls_total", &[("task", "__other__")]),
        Some(2.0)
    );
}

#[test]
fn monitors_stay_counted_when_their_task_monitors_is_dropped() {
    let t = telemetry();
    let consumer = TaskMonitors::new(&t).unwrap().monitor("consumer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(consumer.instrument(async {}));
    assert_eq!(of_consumer(&t, "tokio_task_polls_total"), Some(1.0));
}

#[test]
fn a_finished_future_lets_go_of_its_task_s_waker() {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Task;
    impl Wake for Task {
        fn wake(self: Arc<Self>) {}
    }
    let task = Arc::new(Task);
    let waker = Waker::from(task.clone());
    let mut cx = Context::from_waker(&waker);
    let t = telemetry();
    let monitor = TaskMonitors::new(&t).unwrap().monitor("consumer");
    let mut polled = false;
    let mut future = std::pin::pin!(monitor.instrument(std::future::poll_fn(move |_| {
        match std::mem::replace(&mut polled, true) {
            false => Poll::Pending,
            true => Poll::Ready(()),
        }
    })));
    assert!(future.as_mut().poll(&mut cx).is_pending());
    // This test's, the waker's, and the one the monitor keeps to pass wakes on.
    assert_eq!(Arc::strong_count(&task), 3);
    assert!(future.as_mut().poll(&mut cx).is_ready());
    assert_eq!(Arc::strong_count(&task), 2);
}
