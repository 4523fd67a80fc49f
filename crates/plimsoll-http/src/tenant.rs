//! Per-request tenant resolution, shared by every server layer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use plimsoll_core::{Telemetry, Tenant};

/// A custom tenant resolver (JWT claims, API keys…): returns `None` when it
/// cannot tell, and resolution goes on to the configured header.
pub type ResolveTenant = dyn Fn(&HeaderMap, &Extensions) -> Option<Tenant> + Send + Sync;

/// Finds a request's tenant, in order: a [`Tenant`] request extension (set
/// by the service's own auth, added as an outer layer: the trusted way),
/// the custom resolver, the configured header (validated and bounded by
/// the telemetry's tenant policy), else `__unknown__`.
///
/// The server layers build one from their builder's tenant options; a
/// layer of your own can use one directly.
///
/// ```
/// use plimsoll_core::Telemetry;
/// use plimsoll_http::TenantResolver;
///
/// let telemetry = Telemetry::builder().build().unwrap();
/// let resolver = TenantResolver::new(&telemetry).with_header("x-tenant-id").unwrap();
/// let request = http::Request::get("/").header("x-tenant-id", "acme").body(()).unwrap();
/// assert_eq!(resolver.resolve(request.headers(), request.extensions()).as_str(), "acme");
/// ```
#[derive(Clone)]
pub struct TenantResolver {
    telemetry: Telemetry,
    header: Option<HeaderName>,
    resolver: Option<Arc<ResolveTenant>>,
    /// Whether a request without any tenant was reported.
    warned: Arc<AtomicBool>,
}

impl fmt::Debug for TenantResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantResolver")
            .field("header", &self.header)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

/// A tenant header name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant_header: {0:?} is not a valid header name")]
pub struct InvalidHeaderName(pub String);

impl TenantResolver {
    /// Reads the [`Tenant`] request extension only.
    pub fn new(telemetry: &Telemetry) -> Self {
        Self {
            telemetry: telemetry.clone(),
            header: None,
            resolver: None,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Also reads this header (validated and bounded).
    pub fn with_header(mut self, name: &str) -> Result<Self, InvalidHeaderName> {
        self.header =
            Some(HeaderName::try_from(name).map_err(|_| InvalidHeaderName(name.to_string()))?);
        Ok(self)
    }

    /// Also asks `resolver`, after the extension and before the header.
    pub fn with_resolver(mut self, resolver: Arc<ResolveTenant>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The tenant of a request: resolved once, then held by the layer.
    #[inline]
    pub fn resolve(&self, headers: &HeaderMap, extensions: &Extensions) -> Tenant {
        if let Some(tenant) = extensions.get::<Tenant>() {
            return tenant.clone();
        }
        if let Some(resolver) = &self.resolver
            && let Some(tenant) = resolver(headers, extensions)
        {
            return tenant;
        }
        match self.header.as_ref().and_then(|h| header(headers, h)) {
            // Non-ASCII bytes fail validation: `__unknown__`.
            Some(value) => self.telemetry.tenant_from_bytes(value.as_bytes()),
            None => self.nothing_found(),
        }
    }

    /// No source had a tenant: `__unknown__`, and one warning per resolver
    /// when it has no source but the extension (the auth layer is missing
    /// or inside the metrics layer).
    #[cold]
    fn nothing_found(&self) -> Tenant {
        if self.header.is_none()
            && self.resolver.is_none()
            && !self.warned.load(Ordering::Relaxed)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                target: "plimsoll::http",
                "a request carried no Tenant extension and no other tenant source is configured: \
                 it is recorded as __unknown__ (add the layer that inserts the Tenant outside the \
                 metrics layer, or configure a tenant header or resolver)"
            );
        }
        Tenant::unknown()
    }
}

/// The W3C trace context header.
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The span of a request, for its scope and exemplars: the trace-context
/// hook's when the telemetry has one, else the incoming `traceparent` (when
/// `traceparent` is on), which the default hook then reads from the scope.
#[inline]
pub(crate) fn request_span(
    telemetry: &Telemetry,
    headers: &HeaderMap,
    traceparent: bool,
) -> Option<plimsoll_core::trace::SpanContext> {
    if telemetry.has_trace_context_hook() {
        telemetry.current_span()
    } else if traceparent {
        header(headers, &TRACEPARENT)
            .and_then(|v| plimsoll_core::trace::SpanContext::from_traceparent(v.as_bytes()))
    } else {
        None
    }
}

/// A request's headers, as the trace-context hook reads them.
pub(crate) struct HeaderCarrier<'a>(pub(crate) &'a HeaderMap);

impl plimsoll_core::trace::Headers for HeaderCarrier<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        // As `header`: a few headers are compared faster than a name is
        // parsed and hashed for the map's lookup.
        let value = if self.0.len() <= 8 {
            self.0
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .map(|(_, v)| v)
        } else {
            self.0.get(name)
        };
        value?.to_str().ok()
    }
}

/// An outgoing request's headers, as the trace-context hook writes them.
pub(crate) struct HeaderWriter<'a>(pub(crate) &'a mut HeaderMap);

impl plimsoll_core::trace::HeadersMut for HeaderWriter<'_> {
    fn set(&mut self, name: &str, value: &str) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Opens the server span of a request through the trace-context hook
/// (call only when the telemetry opens spans).
pub(crate) fn server_span(
    telemetry: &Telemetry,
    headers: Option<&HeaderMap>,
    name: &str,
    attributes: &[plimsoll_core::trace::Attribute<'_>],
) -> plimsoll_core::trace::OpenSpan {
    let kind = plimsoll_core::trace::SpanKind::Server;
    match headers.map(HeaderCarrier) {
        Some(carrier) => {
            let start =
                plimsoll_core::trace::SpanStart::new(name, kind, attributes).with_headers(&carrier);
            telemetry.start_span(&start)
        }
        None => telemetry.start_span(&plimsoll_core::trace::SpanStart::new(
            name, kind, attributes,
        )),
    }
}

/// The first value of header `name`. A request usually carries a handful of
/// headers, and comparing names one by one is cheaper than hashing a
/// custom name for the map's lookup; larger maps use the lookup.
#[inline]
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    if headers.len() <= 8 {
        headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    } else {
        headers.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_finds_the_first_value_in_small_and_large_maps() {
        let name = HeaderName::from_static("x-tenant-id");
        for others in [0, 3, 20] {
            let mut headers = HeaderMap::new();
            for i in 0..others {
                headers.insert(
                    HeaderName::try_from(format!("x-other-{i}")).unwrap(),
                    HeaderValue::from_static("v"),
                );
            }
            assert_eq!(header(&headers, &name), None);
            headers.append(&name, HeaderValue::from_static("acme"));
            headers.append(&name, HeaderValue::from_static("globex"));
            headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
            assert_eq!(header(&headers, &name), headers.get(&name), "{others}");
            assert_eq!(header(&headers, &name).unwrap(), "acme");
        }
    }

    #[test]
    fn order_of_sources() {
        let telemetry = Telemetry::builder().build().unwrap();
        let resolver = TenantResolver::new(&telemetry)
            .with_header("x-tenant-id")
            .unwrap()
            .with_resolver(Arc::new(|h: &HeaderMap, _: &Extensions| {
                h.contains_key("x-key").then(Tenant::system)
            }));
        let mut request = http::Request::get("/")
            .header("x-tenant-id", "acme")
            .header("x-key", "1")
            .body(())
            .unwrap();
        let resolve = |r: &http::Request<()>| resolver.resolve(r.headers(), r.extensions());
        assert_eq!(resolve(&request).as_str(), "__system__");
        request.extensions_mut().insert(telemetry.tenant("ext"));
        assert_eq!(resolve(&request).as_str(), "ext");
        let plain = http::Request::get("/")
            .header("x-tenant-id", "acme")
            .body(())
            .unwrap();
        assert_eq!(resolve(&plain).as_str(), "acme");
        let bad = http::Request::get("/")
            .header("x-tenant-id", "a b")
            .body(())
            .unwrap();
        assert_eq!(resolve(&bad).as_str(), "__unknown__");
        assert!(
            TenantResolver::new(&telemetry)
                .with_header("bad header")
                .is_err()
        );
    }
}
