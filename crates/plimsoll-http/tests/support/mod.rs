//! Helpers shared by this crate's tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use plimsoll_core::testing::Scrape;
use plimsoll_core::{Format, Telemetry};

/// Scrapes until `cond` holds (3 s at most), for effects that land after a
/// connection closes or a task is aborted.
pub async fn wait_for(t: &Telemetry, cond: impl Fn(&Scrape) -> bool) {
    for _ in 0..300 {
        if cond(&t.scrape()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached:\n{}", t.encode(Format::Prometheus));
}
