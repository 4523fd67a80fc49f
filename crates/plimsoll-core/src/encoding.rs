//! Exposition: the `/metrics` body in Prometheus text 0.0.4 or OpenMetrics 1.0.
//!
//! [`Format::negotiate`] picks the format from the scraper's `Accept` header:
//! OpenMetrics (with exemplars) when the scraper asks for it, Prometheus text
//! 0.0.4 otherwise. Both formats escape label values the same way (`\\`,
//! `\"`, `\n`); HELP text is escaped as each format requires.

use std::fmt::Write as _;

/// Content type of Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (what `promtool check metrics` reads). No exemplars.
    Prometheus,
    /// OpenMetrics text 1.0.0, with exemplars on histogram buckets.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value for a body in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Chooses a format from an `Accept` header value.
    ///
    /// OpenMetrics is chosen when the header names `application/openmetrics-text`
    /// (version 1.0.0, 0.0.1 or none) with a quality at least as high as the
    /// best text/plain, `text/*` or `*/*` entry; anything else, including no
    /// header or a malformed one, gets Prometheus text 0.0.4.
    ///
    /// ```
    /// use plimsoll_core::Format;
    /// let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    /// assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
    /// assert_eq!(Format::negotiate(None), Format::Prometheus);
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut q = 1.0_f32;
            let mut version_ok = true;
            for param in parts {
                let Some((key, value)) = param.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim() {
                    "q" => q = value.parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0),
                    "version" => version_ok = matches!(value, "1.0.0" | "0.0.1"),
                    _ => {}
                }
            }
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                if version_ok {
                    openmetrics = openmetrics.max(q);
                }
            } else if media.eq_ignore_ascii_case("text/plain")
                || media == "text/*"
                || media == "*/*"
            {
                text = text.max(q);
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// The kind of a metric family, as written on its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonic counter; its samples end in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

/// Writes `value` escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
#[inline]
pub(crate) fn write_escaped(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes HELP text: both formats escape `\` and newline; OpenMetrics also `"`.
pub(crate) fn write_help(out: &mut String, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes a float as both formats accept it: integral values without a
/// fraction, `NaN`, `+Inf`, `-Inf`.
#[inline]
pub(crate) fn write_f64(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

/// Writes an unsigned integer.
#[inline]
pub(crate) fn write_u64(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// The `le` value of a bucket bound, in the canonical float form (`0.005`, `1.0`, `+Inf`).
pub(crate) fn bucket_label(bound: f64) -> String {
    if bound.is_infinite() {
        "+Inf".to_string()
    } else {
        ryu::Buffer::new().format(bound).to_string()
    }
}

/// Writes families into one body. Shared by the registry's families and by
/// [`Collector`](crate::Collector)s.
#[derive(Debug)]
pub(crate) struct Encoder<'a> {
    pub(crate) out: &'a mut String,
    pub(crate) format: Format,
    pub(crate) prefix: &'a str,
    /// Constant labels, rendered as `,name="value"…`.
    pub(crate) const_labels: &'a str,
}

impl Encoder<'_> {
    /// Writes the `# HELP` and `# TYPE` lines. `name` is the family name
    /// without prefix and, for counters, without `_total`.
    pub(crate) fn header(&mut self, name: &str, help: &str, kind: MetricKind) {
        let total = kind == MetricKind::Counter && self.format == Format::Prometheus;
        let kind = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        for line in ["# HELP ", "# TYPE "] {
            self.out.push_str(line);
            self.out.push_str(self.prefix);
            self.out.push_str(name);
            if total {
                self.out.push_str("_total");
            }
            self.out.push(' ');
            if line == "# HELP " {
                write_help(self.out, help, self.format);
            } else {
                self.out.push_str(kind);
            }
            self.out.push('\n');
        }
    }

    /// Writes `prefix name suffix {labels le} ` up to the value.
    #[inline]
    pub(crate) fn sample_start(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        le: Option<&str>,
    ) {
        self.out.push_str(self.prefix);
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.out.push('{');
        self.out.push_str(labels);
        if let Some(le) = le {
            self.out.push_str(",le=\"");
            self.out.push_str(le);
            self.out.push('"');
        }
        self.out.push_str("} ");
    }

    /// Renders a series' labels (`tenant_id="…",…,const…`) into `buf`.
    #[inline]
    pub(crate) fn render_labels(
        &self,
        buf: &mut String,
        tenant: &str,
        write: impl FnOnce(&mut String),
    ) {
        buf.clear();
        buf.push_str(crate::names::TENANT_LABEL);
        buf.push_str("=\"");
        write_escaped(buf, tenant);
        buf.push('"');
        write(buf);
        buf.push_str(self.const_labels);
    }

    /// Writes a histogram's `_sum` and `_count` lines. OpenMetrics allows
    /// a sum only when it is neither negative nor NaN and no bucket bound
    /// is negative, and a count only with a sum: such a histogram has
    /// neither there (its `+Inf` bucket is the count). Prometheus text
    /// 0.0.4 has both.
    pub(crate) fn sum_and_count(
        &mut self,
        name: &str,
        labels: &str,
        bounds: &[f64],
        sum: f64,
        count: u64,
    ) {
        let negative = sum.is_nan() || sum < 0.0 || bounds.first().is_some_and(|b| *b < 0.0);
        if self.format == Format::OpenMetrics && negative {
            return;
        }
        self.sample_start(name, "_sum", labels, None);
        write_f64(self.out, sum);
        self.out.push('\n');
        self.sample_start(name, "_count", labels, None);
        write_u64(self.out, count);
        self.out.push('\n');
    }

    /// Writes an exemplar after a bucket value (OpenMetrics only).
    pub(crate) fn exemplar(&mut self, exemplar: &crate::metrics::Exemplar) {
        let _ = write!(
            self.out,
            " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} ",
            exemplar.trace_id, exemplar.span_id
        );
        write_f64(self.out, exemplar.value);
        self.out.push(' ');
        let ts = exemplar.timestamp;
        let _ = write!(self.out, "{}.{:03}", ts.as_secs(), ts.subsec_millis());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let mut out = String::new();
        write_escaped(&mut out, "a\\b\"c\nd\re");
        assert_eq!(out, "a\\\\b\\\"c\\nd\re");
    }

    #[test]
    fn floats() {
        let mut out = String::new();
        for v in [
            3.0,
            0.25,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e20,
        ] {
            write_f64(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "3 0.25 NaN +Inf -Inf 0 1e20 ");
        assert_eq!(bucket_label(1.0), "1.0");
        assert_eq!(bucket_label(0.005), "0.005");
        assert_eq!(bucket_label(f64::INFINITY), "+Inf");
    }

    #[test]
    fn negotiation() {
        use Format::*;
        let cases = [
            (None, Prometheus),
            (Some(""), Prometheus),
            (Some("text/plain"), Prometheus),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                OpenMetrics,
            ),
            (
                Some("application/openmetrics-text; version=2.0.0"),
                Prometheus,
            ),
            (
                Some("application/openmetrics-text;q=0.5,text/plain"),
                Prometheus,
            ),
            (
                Some("text/plain;q=0.2, application/openmetrics-text;q=0.3"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=0"), Prometheus),
            (Some("garbage;;;q=x,,"), Prometheus),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }
}
