//! User label sets and bounded label values.
//!
//! A label set is a struct deriving `Clone, Debug, Hash, PartialEq, Eq` that
//! implements [`LabelSet`], most simply through [`impl_label_set!`](crate::impl_label_set).
//! Closed sets are best written as enums implementing [`LabelValue`].
//!
//! # Example
//!
//! ```
//! use plimsoll_core::{LabelValue, LabelValues, impl_label_set};
//!
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
//! enum Channel { Web, Mobile }
//!
//! impl LabelValue for Channel {
//!     fn write_value(&self, out: &mut LabelValues<'_>) {
//!         out.push(match self { Channel::Web => "web", Channel::Mobile => "mobile" });
//!     }
//! }
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct OrderLabels { channel: Channel, region: String }
//! impl_label_set!(OrderLabels { channel, region });
//! ```

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::Arc;

use crate::encoding::write_escaped;

/// A set of labels a family is keyed by; `tenant_id` is added by plimsoll.
pub trait LabelSet: Clone + std::fmt::Debug + Eq + Hash + Send + Sync + 'static {
    /// The label names, in the order [`write_values`](LabelSet::write_values) writes them.
    const NAMES: &'static [&'static str];

    /// Whether the names are given at registration instead
    /// ([`DynLabels`]); `NAMES` is then empty.
    const DYNAMIC: bool = false;

    /// Writes one value per name, in order.
    fn write_values(&self, out: &mut LabelValues<'_>);
}

/// A borrowed form of a label set `L`, for recording without building an
/// owned `L` (and allocating) on every observation.
///
/// `hash` must feed the hasher exactly what `L`'s `Hash` feeds it for the
/// equal label set (deriving `Hash` on a struct with the same fields in the
/// same order, with `&str` where `L` has `String` or `Arc<str>`, does that).
/// Every `LabelSet` is a `LabelKey` of itself.
///
/// ```
/// use plimsoll_core::{LabelKey, Telemetry, impl_label_set};
/// use std::sync::Arc;
///
/// #[derive(Clone, Debug, Hash, PartialEq, Eq)]
/// struct Route { route: Arc<str> }
/// impl_label_set!(Route { route });
///
/// #[derive(Hash)]
/// struct RouteRef<'a> { route: &'a str }
/// impl LabelKey<Route> for RouteRef<'_> {
///     fn matches(&self, labels: &Route) -> bool { *labels.route == *self.route }
///     fn to_labels(&self) -> Route { Route { route: self.route.into() } }
/// }
///
/// let telemetry = Telemetry::builder().build().unwrap();
/// let hits = telemetry.counter::<Route>("hits", "Hits.").unwrap();
/// let acme = telemetry.tenant("acme");
/// hits.inc(&acme, &RouteRef { route: "/orders" });
/// hits.inc(&acme, &Route { route: "/orders".into() });
/// assert_eq!(hits.get(&acme, &RouteRef { route: "/orders" }), 2);
/// assert_eq!(hits.series_count(), 1);
/// ```
pub trait LabelKey<L>: Hash {
    /// Whether this key names `labels`.
    fn matches(&self, labels: &L) -> bool;
    /// The owned label set, built when a series is created.
    fn to_labels(&self) -> L;
}

impl<L: LabelSet> LabelKey<L> for L {
    #[inline]
    fn matches(&self, labels: &L) -> bool {
        self == labels
    }
    fn to_labels(&self) -> L {
        self.clone()
    }
}

impl LabelSet for () {
    const NAMES: &'static [&'static str] = &[];
    fn write_values(&self, _: &mut LabelValues<'_>) {}
}

/// Label values of a family whose label names are known only at run time
/// (a bridge from another metrics API; see
/// [`Telemetry::counter_dyn`](crate::Telemetry::counter_dyn)): one value per
/// name given at registration, in that order. Values missing at the end
/// are empty (`["email"]` and `["email", ""]` are one series); give no more
/// values than names (those past the names are not written, so two sets
/// differing there would print alike).
///
/// ```
/// use plimsoll_core::{DynLabels, MetricOpts, Telemetry};
///
/// let telemetry = Telemetry::builder().build().unwrap();
/// let jobs = telemetry
///     .counter_dyn(MetricOpts::new("jobs", "Jobs run."), &["queue", "outcome"])
///     .unwrap();
/// let acme = telemetry.tenant("acme");
/// jobs.inc(&acme, &DynLabels::new(["email", "ok"]));
/// jobs.inc(&acme, &DynLabels::new(["email", ""]));
/// jobs.inc(&acme, &DynLabels::new(["email"]));
/// assert_eq!(jobs.get(&acme, &DynLabels::new(["email", "ok"])), 1);
/// assert_eq!(jobs.get(&acme, &DynLabels::new(["email"])), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DynLabels(Box<[Box<str>]>);

impl DynLabels {
    /// Label values, in the order of the family's names.
    pub fn new<V: AsRef<str>>(values: impl IntoIterator<Item = V>) -> Self {
        let mut values: Vec<Box<str>> = values.into_iter().map(|v| v.as_ref().into()).collect();
        // Trailing empty values are written as the padding is: one series.
        while values.last().is_some_and(|v| v.is_empty()) {
            values.pop();
        }
        Self(values.into())
    }

    /// The values.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|v| &**v)
    }
}

impl LabelSet for DynLabels {
    const NAMES: &'static [&'static str] = &[];
    const DYNAMIC: bool = true;
    fn write_values(&self, out: &mut LabelValues<'_>) {
        for value in self.values() {
            out.push(value);
        }
    }
}

/// A label field type with a borrowed form that hashes and compares like it,
/// so that a borrowed key (see [`label_key!`](crate::label_key)) finds the
/// series of an owned label set without building one.
///
/// `Hash` of [`Ref`](LabelField::Ref) must feed a hasher exactly what `Hash`
/// of `Self` feeds it: `&str` for `String`, `Arc<str>` and `Box<str>` (all
/// hash as `str`), the value itself for `Copy` types.
pub trait LabelField: LabelValue + Sized {
    /// The borrowed form.
    type Ref<'a>: Copy + Hash + PartialEq + std::fmt::Debug
    where
        Self: 'a;
    /// The borrowed form of this value.
    fn as_ref_value(&self) -> Self::Ref<'_>;
    /// The owned value of a borrowed form (allocates for strings); called
    /// only when a series is created.
    fn from_ref_value(value: Self::Ref<'_>) -> Self;
}

macro_rules! str_fields {
    ($($ty:ty),*) => {$(
        impl LabelField for $ty {
            type Ref<'a> = &'a str;
            #[inline]
            fn as_ref_value(&self) -> &str { self }
            fn from_ref_value(value: &str) -> Self { value.into() }
        }
    )*};
}
str_fields!(String, Arc<str>, Box<str>);

impl LabelField for &'static str {
    type Ref<'a> = &'static str;
    #[inline]
    fn as_ref_value(&self) -> &'static str {
        self
    }
    fn from_ref_value(value: &'static str) -> Self {
        value
    }
}

macro_rules! copy_fields {
    ($($ty:ty),*) => {$(
        impl LabelField for $ty {
            type Ref<'a> = $ty;
            #[inline]
            fn as_ref_value(&self) -> $ty { *self }
            fn from_ref_value(value: $ty) -> Self { value }
        }
    )*};
}
copy_fields!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, bool);

/// A closed set of label values: a fieldless enum whose inputs from outside
/// map onto a fixed list, with anything unknown on one variant (by
/// convention `Other`). Its series count is bounded by construction.
///
/// Derive it with `#[derive(LabelValue)]` from `plimsoll-macros`, or
/// implement it by hand:
///
/// ```
/// use plimsoll_core::{ClosedLabel, LabelValue, LabelValues};
///
/// #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
/// enum Channel { Web, Mobile, Other }
///
/// impl LabelValue for Channel {
///     fn write_value(&self, out: &mut LabelValues<'_>) { out.push(self.as_str()) }
/// }
/// impl ClosedLabel for Channel {
///     const VALUES: &'static [&'static str] = &["web", "mobile", "other"];
///     fn as_str(&self) -> &'static str { Self::VALUES[*self as usize] }
///     fn from_label(value: &str) -> Self {
///         match value { "web" => Channel::Web, "mobile" => Channel::Mobile, _ => Channel::Other }
///     }
/// }
/// assert_eq!(Channel::from_label("carrier-pigeon"), Channel::Other);
/// ```
pub trait ClosedLabel: LabelValue + Copy + Eq + Hash + Send + Sync + 'static {
    /// Every label value, in the order of the variants.
    const VALUES: &'static [&'static str];
    /// This variant's label value.
    fn as_str(&self) -> &'static str;
    /// The variant whose label value is `value`; the catch-all variant for
    /// anything else.
    fn from_label(value: &str) -> Self;
}

/// A value that can be written as a label value.
pub trait LabelValue {
    /// Writes the value with [`LabelValues::push`].
    fn write_value(&self, out: &mut LabelValues<'_>);
}

macro_rules! str_values {
    ($($ty:ty),*) => {$(
        impl LabelValue for $ty {
            #[inline]
            fn write_value(&self, out: &mut LabelValues<'_>) { out.push(self) }
        }
    )*};
}
str_values!(&'static str, String, Arc<str>, Box<str>, Cow<'static, str>);

macro_rules! int_values {
    ($($ty:ty),*) => {$(
        impl LabelValue for $ty {
            #[inline]
            fn write_value(&self, out: &mut LabelValues<'_>) {
                out.push(itoa::Buffer::new().format(*self))
            }
        }
    )*};
}
int_values!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl LabelValue for bool {
    fn write_value(&self, out: &mut LabelValues<'_>) {
        out.push(if *self { "true" } else { "false" })
    }
}

/// Writes label values during exposition; handed to [`LabelSet::write_values`].
#[derive(Debug)]
pub struct LabelValues<'a> {
    /// `None`: nothing is written, the values are only checked against
    /// `__other__` (see [`all_other`]).
    out: Option<&'a mut String>,
    names: &'a [&'static str],
    written: usize,
    all_other: bool,
}

impl<'a> LabelValues<'a> {
    pub(crate) fn new(out: &'a mut String, names: &'a [&'static str]) -> Self {
        Self {
            out: Some(out),
            names,
            written: 0,
            all_other: true,
        }
    }

    /// Writes the next label's value (escaped). Values past the number of
    /// names are ignored.
    pub fn push(&mut self, value: &str) {
        let Some(out) = self.out.as_deref_mut() else {
            // Checking (see `all_other`): every value counts, names or not.
            self.all_other &= value == crate::names::OTHER;
            self.written += 1;
            return;
        };
        let Some(name) = self.names.get(self.written) else {
            return;
        };
        out.push(',');
        out.push_str(name);
        out.push_str("=\"");
        write_escaped(out, value);
        out.push('"');
        self.written += 1;
    }

    /// Writes empty values for names the label set did not write, so that
    /// every series of a family has the same label names.
    pub(crate) fn finish(mut self) {
        while self.written < self.names.len() {
            self.push("");
        }
    }
}

/// Whether every label of `labels` is `__other__` (values folded by label
/// guards): such a set is written exactly like a tenant's overflow series,
/// and the two are written as one. A set with no labels is not. Writes
/// nothing, allocates nothing.
pub(crate) fn all_other<L: LabelSet>(labels: &L, names: usize) -> bool {
    let mut values = LabelValues {
        out: None,
        names: L::NAMES,
        written: 0,
        all_other: true,
    };
    labels.write_values(&mut values);
    // Every one of the family's `names` (a dynamic set may have fewer
    // values than names: the rest are empty, not `__other__`).
    values.all_other && values.written > 0 && values.written == names
}

/// Implements [`LabelSet`] for a struct whose fields implement [`LabelValue`];
/// each field name is the label name.
///
/// ```
/// #[derive(Clone, Debug, Hash, PartialEq, Eq)]
/// struct Labels { queue: &'static str, priority: u8 }
/// plimsoll_core::impl_label_set!(Labels { queue, priority });
/// assert_eq!(<Labels as plimsoll_core::LabelSet>::NAMES, &["queue", "priority"]);
/// ```
#[macro_export]
macro_rules! impl_label_set {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl $crate::LabelSet for $ty {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            fn write_values(&self, out: &mut $crate::LabelValues<'_>) {
                $( $crate::LabelValue::write_value(&self.$field, out); )*
            }
        }
    };
}

/// Declares the borrowed key of a label set: a struct with the same fields
/// in the same order, each in its [`LabelField::Ref`] form, implementing
/// [`LabelKey`] for the owned set. Recording with the key allocates nothing
/// for series that exist; it hashes exactly like the owned set.
///
/// ```
/// use std::sync::Arc;
/// use plimsoll_core::{Telemetry, impl_label_set, label_key};
///
/// #[derive(Clone, Debug, Hash, PartialEq, Eq)]
/// struct Call { service: Arc<str>, status: u16 }
/// impl_label_set!(Call { service, status });
/// label_key!(pub struct CallKey for Call { service: Arc<str>, status: u16 });
///
/// let telemetry = Telemetry::builder().build().unwrap();
/// let calls = telemetry.counter::<Call>("calls", "Calls.").unwrap();
/// let acme = telemetry.tenant("acme");
/// calls.inc(&acme, &CallKey { service: "payments", status: 200 });
/// calls.inc(&acme, &Call { service: "payments".into(), status: 200 });
/// assert_eq!(calls.get(&acme, &CallKey { service: "payments", status: 200 }), 2);
/// assert_eq!(calls.series_count(), 1);
/// ```
#[macro_export]
macro_rules! label_key {
    ($(#[$meta:meta])* $vis:vis struct $key:ident for $owned:ident { $($field:ident : $fty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Hash)]
        #[allow(missing_docs)]
        $vis struct $key<'a> {
            $( pub $field: <$fty as $crate::LabelField>::Ref<'a>, )*
        }

        impl $crate::LabelKey<$owned> for $key<'_> {
            #[inline]
            fn matches(&self, labels: &$owned) -> bool {
                true $( && $crate::LabelField::as_ref_value(&labels.$field) == self.$field )*
            }
            fn to_labels(&self) -> $owned {
                $owned { $( $field: <$fty as $crate::LabelField>::from_ref_value(self.$field), )* }
            }
        }
    };
}

/// Bounds one open label (a route from a custom extractor, a table, an
/// endpoint): at most `limit` distinct values keep their own label; past
/// that, [`admit`](LabelGuard::admit) returns `__other__` and
/// `plimsoll_cardinality_overflow_total{metric,label}` goes up.
///
/// Get one from [`Telemetry::label_guard`](crate::Telemetry::label_guard).
#[derive(Clone, Debug)]
pub struct LabelGuard {
    inner: Arc<GuardInner>,
}

#[derive(Debug)]
struct GuardInner {
    values: crate::bounded::BoundedSet,
    limit: usize,
    /// Created the first time the bound is reached, so that a guard that
    /// never overflows adds no series.
    overflow: std::sync::OnceLock<crate::metrics::OverflowCounter>,
    overflow_family: Arc<crate::metrics::OverflowFamily>,
    /// The family as exposed, and the label.
    metric: String,
    label: String,
    /// `__other__`, shared so the overflow path does not allocate.
    other: Arc<str>,
}

impl LabelGuard {
    pub(crate) fn new(
        limit: usize,
        overflow_family: Arc<crate::metrics::OverflowFamily>,
        metric: String,
        label: String,
    ) -> Self {
        Self {
            inner: Arc::new(GuardInner {
                values: crate::bounded::BoundedSet::new(limit),
                limit,
                overflow: std::sync::OnceLock::new(),
                overflow_family,
                metric,
                label,
                other: Arc::from(crate::names::OTHER),
            }),
        }
    }

    /// Returns the shared copy of `value` while fewer than `limit` distinct
    /// values were seen (or `value` was seen before); `__other__` otherwise,
    /// counting the overflow.
    pub fn admit(&self, value: &str) -> Arc<str> {
        self.try_admit(value).unwrap_or_else(|| {
            self.count_overflow();
            self.inner.other.clone()
        })
    }

    /// Like [`admit`](LabelGuard::admit), but a refused value is `None`
    /// and not counted: for a caller that resolves a value once and counts
    /// each later use with [`count_overflow`](LabelGuard::count_overflow).
    pub fn try_admit(&self, value: &str) -> Option<Arc<str>> {
        match self.inner.values.admit(value) {
            crate::bounded::Admission::Admitted(shared, _) => Some(shared),
            crate::bounded::Admission::Refused => None,
        }
    }

    /// Counts one use of a value past the bound in
    /// `plimsoll_cardinality_overflow_total{metric,label}`.
    #[cold]
    pub fn count_overflow(&self) {
        let inner = &*self.inner;
        inner
            .overflow
            .get_or_init(|| {
                crate::metrics::OverflowCounter::new(
                    &inner.overflow_family,
                    &inner.metric,
                    &inner.label,
                    inner.limit,
                )
            })
            .inc();
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// The number of distinct values admitted so far.
    pub fn len(&self) -> usize {
        self.inner.values.len()
    }

    /// Whether no value was admitted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Fixed {
        method: &'static str,
        code: u16,
    }
    crate::impl_label_set!(Fixed { method, code });
    crate::label_key!(struct FixedKey for Fixed { method: &'static str, code: u16 });

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Open {
        method: &'static str,
        route: Arc<str>,
        name: String,
    }
    crate::impl_label_set!(Open {
        method,
        route,
        name
    });
    crate::label_key!(struct OpenKey for Open { method: &'static str, route: Arc<str>, name: String });

    #[test]
    fn keys_hash_and_match_like_their_labels() {
        let h = BuildHasherDefault::<DefaultHasher>::default();
        let owned = Open {
            method: "GET",
            route: "/a/{id}".into(),
            name: "x".into(),
        };
        let key = OpenKey {
            method: "GET",
            route: "/a/{id}",
            name: "x",
        };
        assert_eq!(h.hash_one(&owned), h.hash_one(key));
        assert!(key.matches(&owned));
        assert_eq!(key.to_labels(), owned);
        assert!(!OpenKey { name: "y", ..key }.matches(&owned));
        let fixed = FixedKey {
            method: "GET",
            code: 200,
        };
        assert_eq!(
            h.hash_one(fixed),
            h.hash_one(Fixed {
                method: "GET",
                code: 200
            })
        );
    }
}
