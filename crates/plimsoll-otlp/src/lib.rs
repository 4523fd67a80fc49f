//! OpenTelemetry traces for plimsoll: one call sets up logging and OTLP
//! trace export, and every plimsoll integration then opens spans, takes
//! its exemplars from them and propagates their W3C context.
//!
//! ```
//! use plimsoll_core::Telemetry;
//! use plimsoll_otlp::{LogFormat, Tracing};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Reads OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, … over these.
//! let tracing = Tracing::from_env()
//!     .service_name("orders")
//!     .service_version(env!("CARGO_PKG_VERSION"))
//!     .log_format(LogFormat::Json)
//!     # .env_from(|_| None)
//!     .init()?;
//! let telemetry = Telemetry::builder()
//!     .with_trace_context(tracing.trace_context())
//!     .build()?;
//! // … serve; dropping `tracing` flushes what is queued (within a deadline).
//! # drop(telemetry);
//! # Ok(())
//! # }
//! ```
//!
//! # What it sets up
//!
//! A global `tracing` subscriber with two layers:
//!
//! - **logs** to standard output, human-readable or one JSON object per
//!   line, filtered by `RUST_LOG` (default `info`). A JSON line has
//!   `timestamp`, `level`, `target`, `message`, the event's fields, and —
//!   inside a request — `trace_id` (32 hex digits), `span_id` (16 hex
//!   digits) and `tenant_id`: the fields to index in Loki or
//!   Elasticsearch to go from a log line to its trace.
//! - **traces**, when an endpoint is configured: `tracing-opentelemetry`
//!   feeding an OTLP exporter (gRPC or HTTP/protobuf), filtered by
//!   `PLIMSOLL_TRACES_FILTER` (default `info`), so `#[instrument]` spans of
//!   the service join the traces plimsoll opens.
//!
//! With no endpoint (or `OTEL_SDK_DISABLED=true`, or
//! `OTEL_TRACES_EXPORTER=none`), only the logs are set up, and the hook
//! from [`TracingGuard::trace_context`] is inert: the telemetry behaves
//! exactly as without it.
//!
//! # Settings
//!
//! Each is set in code on the [`TracingBuilder`], and each standard
//! variable, when set, wins (so a deployment changes any of them without a
//! rebuild):
//!
//! | variable | meaning |
//! |---|---|
//! | `OTEL_SERVICE_NAME` | `service.name` (over the resource attributes) |
//! | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,…`, percent-encoded |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; HTTP adds `/v1/traces` |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL, over the above |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` | `grpc` (default) or `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | `key=value,…` sent with every export |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` | milliseconds per export (default 10000) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION` | `gzip` or `none` (default) |
//! | `OTEL_TRACES_SAMPLER`, `_ARG` | `parentbased_always_on` (default), `parentbased_traceidratio` + ratio, … |
//! | `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER=none` | export off |
//! | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT` | the export queue (2048 spans), batch (512), delay (1 s) |
//! | `RUST_LOG`, `PLIMSOLL_LOG_FORMAT` (`human`/`json`), `PLIMSOLL_TRACES_FILTER` | logs and which spans are traced |
//!
//! A value that cannot be used is an error of
//! [`init`](TracingBuilder::init) naming the variable.
//!
//! The resource carries `service.name`, `service.version`,
//! `deployment.environment.name`, `service.instance.id` (a random UUID
//! unless set) and the attributes given.
//!
//! # Sampling
//!
//! Sampling is decided when a request arrives, before any span exists: a
//! request that is not sampled opens no span (it costs a trace id and a
//! flag), and its context still reaches the services it calls with the
//! sampled flag off. Sampled requests get a server span named
//! `METHOD route`, with child spans for database, Redis, cache and
//! outbound calls, and every latency histogram observed inside them
//! carries the span's ids as an OpenMetrics exemplar.
//!
//! # When the collector is down
//!
//! Finished spans wait in a bounded queue drained by a thread of the
//! pipeline's own. A request never waits on export: a full queue drops
//! the span. Every span is counted, in
//! `plimsoll_spans_exported_total` and
//! `plimsoll_spans_dropped_total{reason}` (`queue_full`, `export_failed`,
//! `timeout`, `shutdown`), and drops are logged at most once a minute.
//! Memory stays within the queue plus one batch in flight.

mod config;
mod export;
mod hook;
mod ids;
mod layer;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

pub use config::{ConfigError, LogFormat, Protocol, Root, Sampler};
pub use hook::{FAMILIES, OtlpContext, SPANS_DROPPED, SPANS_EXPORTED};

/// Entry point: `Tracing::from_env()` or `Tracing::builder()`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Tracing;

impl Tracing {
    /// A builder whose settings the process's standard environment
    /// variables override.
    pub fn from_env() -> TracingBuilder {
        TracingBuilder {
            code: config::Code::default(),
            env: Arc::new(|name| std::env::var(name).ok()),
            writer: None,
        }
    }

    /// A builder that reads none of the variables above (settings in
    /// code only). opentelemetry-otlp itself still reads
    /// `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` and `…_COMPRESSION`.
    pub fn builder() -> TracingBuilder {
        TracingBuilder {
            code: config::Code::default(),
            env: Arc::new(|_| None),
            writer: None,
        }
    }
}

/// Why the pipeline could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A setting cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// A global `tracing` subscriber was already set.
    #[error("a global tracing subscriber is already set: {0}")]
    AlreadySet(String),
}

/// Settings of the logging and tracing pipeline. Every setting is
/// overridden by its environment variable (see the crate docs) when the
/// builder came from [`Tracing::from_env`].
pub struct TracingBuilder {
    code: config::Code,
    env: Arc<config::Env>,
    writer: Option<tracing_subscriber::fmt::writer::BoxMakeWriter>,
}

impl std::fmt::Debug for TracingBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingBuilder")
            .field("settings", &self.code)
            .finish_non_exhaustive()
    }
}

impl TracingBuilder {
    /// Reads variables through `env` instead of the process environment
    /// (`None`: unset).
    pub fn env_from(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// `service.name` (`OTEL_SERVICE_NAME`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.code.service_name = Some(name.into());
        self
    }

    /// `service.version`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.code.service_version = Some(version.into());
        self
    }

    /// `deployment.environment.name` (`production`, `staging` …).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.code.environment = Some(environment.into());
        self
    }

    /// `service.instance.id` (default: a random UUID per process).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.code.instance_id = Some(id.into());
        self
    }

    /// Another resource attribute.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.code.attributes.push((key.into(), value.into()));
        self
    }

    /// Where spans are sent (`http://collector:4317`; for HTTP the full
    /// URL, `http://collector:4318/v1/traces`). No endpoint: no export.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.code.endpoint = Some(url.into());
        self
    }

    /// gRPC (default) or HTTP/protobuf.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.code.protocol = Some(protocol);
        self
    }

    /// A header sent with every export (an API key …).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.code.headers.push((name.into(), value.into()));
        self
    }

    /// The time one export may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.code.timeout = Some(timeout);
        self
    }

    /// Compresses exports with gzip.
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.code.gzip = Some(gzip);
        self
    }

    /// Which traces are recorded (default: the caller's decision, else all).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.code.sampler = Some(sampler);
        self
    }

    /// How logs are written (`PLIMSOLL_LOG_FORMAT`; default human).
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.code.log_format = Some(format);
        self
    }

    /// Which events are logged, as an `EnvFilter` directive (`RUST_LOG`;
    /// default `info`).
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.code.log_filter = Some(filter.into());
        self
    }

    /// Whether logs are written at all (default yes; off for a service
    /// that sets up its own log layer).
    pub fn logs(mut self, enabled: bool) -> Self {
        self.code.logs = Some(enabled);
        self
    }

    /// Where log lines go (default: standard output), as any
    /// `tracing-subscriber` writer (`std::io::stderr`, a file …).
    pub fn log_writer<W>(mut self, writer: W) -> Self
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        self.writer = Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(writer));
        self
    }

    /// Which `tracing` spans become OpenTelemetry spans, as an `EnvFilter`
    /// directive (`PLIMSOLL_TRACES_FILTER`; default `info`).
    pub fn traces_filter(mut self, filter: impl Into<String>) -> Self {
        self.code.traces_filter = Some(filter.into());
        self
    }

    /// Spans waiting for export at most (default 2048); past it they are
    /// dropped and counted.
    pub fn queue_size(mut self, spans: usize) -> Self {
        self.code.queue_size = Some(spans);
        self
    }

    /// Spans per export at most (default 512).
    pub fn batch_size(mut self, spans: usize) -> Self {
        self.code.batch_size = Some(spans);
        self
    }

    /// The longest a span waits before its batch is sent (default 1 s).
    pub fn schedule_delay(mut self, delay: Duration) -> Self {
        self.code.schedule_delay = Some(delay);
        self
    }

    /// How long dropping the guard waits for queued spans to be sent
    /// (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.code.shutdown_timeout = Some(timeout);
        self
    }

    /// The least time between two log lines about dropped spans (default
    /// one minute).
    pub fn warn_interval(mut self, interval: Duration) -> Self {
        self.code.warn_interval = Some(interval);
        self
    }

    /// Turns export off whatever the environment says.
    pub fn disabled(mut self) -> Self {
        self.code.disabled = true;
        self
    }

    /// Builds the pipeline and sets its subscriber as the global default.
    pub fn init(self) -> Result<TracingGuard, SetupError> {
        let (guard, dispatch) = self.build()?;
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|e| SetupError::AlreadySet(e.to_string()))?;
        Ok(guard)
    }

    /// Builds the pipeline and returns its subscriber without installing
    /// it (for `tracing::dispatcher::with_default`, or a test).
    pub fn build(self) -> Result<(TracingGuard, tracing::Dispatch), SetupError> {
        let settings = self.code.resolve(&*self.env)?;
        let stats = Arc::new(export::Stats::new(settings.warn_interval));
        let provider = match &settings.endpoint {
            Some(endpoint) => Some(provider(&settings, endpoint, stats.clone())?),
            None => None,
        };
        let context = OtlpContext::new(
            provider.as_ref().map(|p| p.tracer("plimsoll")),
            settings.sampler,
            stats,
        );

        let traces = provider.as_ref().map(|provider| {
            // Targets, not an EnvFilter: it keeps no per-span state, so
            // entering a span costs it nothing.
            let filter: tracing_subscriber::filter::Targets = settings
                .traces_filter
                .parse()
                .expect("checked when the settings were resolved");
            let not_exporting =
                tracing_subscriber::filter::filter_fn(|_| !layer::on_export_thread());
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("plimsoll"))
                .with_location(false)
                .with_threads(false)
                .with_level(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_filter(tracing_subscriber::filter::FilterExt::and(
                    filter,
                    not_exporting,
                ))
        });
        let writer = self.writer;
        let logs = settings.logs.then(|| {
            let filter = tracing_subscriber::EnvFilter::new(&settings.log_filter);
            let ansi = writer.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout());
            let writer = writer.unwrap_or_else(|| {
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout)
            });
            match settings.log_format {
                LogFormat::Json => tracing_subscriber::fmt::layer()
                    .event_format(layer::JsonFormat)
                    .with_writer(writer)
                    .with_filter(filter)
                    .boxed(),
                _ => tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer)
                    .with_filter(filter)
                    .boxed(),
            }
        });
        // The OpenTelemetry layer between the two that lend it the parent
        // of a span opened in a request that is not sampled.
        let exporting = traces.is_some();
        let subscriber = tracing_subscriber::registry()
            .with(exporting.then_some(layer::UnsampledParent))
            .with(traces)
            .with(exporting.then_some(layer::ReleaseParent))
            .with(logs);
        Ok((
            TracingGuard {
                provider,
                context,
                shutdown_timeout: settings.shutdown_timeout,
            },
            tracing::Dispatch::new(subscriber),
        ))
    }
}

fn provider(
    settings: &config::Settings,
    endpoint: &str,
    stats: Arc<export::Stats>,
) -> Result<SdkTracerProvider, SetupError> {
    let resource = Resource::builder_empty()
        .with_attributes(
            settings
                .resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build();
    let exporter_resource = resource.clone();
    let make = {
        let settings = settings.clone();
        let endpoint = endpoint.to_owned();
        move || {
            let mut exporter = exporter(&settings, &endpoint)?;
            opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &exporter_resource);
            Ok(exporter)
        }
    };
    let processor =
        export::Processor::start(settings, stats, make).map_err(SetupError::Exporter)?;
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(ids::sdk_sampler(settings.sampler))
        .with_id_generator(ids::Ids)
        .with_resource(resource)
        .build())
}

fn exporter(
    settings: &config::Settings,
    endpoint: &str,
) -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    // The export thread times each export out itself, and counts it as a
    // timeout; the exporter's own deadline comes later, so that the two do
    // not race to call the same export a timeout or a failure.
    let own_timeout = settings.timeout + settings.timeout / 2;
    match settings.protocol {
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig as _;
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (k, v) in &settings.headers {
                let key =
                    tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|e| format!("header {k:?}: {e}"))?;
                let value = v.parse().map_err(|e| format!("header {k:?}: {e}"))?;
                metadata.insert(key, value);
            }
            // A channel of our own whose request buffer holds one export:
            // tonic's default (1,024 requests) would keep every export
            // abandoned at its timeout while the collector hangs, each a
            // whole batch, past the queue's bound.
            let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
                .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?
                .connect_timeout(settings.timeout)
                .buffer_size(1)
                .connect_lazy();
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_channel(channel)
                .with_timeout(own_timeout)
                .with_metadata(metadata);
            if settings.gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build().map_err(|e| e.to_string())
        }
        #[cfg(feature = "http")]
        Protocol::HttpProtobuf => {
            use opentelemetry_otlp::WithHttpConfig as _;
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(own_timeout)
                .with_headers(settings.headers.iter().cloned().collect());
            if settings.gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build().map_err(|e| e.to_string())
        }
        #[allow(unreachable_patterns)]
        _ => Err("the protocol's feature is off".into()),
    }
}

/// The running pipeline. Dropping it sends what is queued (waiting at most
/// the shutdown timeout) and stops export.
#[must_use = "dropping the guard stops trace export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
    context: OtlpContext,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for TracingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingGuard")
            .field("exporting", &self.is_exporting())
            .finish_non_exhaustive()
    }
}

impl TracingGuard {
    /// The trace-context hook, for
    /// [`TelemetryBuilder::with_trace_context`](plimsoll_core::TelemetryBuilder::with_trace_context).
    pub fn trace_context(&self) -> OtlpContext {
        self.context.clone()
    }

    /// Whether spans are exported (an endpoint is configured and export is
    /// not disabled).
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every span finished so far, waiting at most the shutdown
    /// timeout. Whether they were accepted shows in the counters.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown_with_timeout(self.shutdown_timeout);
        }
    }
}
