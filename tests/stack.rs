//! `scripts/stack.sh`: `up` starts every part on free loopback ports, 5xx
//! traffic to the example burns its availability SLO until Alertmanager's
//! receiver logs the firing burn-rate page and ticket from the generated
//! rules, the first exemplar in Prometheus leads to its trace in the
//! collector's log, and `down` leaves none of the processes `up` started.
#![cfg(all(feature = "http", feature = "slo", feature = "otlp"))]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The stack's settings for this test: its directory and ports.
struct Stack {
    dir: PathBuf,
    app_port: u16,
    env: Vec<(String, String)>,
}

impl Stack {
    fn run(&self, command: &str) -> (bool, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stack.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(command)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run scripts/stack.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// The process ids `up` recorded.
    fn pids(&self) -> Vec<(String, i32)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("pids")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                // `pid start-time`
                let line = std::fs::read_to_string(e.path()).ok()?;
                let pid = line.split_whitespace().next()?.parse().ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), pid))
            })
            .collect()
    }
}

/// Stops the stack even when the test fails.
impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run("down");
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

/// One order placed by `tenant`: the status code (502 one time in ten).
fn place_order(port: u16, tenant: &str) -> Option<u16> {
    let body = r#"{"item":"tea","quantity":1}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "POST /api/v1/orders HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-tenant-id: {tenant}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.get(9..12)?.parse().ok()
}

/// The trace id of the first exemplar Prometheus holds for the request
/// durations (the walk-through's query in docs/deployment.md).
fn first_exemplar(prometheus: u16) -> Option<String> {
    let body = support::http_get(
        prometheus,
        "/api/v1/query_exemplars?query=http_request_duration_seconds_bucket",
    )
    .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let id = v["data"][0]["exemplars"][0]["labels"]["trace_id"].as_str()?;
    Some(id.to_string())
}

#[test]
fn up_burns_the_slo_to_a_page_and_a_ticket_an_exemplar_leads_to_its_trace_and_down_stops_everything()
 {
    let tools = [
        ("prometheus", "--version"),
        ("amtool", "--version"),
        ("rotel-agent", "--version"),
        ("python3", "--version"),
    ];
    if !tools
        .iter()
        .all(|(tool, probe)| support::available(tool, &[probe]))
    {
        return;
    }
    let dir = support::scratch_dir("stack");
    // The binaries `cargo test` built beside this test, when they are there.
    let built = std::env::current_exe().unwrap();
    let built = built.parent().and_then(Path::parent).unwrap();
    let mut env = vec![("PLIMSOLL_STACK_DIR".to_string(), dir.display().to_string())];
    for (var, path) in [
        ("STACK_APP_BIN", built.join("examples/axum_service")),
        ("STACK_CLI_BIN", built.join("plimsoll")),
    ] {
        if path.exists() {
            env.push((var.into(), path.display().to_string()));
        }
    }
    let app_port = support::free_port();
    for (var, port) in [
        ("STACK_APP_PORT", app_port),
        ("STACK_PROMETHEUS_PORT", support::free_port()),
        ("STACK_ALERTMANAGER_PORT", support::free_port()),
        ("STACK_RECEIVER_PORT", support::free_port()),
        ("STACK_OTLP_PORT", support::free_port()),
        ("STACK_OTLP_HTTP_PORT", support::free_port()),
    ] {
        env.push((var.into(), port.to_string()));
    }
    let stack = Stack { dir, app_port, env };

    let (ok, out) = stack.run("up");
    assert!(ok, "{out}");
    for part in ["receiver", "collector", "app", "prometheus", "alertmanager"] {
        assert!(
            out.lines().any(|l| l.contains(part) && l.contains(" up ")),
            "{part} is not up:\n{out}"
        );
    }
    // Each URL is printed.
    for (var, part) in [
        ("STACK_APP_PORT", "app"),
        ("STACK_PROMETHEUS_PORT", "prometheus"),
        ("STACK_ALERTMANAGER_PORT", "alertmanager"),
        ("STACK_RECEIVER_PORT", "receiver"),
    ] {
        let port = &stack.env.iter().find(|(k, _)| k == var).unwrap().1;
        let url = format!("http://127.0.0.1:{port}");
        assert!(
            out.lines().any(|l| l.contains(part) && l.contains(&url)),
            "{part}: no {url}\n{out}"
        );
    }
    let started = stack.pids();
    assert_eq!(
        started.len(),
        5,
        "{started:?} in {}:\n{out}",
        stack.dir.display()
    );

    // Orders fail one time in ten (the payment provider): a burn rate of
    // about 100 against a 99.9% objective, far past the page's 14.4. Ten
    // tenants at 10 orders a second each stay under their rate limit (a
    // flood of 429s would dilute the ratio: they are not errors).
    let log = stack.dir.join("logs/receiver.log.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut codes = std::collections::BTreeMap::new();
    // The line of the firing burn-rate alert sent to `path`, if received.
    let firing = |received: &str, path: &str, severity: &str| {
        received
            .lines()
            .find(|line| {
                // A line the receiver is still writing does not parse yet.
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    return false;
                };
                v["path"] == path
                    && v["notification"]["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|a| {
                            a["status"] == "firing"
                                && a["labels"]["alertname"] == "SloErrorBudgetBurn"
                                && a["labels"]["slo"] == "orders-availability"
                                && a["labels"]["severity"] == severity
                        })
            })
            .map(str::to_string)
    };
    let (page, ticket) = loop {
        for tenant in 0..10 {
            if let Some(code) = place_order(stack.app_port, &format!("tenant-{tenant}")) {
                *codes.entry(code).or_insert(0) += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let received = std::fs::read_to_string(&log).unwrap_or_default();
        // The page, and the ticket (the slower windows burn too).
        let page = firing(&received, "/page", "page");
        let ticket = firing(&received, "/ticket", "ticket");
        if let (Some(page), Some(ticket)) = (page, ticket) {
            break (page, ticket);
        }
        assert!(
            Instant::now() < deadline,
            "no page and ticket within 120 s; answers {codes:?}; the receiver got:\n{received}"
        );
    };
    assert!(codes.get(&502).is_some_and(|n| *n > 0), "{codes:?}");
    assert!(!codes.contains_key(&429), "{codes:?}");
    assert!(page.contains("burning its error budget too fast"), "{page}");
    assert!(
        ticket.contains("burning its error budget too fast"),
        "{ticket}"
    );

    // Follow an exemplar to its trace: the first exemplar's trace id is in
    // the collector's log (the app exports in batches: within 30 s).
    let prometheus: u16 = stack
        .env
        .iter()
        .find(|(k, _)| k == "STACK_PROMETHEUS_PORT")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let collector_log = stack.dir.join("logs/collector.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (trace, spans) = loop {
        let trace = first_exemplar(prometheus);
        let spans = std::fs::read_to_string(&collector_log).unwrap_or_default();
        if let Some(trace) = &trace
            && spans.contains(&format!("Trace ID       : {trace}"))
        {
            break (trace.clone(), spans);
        }
        assert!(
            Instant::now() < deadline,
            "exemplar {trace:?} not traced within 30 s; the collector logged {} bytes",
            spans.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(trace.len(), 32, "{trace}");
    assert!(trace.bytes().all(|b| b.is_ascii_hexdigit()), "{trace}");
    assert!(spans.contains("POST /api/v1/orders"), "no order span");

    let (ok, out) = stack.run("down");
    assert!(ok, "{out}");
    for (part, pid) in &started {
        assert!(!alive(*pid), "{part} (pid {pid}) still runs after down");
    }
    let (_, status) = stack.run("status");
    assert_eq!(status.matches(" down").count(), 5, "{status}");

    // A pid file naming a process `up` did not start (a reused pid: same
    // number, another start time) leaves that process alone.
    // It leads its own process group, as the parts do: only the start
    // time tells it apart.
    let mut other = Command::new("setsid")
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::fs::create_dir_all(stack.dir.join("pids")).unwrap();
    std::fs::write(stack.dir.join("pids/app"), format!("{} 1\n", other.id())).unwrap();
    let (ok, out) = stack.run("down");
    assert!(ok, "{out}");
    assert!(
        alive(other.id() as i32),
        "down stopped a process up did not start"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}
