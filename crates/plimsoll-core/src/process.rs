//! Process metrics read from `/proc` on Linux (nothing elsewhere).

use crate::family::FamilyDecl;
use crate::names::*;
use crate::telemetry::{RegisterError, Telemetry};
use crate::tenant::Tenant;

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, 100 on every
/// Linux architecture Rust targets in practice.
const USER_HZ: f64 = 100.0;

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

/// Declarations of the process metrics.
const CPU: FamilyDecl = FamilyDecl::counter(
    PROCESS_CPU_SECONDS,
    "Total user and system CPU time spent in seconds.",
)
.with_unit("seconds");
const RESIDENT: FamilyDecl =
    FamilyDecl::gauge(PROCESS_RESIDENT_MEMORY, "Resident memory size in bytes.").with_unit("bytes");
const VIRTUAL: FamilyDecl =
    FamilyDecl::gauge(PROCESS_VIRTUAL_MEMORY, "Virtual memory size in bytes.").with_unit("bytes");
const OPEN_FDS: FamilyDecl =
    FamilyDecl::gauge(PROCESS_OPEN_FDS, "Number of open file descriptors.");
const MAX_FDS: FamilyDecl =
    FamilyDecl::gauge(PROCESS_MAX_FDS, "Maximum number of open file descriptors.");
const START_TIME: FamilyDecl = FamilyDecl::gauge(
    PROCESS_START_TIME,
    "Start time of the process since unix epoch in seconds.",
)
.with_unit("seconds");
const THREADS: FamilyDecl =
    FamilyDecl::gauge(PROCESS_THREADS, "Number of OS threads in the process.");

/// The process metrics, as declared (for the catalogue).
pub const PROCESS_FAMILIES: &[FamilyDecl] = &[
    CPU, RESIDENT, VIRTUAL, OPEN_FDS, MAX_FDS, START_TIME, THREADS,
];

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn stat() -> Option<Stat> {
    read("/proc/self/stat").and_then(|s| parse_stat(&s))
}

/// Registers the `process_*` families, read from `/proc` at each scrape
/// under the `__system__` tenant (nothing is written off Linux).
pub(crate) fn register(telemetry: &Telemetry) -> Result<(), RegisterError> {
    fn gauge(
        telemetry: &Telemetry,
        decl: &FamilyDecl,
        value: fn() -> Option<f64>,
    ) -> Result<(), RegisterError> {
        telemetry.declare_scraped::<()>(decl, move |out| {
            if cfg!(target_os = "linux")
                && let Some(v) = value()
            {
                let _ = out.set(&Tenant::system(), &(), v);
            }
        })
    }
    gauge(telemetry, &CPU, || stat().map(|s| s.cpu_seconds))?;
    gauge(telemetry, &RESIDENT, || {
        read("/proc/self/status").and_then(|s| parse_rss(&s))
    })?;
    gauge(telemetry, &VIRTUAL, || stat().map(|s| s.virtual_bytes))?;
    gauge(telemetry, &OPEN_FDS, || {
        std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64)
    })?;
    gauge(telemetry, &MAX_FDS, || {
        read("/proc/self/limits").and_then(|s| parse_max_fds(&s))
    })?;
    gauge(telemetry, &START_TIME, || {
        let boot = read("/proc/stat").and_then(|s| parse_boot_time(&s))?;
        Some(boot + stat()?.start_ticks / USER_HZ)
    })?;
    gauge(telemetry, &THREADS, || stat().map(|s| s.threads))
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
