//! The breaker as a tower layer: which results are failures, the typed
//! error of a shed call, and the optional 503 answer for HTTP servers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use plimsoll_core::classify::{ErrorType, GrpcCode, GrpcFailures, Outcome, StatusClassifier};
use tower_layer::Layer;
use tower_service::Service;

use super::{BreakerOpen, BreakerState, CircuitBreaker, Core, Permit};

/// Decides which results of the inner service are failures.
pub trait ClassifyFailure<Res, E>: Clone + Send + Sync + 'static {
    /// Whether `result` is a failure of the dependency.
    fn is_failure(&self, result: &Result<Res, E>) -> bool;
}

/// Errors are failures, every response a success (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Errors;

impl<Res, E> ClassifyFailure<Res, E> for Errors {
    fn is_failure(&self, result: &Result<Res, E>) -> bool {
        result.is_err()
    }
}

/// HTTP: errors and 5xx responses are failures (4xx are the caller's).
/// The kit's [`StatusClassifier`] decides the same by default, and with
/// your own rule (the one your RED layer uses) it is a breaker's
/// classifier too.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpServerErrors;

impl<B, E> ClassifyFailure<http::Response<B>, E> for HttpServerErrors {
    fn is_failure(&self, result: &Result<http::Response<B>, E>) -> bool {
        match result {
            Ok(response) => Outcome::Http(response.status().as_u16()).is_failure(),
            Err(_) => true,
        }
    }
}

/// HTTP, by the kit's classifier: errors, and responses it classifies as
/// [`ErrorType::ServerError`] (the same rule as the RED layer's
/// `with_classifier`).
impl<B, E> ClassifyFailure<http::Response<B>, E> for StatusClassifier {
    fn is_failure(&self, result: &Result<http::Response<B>, E>) -> bool {
        match result {
            Ok(response) => {
                self.classify(response.status().as_u16()) == Some(ErrorType::ServerError)
            }
            Err(_) => true,
        }
    }
}

/// gRPC: errors, and responses whose `grpc-status` header (a trailers-only
/// answer: how a call that fails at once ends) is one of the failure codes.
/// A status that arrives in trailers after a streamed body is not seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcServerErrors(pub GrpcFailures);

impl<B, E> ClassifyFailure<http::Response<B>, E> for GrpcServerErrors {
    fn is_failure(&self, result: &Result<http::Response<B>, E>) -> bool {
        match result {
            Ok(response) => match response.headers().get("grpc-status") {
                Some(code) => self.0.is_failure(GrpcCode::from_header(code.as_bytes())),
                None => !response.status().is_success(),
            },
            Err(_) => true,
        }
    }
}

/// The error of a call through the breaker.
#[derive(Debug)]
pub enum BreakerError<E> {
    /// Shed: the inner service was not called.
    Open(BreakerOpen),
    /// The inner service's error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open(open) => open.fmt(f),
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BreakerError::Open(open) => Some(open),
            BreakerError::Inner(e) => Some(e),
        }
    }
}

impl CircuitBreaker {
    /// A tower layer calling through this breaker; errors are failures
    /// (see [`CircuitBreakerLayer::classify`] for HTTP and gRPC).
    pub fn layer(&self) -> CircuitBreakerLayer<Errors> {
        CircuitBreakerLayer {
            core: self.core.clone(),
            classify: Errors,
        }
    }
}

/// The tower layer of a [`CircuitBreaker`].
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C> {
    core: Arc<Core>,
    classify: C,
}

impl<C> CircuitBreakerLayer<C> {
    /// Decides failures with `classify` ([`HttpServerErrors`],
    /// [`GrpcServerErrors`], or your own).
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            core: self.core,
            classify,
        }
    }

    /// For an HTTP server: a shed request is answered `503 Service
    /// Unavailable` with `Retry-After` (whole seconds, rounded up, at
    /// least 1) instead of an error.
    pub fn answer_503(self) -> Answer503Layer<C> {
        Answer503Layer { inner: self }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            core: self.core.clone(),
            classify: self.classify.clone(),
            shed: None,
        }
    }
}

/// A service behind a circuit breaker.
///
/// In `poll_ready`, a call the breaker would shed is ready at once,
/// without waiting for the inner service (an open breaker in front of a
/// full buffer still fails fast); other calls wait for the inner service's
/// readiness. A call found so is shed, and counted, when made; any other
/// is admitted (or shed) in `call`, as the breaker is then.
#[derive(Debug)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    core: Arc<Core>,
    classify: C,
    /// The state and wait with which `poll_ready` found the breaker
    /// shedding (it did not make the inner service ready): the next call
    /// is shed so, and counted when made.
    shed: Option<(BreakerState, Duration)>,
}

impl<S: Clone, C: Clone> Clone for CircuitBreakerService<S, C> {
    /// A clone has its own readiness.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            core: self.core.clone(),
            classify: self.classify.clone(),
            shed: None,
        }
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Ready at once when the breaker would shed the call (the inner
    /// service will not be called, so its readiness does not matter);
    /// otherwise when the inner service is.
    fn poll_ready_or_shed<Req>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>>
    where
        S: Service<Req>,
    {
        self.shed = self.core.shedding();
        if self.shed.is_some() {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx)
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: ClassifyFailure<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready_or_shed(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let admission = match self.shed.take() {
            Some((state, wait)) => Err(self.core.rejected(state, wait)),
            None => self.core.acquire(),
        };
        match admission {
            Ok(permit) => {
                let span = self.core.open_span();
                let service = &mut self.inner;
                let inner = span.in_span(|| service.call(req));
                ResponseFuture {
                    state: State::Called {
                        inner,
                        call: Some(Call {
                            start: self.core.call_start(),
                            core: self.core.clone(),
                            permit: Some(permit),
                            classify: self.classify.clone(),
                            span,
                        }),
                    },
                }
            }
            Err(open) => ResponseFuture {
                state: State::Shed { open: Some(open) },
            },
        }
    }
}

/// A call in flight: records its outcome once, or frees its probe slot
/// when dropped first.
struct Call<C> {
    core: Arc<Core>,
    permit: Option<Permit>,
    start: Option<tokio::time::Instant>,
    classify: C,
    /// The call's span, when the telemetry opens spans.
    span: plimsoll_core::trace::OpenSpan,
}

impl<C> Drop for Call<C> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.core.release(permit);
        }
    }
}

pin_project! {
    /// Response future of [`CircuitBreakerService`].
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called { #[pin] inner: F, call: Option<Call<C>> },
        Shed { open: Option<BreakerOpen> },
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, E>>,
    C: ClassifyFailure<Res, E>,
{
    type Output = Result<Res, BreakerError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { inner, call } => {
                let result = match call.as_ref() {
                    Some(call) => call.span.in_span(|| inner.poll(cx)),
                    None => inner.poll(cx),
                };
                let result = std::task::ready!(result);
                if let Some(mut call) = call.take()
                    && let Some(permit) = call.permit.take()
                {
                    let failure = call.classify.is_failure(&result);
                    call.core.record(permit, failure, call.start);
                    call.core.end_span(&call.span, failure.then_some("failure"));
                }
                Poll::Ready(result.map_err(BreakerError::Inner))
            }
            StateProj::Shed { open } => Poll::Ready(Err(BreakerError::Open(
                open.take().expect("polled after completion"),
            ))),
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

/// `wait` in whole seconds, rounded up.
pub(crate) fn ceil_secs(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
}

/// A [`CircuitBreakerLayer`] that answers shed HTTP requests with 503.
#[derive(Clone, Debug)]
pub struct Answer503Layer<C> {
    inner: CircuitBreakerLayer<C>,
}

impl<S, C: Clone> Layer<S> for Answer503Layer<C> {
    type Service = Answer503<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Answer503 {
            inner: self.inner.layer(inner),
        }
    }
}

/// An HTTP service behind a breaker whose shed requests get a 503.
#[derive(Clone, Debug)]
pub struct Answer503<S, C> {
    inner: CircuitBreakerService<S, C>,
}

impl<S, C, ReqB, ResB> Service<http::Request<ReqB>> for Answer503<S, C>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    C: ClassifyFailure<http::Response<ResB>, S::Error>,
    ResB: Default,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = Answer503Future<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready_or_shed(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        Answer503Future {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`Answer503`].
    pub struct Answer503Future<F, C> {
        #[pin]
        inner: ResponseFuture<F, C>,
    }
}

impl<F, C, ResB, E> Future for Answer503Future<F, C>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
    C: ClassifyFailure<http::Response<ResB>, E>,
    ResB: Default,
{
    type Output = Result<http::Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::task::ready!(self.project().inner.poll(cx)) {
            Ok(response) => Poll::Ready(Ok(response)),
            Err(BreakerError::Inner(e)) => Poll::Ready(Err(e)),
            Err(BreakerError::Open(open)) => {
                let mut response = http::Response::new(ResB::default());
                *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(retry_after_secs(open.retry_in)),
                );
                Poll::Ready(Ok(response))
            }
        }
    }
}
