//! A set of strings that admits at most `limit` distinct values.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use hashbrown::HashTable;

/// What [`BoundedSet::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The value is in the set (admitted now or before): the shared copy,
    /// and the value's place in the order of admission (0 for the first).
    Admitted(Arc<str>, usize),
    /// The set is full (or the value is not allowed); the caller uses the overflow value.
    Refused,
}

/// An interning set bounded to `limit` values. Values are never evicted, so a
/// value admitted once keeps its label for the life of the process.
#[derive(Debug)]
pub(crate) struct BoundedSet {
    limit: usize,
    hasher: foldhash::fast::RandomState,
    /// Each value with its place in the order of admission.
    values: RwLock<HashTable<(Arc<str>, usize)>>,
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
        if let Some((found, _)) = values.find(hash, |(v, _)| &**v == value) {
            return found.clone();
        }
        let shared: Arc<str> = Arc::from(value);
        let index = values.len();
        values.insert_unique(hash, (shared.clone(), index), |(v, _)| {
            self.hasher.hash_one(&**v)
        });
        shared
    }

    /// Looks `value` up without admitting it.
    pub(crate) fn get(&self, value: &str) -> Option<Arc<str>> {
        let hash = self.hasher.hash_one(value);
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        values
            .find(hash, |(v, _)| &**v == value)
            .map(|(v, _)| v.clone())
    }

    /// The place of `value` in the order of admission, if admitted.
    pub(crate) fn index_of(&self, value: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(value);
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        values.find(hash, |(v, _)| &**v == value).map(|(_, i)| *i)
    }

    /// Returns the shared copy of `value`, admitting it while there is room.
    pub(crate) fn admit(&self, value: &str) -> Admission {
        let hash = self.hasher.hash_one(value);
        {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            if let Some((found, index)) = values.find(hash, |(v, _)| &**v == value) {
                return Admission::Admitted(found.clone(), *index);
            }
            if values.len() >= self.limit {
                return Admission::Refused;
            }
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if let Some((found, index)) = values.find(hash, |(v, _)| &**v == value) {
            return Admission::Admitted(found.clone(), *index);
        }
        if values.len() >= self.limit {
            return Admission::Refused;
        }
        let shared: Arc<str> = Arc::from(value);
        let index = values.len();
        values.insert_unique(hash, (shared.clone(), index), |(v, _)| {
            self.hasher.hash_one(&**v)
        });
        Admission::Admitted(shared, index)
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
        assert!(matches!(set.admit("a"), Admission::Admitted(v, 0) if &*v == "a"));
        assert!(matches!(set.admit("b"), Admission::Admitted(_, 1)));
        assert_eq!(set.admit("c"), Admission::Refused);
        // Values admitted before stay admitted, in their place.
        assert!(matches!(set.admit("a"), Admission::Admitted(_, 0)));
        assert_eq!(set.index_of("b"), Some(1));
        assert_eq!(set.index_of("c"), None);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn admitted_values_are_shared() {
        let set = BoundedSet::new(4);
        let (Admission::Admitted(a, _), Admission::Admitted(b, _)) =
            (set.admit("x"), set.admit("x"))
        else {
            panic!("x must be admitted");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }
}
