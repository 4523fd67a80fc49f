//! One million distinct keys through the limiter: once they are idle and
//! the cleanup interval passes, its memory is back under twice its
//! 1,000-key figure. In its own binary: it counts every allocation.

use std::alloc::System;
use std::num::NonZeroU32;
use std::time::Duration;

use plimsoll_core::Telemetry;
use plimsoll_resilience::{LimitKey, LimiterClock, Quota, ResilienceMetrics};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes held now, net, since `region` began.
fn held(region: &Region<'_, System>) -> isize {
    let change = region.change();
    change.bytes_allocated as isize - change.bytes_deallocated as isize + change.bytes_reallocated
}

#[tokio::test(start_paused = true)]
async fn a_million_keys_leave_no_lasting_memory() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let limiter = metrics
        .limiter("api", Quota::per_second(NonZeroU32::new(10).unwrap()))
        .clock(LimiterClock::Tokio)
        .cleanup_every(Duration::from_secs(30))
        .build()
        .unwrap();
    let tenant = t.tenant("acme");
    let keys: Vec<LimitKey> = (0..1_000_000)
        .map(|i| LimitKey::Raw(format!("key-{i}").into()))
        .collect();
    let region = Region::new(GLOBAL);
    for key in &keys[..1_000] {
        assert!(limiter.check_key(key, &tenant).allowed);
    }
    let thousand = held(&region);
    for key in &keys[1_000..] {
        assert!(limiter.check_key(key, &tenant).allowed);
    }
    let million = held(&region);
    assert_eq!(limiter.keys(), 1_000_000);
    // The keys go idle; the limiter's own task cleans after its interval.
    tokio::time::sleep(Duration::from_secs(31)).await;
    tokio::task::yield_now().await;
    let after = held(&region);
    assert_eq!(limiter.keys(), 0);
    assert!(
        after < 2 * thousand,
        "1,000 keys: {thousand} B, 1,000,000: {million} B, cleaned: {after} B"
    );
    eprintln!("1,000 keys: {thousand} B, 1,000,000: {million} B, cleaned: {after} B");
}
