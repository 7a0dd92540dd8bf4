//! Repository behaviour with the in-memory adapters: request budget, fallbacks, save.

use serde_json::json;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{
    Aggregate, AggregateRoot, DecodedEvent, EventEnvelope, InventoryItem, Warehouse,
};
use snapshot_core::error::EventError;
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::registry::{fold_decoded, fold_envelopes, FoldError};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::testing::stored_event;
use snapshot_core::{AggregateRepository, Registry, RepositoryError};

type Repo = AggregateRepository<InMemoryEventStore, InMemorySnapshotStore>;

fn repo() -> Repo {
    AggregateRepository::new(
        InMemoryEventStore::new(),
        InMemorySnapshotStore::new(),
        SnapshotCodec::default(),
    )
}

async fn item_with(repo: &Repo, id: &str, receipts: usize) -> AggregateRoot<InventoryItem> {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU", "Thing", 1).unwrap();
    for _ in 0..receipts {
        root.receive(1, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    root
}

#[tokio::test]
async fn load_from_snapshot_with_short_tail_costs_two_requests() {
    let repo = repo();
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    let mut root = item_with(&repo, "i1", 50).await;
    repo.snapshot_now(kind, "i1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    root.receive(3, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let (events_before, snapshots_before) = (repo.events().requests(), repo.snapshots().requests());
    let (loaded, report) = repo.load::<InventoryItem>("i1").await.unwrap();
    let requests = (repo.events().requests() - events_before)
        + (repo.snapshots().requests() - snapshots_before);
    assert_eq!(requests, 2, "one snapshot query + one tail query");
    assert_eq!(report.snapshot_version, Some(51));
    assert_eq!(report.events_replayed, 1);
    assert_eq!(loaded.state(), root.state());
}

#[tokio::test]
async fn save_assigns_consecutive_sequences_and_detects_stale_writers() {
    let repo = repo();
    let mut root = item_with(&repo, "i2", 2).await;
    assert_eq!(root.version(), 3);
    let mut stale = AggregateRoot::<InventoryItem>::from_state("i2", 2, root.state().clone());
    root.receive(1, None).unwrap();
    assert_eq!(repo.save(&mut root, None).await.unwrap(), 4);
    stale.receive(1, None).unwrap();
    let err = repo.save(&mut stale, None).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(
        stale.uncommitted().len(),
        1,
        "a failed save keeps the events for a retry"
    );
}

#[tokio::test]
async fn loading_an_aggregate_without_events_is_not_found() {
    let err = repo().load::<Warehouse>("nobody").await.unwrap_err();
    assert!(
        matches!(err, RepositoryError::NotFound { ref aggregate_id } if aggregate_id == "nobody")
    );
}

#[tokio::test]
async fn snapshot_of_another_aggregate_or_type_is_never_applied() {
    let repo = repo();
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    item_with(&repo, "a", 5).await;
    item_with(&repo, "b", 1).await;
    let (mut foreign, _) = repo
        .snapshot_now(kind, "a", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    foreign.header.aggregate_id = "b".into(); // stored under b's key but its state is a's
    foreign.header.version = 2;
    foreign.header.last_event_sequence = 2;
    repo.snapshots().overwrite(foreign);
    let (loaded, report) = repo.load::<InventoryItem>("b").await.unwrap();
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(loaded.state().on_hand, 1);
    assert_eq!(loaded.state().id, "b");
}

#[tokio::test]
async fn manual_snapshot_is_idempotent() {
    let repo = repo();
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    item_with(&repo, "i3", 4).await;
    let (first, outcome) = repo
        .snapshot_now(kind, "i3", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    let (_, outcome) = repo
        .snapshot_now(kind, "i3", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyExists);
    assert_eq!(repo.snapshots().get("i3", 5).await.unwrap(), Some(first));
}

/// The event table restored from a backup taken at version 3, then new, different events
/// appended at 4..=6: the snapshot at 5 folds events that no longer exist.
#[tokio::test]
async fn a_snapshot_whose_boundary_event_was_replaced_is_not_used_and_is_marked() {
    use std::sync::Arc;

    let snapshots = Arc::new(InMemorySnapshotStore::new());
    let before = AggregateRepository::new(
        Arc::new(InMemoryEventStore::new()),
        Arc::clone(&snapshots),
        SnapshotCodec::default(),
    );
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    let mut root = AggregateRoot::<InventoryItem>::new("r1");
    root.create("SKU", "Thing", 1).unwrap();
    root.receive(1, None).unwrap();
    root.receive(1, None).unwrap();
    before.save(&mut root, None).await.unwrap();
    root.receive(100, None).unwrap();
    root.receive(100, None).unwrap();
    before.save(&mut root, None).await.unwrap();
    let (snapshot, _) = before
        .snapshot_now(kind, "r1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(snapshot.header.version, 5);
    let boundary = before.events().read("r1", 5, Some(5)).await.unwrap();
    assert_eq!(
        snapshot.header.last_event_id.as_deref(),
        Some(boundary[0].event_id.as_str()),
        "the snapshot records the eventId of the event at its version"
    );

    // Restore: events 1..=3 only, then different events at 4..=6.
    let restored = Arc::new(InMemoryEventStore::new());
    for event in before.events().read("r1", 1, Some(3)).await.unwrap() {
        restored.insert_raw(event);
    }
    let writer = AggregateRepository::new(
        Arc::clone(&restored),
        InMemorySnapshotStore::new(),
        SnapshotCodec::default(),
    );
    let (mut again, _) = writer.load::<InventoryItem>("r1").await.unwrap();
    for _ in 0..3 {
        again.receive(7, None).unwrap();
    }
    writer.save(&mut again, None).await.unwrap();

    let after = AggregateRepository::new(
        Arc::clone(&restored),
        Arc::clone(&snapshots),
        SnapshotCodec::default(),
    );
    let (loaded, report) = after.load::<InventoryItem>("r1").await.unwrap();
    assert_eq!(
        report.snapshot_version, None,
        "the snapshot at 5 is not trusted"
    );
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(loaded.version(), 6);
    assert_eq!(
        loaded.state(),
        again.state(),
        "the state is the full replay"
    );
    assert_eq!(loaded.state().on_hand, 2 + 21);

    // Found wrong, it is marked: never used or counted again, replaceable at its version.
    let stored = snapshots.get("r1", 5).await.unwrap().unwrap();
    let mark = stored.header.invalid.clone().expect("marked invalid");
    assert!(mark.reason.contains("lastEventId"), "{}", mark.reason);
    assert_eq!(mark.by, "repository");
    assert_eq!(after.snapshots_marked_invalid(), 1);
    let mut replacement = stored.clone();
    replacement.header.invalid = None;
    replacement.header.metadata.reason = "replacement".into();
    assert_eq!(
        snapshots.put_if_absent(&replacement).await.unwrap(),
        PutOutcome::Created,
        "a marked snapshot is replaceable at its version"
    );
    assert_eq!(
        snapshots.put_if_absent(&replacement).await.unwrap(),
        PutOutcome::AlreadyExists,
        "an unmarked one is not"
    );
}

/// An item that does not read as a snapshot is listed as such, and loads walk past it.
#[tokio::test]
async fn an_unreadable_item_is_listed_as_such_and_loads_walk_past_it() {
    let repo = repo();
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    let mut root = item_with(&repo, "u1", 3).await;
    repo.snapshot_now(kind, "u1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    root.receive(1, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    repo.snapshots()
        .insert_unreadable("u1", 5, "missing attribute `checksum`");

    let page = repo.snapshots().headers("u1", None, 10).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let unreadable = page.items[0].as_ref().unwrap_err();
    assert_eq!(unreadable.version, Some(5));
    assert!(unreadable.reason.contains("checksum"));
    assert_eq!(page.items[1].as_ref().unwrap().version, 4);

    let (loaded, report) = repo.load::<InventoryItem>("u1").await.unwrap();
    assert_eq!(report.snapshot_version, Some(4));
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(loaded.state(), root.state());
}

fn envelope(
    id: &str,
    sequence: u64,
    event_type: &str,
    payload: serde_json::Value,
) -> EventEnvelope {
    stored_event(id, sequence, "INVENTORY_ITEM", event_type, payload)
}

/// Both load paths (typed events and JSON states) name an event that does not decode, by
/// aggregate and sequence, when they fold it; a snapshot past it is used without it.
#[tokio::test]
async fn an_undecodable_event_fails_a_load_that_folds_it_and_no_other() {
    let repo = repo();
    let id = "undecodable-1";
    let mut stored = vec![envelope(
        id,
        1,
        "ItemCreated",
        json!({"sku": "SKU", "name": "Thing", "reorderPoint": 1}),
    )];
    stored.push(envelope(id, 2, "StockReceived", json!({"quantity": "ten"})));
    stored.extend((3..=5).map(|s| envelope(id, s, "StockReceived", json!({"quantity": 1}))));
    repo.events().append(0, &stored).await.unwrap();

    let names_event_2 = |e: &RepositoryError| {
        matches!(e, RepositoryError::Event(EventError::InvalidPayload { at, .. })
            if at.aggregate_id == id && at.sequence == Some(2))
    };
    let typed = repo.load::<InventoryItem>(id).await.unwrap_err();
    assert!(names_event_2(&typed), "{typed:?}");
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    let json = repo.load_kind(kind, id).await.unwrap_err();
    assert!(names_event_2(&json), "{json:?}");

    // A snapshot at 3 (its state: the item as created, then event 3's receipt).
    let mut state = InventoryItem::initial(id);
    for event in [&stored[0], &stored[2]] {
        state.apply(&event.decode::<InventoryItem>().unwrap());
    }
    let subject = SnapshotSubject {
        aggregate_id: id,
        aggregate_type: "INVENTORY_ITEM",
        schema_version: InventoryItem::SCHEMA_VERSION,
        version: 3,
        last_event_id: Some(&stored[2].event_id),
    };
    let record = build_snapshot(
        repo.codec(),
        subject,
        serde_json::to_vec(&state).unwrap(),
        SnapshotMetadata::default(),
        0,
        None,
    )
    .unwrap();
    repo.snapshots().put_if_absent(&record).await.unwrap();
    let (loaded, report) = repo.load::<InventoryItem>(id).await.unwrap();
    assert_eq!(
        (report.snapshot_version, report.events_replayed),
        (Some(3), 2)
    );
    assert_eq!(loaded.version(), 5);
    assert_eq!(loaded.state().on_hand, 3);
    let loaded_json = repo.load_kind(kind, id).await.unwrap();
    assert_eq!(
        loaded_json.state_json,
        serde_json::to_vec(loaded.state()).unwrap()
    );
}

/// The typed fold checks sequences as the envelope fold does.
#[test]
fn the_typed_fold_refuses_a_gap_and_names_it() {
    let id = "gap-1";
    let created = envelope(
        id,
        1,
        "ItemCreated",
        json!({"sku": "SKU", "name": "Thing", "reorderPoint": 1}),
    );
    let third = envelope(id, 3, "StockReceived", json!({"quantity": 1}));
    let decoded: Vec<DecodedEvent<_>> = [&created, &third]
        .iter()
        .map(|e| DecodedEvent::read::<InventoryItem>(id, *e))
        .collect();
    let err = fold_decoded::<InventoryItem>(id, 0, None, &decoded).unwrap_err();
    assert_eq!(
        err,
        FoldError::Event(EventError::SequenceGap {
            aggregate_id: id.to_owned(),
            expected: 2,
            found: 3
        })
    );
    let envelopes = [created, third];
    assert_eq!(
        fold_envelopes::<InventoryItem>(id, 0, None, &envelopes).unwrap_err(),
        err
    );
}
