//! The metric catalogue in `docs/catalogue.md` follows from the family
//! declarations: every table there is generated from them, and this test
//! fails (printing the table it expects) when one drifts.

use plimsoll::Naming;
use plimsoll::family::{FamilyDecl, catalogue_table};

fn check(doc: &str, what: &str, families: &[FamilyDecl], naming: Naming) {
    let table = catalogue_table(families, naming);
    assert!(
        doc.contains(&table),
        "docs/catalogue.md lacks the {what} table ({naming:?}); it should read:\n\n{table}"
    );
}

#[test]
fn docs_catalogue_tables_are_the_declarations() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/catalogue.md"))
        .expect("docs/catalogue.md");
    let core: Vec<FamilyDecl> = [
        plimsoll::families::CARDINALITY_OVERFLOW,
        plimsoll::families::BUILD_INFO,
    ]
    .into_iter()
    .chain(plimsoll::families::PROCESS.iter().copied())
    .collect();
    check(&doc, "core", &core, Naming::Prometheus);
    for naming in [Naming::Prometheus, Naming::OpenTelemetry] {
        #[cfg(feature = "redis")]
        check(&doc, "Redis", plimsoll::redis::families::ALL, naming);
        #[cfg(feature = "cache")]
        check(&doc, "cache", plimsoll::cache::families::ALL, naming);
        #[cfg(feature = "resilience")]
        check(
            &doc,
            "resilience",
            plimsoll::resilience::families::ALL,
            naming,
        );
        #[cfg(feature = "slo")]
        check(&doc, "SLO", plimsoll::slo::live::LIVE_FAMILIES, naming);
        #[cfg(feature = "sqlx")]
        check(&doc, "sqlx", plimsoll::sqlx::families::ALL, naming);
        #[cfg(feature = "otlp")]
        check(&doc, "OTLP", plimsoll::otlp::FAMILIES, naming);
        #[cfg(feature = "health")]
        check(&doc, "health", plimsoll::health::FAMILIES, naming);
        #[cfg(feature = "runtime")]
        check(
            &doc,
            "tokio runtime",
            plimsoll::runtime::families::ALL,
            naming,
        );
    }
    #[cfg(feature = "http")]
    {
        let http = plimsoll::http::families::ALL;
        check(&doc, "HTTP, gRPC and outbound", http, Naming::Prometheus);
        check(&doc, "HTTP, gRPC and outbound", http, Naming::OpenTelemetry);
    }
}
