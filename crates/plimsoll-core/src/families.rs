//! The families plimsoll-core registers itself, as declared.

use crate::family::{FamilyDecl, LabelDecl};
use crate::names;

/// `plimsoll_cardinality_overflow_total{metric, label}`.
pub const CARDINALITY_OVERFLOW: FamilyDecl = FamilyDecl::counter(
    names::CARDINALITY_OVERFLOW,
    names::CARDINALITY_OVERFLOW_HELP,
)
.with_labels(&[
    LabelDecl::closed(names::METRIC_LABEL),
    LabelDecl::closed(names::LABEL_LABEL),
]);

/// `build_info{service, version}`, always 1.
pub const BUILD_INFO: FamilyDecl = FamilyDecl::gauge(names::BUILD_INFO, names::BUILD_INFO_HELP)
    .with_labels(&[LabelDecl::closed("service"), LabelDecl::closed("version")]);

pub use crate::process::PROCESS_FAMILIES as PROCESS;
