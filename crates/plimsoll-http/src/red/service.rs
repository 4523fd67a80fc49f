//! The RED metrics service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::layer::Shared;

/// Records RED metrics for the requests `S` serves; made by
/// [`RedMetricsLayer`](super::RedMetricsLayer). Adds no errors of its own.
#[derive(Clone, Debug)]
pub struct RedMetrics<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RedMetrics<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

crate::inner_access!(RedMetrics);

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RedMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut guard = self.shared.start(&req);
        // Layers inside this one may do work in `call`: in the request's scope too.
        let inner = &mut self.inner;
        let inner = match guard.as_mut() {
            Some(guard) => guard.in_scope(|| inner.call(req)),
            None => inner.call(req),
        };
        ResponseFuture { inner, guard }
    }
}
