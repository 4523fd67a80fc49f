//! The `/metrics` endpoint: content negotiation and optional bearer token.
//!
//! [`MetricsService`] is a tower service usable in any stack;
//! [`metrics_router`] mounts it at `GET /metrics` in axum; [`serve_metrics`]
//! (feature `server`) runs it on its own listener for services without axum.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use plimsoll_core::Telemetry;
use tower_service::Service;

/// Path the endpoint is served at.
pub const METRICS_PATH: &str = "/metrics";

/// Answers scrapes of a [`Telemetry`]: OpenMetrics when the scraper asks
/// for it, Prometheus text 0.0.4 otherwise; `401` without the bearer token
/// when one is set.
#[derive(Clone, Debug)]
pub struct MetricsService {
    telemetry: Telemetry,
    token: Option<Arc<str>>,
}

impl MetricsService {
    /// Serves `telemetry`.
    pub fn new(telemetry: &Telemetry) -> Self {
        Self {
            telemetry: telemetry.clone(),
            token: None,
        }
    }

    /// Requires `Authorization: Bearer <token>`.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Arc::from(token.into()));
        self
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or(b"");
        // Compare in time independent of where the first difference is.
        given.len() == token.len()
            && given
                .iter()
                .zip(token.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The response to a scrape with these request headers.
    pub fn respond(&self, headers: &HeaderMap) -> Response<Full<Bytes>> {
        if !self.authorized(headers) {
            let mut response = Response::new(Full::new(Bytes::from_static(b"unauthorized\n")));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let exposition = self.telemetry.render(accept);
        let mut response = Response::new(Full::new(Bytes::from(exposition.body)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(exposition.format.content_type()),
        );
        response
    }
}

impl<B> Service<Request<B>> for MetricsService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(req.headers())))
    }
}

/// An axum router serving `GET /metrics`; merge it into your app.
#[cfg(feature = "axum")]
pub fn metrics_router<S: Clone + Send + Sync + 'static>(
    service: MetricsService,
) -> axum::Router<S> {
    axum::Router::new().route(
        METRICS_PATH,
        axum::routing::get(move |headers: HeaderMap| {
            let service = service.clone();
            async move { service.respond(&headers) }
        }),
    )
}

/// Serves `/metrics` on `listener` until the listener fails (HTTP/1.1);
/// other paths get 404.
///
/// ```no_run
/// # async fn run(telemetry: plimsoll_core::Telemetry) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
/// plimsoll_http::serve_metrics(listener, plimsoll_http::MetricsService::new(&telemetry)).await
/// # }
/// ```
#[cfg(feature = "server")]
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    service: MetricsService,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = if req.uri().path() == METRICS_PATH {
                    service.respond(req.headers())
                } else {
                    let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    r
                };
                ready(Ok::<_, Infallible>(response))
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // A broken connection concerns that scraper only.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, handler)
                .await;
        });
    }
}
