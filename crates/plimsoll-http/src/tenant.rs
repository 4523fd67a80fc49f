//! Per-request tenant resolution.

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName};
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
        if let Some(tenant) = extensions.get::<Tenant>() {
            return tenant.clone();
        }
        if let Some(resolver) = &self.resolver
            && let Some(tenant) = resolver(headers, extensions)
        {
            return tenant;
        }
        if let Some(value) = self.header.as_ref().and_then(|h| headers.get(h)) {
            // Non-ASCII bytes fail `to_str` and validation alike: `__unknown__`.
            return match value.to_str() {
                Ok(raw) => self.telemetry.tenant(raw),
                Err(_) => Tenant::unknown(),
            };
        }
        Tenant::unknown()
    }
}
