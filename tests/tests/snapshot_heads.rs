//! Snapshot heads (snapshot_core::head) on both stores, in-memory and DynamoDB Local: a put
//! moves the head forward and never back, marking or deleting the snapshot a head names drops
//! it, the pruner's scan never sees a head, and reading one costs half a read unit on
//! DynamoDB whatever the size of the state it describes.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use integration_tests::TestTables;
use snapshot_core::head::SnapshotHead;
use snapshot_core::memory::InMemorySnapshotStore;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::pruning::{prune, PruneRequest};
use snapshot_core::snapshot::{InvalidMark, SnapshotRecord};
use snapshot_core::testing::sized_snapshot;
use snapshot_core::Registry;
use snapshot_dynamo::HEAD_PREFIX;

fn record(aggregate_id: &str, version: u64, state_bytes: usize) -> SnapshotRecord {
    sized_snapshot(aggregate_id, version, state_bytes).unwrap()
}

fn mark() -> InvalidMark {
    InvalidMark {
        reason: "test".to_owned(),
        by: "test".to_owned(),
        at: 1_700_000_000_000,
    }
}

async fn head_version(store: &impl SnapshotStore, id: &str) -> Option<u64> {
    store.head(id).await.unwrap().map(|h| h.version)
}

/// The same behaviour asked of any store.
async fn heads_follow_the_newest_valid_snapshot(store: &impl SnapshotStore) {
    assert_eq!(store.head("item-h").await.unwrap(), None, "no snapshot yet");
    store
        .put_if_absent(&record("item-h", 10, 100))
        .await
        .unwrap();
    let head = store
        .head("item-h")
        .await
        .unwrap()
        .expect("a put keeps a head");
    assert_eq!(head, SnapshotHead::of(&record("item-h", 10, 100).header));

    // An older snapshot written late never moves it back; a newer one moves it forward.
    store
        .put_if_absent(&record("item-h", 5, 100))
        .await
        .unwrap();
    assert_eq!(head_version(store, "item-h").await, Some(10));
    store
        .put_if_absent(&record("item-h", 20, 100))
        .await
        .unwrap();
    assert_eq!(head_version(store, "item-h").await, Some(20));

    // Marking any of its snapshots drops it (its list of tracked snapshots may name that one);
    // the next put starts it again.
    store.mark_invalid("item-h", 10, &mark()).await.unwrap();
    assert_eq!(head_version(store, "item-h").await, None);
    store
        .put_if_absent(&record("item-h", 20, 100))
        .await
        .unwrap();
    assert_eq!(head_version(store, "item-h").await, Some(20));
    store.mark_invalid("item-h", 20, &mark()).await.unwrap();
    assert_eq!(head_version(store, "item-h").await, None);

    // A reader that found the newest valid one records it; deleting that one drops it again.
    store
        .record_head(&SnapshotHead::of(&record("item-h", 5, 100).header))
        .await
        .unwrap();
    assert_eq!(head_version(store, "item-h").await, Some(5));
    assert!(store.delete("item-h", 5).await.unwrap());
    assert_eq!(head_version(store, "item-h").await, None);

    // Replacing the invalid snapshot at 20 brings its head back.
    store
        .put_if_absent(&record("item-h", 20, 100))
        .await
        .unwrap();
    assert_eq!(head_version(store, "item-h").await, Some(20));
    assert_eq!(head_version(store, "item-other").await, None);
}

async fn the_pruner_never_sees_a_head(store: &impl SnapshotStore) {
    for version in 1..=5 {
        store
            .put_if_absent(&record("item-p", version, 100))
            .await
            .unwrap();
    }
    let summary = prune(store, &Registry::builtin(), &PruneRequest::new(2))
        .await
        .unwrap();
    assert_eq!(summary.scanned, 5, "the five snapshots, not their head");
    assert_eq!(summary.skipped, 0);
    assert_eq!(summary.deleted, 3);
    assert_eq!(head_version(store, "item-p").await, Some(5));
}

#[tokio::test]
async fn in_memory_heads_follow_the_newest_valid_snapshot() {
    heads_follow_the_newest_valid_snapshot(&InMemorySnapshotStore::new()).await;
    the_pruner_never_sees_a_head(&InMemorySnapshotStore::new()).await;
}

#[tokio::test]
async fn dynamodb_heads_follow_the_newest_valid_snapshot() {
    let tables = TestTables::create("heads").await;
    heads_follow_the_newest_valid_snapshot(&tables.snapshot_store()).await;
    let tables = TestTables::create("heads_prune").await;
    the_pruner_never_sees_a_head(&tables.snapshot_store()).await;
}

/// What DynamoDB Local reports for reading an item, eventually consistent.
async fn read_units(tables: &TestTables, aggregate_id: &str, version: u64) -> f64 {
    let output = tables
        .client
        .get_item()
        .table_name(&tables.snapshots_table)
        .key("aggregateId", AttributeValue::S(aggregate_id.to_owned()))
        .key("version", AttributeValue::N(version.to_string()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert!(output.item.is_some(), "{aggregate_id} {version} is there");
    output
        .consumed_capacity
        .and_then(|c| c.capacity_units)
        .expect("DynamoDB Local reports consumed capacity")
}

#[tokio::test]
async fn a_head_read_costs_half_a_read_unit_whatever_the_state_size() {
    let tables = TestTables::create("heads_cost").await;
    let store = tables.snapshot_store();
    for (id, state_bytes) in [
        ("item-1k", 1_000),
        ("item-100k", 100_000),
        ("item-350k", 350_000),
    ] {
        store
            .put_if_absent(&record(id, 100, state_bytes))
            .await
            .unwrap();
        let snapshot = read_units(&tables, id, 100).await;
        let head = read_units(&tables, &format!("{HEAD_PREFIX}{id}"), 0).await;
        assert!(
            (head - 0.5).abs() < f64::EPSILON,
            "{id}: head {head} read units"
        );
        // The snapshot item itself: half a unit per 4 KB, eventually consistent.
        let expected = (state_bytes as f64 / 4096.0).ceil() * 0.5;
        assert!(
            snapshot >= expected,
            "{id}: snapshot {snapshot} read units, at least {expected}"
        );
    }
}
