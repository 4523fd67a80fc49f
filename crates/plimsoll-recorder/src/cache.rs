//! Each thread's copy of the handles a recorder keeps, so that the warm
//! path finds its handle without a lock shared by every thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The value of `DROPPED` when this thread last let go of the handles
    /// of recorders dropped since.
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// Recorders dropped so far, and which.
static DROPPED: AtomicU64 = AtomicU64::new(0);
static GONE: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Recorder `recorder` is gone: each thread lets go of its handles (and,
/// through them, of its telemetry) the next time it keeps a handle.
pub(crate) fn forget(recorder: u64) {
    GONE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(recorder);
    DROPPED.fetch_add(1, Ordering::Release);
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
        let dropped = DROPPED.load(Ordering::Acquire);
        if SEEN.replace(dropped) != dropped {
            let gone = GONE.lock().unwrap_or_else(|e| e.into_inner());
            handles.retain(|(id, _), _| !gone.contains(id));
        }
        let keys = handles.entry((recorder, key.get_hash())).or_default();
        if !keys.iter().any(|(k, _)| k == key) {
            keys.push((key.clone(), handle));
        }
    });
}
