//! The response body that ends the request's timing at end of stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::Guard;

pin_project! {
    /// Response body of [`RedMetrics`](super::RedMetrics): records the
    /// request when the stream ends, or as cut short when dropped before
    /// (the guard's own drop). Streaming bodies are polled in the
    /// request's scope.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<Guard>,
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("guard", &self.guard)
            .finish()
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(inner: B, guard: Option<Guard>) -> Self {
        let mut body = Self { inner, guard };
        if body.inner.is_end_stream()
            && let Some(guard) = body.guard.take()
        {
            guard.finish();
        }
        body
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
        let frame = match this.guard.as_mut() {
            Some(guard) => guard.in_scope(|| inner.poll_frame(cx)),
            None => inner.poll_frame(cx),
        };
        let frame = std::task::ready!(frame);
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(guard)) = (frame.data_ref(), this.guard.as_mut()) {
                    guard.response_size += data.remaining() as u64;
                }
                // Servers stop polling once the body says it has ended.
                if this.inner.is_end_stream()
                    && let Some(guard) = this.guard.take()
                {
                    guard.finish();
                }
            }
            Some(Err(_)) => {
                if let Some(guard) = this.guard.take() {
                    guard.fail();
                }
            }
            None => {
                if let Some(guard) = this.guard.take() {
                    guard.finish();
                }
            }
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
