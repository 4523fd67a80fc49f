//! Bounds speak up: the first time a bound is reached, one `tracing`
//! warning names the metric, the label and the bound. In its own test
//! binary: `tracing` caches per call site whether anyone listens, and other
//! tests recording on other threads without a subscriber would race it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use plimsoll::family::{FamilyDecl, LabelDecl};
use plimsoll::{Counter, Telemetry, impl_label_set};

/// One event as the subscriber saw it.
#[derive(Clone, Debug)]
struct Captured {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

/// A subscriber that keeps every event.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.to_string());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().into(),
            fields: fields.0,
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

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
