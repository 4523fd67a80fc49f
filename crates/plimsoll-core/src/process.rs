//! Process metrics read from `/proc` on Linux (nothing elsewhere).

use crate::collector::{Collector, MetricWriter};
use crate::names::*;
use crate::tenant::Tenant;

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, 100 on every
/// Linux architecture Rust targets in practice.
const USER_HZ: f64 = 100.0;

/// Writes `process_*` metrics under the `__system__` tenant.
#[derive(Debug, Default)]
pub(crate) struct ProcessCollector;

#[derive(Debug, Default, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: f64,
    start_ticks: f64,
    virtual_bytes: f64,
}

/// Parses `/proc/self/stat`; fields are counted after the `)` that closes
/// the command name (which may itself hold spaces or parentheses).
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); field N is at index N - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / USER_HZ,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
    })
}

/// `VmRSS:   1234 kB` → bytes.
fn parse_rss(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// `Max open files   1024   4096   files` → the soft limit.
fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(f64::INFINITY);
    }
    soft.parse().ok()
}

fn parse_boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn collect(&self, out: &mut MetricWriter<'_, '_>) {
        if !cfg!(target_os = "linux") {
            return;
        }
        let system = Tenant::system();
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").and_then(|s| parse_stat(&s));
        if let Some(stat) = &stat {
            out.counter(
                PROCESS_CPU_SECONDS,
                "Total user and system CPU time spent in seconds.",
            )
            .sample(&system, &[], stat.cpu_seconds);
        }
        if let Some(rss) = read("/proc/self/status").and_then(|s| parse_rss(&s)) {
            out.gauge(PROCESS_RESIDENT_MEMORY, "Resident memory size in bytes.")
                .sample(&system, &[], rss);
        }
        if let Some(stat) = &stat {
            out.gauge(PROCESS_VIRTUAL_MEMORY, "Virtual memory size in bytes.")
                .sample(&system, &[], stat.virtual_bytes);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            out.gauge(PROCESS_OPEN_FDS, "Number of open file descriptors.")
                .sample(&system, &[], dir.count() as f64);
        }
        if let Some(max) = read("/proc/self/limits").and_then(|s| parse_max_fds(&s)) {
            out.gauge(PROCESS_MAX_FDS, "Maximum number of open file descriptors.")
                .sample(&system, &[], max);
        }
        if let Some(stat) = &stat {
            if let Some(boot) = read("/proc/stat").and_then(|s| parse_boot_time(&s)) {
                out.gauge(
                    PROCESS_START_TIME,
                    "Start time of the process since unix epoch in seconds.",
                )
                .sample(&system, &[], boot + stat.start_ticks / USER_HZ);
            }
            out.gauge(PROCESS_THREADS, "Number of OS threads in the process.")
                .sample(&system, &[], stat.threads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1209 0 0 0 250 50 0 0 20 0 7 0 123456 987654321 2345 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                cpu_seconds: 3.0,
                threads: 7.0,
                start_ticks: 123456.0,
                virtual_bytes: 987654321.0,
            })
        );
        assert_eq!(
            parse_rss("Name:\tx\nVmRSS:\t   2048 kB\n"),
            Some(2048.0 * 1024.0)
        );
        assert_eq!(
            parse_max_fds(
                "Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 524288               files\n"
            ),
            Some(1024.0)
        );
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
        assert_eq!(parse_stat("garbage"), None);
    }
}
