//! SLO files in YAML: plimsoll's own format, and Sloth's `prometheus/v1`
//! (so teams can move over). Errors name the field, down to the SLO.
//!
//! ```yaml
//! version: plimsoll/v1
//! service: orders-api
//! slos:
//!   - name: orders-availability
//!     objective: 99.9          # percent
//!     window: 30d              # whole days; default 30d
//!     sli:
//!       availability: { source: http }
//!     selector: { route: /api/v1/orders }
//!   - name: orders-latency
//!     objective: 99
//!     sli:
//!       latency: { source: http, threshold: 0.25 }   # seconds, a bucket boundary
//!     per_tenant: true
//!     runbook: https://runbooks.example/orders
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::spec::{Slo, SloBuilder, SloError, Source};

/// A SLO file that could not be read; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Not YAML, or not the expected shape.
    #[error("{0}")]
    Syntax(String),
    /// A `version` this reader does not know.
    #[error("version: {0:?} is neither plimsoll/v1 nor prometheus/v1 (Sloth)")]
    Version(String),
    /// A field with a value that cannot be.
    #[error("{field}: {reason}")]
    Field {
        /// Where, e.g. `slos[1].window`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An SLO that fails its checks.
    #[error("slos[{index}] ({name}).{error}")]
    Slo {
        /// Its position in the file.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong (the message names the field).
        error: SloError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlimsollFile {
    #[allow(dead_code)]
    version: String,
    service: String,
    /// The telemetry's naming scheme: `prometheus` (default) or `opentelemetry`.
    #[serde(default)]
    naming: Option<String>,
    /// The telemetry's metric prefix.
    #[serde(default)]
    metric_prefix: Option<String>,
    slos: Vec<PlimsollSlo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlimsollSlo {
    name: String,
    objective: f64,
    #[serde(default)]
    window: Option<String>,
    sli: PlimsollSli,
    #[serde(default)]
    selector: BTreeMap<String, String>,
    #[serde(default)]
    per_tenant: bool,
    #[serde(default)]
    runbook: Option<String>,
    #[serde(default)]
    dashboard: Option<String>,
    #[serde(default)]
    absent_alert: bool,
    #[serde(default)]
    buckets: Option<Vec<f64>>,
}

/// `sli:` holds exactly one of these (a map, as YAML writes it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlimsollSli {
    #[serde(default)]
    availability: Option<Availability>,
    #[serde(default)]
    latency: Option<Latency>,
    #[serde(default)]
    custom: Option<Custom>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Availability {
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    source: String,
    threshold: f64,
}

/// `errors` or `good`, with `total`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Custom {
    #[serde(default)]
    errors: Option<String>,
    #[serde(default)]
    good: Option<String>,
    total: String,
}

#[derive(Deserialize)]
struct SlothFile {
    service: String,
    slos: Vec<SlothSlo>,
}

#[derive(Deserialize)]
struct SlothSlo {
    name: String,
    objective: f64,
    sli: SlothSli,
    #[serde(default)]
    alerting: Option<SlothAlerting>,
}

#[derive(Deserialize, Default)]
struct SlothAlerting {
    #[serde(default)]
    page_alert: Option<SlothAlert>,
    #[serde(default)]
    ticket_alert: Option<SlothAlert>,
}

#[derive(Deserialize, Default)]
struct SlothAlert {
    #[serde(default)]
    disable: bool,
}

#[derive(Deserialize)]
struct SlothSli {
    #[serde(default)]
    events: Option<SlothEvents>,
}

#[derive(Deserialize)]
struct SlothEvents {
    error_query: String,
    total_query: String,
}

#[derive(Deserialize)]
struct Versioned {
    version: String,
}

fn syntax(e: serde_norway::Error) -> FileError {
    FileError::Syntax(e.to_string())
}

fn window(field: String, text: &str) -> Result<Duration, FileError> {
    let days = text
        .strip_suffix('d')
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0 && *n <= 3_650)
        .ok_or_else(|| FileError::Field {
            field,
            reason: format!("{text:?} is not a number of days like 30d (at most 3650d)"),
        })?;
    Ok(Duration::from_secs(days * 86_400))
}

fn source(field: String, text: &str) -> Result<Source, FileError> {
    match text {
        "http" => Ok(Source::Http),
        "grpc" => Ok(Source::Grpc),
        other => Err(FileError::Field {
            field,
            reason: format!("{other:?} is neither http nor grpc"),
        }),
    }
}

fn built(index: usize, name: &str, builder: SloBuilder) -> Result<Slo, FileError> {
    builder.build().map_err(|error| FileError::Slo {
        index,
        name: name.to_string(),
        error,
    })
}

/// Reads an SLO file (plimsoll's format, or Sloth's `prometheus/v1`) and
/// checks every SLO in it, and that no two share a name.
pub fn parse_file(text: &str) -> Result<Vec<Slo>, FileError> {
    let versioned: Versioned = serde_norway::from_str(text).map_err(syntax)?;
    let slos = match versioned.version.as_str() {
        "plimsoll/v1" => parse_plimsoll(text),
        "prometheus/v1" => parse_sloth(text),
        other => Err(FileError::Version(other.to_string())),
    }?;
    if slos.is_empty() {
        return Err(FileError::Field {
            field: "slos".into(),
            reason: "no SLO in the file".into(),
        });
    }
    for (i, slo) in slos.iter().enumerate() {
        if let Some(j) = slos[..i]
            .iter()
            .position(|o| o.name() == slo.name() && o.service() == slo.service())
        {
            return Err(FileError::Field {
                field: format!("slos[{i}].name"),
                reason: format!(
                    "{:?} is slos[{j}]'s name too: their rules would collide",
                    slo.name()
                ),
            });
        }
    }
    Ok(slos)
}

/// Sloth's window placeholder, as written with or without spaces, made `$window`.
fn sloth_window(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if inner == ".window" {
            out.push_str("$window");
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn parse_plimsoll(text: &str) -> Result<Vec<Slo>, FileError> {
    let file: PlimsollFile = serde_norway::from_str(text).map_err(syntax)?;
    let naming = match file.naming.as_deref() {
        None | Some("prometheus") => plimsoll_core::Naming::Prometheus,
        Some("opentelemetry") => plimsoll_core::Naming::OpenTelemetry,
        Some(other) => {
            return Err(FileError::Field {
                field: "naming".into(),
                reason: format!("{other:?} is neither prometheus nor opentelemetry"),
            });
        }
    };
    let mut slos = Vec::new();
    for (i, slo) in file.slos.iter().enumerate() {
        let at = |field: &str| format!("slos[{i}].{field}");
        let sli = &slo.sli;
        let kinds = [
            sli.availability.is_some(),
            sli.latency.is_some(),
            sli.custom.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(FileError::Field {
                field: at("sli"),
                reason: "must hold exactly one of availability, latency, custom".into(),
            });
        }
        let mut builder = match (&sli.availability, &sli.latency, &sli.custom) {
            (Some(Availability { source: s }), _, _) => {
                Slo::availability(&slo.name, source(at("sli.availability.source"), s)?)
            }
            (
                _,
                Some(Latency {
                    source: s,
                    threshold,
                }),
                _,
            ) => {
                let threshold = Duration::try_from_secs_f64(*threshold)
                    .ok()
                    .filter(|t| !t.is_zero())
                    .ok_or_else(|| FileError::Field {
                        field: at("sli.latency.threshold"),
                        reason: format!("must be a positive number of seconds, got {threshold}"),
                    })?;
                Slo::latency(&slo.name, source(at("sli.latency.source"), s)?, threshold)
            }
            (_, _, Some(custom)) => match (&custom.errors, &custom.good) {
                (Some(errors), None) => Slo::custom(&slo.name, errors, &custom.total),
                (None, Some(good)) => Slo::custom_good(&slo.name, good, &custom.total),
                _ => {
                    return Err(FileError::Field {
                        field: at("sli.custom"),
                        reason: "must hold either errors or good, with total".into(),
                    });
                }
            },
            _ => unreachable!("exactly one kind, checked above"),
        }
        .service(&file.service)
        .objective(slo.objective)
        .naming(naming)
        .metric_prefix(file.metric_prefix.as_deref().unwrap_or(""));
        if let Some(w) = &slo.window {
            builder = builder.window(window(at("window"), w)?);
        }
        for (label, value) in &slo.selector {
            builder = builder.matching(label, value);
        }
        if slo.per_tenant {
            builder = builder.per_tenant();
        }
        if let Some(url) = &slo.runbook {
            builder = builder.runbook(url);
        }
        if let Some(url) = &slo.dashboard {
            builder = builder.dashboard(url);
        }
        if slo.absent_alert {
            builder = builder.absent_alert();
        }
        if let Some(buckets) = &slo.buckets {
            builder = builder.buckets(buckets);
        }
        slos.push(built(i, &slo.name, builder)?);
    }
    Ok(slos)
}

fn parse_sloth(text: &str) -> Result<Vec<Slo>, FileError> {
    let file: SlothFile = serde_norway::from_str(text).map_err(syntax)?;
    let mut slos = Vec::new();
    for (i, slo) in file.slos.iter().enumerate() {
        let Some(events) = &slo.sli.events else {
            return Err(FileError::Field {
                field: format!("slos[{i}].sli"),
                reason: "only event SLIs (error_query, total_query) are read; raw and plugin SLIs are not".into(),
            });
        };
        let errors = sloth_window(&events.error_query);
        let total = sloth_window(&events.total_query);
        let mut builder = Slo::custom(&slo.name, &errors, &total)
            .service(&file.service)
            .objective(slo.objective);
        let alerting = slo.alerting.as_ref();
        for (severity, alert) in [
            ("page", alerting.and_then(|a| a.page_alert.as_ref())),
            ("ticket", alerting.and_then(|a| a.ticket_alert.as_ref())),
        ] {
            if alert.is_some_and(|a| a.disable) {
                builder = builder.without_alert(severity);
            }
        }
        slos.push(built(i, &slo.name, builder)?);
    }
    Ok(slos)
}
