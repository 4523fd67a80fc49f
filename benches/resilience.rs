//! The happy path of the breaker and the limiter over a bare service, in
//! the same run: 1,000 calls per iteration of a service that answers at
//! once, each call made as tower's contract has it (`poll_ready`, then
//! `call`) and its future polled to completion by hand (no runtime in the
//! measurement).
//!
//! - `breaker`: a closed breaker over a `Result` service (admission, the
//!   lock-free window, the call counted; breakers count under
//!   `__system__`).
//! - `limiter`: an HTTP request allowed by a per-tenant limit (tenant from
//!   the request, governor's keyed check; the quota left is read at scrape
//!   time), inside a tokio runtime as in a server.
//!
//! Run: `cargo bench --bench resilience --features resilience` (add
//! `-- nomatch` for the report alone). Before criterion runs, a report
//! robust to a noisy machine: bare and plimsoll rounds of 20,000 calls
//! interleaved, 61 rounds, the median of their differences.

mod harness;
use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::Criterion;
use plimsoll::resilience::{Quota, ResilienceMetrics};
use plimsoll::scope::Scope;
use tower::{Layer, Service, service_fn};

const CALLS: usize = 1_000;

/// Polls a future that is ready at once.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the bench services answer at once"),
    }
}

/// One call as tower's contract has it: readiness, then the call.
fn ready_call<S: Service<R>, R>(service: &mut S, request: R) -> Result<S::Response, S::Error> {
    now(std::future::poll_fn(|cx| service.poll_ready(cx)))?;
    now(service.call(request))
}

fn happy_paths(c: &mut Criterion) {
    let telemetry = harness::telemetry();
    let metrics = ResilienceMetrics::new(&telemetry).unwrap();
    let acme = telemetry.tenant("acme");
    let scope = Scope::new(acme.clone());

    let answer = || service_fn(|n: u64| async move { Ok::<_, &'static str>(n + 1) });
    let breaker = metrics.breaker("payments").build().unwrap();
    let mut bare = answer();
    let mut guarded = breaker.layer().layer(answer());
    let mut group = c.benchmark_group("breaker_closed_x1000");
    group.bench_function("bare", |b| {
        b.iter(|| {
            scope.enter(|| {
                for i in 0..CALLS as u64 {
                    black_box(ready_call(&mut bare, black_box(i)).unwrap());
                }
            })
        })
    });
    group.bench_function("plimsoll", |b| {
        b.iter(|| {
            scope.enter(|| {
                for i in 0..CALLS as u64 {
                    black_box(ready_call(&mut guarded, black_box(i)).unwrap());
                }
            })
        })
    });
    group.finish();

    let handler = || {
        service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        })
    };
    let limiter = metrics
        .limiter("api", Quota::per_second(NonZeroU32::MAX))
        .build()
        .unwrap();
    let mut bare = handler();
    let mut limited = limiter.layer().layer(handler());
    let request = || {
        let mut req = http::Request::new(());
        req.extensions_mut().insert(acme.clone());
        req
    };
    // Services run inside a runtime: the limiter's cleanup task starts on
    // it once (never polled here), and checks only see that it runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    // Figures robust to a noisy machine first, then criterion's.
    interleaved_report(&mut bare, &mut limited, &request);
    let mut bare_answer = answer();
    harness::interleaved(
        "closed breaker, 20,000 calls per round",
        61,
        &mut [
            ("bare", timed(&scope, &mut bare_answer)),
            ("plimsoll", timed(&scope, &mut guarded)),
        ],
    );
    let mut group = c.benchmark_group("limiter_allowed_x1000");
    group.bench_function("bare", |b| {
        b.iter(|| {
            for _ in 0..CALLS {
                black_box(ready_call(&mut bare, request()).unwrap());
            }
        })
    });
    group.bench_function("plimsoll", |b| {
        b.iter(|| {
            for _ in 0..CALLS {
                let response = ready_call(&mut limited, request()).unwrap();
                assert_eq!(response.status(), 200);
                black_box(response);
            }
        })
    });
    group.finish();
}

const PER_ROUND: usize = 20_000;

/// A round of `PER_ROUND` calls of `service` in `scope`, in ns per call.
fn timed<'a, S>(scope: &'a Scope, service: &'a mut S) -> Box<dyn FnMut() -> f64 + 'a>
where
    S: Service<u64, Response = u64>,
    S::Error: std::fmt::Debug,
{
    Box::new(move || {
        let start = std::time::Instant::now();
        scope.enter(|| {
            for i in 0..PER_ROUND as u64 {
                black_box(ready_call(service, black_box(i)).unwrap());
            }
        });
        start.elapsed().as_nanos() as f64 / PER_ROUND as f64
    })
}

/// The limiter's figure robust to a noisy machine: bare and limited
/// rounds interleaved, the median of their differences.
fn interleaved_report<B, L>(bare: &mut B, limited: &mut L, request: &dyn Fn() -> http::Request<()>)
where
    B: Service<http::Request<()>, Response = http::Response<()>>,
    L: Service<http::Request<()>, Response = http::Response<()>>,
    B::Error: std::fmt::Debug,
    L::Error: std::fmt::Debug,
{
    fn round<S>(service: &mut S, request: &dyn Fn() -> http::Request<()>) -> f64
    where
        S: Service<http::Request<()>, Response = http::Response<()>>,
        S::Error: std::fmt::Debug,
    {
        let start = std::time::Instant::now();
        for _ in 0..PER_ROUND {
            let response = ready_call(service, request()).unwrap();
            assert_eq!(response.status(), 200);
            black_box(response);
        }
        start.elapsed().as_nanos() as f64 / PER_ROUND as f64
    }
    harness::interleaved(
        "allowed request through the limiter, 20,000 per round",
        61,
        &mut [
            ("bare", Box::new(|| round(bare, request))),
            ("plimsoll", Box::new(|| round(limited, request))),
        ],
    );
}

harness::bench_main!(3, happy_paths);
