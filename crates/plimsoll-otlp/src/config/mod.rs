//! Settings: set in code, overridden by the standard OpenTelemetry
//! environment variables, checked when the pipeline is built.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The wire protocol of OTLP export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (`grpc`), port 4317 by convention.
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`), port 4318.
    HttpProtobuf,
}

/// How log lines are written to standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Text for people, one line per event.
    Human,
    /// One JSON object per line, with `trace_id`, `span_id` and
    /// `tenant_id` (see the crate docs for the fields).
    Json,
}

/// Which traces are recorded.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of traces, chosen by trace id (0 to 1).
    Ratio(f64),
    /// The caller's decision when a request carries a trace context, else
    /// the root sampler (the default is `ParentBased(AlwaysOn)`).
    ParentBased(Root),
}

/// The sampler of traces that start here, under [`Sampler::ParentBased`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Root {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of traces (0 to 1).
    Ratio(f64),
}

/// A setting that cannot be used. The message names the variable or the
/// builder method.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {value:?} {reason}")]
pub struct ConfigError {
    /// The environment variable or builder method.
    pub field: String,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &str, value: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// The settings of one pipeline, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// `None`: export is off.
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) gzip: bool,
    pub(crate) sampler: Sampler,
    pub(crate) resource: BTreeMap<String, String>,
    pub(crate) log_format: LogFormat,
    pub(crate) log_filter: String,
    pub(crate) traces_filter: String,
    pub(crate) logs: bool,
    pub(crate) queue_size: usize,
    pub(crate) batch_size: usize,
    pub(crate) schedule_delay: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) warn_interval: Duration,
}

/// Settings given in code; every one of them may be overridden by its
/// environment variable (see [`TracingBuilder`](crate::TracingBuilder)).
#[derive(Clone, Debug, Default)]
pub(crate) struct Code {
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) gzip: Option<bool>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) log_filter: Option<String>,
    pub(crate) traces_filter: Option<String>,
    pub(crate) logs: Option<bool>,
    pub(crate) queue_size: Option<usize>,
    pub(crate) batch_size: Option<usize>,
    pub(crate) schedule_delay: Option<Duration>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) warn_interval: Option<Duration>,
    pub(crate) disabled: bool,
}

/// Reads one environment variable: `None` when unset or empty.
pub(crate) type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

fn var(env: &Env, name: &str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The first of `names` that is set, with its name.
fn first(env: &Env, names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| var(env, n).map(|v| (*n, v)))
}

fn parse_millis(field: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(field, value, "is not a whole number of milliseconds"))
}

fn parse_count(field: &str, value: &str) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(field, value, "is not a whole number of at least 1")),
    }
}

/// Decodes `%XX` escapes (the W3C baggage octet encoding used by
/// `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`).
fn percent_decode(field: &str, value: &str) -> Result<String, ConfigError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(field, value, "has a % not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(field, value, "decodes to invalid UTF-8"))
}

/// Parses `key=value,key=value` (percent-encoded values).
pub(crate) fn parse_pairs(field: &str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut pairs = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(invalid(field, value, format!("has {item:?} without '='")));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(invalid(field, value, format!("has {item:?} without a key")));
        }
        pairs.push((percent_decode(field, k)?, percent_decode(field, v.trim())?));
    }
    Ok(pairs)
}

fn parse_ratio(field: &str, value: &str) -> Result<f64, ConfigError> {
    match value.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(invalid(field, value, "is not a ratio between 0 and 1")),
    }
}

pub(crate) fn check_ratio(field: &str, ratio: f64) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(invalid(
            field,
            &ratio.to_string(),
            "is not a ratio between 0 and 1",
        ))
    }
}

fn parse_sampler(env: &Env) -> Result<Option<Sampler>, ConfigError> {
    let Some(name) = var(env, "OTEL_TRACES_SAMPLER") else {
        return Ok(None);
    };
    let ratio = || match var(env, "OTEL_TRACES_SAMPLER_ARG") {
        Some(arg) => parse_ratio("OTEL_TRACES_SAMPLER_ARG", &arg),
        None => Ok(1.0),
    };
    Ok(Some(match name.to_ascii_lowercase().as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::Ratio(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
        "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
        "parentbased_traceidratio" => Sampler::ParentBased(Root::Ratio(ratio()?)),
        _ => {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                &name,
                "is not one of always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio",
            ));
        }
    }))
}

fn parse_protocol(field: &str, value: &str) -> Result<Protocol, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(invalid(
            field,
            value,
            "is not supported: use grpc or http/protobuf",
        )),
        _ => Err(invalid(field, value, "is not grpc or http/protobuf")),
    }
}

/// A random identifier formatted as a UUID (version 4).
fn random_uuid() -> String {
    let v = crate::ids::random_u128();
    let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Code {
    /// Resolves the settings: environment variables over code over
    /// defaults.
    pub(crate) fn resolve(&self, env: &Env) -> Result<Settings, ConfigError> {
        // As the specification says: only `true` disables; anything else
        // is false.
        let disabled = self.disabled
            || var(env, "OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || match var(env, "OTEL_TRACES_EXPORTER") {
                None => false,
                Some(v) => {
                    let list: Vec<String> = v
                        .split(',')
                        .map(|e| e.trim().to_ascii_lowercase())
                        .collect();
                    if list.iter().any(|e| e == "otlp") {
                        false
                    } else if list.iter().all(|e| e == "none") {
                        true
                    } else {
                        return Err(invalid(
                            "OTEL_TRACES_EXPORTER",
                            &v,
                            "names no exporter this crate has (otlp, or none)",
                        ));
                    }
                }
            };

        let (protocol_field, protocol) = match first(
            env,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
        ) {
            Some((field, v)) => (field, parse_protocol(field, &v)?),
            None => ("protocol", self.protocol.unwrap_or(Protocol::Grpc)),
        };
        if protocol == Protocol::Grpc && !cfg!(feature = "grpc") {
            return Err(invalid(
                protocol_field,
                "grpc",
                "needs the `grpc` feature of plimsoll-otlp",
            ));
        }
        if protocol == Protocol::HttpProtobuf && !cfg!(feature = "http") {
            return Err(invalid(
                protocol_field,
                "http/protobuf",
                "needs the `http` feature of plimsoll-otlp",
            ));
        }
        // The signal-specific variable is the full URL; the general one is
        // a base to which HTTP adds the signal's path.
        let endpoint = if let Some(v) = var(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v))
        } else if let Some(v) = var(env, "OTEL_EXPORTER_OTLP_ENDPOINT") {
            let v = match protocol {
                Protocol::HttpProtobuf => format!("{}/v1/traces", v.trim_end_matches('/')),
                Protocol::Grpc => v,
            };
            Some(("OTEL_EXPORTER_OTLP_ENDPOINT", v))
        } else {
            self.endpoint.clone().map(|v| ("endpoint", v))
        };
        if let Some((field, url)) = &endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(field, url, "is not an http:// or https:// URL"));
        }
        let endpoint = if disabled {
            None
        } else {
            endpoint.map(|(_, url)| url)
        };

        let mut headers: Vec<(&'static str, String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| ("header", k.clone(), v.clone()))
            .collect();
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(v) = var(env, name) {
                for (k, v) in parse_pairs(name, &v)? {
                    headers.retain(|(_, old, _)| !old.eq_ignore_ascii_case(&k));
                    headers.push((name, k, v));
                }
            }
        }
        for (field, k, v) in &headers {
            let bad_name = k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if bad_name {
                return Err(invalid(field, k, "is not a valid header name"));
            }
            if v.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err(invalid(field, k, "has a value with control characters"));
            }
        }
        let headers = headers.into_iter().map(|(_, k, v)| (k, v)).collect();

        let (timeout_field, timeout) = match first(
            env,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
        ) {
            Some((field, v)) => (field, parse_millis(field, &v)?),
            None => ("timeout", self.timeout.unwrap_or(Duration::from_secs(10))),
        };
        let gzip = match first(
            env,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ],
        ) {
            Some((_, v)) if v.eq_ignore_ascii_case("gzip") => true,
            Some((_, v)) if v.eq_ignore_ascii_case("none") => false,
            Some((field, v)) => return Err(invalid(field, &v, "is not gzip or none")),
            None => self.gzip.unwrap_or(false),
        };

        let sampler = match parse_sampler(env)? {
            Some(s) => s,
            None => self.sampler.unwrap_or(Sampler::ParentBased(Root::AlwaysOn)),
        };
        match sampler {
            Sampler::Ratio(r) | Sampler::ParentBased(Root::Ratio(r)) => {
                check_ratio("sampler", r)?;
            }
            _ => {}
        }

        // Resource: code, then OTEL_RESOURCE_ATTRIBUTES, then
        // OTEL_SERVICE_NAME (which the specification puts first).
        let mut resource = BTreeMap::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                resource.insert(k.to_owned(), v.clone());
            }
        };
        put("service.name", &self.service_name);
        put("service.version", &self.service_version);
        put("deployment.environment.name", &self.environment);
        put("service.instance.id", &self.instance_id);
        for (k, v) in &self.attributes {
            resource.insert(k.clone(), v.clone());
        }
        if let Some(v) = var(env, "OTEL_RESOURCE_ATTRIBUTES") {
            resource.extend(parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &v)?);
        }
        if let Some(v) = var(env, "OTEL_SERVICE_NAME") {
            resource.insert("service.name".into(), v);
        }
        resource
            .entry("service.name".into())
            .or_insert_with(|| "unknown_service".into());
        resource
            .entry("service.instance.id".into())
            .or_insert_with(random_uuid);
        resource.insert("telemetry.sdk.name".into(), "opentelemetry".into());
        resource.insert("telemetry.sdk.language".into(), "rust".into());
        resource.insert("telemetry.distro.name".into(), "plimsoll".into());
        resource.insert(
            "telemetry.distro.version".into(),
            env!("CARGO_PKG_VERSION").into(),
        );

        let log_format = match var(env, "PLIMSOLL_LOG_FORMAT") {
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "human" => LogFormat::Human,
            Some(v) => return Err(invalid("PLIMSOLL_LOG_FORMAT", &v, "is not json or human")),
            None => self.log_format.unwrap_or(LogFormat::Human),
        };
        let log_filter = var(env, "RUST_LOG")
            .or_else(|| self.log_filter.clone())
            .unwrap_or_else(|| "info".into());
        check_filter("RUST_LOG", &log_filter)?;
        let traces_filter = var(env, "PLIMSOLL_TRACES_FILTER")
            .or_else(|| self.traces_filter.clone())
            .unwrap_or_else(|| "info".into());
        if let Err(e) = traces_filter.parse::<tracing_subscriber::filter::Targets>() {
            return Err(invalid(
                "PLIMSOLL_TRACES_FILTER",
                &traces_filter,
                format!("is not a list of target=level directives: {e}"),
            ));
        }

        // (the variable or method, the value) when set, else the default.
        let count =
            |name: &'static str, method: &'static str, code: Option<usize>| match var(env, name) {
                Some(v) => parse_count(name, &v).map(|n| Some((name, n))),
                None => Ok(code.map(|n| (method, n))),
            };
        let queue = count("OTEL_BSP_MAX_QUEUE_SIZE", "queue_size", self.queue_size)?;
        let batch = count(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "batch_size",
            self.batch_size,
        )?;
        let queue_size = queue.map_or(2048, |(_, n)| n);
        let batch_size = match batch {
            Some((field, n)) if n > queue_size => {
                return Err(invalid(
                    field,
                    &n.to_string(),
                    format!("is larger than the queue ({queue_size})"),
                ));
            }
            Some((_, n)) => n,
            // The default batch fits a smaller queue.
            None => queue_size.min(512),
        };
        let (delay_field, schedule_delay) = match var(env, "OTEL_BSP_SCHEDULE_DELAY") {
            Some(v) => (
                "OTEL_BSP_SCHEDULE_DELAY",
                parse_millis("OTEL_BSP_SCHEDULE_DELAY", &v)?,
            ),
            None => (
                "schedule_delay",
                self.schedule_delay.unwrap_or(Duration::from_secs(1)),
            ),
        };
        if schedule_delay.is_zero() {
            return Err(invalid(delay_field, "0", "must be more than 0"));
        }
        let (timeout_field, timeout) = match var(env, "OTEL_BSP_EXPORT_TIMEOUT") {
            Some(v) => (
                "OTEL_BSP_EXPORT_TIMEOUT",
                parse_millis("OTEL_BSP_EXPORT_TIMEOUT", &v)?.min(timeout),
            ),
            None => (timeout_field, timeout),
        };
        if timeout.is_zero() {
            return Err(invalid(timeout_field, "0", "must be more than 0"));
        }

        Ok(Settings {
            endpoint,
            protocol,
            headers,
            timeout,
            gzip,
            sampler,
            resource,
            log_format,
            log_filter,
            traces_filter,
            logs: self.logs.unwrap_or(true),
            queue_size,
            batch_size,
            schedule_delay,
            shutdown_timeout: self.shutdown_timeout.unwrap_or(Duration::from_secs(5)),
            warn_interval: self.warn_interval.unwrap_or(Duration::from_secs(60)),
        })
    }
}

fn check_filter(field: &str, value: &str) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map(drop)
        .map_err(|e| invalid(field, value, format!("is not a filter: {e}")))
}

#[cfg(test)]
mod tests;
