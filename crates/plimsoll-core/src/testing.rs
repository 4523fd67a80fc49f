//! Parse a scrape into samples, to assert "this counter for this tenant is 3".
//!
//! Reads both Prometheus text 0.0.4 and OpenMetrics text (with exemplars).
//!
//! # Example
//!
//! ```
//! use plimsoll_core::Telemetry;
//!
//! let telemetry = Telemetry::builder().build().unwrap();
//! let jobs = telemetry.counter::<()>("jobs", "Jobs.").unwrap();
//! jobs.inc_by(&telemetry.tenant("acme"), &(), 3);
//!
//! let scrape = telemetry.scrape();
//! assert_eq!(scrape.value("jobs_total", &[("tenant_id", "acme")]), Some(3.0));
//! assert_eq!(scrape.series_count("jobs_total"), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample name (`http_requests_total`, `…_bucket`, …).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
    /// Its exemplar, if any (OpenMetrics only).
    pub exemplar: Option<ScrapedExemplar>,
}

impl Sample {
    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name && labels.iter().all(|(k, v)| self.label(k) == Some(v))
    }
}

/// An exemplar as scraped.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapedExemplar {
    /// Its labels (`trace_id`, `span_id`).
    pub labels: BTreeMap<String, String>,
    /// The observed value.
    pub value: f64,
}

/// A parse failure: the line number (from 1) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line, from 1.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A parsed scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses an exposition in either text format.
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut scrape = Scrape::default();
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| ParseError {
                line: i + 1,
                message,
            };
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("TYPE without a type".into()))?;
                scrape.types.insert(name.into(), kind.into());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                scrape.helps.insert(name.into(), help.into());
            } else if line.starts_with('#') {
                continue;
            } else {
                scrape.samples.push(parse_sample(line).map_err(err)?);
            }
        }
        Ok(scrape)
    }

    /// Every sample, in exposition order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Samples named `name` whose labels include all of `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.matches(name, labels))
    }

    /// The value of the one sample named `name` whose labels include `labels`;
    /// `None` when there is none.
    ///
    /// # Panics
    ///
    /// If several samples match: name more labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self.find(name, labels).collect();
        match found.as_slice() {
            [] => None,
            [one] => Some(one.value),
            many => panic!(
                "{} samples of {name} match {labels:?}; name more labels: {many:#?}",
                many.len()
            ),
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map(|s| s.value).sum()
    }

    /// The number of samples named `name`.
    pub fn series_count(&self, name: &str) -> usize {
        self.samples.iter().filter(|s| s.name == name).count()
    }

    /// The `# TYPE` of a family, as written.
    pub fn metric_type(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }

    /// The `# HELP` of a family, as written (escaped).
    pub fn help(&self, family: &str) -> Option<&str> {
        self.helps.get(family).map(String::as_str)
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(&rest[1..])?;
        labels = parsed;
        rest = after;
    }
    let rest = rest.trim_start();
    let (value_part, exemplar_part) = match rest.split_once(" # ") {
        Some((v, e)) => (v, Some(e)),
        None => (rest, None),
    };
    let value_token = value_part
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let value = parse_float(value_token)?;
    let exemplar = match exemplar_part {
        None => None,
        Some(e) => {
            let e = e
                .strip_prefix('{')
                .ok_or_else(|| format!("exemplar without labels in {line:?}"))?;
            let (labels, after) = parse_labels(e)?;
            let token = after
                .split_whitespace()
                .next()
                .ok_or_else(|| format!("exemplar without value in {line:?}"))?;
            Some(ScrapedExemplar {
                labels,
                value: parse_float(token)?,
            })
        }
    };
    Ok(Sample {
        name,
        labels,
        value,
        exemplar,
    })
}

fn parse_float(token: &str) -> Result<f64, String> {
    match token {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        t => t.parse().map_err(|_| format!("bad number {t:?}")),
    }
}

/// Parses `name="value",…}`; returns the labels and what follows `}`.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = s
            .split_once("=\"")
            .ok_or_else(|| format!("bad label at {s:?}"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    Some((_, c)) => return Err(format!("bad escape \\{c}")),
                    None => return Err("unterminated escape".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(name.trim().to_string(), value);
        s = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats_with_escapes_and_exemplars() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\",y=\"\"} 3\nb 1.5 1700000000\nh_bucket{le=\"+Inf\"} 2 # {trace_id=\"ab\"} 0.5 1.0\n# EOF\n";
        let scrape = Scrape::parse(text).unwrap();
        assert_eq!(scrape.value("a_total", &[("x", "q\"\\\n")]), Some(3.0));
        assert_eq!(scrape.value("b", &[]), Some(1.5));
        let h = scrape.find("h_bucket", &[]).next().unwrap();
        assert_eq!(h.exemplar.as_ref().unwrap().value, 0.5);
        assert_eq!(scrape.metric_type("a_total"), Some("counter"));
        assert!(Scrape::parse("x{a=\"unterminated} 1").is_err());
    }
}
