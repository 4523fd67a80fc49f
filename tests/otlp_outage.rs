//! A collector outage under load, against a real OTLP collector: killed
//! for 60 s while requests keep coming, every request still answers 200,
//! the lost spans are counted, memory stays within the queue's bound, and
//! export resumes when the collector is back. In its own test binary: it
//! measures the process's memory.
#![cfg(all(feature = "http", feature = "otlp"))]

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http_body_util::BodyExt;
use plimsoll::http::RedMetricsLayer;
use plimsoll::otlp::{Protocol, Tracing, TracingGuard};
use plimsoll::{Format, Telemetry};

const OUTAGE: Duration = Duration::from_secs(60);
const QUEUE: usize = 2048;

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn spans(t: &Telemetry, name: &str, reason: Option<&str>) -> f64 {
    let scrape = t.scrape();
    let mut labels = vec![("tenant_id", "__system__")];
    if let Some(reason) = reason {
        labels.push(("reason", reason));
    }
    scrape.value(name, &labels).unwrap_or(0.0)
}

fn dropped(t: &Telemetry) -> f64 {
    ["queue_full", "export_failed", "timeout", "shutdown"]
        .into_iter()
        .map(|r| spans(t, "plimsoll_spans_dropped_total", Some(r)))
        .sum()
}

/// A telemetry on the pipeline's hook, and a traced app on it.
fn traced_app(guard: &TracingGuard) -> (Telemetry, Router) {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_trace_context(guard.trace_context())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/work/{n}", get(|| async { "done" }))
        .layer(RedMetricsLayer::builder(&t).build().unwrap());
    (t, app)
}

/// Sends `path` through `app` in process; it must answer 200.
async fn answered(app: &Router, path: &str) {
    use tower::ServiceExt;
    let request = http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The two tests measure this process's memory and bind loopback ports
/// (a killed collector's port could be handed to the other's listener):
/// one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_collector_outage_fails_no_request_and_is_counted() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut collector) = support::otlp_collector() else {
        return;
    };
    let (guard, dispatch) = Tracing::builder()
        .endpoint(collector.grpc_endpoint())
        .protocol(Protocol::Grpc)
        .service_name("outage-test")
        .schedule_delay(Duration::from_millis(50))
        .timeout(Duration::from_millis(500))
        .queue_size(QUEUE)
        .logs(false)
        .build()
        .unwrap();
    let _default = tracing::dispatcher::set_default(&dispatch);
    let (t, app) = traced_app(&guard);
    let rt = runtime();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let run = |n: usize, traceparent: Option<String>| {
        let client = client.clone();
        rt.block_on(async move {
            let mut statuses = std::collections::BTreeMap::new();
            for i in 0..n {
                let mut request = http::Request::get(format!("http://{addr}/work/{i}"));
                if let Some(tp) = &traceparent {
                    request = request.header("traceparent", tp);
                }
                let response = client
                    .request(request.body(http_body_util::Empty::new()).unwrap())
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                response.into_body().collect().await.unwrap();
                *statuses.entry(status).or_insert(0) += 1;
            }
            statuses
        })
    };

    // Up: spans arrive.
    assert_eq!(run(20, None)[&200], 20);
    guard.flush();
    collector.wait_for(|s| s.iter().filter(|s| s.name == "GET /work/{n}").count() >= 20);
    let exported_before = spans(&t, "plimsoll_spans_exported_total", None);
    assert!(exported_before >= 20.0, "{exported_before}");
    assert_eq!(dropped(&t), 0.0);

    // Down for a minute under load: every request still succeeds.
    collector.stop();
    let memory_before = rss();
    let start = Instant::now();
    let mut served = 0;
    while start.elapsed() < OUTAGE {
        let statuses = run(200, None);
        assert_eq!(statuses.keys().collect::<Vec<_>>(), [&200], "{statuses:?}");
        served += statuses[&200];
    }
    guard.flush();
    let growth = rss().saturating_sub(memory_before);
    let lost = dropped(&t);
    eprintln!(
        "outage: {served} requests in {OUTAGE:?}, {lost} spans dropped, RSS grew {} KiB",
        growth / 1024
    );
    assert!(lost > 0.0, "no span counted as dropped");
    assert!(
        lost + spans(&t, "plimsoll_spans_exported_total", None) - exported_before
            >= served as f64 * 0.99,
        "spans unaccounted for: {lost} dropped of {served}"
    );
    // The queue holds at most QUEUE spans (about 1 KiB each here); a
    // pipeline without a bound would hold every span of the minute.
    let bound = (QUEUE as u64) * 4096;
    assert!(
        growth <= bound,
        "RSS grew {growth} bytes during the outage, more than the queue's worth ({bound})"
    );
    assert!(spans(&t, "plimsoll_spans_dropped_total", Some("export_failed")) > 0.0);
    let body = t.encode(Format::Prometheus);
    assert!(body.contains("plimsoll_spans_exported_total{tenant_id=\"__system__\"}"));

    // Back: export resumes.
    collector.start();
    const TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4736";
    let statuses = run(10, Some(format!("00-{TRACE}-00f067aa0ba902b7-01")));
    assert_eq!(statuses[&200], 10);
    guard.flush();
    collector.wait_for(|s| s.iter().filter(|s| s.trace_id == TRACE).count() >= 10);
    assert!(spans(&t, "plimsoll_spans_exported_total", None) >= exported_before + 10.0);
}

#[test]
fn a_collector_that_never_answers_times_out_and_is_counted() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Accepts connections and never answers: a collector hung or behind a
    // black-holing network.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in silent.incoming().take(16) {
            open.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let (guard, dispatch) = Tracing::builder()
        .endpoint(format!("http://127.0.0.1:{port}"))
        .schedule_delay(Duration::from_millis(20))
        .timeout(Duration::from_millis(300))
        .logs(false)
        .build()
        .unwrap();
    let _default = tracing::dispatcher::set_default(&dispatch);
    let (t, app) = traced_app(&guard);
    let rt = runtime();
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..50 {
            answered(&app, "/work/0").await;
        }
    });
    // The requests never waited on the export.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    guard.flush();
    assert_eq!(
        spans(&t, "plimsoll_spans_dropped_total", Some("timeout")),
        50.0
    );
    assert_eq!(spans(&t, "plimsoll_spans_exported_total", None), 0.0);

    // Under load for 10 s: every export times out, and memory stays
    // within the queue's worth (abandoned exports are not kept).
    let memory_before = rss();
    let started = Instant::now();
    let served = rt.block_on(async {
        let mut served = 0u64;
        while started.elapsed() < Duration::from_secs(10) {
            answered(&app, "/work/1").await;
            served += 1;
        }
        served
    });
    guard.flush();
    let growth = rss().saturating_sub(memory_before);
    eprintln!(
        "hung collector: {served} requests in 10 s, RSS grew {} KiB",
        growth / 1024
    );
    assert!(spans(&t, "plimsoll_spans_dropped_total", Some("timeout")) > 50.0);
    let bound = (QUEUE as u64) * 4096;
    assert!(
        growth <= bound,
        "RSS grew {growth} bytes with a hung collector, more than the queue's worth ({bound})"
    );
    drop(held);
}
