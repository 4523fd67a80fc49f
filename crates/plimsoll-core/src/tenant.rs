//! Tenants: validated ids, bounded per [`Telemetry`](crate::Telemetry).
//!
//! A [`Tenant`] is what every recording call takes. It is obtained from
//! [`Telemetry::tenant`](crate::Telemetry::tenant), which validates the raw id
//! and applies the tenant policy (a bound on distinct tenants, and optionally
//! an allow-list). What fails validation becomes [`UNKNOWN`]; what is past the
//! bound or outside the allow-list becomes [`OTHER`] and is counted in
//! `plimsoll_cardinality_overflow_total{label="tenant_id"}` when recorded. A
//! raw value that failed validation never reaches a label.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bounded::{Admission, BoundedSet};
use crate::names::{OTHER, SYSTEM, UNKNOWN};

/// Default bound on distinct tenants per [`Telemetry`](crate::Telemetry).
pub const DEFAULT_MAX_TENANTS: usize = 100;
/// Longest accepted tenant id, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// A tenant id as it appears in the `tenant_id` label.
///
/// Cheap to clone. Obtain one from [`Telemetry::tenant`](crate::Telemetry::tenant)
/// (validated and bounded), or use [`Tenant::system`] / [`Tenant::unknown`].
///
/// # Example
///
/// ```
/// use plimsoll_core::{Telemetry, Tenant};
///
/// let telemetry = Telemetry::builder().with_max_tenants(1).build().unwrap();
/// assert_eq!(telemetry.tenant("acme").as_str(), "acme");
/// assert_eq!(telemetry.tenant("globex").as_str(), "__other__"); // past the bound
/// assert_eq!(telemetry.tenant("bad id\n").as_str(), "__unknown__"); // invalid
/// assert_eq!(Tenant::system().as_str(), "__system__");
/// ```
#[derive(Clone, Debug)]
pub struct Tenant {
    pub(crate) label: TenantLabel,
    pub(crate) state: TenantState,
}

/// The label value of a tenant; compares by content, with a pointer fast path.
#[derive(Clone, Debug)]
pub(crate) enum TenantLabel {
    Static(&'static str),
    Shared(Arc<str>),
}

impl TenantLabel {
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        match self {
            TenantLabel::Static(s) => s,
            TenantLabel::Shared(s) => s,
        }
    }
}

impl PartialEq for TenantLabel {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TenantLabel::Shared(a), TenantLabel::Shared(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for TenantLabel {}

impl Hash for TenantLabel {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// How a tenant came to have its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TenantState {
    /// Admitted by the registry `registry`, `index`-th.
    Admitted { registry: u64, index: u32 },
    /// A reserved value that needs no admission.
    Reserved,
    /// Refused by a bound or an allow-list: the label is [`OTHER`].
    Overflow,
}

impl Tenant {
    /// The tenant for series that belong to no tenant: `__system__`.
    pub const fn system() -> Self {
        Self {
            label: TenantLabel::Static(SYSTEM),
            state: TenantState::Reserved,
        }
    }

    /// The tenant used when none could be resolved: `__unknown__`.
    pub const fn unknown() -> Self {
        Self {
            label: TenantLabel::Static(UNKNOWN),
            state: TenantState::Reserved,
        }
    }

    pub(crate) const fn overflow() -> Self {
        Self {
            label: TenantLabel::Static(OTHER),
            state: TenantState::Overflow,
        }
    }

    /// The value of the `tenant_id` label.
    #[inline]
    pub fn as_str(&self) -> &str {
        self.label.as_str()
    }

    /// Whether `other` is a clone of this very tenant: the same label value
    /// (by address, not by content) and the same admission. A test without
    /// hashing, for caches that hold a clone of what they compare against.
    #[inline]
    pub fn same(&self, other: &Tenant) -> bool {
        std::ptr::eq(self.as_str(), other.as_str()) && self.state == other.state
    }

    /// Whether a bound or allow-list refused this tenant (its label is `__other__`).
    pub fn is_overflow(&self) -> bool {
        self.state == TenantState::Overflow
    }

    /// Whether this is a reserved value (`__unknown__`, `__system__`, `__other__`).
    pub fn is_reserved(&self) -> bool {
        !matches!(self.state, TenantState::Admitted { .. })
    }

    /// Checks a raw tenant id: 1 to [`MAX_TENANT_ID_LEN`] bytes of ASCII
    /// letters, digits, `-`, `_`, `.` and `:`, not starting with `__` (the
    /// reserved values' prefix).
    pub fn validate(raw: &str) -> Result<(), InvalidTenant> {
        if raw.is_empty() {
            return Err(InvalidTenant::Empty);
        }
        if raw.len() > MAX_TENANT_ID_LEN {
            return Err(InvalidTenant::TooLong { len: raw.len() });
        }
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        if let Some(position) = raw.bytes().position(|b| !allowed(&b)) {
            // `position` is a character boundary: every byte before it is ASCII.
            let ch = raw[position..].chars().next().unwrap_or('\u{fffd}');
            return Err(InvalidTenant::Character { ch, position });
        }
        if raw.starts_with("__") {
            return Err(InvalidTenant::ReservedPrefix);
        }
        Ok(())
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Tenant {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label
    }
}

impl Eq for Tenant {}

/// Hashes as its id (a tenant can key a map: a rate limiter's state).
impl Hash for Tenant {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.label.hash(state);
    }
}

/// Why a raw tenant id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTenant {
    /// The id is empty.
    #[error("tenant id is empty")]
    Empty,
    /// The id is longer than [`MAX_TENANT_ID_LEN`].
    #[error("tenant id is {len} bytes long; the limit is {MAX_TENANT_ID_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a character outside `[A-Za-z0-9._:-]`.
    #[error(
        "tenant id has the character {ch:?} at byte {position}; allowed are A-Z a-z 0-9 - _ . :"
    )]
    Character {
        /// The first offending character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
    /// The id starts with `__`, the prefix of reserved values.
    #[error("tenant id starts with `__`, which is reserved for plimsoll's own values")]
    ReservedPrefix,
}

/// Why [`Telemetry::try_tenant`](crate::Telemetry::try_tenant) did not
/// give an id its own label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// The id is not a valid tenant id (it would be `__unknown__`).
    #[error(transparent)]
    Invalid(#[from] InvalidTenant),
    /// The id is valid but the bound on distinct tenants is reached (it
    /// would be `__other__`).
    #[error("tenant {id:?} is past the bound of {limit} distinct tenants")]
    BoundReached {
        /// The id.
        id: String,
        /// The bound.
        limit: usize,
    },
    /// The id is valid but not in the allow-list (it would be `__other__`).
    #[error("tenant {id:?} is not in the allow-list")]
    NotAllowed {
        /// The id.
        id: String,
    },
}

static NEXT_REGISTRY_ID: AtomicU64 = AtomicU64::new(1);

/// Slots of the reserved tenants: `__system__`, `__unknown__`, `__other__`.
const RESERVED_SLOTS: usize = 3;

/// The tenants admitted by one `Telemetry`.
#[derive(Debug)]
pub(crate) struct TenantRegistry {
    id: u64,
    limit: usize,
    admitted: BoundedSet,
    allowed: Option<BoundedSet>,
    /// Whether a foreign tenant was seen (warned about once).
    foreign_seen: std::sync::atomic::AtomicBool,
}

impl TenantRegistry {
    pub(crate) fn new(max_tenants: usize, allowed: Option<&[String]>) -> Self {
        let allowed = allowed.map(|list| {
            let set = BoundedSet::new(list.len());
            for id in list {
                set.insert(id);
            }
            set
        });
        Self {
            id: NEXT_REGISTRY_ID.fetch_add(1, Ordering::Relaxed),
            limit: max_tenants,
            admitted: BoundedSet::new(max_tenants),
            allowed,
            foreign_seen: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Validates and bounds a raw id.
    pub(crate) fn resolve(&self, raw: &str) -> Tenant {
        if Tenant::validate(raw).is_err() {
            return Tenant::unknown();
        }
        self.admit(raw)
    }

    /// Like `resolve`, saying why an id did not get its own label.
    pub(crate) fn try_resolve(&self, raw: &str) -> Result<Tenant, TenantError> {
        Tenant::validate(raw)?;
        let tenant = self.admit(raw);
        if !tenant.is_overflow() {
            return Ok(tenant);
        }
        Err(match &self.allowed {
            Some(allowed) if allowed.get(raw).is_none() => {
                TenantError::NotAllowed { id: raw.into() }
            }
            _ => TenantError::BoundReached {
                id: raw.into(),
                limit: self.limit,
            },
        })
    }

    /// The bound on distinct tenants.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A tenant of any registry, admitted here.
    pub(crate) fn adopt(&self, tenant: &Tenant) -> Tenant {
        match tenant.state {
            TenantState::Admitted { registry, .. } if registry != self.id => {
                self.admit(tenant.as_str())
            }
            _ => tenant.clone(),
        }
    }

    fn admitted_state(&self, index: usize) -> TenantState {
        TenantState::Admitted {
            registry: self.id,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }

    /// How many tenant slots there are: the reserved tenants, then one per
    /// tenant the bound admits.
    pub(crate) fn slots(&self) -> usize {
        RESERVED_SLOTS.saturating_add(self.limit)
    }

    /// `tenant`'s slot: reserved tenants first, then admitted ones in the
    /// order of admission; `None` for another registry's tenant.
    #[inline]
    pub(crate) fn slot(&self, tenant: &Tenant) -> Option<usize> {
        match tenant.state {
            TenantState::Admitted { registry, index } if registry == self.id => {
                RESERVED_SLOTS.checked_add(usize::try_from(index).ok()?)
            }
            TenantState::Admitted { .. } => None,
            TenantState::Overflow => Some(2),
            TenantState::Reserved if tenant.as_str() == SYSTEM => Some(0),
            TenantState::Reserved => Some(1),
        }
    }

    /// Like `resolve`, for a value that is known to be valid.
    fn admit(&self, valid: &str) -> Tenant {
        if let Some(allowed) = &self.allowed
            && allowed.get(valid).is_none()
        {
            return Tenant::overflow();
        }
        match self.admitted.admit(valid) {
            Admission::Admitted(shared, index) => Tenant {
                label: TenantLabel::Shared(shared),
                state: self.admitted_state(index),
            },
            Admission::Refused => Tenant::overflow(),
        }
    }

    /// The tenant whose (rebound) label a series carries: labels are
    /// either reserved values or values admitted here.
    pub(crate) fn tenant_of(&self, label: &TenantLabel) -> Tenant {
        let state = match label {
            TenantLabel::Static(value) if *value == OTHER => TenantState::Overflow,
            TenantLabel::Static(_) => TenantState::Reserved,
            TenantLabel::Shared(value) => {
                self.admitted_state(self.admitted.index_of(value).unwrap_or(usize::MAX))
            }
        };
        Tenant {
            label: label.clone(),
            state,
        }
    }

    /// Returns `tenant` as this registry labels it: a tenant admitted by
    /// another `Telemetry` is refused (`__unknown__`, with one warning per
    /// registry); [`adopt`](TenantRegistry::adopt) admits one explicitly.
    #[inline]
    pub(crate) fn rebind<'a>(&self, tenant: &'a Tenant) -> std::borrow::Cow<'a, Tenant> {
        match tenant.state {
            TenantState::Admitted { registry, .. } if registry != self.id => {
                self.foreign(tenant);
                std::borrow::Cow::Owned(Tenant::unknown())
            }
            _ => std::borrow::Cow::Borrowed(tenant),
        }
    }

    #[cold]
    fn foreign(&self, tenant: &Tenant) {
        if !self.foreign_seen.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "plimsoll",
                tenant = tenant.as_str(),
                "a tenant resolved by another Telemetry was recorded here; it is recorded as \
                 __unknown__ (resolve tenants with this Telemetry, or call Telemetry::adopt)"
            );
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.admitted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(Tenant::validate("acme-01.eu:prod_x"), Ok(()));
        assert_eq!(Tenant::validate(""), Err(InvalidTenant::Empty));
        assert_eq!(
            Tenant::validate(&"a".repeat(65)),
            Err(InvalidTenant::TooLong { len: 65 })
        );
        assert_eq!(
            Tenant::validate("a\"b"),
            Err(InvalidTenant::Character {
                ch: '"',
                position: 1
            })
        );
        assert_eq!(
            Tenant::validate("__system__"),
            Err(InvalidTenant::ReservedPrefix)
        );
        assert_eq!(
            Tenant::validate("é").unwrap_err().to_string(),
            "tenant id has the character 'é' at byte 0; allowed are A-Z a-z 0-9 - _ . :"
        );
    }

    #[test]
    fn invalid_and_impersonating_ids_resolve_to_unknown() {
        let registry = TenantRegistry::new(10, None);
        for raw in [
            "",
            "a b",
            "x\ny",
            "__other__",
            "__system__",
            &"z".repeat(100),
        ] {
            let tenant = registry.resolve(raw);
            assert_eq!(tenant.as_str(), UNKNOWN, "{raw:?}");
            assert!(!tenant.is_overflow());
        }
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn bound_and_allow_list() {
        let allowed = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let registry = TenantRegistry::new(2, Some(&allowed));
        assert_eq!(registry.resolve("a").as_str(), "a");
        assert!(registry.resolve("zzz").is_overflow());
        assert_eq!(registry.resolve("b").as_str(), "b");
        let c = registry.resolve("c");
        assert_eq!((c.as_str(), c.is_overflow()), (OTHER, true));
    }

    #[test]
    fn foreign_tenants_are_refused_unless_adopted() {
        let one = TenantRegistry::new(1, None);
        let two = TenantRegistry::new(2, None);
        let _ = two.resolve("first");
        let t = one.resolve("acme");
        assert!(matches!(one.rebind(&t), std::borrow::Cow::Borrowed(_)));
        assert_eq!(two.rebind(&t).as_str(), UNKNOWN);
        assert_eq!(two.len(), 1, "rebinding admits nothing");
        let adopted = two.adopt(&t);
        assert_eq!(adopted.as_str(), "acme");
        assert!(matches!(
            two.rebind(&adopted),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(two.adopt(&one.resolve("acme")).is_overflow() || two.len() == 2);
    }

    #[test]
    fn try_resolve_tells_invalid_from_refused() {
        let allowed = vec!["a".to_string(), "b".to_string()];
        let registry = TenantRegistry::new(1, Some(&allowed));
        assert_eq!(registry.try_resolve("a").unwrap().as_str(), "a");
        assert_eq!(
            registry.try_resolve("b"),
            Err(TenantError::BoundReached {
                id: "b".into(),
                limit: 1
            })
        );
        assert_eq!(
            registry.try_resolve("zed"),
            Err(TenantError::NotAllowed { id: "zed".into() })
        );
        assert_eq!(
            registry.try_resolve("a b"),
            Err(TenantError::Invalid(InvalidTenant::Character {
                ch: ' ',
                position: 1
            }))
        );
    }
}
