//! An event type this version does not know yet (the writing service deployed it first): its
//! aggregate is skipped — counted as `UnknownEventTypes`, audited, never a batch failure, the
//! other aggregates of the batch snapshotted as usual — and snapshotted again by itself from
//! its next events once the code that knows the type is deployed.

mod support;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use snapshot_core::domain::Aggregate;
use snapshot_core::testing::audit::AuditCapture;
use snapshot_core::{EventEnvelope, Registry};
use snapshotter::metrics::{FAILURES, POISON_RECORDS, SNAPSHOTS_CREATED, UNKNOWN_EVENT_TYPES};
use snapshotter::{Action, Snapshotter};
use support::{failures, metric, sample, sample_events, settings, Harness};

const UNKNOWN: &str = include_str!("../../../events/snapshotter/unknown-event-type.json");

#[tokio::test]
async fn an_unknown_event_type_skips_its_aggregate_with_a_metric_and_an_audit_record_and_fails_nothing(
) {
    let h = Harness::count(1);
    let batch = sample(UNKNOWN);
    // The writing service stored all of them, `StockTeleported` (item-2002#2) included.
    h.append(&sample_events(&batch)).await;
    let capture = AuditCapture::start();
    let report = h.snapshotter.process(batch, Some("req-unknown")).await;
    let audit = capture.text();

    assert!(
        failures(&report).is_empty(),
        "not a batch failure: {:?}",
        failures(&report)
    );
    assert_eq!(metric(&report, UNKNOWN_EVENT_TYPES), 1);
    assert_eq!(metric(&report, POISON_RECORDS), 0);
    assert_eq!(metric(&report, FAILURES), 0);
    // The other aggregate of the batch is snapshotted as usual.
    assert_eq!(h.snapshot_versions("item-2001"), vec![2]);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 1);
    assert!(h.snapshot_versions("item-2002").is_empty());
    let skipped = report
        .outcomes
        .iter()
        .find(|o| o.aggregate_id() == "item-2002")
        .expect("item-2002 evaluated");
    assert_eq!(
        skipped.result().as_ref().unwrap(),
        &Action::UnknownEventType {
            sequence: Some(2),
            event_type: "StockTeleported".to_owned(),
        }
    );
    let record = audit
        .lines()
        .find(|l| l.contains("\"target\":\"audit\"") && l.contains("item-2002"))
        .unwrap_or_else(|| panic!("no audit record of item-2002 in:\n{audit}"));
    for expected in ["StockTeleported", "sequence 2", "rejected", "req-unknown"] {
        assert!(
            record.to_lowercase().contains(&expected.to_lowercase()),
            "{expected} missing from {record}"
        );
    }
}

/// A counter as deployed before (`v1`) and after (`v2`) the code learnt `Doubled`.
mod counter {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct By {
        pub by: i64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Nothing {}

    macro_rules! counter {
        ($module:ident, $($variant:ident($payload:ty)),+) => {
            pub mod $module {
                use super::*;

                snapshot_core::domain_events! {
                    #[derive(Debug, Clone, PartialEq, Eq)]
                    pub enum CounterEvent { $($variant($payload)),+ }
                }

                #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
                pub struct Counter {
                    pub id: String,
                    pub value: i64,
                }

                impl Aggregate for Counter {
                    const TYPE: &'static str = "COUNTER";
                    const SCHEMA_VERSION: u32 = 1;
                    type Event = CounterEvent;

                    fn initial(id: &str) -> Self {
                        Self { id: id.to_owned(), value: 0 }
                    }

                    fn aggregate_id(&self) -> &str {
                        &self.id
                    }

                    fn apply(&mut self, event: &CounterEvent) {
                        #[allow(unreachable_patterns)]
                        match event {
                            CounterEvent::Incremented(e) => self.value = self.value.saturating_add(e.by),
                            _ => self.value = self.value.saturating_mul(2),
                        }
                    }
                }
            }
        };
    }

    counter!(v1, Incremented(By));
    counter!(v2, Incremented(By), Doubled(Nothing));

    pub fn incremented(id: &str, sequence: u64, by: i64) -> EventEnvelope {
        EventEnvelope::wrap::<v2::Counter>(
            id,
            sequence,
            &v2::CounterEvent::Incremented(By { by }),
            1_717_200_000_000 + sequence as i64,
            None,
        )
    }

    pub fn doubled(id: &str, sequence: u64) -> EventEnvelope {
        EventEnvelope::wrap::<v2::Counter>(
            id,
            sequence,
            &v2::CounterEvent::Doubled(Nothing {}),
            1_717_200_000_000 + sequence as i64,
            None,
        )
    }
}

#[tokio::test]
async fn the_skipped_aggregate_is_snapshotted_again_by_itself_once_the_code_knows_the_type() {
    use counter::{doubled, incremented, v1, v2};
    let mut h = Harness::count(2);
    let vars = [("SNAPSHOT_STRATEGY", "count"), ("SNAPSHOT_THRESHOLD", "2")];
    let before = Snapshotter::new(
        Arc::clone(&h.events),
        Arc::clone(&h.snapshots),
        settings(&vars),
    )
    .with_registry(Registry::builtin().with::<v1::Counter>());
    let after = Snapshotter::new(
        Arc::clone(&h.events),
        Arc::clone(&h.snapshots),
        settings(&vars),
    )
    .with_registry(Registry::builtin().with::<v2::Counter>());
    let id = "counter-1";
    let deliver = |h: &mut Harness, events: Vec<EventEnvelope>| {
        let batch = h.batch(&events);
        (events, batch)
    };

    // Deployed code: 5 + 1 = 6, snapshotted at 2.
    let (events, batch) = deliver(&mut h, vec![incremented(id, 1, 5), incremented(id, 2, 1)]);
    h.append(&events).await;
    let report = before.process(batch, None).await;
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 1);

    // The writer deploys `Doubled` first: skipped, not failed.
    let (events, batch) = deliver(&mut h, vec![doubled(id, 3), incremented(id, 4, 1)]);
    h.append(&events).await;
    let report = before.process(batch, None).await;
    assert!(failures(&report).is_empty());
    assert_eq!(metric(&report, UNKNOWN_EVENT_TYPES), 1);
    assert_eq!(h.snapshot_versions(id), vec![2]);

    // A later batch of known events only: the rebuild reads the skipped event from the event
    // table, still unknown to this version, so the aggregate is skipped again (not failed).
    let (events, batch) = deliver(&mut h, vec![incremented(id, 5, 1)]);
    h.append(&events).await;
    let report = before.process(batch, None).await;
    assert!(failures(&report).is_empty());
    assert_eq!(metric(&report, UNKNOWN_EVENT_TYPES), 1);
    assert_eq!(
        report.outcomes[0].result().as_ref().unwrap(),
        &Action::UnknownEventType {
            sequence: Some(3),
            event_type: "Doubled".to_owned(),
        }
    );
    assert_eq!(h.snapshot_versions(id), vec![2]);

    // The code that knows `Doubled` is deployed: the aggregate's next event snapshots it, the
    // skipped events folded in from the event table: ((6 * 2) + 1 + 1) + 1 = 15.
    let (events, batch) = deliver(&mut h, vec![incremented(id, 6, 1)]);
    h.append(&events).await;
    let report = after.process(batch, None).await;
    assert!(failures(&report).is_empty());
    assert_eq!(metric(&report, UNKNOWN_EVENT_TYPES), 0);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 1);
    assert_eq!(h.snapshot_versions(id), vec![2, 6]);
    let repository = snapshot_core::AggregateRepository::new(
        Arc::clone(&h.events),
        Arc::clone(&h.snapshots),
        snapshot_core::codec::SnapshotCodec::default(),
    );
    let (root, report) = repository.load::<v2::Counter>(id).await.unwrap();
    assert_eq!(report.snapshot_version, Some(6));
    assert_eq!(root.state().value, 15);
    let registry = Registry::builtin().with::<v2::Counter>();
    let kind = registry.get("COUNTER").unwrap();
    let replayed = repository.replay_kind(kind.as_ref(), id).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<v2::Counter>(&replayed.state_json).unwrap(),
        *root.state()
    );
}
