//! Metric types and the names a family takes (the clashing-name rule).

use super::*;

/// A metric type, as OpenMetrics names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Type {
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
    pub(super) fn parse(s: &str) -> Option<Type> {
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

    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn suffixes(self) -> &'static [&'static str] {
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
pub(super) struct Names(pub(super) HashSet<String>);

impl Names {
    pub(super) fn reserved(name: &str, kind: Type) -> impl Iterator<Item = String> + '_ {
        std::iter::once("")
            .chain(kind.suffixes().iter().copied())
            .map(move |suffix| format!("{name}{suffix}"))
    }

    pub(super) fn clashes(&self, name: &str, kind: Type) -> bool {
        Self::reserved(name, kind).any(|n| self.0.contains(&n))
    }

    pub(super) fn insert(&mut self, name: &str, kind: Type) {
        self.0.extend(Self::reserved(name, kind));
    }

    /// A plimsoll family `name` (with prefix, without `_total`), whatever its type.
    pub(super) fn insert_plimsoll(&mut self, name: &str) {
        self.0.extend(crate::names::sample_names(name));
    }

    /// `plimsoll_cardinality_overflow_total`, with `prefix`.
    pub(super) fn insert_overflow(&mut self, prefix: &str) {
        let base = crate::families::CARDINALITY_OVERFLOW.key();
        self.insert(&format!("{prefix}{base}"), Type::Counter);
    }

    /// Takes the families of an exposition by its `# TYPE` lines.
    pub(super) fn scan(&mut self, body: &str, format: Format) {
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
