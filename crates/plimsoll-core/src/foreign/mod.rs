//! Foreign registries: a prometheus-client [`Registry`] exposed through
//! plimsoll's `/metrics` (see
//! [`Telemetry::register_prometheus_client`](crate::Telemetry::register_prometheus_client)).
//!
//! At every scrape the registry is encoded by prometheus-client's own
//! OpenMetrics text encoder, and that text is rewritten family by family into
//! the format the scraper asked for:
//!
//! - Every sample gets `tenant_id="__system__"` first and plimsoll's constant
//!   labels last, as plimsoll writes its own series: foreign metrics belong to
//!   no tenant. As in plimsoll's histograms, `le` stays the very last label of
//!   a bucket.
//! - A foreign label named `tenant_id`, or named like a constant label, is
//!   renamed `exported_<name>` (with one more `exported_` while that name is
//!   taken too), as Prometheus renames a scraped label that clashes with a
//!   target label. Its value is kept.
//! - Names get no plimsoll prefix: they are the other library's names, and the
//!   dashboards and alerts written for it query them as it spells them
//!   (prometheus-client has `Registry::with_prefix` for a prefix of its own).
//! - OpenMetrics keeps `# HELP`, `# TYPE`, `# UNIT`, exemplars and `_created`
//!   samples; the registry's `# EOF` is dropped and plimsoll writes the one at
//!   the very end.
//! - Prometheus text 0.0.4 has no `# UNIT`, no `_created` samples and no
//!   exemplars: they are dropped. A counter's `# HELP`/`# TYPE` lines name its
//!   `_total` sample. Types that 0.0.4 lacks are mapped so that Prometheus
//!   stores the same series names from either format and `promtool check
//!   metrics` accepts them: `info` is a gauge named by its `_info` sample,
//!   `stateset` a gauge, `unknown` is `untyped`, and a `gaugehistogram` is
//!   three families: `<name>_bucket` untyped (promtool refuses a gauge with a
//!   `_bucket` suffix or an `le` label), `<name>_gcount` and `<name>_gsum`
//!   gauges. HELP text is escaped as each format requires (0.0.4: `\\` and
//!   `\n` only).
//!
//! Two families of one exposition must not share a family or sample name (the
//! reference OpenMetrics parser's "clashing name" rule, applied to both
//! formats alike). A plimsoll family takes its name with the prefix and every
//! sample name a family of that name can have (`_total`, `_created`,
//! `_bucket`, `_count`, `_sum`), whatever its type: both orders of
//! registration then agree, and promtool's lint refuses a non-histogram
//! ending in `_bucket`, `_count` or `_sum` anyway.
//!
//! Registration refuses a registry with a family that clashes with plimsoll's
//! families (build info and the overflow counter included), with an earlier
//! registry's, or with another of its own; plimsoll then refuses a family of
//! its own, registered later, that clashes with a family a registry writes or
//! has written. prometheus-client writes nothing of a family with labels (a
//! `Family`) until its first series, and a collector writes what it likes at
//! each scrape: a foreign family seen first at a scrape that clashes is left
//! out of it and plimsoll's is kept, with a `tracing` warning the first time
//! (target `plimsoll`), as for a family that does not read.
//!
//! The text is read as prometheus-client 0.25 writes it: `# HELP` first, its
//! text raw (a newline in it continues on the next lines, up to the `# TYPE`
//! line that always follows), then `# TYPE`, `# UNIT`, and the samples. A
//! family that does not read as such (a name or label name that is not valid,
//! a sample that its type does not allow) is refused at registration and left
//! out at scrapes. If prometheus-client fails to encode (a native-only
//! histogram has no text form, a collector returned an error), the lines
//! written before the failure are used.

use std::borrow::Cow;
use std::collections::HashSet;
use std::iter::Peekable;
use std::str::Lines;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use prometheus_client::registry::Registry;

use crate::encoding::{Encoder, Format};
use crate::names;
use crate::telemetry::{RegisterError, valid_label_name, valid_metric_name};

mod parse;
mod taken;
#[cfg(test)]
mod tests;
mod write;

use parse::*;
use taken::*;
use write::*;

/// Families left out of scrapes are warned about once each, up to this many.
const MAX_WARNED: usize = 256;

/// The prometheus-client registries of one `Telemetry`.
#[derive(Debug, Default)]
pub(crate) struct Foreign {
    registries: RwLock<Vec<Registered>>,
    /// Families warned about already.
    warned: Mutex<HashSet<String>>,
}

#[derive(Debug)]
struct Registered {
    registry: Registry,
    /// The names its families have taken so far. prometheus-client writes
    /// nothing of a family with labels until its first series, so names
    /// are added each time the registry is checked, and kept.
    names: Mutex<Names>,
    /// Whether a failure to encode it was warned about.
    failure_warned: AtomicBool,
}

impl Registered {
    /// Its names so far, with those of the families it writes now.
    fn names(&self) -> MutexGuard<'_, Names> {
        let mut text = String::new();
        let _ = encode_text(&self.registry, &mut text);
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        for family in Families::new(&text).flatten() {
            names.insert(family.name, family.kind);
        }
        names
    }
}

/// A registry whose text was read and checked on its own, to be checked
/// against plimsoll's families next.
#[derive(Debug)]
pub(crate) struct Candidate {
    registry: Registry,
    families: Vec<(String, Type)>,
}

impl Candidate {
    /// Encodes `registry` and reads its families: their names must be valid
    /// and must not clash with each other.
    pub(crate) fn new(registry: Registry) -> Result<Self, RegisterError> {
        let mut text = String::new();
        // On a failure, the families written before it are checked.
        let _ = encode_text(&registry, &mut text);
        let mut names = Names::default();
        let mut families = Vec::new();
        for family in Families::new(&text) {
            let family = family.map_err(RegisterError::from)?;
            if names.clashes(family.name, family.kind) {
                return Err(RegisterError::Conflict(family.name.to_string()));
            }
            names.insert(family.name, family.kind);
            families.push((family.name.to_string(), family.kind));
        }
        Ok(Self { registry, families })
    }
}

impl Foreign {
    /// Adds `candidate` unless one of its families clashes with plimsoll's
    /// (named without `prefix`; the overflow counter is added here) or with
    /// an earlier registry's.
    pub(crate) fn add<'a>(
        &self,
        candidate: Candidate,
        prefix: &str,
        plimsoll: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), RegisterError> {
        let mut taken = Names::default();
        for name in plimsoll {
            taken.insert_plimsoll(&format!("{prefix}{name}"));
        }
        taken.insert_overflow(prefix);
        let mut registries = self.registries.write().unwrap_or_else(|e| e.into_inner());
        for registered in registries.iter() {
            taken.0.extend(registered.names().0.iter().cloned());
        }
        let mut names = Names::default();
        for (name, kind) in &candidate.families {
            if taken.clashes(name, *kind) {
                return Err(RegisterError::Conflict(name.clone()));
            }
            names.insert(name, *kind);
        }
        registries.push(Registered {
            registry: candidate.registry,
            names: Mutex::new(names),
            failure_warned: AtomicBool::new(false),
        });
        Ok(())
    }

    /// Whether a plimsoll family `name` (without `prefix`, without `_total`)
    /// clashes with a registered registry's family.
    pub(crate) fn clashes(&self, prefix: &str, name: &str) -> bool {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        let reserved = crate::names::sample_names(&format!("{prefix}{name}"));
        registries.iter().any(|registered| {
            let names = registered.names();
            reserved.iter().any(|n| names.0.contains(n))
        })
    }

    /// Writes every registry's families, rewritten, after what `enc` holds;
    /// a family whose names are taken already is left out.
    pub(crate) fn encode(&self, enc: &mut Encoder<'_>) {
        let registries = self.registries.read().unwrap_or_else(|e| e.into_inner());
        if registries.is_empty() {
            return;
        }
        let mut taken = Names::default();
        taken.scan(enc.out, enc.format);
        // Written after the foreign families, and only once a bound is hit.
        taken.insert_overflow(enc.prefix);
        let consts = ConstLabels::new(enc.const_labels);
        let mut text = String::new();
        for registered in registries.iter() {
            text.clear();
            if !encode_text(&registered.registry, &mut text)
                && !registered.failure_warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    target: "plimsoll",
                    "prometheus-client failed to encode a registered registry (a native-only \
                     histogram, or a collector's error); the families written before the \
                     failure are exposed, the rest is left out"
                );
            }
            for skipped in rewrite(&text, enc.out, enc.format, &consts, &mut taken) {
                self.warn(&skipped);
            }
        }
    }

    /// Warns about a family left out, the first time.
    #[cold]
    fn warn(&self, skipped: &Skipped) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let name = match skipped {
            Skipped::Clash(name) => name.as_str(),
            Skipped::Unreadable(problem) => problem.name(),
        };
        if warned.len() >= MAX_WARNED || !warned.insert(name.to_string()) {
            return;
        }
        match skipped {
            Skipped::Clash(name) => tracing::warn!(
                target: "plimsoll",
                metric = name.as_str(),
                "a prometheus-client family clashes with a family exposed before it; \
                 it is left out of the scrape"
            ),
            Skipped::Unreadable(problem) => tracing::warn!(
                target: "plimsoll",
                metric = problem.name(),
                "a prometheus-client family cannot be exposed ({problem}); it is left out \
                 of the scrape"
            ),
        }
    }
}

/// prometheus-client's OpenMetrics text of `registry`, without `# EOF`, and
/// whether it encoded; on a failure, the complete lines written before it.
fn encode_text(registry: &Registry, text: &mut String) -> bool {
    let encoded = prometheus_client::encoding::text::encode_registry(text, registry).is_ok();
    if !encoded {
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    }
    encoded
}

/// A family left out of a scrape.
#[derive(Debug, PartialEq, Eq)]
enum Skipped {
    /// Its name or a sample name is taken.
    Clash(String),
    /// It does not read.
    Unreadable(Problem),
}

/// Rewrites the families of `text` into `out` in `format`, leaving out (and
/// returning) those that do not read or whose names are `taken`; takes the
/// names of those written.
fn rewrite(
    text: &str,
    out: &mut String,
    format: Format,
    consts: &ConstLabels<'_>,
    taken: &mut Names,
) -> Vec<Skipped> {
    let mut skipped = Vec::new();
    for family in Families::new(text) {
        let family = match family {
            Ok(family) => family,
            Err(problem) => {
                skipped.push(Skipped::Unreadable(problem));
                continue;
            }
        };
        if taken.clashes(family.name, family.kind) {
            skipped.push(Skipped::Clash(family.name.to_string()));
            continue;
        }
        taken.insert(family.name, family.kind);
        match format {
            Format::OpenMetrics => write_openmetrics(out, &family, consts),
            Format::Prometheus => write_prometheus(out, &family, consts),
        }
    }
    skipped
}
