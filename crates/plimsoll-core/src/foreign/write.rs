//! Writing a foreign family in either format, with plimsoll's labels.

use super::*;

/// Plimsoll's constant labels: rendered (`,name="value"…`) and their names.
#[derive(Debug)]
pub(super) struct ConstLabels<'a> {
    pub(super) rendered: &'a str,
    pub(super) names: Vec<&'a str>,
}

impl<'a> ConstLabels<'a> {
    pub(super) fn new(rendered: &'a str) -> Self {
        let set = rendered.strip_prefix(',').unwrap_or(rendered);
        Self {
            rendered,
            names: labels(set).map(|(name, _)| name).collect(),
        }
    }

    /// Whether a foreign label `name` must be renamed.
    pub(super) fn reserves(&self, name: &str) -> bool {
        name == names::TENANT_LABEL || self.names.contains(&name)
    }
}

pub(super) fn write_openmetrics(out: &mut String, family: &Family<'_>, consts: &ConstLabels<'_>) {
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
pub(super) fn unsummed<'a>(family: &Family<'a>) -> Vec<&'a str> {
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

pub(super) fn write_prometheus(out: &mut String, family: &Family<'_>, consts: &ConstLabels<'_>) {
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
pub(super) fn write_header(
    out: &mut String,
    family: &Family<'_>,
    suffix: &str,
    kind: &str,
    format: Format,
) {
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
pub(super) fn write_sample(
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
