//! The event store contract (`integration_tests::contract`) against both adapters, and the
//! DynamoDB adapter's exactly-once append when replies are lost after the write committed.

use std::collections::{BTreeMap, HashSet};

use integration_tests::contract::event_store_contract;
use integration_tests::faults::{faulty_dynamodb, Fault, FaultPlan};
use integration_tests::TestTables;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::memory::InMemoryEventStore;
use snapshot_core::ports::EventStore;
use snapshot_core::AggregateRepository;
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

#[tokio::test]
async fn the_in_memory_event_store_keeps_the_contract() {
    event_store_contract(&InMemoryEventStore::new(), "mem").await;
}

#[tokio::test]
async fn the_dynamodb_event_store_keeps_the_contract() {
    let tables = TestTables::create("contract").await;
    event_store_contract(&tables.event_store(), "ddb").await;
}

/// Every write's reply is lost after it committed (some on every attempt, so the SDK gives
/// up); `save` is retried on retryable errors as a caller would. Every event in the table is
/// one that `save` reported as saved, each exactly once.
#[tokio::test]
async fn appends_whose_replies_are_lost_after_commit_are_stored_exactly_once() {
    let tables = TestTables::create("lostreply").await;
    let plan = FaultPlan::new(7, 500)
        .kinds(&[Fault::ReplyLost])
        .only(&["PutItem", "TransactWriteItems"]);
    let client = faulty_dynamodb(&plan, 2).await;
    let repo = AggregateRepository::new(
        DynamoEventStore::new(client.clone(), &tables.events_table),
        DynamoSnapshotStore::new(client, &tables.snapshots_table),
        SnapshotCodec::default(),
    );
    let mut reported: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for n in 0..4 {
        let id = format!("lost-{n}");
        let mut root = AggregateRoot::<InventoryItem>::new(&id);
        root.create("SKU-1", "Widget", 1).unwrap();
        for step in 0..12u64 {
            if step > 0 {
                // One event, or three at once.
                for q in 0..=(2 * (step % 2)) {
                    root.receive((step * 10 + q) as i64, None).unwrap();
                }
            }
            let mut attempts = 0;
            loop {
                attempts += 1;
                // A failed save keeps its events and their ids: retrying it is safe.
                match repo.save(&mut root, None).await {
                    Ok(_) => break,
                    Err(e) if !e.is_conflict() && attempts < 20 => continue,
                    Err(e) => panic!("{id}: save failed for good: {e}"),
                }
            }
            reported.entry(id.clone()).or_default().push(root.version());
        }
    }
    assert!(plan.injected() > 10, "faults injected: {}", plan.injected());
    plan.set_enabled(false);
    let reader = tables.event_store();
    for (id, versions) in &reported {
        let stored = reader.read(id, 1, None).await.unwrap();
        let last = *versions.last().unwrap();
        assert_eq!(
            stored.len() as u64,
            last,
            "{id}: every saved event once, no more"
        );
        let unique: HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(unique.len(), stored.len(), "{id}: no event twice");
        let (loaded, _) = repo.load::<InventoryItem>(id).await.unwrap();
        assert_eq!(loaded.version(), last);
    }
}
