//! `plimsoll`: Prometheus rules, Grafana dashboards and checks from an SLO
//! file (plimsoll's YAML, or Sloth's `prometheus/v1`).
//!
//! Exit codes: 0 done; 1 the command line is wrong; 2 the SLO file is
//! invalid (the message names the field); 3 the file cannot be read.

use std::process::ExitCode;

use plimsoll_slo::{ServiceAlerts, all_groups, dashboard, parse_file, prometheus_rule, rules_file};

const USAGE: &str = "plimsoll: SLO rules, dashboards and checks

Usage:
  plimsoll rules --slo FILE [--format rules|prometheus-rule] [--name NAME] [--no-service-alerts]
  plimsoll dashboard --slo FILE [--title TITLE]
  plimsoll check FILE
  plimsoll <command> --help

FILE is plimsoll's SLO YAML (version: plimsoll/v1) or Sloth's (version: prometheus/v1).
Output goes to stdout; errors to stderr.
Exit codes: 0 done, 1 wrong command line, 2 invalid SLO file, 3 unreadable file.
";

const RULES_HELP: &str =
    "plimsoll rules --slo FILE [--format rules|prometheus-rule] [--name NAME] [--no-service-alerts]

Writes the Prometheus rules of every SLO in FILE: the error ratio recorded
over each window, the error budget left, multi-window multi-burn-rate
alerts, and the standard service alerts (unless --no-service-alerts).
  --format rules            a rules file for rule_files: (default)
  --format prometheus-rule  a Kubernetes PrometheusRule named NAME (default: slos)
";

const DASHBOARD_HELP: &str = "plimsoll dashboard --slo FILE [--title TITLE]

Writes a Grafana dashboard (JSON) for the SLOs in FILE: RED by route, a
per-tenant breakdown, each SLO's compliance, budget and burn rate, the data
layer and resilience. The datasource is a variable. TITLE defaults to the
service's name.
";

const CHECK_HELP: &str = "plimsoll check FILE

Checks every SLO in FILE; prints one line per SLO, or the first error with
the field it is about.
";

/// A failure and its exit code.
struct Failure(u8, String);

fn usage(message: &str) -> Failure {
    Failure(1, format!("{message}\n\n{USAGE}"))
}

/// The value after `flag`, if given.
fn option(args: &[String], flag: &str) -> Result<Option<String>, Failure> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .filter(|v| !v.starts_with("--"))
            .cloned()
            .map(Some)
            .ok_or_else(|| usage(&format!("{flag} needs a value"))),
    }
}

fn known(args: &[String], flags: &[&str], switches: &[&str]) -> Result<(), Failure> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if flags.contains(&a) {
            i += 2;
        } else if switches.contains(&a) {
            i += 1;
        } else {
            return Err(usage(&format!("unknown argument {a:?}")));
        }
    }
    Ok(())
}

fn read_slos(path: &str) -> Result<Vec<plimsoll_slo::Slo>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(3, format!("{path}: cannot read: {e}")))?;
    parse_file(&text).map_err(|e| Failure(2, format!("{path}: {e}")))
}

fn run(args: &[String]) -> Result<String, Failure> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("a command is needed"));
    };
    let help = rest.iter().any(|a| a == "--help" || a == "-h");
    match command.as_str() {
        "--help" | "-h" | "help" => Ok(USAGE.to_string()),
        "rules" if help => Ok(RULES_HELP.to_string()),
        "dashboard" if help => Ok(DASHBOARD_HELP.to_string()),
        "check" if help => Ok(CHECK_HELP.to_string()),
        "rules" => {
            known(
                rest,
                &["--slo", "--format", "--name"],
                &["--no-service-alerts"],
            )?;
            let path =
                option(rest, "--slo")?.ok_or_else(|| usage("rules: --slo FILE is needed"))?;
            let slos = read_slos(&path)?;
            let mut groups = all_groups(&slos, &ServiceAlerts::default());
            if rest.iter().any(|a| a == "--no-service-alerts") {
                groups.pop();
            }
            match option(rest, "--format")?.as_deref().unwrap_or("rules") {
                "rules" => Ok(rules_file(&groups)),
                "prometheus-rule" => {
                    let name = option(rest, "--name")?.unwrap_or_else(|| "slos".into());
                    // A Kubernetes object name (DNS-1123 subdomain).
                    let valid = !name.is_empty()
                        && name.len() <= 253
                        && name.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                        })
                        && name.as_bytes()[0].is_ascii_alphanumeric()
                        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
                    if !valid {
                        return Err(usage(&format!(
                            "--name: {name:?} is not a Kubernetes name (lower-case letters, digits, '-' and '.')"
                        )));
                    }
                    Ok(prometheus_rule(&name, &groups))
                }
                other => Err(usage(&format!(
                    "--format: {other:?} is neither rules nor prometheus-rule"
                ))),
            }
        }
        "dashboard" => {
            known(rest, &["--slo", "--title"], &[])?;
            let path =
                option(rest, "--slo")?.ok_or_else(|| usage("dashboard: --slo FILE is needed"))?;
            let slos = read_slos(&path)?;
            let title = option(rest, "--title")?.unwrap_or_else(|| {
                slos.first()
                    .map_or_else(|| "SLOs".to_string(), |s| s.service().to_string())
            });
            Ok(format!("{}\n", dashboard(&title, &slos)))
        }
        "check" => {
            let [path] = rest else {
                return Err(usage("check: one FILE is needed"));
            };
            let slos = read_slos(path)?;
            Ok(slos.iter().map(|s| format!("ok  {s}\n")).collect())
        }
        other => Err(usage(&format!("unknown command {other:?}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            use std::io::Write;
            // A reader that stops early (`| head`) is no failure.
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(Failure(code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}
