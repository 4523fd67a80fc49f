//! The checks every family goes through: its name, its labels, its
//! buckets, and the sample names it would take.

use super::*;

/// A family that cannot be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("metric name {0:?} is invalid ([a-zA-Z_:][a-zA-Z0-9_:]*)")]
    InvalidName(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("metric {metric:?}: label name {label:?} is invalid ([a-zA-Z_][a-zA-Z0-9_]*)")]
    InvalidLabelName {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
    /// A label name is reserved: `tenant_id` (plimsoll adds it), `le` on
    /// histograms, names starting with `__`, or a constant label's name.
    #[error("metric {metric:?}: label {label:?} is reserved ({reason})")]
    ReservedLabel {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
        /// Why.
        reason: &'static str,
    },
    /// A label name appears twice.
    #[error("metric {metric:?}: label {label:?} appears twice")]
    DuplicateLabel {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
    /// The name is registered already with another type, label set or buckets.
    #[error("metric {0:?} is registered already with another type, label set or buckets")]
    Conflict(String),
    /// Bucket bounds are empty, not finite or not strictly increasing.
    #[error(
        "metric {metric:?}: buckets must be non-empty, finite and strictly increasing, got {buckets:?}"
    )]
    InvalidBuckets {
        /// The metric.
        metric: String,
        /// The bounds given.
        buckets: Vec<f64>,
    },
    /// `max_series` is zero.
    #[error("metric {0:?}: max_series must be at least 1")]
    ZeroMaxSeries(String),
    /// A declaration of one type registered as another.
    #[error("metric {metric:?} is declared as a {declared:?} but registered as a {registered:?}")]
    KindMismatch {
        /// The metric.
        metric: String,
        /// The declared type.
        declared: MetricKind,
        /// The type asked for.
        registered: MetricKind,
    },
    /// The label set's names differ from the declaration's labels.
    #[error(
        "metric {metric:?}: the label set has labels {label_set:?} but the declaration says {declared:?}"
    )]
    LabelMismatch {
        /// The metric.
        metric: String,
        /// The declared labels (catalogue names).
        declared: Vec<&'static str>,
        /// The label set's names.
        label_set: Vec<&'static str>,
    },
    /// A label guard was asked for a label that is not an open label of the family.
    #[error("metric {metric:?}: {label:?} is not an open label of it (open labels: {open:?})")]
    NotAnOpenLabel {
        /// The metric.
        metric: String,
        /// The label asked for.
        label: String,
        /// The family's open labels.
        open: Vec<&'static str>,
    },
    /// A label asked for with a bound other than the one it has already.
    #[error(
        "metric {metric:?}: label {label:?} is bounded to {bound} already; asked for {requested}"
    )]
    BoundConflict {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
        /// Its bound.
        bound: usize,
        /// The bound asked for.
        requested: usize,
    },
    /// A label bound of zero.
    #[error("metric {metric:?}: the bound of label {label:?} must be at least 1")]
    ZeroBound {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
}

pub(crate) fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) use crate::family::valid_buckets;

/// Whether a new family `name` could write a sample name that another
/// registered family (or plimsoll's own overflow counter and build info)
/// may write too: `jobs_total` beside the counter `jobs`, `lat_count` beside
/// the histogram `lat`. The same name is handled by the caller.
pub(super) fn sample_names_clash(families: &[Registered], name: &str) -> bool {
    let new = names::sample_names(name);
    let overflow = crate::families::CARDINALITY_OVERFLOW.key();
    families
        .iter()
        .map(|f| f.name.as_str())
        .chain([overflow, names::BUILD_INFO])
        .filter(|other| *other != name)
        .any(|other| names::sample_names(other).iter().any(|n| new.contains(n)))
}

/// The shape of a histogram family `metric` over `bounds`: the bounds must
/// be valid and `le` is not one of its labels.
pub(super) fn histogram_shape(
    metric: &str,
    labels: &[&'static str],
    bounds: Vec<f64>,
) -> Result<Shape, RegisterError> {
    if !valid_buckets(&bounds) {
        return Err(RegisterError::InvalidBuckets {
            metric: metric.to_string(),
            buckets: bounds,
        });
    }
    if labels.contains(&"le") {
        return Err(RegisterError::ReservedLabel {
            metric: metric.to_string(),
            label: "le".into(),
            reason: "histograms use it for bucket bounds",
        });
    }
    let le = bounds
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .map(bucket_label)
        .collect();
    Ok(Shape {
        bounds: bounds.into(),
        le,
    })
}

impl Telemetry {
    /// Refuses a new family `name` (as `metric` in the error) whose sample
    /// names another family of plimsoll or of a prometheus-client registry
    /// may write.
    pub(super) fn check_free(
        &self,
        families: &[Registered],
        name: &str,
        metric: &str,
    ) -> Result<(), RegisterError> {
        let clash = sample_names_clash(families, name);
        #[cfg(feature = "prometheus-client")]
        let clash = clash || self.inner.foreign.clashes(&self.inner.prefix, name);
        if clash {
            return Err(RegisterError::Conflict(metric.to_string()));
        }
        Ok(())
    }

    /// Validates a family's name and label names (not yet registered).
    pub(crate) fn check_names(
        &self,
        metric: &str,
        labels: &[&'static str],
    ) -> Result<(), RegisterError> {
        if !valid_metric_name(metric) {
            return Err(RegisterError::InvalidName(metric.to_string()));
        }
        for (i, label) in labels.iter().enumerate() {
            let err = |reason| RegisterError::ReservedLabel {
                metric: metric.to_string(),
                label: label.to_string(),
                reason,
            };
            if !valid_label_name(label) {
                return Err(RegisterError::InvalidLabelName {
                    metric: metric.to_string(),
                    label: label.to_string(),
                });
            }
            if *label == names::TENANT_LABEL {
                return Err(err("plimsoll adds tenant_id to every series"));
            }
            if label.starts_with("__") {
                return Err(err("names starting with __ are reserved"));
            }
            if self.inner.const_names.iter().any(|c| c == label) {
                return Err(err("it is a constant label"));
            }
            if labels[..i].contains(label) {
                return Err(RegisterError::DuplicateLabel {
                    metric: metric.to_string(),
                    label: label.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_metric_name("a:b_c9"));
        assert!(!valid_metric_name("9a"));
        assert!(!valid_metric_name(""));
        assert!(!valid_metric_name("a-b"));
        assert!(valid_label_name("_x1"));
        assert!(!valid_label_name("a:b"));
    }
}
