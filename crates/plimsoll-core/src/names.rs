//! Metric names, label names, reserved label values and HELP texts.
//!
//! Names are a contract: dashboards and alert rules depend on them. Every name
//! that plimsoll itself emits is a constant here, with its HELP text beside it.

/// The label every series carries.
pub const TENANT_LABEL: &str = "tenant_id";

/// Reserved tenant: no tenant could be resolved (or the value failed validation).
pub const UNKNOWN: &str = "__unknown__";
/// Reserved tenant: the series belongs to no tenant (process, pools, plimsoll itself).
pub const SYSTEM: &str = "__system__";
/// Reserved value: a bound was reached; the observation is recorded under this value.
pub const OTHER: &str = "__other__";
/// Reserved route: no route matched. The raw path is never a label.
pub const UNMATCHED: &str = "__unmatched__";

/// The suffixes of every sample name a family of a given name may write,
/// whatever its type (the reference OpenMetrics parser's rule for names
/// that clash): a family `jobs` takes `jobs`, `jobs_total`, `jobs_created`,
/// `jobs_bucket`, `jobs_count` and `jobs_sum`.
const SAMPLE_SUFFIXES: [&str; 6] = ["", "_total", "_created", "_bucket", "_count", "_sum"];

/// The sample names a family named `name` (counters without `_total`) may
/// write: `name` with each of [`SAMPLE_SUFFIXES`].
pub(crate) fn sample_names(name: &str) -> [String; 6] {
    SAMPLE_SUFFIXES.map(|suffix| format!("{name}{suffix}"))
}

/// Counter of observations recorded under [`OTHER`] because a bound was reached.
pub const CARDINALITY_OVERFLOW: &str = "plimsoll_cardinality_overflow_total";
/// HELP of [`CARDINALITY_OVERFLOW`].
pub const CARDINALITY_OVERFLOW_HELP: &str =
    "Observations recorded under the overflow value because a cardinality bound was reached.";
/// Label of [`CARDINALITY_OVERFLOW`]: the metric whose bound was reached.
pub const METRIC_LABEL: &str = "metric";
/// Label of [`CARDINALITY_OVERFLOW`]: the label (or comma-joined labels) that overflowed.
pub const LABEL_LABEL: &str = "label";

/// Gauge set to 1 whose labels describe the running build.
pub const BUILD_INFO: &str = "build_info";
/// HELP of [`BUILD_INFO`].
pub const BUILD_INFO_HELP: &str = "Build information of the running service; always 1.";

/// Total user and system CPU time spent, in seconds.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Resident memory size, in bytes.
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Virtual memory size, in bytes.
pub const PROCESS_VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
/// Number of open file descriptors.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// Maximum number of open file descriptors.
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Start time of the process since the Unix epoch, in seconds.
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";
/// Number of OS threads in the process.
pub const PROCESS_THREADS: &str = "process_threads";
