//! The response future: reads the code from the response headers.

use super::*;

pin_project! {
    /// Response future of [`GrpcMetrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        pub(super) inner: F,
        pub(super) call: Option<Operation<Calls>>,
        pub(super) scope: Option<Scope>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let scope = &mut *this.scope;
        let poll = || scope::poll_in(scope, || inner.poll(cx));
        let polled = match this.call.as_ref() {
            Some(call) => call.in_span(poll),
            None => poll(),
        };
        match std::task::ready!(polled) {
            Ok(response) => {
                // Not a gRPC answer: classified by its HTTP status.
                let code = grpc_status(response.headers()).or_else(|| {
                    (!response.status().is_success())
                        .then(|| GrpcCode::from_http_status(response.status().as_u16()))
                });
                let (parts, body) = response.into_parts();
                let body = ResponseBody::new(body, this.call.take(), code, this.scope.take());
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(error) => {
                if let Some(call) = this.call.take() {
                    call.finish(Outcome::Grpc(GrpcCode::Unknown));
                }
                Poll::Ready(Err(error))
            }
        }
    }
}
