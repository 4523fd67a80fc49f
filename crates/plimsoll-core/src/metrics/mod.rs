//! Tenant-scoped metric families: [`Counter`], [`Gauge`], [`Histogram`].
//!
//! A family is registered on a [`Telemetry`](crate::Telemetry) with a label
//! struct (see [`LabelSet`]); every recording call takes a [`Tenant`] and the
//! labels. The first observation for a key creates its series, unless the
//! family's series bound is reached, in which case it is recorded in the
//! tenant's overflow series (user labels `__other__`) and counted in
//! `plimsoll_cardinality_overflow_total`.
//!
//! # Example
//!
//! ```
//! use plimsoll_core::{Telemetry, impl_label_set};
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq)]
//! struct Labels { queue: &'static str }
//! impl_label_set!(Labels { queue });
//!
//! let telemetry = Telemetry::builder().build().unwrap();
//! let jobs = telemetry.counter::<Labels>("jobs_processed", "Jobs processed.").unwrap();
//! let acme = telemetry.tenant("acme");
//! jobs.inc(&acme, &Labels { queue: "email" });
//! assert_eq!(jobs.get(&acme, &Labels { queue: "email" }), 1);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::encoding::{Encoder, Format, MetricKind, write_f64, write_u64};
use crate::labels::{LabelKey, LabelSet, LabelValues};
use crate::names::{OTHER, SYSTEM};
use crate::store::{Entry, Store};
use crate::tenant::{Tenant, TenantLabel, TenantRegistry};
use crate::trace::TraceRef;

mod cell;
mod family;
mod handles;
mod overflow;
mod read;

pub(crate) use cell::*;
pub(crate) use family::*;
pub use handles::*;
pub use overflow::BOUND_WARNING_INTERVAL;
pub(crate) use overflow::{OverflowCounter, OverflowFamily};
pub use read::*;
