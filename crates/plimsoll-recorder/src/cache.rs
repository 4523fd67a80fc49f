//! Each thread's copy of the handles a recorder keeps, so that the warm
//! path finds its handle without a lock shared by every thread.

use std::cell::RefCell;
use std::collections::HashMap;

use metrics::{Counter, Gauge, Histogram, Key};

/// A handle as the facade hands it out.
#[derive(Clone)]
pub(crate) enum Cached {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// By recorder and key hash: the keys of that hash and their handles.
type Handles = HashMap<(u64, u64), Vec<(Key, Cached)>, foldhash::fast::RandomState>;

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::default();
}

/// The handle this thread keeps for `key` of recorder `recorder`, if it
/// is of the kind `pick` takes.
#[inline]
pub(crate) fn get<T>(recorder: u64, key: &Key, pick: impl Fn(&Cached) -> Option<T>) -> Option<T> {
    HANDLES
        .try_with(|handles| {
            let handles = handles.borrow();
            let keys = handles.get(&(recorder, key.get_hash()))?;
            keys.iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, h)| pick(h))
        })
        .ok()
        .flatten()
}

/// Keeps `handle` for `key` in this thread (the recorder keeps a bounded
/// number of handles; this is a copy of some of them).
pub(crate) fn put(recorder: u64, key: &Key, handle: Cached) {
    let _ = HANDLES.try_with(|handles| {
        let mut handles = handles.borrow_mut();
        let keys = handles.entry((recorder, key.get_hash())).or_default();
        if !keys.iter().any(|(k, _)| k == key) {
            keys.push((key.clone(), handle));
        }
    });
}
