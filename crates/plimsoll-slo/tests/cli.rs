//! The `plimsoll` command line: outputs, help, errors naming the field,
//! exit codes; the example's SLO file; Sloth's format.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn plimsoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .output()
        .expect("run plimsoll")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/slo.yaml").to_string()
}

fn temp(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("plimsoll-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_reads_the_examples_slo_file() {
    let out = plimsoll(&["check", &example()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ok  orders-availability (orders-api): 99.9% over 30 days\nok  orders-latency (orders-api): 99% over 30 days\n"
    );
}

#[test]
fn rules_pass_promtool_in_both_forms() {
    let out = plimsoll(&["rules", "--slo", &example()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rules = stdout(&out);
    assert!(
        rules.contains("alert: SloNoData"),
        "absent_alert from the file"
    );
    let path = temp("rules.yml", &rules);
    let promtool = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output();
    match promtool {
        Ok(check) => assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        ),
        Err(_) => assert!(
            std::env::var("PLIMSOLL_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "promtool is required"
        ),
    }
    let out = plimsoll(&[
        "rules",
        "--slo",
        &example(),
        "--format",
        "prometheus-rule",
        "--name",
        "orders",
        "--no-service-alerts",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let resource = stdout(&out);
    assert!(resource.contains("kind: PrometheusRule\nmetadata:\n  name: \"orders\""));
    assert!(!resource.contains("HttpHighErrorRatio"));
}

#[test]
fn dashboard_is_grafana_json_with_a_datasource_variable() {
    let out = plimsoll(&["dashboard", "--slo", &example()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert_eq!(json["title"], "orders-api");
    assert_eq!(json["schemaVersion"], 39);
    assert_eq!(json["templating"]["list"][0]["type"], "datasource");
    let panels = json["panels"].as_array().unwrap();
    assert!(panels.len() > 10);
    for panel in panels.iter().filter(|p| p["type"] == "timeseries") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
    }
}

#[test]
fn sloth_files_are_read() {
    let sloth = temp(
        "sloth.yaml",
        r#"version: "prometheus/v1"
service: "myservice"
labels:
  owner: "myteam"
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Common SLO based on availability for HTTP request responses."
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{ .window }}]))
    alerting:
      name: MyServiceHighErrorRate
      labels:
        category: "availability"
      page_alert:
        disable: true
"#,
    );
    let out = plimsoll(&[
        "rules",
        "--slo",
        sloth.to_str().unwrap(),
        "--no-service-alerts",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rules = stdout(&out);
    assert!(rules.contains(r#"code=~"(5..|429)"}[5m]"#), "{rules}");
    assert!(
        rules.contains(r#"http_request_duration_seconds_count{job="myservice"}[5m]"#),
        "spaced placeholder"
    );
    assert!(
        rules.contains("severity: \"ticket\"") && !rules.contains("severity: \"page\""),
        "page alert disabled"
    );
    assert!(rules.contains("slo:sli_error:ratio_rate30d"));
}

/// `plimsoll check` on `yaml` exits 2 with `message` on stderr.
fn refused(name: &str, yaml: &str, message: &str) {
    let path = temp(name, yaml);
    let out = plimsoll(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{name}");
    assert!(stderr(&out).contains(message), "{name}: {}", stderr(&out));
}

#[test]
fn errors_name_the_field_and_exit_codes_say_what_failed() {
    refused(
        "bad.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: ok\n    objective: 99\n    sli: { availability: { source: http } }\n  - name: broken\n    objective: 100\n    sli: { availability: { source: http } }\n",
        "slos[1] (broken).objective: must be a percentage in (0, 100), got 100",
    );
    refused(
        "window.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: w\n    objective: 99\n    window: 4w\n    sli: { latency: { source: grpc, threshold: 0.25 } }\n",
        "slos[0].window: \"4w\" is not a number of days like 30d",
    );
    refused(
        "family.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: f\n    objective: 99\n    sli: { availability: { source: kafka } }\n",
        "slos[0].sli.availability.source: \"kafka\" is neither http nor grpc",
    );
    refused(
        "label.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: l\n    objective: 99\n    sli: { availability: { source: http } }\n    selector: { path: /x }\n",
        "slos[0] (l).selector: http_requests_total has no label \"path\"",
    );
    refused(
        "twice.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli: { availability: { source: http } }\n  - name: a\n    objective: 99.9\n    sli: { availability: { source: grpc } }\n",
        "slos[1].name: \"a\" is slos[0]'s name too",
    );
    refused(
        "empty.yaml",
        "version: plimsoll/v1\nservice: s\nslos: []\n",
        "slos: no SLO in the file",
    );
    // Errors, not panics.
    refused(
        "huge-threshold.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: h\n    objective: 99\n    sli: { latency: { source: http, threshold: 1e20 } }\n",
        "slos[0].sli.latency.threshold: must be a positive number of seconds",
    );
    refused(
        "huge-window.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: h\n    objective: 99\n    window: 300000000000000d\n    sli: { availability: { source: http } }\n",
        "slos[0].window: \"300000000000000d\" is not a number of days",
    );
    assert_eq!(
        plimsoll(&[
            "rules",
            "--slo",
            &example(),
            "--format",
            "prometheus-rule",
            "--name",
            "Orders SLOs"
        ])
        .status
        .code(),
        Some(1)
    );
    refused(
        "version.yaml",
        "version: v9\nservice: s\nslos: []\n",
        "version: \"v9\"",
    );
    refused(
        "unknown.yaml",
        "version: plimsoll/v1\nservice: s\nslos:\n  - name: u\n    objectiv: 99\n",
        "unknown field `objectiv`",
    );

    assert_eq!(
        plimsoll(&["check", "/nonexistent/slo.yaml"]).status.code(),
        Some(3)
    );
    assert_eq!(plimsoll(&[]).status.code(), Some(1));
    assert_eq!(plimsoll(&["launch"]).status.code(), Some(1));
    assert_eq!(plimsoll(&["rules"]).status.code(), Some(1));
    assert_eq!(
        plimsoll(&["rules", "--slo", &example(), "--format", "xml"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        plimsoll(&["rules", "--slo", &example(), "--bogus"])
            .status
            .code(),
        Some(1)
    );
    for command in ["rules", "dashboard", "check"] {
        let out = plimsoll(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            stdout(&out).starts_with(&format!("plimsoll {command}")),
            "{}",
            stdout(&out)
        );
    }
    assert!(stdout(&plimsoll(&["--help"])).contains("Exit codes"));
}
