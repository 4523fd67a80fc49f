//! Bounds speak up: the first time a bound is reached, one `tracing`
//! warning names the metric, the label and the bound. In its own test
//! binary: `tracing` caches per call site whether anyone listens, and other
//! tests recording on other threads without a subscriber would race it.

#[path = "support/capture.rs"]
mod capture;

use capture::{Capture, Captured};
use plimsoll::family::{FamilyDecl, LabelDecl};
use plimsoll::{Counter, Telemetry, impl_label_set};

const EMAILS_SENT: FamilyDecl = FamilyDecl::counter("emails_sent_total", "Emails sent.")
    .with_labels(&[LabelDecl::open("campaign", 100)]);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct CampaignLabels {
    campaign: String,
}
impl_label_set!(CampaignLabels { campaign });

#[test]
fn a_reached_bound_logs_one_warning_naming_metric_label_and_bound() {
    let capture = Capture::default();
    let events = capture.events.clone();
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_family_max_series(&EMAILS_SENT, 2)
        .build()
        .unwrap();
    let emails: Counter<CampaignLabels> = t.declare(&EMAILS_SENT).unwrap();
    let acme = t.tenant("acme");
    tracing::subscriber::with_default(capture, || {
        // Other tests of this binary hit the same callsite on other threads
        // with no subscriber at all: recompute its interest with ours.
        tracing::callsite::rebuild_interest_cache();
        for i in 0..7 {
            emails.inc(
                &acme,
                &CampaignLabels {
                    campaign: format!("c{i}"),
                },
            );
        }
    });
    assert_eq!(emails.series_count(), 3, "2 series and acme's __other__");
    assert_eq!(
        t.scrape().value(
            "plimsoll_cardinality_overflow_total",
            &[("metric", "emails_sent_total"), ("label", "campaign")]
        ),
        Some(5.0)
    );
    let events = events.lock().unwrap();
    let warnings: Vec<&Captured> = events
        .iter()
        .filter(|e| e.level == tracing::Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{events:#?}");
    let warning = warnings[0];
    assert_eq!(warning.target, "plimsoll");
    assert_eq!(
        warning.fields.get("metric").map(String::as_str),
        Some("emails_sent_total")
    );
    assert_eq!(
        warning.fields.get("label").map(String::as_str),
        Some("campaign")
    );
    assert_eq!(warning.fields.get("bound").map(String::as_str), Some("2"));
    assert!(warning.fields.contains_key("message"), "{warning:#?}");
}
