//! RED metrics (rate, errors, duration) for HTTP servers.
//!
//! [`RedMetricsLayer`] records, per request:
//!
//! | metric | labels (plus `tenant_id`) |
//! |---|---|
//! | `http_requests_total` | method, route, status_code |
//! | `http_request_duration_seconds` | method, route, status_code |
//! | `http_requests_in_flight` | method, route |
//! | `http_request_errors_total` | method, route, error_type |
//!
//! - **route** is the matched route template (axum's `MatchedPath`, nested
//!   routers included) or `__unmatched__`; the raw path is never a label.
//!   Add the layer with `Router::layer` so that the route is known.
//! - **method** is one of the standard methods or `_OTHER`.
//! - **tenant**: a [`Tenant`] request extension (set
//!   by your auth middleware, added as an outer layer), else a custom
//!   resolver, else the configured header, else `__unknown__`.
//! - Latency runs to the end of the response body (streams included), or to
//!   the response headers on routes listed in
//!   [`with_header_timing`](RedMetricsBuilder::with_header_timing).
//! - A request dropped before its response (client gone, timeout) counts
//!   with `status_code="499"` and `error_type="cancelled"`; a panic in the
//!   handler counts as 500 `server_error`; in-flight always returns to 0.
//! - `http_requests_total` is the latency histogram's count, exposed as a
//!   counter: one lookup per request serves both.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use plimsoll_core::Telemetry;
//! use plimsoll_http::RedMetricsLayer;
//!
//! let telemetry = Telemetry::builder().build().unwrap();
//! let red = RedMetricsLayer::builder(&telemetry)
//!     .with_tenant_header("x-tenant-id")
//!     .with_ignored_paths(["/metrics", "/health"])
//!     .build()
//!     .unwrap();
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     .layer(red);
//! ```

mod body;
mod future;
mod memo;
mod service;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use plimsoll_core::{
    Counter, Gauge, Histogram, LabelGuard, MetricOpts, Naming, RegisterError, SeriesKey, Telemetry,
    Tenant, TraceRef,
};
use tower_layer::Layer;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use service::RedMetrics;

use crate::labels::{
    ErrorKey, ErrorLabels, ErrorType, OpenTelemetryNames, PrometheusNames, RequestKey,
    RequestLabels, RouteKey, RouteLabels, Scheme,
};
use crate::names;
use crate::tenant::{ResolveTenant, TenantSource};

/// Default bound on distinct routes from a custom route extractor.
pub const DEFAULT_MAX_ROUTES: usize = 500;

/// Decides whether a response status is a failure, and of which type.
pub type Classify = dyn Fn(StatusCode) -> Option<ErrorType> + Send + Sync;

/// Extracts a route template from a request, for stacks without axum.
pub type ExtractRoute = dyn Fn(&http::Uri, &http::Extensions) -> Option<String> + Send + Sync;

/// The default classifier: 5xx is `server_error`, 4xx `client_error`.
#[inline]
pub fn classify_status(status: StatusCode) -> Option<ErrorType> {
    if status.is_server_error() {
        Some(ErrorType::ServerError)
    } else if status.is_client_error() {
        Some(ErrorType::ClientError)
    } else {
        None
    }
}

/// An invalid [`RedMetricsBuilder`] setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpBuildError {
    /// A header name does not parse.
    #[error("{field}: {value:?} is not a valid header name")]
    InvalidHeader {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A limit is zero.
    #[error("{field}: must be at least 1")]
    ZeroLimit {
        /// The setting.
        field: &'static str,
    },
    /// A family could not be registered (e.g. its name is taken by another type).
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Builds a [`RedMetricsLayer`]; see the [module docs](self).
pub struct RedMetricsBuilder {
    telemetry: Telemetry,
    tenant_header: Option<String>,
    resolver: Option<Arc<ResolveTenant>>,
    route: Option<Arc<ExtractRoute>>,
    max_routes: usize,
    ignored: Vec<String>,
    header_timing: Vec<String>,
    slow: Option<Duration>,
    /// `None`: [`classify_status`], called directly.
    classify: Option<Arc<Classify>>,
    body_sizes: bool,
    traceparent_exemplars: bool,
}

impl fmt::Debug for RedMetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedMetricsBuilder")
            .field("tenant_header", &self.tenant_header)
            .field("ignored", &self.ignored)
            .field("header_timing", &self.header_timing)
            .field("slow", &self.slow)
            .field("body_sizes", &self.body_sizes)
            .finish_non_exhaustive()
    }
}

impl RedMetricsBuilder {
    /// Reads the tenant from this header (validated and bounded by the
    /// telemetry's tenant policy) when no extension or resolver gave one.
    pub fn with_tenant_header(mut self, name: impl Into<String>) -> Self {
        self.tenant_header = Some(name.into());
        self
    }

    /// A custom tenant resolver, tried after the [`Tenant`] extension and
    /// before the header. Resolve raw ids through `Telemetry::tenant`.
    pub fn with_tenant_resolver<F>(mut self, resolver: F) -> Self
    where
        F: Fn(&http::HeaderMap, &http::Extensions) -> Option<Tenant> + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// A route extractor for stacks without axum. Its values are bounded to
    /// `max_routes` (past it: `__other__`); `None` means `__unmatched__`.
    pub fn with_route_extractor<F>(mut self, extract: F) -> Self
    where
        F: Fn(&http::Uri, &http::Extensions) -> Option<String> + Send + Sync + 'static,
    {
        self.route = Some(Arc::new(extract));
        self
    }

    /// Bound on distinct routes from the route extractor (default [`DEFAULT_MAX_ROUTES`]).
    pub fn with_max_routes(mut self, max: usize) -> Self {
        self.max_routes = max;
        self
    }

    /// Requests whose route template or path is one of these are not recorded.
    pub fn with_ignored_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignored.extend(paths.into_iter().map(Into::into));
        self
    }

    /// On these route templates (streams: SSE, long downloads) latency is
    /// the time to the response headers instead of to the end of the body.
    pub fn with_header_timing<I, S>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.header_timing
            .extend(routes.into_iter().map(Into::into));
        self
    }

    /// Logs a `tracing` warning (route, tenant, status, duration) for
    /// requests slower than `threshold`.
    pub fn with_slow_request_threshold(mut self, threshold: Duration) -> Self {
        self.slow = Some(threshold);
        self
    }

    /// Replaces the failure classifier (default [`classify_status`]).
    pub fn with_classifier<F>(mut self, classify: F) -> Self
    where
        F: Fn(StatusCode) -> Option<ErrorType> + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(classify));
        self
    }

    /// Also records request (from `Content-Length`) and response body sizes.
    pub fn with_body_sizes(mut self, enabled: bool) -> Self {
        self.body_sizes = enabled;
        self
    }

    /// Attaches the incoming W3C `traceparent` (when sampled) as the
    /// latency exemplar (default: on).
    pub fn with_traceparent_exemplars(mut self, enabled: bool) -> Self {
        self.traceparent_exemplars = enabled;
        self
    }

    /// Registers the families and builds the layer.
    pub fn build(self) -> Result<RedMetricsLayer, HttpBuildError> {
        let header = match self.tenant_header {
            None => None,
            Some(value) => Some(HeaderName::try_from(value.as_str()).map_err(|_| {
                HttpBuildError::InvalidHeader {
                    field: "tenant_header",
                    value,
                }
            })?),
        };
        if self.max_routes == 0 {
            return Err(HttpBuildError::ZeroLimit {
                field: "max_routes",
            });
        }
        let recorder = match self.telemetry.naming() {
            Naming::OpenTelemetry => Recorder::OpenTelemetry(Families::register(
                &self.telemetry,
                OTEL_NAMES,
                self.body_sizes,
            )?),
            _ => Recorder::Prometheus(Families::register(
                &self.telemetry,
                PROMETHEUS_NAMES,
                self.body_sizes,
            )?),
        };
        let route = match self.route {
            None => RouteSource::Default,
            Some(extract) => RouteSource::Custom(
                extract,
                self.telemetry
                    .label_guard(recorder.duration_name(), "route", self.max_routes),
            ),
        };
        let start_extras = self.body_sizes || !self.header_timing.is_empty();
        let end_extras = self.body_sizes || self.slow.is_some();
        let mut tenants = TenantSource::new(&self.telemetry);
        tenants.header = header;
        tenants.resolver = self.resolver;
        Ok(RedMetricsLayer {
            shared: Arc::new(Shared {
                id: NEXT_LAYER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                recorder,
                tenants,
                route,
                ignored: self.ignored.into(),
                header_timing: self.header_timing.into(),
                slow: self.slow,
                classify: self.classify,
                traceparent_exemplars: self.traceparent_exemplars,
                start_extras,
                end_extras,
            }),
        })
    }
}

/// Tower layer recording RED metrics; see the [module docs](self).
#[derive(Clone)]
pub struct RedMetricsLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedMetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedMetricsLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl RedMetricsLayer {
    /// A builder for a layer recording into `telemetry`.
    pub fn builder(telemetry: &Telemetry) -> RedMetricsBuilder {
        RedMetricsBuilder {
            telemetry: telemetry.clone(),
            tenant_header: None,
            resolver: None,
            route: None,
            max_routes: DEFAULT_MAX_ROUTES,
            ignored: Vec::new(),
            header_timing: Vec::new(),
            slow: None,
            classify: None,
            body_sizes: false,
            traceparent_exemplars: true,
        }
    }

    /// A layer with the defaults: tenants from the [`Tenant`] extension only.
    pub fn new(telemetry: &Telemetry) -> Result<Self, HttpBuildError> {
        Self::builder(telemetry).build()
    }
}

impl<S> Layer<S> for RedMetricsLayer {
    type Service = RedMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RedMetrics::new(inner, self.shared.clone())
    }
}

/// The route of a request, held until its response ends.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
    Shared(Arc<str>),
    Unmatched,
}

impl Route {
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        match self {
            #[cfg(feature = "axum")]
            Route::Matched(path) => path.as_str(),
            Route::Shared(route) => route,
            Route::Unmatched => plimsoll_core::names::UNMATCHED,
        }
    }
}

/// The route of a request as found: borrowed from the request while it
/// starts, so that it is cloned only when something must hold it.
pub(crate) enum RouteRef<'a> {
    #[cfg(feature = "axum")]
    Matched(&'a axum::extract::MatchedPath),
    Owned(Route, std::marker::PhantomData<&'a ()>),
}

impl RouteRef<'_> {
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        match self {
            #[cfg(feature = "axum")]
            RouteRef::Matched(path) => path.as_str(),
            RouteRef::Owned(route, _) => route.as_str(),
        }
    }

    #[inline]
    pub(crate) fn to_route(&self) -> Route {
        match self {
            #[cfg(feature = "axum")]
            RouteRef::Matched(path) => Route::Matched((*path).clone()),
            RouteRef::Owned(route, _) => route.clone(),
        }
    }
}

enum RouteSource {
    Default,
    Custom(Arc<ExtractRoute>, LabelGuard),
}

impl RouteSource {
    #[inline]
    fn route<'a>(&self, uri: &http::Uri, extensions: &'a http::Extensions) -> RouteRef<'a> {
        let owned = |route| RouteRef::Owned(route, std::marker::PhantomData);
        match self {
            RouteSource::Custom(extract, guard) => match extract(uri, extensions) {
                Some(route) => owned(Route::Shared(guard.admit(&route))),
                None => owned(Route::Unmatched),
            },
            RouteSource::Default => {
                #[cfg(feature = "axum")]
                if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
                    return RouteRef::Matched(path);
                }
                let _ = (uri, extensions);
                owned(Route::Unmatched)
            }
        }
    }
}

/// Ids of layers, for the per-thread memo: never reused, never 0.
static NEXT_LAYER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What the service and its guards share.
pub(crate) struct Shared {
    /// This layer's id in the per-thread memo of series keys.
    pub(crate) id: u64,
    pub(crate) recorder: Recorder,
    pub(crate) tenants: TenantSource,
    route: RouteSource,
    ignored: Box<[String]>,
    header_timing: Box<[String]>,
    pub(crate) slow: Option<Duration>,
    classify: Option<Arc<Classify>>,
    traceparent_exemplars: bool,
    /// Body sizes or header timing are configured: requests start with
    /// [`Shared::start_extras`].
    start_extras: bool,
    /// Body sizes or the slow-request log are configured: every request
    /// ends with the guard's extras, not only failed ones.
    pub(crate) end_extras: bool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("tenants", &self.tenants)
            .field("ignored", &self.ignored)
            .field("header_timing", &self.header_timing)
            .field("slow", &self.slow)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Whether a status is a failure, and of which type.
    #[inline]
    pub(crate) fn classify(&self, status: StatusCode) -> Option<ErrorType> {
        match &self.classify {
            None => classify_status(status),
            Some(classify) => classify(status),
        }
    }

    /// Starts recording a request; `None` for ignored paths.
    ///
    /// The warm path (memo hit, no extras configured) is kept short and
    /// straight: everything else is out of line.
    #[inline]
    pub(crate) fn start<B>(self: &Arc<Self>, req: &http::Request<B>) -> Option<future::Guard> {
        let start = plimsoll_core::clock::Stamp::now();
        let route = self.route.route(req.uri(), req.extensions());
        if !self.ignored.is_empty() && self.is_ignored(&route, req.uri()) {
            return None;
        }
        let method = crate::labels::method_label(req.method());
        let found = self.tenants.find(req.headers(), req.extensions());
        let in_flight = memo::in_flight(self.id, &found, method, &route, || {
            let tenant = self.tenants.tenant(&found);
            self.recorder.in_flight_key(&tenant, method, route.as_str())
        });
        self.recorder.in_flight_add(&in_flight, 1.0);
        let trace = if self.traceparent_exemplars {
            crate::tenant::header(req.headers(), &TRACEPARENT)
                .and_then(|v| parse_traceparent(v.as_bytes()))
        } else {
            None
        };
        let mut request = future::Request {
            in_flight,
            start,
            overflow: None,
            request_size: future::UNKNOWN_SIZE,
            trace: future::CompactTrace::new(trace),
            header_timing: false,
        };
        if self.start_extras || in_flight.is_overflow_series() {
            self.start_extras(&mut request, req.headers(), method, &route);
        }
        Some(future::Guard::new(self.clone(), request))
    }

    /// Whether the request's route template or path is in the ignore list.
    #[inline(never)]
    fn is_ignored(&self, route: &RouteRef<'_>, uri: &http::Uri) -> bool {
        self.ignored
            .iter()
            .any(|p| p == route.as_str() || p == uri.path())
    }

    /// What only some requests need at start: the request size, header
    /// timing, and the labels of a request on an overflow series.
    #[inline(never)]
    fn start_extras(
        &self,
        request: &mut future::Request,
        headers: &http::HeaderMap,
        method: &'static str,
        route: &RouteRef<'_>,
    ) {
        if self.recorder.records_sizes()
            && let Some(size) = headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
        {
            request.request_size = size;
        }
        request.header_timing = self.header_timing.iter().any(|r| r == route.as_str());
        // An overflow series has no labels to read the route from later.
        if request.in_flight.is_overflow_series() {
            request.overflow = Some(Box::new((method, route.to_route())));
        }
    }
}

/// The W3C trace context header, parsed once.
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Parses a W3C `traceparent` (`00-<trace>-<span>-<flags>`); `None` unless sampled.
pub(crate) fn parse_traceparent(value: &[u8]) -> Option<TraceRef> {
    let value = std::str::from_utf8(value).ok()?;
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2
        || version == "ff"
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(span, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && span_id != 0 && flags & 1 == 1).then_some(TraceRef { trace_id, span_id })
}

/// Family names of one naming scheme.
struct FamilyNames {
    duration: &'static str,
    requests: &'static str,
    in_flight: &'static str,
    errors: &'static str,
    request_size: &'static str,
    response_size: &'static str,
}

const PROMETHEUS_NAMES: FamilyNames = FamilyNames {
    duration: names::HTTP_REQUEST_DURATION,
    requests: names::HTTP_REQUESTS,
    in_flight: names::HTTP_REQUESTS_IN_FLIGHT,
    errors: names::HTTP_REQUEST_ERRORS,
    request_size: names::HTTP_REQUEST_SIZE,
    response_size: names::HTTP_RESPONSE_SIZE,
};

const OTEL_NAMES: FamilyNames = FamilyNames {
    duration: names::OTEL_HTTP_REQUEST_DURATION,
    requests: names::OTEL_HTTP_REQUESTS,
    in_flight: names::OTEL_HTTP_ACTIVE_REQUESTS,
    errors: names::OTEL_HTTP_REQUEST_ERRORS,
    request_size: names::OTEL_HTTP_REQUEST_SIZE,
    response_size: names::OTEL_HTTP_RESPONSE_SIZE,
};

/// Method and route of a request: those of its in-flight series, or the
/// ones held in `overflow` when that is an overflow series.
pub(crate) fn request_labels<'a>(
    recorder: &'a impl Record,
    in_flight: &SeriesKey,
    overflow: Option<&'a (&'static str, Route)>,
) -> (&'static str, &'a str) {
    match overflow {
        Some((method, route)) => (method, route.as_str()),
        None => recorder
            .in_flight_labels(in_flight)
            .unwrap_or((crate::names::METHOD_OTHER, plimsoll_core::names::OTHER)),
    }
}

/// A finished request, as the recorder needs it.
pub(crate) struct Outcome<'a> {
    /// Tenant, method and route: those of the in-flight series, or of
    /// `overflow` when that is an overflow series.
    pub(crate) in_flight: &'a SeriesKey,
    pub(crate) overflow: Option<&'a (&'static str, Route)>,
    pub(crate) error: Option<ErrorType>,
    pub(crate) request_size: Option<u64>,
    pub(crate) response_size: u64,
}

/// The families of the naming scheme in use: an enum, not a trait object,
/// so that recording calls are direct and inlined.
pub(crate) enum Recorder {
    Prometheus(Families<PrometheusNames>),
    OpenTelemetry(Families<OpenTelemetryNames>),
}

/// Declares [`Record`] and implements it for [`Recorder`] by forwarding to
/// the scheme in use.
macro_rules! record_trait {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?;)*) => {
        /// Records into the families of one naming scheme.
        pub(crate) trait Record: Send + Sync {
            $( $(#[$doc])* fn $name(&self $(, $arg: $ty)*) $(-> $ret)?; )*
        }

        impl Record for Recorder {
            $(
                #[inline]
                fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
                    match self {
                        Recorder::Prometheus(f) => f.$name($($arg),*),
                        Recorder::OpenTelemetry(f) => f.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

record_trait! {
    fn duration_name(&self) -> &'static str;
    /// Whether body sizes are recorded (so `Content-Length` is worth reading).
    fn records_sizes(&self) -> bool;
    fn in_flight_key(&self, tenant: &Tenant, method: &'static str, route: &str) -> SeriesKey;
    fn in_flight_add(&self, key: &SeriesKey, value: f64);
    /// Method and route of an in-flight series; `None` for an overflow series.
    fn in_flight_labels(&self, key: &SeriesKey) -> Option<(&'static str, &str)>;
    /// The tenant of an in-flight series.
    fn in_flight_tenant(&self, key: &SeriesKey) -> Tenant;
    fn duration_key(&self, tenant: &Tenant, method: &'static str, route: &str, status: u16) -> SeriesKey;
    fn observe(&self, key: &SeriesKey, seconds: f64, trace: Option<TraceRef>);
    /// The end of a request: its latency observed into the series of
    /// `duration` (when not recorded before), and off the in-flight gauge.
    fn end_warm(&self, in_flight: &SeriesKey, duration: Option<(SeriesKey, f64)>, trace: Option<TraceRef>);
    /// The error counter and body sizes of a finished request.
    fn end(&self, outcome: &Outcome<'_>);
}

pub(crate) struct Families<N: Scheme> {
    names: FamilyNames,
    duration: Histogram<RequestLabels<N>>,
    in_flight: Gauge<RouteLabels<N>>,
    errors: Counter<ErrorLabels<N>>,
    /// Request and response body sizes.
    sizes: Option<[Histogram<RouteLabels<N>>; 2]>,
}

impl<N: Scheme> Families<N> {
    fn register(
        telemetry: &Telemetry,
        names: FamilyNames,
        body_sizes: bool,
    ) -> Result<Self, RegisterError> {
        let duration = telemetry.histogram(names.duration, names::HELP_DURATION)?;
        telemetry.register_count_view(names.requests, names::HELP_REQUESTS, &duration)?;
        let in_flight = telemetry.gauge(names.in_flight, names::HELP_IN_FLIGHT)?;
        let errors = telemetry.counter(names.errors, names::HELP_ERRORS)?;
        let sizes = if body_sizes {
            let size = |name: &str, help: &str| {
                telemetry.histogram_with(
                    MetricOpts::new(name, help).with_buckets(names::SIZE_BUCKETS.to_vec()),
                )
            };
            Some([
                size(names.request_size, names::HELP_REQUEST_SIZE)?,
                size(names.response_size, names::HELP_RESPONSE_SIZE)?,
            ])
        } else {
            None
        };
        Ok(Self {
            names,
            duration,
            in_flight,
            errors,
            sizes,
        })
    }
}

fn route_key<'a>(method: &'static str, route: &'a str) -> RouteKey<'a> {
    RouteKey {
        method,
        route,
        _borrow: std::marker::PhantomData,
    }
}

impl<N: Scheme> Record for Families<N> {
    fn duration_name(&self) -> &'static str {
        self.names.duration
    }

    fn records_sizes(&self) -> bool {
        self.sizes.is_some()
    }

    fn in_flight_key(&self, tenant: &Tenant, method: &'static str, route: &str) -> SeriesKey {
        self.in_flight.key(tenant, &route_key(method, route))
    }

    #[inline]
    fn in_flight_add(&self, key: &SeriesKey, value: f64) {
        self.in_flight.add_at(key, value);
    }

    #[inline]
    fn in_flight_labels(&self, key: &SeriesKey) -> Option<(&'static str, &str)> {
        self.in_flight
            .labels_at(key)
            .map(|labels| (labels.method, &*labels.route))
    }

    fn in_flight_tenant(&self, key: &SeriesKey) -> Tenant {
        self.in_flight
            .tenant_at(key)
            .unwrap_or_else(Tenant::unknown)
    }

    fn duration_key(
        &self,
        tenant: &Tenant,
        method: &'static str,
        route: &str,
        status: u16,
    ) -> SeriesKey {
        let key = RequestKey {
            method,
            route,
            status_code: status,
            _borrow: std::marker::PhantomData,
        };
        self.duration.key(tenant, &key)
    }

    #[inline]
    fn observe(&self, key: &SeriesKey, seconds: f64, trace: Option<TraceRef>) {
        self.duration.observe_at(key, seconds, trace);
    }

    #[inline]
    fn end_warm(
        &self,
        in_flight: &SeriesKey,
        duration: Option<(SeriesKey, f64)>,
        trace: Option<TraceRef>,
    ) {
        if let Some((key, seconds)) = duration {
            self.duration.observe_at(&key, seconds, trace);
        }
        self.in_flight.add_at(in_flight, -1.0);
    }

    fn end(&self, o: &Outcome<'_>) {
        if o.error.is_none() && self.sizes.is_none() {
            return;
        }
        let tenant = self.in_flight_tenant(o.in_flight);
        let (method, route) = request_labels(self, o.in_flight, o.overflow);
        if let Some(error) = o.error {
            let key = ErrorKey {
                method,
                route,
                error_type: error.as_str(),
                _borrow: std::marker::PhantomData,
            };
            self.errors.inc(&tenant, &key);
        }
        if let Some([request, response]) = &self.sizes {
            let key = route_key(method, route);
            if let Some(size) = o.request_size {
                request.observe(&tenant, &key, size as f64);
            }
            response.observe(&tenant, &key, o.response_size as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let sampled = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(sampled),
            Some(TraceRef {
                trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
                span_id: 0x00f067aa0ba902b7
            })
        );
        assert_eq!(
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            None
        );
        assert_eq!(
            parse_traceparent(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(parse_traceparent(b"garbage"), None);
        assert_eq!(parse_traceparent(b"\xff\xfe"), None);
    }
}
