//! What every bench's `main` does, written once.

/// Declares the bench's `main`: each target measured for `$secs` seconds
/// after a one-second warm-up, then criterion's summary.
macro_rules! bench_main {
    ($secs:expr, $($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = criterion::Criterion::default()
                .warm_up_time(std::time::Duration::from_secs(1))
                .measurement_time(std::time::Duration::from_secs($secs));
            targets = $($target),+
        }

        fn main() {
            benches();
            criterion::Criterion::default()
                .configure_from_args()
                .final_summary();
        }
    };
}

pub(crate) use bench_main;

/// A current-thread runtime with I/O and time, for benches that await.
#[allow(dead_code)]
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// A telemetry without process metrics (nothing but what the bench records).
#[allow(dead_code)]
pub(crate) fn telemetry() -> plimsoll::Telemetry {
    plimsoll::Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .expect("default settings are valid")
}

/// Runs `iters` requests `GET /api/v1/orders/{id}` (tenant header `acme`)
/// through `app` on `rt`, each body read to the end; the time they took.
#[allow(dead_code)]
pub(crate) fn run_orders(
    rt: &tokio::runtime::Runtime,
    app: &axum::Router,
    iters: u64,
) -> std::time::Duration {
    use tower::ServiceExt;
    rt.block_on(async {
        let start = std::time::Instant::now();
        for i in 0..iters {
            let req = http::Request::get(format!("/api/v1/orders/{}", i % 64))
                .header("x-tenant-id", "acme")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(req).await.unwrap();
            std::hint::black_box(
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap(),
            );
        }
        start.elapsed()
    })
}

/// One variant of an interleaved comparison: its name and a round of it
/// (nanoseconds per operation).
#[allow(dead_code)]
pub(crate) type Round<'a> = (&'a str, Box<dyn FnMut() -> f64 + 'a>);

/// Figures robust to a noisy machine: runs every variant's round in turn,
/// `rounds` times after one warm-up round each, and prints each variant's
/// median cost and the median of its differences from the first variant's
/// round beside it (the baseline). Returns those median differences.
#[allow(dead_code)]
pub(crate) fn interleaved(title: &str, rounds: usize, variants: &mut [Round<'_>]) -> Vec<f64> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for (_, round) in variants.iter_mut() {
        round();
    }
    for r in 0..rounds {
        // Every other round in the reverse order, so that no variant always
        // runs first.
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            samples[i].push((variants[i].1)());
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(samples[0].clone());
    let (first, _) = &variants[0];
    println!("{title}: interleaved medians over {rounds} rounds");
    let mut added = Vec::new();
    for ((name, _), s) in variants.iter().zip(&samples) {
        let diff = median(s.iter().zip(&samples[0]).map(|(v, b)| v - b).collect());
        println!(
            "  {name:<12} {:>9.1} ns   {diff:+8.1} ns per op vs {first} ({:+5.1}%)",
            median(s.clone()),
            diff / base * 100.0
        );
        added.push(diff);
    }
    added
}

/// `GET /api/v1/orders/{id}` behind the RED layer (tenant from the
/// `x-tenant-id` header): the request `run_orders` sends.
#[cfg(feature = "http")]
#[allow(dead_code)]
pub(crate) fn orders_app(t: &plimsoll::Telemetry) -> axum::Router {
    async fn order(axum::extract::Path(id): axum::extract::Path<u64>) -> String {
        format!("order {id}")
    }
    let red = plimsoll::http::RedMetricsLayer::builder(t)
        .with_tenant_header("x-tenant-id")
        .build()
        .expect("the RED layer's settings are valid");
    axum::Router::new()
        .route("/api/v1/orders/{id}", axum::routing::get(order))
        .layer(red)
}
