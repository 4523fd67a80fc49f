//! A set of strings that admits at most `limit` distinct values.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use hashbrown::HashTable;

/// What [`BoundedSet::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The value is in the set (admitted now or before); this is the shared copy.
    Admitted(Arc<str>),
    /// The set is full (or the value is not allowed); the caller uses the overflow value.
    Refused,
}

/// An interning set bounded to `limit` values. Values are never evicted, so a
/// value admitted once keeps its label for the life of the process.
#[derive(Debug)]
pub(crate) struct BoundedSet {
    limit: usize,
    hasher: foldhash::fast::RandomState,
    values: RwLock<HashTable<Arc<str>>>,
}

impl BoundedSet {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            hasher: foldhash::fast::RandomState::default(),
            values: RwLock::new(HashTable::new()),
        }
    }

    /// Pre-admits a value regardless of the limit (allow-lists).
    pub(crate) fn insert(&self, value: &str) -> Arc<str> {
        let hash = self.hasher.hash_one(value);
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = values.find(hash, |v| &**v == value) {
            return found.clone();
        }
        let shared: Arc<str> = Arc::from(value);
        values.insert_unique(hash, shared.clone(), |v| self.hasher.hash_one(&**v));
        shared
    }

    /// Looks `value` up without admitting it.
    pub(crate) fn get(&self, value: &str) -> Option<Arc<str>> {
        let hash = self.hasher.hash_one(value);
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        values.find(hash, |v| &**v == value).cloned()
    }

    /// Returns the shared copy of `value`, admitting it while there is room.
    pub(crate) fn admit(&self, value: &str) -> Admission {
        let hash = self.hasher.hash_one(value);
        {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            if let Some(found) = values.find(hash, |v| &**v == value) {
                return Admission::Admitted(found.clone());
            }
            if values.len() >= self.limit {
                return Admission::Refused;
            }
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = values.find(hash, |v| &**v == value) {
            return Admission::Admitted(found.clone());
        }
        if values.len() >= self.limit {
            return Admission::Refused;
        }
        let shared: Arc<str> = Arc::from(value);
        values.insert_unique(hash, shared.clone(), |v| self.hasher.hash_one(&**v));
        Admission::Admitted(shared)
    }

    pub(crate) fn len(&self) -> usize {
        self.values.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let set = BoundedSet::new(2);
        assert!(matches!(set.admit("a"), Admission::Admitted(v) if &*v == "a"));
        assert!(matches!(set.admit("b"), Admission::Admitted(_)));
        assert_eq!(set.admit("c"), Admission::Refused);
        // Values admitted before stay admitted.
        assert!(matches!(set.admit("a"), Admission::Admitted(_)));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn admitted_values_are_shared() {
        let set = BoundedSet::new(4);
        let (Admission::Admitted(a), Admission::Admitted(b)) = (set.admit("x"), set.admit("x"))
        else {
            panic!("x must be admitted");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }
}
