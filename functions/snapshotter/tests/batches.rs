//! Batch handling on in-memory stores: coalescing per aggregate, redelivery, poison records,
//! ignored records, partial batch failures, isolation and bounded concurrency.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use snapshot_core::domain::EventEnvelope;
use snapshot_core::memory::InMemoryEventStore;
use snapshot_core::ports::{EventStore, Page, PutOutcome, SnapshotStore};
use snapshot_core::snapshot::{
    InvalidMark, SnapshotHeader, SnapshotKey, SnapshotRecord, SnapshotSummary, Stored,
};
use snapshot_core::StoreError;
use snapshotter::metrics::*;
use snapshotter::{Action, Snapshotter};
use support::{failures, item_events, metric, sample, sample_events, settings, Harness};

const INSERT_BATCH: &str = include_str!("../../../events/snapshotter/insert-batch.json");
const MODIFY_REMOVE: &str = include_str!("../../../events/snapshotter/modify-remove.json");
const POISON: &str = include_str!("../../../events/snapshotter/poison-record.json");
const UNREGISTERED: &str = include_str!("../../../events/snapshotter/unregistered-type.json");

#[tokio::test]
async fn a_batch_over_several_aggregates_makes_one_snapshot_per_tripped_aggregate_at_its_highest_sequence(
) {
    let h = Harness::count(1);
    let batch = sample(INSERT_BATCH);
    h.append(&sample_events(&batch)).await;
    let report = h.snapshotter.process(batch, None).await;

    assert!(failures(&report).is_empty());
    assert_eq!(h.snapshot_versions("item-1001"), vec![3]);
    assert_eq!(h.snapshot_versions("wh-berlin"), vec![3]);
    assert_eq!(h.snapshot_versions("item-1002"), vec![1]);
    assert_eq!(h.snapshots.keys().len(), 3);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 3);
    assert_eq!(metric(&report, AGGREGATES_EVALUATED), 3);
    assert_eq!(metric(&report, EVENTS_FOLDED), 7);
    assert_eq!(metric(&report, EVENTS_FETCHED), 0);
    assert!(report.metrics.get(SNAPSHOT_BYTES).unwrap() > 0.0);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn only_aggregates_whose_policy_trips_are_snapshotted() {
    let h = Harness::count(3);
    let batch = sample(INSERT_BATCH);
    h.append(&sample_events(&batch)).await;
    let report = h.snapshotter.process(batch, None).await;
    assert_eq!(h.snapshot_versions("item-1001"), vec![3]);
    assert_eq!(h.snapshot_versions("wh-berlin"), vec![3]);
    assert!(h.snapshot_versions("item-1002").is_empty());
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 2);
    assert_eq!(metric(&report, AGGREGATES_EVALUATED), 3);
}

#[tokio::test]
async fn redelivering_the_same_batch_creates_nothing_new() {
    let h = Harness::count(1);
    let batch = sample(INSERT_BATCH);
    h.append(&sample_events(&batch)).await;
    h.snapshotter.process(batch.clone(), None).await;
    let keys_before = h.snapshots.keys();

    let again = h.snapshotter.process(batch, None).await;
    assert!(failures(&again).is_empty());
    assert_eq!(h.snapshots.keys(), keys_before);
    assert_eq!(metric(&again, SNAPSHOTS_CREATED), 0);
    assert_eq!(metric(&again, EVENTS_FETCHED), 0);
    assert!(again
        .outcomes
        .iter()
        .all(|o| matches!(o.result(), Ok(Action::UpToDate { .. }))));
}

#[tokio::test]
async fn duplicate_records_in_one_batch_are_folded_once() {
    let mut h = Harness::count(1);
    let events = item_events("item-1", 1, 3);
    h.append(&events).await;
    let mut doubled = events.clone();
    doubled.extend(events.iter().cloned());
    let batch = h.batch(&doubled);
    let report = h.snapshotter.process(batch, None).await;
    assert!(failures(&report).is_empty());
    assert_eq!(h.snapshot_versions("item-1"), vec![3]);
    assert_eq!(metric(&report, EVENTS_FOLDED), 3);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn a_poison_record_fails_only_its_own_aggregate_at_its_lowest_record() {
    let h = Harness::count(1);
    let batch = sample(POISON);
    h.append(&sample_events(&batch)[..2]).await; // item-2001#1, item-2002#1
    h.append(&item_events("item-2001", 2, 2)).await;
    let report = h.snapshotter.process(batch, None).await;

    // item-2002's records are stream numbers 22 (#1), 23 (poison #2) and 25 (#3).
    assert_eq!(failures(&report), vec!["400000000000000000022".to_owned()]);
    // The shape Lambda's ReportBatchItemFailures expects.
    assert_eq!(
        serde_json::to_value(&report.response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "400000000000000000022"}]})
    );
    assert_eq!(h.snapshot_versions("item-2001"), vec![2]);
    assert!(h.snapshot_versions("item-2002").is_empty());
    assert_eq!(metric(&report, POISON_RECORDS), 1);
    assert_eq!(metric(&report, FAILURES), 1);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 1);
    let failed = report
        .outcomes
        .iter()
        .find(|o| o.aggregate_id() == "item-2002")
        .unwrap();
    let message = failed.result().as_ref().unwrap_err().to_string();
    assert!(
        message.contains("item-2002")
            && message.contains("StockReceived")
            && message.contains("sequence=2"),
        "{message}"
    );
}

/// A sample record with its image edited.
fn edited(
    json: &str,
    index: usize,
    edit: impl FnOnce(&mut serde_json::Value),
) -> aws_lambda_events::event::dynamodb::Event {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    edit(&mut value["Records"][index]["dynamodb"]);
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn an_undecodable_image_is_a_poison_record_of_its_aggregate() {
    let h = Harness::count(1);
    // wh-berlin#2 loses its payload.
    let batch = edited(INSERT_BATCH, 3, |d| {
        d["NewImage"].as_object_mut().unwrap().remove("payload");
    });
    let items: Vec<_> = sample_events(&batch)
        .into_iter()
        .filter(|e| e.aggregate_id != "wh-berlin")
        .collect();
    h.append(&items).await;
    let report = h.snapshotter.process(batch, None).await;
    // wh-berlin's lowest record is stream number 2.
    assert_eq!(failures(&report), vec!["400000000000000000002".to_owned()]);
    assert!(h.snapshot_versions("wh-berlin").is_empty());
    assert_eq!(h.snapshot_versions("item-1001"), vec![3]);
    assert_eq!(h.snapshot_versions("item-1002"), vec![1]);
    assert_eq!(metric(&report, POISON_RECORDS), 1);
}

#[tokio::test]
async fn a_record_without_a_readable_aggregate_fails_on_its_own() {
    let h = Harness::count(1);
    let batch = edited(INSERT_BATCH, 4, |d| {
        d["NewImage"].as_object_mut().unwrap().remove("aggregateId");
        d["Keys"].as_object_mut().unwrap().remove("aggregateId");
    });
    h.append(&sample_events(&batch)).await;
    let report = h.snapshotter.process(batch, None).await;
    assert_eq!(failures(&report), vec!["400000000000000000005".to_owned()]);
    assert_eq!(
        h.snapshots.keys().len(),
        2,
        "item-1001 and wh-berlin still done"
    );
    assert_eq!(metric(&report, POISON_RECORDS), 1);
    assert_eq!(metric(&report, FAILURES), 1);
}

#[tokio::test]
async fn non_insert_records_are_ignored() {
    let h = Harness::count(1);
    let report = h.snapshotter.process(sample(MODIFY_REMOVE), None).await;
    assert!(failures(&report).is_empty());
    assert!(h.snapshots.keys().is_empty());
    assert_eq!(metric(&report, RECORDS_IGNORED), 3);
    assert_eq!(metric(&report, AGGREGATES_EVALUATED), 0);
    assert_eq!(h.snapshots.requests(), 0, "no request for ignored records");
}

#[tokio::test]
async fn records_of_unregistered_aggregate_types_are_ignored() {
    let h = Harness::count(1);
    let batch = sample(UNREGISTERED);
    h.append(&sample_events(&batch)[1..]).await;
    let report = h.snapshotter.process(batch, None).await;
    assert!(failures(&report).is_empty());
    assert!(h.snapshot_versions("customer-1").is_empty());
    assert_eq!(h.snapshot_versions("item-3001"), vec![1]);
    assert_eq!(metric(&report, RECORDS_IGNORED), 1);
    assert_eq!(metric(&report, POISON_RECORDS), 0);
}

/// Returns no snapshot on reads, as if another writer stored one right after our read.
struct StaleReads(Arc<snapshot_core::memory::InMemorySnapshotStore>);

#[async_trait]
impl SnapshotStore for StaleReads {
    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        self.0.put_if_absent(snapshot).await
    }
    async fn headers(
        &self,
        _: &str,
        _: Option<u64>,
        _: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError> {
        Ok(Page {
            items: vec![],
            next: None,
        })
    }
    async fn records(
        &self,
        _: &str,
        _: Option<u64>,
        _: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        Ok(Page {
            items: vec![],
            next: None,
        })
    }
    async fn get(&self, id: &str, version: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        self.0.get(id, version).await
    }
    async fn delete(&self, id: &str, version: u64) -> Result<bool, StoreError> {
        self.0.delete(id, version).await
    }
    async fn scan_summaries(
        &self,
        s: u32,
        t: u32,
        c: Option<SnapshotKey>,
        l: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        self.0.scan_summaries(s, t, c, l).await
    }
    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        self.0.delete_many(keys).await
    }
    async fn mark_invalid(
        &self,
        aggregate_id: &str,
        version: u64,
        mark: &InvalidMark,
    ) -> Result<bool, StoreError> {
        self.0.mark_invalid(aggregate_id, version, mark).await
    }
}

#[tokio::test]
async fn a_snapshot_stored_concurrently_counts_as_already_present() {
    let mut h = Harness::count(1);
    let events = item_events("item-1", 1, 4);
    h.append(&events).await;
    let batch = h.batch(&events);
    h.snapshotter.process(batch.clone(), None).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![4]);

    let racing = Snapshotter::new(
        Arc::clone(&h.events),
        StaleReads(Arc::clone(&h.snapshots)),
        settings(&[("SNAPSHOT_STRATEGY", "count"), ("SNAPSHOT_THRESHOLD", "1")]),
    );
    let report = racing.process(batch, None).await;
    assert!(failures(&report).is_empty());
    assert!(matches!(
        report.outcomes[0].result(),
        Ok(Action::AlreadyPresent { version: 4 })
    ));
    assert_eq!(metric(&report, SNAPSHOTS_ALREADY_PRESENT), 1);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 0);
    assert_eq!(h.snapshot_versions("item-1"), vec![4]);
}

/// Fails every read of one aggregate.
struct FailingReads {
    inner: Arc<InMemoryEventStore>,
    broken: &'static str,
}

#[async_trait]
impl EventStore for FailingReads {
    async fn append(&self, expected: u64, events: &[EventEnvelope]) -> Result<(), StoreError> {
        self.inner.append(expected, events).await
    }
    async fn read(
        &self,
        id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        if id == self.broken {
            return Err(StoreError::backend("Query", "throttled"));
        }
        self.inner.read(id, from, to).await
    }
}

#[tokio::test]
async fn a_failing_aggregate_never_fails_the_others() {
    let mut h = Harness::count(2);
    // item-b needs a gap read (its batch starts at 3), which fails; item-a and item-c do not.
    h.append(&item_events("item-b", 1, 2)).await;
    let mut events = item_events("item-a", 1, 2);
    events.extend(item_events("item-b", 3, 4));
    events.extend(item_events("item-c", 1, 2));
    h.append(&item_events("item-a", 1, 2)).await;
    h.append(&item_events("item-b", 3, 4)).await;
    h.append(&item_events("item-c", 1, 2)).await;
    let batch = h.batch(&events);
    let stream_numbers: Vec<String> = batch
        .records
        .iter()
        .map(|r| r.change.sequence_number.clone().unwrap())
        .collect();

    let broken = Snapshotter::new(
        FailingReads {
            inner: Arc::clone(&h.events),
            broken: "item-b",
        },
        Arc::clone(&h.snapshots),
        settings(&[("SNAPSHOT_STRATEGY", "count"), ("SNAPSHOT_THRESHOLD", "2")]),
    );
    let report = broken.process(batch, None).await;
    assert_eq!(
        failures(&report),
        vec![stream_numbers[2].clone()],
        "item-b's first record"
    );
    assert_eq!(h.snapshot_versions("item-a"), vec![2]);
    assert_eq!(h.snapshot_versions("item-c"), vec![2]);
    assert!(h.snapshot_versions("item-b").is_empty());
    assert_eq!(metric(&report, FAILURES), 1);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 2);
}

/// Counts reads in flight at once.
struct Gauge {
    inner: Arc<InMemoryEventStore>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl EventStore for Gauge {
    async fn append(&self, expected: u64, events: &[EventEnvelope]) -> Result<(), StoreError> {
        self.inner.append(expected, events).await
    }
    async fn read(
        &self,
        id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.read(id, from, to).await
    }
}

#[tokio::test]
async fn aggregates_are_processed_concurrently_up_to_the_configured_bound() {
    let mut h = Harness::count(1);
    let mut in_batch = Vec::new();
    for n in 0..10 {
        let id = format!("item-{n}");
        h.append(&item_events(&id, 1, 2)).await;
        in_batch.extend(item_events(&id, 2, 2)); // each needs the gap read of #1
    }
    let batch = h.batch(&in_batch);
    let gauge = Arc::new(Gauge {
        inner: Arc::clone(&h.events),
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let bounded = Snapshotter::new(
        Arc::clone(&gauge),
        Arc::clone(&h.snapshots),
        settings(&[
            ("SNAPSHOT_STRATEGY", "count"),
            ("SNAPSHOT_THRESHOLD", "1"),
            ("SNAPSHOT_MAX_CONCURRENCY", "3"),
        ]),
    );
    let report = bounded.process(batch, None).await;
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 10);
    assert_eq!(gauge.peak.load(Ordering::SeqCst), 3);
}

/// A WAREHOUSE whose state stays over the item limit even compressed: the aggregate is skipped
/// (metric, audit, error log), not reported as a batch failure that would hold the shard back.
#[tokio::test]
async fn snapshot_too_large_for_one_item_is_skipped_not_failed() {
    use snapshot_core::domain::warehouse::{
        LocationRef, LocationStock, WarehouseCreated, WarehouseEvent,
    };
    use snapshot_core::domain::Warehouse;

    let mut h = Harness::count(1);
    let id = "wh-huge";
    let mut events = vec![
        WarehouseEvent::WarehouseCreated(WarehouseCreated {
            name: "Huge".into(),
            capacity: i64::MAX,
        }),
        WarehouseEvent::LocationAdded(LocationRef {
            location: "A".into(),
        }),
    ];
    // Random SKU names barely compress: ~24k of them exceed 400 KB after zstd.
    events.extend((0..24_000).map(|_| {
        WarehouseEvent::StockPlaced(LocationStock {
            location: "A".into(),
            sku: uuid::Uuid::new_v4().to_string(),
            quantity: 1,
        })
    }));
    let envelopes: Vec<EventEnvelope> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventEnvelope::wrap::<Warehouse>(id, i as u64 + 1, e, 0, None))
        .collect();
    let mut with_item = envelopes.clone();
    with_item.extend(item_events("item-ok", 1, 3));
    let report = h.deliver(&with_item).await;
    assert!(
        failures(&report).is_empty(),
        "no batch item failure: {:?}",
        failures(&report)
    );
    assert_eq!(metric(&report, SNAPSHOTS_TOO_LARGE), 1);
    assert_eq!(metric(&report, FAILURES), 0);
    assert!(h.snapshot_versions(id).is_empty(), "nothing written");
    assert_eq!(
        h.snapshot_versions("item-ok"),
        vec![3],
        "the other aggregate is snapshotted"
    );
    let outcome = report
        .outcomes
        .iter()
        .find(|o| o.aggregate_id() == id)
        .unwrap();
    assert!(
        matches!(outcome.result(), Ok(Action::TooLarge { version: 24_002, item_bytes }) if *item_bytes > 400 * 1024)
    );
}
