//! The response body: the call ends with its trailers.

use super::*;

pin_project! {
    /// Response body of [`GrpcMetrics`]: the call ends with its trailers
    /// (or with the headers of a trailers-only response).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        call: Option<Operation<Calls>>,
        // From the response headers, for trailers-only responses.
        code: Option<GrpcCode>,
        scope: Option<Scope>,
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("call", &self.call)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl<B: Body> ResponseBody<B> {
    pub(super) fn new(
        inner: B,
        mut call: Option<Operation<Calls>>,
        code: Option<GrpcCode>,
        scope: Option<Scope>,
    ) -> Self {
        if inner.is_end_stream()
            && let Some(call) = call.take()
        {
            call.finish(Outcome::Grpc(code.unwrap_or(GrpcCode::Unknown)));
        }
        Self {
            inner,
            call,
            code,
            scope,
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let inner = this.inner.as_mut();
        let scope = &mut *this.scope;
        let poll = || scope::poll_in(scope, || inner.poll_frame(cx));
        let frame = match this.call.as_ref() {
            Some(call) => call.in_span(poll),
            None => poll(),
        };
        let frame = std::task::ready!(frame);
        let end = |call: &mut Option<Operation<Calls>>, code: GrpcCode| {
            if let Some(call) = call.take() {
                call.finish(Outcome::Grpc(code));
            }
        };
        let headers_code = this.code.unwrap_or(GrpcCode::Unknown);
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    end(this.call, code);
                } else if this.inner.is_end_stream() {
                    end(this.call, headers_code);
                }
            }
            Some(Err(_)) => end(this.call, GrpcCode::Unknown),
            None => end(this.call, headers_code),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
