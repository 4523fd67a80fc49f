//! Helpers for tests that run real tools and servers.
//!
//! Without `PLIMSOLL_REQUIRE_SERVICES=1` a test whose tool is missing says so
//! in one line and skips; with it (as in CI) the test fails instead.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::process::{Command, Stdio};

/// Set by `.ci/run`: a missing server or tool fails the test.
pub const REQUIRE_SERVICES_ENV: &str = "PLIMSOLL_REQUIRE_SERVICES";

pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1")
}

/// Returns whether `tool` can be run; panics when it cannot and services are required.
pub fn available(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if services_required() {
            panic!(
                "{tool} is required ({REQUIRE_SERVICES_ENV}=1) but cannot be run; see scripts/install-services.sh"
            );
        }
        eprintln!("skipping: {tool} not found (run scripts/install-services.sh)");
    }
    ok
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Whether `promtool` is there (skips or panics as above).
pub fn have_promtool() -> bool {
    available("promtool", &["--version"])
}

/// `promtool check metrics` on a Prometheus text 0.0.4 body: Ok, or its complaints.
pub fn promtool_check(body: &str) -> Result<(), String> {
    let (ok, text) = run_with_stdin(Command::new("promtool").args(["check", "metrics"]), body);
    if ok && text.trim().is_empty() {
        Ok(())
    } else {
        Err(text)
    }
}

const OPENMETRICS_CHECK: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(sys.stdin.read()))
print(sum(len(f.samples) for f in families))
"#;

/// Whether python3 with `prometheus_client` is there.
pub fn have_openmetrics_parser() -> bool {
    available(
        "python3",
        &["-c", "import prometheus_client.openmetrics.parser"],
    )
}

/// Parses an OpenMetrics body with the reference parser; Ok(number of samples).
pub fn openmetrics_check(body: &str) -> Result<usize, String> {
    let (ok, text) = run_with_stdin(
        Command::new("python3").args(["-c", OPENMETRICS_CHECK]),
        body,
    );
    if ok {
        text.trim().parse().map_err(|_| text)
    } else {
        Err(text)
    }
}

/// A free loopback port (free when asked; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh, empty directory for one server of this test process.
pub fn scratch_dir(kind: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "plimsoll-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A throwaway `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Option<std::process::Child>,
    /// Its port.
    pub port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RedisServer {
    /// Kills the server (connections to it fail until it starts again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "redis-server is running");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("redis-server did not listen on {}", self.port);
    }
}

/// Starts a `redis-server` on loopback; `None` (after one line saying so)
/// when it is missing and services are not required.
pub fn redis_server() -> Option<RedisServer> {
    if !available("redis-server", &["--version"]) {
        return None;
    }
    let mut server = RedisServer {
        child: None,
        port: free_port(),
    };
    server.start();
    Some(server)
}

/// A throwaway PostgreSQL cluster on a free loopback port, in a temporary
/// directory; stopped and removed on drop.
pub struct PostgresServer {
    dir: std::path::PathBuf,
    /// Its port.
    pub port: u16,
}

impl PostgresServer {
    /// A URL of its `postgres` database, for the `postgres` user (trusted).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// Runs a PostgreSQL tool: as the `postgres` user when running as root
/// (`initdb` refuses root), as the current user otherwise.
fn pg_command(tool: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", tool]);
        cmd
    } else {
        Command::new(tool)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a PostgreSQL cluster on loopback (`initdb` then `pg_ctl start`);
/// `None` (after one line saying so) when PostgreSQL is missing and
/// services are not required.
pub fn postgres_server() -> Option<PostgresServer> {
    if !available("initdb", &["--version"]) || !available("pg_ctl", &["--version"]) {
        return None;
    }
    let dir = scratch_dir("pg");
    // The postgres user owns the cluster when we run as root.
    let _ = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&dir)
        .stderr(Stdio::null())
        .status();
    let port = free_port();
    let server = PostgresServer {
        dir: dir.clone(),
        port,
    };
    let data = dir.join("data");
    let out = pg_command("initdb")
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=50",
        dir.display()
    );
    let out = pg_command("pg_ctl")
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-o", &options, "-w", "start"])
        .output()
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    Some(server)
}

/// A throwaway Prometheus server on a free loopback port, scraping
/// `targets` every second (and evaluating `rules` every second), with
/// exemplar storage on; killed and its data removed on drop.
pub struct PrometheusServer {
    child: std::process::Child,
    dir: std::path::PathBuf,
    /// Its port.
    pub port: u16,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query-string value.
pub fn url_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A plain HTTP/1.1 GET over loopback; the body of the answer.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked answers: keep the JSON between the chunk sizes.
    if answer
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body.as_str();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 || tail.len() < size {
                break;
            }
            out.push_str(&tail[..size]);
            rest = tail[size..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body)
}

impl PrometheusServer {
    /// Runs an instant query; the JSON answer.
    pub fn query(&self, expr: &str) -> Result<String, String> {
        http_get(
            self.port,
            &format!("/api/v1/query?query={}", url_encode(expr)),
        )
    }
}

/// Starts Prometheus; `None` (after one line saying so) when it is missing
/// and services are not required.
pub fn prometheus_server(targets: &[String], rules: Option<&str>) -> Option<PrometheusServer> {
    if !available("prometheus", &["--version"]) {
        return None;
    }
    let dir = scratch_dir("prom");
    let rule_files = match rules {
        Some(rules) => {
            std::fs::write(dir.join("rules.yml"), rules).expect("write rules");
            "rule_files: [rules.yml]\n"
        }
        None => "",
    };
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rule_files}scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--enable-feature=exemplar-storage")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    let server = PrometheusServer { child, dir, port };
    for _ in 0..300 {
        if http_get(port, "/-/ready").is_ok_and(|b| b.contains("Ready")) {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("prometheus did not become ready on {port}");
}

/// A span as the OTLP collector received it.
#[derive(Clone, Debug, Default)]
pub struct CollectedSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, empty for a root span.
    pub parent_id: String,
    pub name: String,
    /// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT` …
    pub kind: String,
    /// Values without their type (`Str(acme)` is `acme`).
    pub attributes: std::collections::BTreeMap<String, String>,
    pub resource: std::collections::BTreeMap<String, String>,
    /// The status lines, as printed (`Status code : STATUS_CODE_ERROR` …).
    pub status: String,
}

/// A throwaway OTLP collector (`rotel-agent`) on free loopback ports,
/// printing every span it receives; killed on drop.
pub struct Collector {
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
    runs: usize,
    /// Whether it prints the spans it receives (off: it only takes them).
    printing: bool,
    /// Its OTLP/gRPC port.
    pub grpc_port: u16,
    /// Its OTLP/HTTP port.
    pub http_port: u16,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `rotel-agent`; `None` (after one line saying so) when it is
/// missing and services are not required.
pub fn otlp_collector() -> Option<Collector> {
    collector(true)
}

/// A collector that takes spans and prints nothing (for benches: printing
/// 100,000 spans a second would take a core).
pub fn quiet_otlp_collector() -> Option<Collector> {
    collector(false)
}

fn collector(printing: bool) -> Option<Collector> {
    if !available("rotel-agent", &["--version"]) {
        return None;
    }
    let mut collector = Collector {
        child: None,
        dir: scratch_dir("rotel"),
        runs: 0,
        printing,
        grpc_port: free_port(),
        http_port: free_port(),
    };
    collector.start();
    Some(collector)
}

impl Collector {
    /// The gRPC endpoint, `http://127.0.0.1:<port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The HTTP traces URL, `http://127.0.0.1:<port>/v1/traces`.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.http_port)
    }

    /// Starts (or restarts) the collector on the same ports.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the collector is running");
        self.runs += 1;
        let out = std::fs::File::create(self.dir.join(format!("spans-{}.log", self.runs)))
            .expect("create the collector's log");
        let child = Command::new("rotel-agent")
            .args([
                "start",
                "--exporter",
                "blackhole",
                "--debug-log",
                if self.printing { "traces" } else { "none" },
                "--debug-log-verbosity",
                "detailed",
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{}", self.grpc_port),
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{}", self.http_port),
                "--pid-file",
                &self.dir.join("rotel.pid").display().to_string(),
                "--log-file",
                &self.dir.join("rotel.log").display().to_string(),
            ])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rotel-agent");
        self.child = Some(child);
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", self.grpc_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_ok()
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("rotel-agent did not listen on {}", self.grpc_port);
    }

    /// Kills the collector (it answers nothing until started again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every span received so far, over every run.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        let mut spans = Vec::new();
        for run in 1..=self.runs {
            let text = std::fs::read_to_string(self.dir.join(format!("spans-{run}.log")))
                .unwrap_or_default();
            spans.extend(parse_collector_log(&text));
        }
        spans
    }

    /// Waits (up to 20 s) until `done` holds for the spans received; them.
    pub fn wait_for(&self, done: impl Fn(&[CollectedSpan]) -> bool) -> Vec<CollectedSpan> {
        for _ in 0..400 {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let spans = self.spans();
        panic!(
            "the collector did not receive the spans awaited; it has {:#?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
}

/// Parses rotel's detailed debug output.
fn parse_collector_log(text: &str) -> Vec<CollectedSpan> {
    #[derive(PartialEq)]
    enum Section {
        Other,
        Resource,
        Span,
    }
    fn value(v: &str) -> String {
        let v = v.trim();
        match (v.find('('), v.ends_with(')')) {
            (Some(open), true) => v[open + 1..v.len() - 1].to_string(),
            _ => v.to_string(),
        }
    }
    let mut spans: Vec<CollectedSpan> = Vec::new();
    let mut resource = std::collections::BTreeMap::new();
    let mut section = Section::Other;
    let mut in_span = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("ResourceSpans #") {
            resource = std::collections::BTreeMap::new();
            in_span = false;
            section = Section::Other;
        } else if trimmed == "Resource attributes:" {
            section = Section::Resource;
        } else if trimmed.starts_with("Span #") {
            spans.push(CollectedSpan {
                resource: resource.clone(),
                ..Default::default()
            });
            in_span = true;
            section = Section::Other;
        } else if trimmed == "Attributes:" && in_span {
            section = Section::Span;
        } else if let Some(kv) = trimmed.strip_prefix("-> ") {
            let Some((k, v)) = kv.split_once(": ") else {
                continue;
            };
            match section {
                Section::Resource => {
                    resource.insert(k.to_string(), value(v));
                }
                Section::Span => {
                    if let Some(span) = spans.last_mut() {
                        span.attributes.insert(k.to_string(), value(v));
                    }
                }
                Section::Other => {}
            }
        } else if let (true, Some((k, v))) = (in_span, trimmed.split_once(':')) {
            let span = spans.last_mut().unwrap();
            let v = v.trim().to_string();
            match k.trim() {
                "Trace ID" => span.trace_id = v,
                "Parent ID" => span.parent_id = v,
                "ID" => span.span_id = v,
                "Name" => span.name = v,
                "Kind" => span.kind = v,
                k if k.starts_with("Status") => {
                    span.status.push_str(trimmed);
                    span.status.push('\n');
                }
                _ => {}
            }
            if !matches!(section, Section::Resource) {
                section = Section::Other;
            }
        }
    }
    spans
}
