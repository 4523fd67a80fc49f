//! Every family the cache instrumentation records, declared once.

use plimsoll_core::family::{FamilyDecl, LabelDecl};

/// Default bound on distinct cache names.
pub const DEFAULT_MAX_CACHES: usize = 100;

const CACHE_NAME: LabelDecl = LabelDecl::open("cache_name", DEFAULT_MAX_CACHES);
const CACHE_NAME_VIA: LabelDecl =
    LabelDecl::bounded_via("cache_name", "cache_operations_total", "cache_name");

/// `cache_operations_total{operation, cache_name, status}`: gets (hit /
/// miss), sets, deletes and loads (success / error).
pub const CACHE_OPERATIONS: FamilyDecl = FamilyDecl::counter(
    "cache_operations_total",
    "Cache operations, by operation (get, set, delete, load), cache and status (hit, miss, success, error).",
)
.with_labels(&[
    LabelDecl::closed("operation"),
    CACHE_NAME,
    LabelDecl::closed("status"),
]);

/// `cache_operation_duration_seconds{operation, cache_name}`: loads on a
/// miss included (`operation="load"`).
pub const CACHE_OPERATION_DURATION: FamilyDecl = FamilyDecl::histogram(
    "cache_operation_duration_seconds",
    "Time of cache operations, loads on a miss included, in seconds.",
)
.with_unit("seconds")
.with_labels(&[LabelDecl::closed("operation"), CACHE_NAME_VIA]);

/// `cache_evictions_total{cache_name, cause}`: entries removed, by cause
/// (expired, explicit, replaced, size).
pub const CACHE_EVICTIONS: FamilyDecl = FamilyDecl::counter(
    "cache_evictions_total",
    "Cache entries removed, by cause: expired, explicit (invalidated), replaced, size (evicted for room).",
)
.with_labels(&[CACHE_NAME_VIA, LabelDecl::closed("cause")]);

/// `cache_entries{cache_name}`, read at scrape time.
pub const CACHE_ENTRIES: FamilyDecl = FamilyDecl::gauge(
    "cache_entries",
    "Entries in the cache, read at scrape time.",
)
.with_labels(&[CACHE_NAME_VIA]);

/// `cache_weighted_size{cache_name}`, read at scrape time (the entry count
/// when the cache has no weigher).
pub const CACHE_WEIGHTED_SIZE: FamilyDecl = FamilyDecl::gauge(
    "cache_weighted_size",
    "Weighted size of the cache's entries, read at scrape time.",
)
.with_labels(&[CACHE_NAME_VIA]);

/// Every family of this crate, for the catalogue.
pub const ALL: &[FamilyDecl] = &[
    CACHE_OPERATIONS,
    CACHE_OPERATION_DURATION,
    CACHE_EVICTIONS,
    CACHE_ENTRIES,
    CACHE_WEIGHTED_SIZE,
];
