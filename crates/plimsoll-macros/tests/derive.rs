//! Behaviour of the derives: label names, exposition, borrowed keys and the
//! bound a closed set holds against arbitrary input.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use plimsoll_core::{ClosedLabel, Format, LabelKey, LabelSet, Telemetry};
use plimsoll_macros::{LabelSet, LabelValue};

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, LabelValue)]
enum Method {
    #[label(value = "GET")]
    Get,
    #[label(value = "POST")]
    Post,
    #[label(value = "_OTHER")]
    Other,
}

/// The catch-all is marked, and a variant named `Other` is an ordinary one.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, LabelValue)]
enum StatusClass {
    Success,
    ClientError,
    ServerError,
    Other,
    #[label(other)]
    Unclassified,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, LabelSet)]
#[label_set(key = RequestKey)]
struct Request {
    method: Method,
    route: Arc<str>,
    #[label(name = "status")]
    status_code: u16,
    class: StatusClass,
    peer: String,
}

/// A raw identifier labels without its `r#`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, LabelSet)]
struct Query {
    r#type: &'static str,
    cached: bool,
}

fn telemetry() -> Telemetry {
    Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .expect("default telemetry builds")
}

fn request() -> Request {
    Request {
        method: Method::Get,
        route: "/orders/{id}".into(),
        status_code: 200,
        class: StatusClass::Success,
        peer: "billing".into(),
    }
}

fn key() -> RequestKey<'static> {
    RequestKey {
        method: Method::Get,
        route: "/orders/{id}",
        status_code: 200,
        class: StatusClass::Success,
        peer: "billing",
    }
}

#[test]
fn names_are_the_fields_in_order_with_renames() {
    assert_eq!(
        Request::NAMES,
        ["method", "route", "status", "class", "peer"]
    );
    assert_eq!(Query::NAMES, ["type", "cached"]);
}

#[test]
fn values_default_to_snake_case_and_follow_overrides() {
    assert_eq!(Method::VALUES, ["GET", "POST", "_OTHER"]);
    assert_eq!(
        StatusClass::VALUES,
        [
            "success",
            "client_error",
            "server_error",
            "other",
            "unclassified"
        ]
    );
    assert_eq!(Method::Post.as_str(), "POST");
    assert_eq!(StatusClass::ClientError.as_str(), "client_error");
}

#[test]
fn from_label_maps_every_value_to_its_variant_and_the_rest_to_the_catch_all() {
    for method in [Method::Get, Method::Post, Method::Other] {
        assert_eq!(Method::from_label(method.as_str()), method);
    }
    for class in [
        StatusClass::Success,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::Other,
        StatusClass::Unclassified,
    ] {
        assert_eq!(StatusClass::from_label(class.as_str()), class);
    }
    // Matching is exact: neither case nor whitespace is forgiven.
    for unknown in ["get", "Get", "GET ", "", "PATCH", "Other"] {
        assert_eq!(Method::from_label(unknown), Method::Other, "{unknown:?}");
    }
    assert_eq!(StatusClass::from_label("teapot"), StatusClass::Unclassified);
    assert_eq!(StatusClass::from_label("Other"), StatusClass::Unclassified);
}

#[test]
fn exposition_has_renamed_labels_and_overridden_values() {
    let telemetry = telemetry();
    let requests = telemetry
        .counter::<Request>("requests", "Requests served.")
        .unwrap();
    let acme = telemetry.tenant("acme");
    requests.inc(&acme, &request());
    requests.inc_by(
        &acme,
        &Request {
            method: Method::from_label("DELETE"),
            status_code: 503,
            class: StatusClass::from_label("server_error"),
            ..request()
        },
        3,
    );
    let queries = telemetry
        .counter::<Query>("queries", "Queries run.")
        .unwrap();
    queries.inc(
        &acme,
        &Query {
            r#type: "select",
            cached: true,
        },
    );

    let body = telemetry.encode(Format::Prometheus);
    for line in [
        r#"requests_total{tenant_id="acme",method="GET",route="/orders/{id}",status="200",class="success",peer="billing"} 1"#,
        r#"requests_total{tenant_id="acme",method="_OTHER",route="/orders/{id}",status="503",class="server_error",peer="billing"} 3"#,
        r#"queries_total{tenant_id="acme",type="select",cached="true"} 1"#,
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing line {line}\nin:\n{body}"
        );
    }
}

#[test]
fn key_hashes_and_matches_like_the_owned_set() {
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    assert_eq!(hasher.hash_one(key()), hasher.hash_one(request()));
    assert!(key().matches(&request()));
    assert_eq!(key().to_labels(), request());

    // Each field takes part in both.
    let others = [
        RequestKey {
            method: Method::Post,
            ..key()
        },
        RequestKey {
            route: "/orders",
            ..key()
        },
        RequestKey {
            status_code: 201,
            ..key()
        },
        RequestKey {
            class: StatusClass::Other,
            ..key()
        },
        RequestKey {
            peer: "search",
            ..key()
        },
    ];
    for other in others {
        assert!(!other.matches(&request()), "{other:?}");
        assert_eq!(hasher.hash_one(other), hasher.hash_one(other.to_labels()));
        assert_ne!(hasher.hash_one(other), hasher.hash_one(request()));
    }
}

#[test]
fn recording_through_key_and_owned_set_lands_in_one_series() {
    let telemetry = telemetry();
    let requests = telemetry
        .counter::<Request>("requests", "Requests served.")
        .unwrap();
    let acme = telemetry.tenant("acme");
    requests.inc(&acme, &key());
    requests.inc(&acme, &request());

    assert_eq!(requests.series_count(), 1);
    assert_eq!(requests.get(&acme, &key()), 2);
    assert_eq!(requests.get(&acme, &request()), 2);
    let body = telemetry.encode(Format::Prometheus);
    assert!(body.contains(
        "requests_total{tenant_id=\"acme\",method=\"GET\",route=\"/orders/{id}\",status=\"200\",class=\"success\",peer=\"billing\"} 2\n"
    ));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, LabelSet)]
#[label_set(key = ByClassKey)]
struct ByClass {
    class: StatusClass,
}

#[test]
fn a_closed_set_holds_its_bound_against_arbitrary_input() {
    let telemetry = telemetry();
    let calls = telemetry.counter::<ByClass>("calls", "Calls.").unwrap();
    let acme = telemetry.tenant("acme");

    // 100,000 distinct inputs from a xorshift generator, and every 1000th
    // time one known value too, so that every variant is seen.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..100_000_u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let input = format!("{state:016x}-{i}");
        let class = StatusClass::from_label(&input);
        assert_eq!(class, StatusClass::Unclassified, "{input}");
        calls.inc(&acme, &ByClassKey { class });
        if i % 1000 == 0 {
            let known = StatusClass::VALUES[(i / 1000) as usize % StatusClass::VALUES.len()];
            let class = StatusClass::from_label(known);
            assert_eq!(class.as_str(), known);
            calls.inc(&acme, &ByClassKey { class });
        }
    }

    assert_eq!(calls.series_count(), StatusClass::VALUES.len());
    let unclassified = ByClassKey {
        class: StatusClass::Unclassified,
    };
    // 20 times each known value, 100,000 unknown ones.
    assert_eq!(calls.get(&acme, &unclassified), 100_020);
    let body = telemetry.encode(Format::Prometheus);
    assert!(body.contains("calls_total{tenant_id=\"acme\",class=\"unclassified\"} 100020\n"));
    assert!(body.contains("calls_total{tenant_id=\"acme\",class=\"client_error\"} 20\n"));
    assert!(!body.contains("__other__"), "{body}");
}

/// A path that re-exports all of `plimsoll_core`, as the `plimsoll` facade
/// does.
mod reexport {
    pub(crate) use plimsoll_core::*;
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, LabelValue)]
#[plimsoll(crate = crate::reexport)]
enum Tier {
    Free,
    Paid,
    Other,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, LabelSet)]
#[plimsoll(crate = crate::reexport)]
#[label_set(key = PlanKey)]
struct Plan {
    tier: Tier,
    region: String,
}

#[test]
fn crate_path_names_a_reexport() {
    let telemetry = telemetry();
    let plans = telemetry.counter::<Plan>("plans", "Plans.").unwrap();
    let acme = telemetry.tenant("acme");
    plans.inc(
        &acme,
        &PlanKey {
            tier: Tier::from_label("paid"),
            region: "eu",
        },
    );
    let body = telemetry.encode(Format::Prometheus);
    assert!(body.contains("plans_total{tenant_id=\"acme\",tier=\"paid\",region=\"eu\"} 1\n"));
}

/// A stand-in for `plimsoll_core` with its own traits and value writer:
/// this only compiles, and writes into the stand-in, if the derive follows
/// `#[plimsoll(crate = ..)]` everywhere rather than naming `::plimsoll_core`.
mod stand_in {
    #[derive(Debug)]
    pub(crate) struct LabelValues<'a>(pub(crate) &'a mut Vec<String>);

    pub(crate) trait LabelValue {
        fn write_value(&self, out: &mut LabelValues<'_>);
    }

    impl LabelValue for &'static str {
        fn write_value(&self, out: &mut LabelValues<'_>) {
            out.0.push(format!("stand-in {self}"));
        }
    }

    pub(crate) trait LabelSet {
        const NAMES: &'static [&'static str];
        fn write_values(&self, out: &mut LabelValues<'_>);
    }
}

#[derive(LabelSet)]
#[plimsoll(crate = crate::stand_in)]
struct NotHashable {
    #[label(name = "q")]
    queue: &'static str,
    shard: &'static str,
}

#[test]
fn crate_path_replaces_plimsoll_core_everywhere() {
    use stand_in::LabelSet as _;

    assert_eq!(NotHashable::NAMES, ["q", "shard"]);
    let mut written = Vec::new();
    NotHashable {
        queue: "emails",
        shard: "7",
    }
    .write_values(&mut stand_in::LabelValues(&mut written));
    assert_eq!(written, ["stand-in emails", "stand-in 7"]);
}
