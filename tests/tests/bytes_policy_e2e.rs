//! The bytes budget end to end on DynamoDB Local: events appended through the repository,
//! delivered by the stream runner from the event table's stream, a snapshot taken on bytes
//! long before the count, a load afterwards folding a tail within the budget, and the read
//! units a record that is not due costs to know the bytes (as DynamoDB Local reports them).
//! Also how a stream record's `SizeBytes` relates to the item size the policy counts.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use integration_tests::{sdk_config, TestTables};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::head::SnapshotHead;
use snapshot_core::policy::{PolicySet, SnapshotPolicy, Strategy};
use snapshot_core::ports::{
    EventStore, EventStoreDecorator, SnapshotStore, SnapshotStoreDecorator, StoredBytes,
};
use snapshot_core::stored_size::event_bytes;
use snapshot_core::{AggregateRepository, Registry, StoreError};
use snapshot_dynamo::item_size::image_bytes;
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};
use snapshotter::{Action, Settings, Snapshotter};
use stream_runner::{RunnerSettings, StreamRunner};

const BUDGET: u64 = 8192;
const THRESHOLD: u64 = 100;
const ID: &str = "item-bytes";

/// Requests the snapshotter makes to decide, and the read units of its event reads.
#[derive(Clone, Default)]
struct Meter {
    head_reads: Arc<AtomicU64>,
    byte_reads: Arc<AtomicU64>,
    read_units: Arc<Mutex<f64>>,
}

impl Meter {
    /// (head reads, event reads to measure bytes, their read units) since the last call.
    fn take(&self) -> (u64, u64, f64) {
        let units = std::mem::take(&mut *self.read_units.lock().unwrap());
        (
            self.head_reads.swap(0, Ordering::SeqCst),
            self.byte_reads.swap(0, Ordering::SeqCst),
            units,
        )
    }
}

struct Events(DynamoEventStore, Meter);

#[async_trait]
impl EventStoreDecorator for Events {
    type Inner = DynamoEventStore;

    fn delegate(&self) -> &DynamoEventStore {
        &self.0
    }

    async fn stored_bytes(
        &self,
        aggregate_id: &str,
        from: u64,
        to: u64,
        enough: u64,
    ) -> Result<StoredBytes, StoreError> {
        let measured = self.0.stored_bytes(aggregate_id, from, to, enough).await?;
        self.1.byte_reads.fetch_add(1, Ordering::SeqCst);
        *self.1.read_units.lock().unwrap() += measured
            .read_units
            .expect("DynamoDB Local reports consumed capacity");
        Ok(measured)
    }
}

struct Snapshots(DynamoSnapshotStore, Meter);

#[async_trait]
impl SnapshotStoreDecorator for Snapshots {
    type Inner = DynamoSnapshotStore;

    fn delegate(&self) -> &DynamoSnapshotStore {
        &self.0
    }

    async fn head(&self, aggregate_id: &str) -> Result<Option<SnapshotHead>, StoreError> {
        self.1.head_reads.fetch_add(1, Ordering::SeqCst);
        self.0.head(aggregate_id).await
    }
}

type Metered = Snapshotter<Events, Snapshots>;

fn policy() -> SnapshotPolicy {
    SnapshotPolicy {
        strategy: Strategy::Count,
        threshold: THRESHOLD,
        bytes_threshold: Some(BUDGET),
        ..SnapshotPolicy::default()
    }
}

/// A snapshotter (a container: its own head cache) with the bytes budget, metered.
fn container(tables: &TestTables, meter: &Meter) -> Metered {
    let settings = Settings::from_lookup(|key| match key {
        "SNAPSHOT_STRATEGY" => Some("count".to_owned()),
        "SNAPSHOT_THRESHOLD" => Some(THRESHOLD.to_string()),
        "SNAPSHOT_BYTES_THRESHOLD" => Some(BUDGET.to_string()),
        _ => None,
    })
    .unwrap();
    Snapshotter::new(
        Events(tables.event_store(), meter.clone()),
        Snapshots(tables.snapshot_store(), meter.clone()),
        settings,
    )
}

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

/// Appends `n` receipts of one unit, each with a reference of `pad` bytes (about `pad` +
/// 150 bytes stored), one commit each.
async fn receive(repo: &Repo, n: usize, pad: usize) {
    for _ in 0..n {
        let (mut root, _) = repo.load::<InventoryItem>(ID).await.unwrap();
        root.receive(1, Some(&"r".repeat(pad))).unwrap();
        repo.save(&mut root, None).await.unwrap();
    }
}

/// What one drain of the stream did with `snapshotter`: its outcomes for the aggregate, and
/// every record's `SizeBytes` with the size of its image.
struct Drained {
    actions: Vec<String>,
    sizes: Vec<(i64, u64)>,
}

async fn drain(runner: &mut StreamRunner, snapshotter: &Metered) -> Drained {
    let actions = Mutex::new(Vec::new());
    let sizes = Mutex::new(Vec::new());
    let handler = |event: Event| {
        let (actions, sizes) = (&actions, &sizes);
        async move {
            for record in &event.records {
                sizes.lock().unwrap().push((
                    record.change.size_bytes,
                    image_bytes(&record.change.new_image),
                ));
            }
            let report = snapshotter.process(event, Some("e2e")).await;
            for outcome in &report.outcomes {
                actions.lock().unwrap().push(match outcome.result() {
                    Ok(Action::Created {
                        version, reason, ..
                    }) => format!("created {version} {reason}"),
                    Ok(Action::NotDue) => "not due".to_owned(),
                    other => format!("{other:?}"),
                });
            }
            Ok::<_, Infallible>(report.response)
        }
    };
    let report = runner.run_until_idle(&handler).await.unwrap();
    assert_eq!(report.pending, 0);
    Drained {
        actions: actions.into_inner().unwrap(),
        sizes: sizes.into_inner().unwrap(),
    }
}

#[tokio::test]
async fn a_snapshot_trips_on_bytes_before_the_count_and_a_not_due_record_costs_what_it_reads() {
    let tables = TestTables::create("bytes_e2e").await;
    let repo = AggregateRepository::new(
        tables.event_store(),
        tables.snapshot_store(),
        SnapshotCodec::default(),
    )
    .with_policies(PolicySet {
        default: policy(),
        ..PolicySet::default()
    });
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config().await);
    let mut runner = StreamRunner::connect(
        &tables.client,
        streams,
        &tables.events_table,
        "us-east-1",
        RunnerSettings {
            batch_size: 1000,
            ..RunnerSettings::default()
        },
    )
    .await
    .unwrap();
    let meter = Meter::default();
    let warm = container(&tables, &meter);

    // Created, then receipts of about 1 KB: 4 KB in all, under the budget.
    let mut root = AggregateRoot::<InventoryItem>::new(ID);
    root.create("SKU-B", "bulky", 1).unwrap();
    repo.save(&mut root, None).await.unwrap();
    receive(&repo, 3, 1000).await;
    let first = drain(&mut runner, &warm).await;
    assert_eq!(first.actions, vec!["not due"]);
    assert_eq!(
        meter.take(),
        (1, 0, 0.0),
        "no head yet; the batch is every event"
    );

    // SizeBytes counts the record: the item, and its key attributes once more.
    let events = tables.event_store().read(ID, 1, None).await.unwrap();
    for ((size_bytes, image), event) in first.sizes.iter().zip(&events) {
        assert_eq!(*image, event_bytes(event), "the image is the item");
        let keys = ("aggregateId".len() + ID.len()) as u64
            + ("sequence".len() as u64 + snapshot_core::stored_size::number_bytes("1"));
        println!(
            "sequence {}: SizeBytes {size_bytes}, item {image} bytes, keys {keys}",
            event.sequence
        );
        // Within two bytes: numbers are sized by an approximate rule.
        let over = u64::try_from(*size_bytes).unwrap() - image;
        assert!(
            (keys..=keys + 2).contains(&over),
            "SizeBytes {size_bytes}, item {image}, keys {keys}"
        );
    }

    // Warm, the next batch follows on: known from what this container counted, 0 units.
    receive(&repo, 1, 1000).await;
    let next = drain(&mut runner, &warm).await;
    assert_eq!(next.actions, vec!["not due"]);
    assert_eq!(meter.take(), (0, 0, 0.0), "warm: no request");

    // Another container takes the next one; a new (cold) one then reads the head (none yet)
    // and every event before its batch: their bytes / 4 KB rounded up, half a unit each
    // (eventually consistent).
    let other = container(&tables, &Meter::default());
    receive(&repo, 1, 1000).await;
    assert_eq!(drain(&mut runner, &other).await.actions, vec!["not due"]);
    let cold = container(&tables, &meter);
    receive(&repo, 1, 100).await;
    assert_eq!(drain(&mut runner, &cold).await.actions, vec!["not due"]);
    let (heads, reads, units) = meter.take();
    let events = tables.event_store().read(ID, 1, None).await.unwrap();
    let gap = events[..events.len() - 1]
        .iter()
        .map(event_bytes)
        .sum::<u64>();
    let expected = (gap as f64 / 4096.0).ceil() * 0.5;
    println!(
        "cold, no snapshot: {heads} head read, {reads} event read of {gap} bytes: {units} read units"
    );
    assert_eq!((heads, reads), (1, 1));
    assert!((units - expected).abs() < 1e-9, "{units} != {expected}");

    // The warm container missed two batches: it reads only their two events.
    receive(&repo, 1, 100).await;
    let missed = drain(&mut runner, &warm).await;
    assert_eq!(missed.actions, vec!["not due"]);
    let (heads, reads, units) = meter.take();
    println!("warm, two batches missed: {heads} head reads, {reads} event read, {units} units");
    assert_eq!((heads, reads, units), (0, 1, 0.5));

    // Two more receipts of 1 KB reach the budget: a snapshot on bytes at 10, not at 100.
    receive(&repo, 2, 1000).await;
    let tripped = drain(&mut runner, &warm).await;
    let events = tables.event_store().read(ID, 1, None).await.unwrap();
    let version = events.len() as u64;
    assert_eq!(
        tripped.actions,
        vec![format!("created {version} threshold:bytes")]
    );
    let all: u64 = events.iter().map(event_bytes).sum();
    let before: u64 = events[..events.len() - 2].iter().map(event_bytes).sum();
    assert!(
        all >= BUDGET && before < BUDGET,
        "{before} < {BUDGET} <= {all}"
    );
    assert!(version < THRESHOLD);
    meter.take();

    // After it, warm: 0 units; cold with the batch right after the snapshot: the head alone,
    // 0.5 units; cold with a gap: the head and the gap's bytes / 8 KB.
    receive(&repo, 1, 1000).await;
    assert_eq!(drain(&mut runner, &warm).await.actions, vec!["not due"]);
    assert_eq!(meter.take(), (0, 0, 0.0), "warm after a snapshot");
    let cold = container(&tables, &meter);
    receive(&repo, 1, 1000).await;
    assert_eq!(drain(&mut runner, &other).await.actions, vec!["not due"]);
    receive(&repo, 1, 1000).await;
    assert_eq!(drain(&mut runner, &cold).await.actions, vec!["not due"]);
    let (heads, reads, units) = meter.take();
    println!(
        "cold after a snapshot, a 2 KB gap: {heads} head read, {reads} event read, {units} units"
    );
    assert_eq!((heads, reads, units), (1, 1, 0.5));
    let fresh = container(&tables, &meter);
    let newest = tables.event_store().read(ID, 1, None).await.unwrap().len() as u64;
    let (mut root, _) = repo.load::<InventoryItem>(ID).await.unwrap();
    root.receive(1, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    // The fresh container's head is at `version`; its batch starts right after `newest`.
    assert_eq!(drain(&mut runner, &fresh).await.actions, vec!["not due"]);
    let (heads, reads, units) = meter.take();
    println!(
        "cold after a snapshot, {} events between: {heads} head read, {reads} event read, {units} units",
        newest - version
    );
    assert_eq!(
        (heads, reads),
        (1, 1),
        "the events {}..={newest} between",
        version + 1
    );

    // A load starts from the snapshot and folds the tail since it: within the budget.
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap();
    let loaded = repo.load_kind(kind.as_ref(), ID).await.unwrap();
    let events = tables.event_store().read(ID, 1, None).await.unwrap();
    assert_eq!(loaded.report.snapshot_version, Some(version));
    let tail: u64 = events[version as usize..].iter().map(event_bytes).sum();
    assert_eq!(loaded.report.events_replayed, events.len() as u64 - version);
    assert!(tail < BUDGET, "{tail}");
    assert_eq!(loaded.report.round_trips, 1);
    println!(
        "load: snapshot {version}, {} events ({tail} bytes) folded",
        loaded.report.events_replayed
    );
    let snapshot = tables
        .snapshot_store()
        .get(ID, version)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.header.metadata.reason, "threshold:bytes");
}
