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
        let span = crate::tenant::request_span(&shared.telemetry, req.headers(), true);
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
        );
        let mut scope = Some(scope);
        let inner = scope::poll_in(&mut scope, || self.inner.call(req));
        ResponseFuture {
            inner,
            call: Some(call),
            scope,
        }
    }
}
