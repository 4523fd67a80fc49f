//! Long-lived connections (WebSocket, SSE): an exact gauge of open ones.
//!
//! An upgraded connection outlives its request, so request latency says
//! nothing useful about it. Open a [`ConnectionGuard`] in the handler that
//! owns the connection; the gauge goes down when the guard is dropped, on
//! every exit path.
//!
//! ```
//! use plimsoll_core::Telemetry;
//! use plimsoll_http::ConnectionGauge;
//!
//! let telemetry = Telemetry::builder().build().unwrap();
//! let sockets = ConnectionGauge::new(&telemetry).unwrap();
//! let tenant = telemetry.tenant("acme");
//! {
//!     let _open = sockets.open(&tenant, "chat");
//!     assert_eq!(sockets.active(&tenant, "chat"), 1.0);
//! }
//! assert_eq!(sockets.active(&tenant, "chat"), 0.0);
//! ```

use std::sync::Arc;

use plimsoll_core::{
    Gauge, GaugeSeries, LabelGuard, RegisterError, Telemetry, Tenant, impl_label_set,
};

use crate::families;

pub use crate::families::DEFAULT_MAX_NAMESPACES;

/// Labels of `websocket_connections_active`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct NamespaceLabels {
    /// The namespace (channel, endpoint) of the connection.
    pub namespace: Arc<str>,
}
impl_label_set!(NamespaceLabels { namespace });

/// The `websocket_connections_active{namespace}` gauge.
#[derive(Clone, Debug)]
pub struct ConnectionGauge {
    gauge: Gauge<NamespaceLabels>,
    namespaces: LabelGuard,
}

impl ConnectionGauge {
    /// Registers the gauge on `telemetry` (namespaces bounded by the
    /// telemetry's `with_label_bound`, default [`DEFAULT_MAX_NAMESPACES`]).
    pub fn new(telemetry: &Telemetry) -> Result<Self, RegisterError> {
        let decl = &families::WEBSOCKET_CONNECTIONS_ACTIVE;
        Ok(Self {
            gauge: telemetry.declare(decl)?,
            namespaces: telemetry.label_guard(decl, "namespace")?,
        })
    }

    /// Counts one open connection until the returned guard is dropped.
    pub fn open(&self, tenant: &Tenant, namespace: &str) -> ConnectionGuard {
        let labels = NamespaceLabels {
            namespace: self.namespaces.admit(namespace),
        };
        let series = self.gauge.series(tenant, &labels);
        series.inc();
        ConnectionGuard { series }
    }

    /// The open connections of a tenant in a namespace.
    pub fn active(&self, tenant: &Tenant, namespace: &str) -> f64 {
        self.gauge.get(
            tenant,
            &NamespaceLabels {
                namespace: Arc::from(namespace),
            },
        )
    }
}

/// One open connection; dropping it closes it in the gauge.
#[derive(Debug)]
#[must_use = "the connection counts as closed when the guard is dropped"]
pub struct ConnectionGuard {
    series: GaugeSeries<NamespaceLabels>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.series.dec();
    }
}
