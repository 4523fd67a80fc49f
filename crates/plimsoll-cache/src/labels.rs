//! Label sets of the cache families.

use std::sync::Arc;

use plimsoll_core::{LabelField, LabelValue, LabelValues, impl_label_set, label_key};

macro_rules! closed_label {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $value:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $value,)* }
            }
        }

        impl LabelValue for $name {
            #[inline]
            fn write_value(&self, out: &mut LabelValues<'_>) {
                out.push(self.as_str())
            }
        }

        impl LabelField for $name {
            type Ref<'a> = $name;
            #[inline]
            fn as_ref_value(&self) -> $name {
                *self
            }
            fn from_ref_value(value: $name) -> Self {
                value
            }
        }
    };
}

closed_label!(
    /// The `operation` label.
    Operation {
        /// A lookup.
        Get => "get",
        /// An insert.
        Set => "set",
        /// An invalidation.
        Delete => "delete",
        /// A load on a miss (`get_with`).
        Load => "load",
    }
);

closed_label!(
    /// The `status` label.
    Status {
        /// A get that found the key (or a `get_with` served from the cache).
        Hit => "hit",
        /// A get that did not.
        Miss => "miss",
        /// A set, delete or load that succeeded.
        Success => "success",
        /// A load that failed (or was dropped before it completed).
        Error => "error",
    }
);

closed_label!(
    /// The `cause` label of an eviction.
    Cause {
        /// The entry's time to live or idle passed.
        Expired => "expired",
        /// The entry was invalidated.
        Explicit => "explicit",
        /// The entry's value was replaced.
        Replaced => "replaced",
        /// The entry was evicted to stay within the capacity.
        Size => "size",
    }
);

/// Labels of `cache_operations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct OperationLabels {
    /// The operation.
    pub operation: Operation,
    /// The cache's name, bounded.
    pub cache_name: Arc<str>,
    /// The outcome.
    pub status: Status,
}
impl_label_set!(OperationLabels {
    operation,
    cache_name,
    status
});
label_key!(
    /// The borrowed form of [`OperationLabels`].
    pub struct OperationKey for OperationLabels { operation: Operation, cache_name: Arc<str>, status: Status }
);

/// Labels of `cache_operation_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct DurationLabels {
    /// The operation.
    pub operation: Operation,
    /// The cache's name, bounded.
    pub cache_name: Arc<str>,
}
impl_label_set!(DurationLabels {
    operation,
    cache_name
});
label_key!(
    /// The borrowed form of [`DurationLabels`].
    pub struct DurationKey for DurationLabels { operation: Operation, cache_name: Arc<str> }
);

/// Labels of `cache_evictions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct EvictionLabels {
    /// The cache's name, bounded.
    pub cache_name: Arc<str>,
    /// Why the entry was removed.
    pub cause: Cause,
}
impl_label_set!(EvictionLabels { cache_name, cause });
label_key!(
    /// The borrowed form of [`EvictionLabels`].
    pub struct EvictionKey for EvictionLabels { cache_name: Arc<str>, cause: Cause }
);

/// Labels of the scrape-time gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct CacheLabels {
    /// The cache's name, bounded.
    pub cache_name: Arc<str>,
}
impl_label_set!(CacheLabels { cache_name });
