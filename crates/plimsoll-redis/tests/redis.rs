//! The wrapper against a real `redis-server`, started on loopback for each
//! test. Without `PLIMSOLL_REQUIRE_SERVICES=1` a missing server skips the
//! test with one line; with it (as in CI) the test fails.

#[path = "../../../tests/support/mod.rs"]
mod support;

use plimsoll_core::scope::Scope;
use plimsoll_core::{Format, Telemetry};
use plimsoll_redis::{KNOWN_COMMANDS, RedisMetrics, command_label};
use redis::AsyncCommands;

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

fn count(body: &str, tenant: &str, command: &str, status: &str) -> Option<f64> {
    let series = format!(
        "redis_command_duration_seconds_count{{tenant_id=\"{tenant}\",command=\"{command}\",status=\"{status}\"}} "
    );
    body.lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
}

#[tokio::test]
async fn commands_pipelines_and_transactions_are_recorded_under_the_request_tenant() {
    let Some(server) = support::redis_server() else {
        return;
    };
    let t = telemetry();
    let metrics = RedisMetrics::new(&t).unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    let mut conn = metrics.wrap(client.get_multiplexed_async_connection().await.unwrap());
    Scope::new(t.tenant("acme"))
        .run(async {
            let _: () = conn.set("k", "v").await.unwrap();
            let value: String = conn.get("k").await.unwrap();
            assert_eq!(value, "v");
            let made_up: redis::RedisResult<()> =
                redis::cmd("MADEUPCMD").query_async(&mut conn).await;
            assert!(made_up.is_err());
            let wrong_type: redis::RedisResult<i64> = conn.incr("k", 1).await;
            assert!(wrong_type.is_err());
            let (a, b): (i64, i64) = redis::pipe()
                .incr("n", 1)
                .incr("n", 1)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!((a, b), (1, 2));
            let (c,): (i64,) = redis::pipe()
                .atomic()
                .incr("n", 1)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(c, 3);
        })
        .await;
    let _: i64 = conn.incr("outside", 1).await.unwrap();

    let body = t.encode(Format::Prometheus);
    assert_eq!(count(&body, "acme", "SET", "ok"), Some(1.0), "{body}");
    assert_eq!(count(&body, "acme", "GET", "ok"), Some(1.0));
    assert_eq!(
        count(&body, "acme", "__other__", "error"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(count(&body, "acme", "INCRBY", "error"), Some(1.0));
    assert_eq!(count(&body, "acme", "PIPELINE", "ok"), Some(1.0), "{body}");
    assert_eq!(count(&body, "acme", "MULTI", "ok"), Some(1.0));
    assert_eq!(count(&body, "__system__", "INCRBY", "ok"), Some(1.0));
}

#[tokio::test]
async fn a_server_killed_mid_run_counts_errors_and_panics_nothing() {
    let Some(server) = support::redis_server() else {
        return;
    };
    let t = telemetry();
    let metrics = RedisMetrics::new(&t).unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    let mut conn = metrics.wrap(client.get_multiplexed_async_connection().await.unwrap());
    let _: () = conn.set("k", "v").await.unwrap();
    drop(server);
    for _ in 0..3 {
        let result: redis::RedisResult<String> = conn.get("k").await;
        assert!(result.is_err());
    }
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        count(&body, "__system__", "GET", "connection_error"),
        Some(3.0),
        "{body}"
    );
    assert_eq!(count(&body, "__system__", "SET", "ok"), Some(1.0));
}

#[test]
fn command_labels_hold_their_bound_under_100k_distinct_names() {
    let mut labels = std::collections::HashSet::new();
    for i in 0..100_000 {
        labels.insert(command_label(format!("CMD{i}").as_bytes()));
    }
    for known in KNOWN_COMMANDS {
        labels.insert(command_label(known.to_lowercase().as_bytes()));
    }
    assert_eq!(labels.len(), KNOWN_COMMANDS.len() + 1);
    assert!(labels.contains("__other__"));
}

#[tokio::test]
async fn the_opentelemetry_naming_applies() {
    let Some(server) = support::redis_server() else {
        return;
    };
    let t = Telemetry::builder()
        .with_naming(plimsoll_core::Naming::OpenTelemetry)
        .with_process_metrics(false)
        .build()
        .unwrap();
    let metrics = RedisMetrics::new(&t).unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    let mut conn = metrics.wrap(client.get_multiplexed_async_connection().await.unwrap());
    let _: () = conn.set("k", "v").await.unwrap();
    let body = t.encode(Format::Prometheus);
    assert!(
        body.contains(
            "db_client_operation_duration_seconds_count{tenant_id=\"__system__\",db_operation_name=\"SET\",status=\"ok\"} 1\n"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn a_command_past_the_response_timeout_is_a_timeout() {
    let Some(server) = support::redis_server() else {
        return;
    };
    let t = telemetry();
    let metrics = RedisMetrics::new(&t).unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    conn.set_response_timeout(std::time::Duration::from_millis(100));
    let mut conn = metrics.wrap(conn);
    // BLPOP on an empty list waits 2 s for an element: past the 100 ms.
    let waited: redis::RedisResult<Option<(String, String)>> = conn.blpop("empty", 2.0).await;
    assert!(waited.as_ref().is_err_and(|e| e.is_timeout()), "{waited:?}");
    let body = t.encode(Format::Prometheus);
    assert_eq!(
        count(&body, "__system__", "BLPOP", "timeout"),
        Some(1.0),
        "{body}"
    );
    let seconds: f64 = body
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"redis_command_duration_seconds_sum{tenant_id="__system__",command="BLPOP",status="timeout"} "#,
            )?
            .parse()
            .ok()
        })
        .unwrap();
    assert!(
        (0.1..1.5).contains(&seconds),
        "timed out after about 100 ms: {seconds}"
    );
}
