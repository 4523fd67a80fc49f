//! The layer, its builder, and what its services share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use plimsoll_core::classify::{ErrorType, StatusClassifier};
use plimsoll_core::scope::Scope;
use plimsoll_core::trace::{Attribute, OpenSpan, SpanKind};
use plimsoll_core::{
    Counter, Gauge, Histogram, LabelGuard, RegisterError, SeriesKey, Telemetry, Tenant,
};
use tower_layer::Layer;

use super::future::Guard;
use super::service::RedMetrics;
use crate::families;
use crate::labels::{ErrorKey, RequestKey, RequestLabels, RouteKey, RouteLabels};
use crate::tenant::{ResolveTenant, TenantResolver};

/// Extracts a route template from a request, for stacks without axum.
pub type ExtractRoute = dyn Fn(&http::Uri, &http::Extensions) -> Option<String> + Send + Sync;

/// An invalid setting of a layer builder; the message names the field.
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
    /// Histogram buckets are empty, not finite or not strictly increasing.
    #[error("{field}: buckets must be non-empty, finite and strictly increasing, got {buckets:?}")]
    InvalidBuckets {
        /// The setting.
        field: &'static str,
        /// The bounds given.
        buckets: Vec<f64>,
    },
    /// A family could not be registered (e.g. its name is taken by another type).
    #[error(transparent)]
    Register(#[from] RegisterError),
}

impl From<crate::tenant::InvalidHeaderName> for HttpBuildError {
    fn from(e: crate::tenant::InvalidHeaderName) -> Self {
        HttpBuildError::InvalidHeader {
            field: "tenant_header",
            value: e.0,
        }
    }
}

/// Checks histogram buckets given to a layer builder.
pub(crate) fn check_buckets(
    field: &'static str,
    buckets: &Option<Vec<f64>>,
) -> Result<(), HttpBuildError> {
    match buckets {
        Some(b) if !plimsoll_core::family::valid_buckets(b) => {
            Err(HttpBuildError::InvalidBuckets {
                field,
                buckets: b.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Builds a [`RedMetricsLayer`]; see the [module docs](super).
pub struct RedMetricsBuilder {
    telemetry: Telemetry,
    tenant_header: Option<String>,
    resolver: Option<Arc<ResolveTenant>>,
    route: Option<Arc<ExtractRoute>>,
    max_routes: Option<usize>,
    buckets: Option<Vec<f64>>,
    ignored: Vec<String>,
    header_timing: Vec<String>,
    slow: Option<Duration>,
    classify: StatusClassifier,
    body_sizes: bool,
    traceparent: bool,
    memo: bool,
}

impl fmt::Debug for RedMetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedMetricsBuilder")
            .field("tenant_header", &self.tenant_header)
            .field("max_routes", &self.max_routes)
            .field("buckets", &self.buckets)
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
    /// [`with_max_routes`](Self::with_max_routes) (past it: `__other__`);
    /// `None` means `__unmatched__`.
    pub fn with_route_extractor<F>(mut self, extract: F) -> Self
    where
        F: Fn(&http::Uri, &http::Extensions) -> Option<String> + Send + Sync + 'static,
    {
        self.route = Some(Arc::new(extract));
        self
    }

    /// Bound on distinct routes from the route extractor (default
    /// [`DEFAULT_MAX_ROUTES`](crate::families::DEFAULT_MAX_ROUTES), or the
    /// telemetry's `with_label_bound` for the `route` label).
    pub fn with_max_routes(mut self, max: usize) -> Self {
        self.max_routes = Some(max);
        self
    }

    /// Latency buckets (default: the telemetry's for
    /// `http_request_duration_seconds`).
    pub fn with_buckets(mut self, buckets: Vec<f64>) -> Self {
        self.buckets = Some(buckets);
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

    /// Replaces the failure classifier (default
    /// [`classify_status`](plimsoll_core::classify::classify_status): 5xx
    /// `server_error`, 4xx `client_error`).
    pub fn with_classifier<F>(mut self, classify: F) -> Self
    where
        F: Fn(u16) -> Option<ErrorType> + Send + Sync + 'static,
    {
        self.classify = StatusClassifier::new(classify);
        self
    }

    /// Also records request (from `Content-Length`) and response body sizes.
    pub fn with_body_sizes(mut self, enabled: bool) -> Self {
        self.body_sizes = enabled;
        self
    }

    /// Reads the incoming W3C `traceparent` into the request scope, where
    /// the default trace-context hook finds it for exemplars (default: on).
    pub fn with_traceparent(mut self, enabled: bool) -> Self {
        self.traceparent = enabled;
        self
    }

    /// Whether warm requests find their series through a per-thread memo
    /// (default: on). Off, each request looks its two series up in their
    /// families: the plain path, kept for measuring the memo against.
    pub fn with_series_memo(mut self, enabled: bool) -> Self {
        self.memo = enabled;
        self
    }

    /// Registers the families and builds the layer.
    pub fn build(self) -> Result<RedMetricsLayer, HttpBuildError> {
        let mut tenants = TenantResolver::new(&self.telemetry);
        if let Some(header) = &self.tenant_header {
            tenants = tenants.with_header(header)?;
        }
        if let Some(resolver) = self.resolver {
            tenants = tenants.with_resolver(resolver);
        }
        if self.max_routes == Some(0) {
            return Err(HttpBuildError::ZeroLimit {
                field: "max_routes",
            });
        }
        check_buckets("buckets", &self.buckets)?;
        let families = Families::register(&self.telemetry, self.buckets, self.body_sizes)?;
        let route = match self.route {
            None => RouteSource::Default,
            Some(extract) => {
                let guard = match self.max_routes {
                    Some(max) => {
                        let decl = &families::HTTP_REQUEST_DURATION;
                        let naming = self.telemetry.naming();
                        let label = decl.label("route").map_or("route", |l| l.name_for(naming));
                        self.telemetry
                            .bounded_label(decl.name_for(naming), label, max)?
                    }
                    None => self
                        .telemetry
                        .label_guard(&families::HTTP_REQUEST_DURATION, "route")?,
                };
                RouteSource::Custom(extract, guard)
            }
        };
        Ok(RedMetricsLayer {
            shared: Arc::new(Shared {
                id: NEXT_LAYER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                memo: self.memo,
                families,
                tenants,
                route,
                ignored: self.ignored.into(),
                header_timing: self.header_timing.into(),
                slow: self.slow,
                classify: self.classify,
                traceparent: self.traceparent,
                telemetry: self.telemetry,
            }),
        })
    }
}

/// Tower layer recording RED metrics; see the [module docs](super).
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
            max_routes: None,
            buckets: None,
            ignored: Vec::new(),
            header_timing: Vec::new(),
            slow: None,
            classify: StatusClassifier::default(),
            body_sizes: false,
            traceparent: true,
            memo: true,
        }
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

enum RouteSource {
    Default,
    Custom(Arc<ExtractRoute>, LabelGuard),
}

impl RouteSource {
    #[inline]
    fn route(&self, uri: &http::Uri, extensions: &http::Extensions) -> Route {
        match self {
            RouteSource::Custom(extract, guard) => match extract(uri, extensions) {
                Some(route) => Route::Shared(guard.admit(&route)),
                None => Route::Unmatched,
            },
            RouteSource::Default => {
                #[cfg(feature = "axum")]
                if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
                    return Route::Matched(path.clone());
                }
                let _ = (uri, extensions);
                Route::Unmatched
            }
        }
    }
}

/// The families of the layer, under the telemetry's naming scheme.
pub(crate) struct Families {
    duration: Histogram<RequestLabels>,
    in_flight: Gauge<RouteLabels>,
    errors: Counter<crate::labels::ErrorLabels>,
    /// Request and response body sizes.
    sizes: Option<[Histogram<RouteLabels>; 2]>,
}

impl Families {
    fn register(
        telemetry: &Telemetry,
        buckets: Option<Vec<f64>>,
        body_sizes: bool,
    ) -> Result<Self, RegisterError> {
        let duration = match buckets {
            None => telemetry.declare(&families::HTTP_REQUEST_DURATION)?,
            Some(buckets) => {
                telemetry.declare_with_buckets(&families::HTTP_REQUEST_DURATION, buckets)?
            }
        };
        telemetry.declare_count_view(&families::HTTP_REQUESTS, &duration)?;
        let sizes = if body_sizes {
            Some([
                telemetry.declare(&families::HTTP_REQUEST_SIZE)?,
                telemetry.declare(&families::HTTP_RESPONSE_SIZE)?,
            ])
        } else {
            None
        };
        Ok(Self {
            duration,
            in_flight: telemetry.declare(&families::HTTP_REQUESTS_IN_FLIGHT)?,
            errors: telemetry.declare(&families::HTTP_REQUEST_ERRORS)?,
            sizes,
        })
    }
}

/// Ids of layers, for the per-thread memo: never reused, never 0.
static NEXT_LAYER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What the service and its guards share.
pub(crate) struct Shared {
    /// This layer's id in the per-thread memo of series keys.
    id: u64,
    memo: bool,
    families: Families,
    tenants: TenantResolver,
    route: RouteSource,
    ignored: Box<[String]>,
    header_timing: Box<[String]>,
    pub(crate) slow: Option<Duration>,
    classify: StatusClassifier,
    traceparent: bool,
    pub(super) telemetry: Telemetry,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("tenants", &self.tenants)
            .field("ignored", &self.ignored)
            .field("header_timing", &self.header_timing)
            .field("slow", &self.slow)
            .field("classify", &self.classify)
            .finish_non_exhaustive()
    }
}

/// A finished request, as [`Shared::end`] records it.
pub(crate) struct Finished<'a> {
    pub(crate) tenant: &'a Tenant,
    pub(crate) method: crate::labels::Method,
    pub(crate) route: &'a str,
    pub(crate) in_flight: SeriesKey,
    /// The latency, unless recorded at the response headers.
    pub(crate) seconds: Option<f64>,
    pub(crate) status: u16,
    pub(crate) error: Option<ErrorType>,
    pub(crate) trace: Option<plimsoll_core::TraceRef>,
    pub(crate) request_size: Option<u64>,
    pub(crate) response_size: u64,
}

impl Shared {
    /// Whether a status is a failure, and of which type.
    #[inline]
    pub(crate) fn classify(&self, status: u16) -> Option<ErrorType> {
        self.classify.classify(status)
    }

    /// Starts recording a request: resolves its tenant once, opens its
    /// scope, counts it in flight. `None` for ignored paths.
    #[inline]
    pub(crate) fn start<B>(self: &Arc<Self>, req: &http::Request<B>) -> Option<Guard> {
        let start = plimsoll_core::clock::Stamp::now();
        let route = self.route.route(req.uri(), req.extensions());
        if !self.ignored.is_empty() && self.is_ignored(&route, req.uri()) {
            return None;
        }
        let method = crate::labels::Method::of(req.method());
        let tenant = self.tenants.resolve(req.headers(), req.extensions());
        let (span, trace) = if self.telemetry.opens_spans() {
            let headers = crate::tenant::HeaderCarrier(req.headers());
            // Without `traceparent` reading, a request starts a new trace.
            let incoming = self
                .traceparent
                .then_some(&headers as &dyn plimsoll_core::trace::Headers);
            let open = match self.telemetry.sample_span(SpanKind::Server, incoming) {
                Ok(()) => self.server_span(req, method, &route, &tenant),
                // Not traced: no span, the context still travels on.
                Err(open) => open,
            };
            (open.context(), open)
        } else {
            let span =
                crate::tenant::request_span(&self.telemetry, req.headers(), self.traceparent);
            (span, OpenSpan::default())
        };
        let lookup = || {
            let key = RouteKey {
                method,
                route: route.as_str(),
            };
            self.families.in_flight.key(&tenant, &key)
        };
        let (in_flight, cached) = if self.memo {
            super::memo::in_flight(self.id, &tenant, method, &route, lookup)
        } else {
            (lookup(), None)
        };
        self.families.in_flight.add_at(&in_flight, 1.0);
        let scope = match (span, cached) {
            // A request observer needs the request's own query count.
            _ if self.telemetry.observes_requests() => Scope::counting(tenant, span),
            (None, Some(scope)) => scope,
            _ => Scope::with_span(tenant, span),
        };
        let header_timing = !self.header_timing.is_empty()
            && self.header_timing.iter().any(|r| r == route.as_str());
        let request_size = if self.families.sizes.is_some() {
            req.headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
        } else {
            None
        };
        Some(Guard::new(
            self.clone(),
            super::future::Request {
                scope: Some(scope),
                method,
                route,
                in_flight,
                start,
                request_size,
                header_timing,
                trace,
            },
        ))
    }

    /// The request's server span, named `METHOD route` (or `METHOD` when
    /// no route matched), with the semantic-convention attributes.
    #[inline(never)]
    fn server_span<B>(
        &self,
        req: &http::Request<B>,
        method: crate::labels::Method,
        route: &Route,
        tenant: &Tenant,
    ) -> OpenSpan {
        use plimsoll_core::labels::ClosedLabel;
        let method = method.as_str();
        let matched = !matches!(route, Route::Unmatched);
        let name = if matched {
            format!("{method} {}", route.as_str())
        } else {
            method.to_owned()
        };
        let mut attributes: Vec<Attribute<'_>> = vec![
            ("http.request.method", method.into()),
            ("url.path", req.uri().path().into()),
            ("tenant.id", tenant.as_str().into()),
        ];
        if matched {
            attributes.push(("http.route", route.as_str().into()));
        }
        if let Some(scheme) = req.uri().scheme_str() {
            attributes.push(("url.scheme", scheme.into()));
        }
        if let Some(agent) = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(("user_agent.original", agent.into()));
        }
        let headers = self.traceparent.then(|| req.headers());
        crate::tenant::server_span(&self.telemetry, headers, &name, &attributes)
    }

    /// Whether the request's route template or path is in the ignore list.
    #[inline(never)]
    fn is_ignored(&self, route: &Route, uri: &http::Uri) -> bool {
        self.ignored
            .iter()
            .any(|p| p == route.as_str() || p == uri.path())
    }

    /// Records a request's latency (at the end, or at the response headers).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn observe(
        &self,
        tenant: &Tenant,
        method: crate::labels::Method,
        route: &str,
        in_flight: &SeriesKey,
        status: u16,
        seconds: f64,
        trace: Option<plimsoll_core::TraceRef>,
    ) {
        let lookup = || {
            let key = RequestKey {
                method,
                route,
                status_code: status,
            };
            self.families.duration.key(tenant, &key)
        };
        let key = if self.memo {
            super::memo::duration(self.id, in_flight, status, lookup)
        } else {
            lookup()
        };
        self.families.duration.observe_at(&key, seconds, trace);
    }

    /// Records the end of a request.
    pub(crate) fn end(&self, f: Finished<'_>) {
        if let Some(seconds) = f.seconds {
            self.observe(
                f.tenant,
                f.method,
                f.route,
                &f.in_flight,
                f.status,
                seconds,
                f.trace,
            );
        }
        self.families.in_flight.add_at(&f.in_flight, -1.0);
        if let Some(error) = f.error {
            let key = ErrorKey {
                method: f.method,
                route: f.route,
                error_type: error,
            };
            self.families.errors.inc(f.tenant, &key);
        }
        if let Some([request, response]) = &self.families.sizes {
            let key = RouteKey {
                method: f.method,
                route: f.route,
            };
            if let Some(size) = f.request_size {
                request.observe(f.tenant, &key, size as f64);
            }
            response.observe(f.tenant, &key, f.response_size as f64);
        }
    }
}
