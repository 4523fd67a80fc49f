//! Per-request tenant resolution.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use plimsoll_core::{Telemetry, Tenant};

/// A custom tenant resolver (JWT claims, API keys…): returns `None` when it
/// cannot tell, and resolution goes on to the configured header.
pub type ResolveTenant = dyn Fn(&HeaderMap, &Extensions) -> Option<Tenant> + Send + Sync;

/// Where a request's tenant comes from, in order: a [`Tenant`] request
/// extension (set by the service's own auth: the trusted way), the custom
/// resolver, the configured header (validated and bounded), else `__unknown__`.
#[derive(Clone)]
pub(crate) struct TenantSource {
    pub(crate) telemetry: Telemetry,
    pub(crate) header: Option<HeaderName>,
    pub(crate) resolver: Option<Arc<ResolveTenant>>,
}

impl fmt::Debug for TenantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSource")
            .field("header", &self.header)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

impl TenantSource {
    pub(crate) fn new(telemetry: &Telemetry) -> Self {
        Self {
            telemetry: telemetry.clone(),
            header: None,
            resolver: None,
        }
    }

    #[inline]
    pub(crate) fn resolve(&self, headers: &HeaderMap, extensions: &Extensions) -> Tenant {
        self.tenant(&self.find(headers, extensions)).into_owned()
    }

    /// Where the tenant is, without resolving a header value yet: callers
    /// that remember header values skip resolving the ones seen before.
    #[inline]
    pub(crate) fn find<'a>(&self, headers: &'a HeaderMap, extensions: &'a Extensions) -> Found<'a> {
        if let Some(tenant) = extensions.get::<Tenant>() {
            return Found::Tenant(tenant);
        }
        if let Some(resolver) = &self.resolver
            && let Some(tenant) = resolver(headers, extensions)
        {
            return Found::Resolved(tenant);
        }
        match self.header.as_ref().and_then(|h| header(headers, h)) {
            Some(value) => Found::Header(value.as_bytes()),
            None => Found::Tenant(&UNKNOWN),
        }
    }

    /// The tenant that `find` found; a header value is resolved now:
    /// validated, then bounded by the telemetry's tenant policy (non-ASCII
    /// bytes fail validation: `__unknown__`).
    pub(crate) fn tenant<'a>(&self, found: &'a Found<'_>) -> Cow<'a, Tenant> {
        match found {
            Found::Tenant(tenant) => Cow::Borrowed(*tenant),
            Found::Resolved(tenant) => Cow::Borrowed(tenant),
            Found::Header(raw) => Cow::Owned(match std::str::from_utf8(raw) {
                Ok(raw) => self.telemetry.tenant(raw),
                Err(_) => Tenant::unknown(),
            }),
        }
    }
}

static UNKNOWN: Tenant = Tenant::unknown();

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

/// A request's tenant as found by [`TenantSource::find`].
pub(crate) enum Found<'a> {
    /// The trusted extension, or `__unknown__` when there was nothing.
    Tenant(&'a Tenant),
    /// From the custom resolver.
    Resolved(Tenant),
    /// The raw value of the tenant header.
    Header(&'a [u8]),
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
}
