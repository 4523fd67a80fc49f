//! The layer, its builder, and how a finished call is recorded.

use super::*;

/// `grpc-status` from headers or trailers.
pub(super) fn grpc_status(headers: &http::HeaderMap) -> Option<GrpcCode> {
    Some(GrpcCode::from_header(
        headers.get("grpc-status")?.as_bytes(),
    ))
}

pub(super) struct GrpcShared {
    handled: Counter<HandledLabels>,
    handling: Histogram<MethodLabels>,
    pub(super) tenants: TenantResolver,
    methods: LabelGuard,
    pub(super) telemetry: Telemetry,
}

impl fmt::Debug for GrpcShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcShared")
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// Records finished calls; the operation carries the call's path.
#[derive(Clone, Debug)]
pub(super) struct Calls(pub(super) Arc<GrpcShared>);

/// What a call carries to its end: its path, and its scope when the
/// telemetry's request observers are to see it end.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) path: Option<PathAndQuery>,
    pub(super) observed: Option<Scope>,
}

impl RecordOperation for Calls {
    type Labels = Call;

    fn record(&self, done: Completed<'_, Call>) {
        let code = match done.outcome {
            Outcome::Grpc(code) => code,
            Outcome::Cancelled => GrpcCode::Cancelled,
            Outcome::Timeout => GrpcCode::DeadlineExceeded,
            _ => GrpcCode::Unknown,
        };
        let shared = &self.0;
        let admitted;
        let (service, method) = if code == GrpcCode::Unimplemented {
            (UNMATCHED, UNMATCHED)
        } else {
            match done
                .labels
                .path
                .as_ref()
                .and_then(|p| p.path().strip_prefix('/'))
                .filter(|p| p.contains('/'))
            {
                None => (UNMATCHED, UNMATCHED),
                Some(full) => {
                    admitted = shared.methods.admit(full);
                    admitted.split_once('/').unwrap_or((OTHER, OTHER))
                }
            }
        };
        shared.handled.inc(
            done.tenant,
            &HandledKey {
                grpc_service: service,
                grpc_method: method,
                grpc_code: code,
            },
        );
        shared.handling.observe_with_exemplar(
            done.tenant,
            &MethodKey {
                grpc_service: service,
                grpc_method: method,
            },
            done.seconds,
            done.trace,
        );
        if let Some(scope) = &done.labels.observed {
            let route = format!("/{service}/{method}");
            shared.telemetry.request_ended(&route, scope);
        }
    }
}

/// Builds a [`GrpcMetricsLayer`].
pub struct GrpcMetricsBuilder {
    pub(super) telemetry: Telemetry,
    tenant_header: Option<String>,
    resolver: Option<Arc<crate::tenant::ResolveTenant>>,
    max_methods: Option<usize>,
    buckets: Option<Vec<f64>>,
}

impl fmt::Debug for GrpcMetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcMetricsBuilder")
            .field("tenant_header", &self.tenant_header)
            .field("resolver", &self.resolver.is_some())
            .field("max_methods", &self.max_methods)
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl GrpcMetricsBuilder {
    /// Also reads the tenant from this metadata key (validated and bounded).
    pub fn with_tenant_header(mut self, name: impl Into<String>) -> Self {
        self.tenant_header = Some(name.into());
        self
    }

    /// A custom tenant resolver (metadata, JWT claims), tried after the
    /// [`Tenant`](plimsoll_core::Tenant) extension and before the header.
    pub fn with_tenant_resolver<F>(mut self, resolver: F) -> Self
    where
        F: Fn(&http::HeaderMap, &http::Extensions) -> Option<plimsoll_core::Tenant>
            + Send
            + Sync
            + 'static,
    {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Bound on distinct `service/method` pairs (default
    /// [`DEFAULT_MAX_METHODS`], or the telemetry's `with_label_bound` for
    /// `grpc_method`).
    pub fn with_max_methods(mut self, max: usize) -> Self {
        self.max_methods = Some(max);
        self
    }

    /// Latency buckets (default: the telemetry's for `grpc_server_handling_seconds`).
    pub fn with_buckets(mut self, buckets: Vec<f64>) -> Self {
        self.buckets = Some(buckets);
        self
    }

    /// Registers the families and builds the layer.
    pub fn build(self) -> Result<GrpcMetricsLayer, HttpBuildError> {
        let telemetry = self.telemetry;
        let mut tenants = TenantResolver::new(&telemetry);
        if let Some(header) = &self.tenant_header {
            tenants = tenants.with_header(header)?;
        }
        if let Some(resolver) = self.resolver {
            tenants = tenants.with_resolver(resolver);
        }
        if self.max_methods == Some(0) {
            return Err(HttpBuildError::ZeroLimit {
                field: "max_methods",
            });
        }
        crate::red::check_buckets("buckets", &self.buckets)?;
        let methods = match self.max_methods {
            Some(max) => {
                let decl = &families::GRPC_SERVER_HANDLED;
                let label = decl
                    .label("grpc_method")
                    .map_or("grpc_method", |l| l.name_for(telemetry.naming()));
                telemetry.bounded_label(decl.name_for(telemetry.naming()), label, max)?
            }
            None => telemetry.label_guard(&families::GRPC_SERVER_HANDLED, "grpc_method")?,
        };
        let handling = match self.buckets {
            None => telemetry.declare(&families::GRPC_SERVER_HANDLING)?,
            Some(b) => telemetry.declare_with_buckets(&families::GRPC_SERVER_HANDLING, b)?,
        };
        Ok(GrpcMetricsLayer {
            shared: Arc::new(GrpcShared {
                handled: telemetry.declare(&families::GRPC_SERVER_HANDLED)?,
                handling,
                tenants,
                methods,
                telemetry,
            }),
        })
    }
}

/// Tower layer recording gRPC server metrics; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    shared: Arc<GrpcShared>,
}

impl GrpcMetricsLayer {
    /// A builder for a layer recording into `telemetry`.
    pub fn builder(telemetry: &Telemetry) -> GrpcMetricsBuilder {
        GrpcMetricsBuilder {
            telemetry: telemetry.clone(),
            tenant_header: None,
            resolver: None,
            max_methods: None,
            buckets: None,
        }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics {
            inner,
            shared: self.shared.clone(),
        }
    }
}
