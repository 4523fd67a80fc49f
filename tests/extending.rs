//! A small integration built from the kit's public parts only: the one
//! `docs/extending.md` walks through. A message-queue consumer gets
//! per-tenant, bounded metrics for every message it handles, a scrape-time
//! queue depth, and a lag check that reads its own counters back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use plimsoll::classify::Outcome;
use plimsoll::family::{FamilyDecl, LabelDecl};
use plimsoll::operation::{Completed, Operation, RecordOperation};
use plimsoll::scope::{self, Scope};
use plimsoll::{
    Counter, Format, Histogram, LabelGuard, Naming, RegisterError, Telemetry, Tenant,
    impl_label_set, label_key,
};

// 1. The families, declared once: names under both schemes, labels, bounds.

const QUEUE: LabelDecl = LabelDecl::open("queue", 20).with_otel_name("messaging_destination_name");

/// Messages handled, by queue and outcome.
const MESSAGES: FamilyDecl = FamilyDecl::histogram(
    "queue_message_duration_seconds",
    "Time to handle one message, by queue and outcome.",
)
.with_otel_name("messaging_process_duration_seconds")
.with_unit("seconds")
.with_labels(&[QUEUE, LabelDecl::closed("outcome")]);

/// Messages waiting, read at scrape time.
const DEPTH: FamilyDecl = FamilyDecl::gauge("queue_depth", "Messages waiting, by queue.")
    .with_otel_name("messaging_queue_depth")
    .with_labels(&[QUEUE]);

/// Messages given up on after their last retry.
const DEAD_LETTERS: FamilyDecl = FamilyDecl::counter(
    "queue_dead_letters_total",
    "Messages dead-lettered, by queue.",
)
.with_labels(&[QUEUE]);

// 2. Label sets in the declared order, with borrowed keys.

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct MessageLabels {
    queue: Arc<str>,
    outcome: Outcome,
}
impl_label_set!(MessageLabels { queue, outcome });
label_key!(struct MessageKey for MessageLabels { queue: Arc<str>, outcome: Outcome });

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct QueueLabels {
    queue: Arc<str>,
}
impl_label_set!(QueueLabels { queue });

// 3. The integration: registers its families, bounds its open label, and
//    records each message through the operation guard.

#[derive(Clone, Debug)]
struct Consumer {
    telemetry: Telemetry,
    messages: Histogram<MessageLabels>,
    dead_letters: Counter<QueueLabels>,
    queues: LabelGuard,
}

impl RecordOperation for Consumer {
    type Labels = Arc<str>; // the queue, admitted through its bound

    fn record(&self, done: Completed<'_, Arc<str>>) {
        let key = MessageKey {
            queue: &done.labels,
            outcome: done.outcome,
        };
        self.messages
            .observe_with_exemplar(done.tenant, &key, done.seconds, done.trace);
    }
}

/// Why a message failed, as the consumer's own error type.
#[derive(Debug)]
enum HandleError {
    Malformed,
    TimedOut,
}

impl Consumer {
    fn new(telemetry: &Telemetry, depth: Arc<AtomicUsize>) -> Result<Self, RegisterError> {
        telemetry.declare_scraped(&DEPTH, move |out| {
            let labels = QueueLabels {
                queue: "orders".into(),
            };
            let _ = out.set(
                &Tenant::system(),
                &labels,
                depth.load(Ordering::Relaxed) as f64,
            );
        })?;
        Ok(Self {
            telemetry: telemetry.clone(),
            messages: telemetry.declare(&MESSAGES)?,
            dead_letters: telemetry.declare(&DEAD_LETTERS)?,
            queues: telemetry.label_guard(&MESSAGES, "queue")?,
        })
    }

    /// Handles one message for `tenant_id` (from the message's headers):
    /// the handler runs in the tenant's scope, so whatever it records (a
    /// query, an outbound call) carries the tenant too.
    async fn handle<F>(&self, tenant_id: &str, queue: &str, handler: F) -> Result<(), HandleError>
    where
        F: std::future::Future<Output = Result<(), HandleError>>,
    {
        let tenant = self.telemetry.tenant(tenant_id);
        let queue = self.queues.admit(queue);
        let operation = Operation::start_for(
            tenant.clone(),
            self.telemetry.current_trace(),
            self.clone(),
            queue,
        );
        Scope::new(tenant)
            .run(operation.time(handler, |result| match result {
                Ok(()) => Outcome::Ok,
                Err(HandleError::Malformed) => Outcome::Error("malformed"),
                Err(HandleError::TimedOut) => Outcome::Timeout,
            }))
            .await
    }

    /// Dead-letters a message of the current tenant.
    fn dead_letter(&self, queue: &str) {
        let labels = QueueLabels {
            queue: self.queues.admit(queue),
        };
        self.dead_letters.inc(&scope::current_tenant(), &labels);
    }

    /// Failed messages of one tenant so far, read back in process (an
    /// alert rule would read the same from Prometheus).
    fn failures(&self, tenant: &str) -> u64 {
        self.messages
            .total(|s| s.tenant() == tenant && s.labels().is_none_or(|l| l.outcome.is_failure()))
            .count()
    }
}

fn telemetry(naming: Naming) -> Telemetry {
    Telemetry::builder()
        .with_naming(naming)
        .with_process_metrics(false)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_consumer_built_from_the_kit_records_per_tenant_bounded_metrics() {
    let depth = Arc::new(AtomicUsize::new(3));
    let t = telemetry(Naming::Prometheus);
    let consumer = Consumer::new(&t, depth.clone()).unwrap();

    consumer
        .handle("acme", "orders", async { Ok(()) })
        .await
        .unwrap();
    let _ = consumer
        .handle("acme", "orders", async { Err(HandleError::Malformed) })
        .await;
    let _ = consumer
        .handle("globex", "orders", async {
            // Deep inside the handler, the tenant is known without being passed.
            consumer.dead_letter("orders");
            Err(HandleError::TimedOut)
        })
        .await;
    // A handler dropped half-way (the consumer shut down) still counts.
    {
        let pending = consumer.handle("acme", "orders", std::future::pending());
        let _ = tokio::time::timeout(std::time::Duration::from_millis(5), pending).await;
    }
    // Queues past the bound of 20 share one `__other__` label.
    for i in 0..100 {
        consumer
            .handle("acme", &format!("tmp-{i}"), async { Ok(()) })
            .await
            .unwrap();
    }

    let body = t.encode(Format::Prometheus);
    for line in [
        "queue_message_duration_seconds_count{tenant_id=\"acme\",queue=\"orders\",outcome=\"ok\"} 1\n",
        "queue_message_duration_seconds_count{tenant_id=\"acme\",queue=\"orders\",outcome=\"malformed\"} 1\n",
        "queue_message_duration_seconds_count{tenant_id=\"acme\",queue=\"orders\",outcome=\"cancelled\"} 1\n",
        "queue_message_duration_seconds_count{tenant_id=\"globex\",queue=\"orders\",outcome=\"timeout\"} 1\n",
        "queue_dead_letters_total{tenant_id=\"globex\",queue=\"orders\"} 1\n",
        "queue_depth{tenant_id=\"__system__\",queue=\"orders\"} 3\n",
        "queue_message_duration_seconds_count{tenant_id=\"acme\",queue=\"__other__\",outcome=\"ok\"} 81\n",
        "plimsoll_cardinality_overflow_total{tenant_id=\"__system__\",metric=\"queue_message_duration_seconds\",label=\"queue\"} 81\n",
    ] {
        assert!(body.contains(line), "missing {line}\n{body}");
    }
    assert_eq!(consumer.failures("acme"), 2);
    assert_eq!(consumer.failures("globex"), 1);
    depth.store(9, Ordering::Relaxed);
    assert!(
        t.encode(Format::Prometheus)
            .contains("queue_depth{tenant_id=\"__system__\",queue=\"orders\"} 9\n")
    );
}

#[tokio::test]
async fn the_same_integration_follows_the_opentelemetry_naming() {
    let t = telemetry(Naming::OpenTelemetry);
    let consumer = Consumer::new(&t, Arc::new(AtomicUsize::new(1))).unwrap();
    consumer
        .handle("acme", "orders", async { Ok(()) })
        .await
        .unwrap();
    let body = t.encode(Format::Prometheus);
    for line in [
        "messaging_process_duration_seconds_count{tenant_id=\"acme\",messaging_destination_name=\"orders\",outcome=\"ok\"} 1\n",
        "messaging_queue_depth{tenant_id=\"__system__\",messaging_destination_name=\"orders\"} 1\n",
    ] {
        assert!(body.contains(line), "missing {line}\n{body}");
    }
}

#[test]
fn a_second_consumer_on_one_telemetry_is_refused_for_its_scrape_family() {
    let t = telemetry(Naming::Prometheus);
    Consumer::new(&t, Arc::default()).unwrap();
    assert_eq!(
        Consumer::new(&t, Arc::default()).unwrap_err(),
        RegisterError::Conflict("queue_depth".into())
    );
}
