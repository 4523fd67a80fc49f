//! The storage behind every family: a sharded index over an append-only list.
//!
//! Lookups hash the key once (foldhash, random seed), take one shard's read
//! lock, probe an index of packed hash/position words, and compare against entries that live in a lock-free append-only
//! vector; nothing is allocated on the warm path. New series take one shard's
//! write lock. Series are never removed, so an index stays valid for the life
//! of the family, and exposition walks the entries in creation order without
//! blocking recorders.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::labels::{LabelKey, LabelSet};
use crate::tenant::TenantLabel;

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;

/// An insert-only open-addressing index from a key's hash to its entry.
///
/// A slot packs the hash's low 32 bits and `index + 1` into one word (0 is
/// empty), so a probe reads one cache line and compares most misses away
/// without touching the entry. Linear probing, at most 3/4 full.
#[derive(Debug, Default)]
struct Index {
    slots: Box<[u64]>,
    len: usize,
}

impl Index {
    #[inline]
    fn pack(hash: u32, index: u32) -> u64 {
        (u64::from(hash) << 32) | (u64::from(index) + 1)
    }

    /// Calls `eq` with the entry index of each slot whose hash matches.
    #[inline]
    fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut pos = spread(hash) & mask;
        loop {
            let slot = self.slots[pos];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == hash {
                let index = (slot as u32).wrapping_sub(1);
                if eq(index) {
                    return Some(index);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    fn insert(&mut self, hash: u32, index: u32) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        Self::place(&mut self.slots, Self::pack(hash, index));
        self.len += 1;
    }

    fn place(slots: &mut [u64], packed: u64) {
        let mask = slots.len() - 1;
        let mut pos = spread((packed >> 32) as u32) & mask;
        while slots[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        slots[pos] = packed;
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(16);
        let mut slots = vec![0u64; capacity].into_boxed_slice();
        for &packed in self.slots.iter().filter(|s| **s != 0) {
            Self::place(&mut slots, packed);
        }
        self.slots = slots;
    }
}

/// Spreads a 32-bit hash so that the table position depends on all of it.
#[inline]
fn spread(hash: u32) -> usize {
    (u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

/// A shard on its own cache lines, so that recorders on different cores
/// taking different shards' locks do not contend for one line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(RwLock<Index>);

/// One series: its key and its value cell. `labels` is `None` for the
/// overflow series of a tenant (all user labels `__other__`).
#[derive(Debug)]
pub(crate) struct Entry<L, C> {
    pub(crate) tenant: TenantLabel,
    pub(crate) labels: Option<L>,
    pub(crate) cell: C,
    /// Its labels are all `__other__` (values folded by label guards): it is
    /// written together with the tenant's overflow series, whose labels
    /// read the same.
    pub(crate) folded: bool,
}

#[derive(Debug)]
pub(crate) struct Store<L, C> {
    shards: Box<[Shard]>,
    entries: boxcar::Vec<Entry<L, C>>,
    hasher: foldhash::fast::RandomState,
    /// Series with their own labels (overflow series are not counted).
    regular: AtomicUsize,
    /// Entries with `folded` set.
    folded: AtomicUsize,
    max_series: usize,
    /// The number of the family's label names.
    label_names: usize,
}

impl<L: LabelSet, C> Store<L, C> {
    pub(crate) fn new(max_series: usize, label_names: usize) -> Self {
        Self {
            label_names,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            entries: boxcar::Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
            regular: AtomicUsize::new(0),
            folded: AtomicUsize::new(0),
            max_series,
        }
    }

    /// Hashes a key; `None` is the tenant's overflow series. A borrowed key
    /// hashes like its owned label set (see [`LabelKey`]).
    #[inline]
    fn hash<Q: LabelKey<L> + ?Sized>(&self, tenant: &TenantLabel, labels: Option<&Q>) -> u64 {
        let mut state = self.hasher.build_hasher();
        tenant.hash(&mut state);
        match labels {
            Some(labels) => {
                state.write_u8(1);
                labels.hash(&mut state);
            }
            None => state.write_u8(0),
        }
        state.finish()
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Index> {
        &self.shards[(hash >> (64 - SHARD_BITS)) as usize].0
    }

    #[inline]
    fn matches<Q: LabelKey<L> + ?Sized>(
        &self,
        index: u32,
        tenant: &TenantLabel,
        labels: Option<&Q>,
    ) -> bool {
        self.entries.get(index as usize).is_some_and(|e| {
            e.tenant == *tenant
                && match (&e.labels, labels) {
                    (Some(have), Some(want)) => want.matches(have),
                    (None, None) => true,
                    _ => false,
                }
        })
    }

    #[inline]
    fn find_hashed<Q: LabelKey<L> + ?Sized>(
        &self,
        hash: u64,
        tenant: &TenantLabel,
        labels: Option<&Q>,
    ) -> Option<u32> {
        let shard = self.shard(hash).read().unwrap_or_else(|e| e.into_inner());
        let short = hash as u32;
        shard.find(short, |i| self.matches(i, tenant, labels))
    }

    /// The series for this key, if it exists.
    pub(crate) fn find<Q: LabelKey<L> + ?Sized>(
        &self,
        tenant: &TenantLabel,
        labels: &Q,
    ) -> Option<u32> {
        self.find_hashed(self.hash(tenant, Some(labels)), tenant, Some(labels))
    }

    /// The series for this key, created if the bound allows; otherwise the
    /// tenant's overflow series. The flag says whether it is the overflow series.
    #[inline]
    pub(crate) fn get_or_create<Q: LabelKey<L> + ?Sized>(
        &self,
        tenant: &TenantLabel,
        labels: &Q,
        make: impl Fn() -> C,
    ) -> (u32, bool) {
        let hash = self.hash(tenant, Some(labels));
        match self.find_hashed(hash, tenant, Some(labels)) {
            Some(index) => (index, false),
            None => self.create(hash, tenant, labels, make),
        }
    }

    #[cold]
    fn create<Q: LabelKey<L> + ?Sized>(
        &self,
        hash: u64,
        tenant: &TenantLabel,
        labels: &Q,
        make: impl Fn() -> C,
    ) -> (u32, bool) {
        if self.regular.load(Ordering::Acquire) < self.max_series
            && let Some(index) = self.insert(hash, tenant, Some(labels), &make, true)
        {
            return (index, false);
        }
        (self.overflow_series(tenant, &make), true)
    }

    /// The overflow series of `tenant`, created on first use.
    fn overflow_series(&self, tenant: &TenantLabel, make: &impl Fn() -> C) -> u32 {
        let hash = self.hash::<L>(tenant, None);
        if let Some(index) = self.find_hashed::<L>(hash, tenant, None) {
            return index;
        }
        self.insert::<L>(hash, tenant, None, make, false)
            .expect("overflow series are not bounded")
    }

    /// Inserts under the shard's write lock unless another thread did first.
    /// Returns `None` when `bounded` and the bound is reached.
    fn insert<Q: LabelKey<L> + ?Sized>(
        &self,
        hash: u64,
        tenant: &TenantLabel,
        labels: Option<&Q>,
        make: &impl Fn() -> C,
        bounded: bool,
    ) -> Option<u32> {
        let short = hash as u32;
        let mut shard = self.shard(hash).write().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = shard.find(short, |i| self.matches(i, tenant, labels)) {
            return Some(index);
        }
        if bounded
            && self
                .regular
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_series).then_some(n + 1)
                })
                .is_err()
        {
            return None;
        }
        let labels = labels.map(Q::to_labels);
        let folded = labels
            .as_ref()
            .is_some_and(|l| crate::labels::all_other(l, self.label_names));
        if folded {
            self.folded.fetch_add(1, Ordering::Relaxed);
        }
        let index = self.entries.push(Entry {
            tenant: tenant.clone(),
            labels,
            cell: make(),
            folded,
        }) as u32;
        shard.insert(short, index);
        Some(index)
    }

    /// The entry at `index`, which came from this store.
    #[inline]
    pub(crate) fn entry(&self, index: u32) -> &Entry<L, C> {
        &self.entries[index as usize]
    }

    /// The entry at `index`, if there is one.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<&Entry<L, C>> {
        self.entries.get(index as usize)
    }

    /// Entries in creation order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<L, C>> {
        self.entries.iter().map(|(_, e)| e)
    }

    /// Entries in creation order, with their index.
    pub(crate) fn iter_indexed(&self) -> impl Iterator<Item = (u32, &Entry<L, C>)> {
        self.entries.iter().map(|(i, e)| (i as u32, e))
    }

    /// The bound on series with their own labels.
    pub(crate) fn max_series(&self) -> usize {
        self.max_series
    }

    /// The overflow series of `tenant`, if it exists.
    pub(crate) fn find_overflow(&self, tenant: &TenantLabel) -> Option<u32> {
        self.find_hashed::<L>(self.hash::<L>(tenant, None), tenant, None)
    }

    /// Whether some entries are folded (see [`Entry::folded`]).
    pub(crate) fn has_folded(&self) -> bool {
        self.folded.load(Ordering::Relaxed) > 0
    }

    /// Number of series, overflow series included.
    pub(crate) fn len(&self) -> usize {
        self.entries.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct L {
        v: u32,
    }
    crate::impl_label_set!(L { v });

    fn tenant(s: &str) -> TenantLabel {
        TenantLabel::Shared(Arc::from(s))
    }

    #[test]
    fn index_grows_and_resolves_equal_short_hashes_by_entry() {
        let mut index = Index::default();
        for i in 0..1000u32 {
            // Every tenth pair shares a short hash: `eq` must tell them apart.
            index.insert(i / 10, i);
        }
        assert_eq!(index.len, 1000);
        assert!(index.slots.len() >= 1334 && index.slots.len().is_power_of_two());
        for i in 0..1000u32 {
            assert_eq!(index.find(i / 10, |candidate| candidate == i), Some(i));
        }
        assert_eq!(index.find(5000, |_| true), None);
        assert_eq!(Index::default().find(1, |_| true), None);
    }

    #[test]
    fn finds_what_it_created() {
        let store: Store<L, ()> = Store::new(1000, 1);
        let mut indexes = Vec::new();
        for v in 0..500 {
            indexes.push(store.get_or_create(&tenant("t"), &L { v }, || ()).0);
        }
        for v in 0..500 {
            assert_eq!(
                store.get_or_create(&tenant("t"), &L { v }, || ()),
                (indexes[v as usize], false)
            );
        }
        assert_eq!(store.find(&tenant("u"), &L { v: 1 }), None);
        assert_eq!(store.len(), 500);
    }

    #[test]
    fn bound_sends_new_keys_to_one_overflow_series_per_tenant() {
        let store: Store<L, ()> = Store::new(3, 1);
        for v in 0..3 {
            assert!(!store.get_or_create(&tenant("a"), &L { v }, || ()).1);
        }
        let (first, overflowed) = store.get_or_create(&tenant("a"), &L { v: 99 }, || ());
        assert!(overflowed);
        assert_eq!(
            store.get_or_create(&tenant("a"), &L { v: 100 }, || ()),
            (first, true)
        );
        let (other, overflowed) = store.get_or_create(&tenant("b"), &L { v: 0 }, || ());
        assert!(overflowed);
        assert_ne!(other, first);
        assert!(store.entry(first).labels.is_none());
        assert_eq!(store.len(), 5);
    }

    #[test]
    fn concurrent_creation_respects_the_bound() {
        let store: Arc<Store<L, ()>> = Arc::new(Store::new(1000, 1));
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = store.clone();
                s.spawn(move || {
                    for v in 0..2000 {
                        store.get_or_create(&tenant("t"), &L { v: v * 4 + t }, || ());
                    }
                });
            }
        });
        let regular = store.iter().filter(|e| e.labels.is_some()).count();
        assert_eq!(regular, 1000);
        assert_eq!(store.len(), 1001);
    }
}
