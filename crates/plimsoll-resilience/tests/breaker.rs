//! The circuit breaker walked through every transition on tokio's paused
//! clock, with exact series after each step.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use plimsoll_core::Telemetry;
use plimsoll_core::testing::Scrape;
use plimsoll_resilience::{
    BreakerError, BreakerState, CallOutcome, CircuitBreaker, HttpServerErrors, ResilienceMetrics,
    SlidingWindow,
};
use tokio::sync::oneshot;
use tower::{Service, ServiceExt, service_fn};

type Call = Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send>>;

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap()
}

/// A service whose requests say how they end; counts the calls it gets.
fn inner(
    calls: Arc<AtomicUsize>,
) -> impl Service<Call, Response = (), Error = &'static str, Future = Call> + Clone {
    service_fn(move |call: Call| {
        calls.fetch_add(1, Ordering::SeqCst);
        call
    })
}

fn ok() -> Call {
    Box::pin(async { Ok(()) })
}

fn fail() -> Call {
    Box::pin(async { Err("boom") })
}

/// A call that ends when told, as told.
fn held() -> (oneshot::Sender<bool>, Call) {
    let (tx, rx) = oneshot::channel();
    let call: Call = Box::pin(async move {
        if rx.await.unwrap_or(false) {
            Ok(())
        } else {
            Err("boom")
        }
    });
    (tx, call)
}

fn state_series(s: &Scrape) -> Vec<(String, f64)> {
    s.samples()
        .iter()
        .filter(|x| x.name == "circuit_breaker_state")
        .map(|x| (x.label("service").unwrap_or_default().to_string(), x.value))
        .collect()
}

fn transitions(s: &Scrape, from: &str, to: &str) -> f64 {
    s.value(
        "circuit_breaker_transitions_total",
        &[("service", "payments"), ("from", from), ("to", to)],
    )
    .unwrap_or(0.0)
}

fn calls(s: &Scrape, outcome: &str) -> f64 {
    s.sum(
        "circuit_breaker_calls_total",
        &[("service", "payments"), ("outcome", outcome)],
    )
}

fn breaker(metrics: &ResilienceMetrics) -> CircuitBreaker {
    metrics
        .breaker("payments")
        .sliding_window(SlidingWindow::Count(10))
        .failure_rate(0.5)
        .minimum_calls(4)
        .open_for(Duration::from_secs(10))
        .open_backoff(2.0, Duration::from_secs(60))
        .half_open_probes(2)
        .close_after(2)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_transition_with_exact_series() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = breaker(&metrics);
    let inner_calls = Arc::new(AtomicUsize::new(0));
    let svc = tower::Layer::layer(&breaker.layer(), inner(inner_calls.clone()));

    // Closed: judged over the window, nothing before 4 calls.
    for call in [ok(), fail(), ok()] {
        let _ = svc.clone().oneshot(call).await;
    }
    let s = t.scrape();
    assert_eq!(state_series(&s), vec![("payments".into(), 0.0)]);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // The fourth call makes 2 failures in 4: open.
    let _ = svc.clone().oneshot(fail()).await;
    let s = t.scrape();
    assert_eq!(state_series(&s), vec![("payments".into(), 1.0)]);
    assert_eq!(transitions(&s, "closed", "open"), 1.0);
    assert_eq!((calls(&s, "success"), calls(&s, "failure")), (2.0, 2.0));

    // Open: shed at once, the inner service not called.
    let before = inner_calls.load(Ordering::SeqCst);
    let shed = svc.clone().oneshot(ok()).await;
    let Err(BreakerError::Open(open)) = shed else {
        panic!("shed: {shed:?}")
    };
    assert_eq!(open.state, BreakerState::Open);
    assert_eq!(open.retry_in, Duration::from_secs(10));
    assert_eq!(inner_calls.load(Ordering::SeqCst), before);
    assert_eq!(calls(&t.scrape(), "rejected"), 1.0);

    // After 10 s: half-open, two probes at once, a third shed.
    tokio::time::advance(Duration::from_secs(10)).await;
    let (first_tx, first) = held();
    let (second_tx, second) = held();
    let first = tokio::spawn(svc.clone().oneshot(first));
    let second = tokio::spawn(svc.clone().oneshot(second));
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let third = svc.clone().oneshot(ok()).await;
    assert!(
        matches!(&third, Err(BreakerError::Open(o)) if o.state == BreakerState::HalfOpen),
        "{third:?}"
    );
    let s = t.scrape();
    assert_eq!(state_series(&s), vec![("payments".into(), 2.0)]);
    assert_eq!(transitions(&s, "open", "half_open"), 1.0);

    // A failed probe reopens it, twice as long (backoff); the other
    // probe's late success changes nothing.
    first_tx.send(false).unwrap();
    assert!(first.await.unwrap().is_err());
    second_tx.send(true).unwrap();
    assert!(second.await.unwrap().is_ok());
    let s = t.scrape();
    assert_eq!(state_series(&s), vec![("payments".into(), 1.0)]);
    assert_eq!(transitions(&s, "half_open", "open"), 1.0);
    let Err(BreakerError::Open(open)) = svc.clone().oneshot(ok()).await else {
        panic!("open again")
    };
    assert_eq!(open.retry_in, Duration::from_secs(20));

    // After 20 s: two successful probes close it.
    tokio::time::advance(Duration::from_secs(20)).await;
    assert!(svc.clone().oneshot(ok()).await.is_ok());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(svc.clone().oneshot(ok()).await.is_ok());
    let s = t.scrape();
    assert_eq!(state_series(&s), vec![("payments".into(), 0.0)]);
    assert_eq!(transitions(&s, "open", "half_open"), 2.0);
    assert_eq!(transitions(&s, "half_open", "closed"), 1.0);
    assert_eq!(calls(&s, "rejected"), 3.0);
    assert_eq!(calls(&s, "success"), 5.0);
    assert_eq!(calls(&s, "failure"), 3.0);
    assert_eq!(s.series_count("circuit_breaker_transitions_total"), 4);

    // Closed afresh: the old failures are forgotten, and the next opening
    // waits the base 10 s again.
    for call in [fail(), fail(), ok(), fail()] {
        let _ = svc.clone().oneshot(call).await;
    }
    let Err(BreakerError::Open(open)) = svc.clone().oneshot(ok()).await else {
        panic!("opened again")
    };
    assert_eq!(open.retry_in, Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_and_slow_calls_open_it() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let streak = metrics
        .breaker("streak")
        .minimum_calls(100)
        .consecutive_failures(3)
        .build()
        .unwrap();
    let svc = tower::Layer::layer(&streak.layer(), inner(Arc::default()));
    for call in [fail(), ok(), fail(), fail()] {
        let _ = svc.clone().oneshot(call).await;
    }
    assert_eq!(
        streak.state(),
        BreakerState::Closed,
        "the success broke the streak"
    );
    let _ = svc.clone().oneshot(fail()).await;
    assert_eq!(streak.state(), BreakerState::Open);

    let slow = metrics
        .breaker("slowpoke")
        .sliding_window(SlidingWindow::Time(Duration::from_secs(60)))
        .minimum_calls(2)
        .slow_calls(Duration::from_millis(500), 0.5)
        .build()
        .unwrap();
    let svc = tower::Layer::layer(&slow.layer(), inner(Arc::default()));
    let _ = svc.clone().oneshot(ok()).await;
    let late: Call = Box::pin(async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(())
    });
    assert!(svc.clone().oneshot(late).await.is_ok());
    assert_eq!(slow.state(), BreakerState::Open, "1 slow call in 2");
    let s = t.scrape();
    assert_eq!(
        s.value(
            "circuit_breaker_calls_total",
            &[("service", "slowpoke"), ("outcome", "slow")]
        ),
        Some(1.0)
    );
}

#[tokio::test(start_paused = true)]
async fn forcing_and_reporting_breakers_plimsoll_does_not_run() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = breaker(&metrics);
    let inner_calls = Arc::new(AtomicUsize::new(0));
    let svc = tower::Layer::layer(&breaker.layer(), inner(inner_calls.clone()));
    breaker.force_open();
    assert!(svc.clone().oneshot(ok()).await.is_err());
    assert_eq!(inner_calls.load(Ordering::SeqCst), 0);
    breaker.force_closed();
    for _ in 0..10 {
        let _ = svc.clone().oneshot(fail()).await;
    }
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "forced closed judges nothing"
    );
    breaker.release();
    assert_eq!(breaker.state(), BreakerState::Closed);

    // A breaker of another crate, reported under the same series.
    let theirs = metrics.report_breaker("search");
    theirs.set_state(BreakerState::Open);
    theirs.set_state(BreakerState::Open);
    theirs.call(CallOutcome::Rejected);
    let s = t.scrape();
    assert_eq!(
        state_series(&s),
        vec![("payments".into(), 0.0), ("search".into(), 1.0)]
    );
    assert_eq!(
        s.value(
            "circuit_breaker_transitions_total",
            &[("service", "search"), ("from", "closed"), ("to", "open")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "circuit_breaker_calls_total",
            &[("service", "search"), ("outcome", "rejected")]
        ),
        Some(1.0)
    );
    // Every breaker shows all four outcomes, zeros included.
    assert_eq!(s.series_count("circuit_breaker_calls_total"), 8);
    // A breaker dropped leaves the scrape.
    drop(theirs);
    drop(svc);
    drop(breaker);
    let s = t.scrape();
    assert_eq!(state_series(&s), vec![]);
    assert_eq!(s.series_count("circuit_breaker_calls_total"), 0);
    // Transitions are counters of their own, and stay: payments forced
    // open and closed, search reported open.
    assert_eq!(s.series_count("circuit_breaker_transitions_total"), 3);
}

#[tokio::test(start_paused = true)]
async fn an_http_server_answers_503_with_retry_after_rounded_up() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = metrics
        .breaker("api")
        .minimum_calls(1)
        .failure_rate(1.0)
        .open_for(Duration::from_millis(2500))
        .build()
        .unwrap();
    let svc = tower::Layer::layer(
        &breaker.layer().classify(HttpServerErrors).answer_503(),
        service_fn(|req: http::Request<String>| async move {
            let status = if req.uri().path() == "/down" {
                500
            } else {
                200
            };
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(status)
                    .body(String::new())
                    .unwrap(),
            )
        }),
    );
    let get = |path: &str| http::Request::get(path).body(String::new()).unwrap();
    let not_found = svc.clone().oneshot(get("/down")).await.unwrap();
    assert_eq!(not_found.status(), 500);
    let shed = svc.clone().oneshot(get("/fine")).await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "3", "2.5 s rounds up");
    tokio::time::advance(Duration::from_millis(2499)).await;
    let shed = svc.clone().oneshot(get("/fine")).await.unwrap();
    assert_eq!(shed.headers()["retry-after"], "1", "never 0");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        svc.clone().oneshot(get("/fine")).await.unwrap().status(),
        200
    );
    // The longest wait there is rounds up without overflowing.
    assert_eq!(
        plimsoll_resilience::retry_after_secs(Duration::MAX),
        u64::MAX
    );
}

#[test]
fn bad_settings_are_build_errors_naming_the_field() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let err = |b: plimsoll_resilience::BreakerBuilder| b.build().unwrap_err().to_string();
    assert_eq!(
        err(metrics.breaker("x").failure_rate(1.5)),
        "failure_rate: must be a rate in (0, 1], got 1.5"
    );
    assert_eq!(
        err(metrics.breaker("x").half_open_probes(0)),
        "half_open_probes: must be greater than zero"
    );
    assert_eq!(
        err(metrics.breaker("x").sliding_window(SlidingWindow::Count(0))),
        "sliding_window: must be greater than zero"
    );
    assert_eq!(
        err(metrics
            .breaker("x")
            .open_backoff(0.5, Duration::from_secs(60))),
        "open_backoff.factor: must be a finite number of at least 1"
    );
    assert_eq!(
        err(metrics
            .breaker("x")
            .open_for(Duration::from_secs(30))
            .open_backoff(2.0, Duration::from_secs(1))),
        "open_backoff.max: must be at least open_for"
    );
}

#[tokio::test(start_paused = true)]
async fn outcomes_from_an_earlier_period_are_not_judged_in_a_later_one() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = breaker(&metrics);
    // Five calls admitted while closed, all failing at once: the first
    // four open it; the rest belong to the closed period and count for
    // nothing more — one opening, not five (the backoff is not inflated).
    let permits: Vec<_> = (0..8).map(|_| breaker.try_call().unwrap()).collect();
    for permit in permits {
        permit.done(true);
    }
    let s = t.scrape();
    assert_eq!(transitions(&s, "closed", "open"), 1.0);
    let Err(open) = breaker.try_call() else {
        panic!("open")
    };
    assert_eq!(
        open.retry_in,
        Duration::from_secs(10),
        "one opening's wait, not 2^k of it"
    );

    // Half-open: two probes; one fails (reopens), the other is still out.
    tokio::time::advance(Duration::from_secs(10)).await;
    let failing = breaker.try_call().unwrap();
    let late = breaker.try_call().unwrap();
    failing.done(true);
    assert_eq!(breaker.state(), BreakerState::Open);
    // The next half-open period has both its slots, whatever the late probe does.
    tokio::time::advance(Duration::from_secs(20)).await;
    let first = breaker.try_call().unwrap();
    let second = breaker.try_call().unwrap();
    assert!(breaker.try_call().is_err(), "two slots, both taken");
    late.done(false); // from the earlier period: neither a slot nor a success here
    first.done(false);
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen,
        "one success of two"
    );
    second.done(false);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn a_minimum_the_window_can_never_hold_is_refused() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let err = metrics
        .breaker("x")
        .sliding_window(SlidingWindow::Count(10))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "minimum_calls: 20 can never be reached in a window of the last 10 calls"
    );
}

#[test]
fn breakers_sharing_a_name_add_their_calls_and_show_no_made_up_state() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let a = metrics.breaker("dup").build().unwrap();
    let b = metrics.breaker("dup").build().unwrap();
    a.try_call().unwrap().done(false);
    b.try_call().unwrap().done(false);
    b.force_open();
    let s = t.scrape();
    assert_eq!(
        state_series(&s),
        vec![],
        "closed and open are no single state"
    );
    assert_eq!(
        s.value(
            "circuit_breaker_calls_total",
            &[("service", "dup"), ("outcome", "success")]
        ),
        Some(2.0)
    );
    drop(b);
    assert_eq!(state_series(&t.scrape()), vec![("dup".into(), 0.0)]);
}

#[tokio::test(start_paused = true)]
async fn grpc_failure_codes_open_it_and_caller_errors_do_not() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = metrics
        .breaker("rpc")
        .minimum_calls(2)
        .failure_rate(0.4)
        .build()
        .unwrap();
    let svc = tower::Layer::layer(
        &breaker
            .layer()
            .classify(plimsoll_resilience::GrpcServerErrors::default()),
        service_fn(|code: &'static str| async move {
            let response = http::Response::builder()
                .header("grpc-status", code)
                .body(())
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }),
    );
    // NOT_FOUND (5) and INVALID_ARGUMENT (3) are the caller's: no failure.
    for code in ["5", "3", "0"] {
        svc.clone().oneshot(code).await.unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    // UNAVAILABLE (14) twice: 2 of the 5 calls, 40%, failed.
    for _ in 0..2 {
        svc.clone().oneshot("14").await.unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

/// A service that is never ready (a full buffer, a spent concurrency
/// limit); counts the calls it gets (none, if the contract holds).
#[derive(Clone)]
struct NeverReady(Arc<AtomicUsize>);

impl Service<Call> for NeverReady {
    type Response = ();
    type Error = &'static str;
    type Future = Call;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), &'static str>> {
        std::task::Poll::Pending
    }

    fn call(&mut self, call: Call) -> Call {
        self.0.fetch_add(1, Ordering::SeqCst);
        call
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_in_front_of_a_service_that_is_not_ready() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = breaker(&metrics);
    let stuck_calls = Arc::new(AtomicUsize::new(0));
    let stuck = tower::Layer::layer(&breaker.layer(), NeverReady(stuck_calls.clone()));
    let wait = Duration::from_secs(1);
    // Closed: an admitted call waits for the inner service.
    assert!(
        tokio::time::timeout(wait, stuck.clone().oneshot(ok()))
            .await
            .is_err()
    );
    // Open: shed at once, without waiting for it.
    breaker.force_open();
    let shed = tokio::time::timeout(wait, stuck.clone().oneshot(ok())).await;
    assert!(matches!(shed, Ok(Err(BreakerError::Open(_)))), "{shed:?}");
    assert_eq!(calls(&t.scrape(), "rejected"), 1.0);
    // Found ready while shedding, then dropped: no call, no rejection.
    let mut unused = stuck.clone();
    unused.ready().await.unwrap();
    drop(unused);
    assert_eq!(calls(&t.scrape(), "rejected"), 1.0);
    // Found ready while shedding, called after the breaker let calls
    // through again: still shed, as its inner service was never made
    // ready (the inner service is not called).
    let mut found = stuck.clone();
    found.ready().await.unwrap();
    breaker.release();
    let shed = found.call(ok()).await;
    assert!(matches!(shed, Err(BreakerError::Open(_))), "{shed:?}");
    assert_eq!(calls(&t.scrape(), "rejected"), 2.0);

    // A call found ready while closed is judged when it is made: the
    // breaker opened since, so it is shed.
    let working = tower::Layer::layer(&breaker.layer(), inner(Arc::default()));
    let mut ready = working.clone();
    ready.ready().await.unwrap();
    breaker.force_open();
    let late = ready.call(ok()).await;
    assert!(matches!(late, Err(BreakerError::Open(_))), "{late:?}");
    breaker.release();

    // Half-open: services waiting for their inner service's readiness hold
    // no probe slot; calls made are the probes.
    for call in [fail(), fail(), fail(), fail()] {
        let _ = working.clone().oneshot(call).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    // Opened by its failures (not forced): shed at once too.
    let shed = tokio::time::timeout(wait, stuck.clone().oneshot(ok())).await;
    assert!(matches!(shed, Ok(Err(BreakerError::Open(_)))), "{shed:?}");
    tokio::time::advance(Duration::from_secs(10)).await;
    let (mut a, mut b) = (stuck.clone(), stuck.clone());
    for waiting in [&mut a, &mut b] {
        assert!(tokio::time::timeout(wait, waiting.ready()).await.is_err());
    }
    let (first_tx, first) = held();
    let (second_tx, second) = held();
    let first = tokio::spawn(working.clone().oneshot(first));
    let second = tokio::spawn(working.clone().oneshot(second));
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // Both probe slots taken by calls made: shed at once.
    let shed = tokio::time::timeout(wait, stuck.clone().oneshot(ok())).await;
    assert!(
        matches!(&shed, Ok(Err(BreakerError::Open(o))) if o.state == BreakerState::HalfOpen),
        "{shed:?}"
    );
    first_tx.send(true).unwrap();
    second_tx.send(true).unwrap();
    assert!(first.await.unwrap().is_ok() && second.await.unwrap().is_ok());
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(stuck_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn the_kit_s_status_classifier_decides_failures_as_the_red_layer_does() {
    use plimsoll_core::classify::{ErrorType, StatusClassifier, classify_status};
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    // Answers the status its path names.
    let echo = service_fn(|req: http::Request<String>| async move {
        let status: u16 = req.uri().path()[1..].parse().unwrap();
        let response = http::Response::builder().status(status).body(String::new());
        Ok::<_, std::convert::Infallible>(response.unwrap())
    });
    let get = |path: &str| http::Request::get(path).body(String::new()).unwrap();
    let breaker = |name: &str| {
        metrics
            .breaker(name)
            .sliding_window(SlidingWindow::Count(4))
            .minimum_calls(4)
            .failure_rate(0.5)
            .build()
            .unwrap()
    };
    // The service's rule (its RED layer's too): a dependency answering
    // 429 is failing us; 4xx otherwise are the caller's.
    let rule = StatusClassifier::new(|status| match status {
        429 => Some(ErrorType::ServerError),
        other => classify_status(other),
    });
    let ours = breaker("search");
    let by_rule = tower::Layer::layer(&ours.layer().classify(rule), echo);
    let default = breaker("search-default");
    let by_default = tower::Layer::layer(&default.layer().classify(HttpServerErrors), echo);
    for path in ["/404", "/404", "/404", "/404"] {
        let answer = by_rule.clone().oneshot(get(path)).await.unwrap();
        assert_eq!(answer.status(), 404);
        let _ = by_default.clone().oneshot(get(path)).await;
    }
    assert_eq!(ours.state(), BreakerState::Closed);
    // Two 429s make half the window: open.
    for path in ["/429", "/429"] {
        let _ = by_rule.clone().oneshot(get(path)).await;
        let _ = by_default.clone().oneshot(get(path)).await;
    }
    assert_eq!(ours.state(), BreakerState::Open);
    assert_eq!(default.state(), BreakerState::Closed);
    let failures = |service: &str| {
        t.scrape().sum(
            "circuit_breaker_calls_total",
            &[("service", service), ("outcome", "failure")],
        )
    };
    assert_eq!(failures("search"), 2.0);
    assert_eq!(failures("search-default"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_time_window_judges_the_failure_rate_of_recent_calls_only() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = metrics
        .breaker("recent")
        .sliding_window(SlidingWindow::Time(Duration::from_secs(60)))
        .minimum_calls(2)
        .failure_rate(0.5)
        .build()
        .unwrap();
    let svc = tower::Layer::layer(&breaker.layer(), inner(Arc::default()));
    let _ = svc.clone().oneshot(fail()).await;
    // A minute later, that failure is out of the window: one success in
    // it, too few calls to judge (with the failure it would be 1 in 2).
    tokio::time::advance(Duration::from_secs(61)).await;
    let _ = svc.clone().oneshot(ok()).await;
    assert_eq!(breaker.state(), BreakerState::Closed);
    let _ = svc.clone().oneshot(fail()).await;
    assert_eq!(breaker.state(), BreakerState::Open, "1 failure in 2");
}

#[tokio::test(start_paused = true)]
async fn the_open_period_grows_with_each_failed_probe_up_to_its_cap() {
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = metrics
        .breaker("capped")
        .consecutive_failures(1)
        .minimum_calls(100)
        .open_for(Duration::from_secs(10))
        .open_backoff(3.0, Duration::from_secs(45))
        .build()
        .unwrap();
    let svc = tower::Layer::layer(&breaker.layer(), inner(Arc::default()));
    let _ = svc.clone().oneshot(fail()).await;
    // 10 s, then 30, then 90 capped at 45, and 45 again.
    for open_for in [10, 30, 45, 45] {
        let Err(BreakerError::Open(open)) = svc.clone().oneshot(ok()).await else {
            panic!("open")
        };
        assert_eq!(open.retry_in, Duration::from_secs(open_for));
        tokio::time::advance(open.retry_in).await;
        // The probe fails: open again, for longer.
        let _ = svc.clone().oneshot(fail()).await;
    }
}

#[test]
fn probes_racing_from_many_threads_are_held_to_the_limit() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let t = telemetry();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let breaker = metrics
        .breaker("raced")
        .consecutive_failures(1)
        .minimum_calls(100)
        .open_for(Duration::from_millis(50))
        .half_open_probes(3)
        .build()
        .unwrap();
    let inner_calls = Arc::new(AtomicUsize::new(0));
    let svc = tower::Layer::layer(&breaker.layer(), inner(inner_calls.clone()));
    rt.block_on(async {
        let _ = svc.clone().oneshot(fail()).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::sleep(Duration::from_millis(60)).await;
        // 64 calls racing on 4 threads; the admitted ones hang until told.
        let (release, _) = tokio::sync::broadcast::channel::<()>(1);
        let racers: Vec<_> = (0..64)
            .map(|_| {
                let mut released = release.subscribe();
                let call: Call = Box::pin(async move {
                    let _ = released.recv().await;
                    Ok(())
                });
                tokio::spawn(svc.clone().oneshot(call))
            })
            .collect();
        // Wait until every racer is decided: three admitted, the rest shed.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while calls_of(&t, "raced", "rejected") < 61.0 || inner_calls.load(Ordering::SeqCst) < 4 {
            assert!(std::time::Instant::now() < deadline, "racers undecided");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(inner_calls.load(Ordering::SeqCst), 1 + 3);
        release.send(()).unwrap();
        let mut admitted = 0;
        for racer in racers {
            admitted += usize::from(racer.await.unwrap().is_ok());
        }
        assert_eq!(admitted, 3);
    });
    assert_eq!(calls_of(&t, "raced", "rejected"), 61.0);
    assert_eq!(calls_of(&t, "raced", "success"), 3.0);
}

fn calls_of(t: &Telemetry, service: &str, outcome: &str) -> f64 {
    t.scrape().sum(
        "circuit_breaker_calls_total",
        &[("service", service), ("outcome", outcome)],
    )
}
