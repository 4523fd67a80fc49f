//! Per-request overhead of the RED layer, in process (router `oneshot`).
//!
//! Seven variants in one run, same router and request: `bare` (no layer),
//! `identity_layer` (a layer that does nothing: what axum's `Router::layer`
//! costs by itself), `stack_plus_red` (RED with a tenant header, added to
//! that existing layer stack through a `ServiceBuilder`: its marginal cost is
//! `stack_plus_red - identity_layer`),
//! `red` (the RED layer, no tenant source: `__unknown__`), `red_plain`
//! (the same without its per-thread memo of series keys: two family
//! lookups per request),
//! `red_tenant_header` (tenant read from the `x-tenant-id` header,
//! validated and bounded), and `floor`: a minimal layer written here that
//! does only what any route-aware layer timing to the end of the body must
//! (read `MatchedPath`, two clock reads, one atomic gauge up and down, one
//! atomic histogram bucket and sum, a guard carried into the response
//! body), with no labels, tenants or series lookups; and `lean`: the floor
//! plus the lookups a warm RED request makes (tenant extension,
//! `traceparent`, method, cached series keys), in the simplest shape, with
//! none of RED's other work. Each request is a `GET /api/v1/orders/{id}`
//! carrying the header, whose body is read to the end.
//!
//! Every router is finalised with `Router::with_state(())` before it is
//! called, as `axum::serve` does: otherwise axum turns each handler into a
//! route (and applies every layer to it) again on each request, which no
//! served application does.
//!
//! Run: `cargo bench --bench http --features http`.

#[allow(unused_imports, unused_macros)]
mod harness;

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use criterion::{Criterion, criterion_group};
use http::Request;
use plimsoll::Telemetry;
use plimsoll::http::RedMetricsLayer;
use tower::ServiceExt;

async fn order(Path(id): Path<u64>) -> String {
    format!("order {id}")
}

fn router() -> Router {
    Router::new()
        .route("/api/v1/orders/{id}", get(order))
        .route("/api/v1/orders", get(|| async { "orders" }))
}

/// A router as `axum::serve` runs it: handlers turned into routes once.
fn served(router: Router) -> Router {
    router.with_state(())
}

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

/// The variants, in report order, each router finalised as served.
fn variants() -> Vec<(&'static str, Router)> {
    let header_layer = || {
        RedMetricsLayer::builder(&telemetry())
            .with_tenant_header("x-tenant-id")
            .build()
            .unwrap()
    };
    let identity = tower::layer::util::Identity::new;
    vec![
        ("bare", router()),
        // What axum's `Router::layer` costs for any layer: an identity layer.
        ("identity_layer", router().layer(identity())),
        // What any layer timing to the end of the body costs at least.
        ("floor", router().layer(floor::FloorLayer::default())),
        // The floor plus the lookups a warm RED request makes, in the
        // simplest shape: how much of RED's cost is its structure.
        ("lean", router().layer(lean::LeanLayer::new(&telemetry()))),
        // Services usually have a layer stack already (auth, tracing,
        // timeouts); added to it with a ServiceBuilder, RED shares the
        // stack's one `Router::layer` and costs only its own work.
        (
            "stack_plus_red",
            router().layer(
                tower::ServiceBuilder::new()
                    .layer(identity())
                    .layer(header_layer()),
            ),
        ),
        (
            "red",
            router().layer(RedMetricsLayer::builder(&telemetry()).build().unwrap()),
        ),
        (
            "red_plain",
            router().layer(
                RedMetricsLayer::builder(&telemetry())
                    .with_series_memo(false)
                    .build()
                    .unwrap(),
            ),
        ),
        ("red_tenant_header", router().layer(header_layer())),
    ]
    .into_iter()
    .map(|(name, app)| (name, served(app)))
    .collect()
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("http_request");
    for (name, app) in variants() {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| harness::run_orders(&rt, &app, iters))
        });
    }
    group.finish();
}

/// The layer's own cost without axum's layering: a plain tower service,
/// bare and wrapped, same request with a tenant header.
fn own_cost(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inner = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("order")))
    });
    let t = telemetry();
    let red = tower::Layer::layer(
        &RedMetricsLayer::builder(&t)
            .with_tenant_header("x-tenant-id")
            .build()
            .unwrap(),
        inner,
    );
    let req = || {
        Request::get("/api/v1/orders/7")
            .header("x-tenant-id", "acme")
            .body(Body::empty())
            .unwrap()
    };
    let mut group = c.benchmark_group("tower_service");
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = inner.oneshot(req()).await.unwrap();
                    black_box(
                        axum::body::to_bytes(res.into_body(), usize::MAX)
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("red_tenant_header", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = red.clone().oneshot(req()).await.unwrap();
                    let body = Body::new(res.into_body());
                    black_box(axum::body::to_bytes(body, usize::MAX).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// Ratios robust to a noisy machine: the variants run interleaved in short
/// rounds (A B C D A B C D …) and each variant's median round is reported.
fn interleaved_report() {
    const ROUNDS: usize = 61;
    const PER_ROUND: u64 = 2_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let variants = variants();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for (_, app) in &variants {
        harness::run_orders(&rt, app, PER_ROUND); // warm up
    }
    for _ in 0..ROUNDS {
        for (i, (_, app)) in variants.iter().enumerate() {
            let elapsed = harness::run_orders(&rt, app, PER_ROUND);
            samples[i].push(elapsed.as_nanos() as f64 / PER_ROUND as f64);
        }
    }
    // Each round's ratio to the bare round next to it, then the median:
    // less sensitive to the machine's speed drifting during a run.
    let paired: Vec<f64> = samples
        .iter()
        .map(|s| {
            let mut ratios: Vec<f64> = s.iter().zip(&samples[0]).map(|(v, b)| v / b).collect();
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        })
        .collect();
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    println!("interleaved medians ({ROUNDS} rounds of {PER_ROUND} requests):");
    for (((name, _), median), paired) in variants.iter().zip(&medians).zip(&paired) {
        println!(
            "  {name:<18} {median:>7.0} ns   {:+6.1}% vs bare ({:+5.1}% paired)   {:+6.1}% vs identity_layer",
            (median / medians[0] - 1.0) * 100.0,
            (paired - 1.0) * 100.0,
            (median / medians[1] - 1.0) * 100.0
        );
    }
}

/// The least a route-aware layer timing requests to the end of the body
/// does, as a yardstick for the RED layer: no labels, no tenant, one fixed
/// gauge and histogram made of raw atomics.
mod floor {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::task::{Context, Poll, ready};

    use axum::extract::MatchedPath;
    use http::{Request, Response};
    use plimsoll::clock::Stamp;

    const BOUNDS: [f64; 13] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    #[derive(Default)]
    pub(crate) struct Cells {
        in_flight: AtomicU64,
        buckets: [AtomicU64; 14],
        sum_bits: AtomicU64,
        /// Written with the route's length, so that the route lookup is
        /// not optimised away.
        route_len: AtomicU64,
    }

    #[derive(Clone, Default)]
    pub(crate) struct FloorLayer(Arc<Cells>);

    #[derive(Clone)]
    pub(crate) struct Floor<S>(S, Arc<Cells>);

    impl<S> tower::Layer<S> for FloorLayer {
        type Service = Floor<S>;
        fn layer(&self, inner: S) -> Floor<S> {
            Floor(inner, self.0.clone())
        }
    }

    /// Records one request when dropped.
    pub(crate) struct Done(Arc<Cells>, Stamp);

    impl Drop for Done {
        fn drop(&mut self) {
            let seconds = self.1.elapsed_seconds();
            let bucket = BOUNDS.iter().position(|b| seconds <= *b).unwrap_or(13);
            self.0.buckets[bucket].fetch_add(1, Relaxed);
            let _ = self.0.sum_bits.fetch_update(Relaxed, Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
            self.0.in_flight.fetch_sub(1, Relaxed);
        }
    }

    impl<S, B, R> tower::Service<Request<B>> for Floor<S>
    where
        S: tower::Service<Request<B>, Response = Response<R>>,
    {
        type Response = Response<Body<R, Done>>;
        type Error = S::Error;
        type Future = Fut<S::Future, Done>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let start = Stamp::now();
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().len());
            self.1.route_len.store(route.unwrap_or(0) as u64, Relaxed);
            self.1.in_flight.fetch_add(1, Relaxed);
            Fut::new(self.0.call(req), Done(self.1.clone(), start))
        }
    }

    /// What a guard learns when the response headers are ready.
    pub(crate) trait Headers {
        fn headers(&mut self, _status: u16) {}
    }

    impl Headers for Done {}

    pin_project_lite::pin_project! {
        /// A response future that hands `done` to the body (shared with `lean`).
        pub(crate) struct Fut<F, D> { #[pin] inner: F, done: Option<D> }
    }

    impl<F, D> Fut<F, D> {
        pub(crate) fn new(inner: F, done: D) -> Self {
            Self {
                inner,
                done: Some(done),
            }
        }
    }

    impl<F, D: Headers, R, E> Future for Fut<F, D>
    where
        F: Future<Output = Result<Response<R>, E>>,
    {
        type Output = Result<Response<Body<R, D>>, E>;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let response = ready!(this.inner.poll(cx))?;
            let mut done = this.done.take();
            if let Some(done) = done.as_mut() {
                done.headers(response.status().as_u16());
            }
            Poll::Ready(Ok(response.map(|inner| Body::new(inner, done))))
        }
    }

    pin_project_lite::pin_project! {
        /// A response body that drops `done` at its end (shared with `lean`).
        pub(crate) struct Body<B, D> { #[pin] inner: B, done: Option<D> }
    }

    impl<B, D> Body<B, D> {
        pub(crate) fn new(inner: B, done: Option<D>) -> Self {
            Self { inner, done }
        }
    }

    impl<B: http_body::Body, D> http_body::Body for Body<B, D> {
        type Data = B::Data;
        type Error = B::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
            let mut this = self.project();
            let frame = ready!(this.inner.as_mut().poll_frame(cx));
            if frame.is_none() || this.inner.is_end_stream() {
                this.done.take();
            }
            Poll::Ready(frame)
        }
        fn is_end_stream(&self) -> bool {
            self.inner.is_end_stream()
        }
        fn size_hint(&self) -> http_body::SizeHint {
            self.inner.size_hint()
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = overhead, own_cost
}
fn main() {
    // `PLIMSOLL_BENCH_ONLY=<variant>` runs that variant's requests alone
    // (`PLIMSOLL_BENCH_ITERS`, default 100,000) and nothing else: for
    // profilers such as callgrind.
    if let Ok(only) = std::env::var("PLIMSOLL_BENCH_ONLY") {
        let iters = std::env::var("PLIMSOLL_BENCH_ITERS").map_or(100_000, |v| {
            v.parse()
                .expect("PLIMSOLL_BENCH_ITERS: a number of requests")
        });
        let (_, app) = variants()
            .into_iter()
            .find(|(name, _)| *name == only)
            .expect("PLIMSOLL_BENCH_ONLY: one of the variants' names");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        harness::run_orders(&rt, &app, iters);
        return;
    }
    // `PLIMSOLL_BENCH_REPORT=0` skips the report (profiling one variant).
    if std::env::var("PLIMSOLL_BENCH_REPORT").as_deref() != Ok("0") {
        interleaved_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// The floor plus the lookups a warm request of the RED layer makes, in
/// the simplest shape that makes them: the `Tenant` extension, a
/// `traceparent` scan, the method, a one-entry per-thread cache of series
/// keys (keyed by label addresses, without holding the values: a shortcut
/// the real layer may not take), the in-flight gauge and the latency
/// histogram through core's `SeriesKey` API. None of RED's other work:
/// no ignore list, overflow bookkeeping, classifier, error counter, body
/// sizes, slow log, or panic and cancellation handling. A yardstick only.
mod lean {
    use std::cell::Cell;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use axum::extract::MatchedPath;
    use http::{HeaderName, Request, Response};
    use plimsoll::clock::Stamp;
    use plimsoll::{Gauge, Histogram, SeriesKey, Telemetry, Tenant, TraceRef};

    use super::floor::{Body, Fut, Headers};

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub(crate) struct Route {
        method: &'static str,
        route: String,
    }
    plimsoll::impl_label_set!(Route { method, route });

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub(crate) struct Status {
        method: &'static str,
        route: String,
        status_code: u16,
    }
    plimsoll::impl_label_set!(Status {
        method,
        route,
        status_code
    });

    pub(crate) struct Shared {
        in_flight: Gauge<Route>,
        duration: Histogram<Status>,
        unknown: Tenant,
    }

    #[derive(Clone)]
    pub(crate) struct LeanLayer(Arc<Shared>);

    impl LeanLayer {
        pub(crate) fn new(telemetry: &Telemetry) -> Self {
            Self(Arc::new(Shared {
                in_flight: telemetry.gauge("lean_in_flight", "yardstick").unwrap(),
                duration: telemetry
                    .histogram("lean_duration_seconds", "yardstick")
                    .unwrap(),
                unknown: Tenant::unknown(),
            }))
        }
    }

    #[derive(Clone)]
    pub(crate) struct Lean<S>(S, Arc<Shared>);

    impl<S> tower::Layer<S> for LeanLayer {
        type Service = Lean<S>;
        fn layer(&self, inner: S) -> Lean<S> {
            Lean(inner, self.0.clone())
        }
    }

    /// (route address, tenant and method addresses, in-flight key, last
    /// status, its latency key).
    type Entry = (usize, usize, Option<SeriesKey>, u16, Option<SeriesKey>);

    thread_local! {
        static CACHE: Cell<Entry> = const { Cell::new((0, 0, None, 0, None)) };
    }

    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

    pub(crate) struct Done {
        shared: Arc<Shared>,
        start: Stamp,
        in_flight: SeriesKey,
        status: u16,
        trace: Option<TraceRef>,
    }

    impl Headers for Done {
        fn headers(&mut self, status: u16) {
            self.status = status;
        }
    }

    impl Drop for Done {
        fn drop(&mut self) {
            let seconds = self.start.elapsed_seconds();
            let shared = &self.shared;
            shared.in_flight.add_at(&self.in_flight, -1.0);
            let cached = CACHE.get();
            let key = match cached {
                (_, _, _, status, Some(key)) if status == self.status => key,
                _ => {
                    let labels = shared.in_flight.labels_at(&self.in_flight).unwrap();
                    let key = shared.duration.key(
                        &shared.unknown,
                        &Status {
                            method: labels.method,
                            route: labels.route.clone(),
                            status_code: self.status,
                        },
                    );
                    CACHE.set((cached.0, cached.1, cached.2, self.status, Some(key)));
                    key
                }
            };
            shared.duration.observe_at(&key, seconds, self.trace);
        }
    }

    impl<S, B, R> tower::Service<Request<B>> for Lean<S>
    where
        S: tower::Service<Request<B>, Response = Response<R>>,
    {
        type Response = Response<Body<R, Done>>;
        type Error = S::Error;
        type Future = Fut<S::Future, Done>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let start = Stamp::now();
            let route = req.extensions().get::<MatchedPath>();
            let tenant = req.extensions().get::<Tenant>();
            let trace = req
                .headers()
                .iter()
                .find(|(name, _)| *name == TRACEPARENT)
                .map(|_| TraceRef {
                    trace_id: 1,
                    span_id: 1,
                });
            let method = match *req.method() {
                http::Method::GET => "GET",
                http::Method::POST => "POST",
                _ => "_OTHER",
            };
            let shared = &self.1;
            let route_addr = route.map_or(0, |r| r.as_str().as_ptr() as usize);
            let tenant_addr =
                tenant.map_or(0, |t| t.as_str().as_ptr() as usize) ^ method.as_ptr() as usize;
            let in_flight = match CACHE.get() {
                (r, t, Some(key), ..) if r == route_addr && t == tenant_addr => key,
                _ => {
                    let labels = Route {
                        method,
                        route: route.map_or("__unmatched__", |r| r.as_str()).to_owned(),
                    };
                    let key = shared
                        .in_flight
                        .key(tenant.unwrap_or(&shared.unknown), &labels);
                    CACHE.set((route_addr, tenant_addr, Some(key), 0, None));
                    key
                }
            };
            shared.in_flight.add_at(&in_flight, 1.0);
            let done = Done {
                shared: shared.clone(),
                start,
                in_flight,
                status: 0,
                trace,
            };
            Fut::new(self.0.call(req), done)
        }
    }
}
