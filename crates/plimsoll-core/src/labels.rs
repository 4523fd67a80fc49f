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
    out: &'a mut String,
    names: &'static [&'static str],
    written: usize,
}

impl<'a> LabelValues<'a> {
    pub(crate) fn new(out: &'a mut String, names: &'static [&'static str]) -> Self {
        Self {
            out,
            names,
            written: 0,
        }
    }

    /// Writes the next label's value (escaped). Values past the number of
    /// names are ignored.
    pub fn push(&mut self, value: &str) {
        let Some(name) = self.names.get(self.written) else {
            return;
        };
        self.out.push(',');
        self.out.push_str(name);
        self.out.push_str("=\"");
        write_escaped(self.out, value);
        self.out.push('"');
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
    overflow: crate::metrics::OverflowCounter,
    /// `__other__`, shared so the overflow path does not allocate.
    other: Arc<str>,
}

impl LabelGuard {
    pub(crate) fn new(limit: usize, overflow: crate::metrics::OverflowCounter) -> Self {
        Self {
            inner: Arc::new(GuardInner {
                values: crate::bounded::BoundedSet::new(limit),
                overflow,
                other: Arc::from(crate::names::OTHER),
            }),
        }
    }

    /// Returns the shared copy of `value` while fewer than `limit` distinct
    /// values were seen (or `value` was seen before); `__other__` otherwise,
    /// counting the overflow.
    pub fn admit(&self, value: &str) -> Arc<str> {
        match self.inner.values.admit(value) {
            crate::bounded::Admission::Admitted(shared) => shared,
            crate::bounded::Admission::Refused => {
                self.inner.overflow.inc();
                self.inner.other.clone()
            }
        }
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
