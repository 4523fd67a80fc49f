//! The gRPC metrics service: resolves the tenant, opens the call's scope and operation.

use super::*;

/// The service made by [`GrpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    pub(super) inner: S,
    pub(super) shared: Arc<GrpcShared>,
}

crate::inner_access!(GrpcMetrics);

impl<S, ReqB, ResB> Service<Request<ReqB>> for GrpcMetrics<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        let tenant = shared.tenants.resolve(req.headers(), req.extensions());
        let (span, open) = if shared.telemetry.opens_spans() {
            let headers = crate::tenant::HeaderCarrier(req.headers());
            let kind = plimsoll_core::trace::SpanKind::Server;
            let open = match shared.telemetry.sample_span(kind, Some(&headers)) {
                Ok(()) => server_span(&shared.telemetry, &req, &tenant),
                Err(open) => open,
            };
            (open.context(), open)
        } else {
            let span = crate::tenant::request_span(&shared.telemetry, req.headers(), true);
            (span, plimsoll_core::trace::OpenSpan::default())
        };
        let observed = shared.telemetry.observes_requests();
        let scope = if observed {
            Scope::counting(tenant.clone(), span)
        } else {
            Scope::with_span(tenant.clone(), span)
        };
        let trace = span.and_then(|s| s.exemplar());
        let call = Operation::start_for(
            tenant,
            trace,
            Calls(shared.clone()),
            Call {
                path: req.uri().path_and_query().cloned(),
                observed: (observed && scope.owns_count()).then(|| scope.clone()),
            },
        )
        .traced(&shared.telemetry, open);
        let mut scope = Some(scope);
        let service = &mut self.inner;
        let inner = call.in_span(|| scope::poll_in(&mut scope, || service.call(req)));
        ResponseFuture {
            inner,
            call: Some(call),
            scope,
        }
    }
}

/// The call's server span, named `package.Service/Method`, with the
/// `rpc.*` attributes.
#[inline(never)]
fn server_span<B>(
    telemetry: &plimsoll_core::Telemetry,
    req: &Request<B>,
    tenant: &plimsoll_core::Tenant,
) -> plimsoll_core::trace::OpenSpan {
    let path = req.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let attributes = [
        ("rpc.system", "grpc".into()),
        ("rpc.service", service.into()),
        ("rpc.method", method.into()),
        ("tenant.id", tenant.as_str().into()),
    ];
    crate::tenant::server_span(telemetry, Some(req.headers()), path, &attributes)
}
