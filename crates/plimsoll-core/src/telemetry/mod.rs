//! [`Telemetry`]: the registry, the naming scheme and the bounds, built once.
//!
//! - `builder`: [`TelemetryBuilder`], its settings and their validation.
//! - `checks`: the checks every family goes through (names, labels,
//!   buckets, sample names), and [`RegisterError`].
//! - `register`: registering families by name.
//! - `declare`: registering families from their declarations, label
//!   guards, scrape-time families.
//! - here: the handle itself, tenants, the trace-context hook, exposition.

mod builder;
mod checks;
mod declare;
mod register;

pub use builder::{
    BuildError, BuildInfo, DEFAULT_DURATION_BUCKETS, DEFAULT_MAX_SERIES, Naming, TelemetryBuilder,
};
pub use checks::RegisterError;
pub(crate) use checks::{valid_label_name, valid_metric_name};
pub use declare::Declared;
pub use register::MetricOpts;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::encoding::MetricKind;
use crate::encoding::{Encoder, Format, bucket_label, write_escaped};
use crate::family::{Bound, FamilyDecl};
use crate::labels::{LabelGuard, LabelSet};
use crate::metrics::{
    Cell, Counter, CounterCell, EncodeFamily, Family, Gauge, GaugeCell, Histogram, HistogramCell,
    Meta, OverflowFamily, Shape,
};
use crate::names;
use crate::tenant::{DEFAULT_MAX_TENANTS, InvalidTenant, Tenant, TenantError, TenantRegistry};
use crate::trace::{
    Headers, HeadersMut, OpenSpan, ScopeTraceContext, SpanContext, SpanEnd, SpanKind, SpanStart,
    TraceContext, TraceRef,
};

struct Registered {
    /// Name without prefix (and without `_total` for counters).
    name: String,
    type_id: TypeId,
    any: Arc<dyn Any + Send + Sync>,
    encode: Arc<dyn EncodeFamily>,
}

struct Inner {
    prefix: String,
    const_labels: String,
    const_names: Vec<String>,
    buckets: Vec<f64>,
    family_buckets: HashMap<&'static str, Vec<f64>>,
    max_series: usize,
    family_max_series: HashMap<&'static str, usize>,
    label_bounds: HashMap<(&'static str, String), usize>,
    tenants: Arc<TenantRegistry>,
    overflow: Arc<OverflowFamily>,
    build_info: Option<String>,
    naming: Naming,
    trace: Option<Arc<dyn TraceContext>>,
    /// Whether the hook opens spans (read once).
    spans: bool,
    families: Mutex<Vec<Registered>>,
    /// Label guards, one per exposed metric and label.
    guards: Mutex<HashMap<(String, String), LabelGuard>>,
    last_size: AtomicUsize,
    /// Told of every request a server layer served, when it ends.
    request_observers: boxcar::Vec<Arc<dyn crate::scope::RequestObserver>>,
    /// prometheus-client registries exposed beside the families.
    #[cfg(feature = "prometheus-client")]
    foreign: crate::foreign::Foreign,
}

/// The registry, naming scheme and bounds of one service: cheap to clone,
/// `Send + Sync`, and independent of every other `Telemetry` in the process.
///
/// # Example
///
/// ```
/// use plimsoll_core::{Format, Telemetry};
///
/// let telemetry = Telemetry::builder()
///     .with_const_label("service", "orders")
///     .with_process_metrics(false)
///     .build()
///     .unwrap();
/// let logins = telemetry.counter::<()>("logins", "Successful logins.").unwrap();
/// logins.inc(&telemetry.tenant("acme"), &());
///
/// let body = telemetry.encode(Format::Prometheus);
/// assert!(body.contains("logins_total{tenant_id=\"acme\",service=\"orders\"} 1\n"));
/// ```
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("prefix", &self.inner.prefix)
            .field("tenants", &self.inner.tenants.len())
            .field(
                "families",
                &self.inner.families.lock().map(|f| f.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

/// An encoded scrape: body and the content type to send it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposition {
    /// The format chosen.
    pub format: Format,
    /// The body.
    pub body: String,
}

impl Exposition {
    /// The `Content-Type` header value.
    pub fn content_type(&self) -> &'static str {
        self.format.content_type()
    }
}

impl Telemetry {
    /// A builder with the defaults.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// Resolves a raw tenant id: validated (invalid → `__unknown__`) and
    /// bounded by the tenant policy (refused → `__other__`).
    pub fn tenant(&self, raw: &str) -> Tenant {
        self.inner.tenants.resolve(raw)
    }

    /// A small number naming `tenant` among this telemetry's, below
    /// [`tenant_slots`](Telemetry::tenant_slots): the reserved tenants first
    /// (`__system__` 0, `__unknown__` 1, `__other__` 2), then admitted
    /// tenants in the order they were first seen. Tenants are never evicted,
    /// so a tenant keeps its slot for the life of the telemetry. For
    /// per-tenant state kept in an array instead of a map (no hashing, no
    /// lock). `None` for a tenant resolved by another telemetry.
    ///
    /// ```
    /// # let telemetry = plimsoll_core::Telemetry::builder().with_max_tenants(2).build().unwrap();
    /// use plimsoll_core::Tenant;
    ///
    /// assert_eq!(telemetry.tenant_slot(&Tenant::system()), Some(0));
    /// assert_eq!(telemetry.tenant_slot(&telemetry.tenant("acme")), Some(3));
    /// assert_eq!(telemetry.tenant_slot(&telemetry.tenant("globex")), Some(4));
    /// assert_eq!(telemetry.tenant_slot(&telemetry.tenant("acme")), Some(3));
    /// assert_eq!(telemetry.tenant_slot(&telemetry.tenant("initech")), Some(2)); // __other__
    /// assert_eq!(telemetry.tenant_slots(), 5);
    /// ```
    #[inline]
    pub fn tenant_slot(&self, tenant: &Tenant) -> Option<usize> {
        self.inner.tenants.slot(tenant)
    }

    /// How many tenant slots there are: the three reserved tenants plus
    /// the bound on distinct tenants.
    pub fn tenant_slots(&self) -> usize {
        self.inner.tenants.slots()
    }

    /// Like [`tenant`](Telemetry::tenant) for a raw id in bytes (a header
    /// value): anything that is not a valid id, UTF-8 or not, is `__unknown__`.
    pub fn tenant_from_bytes(&self, raw: &[u8]) -> Tenant {
        // Valid ids are ASCII, so a value that is not UTF-8 fails either way.
        match std::str::from_utf8(raw) {
            Ok(raw) => self.inner.tenants.resolve(raw),
            Err(_) => Tenant::unknown(),
        }
    }

    /// Like [`tenant`](Telemetry::tenant) but says why an id did not get
    /// its own label: invalid, past the tenant bound, or not allowed.
    pub fn try_tenant(&self, raw: &str) -> Result<Tenant, TenantError> {
        self.inner.tenants.try_resolve(raw)
    }

    /// A tenant of another `Telemetry`, admitted here explicitly (bounded
    /// by this telemetry's policy). Recording with a foreign tenant
    /// without adopting it records under `__unknown__`.
    pub fn adopt(&self, tenant: &Tenant) -> Tenant {
        self.inner.tenants.adopt(tenant)
    }

    /// The naming scheme integrations use.
    pub fn naming(&self) -> Naming {
        self.inner.naming
    }

    /// The span running now, from the trace context hook (default: the
    /// request scope's span).
    #[inline]
    pub fn current_span(&self) -> Option<SpanContext> {
        match &self.inner.trace {
            None => ScopeTraceContext.current(),
            Some(context) => context.current(),
        }
    }

    /// The exemplar of the span running now: its ids when it is sampled.
    #[inline]
    pub fn current_trace(&self) -> Option<TraceRef> {
        self.current_span()?.exemplar()
    }

    /// Whether a custom trace context hook is set (else the request
    /// scope's span is the trace context).
    #[inline]
    pub fn has_trace_context_hook(&self) -> bool {
        self.inner.trace.is_some()
    }

    /// Whether integrations open spans (the trace-context hook says so).
    #[inline]
    pub fn opens_spans(&self) -> bool {
        self.inner.spans
    }

    /// Whether a span of `kind` starting now would be recorded (see
    /// [`TraceContext::sample`]): ask before describing one. `Err` with
    /// nothing unless [`opens_spans`](Self::opens_spans).
    #[inline]
    pub fn sample_span(
        &self,
        kind: SpanKind,
        headers: Option<&dyn Headers>,
    ) -> Result<(), OpenSpan> {
        match &self.inner.trace {
            Some(hook) if self.inner.spans => hook.sample(kind, headers),
            _ => Err(OpenSpan::default()),
        }
    }

    /// Opens a span through the trace-context hook (see
    /// [`TraceContext::start_span`]); nothing unless
    /// [`opens_spans`](Self::opens_spans).
    #[inline]
    pub fn start_span(&self, start: &SpanStart<'_>) -> OpenSpan {
        match &self.inner.trace {
            Some(hook) if self.inner.spans => hook.start_span(start),
            _ => OpenSpan::default(),
        }
    }

    /// Records how a span's work ended (see [`TraceContext::end_span`]).
    #[inline]
    pub fn end_span(&self, span: &OpenSpan, end: &SpanEnd<'_>) {
        if let Some(hook) = &self.inner.trace
            && !span.is_none()
        {
            hook.end_span(span, end);
        }
    }

    /// Writes a span's context into an outgoing request's headers (see
    /// [`TraceContext::inject`]).
    #[inline]
    pub fn inject(&self, span: &OpenSpan, headers: &mut dyn HeadersMut) {
        if span.is_none() {
            return;
        }
        match &self.inner.trace {
            Some(hook) => hook.inject(span, headers),
            None => ScopeTraceContext.inject(span, headers),
        }
    }

    /// Tells `observer` of every request the server layers built on this
    /// telemetry serve, when it ends. While any observer is set, each
    /// request runs in a scope of its own that counts its queries
    /// ([`Scope::counting`](crate::scope::Scope::counting)).
    pub fn observe_requests(&self, observer: Arc<dyn crate::scope::RequestObserver>) {
        self.inner.request_observers.push(observer);
    }

    /// Whether any [`RequestObserver`](crate::scope::RequestObserver) is set:
    /// server layers then open counting scopes and call
    /// [`request_ended`](Telemetry::request_ended).
    #[inline]
    pub fn observes_requests(&self) -> bool {
        self.inner.request_observers.count() != 0
    }

    /// For server layers: the request on `route` ended; tells every observer.
    pub fn request_ended(&self, route: &str, scope: &crate::scope::Scope) {
        for (_, observer) in &self.inner.request_observers {
            observer.request_ended(route, scope);
        }
    }

    /// The default histogram buckets for the family `name` (without
    /// prefix; counters without `_total`).
    pub fn buckets_for(&self, name: &str) -> &[f64] {
        self.inner
            .family_buckets
            .get(name)
            .unwrap_or(&self.inner.buckets)
    }

    /// Exposes a [prometheus-client] registry through this telemetry's
    /// `/metrics`, in both formats, from the next scrape on. Metric handles
    /// cloned before keep recording into it; register everything before
    /// handing it over.
    ///
    /// Every foreign sample gets `tenant_id="__system__"` first (foreign
    /// metrics belong to no tenant) and the constant labels last, as
    /// plimsoll's own series. A foreign label named `tenant_id` or like a
    /// constant label is renamed `exported_<name>`, as Prometheus does on
    /// such clashes. The prefix is not applied: these are the other library's
    /// names, which its dashboards and alerts query as it spells them. In
    /// Prometheus text 0.0.4, `# UNIT`, `_created` samples and exemplars are
    /// dropped, `info` becomes a gauge named `<name>_info`, `stateset` a
    /// gauge, `unknown` `untyped`, and `gaugehistogram` an untyped
    /// `<name>_bucket` with `<name>_gcount` and `<name>_gsum` gauges (what
    /// `promtool check metrics` accepts). The deployment guide has the details.
    ///
    /// A family of the registry whose name or sample names clash with a
    /// plimsoll family's (its name with the prefix, and that name with
    /// `_total`, `_created`, `_bucket`, `_count` or `_sum`, whatever its
    /// type), with an earlier registry's or with another of its own is
    /// refused; so is, later, a plimsoll family that clashes with a family
    /// the registry writes or has written. prometheus-client writes nothing
    /// of a `Family` until its first series (and a collector writes what it
    /// likes): a foreign family that first shows at a scrape and clashes is
    /// left out of it, with a `tracing` warning the first time.
    ///
    /// # Errors
    ///
    /// Nothing is registered when one of the families the registry writes
    /// now
    /// - clashes as above, or has a sample its type does not allow:
    ///   [`RegisterError::Conflict`] naming the family (or sample);
    /// - has an invalid name, or a sample an invalid or repeated label name:
    ///   [`RegisterError::InvalidName`], [`RegisterError::InvalidLabelName`],
    ///   [`RegisterError::DuplicateLabel`].
    ///
    /// # Example
    ///
    /// ```
    /// use plimsoll_core::{Format, RegisterError, Telemetry};
    /// use prometheus_client::metrics::counter::Counter;
    /// use prometheus_client::registry::Registry;
    ///
    /// let telemetry = Telemetry::builder()
    ///     .with_prefix("shop")
    ///     .with_const_label("service", "orders")
    ///     .with_process_metrics(false)
    ///     .build()?;
    ///
    /// // A client library's own metrics, on prometheus-client.
    /// let mut registry = Registry::default();
    /// let retries: Counter = Counter::default();
    /// registry.register("payment_retries", "Retries of payment calls", retries.clone());
    /// telemetry.register_prometheus_client(registry)?;
    /// retries.inc();
    ///
    /// let body = telemetry.encode(Format::Prometheus);
    /// assert!(body.contains("# TYPE payment_retries_total counter\n"));
    /// assert!(body.contains(
    ///     "payment_retries_total{tenant_id=\"__system__\",service=\"orders\"} 1\n"
    /// ));
    ///
    /// // A family named like one of plimsoll's is refused, and nothing of its registry is added.
    /// telemetry.counter::<()>("orders_placed", "Orders placed.")?;
    /// let mut clashing = Registry::default();
    /// clashing.register("shop_orders_placed", "Orders", Counter::<u64>::default());
    /// assert_eq!(
    ///     telemetry.register_prometheus_client(clashing),
    ///     Err(RegisterError::Conflict("shop_orders_placed".into()))
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [prometheus-client]: https://docs.rs/prometheus-client
    #[cfg(feature = "prometheus-client")]
    pub fn register_prometheus_client(
        &self,
        registry: prometheus_client::registry::Registry,
    ) -> Result<(), RegisterError> {
        let candidate = crate::foreign::Candidate::new(registry)?;
        let inner = &*self.inner;
        let families = inner.families.lock().unwrap_or_else(|e| e.into_inner());
        let build_info = inner.build_info.as_ref().map(|_| names::BUILD_INFO);
        let plimsoll = families.iter().map(|f| f.name.as_str()).chain(build_info);
        inner.foreign.add(candidate, &inner.prefix, plimsoll)
    }

    /// The number of series across all registered families (scrape-time
    /// families not counted).
    pub fn series_count(&self) -> usize {
        let families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        families
            .iter()
            .map(|f| f.encode.series_count())
            .sum::<usize>()
            + self.inner.overflow.store.len()
    }

    /// Encodes every family in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut body = String::with_capacity(self.inner.last_size.load(Ordering::Relaxed));
        self.encode_into(&mut body, format);
        self.inner
            .last_size
            .store(body.len() + body.len() / 8, Ordering::Relaxed);
        body
    }

    /// Encodes in the format the `Accept` header asks for.
    pub fn render(&self, accept: Option<&str>) -> Exposition {
        let format = Format::negotiate(accept);
        Exposition {
            format,
            body: self.encode(format),
        }
    }

    /// Appends the encoding of every family to `out`.
    pub fn encode_into(&self, out: &mut String, format: Format) {
        let families: Vec<Arc<dyn EncodeFamily>> = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|f| f.encode.clone())
            .collect();
        let mut enc = Encoder {
            out,
            format,
            prefix: &self.inner.prefix,
            const_labels: &self.inner.const_labels,
        };
        if let Some(labels) = &self.inner.build_info {
            enc.header(
                names::BUILD_INFO,
                names::BUILD_INFO_HELP,
                crate::MetricKind::Gauge,
            );
            let mut rendered = String::new();
            enc.render_labels(&mut rendered, names::SYSTEM, |buf| buf.push_str(labels));
            enc.sample_start(names::BUILD_INFO, "", &rendered, None);
            enc.out.push_str("1\n");
        }
        for family in &families {
            family.encode(&mut enc);
        }
        #[cfg(feature = "prometheus-client")]
        self.inner.foreign.encode(&mut enc);
        self.inner.overflow.encode(&mut enc);
        if format == Format::OpenMetrics {
            enc.out.push_str("# EOF\n");
        }
    }

    /// Encodes and parses the scrape, for assertions in tests.
    ///
    /// # Panics
    ///
    /// If the exposition does not parse, which would be a plimsoll bug.
    #[cfg(feature = "test-util")]
    pub fn scrape(&self) -> crate::testing::Scrape {
        let body = self.encode(Format::OpenMetrics);
        crate::testing::Scrape::parse(&body).unwrap_or_else(|e| {
            panic!("plimsoll produced an exposition it cannot parse: {e}\n{body}")
        })
    }
}
