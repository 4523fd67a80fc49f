//! Task monitors: exact polls, time in polls, alive futures, bounded names.

use std::time::Duration;

use plimsoll_core::Telemetry;
use plimsoll_runtime::TaskMonitors;

#[tokio::test]
async fn a_monitored_task_counts_its_polls_time_and_life() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
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
    let value = |name: &str| {
        t.scrape()
            .value(name, &[("tenant_id", "__system__"), ("task", "consumer")])
    };
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
