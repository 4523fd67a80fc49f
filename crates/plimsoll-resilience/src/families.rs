//! Every family the resilience layers record, declared once, and their
//! label sets.

use std::sync::Arc;

use plimsoll_core::family::{FamilyDecl, LabelDecl};
use plimsoll_core::{impl_label_set, label_key};

/// Default bound on distinct breaker (dependency) names.
pub const DEFAULT_MAX_SERVICES: usize = 100;
/// Default bound on distinct limiter names and quota tiers.
pub const DEFAULT_MAX_LIMITS: usize = 50;

const SERVICE: LabelDecl = LabelDecl::open("service", DEFAULT_MAX_SERVICES);
const SERVICE_VIA: LabelDecl =
    LabelDecl::bounded_via("service", "circuit_breaker_state", "service");

/// `circuit_breaker_state{service}`: 0 closed, 1 open, 2 half-open; read at
/// scrape time, one series per breaker.
pub const CIRCUIT_BREAKER_STATE: FamilyDecl = FamilyDecl::gauge(
    "circuit_breaker_state",
    "State of each circuit breaker: 0 closed, 1 open, 2 half-open; read at scrape time.",
)
.with_labels(&[SERVICE]);

/// `circuit_breaker_transitions_total{service, from, to}`.
pub const CIRCUIT_BREAKER_TRANSITIONS: FamilyDecl = FamilyDecl::counter(
    "circuit_breaker_transitions_total",
    "State changes of each circuit breaker, by the state left and the state entered.",
)
.with_labels(&[
    SERVICE_VIA,
    LabelDecl::closed("from"),
    LabelDecl::closed("to"),
]);

/// `circuit_breaker_calls_total{service, outcome}`: success, failure,
/// rejected (shed by an open breaker), slow; counted by the breaker and
/// read at scrape time.
pub const CIRCUIT_BREAKER_CALLS: FamilyDecl = FamilyDecl::counter(
    "circuit_breaker_calls_total",
    "Calls through each circuit breaker, by outcome: success, failure, slow (succeeded past the slow-call threshold), rejected (shed without calling); read at scrape time.",
)
.with_labels(&[SERVICE_VIA, LabelDecl::closed("outcome")]);

/// `rate_limit_hits_total{limit_type, client_type}`: requests refused.
pub const RATE_LIMIT_HITS: FamilyDecl = FamilyDecl::counter(
    "rate_limit_hits_total",
    "Requests refused by a rate limit, by limit and by the quota tier of the client.",
)
.with_labels(&[
    LabelDecl::open("limit_type", DEFAULT_MAX_LIMITS),
    LabelDecl::open("client_type", DEFAULT_MAX_LIMITS),
]);

/// `api_quota_remaining{quota_type}`: requests each tenant may still send
/// at once; read at scrape time.
pub const API_QUOTA_REMAINING: FamilyDecl = FamilyDecl::gauge(
    "api_quota_remaining",
    "Requests the tenant may still send at once under the limit; read at scrape time.",
)
.with_labels(&[LabelDecl::bounded_via(
    "quota_type",
    "rate_limit_hits_total",
    "limit_type",
)]);

/// Every family of this crate, for the catalogue.
pub const ALL: &[FamilyDecl] = &[
    CIRCUIT_BREAKER_STATE,
    CIRCUIT_BREAKER_TRANSITIONS,
    CIRCUIT_BREAKER_CALLS,
    RATE_LIMIT_HITS,
    API_QUOTA_REMAINING,
];

/// Labels of `circuit_breaker_state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ServiceLabels {
    /// The dependency the breaker guards.
    pub service: Arc<str>,
}
impl_label_set!(ServiceLabels { service });

/// Labels of `circuit_breaker_transitions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct TransitionLabels {
    /// The dependency.
    pub service: Arc<str>,
    /// The state left: `closed`, `open`, `half_open`.
    pub from: &'static str,
    /// The state entered.
    pub to: &'static str,
}
impl_label_set!(TransitionLabels { service, from, to });
label_key!(
    /// The borrowed form of [`TransitionLabels`].
    pub struct TransitionKey for TransitionLabels {
        service: Arc<str>,
        from: &'static str,
        to: &'static str,
    }
);

/// Labels of `circuit_breaker_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct CallLabels {
    /// The dependency.
    pub service: Arc<str>,
    /// `success`, `failure`, `slow` or `rejected`.
    pub outcome: &'static str,
}
impl_label_set!(CallLabels { service, outcome });

/// Labels of `rate_limit_hits_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct HitLabels {
    /// The limiter's name.
    pub limit_type: Arc<str>,
    /// The client's quota tier (`default`, or an override's tier).
    pub client_type: Arc<str>,
}
impl_label_set!(HitLabels {
    limit_type,
    client_type
});
label_key!(
    /// The borrowed form of [`HitLabels`].
    pub struct HitKey for HitLabels { limit_type: Arc<str>, client_type: Arc<str> }
);

/// Labels of `api_quota_remaining`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct QuotaLabels {
    /// The limiter's name.
    pub quota_type: Arc<str>,
}
impl_label_set!(QuotaLabels { quota_type });
