//! The rate limiter on tokio's paused clock: 429s with their headers,
//! refusals counted per tenant, overrides taking effect at run time, gRPC
//! refusals, raw keys.

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::time::Duration;

use plimsoll_core::{Telemetry, Tenant};
use plimsoll_resilience::{LimiterClock, Quota, RateLimiter, ResilienceMetrics};
use tower::{Service, ServiceExt, service_fn};

fn per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).unwrap())
}

fn setup() -> (Telemetry, RateLimiter) {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let limiter = metrics
        .limiter("api", per_second(2))
        .clock(LimiterClock::Tokio)
        .build()
        .unwrap();
    (t, limiter)
}

fn app(
    layer: plimsoll_resilience::RateLimitLayer,
) -> impl Service<http::Request<String>, Response = http::Response<String>, Error = Infallible> + Clone
{
    tower::Layer::layer(
        &layer,
        service_fn(|_req: http::Request<String>| async {
            Ok::<_, Infallible>(http::Response::new("served".to_string()))
        }),
    )
}

fn request(tenant: &Tenant) -> http::Request<String> {
    let mut req = http::Request::get("/api").body(String::new()).unwrap();
    req.extensions_mut().insert(tenant.clone());
    req
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_gets_429_with_its_headers_and_counts_for_its_tenant() {
    let (t, limiter) = setup();
    let svc = app(limiter.layer());
    let acme = t.tenant("acme");
    let globex = t.tenant("globex");
    for _ in 0..2 {
        let ok = svc.clone().oneshot(request(&acme)).await.unwrap();
        assert_eq!(ok.status(), 200);
        assert!(
            ok.headers().get("ratelimit-limit").is_none(),
            "headers on refusals only"
        );
    }
    let refused = svc.clone().oneshot(request(&acme)).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.body(), "", "the inner service was not called");
    let h = refused.headers();
    assert_eq!(h["retry-after"], "1", "500 ms rounds up to 1 s, never 0");
    assert_eq!(h["ratelimit-limit"], "2");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reset"], "1", "the whole burst back in 1 s");
    // Another tenant is served meanwhile.
    assert_eq!(
        svc.clone()
            .oneshot(request(&globex))
            .await
            .unwrap()
            .status(),
        200
    );

    let s = t.scrape();
    let hits = |tenant: &str| {
        s.value(
            "rate_limit_hits_total",
            &[
                ("tenant_id", tenant),
                ("limit_type", "api"),
                ("client_type", "default"),
            ],
        )
    };
    assert_eq!(hits("acme"), Some(1.0));
    assert_eq!(hits("globex"), None);
    let remaining = |tenant: &str| {
        t.scrape().value(
            "api_quota_remaining",
            &[("tenant_id", tenant), ("quota_type", "api")],
        )
    };
    assert_eq!(remaining("acme"), Some(0.0));
    assert_eq!(remaining("globex"), Some(1.0));
    // The quota left is read at the scrape: it comes back with time alone.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(remaining("acme"), Some(1.0));
    assert_eq!(remaining("globex"), Some(2.0));
    assert_eq!(t.scrape().series_count("api_quota_remaining"), 2);

    // Half a second later one request passes again.
    assert_eq!(
        svc.clone().oneshot(request(&acme)).await.unwrap().status(),
        200
    );
    assert_eq!(
        svc.clone().oneshot(request(&acme)).await.unwrap().status(),
        429
    );
}

#[tokio::test(start_paused = true)]
async fn an_override_takes_effect_without_a_restart() {
    let (t, limiter) = setup();
    let svc = app(limiter.layer().headers_on_success(true));
    let bulk = t.tenant("bulk-importer");
    let first = svc.clone().oneshot(request(&bulk)).await.unwrap();
    assert_eq!(first.headers()["ratelimit-limit"], "2");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");

    limiter.set_override(&bulk, "bulk", per_second(5));
    assert_eq!(limiter.quota_of(&bulk), per_second(5));
    let mut passed = 0;
    for _ in 0..6 {
        if svc.clone().oneshot(request(&bulk)).await.unwrap().status() == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, 5, "a fresh burst of 5 under the new tier");
    let s = t.scrape();
    assert_eq!(
        s.value(
            "rate_limit_hits_total",
            &[("tenant_id", "bulk-importer"), ("client_type", "bulk")]
        ),
        Some(1.0)
    );

    limiter.remove_override(&bulk);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(limiter.quota_of(&bulk), per_second(2));
    let codes: Vec<u16> = {
        let mut codes = Vec::new();
        for _ in 0..3 {
            codes.push(
                svc.clone()
                    .oneshot(request(&bulk))
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        codes
    };
    assert_eq!(codes, [200, 200, 429]);

    // The default quota changes too.
    limiter.set_default(per_second(1));
    let other = t.tenant("other");
    assert_eq!(
        svc.clone().oneshot(request(&other)).await.unwrap().status(),
        200
    );
    assert_eq!(
        svc.clone().oneshot(request(&other)).await.unwrap().status(),
        429
    );
}

#[tokio::test(start_paused = true)]
async fn grpc_calls_end_resource_exhausted_and_raw_keys_limit_apart() {
    let (t, limiter) = setup();
    let grpc = app(limiter.grpc_layer());
    let acme = t.tenant("acme");
    for _ in 0..2 {
        grpc.clone().oneshot(request(&acme)).await.unwrap();
    }
    let refused = grpc.clone().oneshot(request(&acme)).await.unwrap();
    assert_eq!(refused.status(), 200, "gRPC answers over HTTP 200");
    assert_eq!(refused.headers()["grpc-status"], "8");
    assert_eq!(refused.headers()["content-type"], "application/grpc");
    assert_eq!(refused.headers()["retry-after"], "1");

    // Keyed by an API key: two keys of one tenant are limited apart, and
    // the series carry the tenant.
    let keyed = app(limiter
        .layer()
        .key_by_header(http::HeaderName::from_static("x-api-key")));
    let with_key = |key: &str| {
        let mut req = request(&t.tenant("globex"));
        req.headers_mut().insert("x-api-key", key.parse().unwrap());
        req
    };
    let mut codes = Vec::new();
    for key in ["k1", "k1", "k1", "k2", "k2"] {
        codes.push(
            keyed
                .clone()
                .oneshot(with_key(key))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 429, 200, 200]);
    assert_eq!(
        t.scrape()
            .value("rate_limit_hits_total", &[("tenant_id", "globex")]),
        Some(1.0)
    );
}

#[test]
fn bad_settings_are_build_errors_naming_the_field() {
    let (t, _) = setup();
    let metrics = ResilienceMetrics::new(&Telemetry::builder().build().unwrap()).unwrap();
    let err = metrics
        .limiter("api", per_second(1))
        .cleanup_every(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "cleanup_every: must be greater than zero");
    drop(t);
}

#[test]
fn a_raw_key_never_shares_a_tenants_state() {
    let (t, limiter) = setup();
    let acme = t.tenant("acme");
    limiter.set_override(&acme, "big", per_second(100));
    // A client sending the API key "acme" gets the default quota and its own state.
    let raw = plimsoll_resilience::LimitKey::from("acme");
    assert_eq!(limiter.quota_of(raw.clone()), per_second(2));
    assert!(limiter.check_key(&raw, &acme).allowed);
    assert!(limiter.check_key(&raw, &acme).allowed);
    assert!(!limiter.check_key(&raw, &acme).allowed);
    assert!(
        limiter.check(&acme).allowed,
        "the tenant's own bucket is untouched"
    );
    assert_eq!(limiter.keys(), 2);
}

#[tokio::test(start_paused = true)]
async fn raw_keys_report_the_quota_of_their_tenant_and_drop_with_the_cleanup() {
    let (t, limiter) = setup();
    let acme = t.tenant("acme");
    let (first, second) = (
        plimsoll_resilience::LimitKey::from("key-1"),
        plimsoll_resilience::LimitKey::from("key-2"),
    );
    assert!(limiter.check_key(&first, &acme).allowed);
    assert!(limiter.check_key(&first, &acme).allowed);
    assert!(limiter.check_key(&second, &acme).allowed);
    let remaining = || {
        t.scrape().value(
            "api_quota_remaining",
            &[("tenant_id", "acme"), ("quota_type", "api")],
        )
    };
    assert_eq!(remaining(), Some(0.0), "the least of the tenant's keys");
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(remaining(), Some(1.0));
    // Once every key's burst is back and a cleanup has run, no series is left.
    tokio::time::advance(Duration::from_millis(1_500)).await;
    limiter.clean();
    assert_eq!(limiter.keys(), 0);
    assert_eq!(t.scrape().series_count("api_quota_remaining"), 0);
}

#[test]
fn a_tenant_of_another_telemetry_is_the_tenant_of_the_same_id() {
    let (t, limiter) = setup();
    let elsewhere = Telemetry::builder().build().unwrap();
    let foreign = elsewhere.tenant("acme");
    let acme = t.tenant("acme");
    // An override given through either is the tenant's, read through either.
    limiter.set_override(&foreign, "small", per_second(1));
    assert_eq!(limiter.quota_of(&acme), per_second(1));
    assert!(limiter.check(&foreign).allowed);
    assert!(!limiter.check(&acme).allowed, "one state, its quota of 1");
    assert!(!limiter.check(&foreign).allowed);
    // Both refusals are the tenant's, whichever telemetry's tenant asked.
    let s = t.scrape();
    assert_eq!(
        s.sum("rate_limit_hits_total", &[("tenant_id", "acme")]),
        2.0
    );
    assert_eq!(
        s.sum("rate_limit_hits_total", &[("tenant_id", "__unknown__")]),
        0.0
    );
    limiter.remove_override(&foreign);
    assert_eq!(limiter.quota_of(&acme), per_second(2));
    limiter.set_override(t.tenant("globex"), "big", per_second(9));
    assert_eq!(
        limiter.quota_of(&foreign),
        per_second(2),
        "back on the default, whatever other overrides there are"
    );
}

#[test]
fn tenants_past_the_bound_keep_the_limit_they_are_under() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_max_tenants(1)
        .build()
        .unwrap();
    let metrics = ResilienceMetrics::new(&t).unwrap();
    let limiter = |name: &str, n: u32| {
        let quota = per_second(n);
        metrics.limiter(name, quota).build().unwrap()
    };
    let (api, search) = (limiter("api", 3), limiter("search", 5));
    let (acme, globex, initech) = (t.tenant("acme"), t.tenant("globex"), t.tenant("initech"));
    assert_eq!(globex.as_str(), "__other__");
    api.check(&acme);
    api.check(&globex);
    api.check(&initech);
    search.check(&globex);
    let s = t.scrape();
    let remaining = |tenant: &str, limit: &str| {
        s.value(
            "api_quota_remaining",
            &[("tenant_id", tenant), ("quota_type", limit)],
        )
    };
    assert_eq!(remaining("acme", "api"), Some(2.0));
    // globex and initech share `__other__`'s state: 3 - 2 left under api.
    assert_eq!(remaining("__other__", "api"), Some(1.0));
    assert_eq!(remaining("__other__", "search"), Some(4.0));
    assert_eq!(s.series_count("api_quota_remaining"), 3);
}

#[test]
fn the_cleanup_task_starts_again_when_its_runtime_is_gone() {
    let t = Telemetry::builder().build().unwrap();
    let limiter = ResilienceMetrics::new(&t)
        .unwrap()
        .limiter("api", per_second(2))
        .clock(LimiterClock::Tokio)
        .cleanup_every(Duration::from_secs(5))
        .build()
        .unwrap();
    let acme = t.tenant("acme");
    let warm_up = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    warm_up.block_on(async { limiter.check(&acme) }); // starts the task here
    drop(warm_up); // …and it dies with this runtime
    let serving = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    serving.block_on(async {
        let key = plimsoll_resilience::LimitKey::from("k");
        limiter.check_key(&key, &acme);
        assert_eq!(limiter.keys(), 2);
        tokio::time::sleep(Duration::from_secs(11)).await;
        tokio::task::yield_now().await;
        assert_eq!(limiter.keys(), 0, "cleaned by the task started again");
    });
}

#[test]
fn a_limiter_plimsoll_does_not_run_reports_the_same_series() {
    let other = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let metrics = ResilienceMetrics::new(&other).unwrap();
    let theirs = metrics.report_limiter("search");
    let acme = other.tenant("acme");
    theirs.refused(&acme, "free");
    theirs.refused(&acme, "free");
    theirs.remaining(&acme, 7);
    let s = other.scrape();
    assert_eq!(
        s.value(
            "rate_limit_hits_total",
            &[
                ("tenant_id", "acme"),
                ("limit_type", "search"),
                ("client_type", "free")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "api_quota_remaining",
            &[("tenant_id", "acme"), ("quota_type", "search")]
        ),
        Some(7.0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_tenant_moved_to_another_tier_reports_that_tier_s_quota_alone() {
    let (t, limiter) = setup();
    let acme = t.tenant("acme");
    // Spent on the default quota of 2…
    assert!(limiter.check(&acme).allowed && limiter.check(&acme).allowed);
    assert!(!limiter.check(&acme).allowed);
    // …then moved: its state in the old tier is no longer its quota.
    limiter.set_override(&acme, "bulk", per_second(5));
    assert!(limiter.check(&acme).allowed);
    let s = t.scrape();
    assert_eq!(
        s.value(
            "api_quota_remaining",
            &[("tenant_id", "acme"), ("quota_type", "api")]
        ),
        Some(4.0)
    );
    assert_eq!(s.series_count("api_quota_remaining"), 1);
}
