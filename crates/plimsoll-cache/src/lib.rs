//! Cache metrics for plimsoll: hits, misses, loads, evictions by cause and
//! entries, per tenant and bounded, for any cache and for moka.
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `cache_operations_total` | operation (get, set, delete, load), cache_name, status (hit, miss, success, error) |
//! | `cache_operation_duration_seconds` | operation, cache_name |
//! | `cache_evictions_total` | cache_name, cause (expired, explicit, replaced, size) |
//! | `cache_entries`, `cache_weighted_size` | cache_name (read at scrape time) |
//!
//! Operations record under the current request's tenant (the server
//! layers open a request scope; outside one, `__system__`); evictions and
//! sizes belong to the cache, under `__system__`. Cache names are bounded
//! (default [`DEFAULT_MAX_CACHES`](families::DEFAULT_MAX_CACHES)).
//!
//! ```
//! use plimsoll_cache::{CacheMetrics, MokaCache};
//! use plimsoll_core::{Format, Telemetry};
//! use plimsoll_core::scope::Scope;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::builder().with_process_metrics(false).build().unwrap();
//! let caches = CacheMetrics::new(&telemetry).unwrap();
//! let sessions = MokaCache::new(&caches, "sessions", moka::future::Cache::builder().max_capacity(10_000));
//!
//! // Inside a request (the HTTP layer opens the scope):
//! Scope::new(telemetry.tenant("acme")).run(async {
//!     sessions.insert("s-1".to_string(), 7_u32).await;
//!     assert_eq!(sessions.get(&"s-1".to_string()).await, Some(7));
//!     assert_eq!(sessions.get(&"s-2".to_string()).await, None);
//! }).await;
//!
//! sessions.run_pending_tasks().await;
//! let body = telemetry.encode(Format::Prometheus);
//! for line in [
//!     "cache_operations_total{tenant_id=\"acme\",operation=\"get\",cache_name=\"sessions\",status=\"hit\"} 1\n",
//!     "cache_operations_total{tenant_id=\"acme\",operation=\"get\",cache_name=\"sessions\",status=\"miss\"} 1\n",
//!     "cache_entries{tenant_id=\"__system__\",cache_name=\"sessions\"} 1\n",
//! ] {
//!     assert!(body.contains(line), "{body}");
//! }
//! # }
//! ```
//!
//! Other caches implement [`CacheStore`] (get, insert, remove) and are
//! wrapped with [`CacheMetrics::instrument`].

pub mod families;
pub mod labels;
mod metrics;
#[cfg(feature = "moka")]
mod moka;

pub use metrics::{CacheMetrics, CacheStore, Instrumented};
#[cfg(feature = "moka")]
pub use moka::{MAINTENANCE_INTERVAL, MokaCache};
