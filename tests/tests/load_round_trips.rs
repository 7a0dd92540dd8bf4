//! One-round-trip loads against DynamoDB Local: the newest snapshot and the
//! newest events are read at once, and a second read happens only when those events do not
//! reach back to the snapshot. Requests and their overlap are observed on the wire (an SDK
//! interceptor), not taken from the repository's own report.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use integration_tests::TestTables;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::policy::{PolicySet, SnapshotPolicy};
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{AggregateRepository, LoadMode, Registry};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

const THRESHOLD: u64 = 10;

/// Counts requests and sequential waves of them: a request sent while none is in flight
/// starts a new round trip.
#[derive(Debug, Clone, Default)]
struct Wire {
    in_flight: Arc<AtomicU32>,
    requests: Arc<AtomicU32>,
    round_trips: Arc<AtomicU32>,
    /// Each request's table and `ConsistentRead`, in the order sent.
    reads: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Wire {
    fn take(&self) -> (u32, u32) {
        (
            self.requests.swap(0, Ordering::SeqCst),
            self.round_trips.swap(0, Ordering::SeqCst),
        )
    }
}

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "Wire"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(body) = context.request().body().bytes() {
            let body: serde_json::Value = serde_json::from_slice(body)?;
            let table = body["TableName"].as_str().unwrap_or_default().to_owned();
            let consistent = body["ConsistentRead"].as_bool().unwrap_or(false);
            self.reads.lock().unwrap().push((table, consistent));
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.round_trips.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

async fn setup(name: &str) -> (Repo, Wire) {
    let tables = TestTables::create(name).await;
    let wire = Wire::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        tables
            .client
            .config()
            .to_builder()
            .interceptor(wire.clone())
            .build(),
    );
    let policies = PolicySet {
        default: SnapshotPolicy {
            threshold: THRESHOLD,
            ..SnapshotPolicy::default()
        },
        ..PolicySet::default()
    };
    let repo = AggregateRepository::new(
        DynamoEventStore::new(client.clone(), &tables.events_table),
        DynamoSnapshotStore::new(client, &tables.snapshots_table),
        SnapshotCodec::default(),
    )
    .with_policies(policies);
    (repo, wire)
}

/// An item with `events` events (created, then one receipt per save), snapshotted at
/// `snapshot_at` when given.
async fn item(repo: &Repo, id: &str, events: u64, snapshot_at: Option<u64>) -> i64 {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU-1", "Widget", 0).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap();
    for n in 2..=events {
        if snapshot_at == Some(n - 1) {
            repo.snapshot_now(kind.as_ref(), id, SnapshotMetadata::default(), None)
                .await
                .unwrap();
        }
        root.receive(1, None).unwrap();
        repo.save(&mut root, None).await.unwrap();
    }
    root.state().on_hand
}

#[tokio::test]
async fn a_tail_under_the_threshold_loads_in_one_round_trip() {
    let (repo, wire) = setup("onetrip").await;
    // 5 events after the snapshot, threshold 10.
    let on_hand = item(&repo, "item-1", 25, Some(20)).await;
    wire.take();

    let (loaded, report) = repo.load::<InventoryItem>("item-1").await.unwrap();

    assert_eq!(loaded.version(), 25);
    assert_eq!(loaded.state().on_hand, on_hand);
    assert_eq!(report.snapshot_version, Some(20));
    assert_eq!(report.events_replayed, 5);
    assert_eq!((report.requests, report.round_trips), (2, 1));
    assert_eq!(
        wire.take(),
        (2, 1),
        "snapshot and newest events read at once, nothing after"
    );
}

#[tokio::test]
async fn a_tail_beyond_the_threshold_costs_one_more_round_trip() {
    let (repo, wire) = setup("twotrips").await;
    // 30 events after the snapshot: the newest 11 do not reach back to it.
    let on_hand = item(&repo, "item-2", 40, Some(10)).await;
    wire.take();

    let (loaded, report) = repo.load::<InventoryItem>("item-2").await.unwrap();

    assert_eq!(loaded.version(), 40);
    assert_eq!(loaded.state().on_hand, on_hand);
    assert_eq!(report.snapshot_version, Some(10));
    assert_eq!(report.events_replayed, 30);
    assert_eq!((report.requests, report.round_trips), (3, 2));
    assert_eq!(wire.take(), (3, 2));
}

#[tokio::test]
async fn a_short_history_without_a_snapshot_loads_in_one_round_trip() {
    let (repo, wire) = setup("shortreplay").await;
    let on_hand = item(&repo, "item-3", 11, None).await;
    wire.take();

    let (loaded, report) = repo.load::<InventoryItem>("item-3").await.unwrap();

    assert_eq!(loaded.version(), 11);
    assert_eq!(loaded.state().on_hand, on_hand);
    assert_eq!(report.snapshot_version, None);
    assert_eq!(report.events_replayed, 11);
    assert_eq!(wire.take(), (2, 1));
    assert_eq!((report.requests, report.round_trips), (2, 1));
}

#[tokio::test]
async fn the_fewest_read_units_mode_reads_the_snapshot_then_only_its_tail_eventually_consistent() {
    let (repo, wire) = setup("fewestunits").await;
    let repo = repo.with_load_mode(LoadMode::FewestReadUnits);
    // 5 events after the snapshot, threshold 10: the other mode reads the newest 11.
    let on_hand = item(&repo, "item-4", 25, Some(20)).await;
    wire.take();
    wire.reads.lock().unwrap().clear();

    let (loaded, report) = repo.load::<InventoryItem>("item-4").await.unwrap();

    assert_eq!(loaded.version(), 25);
    assert_eq!(loaded.state().on_hand, on_hand);
    assert_eq!(report.snapshot_version, Some(20));
    assert_eq!(report.events_replayed, 5);
    assert_eq!((report.requests, report.round_trips), (2, 2));
    assert_eq!(wire.take(), (2, 2), "the snapshot first, then its tail");
    let reads = wire.reads.lock().unwrap().clone();
    let tables = repo.events().table().to_owned();
    assert_eq!(
        reads,
        vec![(repo.snapshots().table().to_owned(), true), (tables, false)],
        "the snapshot strongly consistent (a mark is never missed), the tail eventually"
    );
}
