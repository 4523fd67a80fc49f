//! Reading prometheus-client's OpenMetrics text, family by family.

use super::*;

/// Why a family cannot be exposed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Problem {
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
    pub(super) fn name(&self) -> &str {
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
pub(super) struct Family<'a> {
    pub(super) name: &'a str,
    pub(super) kind: Type,
    /// Unescaped: prometheus-client writes HELP text as given.
    pub(super) help: Option<Cow<'a, str>>,
    pub(super) unit: Option<&'a str>,
    pub(super) samples: Vec<Sample<'a>>,
}

/// One sample line.
#[derive(Debug)]
pub(super) struct Sample<'a> {
    pub(super) name: &'a str,
    /// Between the braces: `name="escaped value"`, comma-separated, checked.
    pub(super) labels: &'a str,
    /// As written, but `+Inf`, `-Inf` and `NaN` spelt so.
    pub(super) value: &'a str,
    /// As written (seconds) and in seconds.
    pub(super) timestamp: Option<(&'a str, f64)>,
    /// What follows ` # `: `{labels} value [timestamp]`.
    pub(super) exemplar: Option<&'a str>,
}

impl Sample<'_> {
    /// What the sample name adds to the family name `family`.
    pub(super) fn suffix(&self, family: &str) -> &str {
        self.name.strip_prefix(family).unwrap_or(self.name)
    }
}

/// Reads prometheus-client's text family by family.
pub(super) struct Families<'a> {
    pub(super) lines: Peekable<Lines<'a>>,
}

impl<'a> Families<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().peekable(),
        }
    }

    /// Reads the family that starts at `first`, to its last line whatever
    /// goes wrong, so that the next one starts clean.
    pub(super) fn family(&mut self, first: &'a str) -> Result<Family<'a>, Problem> {
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

    pub(super) fn skip_samples(&mut self) {
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
pub(super) fn parse_sample<'a>(line: &'a str, family: &str) -> Result<Sample<'a>, Problem> {
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
pub(super) fn label_set_len(s: &str, metric: &str) -> Result<usize, Problem> {
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
pub(super) fn split_label(s: &str) -> Option<(&str, &str, &str)> {
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
pub(super) fn labels(set: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = set;
    std::iter::from_fn(move || {
        let (name, value, after) = split_label(rest)?;
        rest = after.strip_prefix(',').unwrap_or(after);
        Some((name, value))
    })
}
