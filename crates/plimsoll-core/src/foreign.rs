//! Foreign registries: a prometheus-client [`Registry`] exposed through
//! plimsoll's `/metrics` (see
//! [`Telemetry::register_prometheus_client`](crate::Telemetry::register_prometheus_client)).
//!
//! At every scrape the registry is encoded by prometheus-client's own
//! OpenMetrics text encoder, and that text is rewritten family by family into
//! the format the scraper asked for:
//!
//! - Every sample gets `tenant_id="__system__"` first and plimsoll's constant
//!   labels last, as plimsoll writes its own series: foreign metrics belong to
//!   no tenant. As in plimsoll's histograms, `le` stays the very last label of
//!   a bucket.
//! - A foreign label named `tenant_id`, or named like a constant label, is
//!   renamed `exported_<name>` (with one more `exported_` while that name is
//!   taken too), as Prometheus renames a scraped label that clashes with a
//!   target label. Its value is kept.
//! - Names get no plimsoll prefix: they are the other library's names, and the
//!   dashboards and alerts written for it query them as it spells them
//!   (prometheus-client has `Registry::with_prefix` for a prefix of its own).
//! - OpenMetrics keeps `# HELP`, `# TYPE`, `# UNIT`, exemplars and `_created`
//!   samples; the registry's `# EOF` is dropped and plimsoll writes the one at
//!   the very end.
//! - Prometheus text 0.0.4 has no `# UNIT`, no `_created` samples and no
//!   exemplars: they are dropped. A counter's `# HELP`/`# TYPE` lines name its
//!   `_total` sample. Types that 0.0.4 lacks are mapped so that Prometheus
//!   stores the same series names from either format and `promtool check
//!   metrics` accepts them: `info` is a gauge named by its `_info` sample,
//!   `stateset` a gauge, `unknown` is `untyped`, and a `gaugehistogram` is
//!   three families: `<name>_bucket` untyped (promtool refuses a gauge with a
//!   `_bucket` suffix or an `le` label), `<name>_gcount` and `<name>_gsum`
//!   gauges. HELP text is escaped as each format requires (0.0.4: `\\` and
//!   `\n` only).
//!
//! Two families of one exposition must not share a family or sample name (the
//! reference OpenMetrics parser's "clashing name" rule, applied to both
//! formats alike). A plimsoll family takes its name with the prefix and every
//! sample name a family of that name can have (`_total`, `_created`,
//! `_bucket`, `_count`, `_sum`), whatever its type: both orders of
//! registration then agree, and promtool's lint refuses a non-histogram
//! ending in `_bucket`, `_count` or `_sum` anyway.
//!
//! Registration refuses a registry with a family that clashes with plimsoll's
//! families (build info and the overflow counter included), with an earlier
//! registry's, or with another of its own; plimsoll then refuses a family of
//! its own, registered later, that clashes with a family a registry writes or
//! has written. prometheus-client writes nothing of a family with labels (a
//! `Family`) until its first series, and a collector writes what it likes at
//! each scrape: a foreign family seen first at a scrape that clashes is left
//! out of it and plimsoll's is kept, with a `tracing` warning the first time
//! (target `plimsoll`), as for a family that does not read.
//!
//! The text is read as prometheus-client 0.25 writes it: `# HELP` first, its
//! text raw (a newline in it continues on the next lines, up to the `# TYPE`
//! line that always follows), then `# TYPE`, `# UNIT`, and the samples. A
//! family that does not read as such (a name or label name that is not valid,
//! a sample that its type does not allow) is refused at registration and left
//! out at scrapes. If prometheus-client fails to encode (a native-only
//! histogram has no text form, a collector returned an error), the lines
//! written before the failure are used.

use std::borrow::Cow;
use std::collections::HashSet;
use std::iter::Peekable;
use std::str::Lines;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use prometheus_client::registry::Registry;

use crate::encoding::{Encoder, Format};
use crate::names;
use crate::telemetry::{RegisterError, valid_label_name, valid_metric_name};

/// Suffixes of every sample name a plimsoll family may take.
const PLIMSOLL_SUFFIXES: &[&str] = &["", "_total", "_created", "_bucket", "_count", "_sum"];

/// Families left out of scrapes are warned about once each, up to this many.
const MAX_WARNED: usize = 256;

/// The prometheus-client registries of one `Telemetry`.
#[derive(Debug, Default)]
pub(crate) struct Foreign {
    registries: RwLock<Vec<Registered>>,
    /// Families warned about already.
    warned: Mutex<HashSet<String>>,
}

#[derive(Debug)]
struct Registered {
    registry: Registry,
    /// The names its families have taken so far. prometheus-client writes
    /// nothing of a family with labels until its first series, so names
    /// are added each time the registry is checked, and kept.
    names: Mutex<Names>,
    /// Whether a failure to encode it was warned about.
    failure_warned: AtomicBool,
}

impl Registered {
    /// Its names so far, with those of the families it writes now.
    fn names(&self) -> MutexGuard<'_, Names> {
        let mut text = String::new();
        let _ = encode_text(&self.registry, &mut text);
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        for family in Families::new(&text).flatten() {
            names.insert(family.name, family.kind);
        }
        names
    }
}

/// A registry whose text was read and checked on its own, to be checked
/// against plimsoll's families next.
#[derive(Debug)]
pub(crate) struct Candidate {
    registry: Registry,
    families: Vec<(String, Type)>,
}

impl Candidate {
    /// Encodes `registry` and reads its families: their names must be valid
    /// and must not clash with each other.
    pub(crate) fn new(registry: Registry) -> Result<Self, RegisterError> {
        let mut text = String::new();
        // On a failure, the families written before it are checked.
        let _ = encode_text(&registry, &mut text);
        let mut names = Names::default();
        let mut families = Vec::new();
        for family in Families::new(&text) {
            let family = family.map_err(RegisterError::from)?;
            if names.clashes(family.name, family.kind) {
                return Err(RegisterError::Conflict(family.name.to_string()));
            }
            names.insert(family.name, family.kind);
            families.push((family.name.to_string(), family.kind));
        }
        Ok(Self { registry, families })
    }
}

impl Foreign {
    /// Adds `candidate` unless one of its families clashes with plimsoll's
    /// (named without `prefix`; the overflow counter is added here) or with
    /// an earlier registry's.
    pub(crate) fn add<'a>(
        &self,
        candidate: Candidate,
        prefix: &str,
        plimsoll: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), RegisterError> {
        let mut taken = Names::default();
        for name in plimsoll {
            taken.insert_plimsoll(&format!("{prefix}{name}"));
        }
        taken.insert_overflow(prefix);
        let mut registries = self.registries.write().unwrap_or_else(|e| e.into_inner());
        for registered in registries.iter() {
            taken.0.extend(registered.names().0.iter().cloned());
        }
        let mut names = Names::default();
        for (name, kind) in &candidate.families {
            if taken.clashes(name, *kind) {
                return Err(RegisterError::Conflict(name.clone()));
            }
            names.insert(name, *kind);
        }
        registries.push(Registered {
            registry: candidate.registry,
            names: Mutex::new(names),
            failure_warned: AtomicBool::new(false),
        });
        Ok(())
    }

    /// Whether a plimsoll family `name` (without `prefix`, without `_total`)
    /// clashes with a registered registry's family.
    pub(crate) fn clashes(&self, prefix: &str, name: &str) -> bool {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        let reserved: Vec<String> = PLIMSOLL_SUFFIXES
            .iter()
            .map(|suffix| format!("{prefix}{name}{suffix}"))
            .collect();
        registries.iter().any(|registered| {
            let names = registered.names();
            reserved.iter().any(|n| names.0.contains(n))
        })
    }

    /// Writes every registry's families, rewritten, after what `enc` holds;
    /// a family whose names are taken already is left out.
    pub(crate) fn encode(&self, enc: &mut Encoder<'_>) {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        if registries.is_empty() {
            return;
        }
        let mut taken = Names::default();
        taken.scan(enc.out, enc.format);
        // Written after the foreign families, and only once a bound is hit.
        taken.insert_overflow(enc.prefix);
        let consts = ConstLabels::new(enc.const_labels);
        let mut text = String::new();
        for registered in registries.iter() {
            text.clear();
            if !encode_text(&registered.registry, &mut text)
                && !registered.failure_warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    target: "plimsoll",
                    "prometheus-client failed to encode a registered registry (a native-only \
                     histogram, or a collector's error); the families written before the \
                     failure are exposed, the rest is left out"
                );
            }
            for skipped in rewrite(&text, enc.out, enc.format, &consts, &mut taken) {
                self.warn(&skipped);
            }
        }
    }

    /// Warns about a family left out, the first time.
    #[cold]
    fn warn(&self, skipped: &Skipped) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let name = match skipped {
            Skipped::Clash(name) => name.as_str(),
            Skipped::Unreadable(problem) => problem.name(),
        };
        if warned.len() >= MAX_WARNED || !warned.insert(name.to_string()) {
            return;
        }
        match skipped {
            Skipped::Clash(name) => tracing::warn!(
                target: "plimsoll",
                metric = name.as_str(),
                "a prometheus-client family clashes with a family exposed before it; \
                 it is left out of the scrape"
            ),
            Skipped::Unreadable(problem) => tracing::warn!(
                target: "plimsoll",
                metric = problem.name(),
                "a prometheus-client family cannot be exposed ({problem}); it is left out \
                 of the scrape"
            ),
        }
    }
}

/// prometheus-client's OpenMetrics text of `registry`, without `# EOF`, and
/// whether it encoded; on a failure, the complete lines written before it.
fn encode_text(registry: &Registry, text: &mut String) -> bool {
    let encoded = prometheus_client::encoding::text::encode_registry(text, registry).is_ok();
    if !encoded {
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    }
    encoded
}

/// A family left out of a scrape.
#[derive(Debug, PartialEq, Eq)]
enum Skipped {
    /// Its name or a sample name is taken.
    Clash(String),
    /// It does not read.
    Unreadable(Problem),
}

/// Rewrites the families of `text` into `out` in `format`, leaving out (and
/// returning) those that do not read or whose names are `taken`; takes the
/// names of those written.
fn rewrite(
    text: &str,
    out: &mut String,
    format: Format,
    consts: &ConstLabels<'_>,
    taken: &mut Names,
) -> Vec<Skipped> {
    let mut skipped = Vec::new();
    for family in Families::new(text) {
        let family = match family {
            Ok(family) => family,
            Err(problem) => {
                skipped.push(Skipped::Unreadable(problem));
                continue;
            }
        };
        if taken.clashes(family.name, family.kind) {
            skipped.push(Skipped::Clash(family.name.to_string()));
            continue;
        }
        taken.insert(family.name, family.kind);
        match format {
            Format::OpenMetrics => write_openmetrics(out, &family, consts),
            Format::Prometheus => write_prometheus(out, &family, consts),
        }
    }
    skipped
}

/// A metric type, as OpenMetrics names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl Type {
    /// Reads an OpenMetrics type, or 0.0.4's `untyped`.
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "counter" => Type::Counter,
            "gauge" => Type::Gauge,
            "histogram" => Type::Histogram,
            "gaugehistogram" => Type::GaugeHistogram,
            "summary" => Type::Summary,
            "info" => Type::Info,
            "stateset" => Type::StateSet,
            "unknown" | "untyped" => Type::Unknown,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
            Type::GaugeHistogram => "gaugehistogram",
            Type::Summary => "summary",
            Type::Info => "info",
            Type::StateSet => "stateset",
            Type::Unknown => "unknown",
        }
    }

    /// What its sample names add to the family name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Type::Counter => &["_total", "_created"],
            Type::Histogram => &["_bucket", "_count", "_sum", "_created"],
            Type::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            Type::Summary => &["", "_count", "_sum", "_created"],
            Type::Info => &["_info"],
            Type::Gauge | Type::StateSet | Type::Unknown => &[""],
        }
    }
}

/// The family and sample names taken in one exposition. A family clashes
/// when its name or one of its sample names is taken (as the reference
/// OpenMetrics parser checks; in 0.0.4 every family name is one of these).
#[derive(Debug, Default)]
struct Names(HashSet<String>);

impl Names {
    fn reserved(name: &str, kind: Type) -> impl Iterator<Item = String> + '_ {
        std::iter::once("")
            .chain(kind.suffixes().iter().copied())
            .map(move |suffix| format!("{name}{suffix}"))
    }

    fn clashes(&self, name: &str, kind: Type) -> bool {
        Self::reserved(name, kind).any(|n| self.0.contains(&n))
    }

    fn insert(&mut self, name: &str, kind: Type) {
        self.0.extend(Self::reserved(name, kind));
    }

    /// A plimsoll family `name` (with prefix, without `_total`), whatever its type.
    fn insert_plimsoll(&mut self, name: &str) {
        self.0.extend(
            PLIMSOLL_SUFFIXES
                .iter()
                .map(|suffix| format!("{name}{suffix}")),
        );
    }

    /// `plimsoll_cardinality_overflow_total`, with `prefix`.
    fn insert_overflow(&mut self, prefix: &str) {
        let base = names::CARDINALITY_OVERFLOW
            .strip_suffix("_total")
            .unwrap_or(names::CARDINALITY_OVERFLOW);
        self.insert(&format!("{prefix}{base}"), Type::Counter);
    }

    /// Takes the families of an exposition by its `# TYPE` lines.
    fn scan(&mut self, body: &str, format: Format) {
        for line in body.lines() {
            let Some((name, kind)) = line
                .strip_prefix("# TYPE ")
                .and_then(|rest| rest.rsplit_once(' '))
            else {
                continue;
            };
            let Some(kind) = Type::parse(kind) else {
                continue;
            };
            let name = match (format, kind) {
                (Format::Prometheus, Type::Counter) => name.strip_suffix("_total").unwrap_or(name),
                _ => name,
            };
            self.insert(name, kind);
        }
    }
}

/// Why a family cannot be exposed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum Problem {
    /// The family name is not a valid metric name.
    #[error("metric name {0:?} is invalid")]
    InvalidName(String),
    /// A label name is not valid.
    #[error("metric {metric:?}: label name {label:?} is invalid")]
    InvalidLabelName { metric: String, label: String },
    /// A label name appears twice in one sample.
    #[error("metric {metric:?}: label {label:?} appears twice")]
    DuplicateLabel { metric: String, label: String },
    /// A sample its family's type does not allow (named here), or a line
    /// that does not read as OpenMetrics.
    #[error("{0:?} does not fit its family's type, or is not OpenMetrics")]
    Stray(String),
}

impl Problem {
    /// The metric or sample it is about.
    fn name(&self) -> &str {
        match self {
            Problem::InvalidName(name) | Problem::Stray(name) => name,
            Problem::InvalidLabelName { metric, .. } | Problem::DuplicateLabel { metric, .. } => {
                metric
            }
        }
    }
}

impl From<Problem> for RegisterError {
    fn from(problem: Problem) -> Self {
        match problem {
            Problem::InvalidName(name) => RegisterError::InvalidName(name),
            Problem::InvalidLabelName { metric, label } => {
                RegisterError::InvalidLabelName { metric, label }
            }
            Problem::DuplicateLabel { metric, label } => {
                RegisterError::DuplicateLabel { metric, label }
            }
            Problem::Stray(name) => RegisterError::Conflict(name),
        }
    }
}

/// One family of prometheus-client's text.
#[derive(Debug)]
struct Family<'a> {
    name: &'a str,
    kind: Type,
    /// Unescaped: prometheus-client writes HELP text as given.
    help: Option<Cow<'a, str>>,
    unit: Option<&'a str>,
    samples: Vec<Sample<'a>>,
}

/// One sample line.
#[derive(Debug)]
struct Sample<'a> {
    name: &'a str,
    /// Between the braces: `name="escaped value"`, comma-separated, checked.
    labels: &'a str,
    /// As written, but `+Inf`, `-Inf` and `NaN` spelt so.
    value: &'a str,
    /// As written (seconds) and in seconds.
    timestamp: Option<(&'a str, f64)>,
    /// What follows ` # `: `{labels} value [timestamp]`.
    exemplar: Option<&'a str>,
}

impl Sample<'_> {
    /// What the sample name adds to the family name `family`.
    fn suffix(&self, family: &str) -> &str {
        self.name.strip_prefix(family).unwrap_or(self.name)
    }
}

/// Reads prometheus-client's text family by family.
struct Families<'a> {
    lines: Peekable<Lines<'a>>,
}

impl<'a> Families<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().peekable(),
        }
    }

    /// Reads the family that starts at `first`, to its last line whatever
    /// goes wrong, so that the next one starts clean.
    fn family(&mut self, first: &'a str) -> Result<Family<'a>, Problem> {
        let mut line = first;
        let mut help = None;
        if let Some(rest) = first.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut text = Cow::Borrowed(text);
            while let Some(more) = self.lines.next_if(|l| !l.starts_with("# TYPE ")) {
                let text = text.to_mut();
                text.push('\n');
                text.push_str(more);
            }
            help = Some((name, text));
            line = self
                .lines
                .next()
                .ok_or_else(|| Problem::Stray(name.to_string()))?;
        }
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            self.skip_samples();
            let name = line.split(['{', ' ']).next().unwrap_or(line);
            return Err(Problem::Stray(name.to_string()));
        };
        let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, ""));
        let mut problem = if !valid_metric_name(name) {
            Some(Problem::InvalidName(name.to_string()))
        } else if help.as_ref().is_some_and(|(h, _)| *h != name) {
            Some(Problem::Stray(name.to_string()))
        } else {
            None
        };
        let kind = Type::parse(kind).unwrap_or_else(|| {
            problem.get_or_insert_with(|| Problem::Stray(name.to_string()));
            Type::Unknown
        });
        let mut unit = None;
        if let Some(line) = self.lines.next_if(|l| l.starts_with("# UNIT ")) {
            match line.strip_prefix("# UNIT ").and_then(|r| r.split_once(' ')) {
                Some((n, u)) if n == name => unit = Some(u),
                _ => {
                    problem.get_or_insert_with(|| Problem::Stray(name.to_string()));
                }
            }
        }
        let mut samples = Vec::new();
        while let Some(line) = self.lines.next_if(|l| !l.starts_with('#')) {
            if line.is_empty() {
                continue;
            }
            match parse_sample(line, name) {
                Ok(sample) if kind.suffixes().contains(&sample.suffix(name)) => {
                    samples.push(sample)
                }
                Ok(sample) => {
                    problem.get_or_insert_with(|| Problem::Stray(sample.name.to_string()));
                }
                Err(p) => {
                    problem.get_or_insert(p);
                }
            }
        }
        match problem {
            Some(problem) => Err(problem),
            None => Ok(Family {
                name,
                kind,
                help: help.map(|(_, text)| text),
                unit,
                samples,
            }),
        }
    }

    fn skip_samples(&mut self) {
        while self.lines.next_if(|l| !l.starts_with('#')).is_some() {}
    }
}

impl<'a> Iterator for Families<'a> {
    type Item = Result<Family<'a>, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            if !line.is_empty() && line != "# EOF" {
                return Some(self.family(line));
            }
        }
    }
}

/// Reads `name{labels} value [timestamp] [# exemplar]` of family `family`.
fn parse_sample<'a>(line: &'a str, family: &str) -> Result<Sample<'a>, Problem> {
    let stray = || Problem::Stray(family.to_string());
    let end = line.find(['{', ' ']).ok_or_else(stray)?;
    let (name, mut rest) = line.split_at(end);
    let mut labels = "";
    if let Some(inner) = rest.strip_prefix('{') {
        let len = label_set_len(inner, family)?;
        labels = &inner[..len];
        rest = &inner[len + 1..];
    }
    let rest = rest.strip_prefix(' ').ok_or_else(stray)?;
    let (head, exemplar) = match rest.split_once(" # ") {
        Some((head, exemplar)) => (head, Some(exemplar)),
        None => (rest, None),
    };
    let (value, timestamp) = match head.split_once(' ') {
        Some((value, ts)) => (value, Some((ts, ts.parse::<f64>().map_err(|_| stray())?))),
        None => (head, None),
    };
    let parsed = value.parse::<f64>().map_err(|_| stray())?;
    let value = if parsed.is_nan() {
        "NaN"
    } else if parsed == f64::INFINITY {
        "+Inf"
    } else if parsed == f64::NEG_INFINITY {
        "-Inf"
    } else {
        value
    };
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
        exemplar,
    })
}

/// The length of the label set that `s` starts with, up to (without) its
/// closing brace; label names checked.
fn label_set_len(s: &str, metric: &str) -> Result<usize, Problem> {
    if s.starts_with('}') {
        return Ok(0);
    }
    let mut rest = s;
    loop {
        let (name, _, after) =
            split_label(rest).ok_or_else(|| Problem::Stray(metric.to_string()))?;
        if !valid_label_name(name) {
            return Err(Problem::InvalidLabelName {
                metric: metric.to_string(),
                label: name.to_string(),
            });
        }
        let seen = &s[..s.len() - rest.len()];
        if labels(seen).any(|(n, _)| n == name) {
            return Err(Problem::DuplicateLabel {
                metric: metric.to_string(),
                label: name.to_string(),
            });
        }
        if let Some(after) = after.strip_prefix(',') {
            rest = after;
        } else if after.starts_with('}') {
            return Ok(s.len() - after.len());
        } else {
            return Err(Problem::Stray(metric.to_string()));
        }
    }
}

/// Splits `name="value"` off the front of `s`: name, value (escaped, as
/// written) and the rest.
fn split_label(s: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = s.split_once("=\"")?;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some((name, &rest[..i], &rest[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// The labels of a checked label set (without braces).
fn labels(set: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = set;
    std::iter::from_fn(move || {
        let (name, value, after) = split_label(rest)?;
        rest = after.strip_prefix(',').unwrap_or(after);
        Some((name, value))
    })
}

/// Plimsoll's constant labels: rendered (`,name="value"…`) and their names.
#[derive(Debug)]
struct ConstLabels<'a> {
    rendered: &'a str,
    names: Vec<&'a str>,
}

impl<'a> ConstLabels<'a> {
    fn new(rendered: &'a str) -> Self {
        let set = rendered.strip_prefix(',').unwrap_or(rendered);
        Self {
            rendered,
            names: labels(set).map(|(name, _)| name).collect(),
        }
    }

    /// Whether a foreign label `name` must be renamed.
    fn reserves(&self, name: &str) -> bool {
        name == names::TENANT_LABEL || self.names.contains(&name)
    }
}

fn write_openmetrics(out: &mut String, family: &Family<'_>, consts: &ConstLabels<'_>) {
    let format = Format::OpenMetrics;
    write_header(out, family, "", family.kind.as_str(), format);
    if let Some(unit) = family.unit {
        for part in ["# UNIT ", family.name, " ", unit, "\n"] {
            out.push_str(part);
        }
    }
    let unsummed = unsummed(family);
    for sample in &family.samples {
        let suffix = sample.suffix(family.name);
        if (suffix == "_sum" || suffix == "_count") && unsummed.contains(&sample.labels) {
            continue;
        }
        write_sample(out, family, sample, consts, format);
    }
}

/// The label sets of a histogram's series that OpenMetrics allows no `_sum`
/// (and so no `_count`): those whose sum is negative or NaN, and all of them
/// when a bucket bound is negative. Their `+Inf` bucket is the count.
fn unsummed<'a>(family: &Family<'a>) -> Vec<&'a str> {
    if family.kind != Type::Histogram {
        return Vec::new();
    }
    let negative_bound = family.samples.iter().any(|s| {
        s.suffix(family.name) == "_bucket"
            && labels(s.labels).any(|(n, v)| n == "le" && v.parse::<f64>().is_ok_and(|b| b < 0.0))
    });
    family
        .samples
        .iter()
        .filter(|s| {
            s.suffix(family.name) == "_sum"
                && (negative_bound || !s.value.parse::<f64>().is_ok_and(|sum| sum >= 0.0))
        })
        .map(|s| s.labels)
        .collect()
}

fn write_prometheus(out: &mut String, family: &Family<'_>, consts: &ConstLabels<'_>) {
    let format = Format::Prometheus;
    let (suffix, kind) = match family.kind {
        Type::Counter => ("_total", "counter"),
        Type::Gauge | Type::StateSet => ("", "gauge"),
        Type::Histogram => ("", "histogram"),
        Type::Summary => ("", "summary"),
        Type::Info => ("_info", "gauge"),
        Type::Unknown => ("", "untyped"),
        Type::GaugeHistogram => {
            for (suffix, kind) in [
                ("_bucket", "untyped"),
                ("_gcount", "gauge"),
                ("_gsum", "gauge"),
            ] {
                write_header(out, family, suffix, kind, format);
                for sample in family
                    .samples
                    .iter()
                    .filter(|s| s.suffix(family.name) == suffix)
                {
                    write_sample(out, family, sample, consts, format);
                }
            }
            return;
        }
    };
    write_header(out, family, suffix, kind, format);
    for sample in &family.samples {
        if sample.suffix(family.name) != "_created" {
            write_sample(out, family, sample, consts, format);
        }
    }
}

/// `# HELP` (when the family has help) and `# TYPE` of `family` + `suffix`.
fn write_header(out: &mut String, family: &Family<'_>, suffix: &str, kind: &str, format: Format) {
    if let Some(help) = &family.help {
        for part in ["# HELP ", family.name, suffix, " "] {
            out.push_str(part);
        }
        crate::encoding::write_help(out, help, format);
        out.push('\n');
    }
    for part in ["# TYPE ", family.name, suffix, " ", kind, "\n"] {
        out.push_str(part);
    }
}

/// `name{tenant_id="__system__",their labels,const labels[,le]} value…`.
fn write_sample(
    out: &mut String,
    family: &Family<'_>,
    sample: &Sample<'_>,
    consts: &ConstLabels<'_>,
    format: Format,
) {
    let le_last = matches!(family.kind, Type::Histogram | Type::GaugeHistogram)
        && sample.suffix(family.name) == "_bucket";
    out.push_str(sample.name);
    out.push('{');
    out.push_str(names::TENANT_LABEL);
    out.push_str("=\"");
    out.push_str(names::SYSTEM);
    out.push('"');
    let mut le = None;
    for (name, value) in labels(sample.labels) {
        if le_last && name == "le" {
            le = Some(value);
            continue;
        }
        out.push(',');
        if consts.reserves(name) {
            let taken = |n: &str| consts.reserves(n) || labels(sample.labels).any(|(l, _)| l == n);
            let mut renamed = format!("exported_{name}");
            while taken(&renamed) {
                renamed.insert_str(0, "exported_");
            }
            out.push_str(&renamed);
        } else {
            out.push_str(name);
        }
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
    }
    out.push_str(consts.rendered);
    if let Some(le) = le {
        out.push_str(",le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push_str("} ");
    out.push_str(sample.value);
    if let Some((text, seconds)) = sample.timestamp {
        out.push(' ');
        match format {
            Format::OpenMetrics => out.push_str(text),
            // 0.0.4 timestamps are integer milliseconds.
            Format::Prometheus => {
                out.push_str(itoa::Buffer::new().format((seconds * 1000.0).round() as i64))
            }
        }
    }
    if let (Format::OpenMetrics, Some(exemplar)) = (format, sample.exemplar) {
        out.push_str(" # ");
        out.push_str(exemplar);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::exemplar::HistogramWithExemplars;
    use prometheus_client::metrics::family::Family as PcFamily;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::metrics::info::Info;
    use prometheus_client::registry::Unit;

    const CONSTS: &str = r#",service="shop""#;

    /// `text` rewritten in `format` with the constant label `service="shop"`.
    fn rewritten(text: &str, format: Format) -> String {
        let mut out = String::new();
        let consts = ConstLabels::new(CONSTS);
        rewrite(text, &mut out, format, &consts, &mut Names::default());
        out
    }

    fn text_of(registry: &Registry) -> String {
        let mut text = String::new();
        assert!(encode_text(registry, &mut text));
        text
    }

    /// Asserts the rewrite of `registry` in both formats.
    #[track_caller]
    fn assert_both(registry: &Registry, openmetrics: &str, prometheus: &str) {
        let text = text_of(registry);
        assert_eq!(
            rewritten(&text, Format::OpenMetrics),
            openmetrics,
            "from:\n{text}"
        );
        assert_eq!(
            rewritten(&text, Format::Prometheus),
            prometheus,
            "from:\n{text}"
        );
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Request {
        method: String,
        code: u16,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Trace {
        trace_id: String,
    }

    #[test]
    fn counter() {
        let mut registry = Registry::default();
        let requests = PcFamily::<Request, Counter>::default();
        registry.register("client_requests", "Requests sent", requests.clone());
        requests
            .get_or_create(&Request {
                method: "GET".into(),
                code: 200,
            })
            .inc_by(3);
        assert_both(
            &registry,
            "# HELP client_requests Requests sent.\n\
             # TYPE client_requests counter\n\
             client_requests_total{tenant_id=\"__system__\",method=\"GET\",code=\"200\",service=\"shop\"} 3\n",
            "# HELP client_requests_total Requests sent.\n\
             # TYPE client_requests_total counter\n\
             client_requests_total{tenant_id=\"__system__\",method=\"GET\",code=\"200\",service=\"shop\"} 3\n",
        );
    }

    #[test]
    fn gauge() {
        let mut registry = Registry::default();
        let open = Gauge::<i64>::default();
        let ratio = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register("connections_open", "Open connections", open.clone());
        registry.register_with_unit("pool_usage", "Pool usage", Unit::Ratios, ratio.clone());
        open.set(7);
        ratio.set(0.25);
        assert_both(
            &registry,
            "# HELP connections_open Open connections.\n\
             # TYPE connections_open gauge\n\
             connections_open{tenant_id=\"__system__\",service=\"shop\"} 7\n\
             # HELP pool_usage_ratios Pool usage.\n\
             # TYPE pool_usage_ratios gauge\n\
             # UNIT pool_usage_ratios ratios\n\
             pool_usage_ratios{tenant_id=\"__system__\",service=\"shop\"} 0.25\n",
            "# HELP connections_open Open connections.\n\
             # TYPE connections_open gauge\n\
             connections_open{tenant_id=\"__system__\",service=\"shop\"} 7\n\
             # HELP pool_usage_ratios Pool usage.\n\
             # TYPE pool_usage_ratios gauge\n\
             pool_usage_ratios{tenant_id=\"__system__\",service=\"shop\"} 0.25\n",
        );
    }

    #[test]
    fn histogram_with_exemplar() {
        let mut registry = Registry::default();
        let latency = HistogramWithExemplars::<Trace>::new([0.1, 1.0].into_iter());
        registry.register_with_unit(
            "payment_duration",
            "Payment latency",
            Unit::Seconds,
            latency.clone(),
        );
        latency.observe(0.05, None, None);
        latency.observe(
            0.5,
            Some(Trace {
                trace_id: "4bf92f3577b34da6".into(),
            }),
            None,
        );
        assert_both(
            &registry,
            "# HELP payment_duration_seconds Payment latency.\n\
             # TYPE payment_duration_seconds histogram\n\
             # UNIT payment_duration_seconds seconds\n\
             payment_duration_seconds_sum{tenant_id=\"__system__\",service=\"shop\"} 0.55\n\
             payment_duration_seconds_count{tenant_id=\"__system__\",service=\"shop\"} 2\n\
             payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.1\"} 1\n\
             payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2 # {trace_id=\"4bf92f3577b34da6\"} 0.5\n\
             payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
            "# HELP payment_duration_seconds Payment latency.\n\
             # TYPE payment_duration_seconds histogram\n\
             payment_duration_seconds_sum{tenant_id=\"__system__\",service=\"shop\"} 0.55\n\
             payment_duration_seconds_count{tenant_id=\"__system__\",service=\"shop\"} 2\n\
             payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.1\"} 1\n\
             payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2\n\
             payment_duration_seconds_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
        );
    }

    #[test]
    fn histogram_with_a_negative_sum_has_no_sum_in_openmetrics() {
        let mut registry = Registry::default();
        let deltas = Histogram::new([0.0, 10.0]);
        registry.register("balance_delta", "Balance changes", deltas.clone());
        deltas.observe(-3.0);
        deltas.observe(1.0);
        assert_both(
            &registry,
            "# HELP balance_delta Balance changes.\n\
             # TYPE balance_delta histogram\n\
             balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.0\"} 1\n\
             balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"10.0\"} 2\n\
             balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
            "# HELP balance_delta Balance changes.\n\
             # TYPE balance_delta histogram\n\
             balance_delta_sum{tenant_id=\"__system__\",service=\"shop\"} -2.0\n\
             balance_delta_count{tenant_id=\"__system__\",service=\"shop\"} 2\n\
             balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"0.0\"} 1\n\
             balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"10.0\"} 2\n\
             balance_delta_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 2\n",
        );
    }

    #[test]
    fn info() {
        let mut registry = Registry::default();
        registry.register(
            "payment_client",
            "Payment client build",
            Info::new(vec![("version", "1.2.3")]),
        );
        assert_both(
            &registry,
            "# HELP payment_client Payment client build.\n\
             # TYPE payment_client info\n\
             payment_client_info{tenant_id=\"__system__\",version=\"1.2.3\",service=\"shop\"} 1\n",
            "# HELP payment_client_info Payment client build.\n\
             # TYPE payment_client_info gauge\n\
             payment_client_info{tenant_id=\"__system__\",version=\"1.2.3\",service=\"shop\"} 1\n",
        );
    }

    // prometheus-client 0.25 writes no stateset, gaugehistogram, summary or
    // `_created`; the rewrite still maps them, checked on OpenMetrics text.

    #[test]
    fn stateset() {
        let text = "# HELP breaker Breaker state.\n\
                    # TYPE breaker stateset\n\
                    breaker{peer=\"db\",breaker=\"open\"} 0\n\
                    breaker{peer=\"db\",breaker=\"closed\"} 1\n\
                    # EOF\n";
        assert_eq!(
            rewritten(text, Format::OpenMetrics),
            "# HELP breaker Breaker state.\n\
             # TYPE breaker stateset\n\
             breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"open\",service=\"shop\"} 0\n\
             breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"closed\",service=\"shop\"} 1\n"
        );
        assert_eq!(
            rewritten(text, Format::Prometheus),
            "# HELP breaker Breaker state.\n\
             # TYPE breaker gauge\n\
             breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"open\",service=\"shop\"} 0\n\
             breaker{tenant_id=\"__system__\",peer=\"db\",breaker=\"closed\",service=\"shop\"} 1\n"
        );
    }

    #[test]
    fn gaugehistogram_summary_unknown_and_created() {
        let text = "# HELP queue_wait Queue wait.\n\
                    # TYPE queue_wait gaugehistogram\n\
                    queue_wait_bucket{le=\"1.0\"} 2\n\
                    queue_wait_bucket{le=\"+Inf\"} 3\n\
                    queue_wait_gcount 3\n\
                    queue_wait_gsum 4.5\n\
                    # HELP jobs Jobs.\n\
                    # TYPE jobs counter\n\
                    jobs_total 5 # {trace_id=\"ab\"} 1 1700000000.5\n\
                    jobs_created 1700000000.25\n\
                    # HELP rpc RPC latency.\n\
                    # TYPE rpc summary\n\
                    rpc{quantile=\"0.5\"} 0.2\n\
                    rpc_sum 1.5\n\
                    rpc_count 7\n\
                    rpc_created 1700000000\n\
                    # HELP temp Temperature.\n\
                    # TYPE temp unknown\n\
                    temp 21.5 1700000000.123\n";
        assert_eq!(
            rewritten(text, Format::OpenMetrics),
            "# HELP queue_wait Queue wait.\n\
             # TYPE queue_wait gaugehistogram\n\
             queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2\n\
             queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 3\n\
             queue_wait_gcount{tenant_id=\"__system__\",service=\"shop\"} 3\n\
             queue_wait_gsum{tenant_id=\"__system__\",service=\"shop\"} 4.5\n\
             # HELP jobs Jobs.\n\
             # TYPE jobs counter\n\
             jobs_total{tenant_id=\"__system__\",service=\"shop\"} 5 # {trace_id=\"ab\"} 1 1700000000.5\n\
             jobs_created{tenant_id=\"__system__\",service=\"shop\"} 1700000000.25\n\
             # HELP rpc RPC latency.\n\
             # TYPE rpc summary\n\
             rpc{tenant_id=\"__system__\",quantile=\"0.5\",service=\"shop\"} 0.2\n\
             rpc_sum{tenant_id=\"__system__\",service=\"shop\"} 1.5\n\
             rpc_count{tenant_id=\"__system__\",service=\"shop\"} 7\n\
             rpc_created{tenant_id=\"__system__\",service=\"shop\"} 1700000000\n\
             # HELP temp Temperature.\n\
             # TYPE temp unknown\n\
             temp{tenant_id=\"__system__\",service=\"shop\"} 21.5 1700000000.123\n"
        );
        assert_eq!(
            rewritten(text, Format::Prometheus),
            "# HELP queue_wait_bucket Queue wait.\n\
             # TYPE queue_wait_bucket untyped\n\
             queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"1.0\"} 2\n\
             queue_wait_bucket{tenant_id=\"__system__\",service=\"shop\",le=\"+Inf\"} 3\n\
             # HELP queue_wait_gcount Queue wait.\n\
             # TYPE queue_wait_gcount gauge\n\
             queue_wait_gcount{tenant_id=\"__system__\",service=\"shop\"} 3\n\
             # HELP queue_wait_gsum Queue wait.\n\
             # TYPE queue_wait_gsum gauge\n\
             queue_wait_gsum{tenant_id=\"__system__\",service=\"shop\"} 4.5\n\
             # HELP jobs_total Jobs.\n\
             # TYPE jobs_total counter\n\
             jobs_total{tenant_id=\"__system__\",service=\"shop\"} 5\n\
             # HELP rpc RPC latency.\n\
             # TYPE rpc summary\n\
             rpc{tenant_id=\"__system__\",quantile=\"0.5\",service=\"shop\"} 0.2\n\
             rpc_sum{tenant_id=\"__system__\",service=\"shop\"} 1.5\n\
             rpc_count{tenant_id=\"__system__\",service=\"shop\"} 7\n\
             # HELP temp Temperature.\n\
             # TYPE temp untyped\n\
             temp{tenant_id=\"__system__\",service=\"shop\"} 21.5 1700000000123\n"
        );
    }

    #[test]
    fn hostile_label_values_and_help() {
        let mut registry = Registry::default();
        let notes = PcFamily::<Vec<(&'static str, String)>, Counter>::default();
        registry.register(
            "notes",
            "Help with \\ and\nnewline and \"quotes\"",
            notes.clone(),
        );
        notes
            .get_or_create(&vec![(
                "text",
                "say \"hi\" \\ line\nbreak ünïcødé ✓".to_string(),
            )])
            .inc();
        assert_both(
            &registry,
            "# HELP notes Help with \\\\ and\\nnewline and \\\"quotes\\\".\n\
             # TYPE notes counter\n\
             notes_total{tenant_id=\"__system__\",text=\"say \\\"hi\\\" \\\\ line\\nbreak ünïcødé ✓\",service=\"shop\"} 1\n",
            "# HELP notes_total Help with \\\\ and\\nnewline and \"quotes\".\n\
             # TYPE notes_total counter\n\
             notes_total{tenant_id=\"__system__\",text=\"say \\\"hi\\\" \\\\ line\\nbreak ünïcødé ✓\",service=\"shop\"} 1\n",
        );
    }

    #[test]
    fn tenant_id_and_const_label_names_are_exported() {
        let mut registry = Registry::default();
        let logins = PcFamily::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register("logins", "Logins", logins.clone());
        logins
            .get_or_create(&vec![
                ("tenant_id", "acme"),
                ("service", "auth"),
                ("exported_service", "sso"),
            ])
            .inc();
        let text = text_of(&registry);
        let line = "logins_total{tenant_id=\"__system__\",exported_tenant_id=\"acme\",\
                    exported_exported_service=\"auth\",exported_service=\"sso\",service=\"shop\"} 1\n";
        assert!(rewritten(&text, Format::OpenMetrics).ends_with(line));
        assert!(rewritten(&text, Format::Prometheus).ends_with(line));
    }

    #[test]
    fn values_are_spelt_as_both_formats_read_them() {
        let text = "# HELP g G.\n# TYPE g gauge\ng{a=\"1\"} inf\ng{a=\"2\"} -inf\ng{a=\"3\"} nan\n";
        let out = rewritten(text, Format::Prometheus);
        assert!(
            out.contains("g{tenant_id=\"__system__\",a=\"1\",service=\"shop\"} +Inf\n"),
            "{out}"
        );
        assert!(out.contains("a=\"2\",service=\"shop\"} -Inf\n"), "{out}");
        assert!(out.contains("a=\"3\",service=\"shop\"} NaN\n"), "{out}");
    }

    #[test]
    fn taken_names_and_broken_families_are_left_out() {
        let text = "# HELP a_total A.\n# TYPE a_total gauge\na_total 1\n\
                    # HELP b B.\n# TYPE b gauge\nb_total 1\n\
                    # HELP c-d C.\n# TYPE c-d gauge\nc-d 1\n\
                    # HELP e E.\n# TYPE e gauge\ne{f-g=\"1\"} 1\n\
                    # HELP h H.\n# TYPE h gauge\nh 2\n";
        let mut taken = Names::default();
        taken.insert("a", Type::Counter);
        let mut out = String::new();
        let skipped = rewrite(
            text,
            &mut out,
            Format::OpenMetrics,
            &ConstLabels::new(""),
            &mut taken,
        );
        assert_eq!(
            out,
            "# HELP h H.\n# TYPE h gauge\nh{tenant_id=\"__system__\"} 2\n"
        );
        assert_eq!(
            skipped,
            [
                Skipped::Clash("a_total".into()),
                Skipped::Unreadable(Problem::Stray("b_total".into())),
                Skipped::Unreadable(Problem::InvalidName("c-d".into())),
                Skipped::Unreadable(Problem::InvalidLabelName {
                    metric: "e".into(),
                    label: "f-g".into()
                }),
            ]
        );
        // What was written is taken: a second registry cannot write `h` again.
        let skipped = rewrite(
            text,
            &mut out,
            Format::OpenMetrics,
            &ConstLabels::new(""),
            &mut taken,
        );
        assert_eq!(skipped.last(), Some(&Skipped::Clash("h".into())));
    }

    #[test]
    fn plimsoll_families_take_every_sample_name_their_name_can_have() {
        let mut taken = Names::default();
        taken.insert_plimsoll("shop_orders");
        for (name, kind) in [
            ("shop_orders", Type::Gauge),
            ("shop_orders_total", Type::Gauge),
            ("shop_orders_count", Type::Unknown),
            ("shop_orders", Type::Info),
        ] {
            assert!(taken.clashes(name, kind), "{name} {kind:?}");
        }
        assert!(!taken.clashes("shop_orders_placed", Type::Counter));
        assert!(!taken.clashes("shop", Type::Histogram));
        assert!(!taken.clashes("orders", Type::Counter));
    }

    #[test]
    fn plimsoll_names_are_read_alike_from_both_formats() {
        let mut om = Names::default();
        om.scan(
            "# TYPE shop_x counter\nshop_x_total 1\n# TYPE shop_y gauge\n",
            Format::OpenMetrics,
        );
        let mut prom = Names::default();
        prom.scan(
            "# TYPE shop_x_total counter\nshop_x_total 1\n# TYPE shop_y gauge\n",
            Format::Prometheus,
        );
        assert_eq!(om.0, prom.0);
        assert!(om.clashes("shop_x_total", Type::Gauge));
        assert!(om.clashes("shop_x", Type::Gauge));
        assert!(!om.clashes("shop", Type::Info));
        assert!(om.clashes("shop_y", Type::Summary));
    }

    #[test]
    fn candidates_refuse_clashes_with_themselves() {
        let mut registry = Registry::default();
        registry.register("dup", "One", Counter::<u64>::default());
        registry.register("dup", "Two", Gauge::<i64>::default());
        assert_eq!(
            Candidate::new(registry).unwrap_err(),
            RegisterError::Conflict("dup".into())
        );
        let mut registry = Registry::default();
        registry.register("bad name", "Bad", Counter::<u64>::default());
        assert_eq!(
            Candidate::new(registry).unwrap_err(),
            RegisterError::InvalidName("bad name".into())
        );
    }
}
