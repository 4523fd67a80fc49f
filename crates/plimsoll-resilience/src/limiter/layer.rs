//! The rate limiter as a tower layer for HTTP and gRPC servers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use pin_project_lite::pin_project;
use plimsoll_core::Tenant;
use tower_layer::Layer;
use tower_service::Service;

use super::{Decision, LimitKey, RateLimiter};
use crate::breaker::layer::{ceil_secs, retry_after_secs};

/// The tenant of a request: the `Tenant` extension the service's auth
/// set, else the request scope's (the RED layer's resolution), else
/// `__unknown__`.
pub fn request_tenant<B>(req: &http::Request<B>) -> Tenant {
    if let Some(tenant) = req.extensions().get::<Tenant>() {
        return tenant.clone();
    }
    let tenant = plimsoll_core::scope::current_tenant();
    if tenant == Tenant::system() {
        Tenant::unknown()
    } else {
        tenant
    }
}

/// How a refused request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// `429 Too Many Requests`.
    Http,
    /// `grpc-status: 8` (`RESOURCE_EXHAUSTED`), trailers-only.
    Grpc,
}

impl RateLimiter {
    /// A tower layer for an HTTP server: a refused request is answered
    /// `429 Too Many Requests` with `Retry-After` (whole seconds, rounded
    /// up, at least 1) and `RateLimit-Limit` / `RateLimit-Remaining` /
    /// `RateLimit-Reset`, without calling the inner service. The key is
    /// [`request_tenant`]; place the layer inside the RED layer so refused
    /// requests are recorded (as 429s, under their tenant).
    pub fn layer(&self) -> RateLimitLayer {
        RateLimitLayer {
            limiter: self.clone(),
            refusal: Refusal::Http,
            headers_on_success: false,
            key_header: None,
        }
    }

    /// A tower layer for a gRPC server (tonic): a refused call ends with
    /// `RESOURCE_EXHAUSTED`, `retry-after` metadata with the seconds to wait.
    pub fn grpc_layer(&self) -> RateLimitLayer {
        RateLimitLayer {
            limiter: self.clone(),
            refusal: Refusal::Grpc,
            headers_on_success: false,
            key_header: None,
        }
    }
}

/// The tower layer of a [`RateLimiter`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
    refusal: Refusal,
    headers_on_success: bool,
    key_header: Option<HeaderName>,
}

/// Longest raw key read from a header, in bytes; longer values key by tenant.
pub const MAX_KEY_LEN: usize = 256;

impl RateLimitLayer {
    /// Keys each request by the value of `header` (an API key, a client
    /// id) instead of its tenant; a request without it (or with one longer
    /// than [`MAX_KEY_LEN`]) is keyed by its tenant. The series still carry
    /// the request's tenant.
    pub fn key_by_header(mut self, header: HeaderName) -> Self {
        self.key_header = Some(header);
        self
    }

    /// Also sends the `RateLimit-*` headers on requests that pass.
    pub fn headers_on_success(mut self, on: bool) -> Self {
        self.headers_on_success = on;
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service behind a rate limit.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    layer: RateLimitLayer,
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

fn set_headers(headers: &mut http::HeaderMap, decision: &Decision) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(decision.remaining));
    // Whole seconds, rounded up (0 only when the burst is already full).
    headers.insert(
        RATELIMIT_RESET,
        HeaderValue::from(ceil_secs(decision.reset)),
    );
}

fn refused<B: Default>(refusal: Refusal, decision: &Decision) -> http::Response<B> {
    let mut response = http::Response::new(B::default());
    let retry = HeaderValue::from(retry_after_secs(decision.retry_after));
    let headers = response.headers_mut();
    match refusal {
        Refusal::Http => {
            *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            let headers = response.headers_mut();
            headers.insert(RETRY_AFTER, retry);
            set_headers(headers, decision);
        }
        Refusal::Grpc => {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from_static("8"));
            headers.insert("grpc-message", HeaderValue::from_static("rate%20limited"));
            headers.insert("retry-after", retry);
        }
    }
    response
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for RateLimit<S>
where
    S: Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    ResB: Default,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = RateLimitFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let limiter = &self.layer.limiter;
        let raw = self.layer.key_header.as_ref().and_then(|h| {
            let value = req.headers().get(h)?.to_str().ok()?;
            (!value.is_empty() && value.len() <= MAX_KEY_LEN).then(|| LimitKey::Raw(value.into()))
        });
        // The tenant set by the service's auth is borrowed, not copied.
        let admitted = match (raw, req.extensions().get::<Tenant>()) {
            (None, Some(tenant)) => limiter.admit_tenant(tenant),
            (None, None) => limiter.admit_tenant(&request_tenant(&req)),
            (Some(key), Some(tenant)) => limiter.admit_key(key, tenant),
            (Some(key), None) => limiter.admit_key(key, &request_tenant(&req)),
        };
        match admitted {
            Ok(allowed) => RateLimitFuture {
                state: State::Called {
                    inner: self.inner.call(req),
                    headers: self.layer.headers_on_success.then(|| allowed.decision()),
                },
            },
            Err(refusal) => RateLimitFuture {
                state: State::Refused {
                    response: Some(refused(self.layer.refusal, &refusal)),
                },
            },
        }
    }
}

pin_project! {
    /// Response future of [`RateLimit`].
    pub struct RateLimitFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Called { #[pin] inner: F, headers: Option<Decision> },
        Refused { response: Option<http::Response<B>> },
    }
}

impl<F, B> fmt::Debug for RateLimitFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for RateLimitFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { inner, headers } => {
                let mut response = std::task::ready!(inner.poll(cx))?;
                if let Some(decision) = headers {
                    set_headers(response.headers_mut(), decision);
                }
                Poll::Ready(Ok(response))
            }
            StateProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}
