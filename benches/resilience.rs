//! The happy path of the breaker and the limiter over a bare service, in
//! the same run: 1,000 calls per iteration of a service that answers at
//! once, each call's future polled to completion by hand (no runtime in
//! the measurement).
//!
//! - `breaker`: a closed breaker over a `Result` service (admission, the
//!   lock-free window, the call counted under the request's tenant).
//! - `limiter`: an HTTP request allowed by a per-tenant limit (tenant from
//!   the request, governor's keyed check, the quota left set).
//!
//! Run: `cargo bench --bench resilience --features resilience`.

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
                    black_box(now(bare.call(black_box(i))).unwrap());
                }
            })
        })
    });
    group.bench_function("plimsoll", |b| {
        b.iter(|| {
            scope.enter(|| {
                for i in 0..CALLS as u64 {
                    black_box(now(guarded.call(black_box(i))).unwrap());
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
    let mut group = c.benchmark_group("limiter_allowed_x1000");
    group.bench_function("bare", |b| {
        b.iter(|| {
            for _ in 0..CALLS {
                black_box(now(bare.call(request())).unwrap());
            }
        })
    });
    group.bench_function("plimsoll", |b| {
        b.iter(|| {
            for _ in 0..CALLS {
                let response = now(limited.call(request())).unwrap();
                assert_eq!(response.status(), 200);
                black_box(response);
            }
        })
    });
    group.finish();
}

harness::bench_main!(3, happy_paths);
