//! The core library against DynamoDB Local: optimistic concurrency, paginated
//! loads, snapshot integrity checks, compression and the item-size limit, malformed items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::TestTables;
use snapshot_core::codec::{SnapshotCodec, StateBody, DYNAMODB_ITEM_LIMIT};
use snapshot_core::domain::{Aggregate, AggregateRoot, EventEnvelope, InventoryItem, Warehouse};
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::snapshot::{
    build_snapshot, open_snapshot, SnapshotBuildError, SnapshotMetadata, SnapshotRecord,
    SnapshotSubject,
};
use snapshot_core::{AggregateRepository, EventError, RepositoryError, StoreError};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

fn repository(tables: &TestTables) -> Repo {
    AggregateRepository::new(
        tables.event_store(),
        tables.snapshot_store(),
        SnapshotCodec::default(),
    )
}

async fn create_item(repo: &Repo, id: &str, received: &[i64]) -> AggregateRoot<InventoryItem> {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU-1", "Widget", 2).unwrap();
    for quantity in received {
        root.receive(*quantity, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    root
}

fn snapshot_of<A: Aggregate>(root: &AggregateRoot<A>, schema_version: u32) -> SnapshotRecord {
    let subject = SnapshotSubject {
        aggregate_id: root.id(),
        aggregate_type: A::TYPE,
        schema_version,
        version: root.version(),
        last_event_id: None,
    };
    let state = serde_json::to_vec(root.state()).unwrap();
    build_snapshot(
        &SnapshotCodec::default(),
        subject,
        state,
        SnapshotMetadata::default(),
        1,
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn concurrent_single_event_appends_at_same_version_exactly_one_wins() {
    let tables = TestTables::create("conflict1").await;
    let repo = repository(&tables);
    create_item(&repo, "item-c1", &[]).await;
    let (mut a, _) = repo.load::<InventoryItem>("item-c1").await.unwrap();
    let (mut b, _) = repo.load::<InventoryItem>("item-c1").await.unwrap();
    a.receive(5, None).unwrap();
    b.receive(7, None).unwrap();
    let (ra, rb) = tokio::join!(repo.save(&mut a, None), repo.save(&mut b, None));
    let results = [ra, rb];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one writer wins: {results:?}"
    );
    let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(
        loser.is_conflict(),
        "the other gets the conflict error: {loser}"
    );
    assert!(
        matches!(loser, RepositoryError::Store(StoreError::Conflict { aggregate_id, expected_version: 1 }) if aggregate_id == "item-c1")
    );
    let events = repo.events().read("item-c1", 1, None).await.unwrap();
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn concurrent_multi_event_commits_at_same_version_exactly_one_wins() {
    let tables = TestTables::create("conflictn").await;
    let repo = repository(&tables);
    create_item(&repo, "item-cn", &[]).await;
    let (mut a, _) = repo.load::<InventoryItem>("item-cn").await.unwrap();
    let (mut b, _) = repo.load::<InventoryItem>("item-cn").await.unwrap();
    for q in [1, 2, 3] {
        a.receive(q, None).unwrap();
        b.receive(q * 10, None).unwrap();
    }
    let (ra, rb) = tokio::join!(repo.save(&mut a, None), repo.save(&mut b, None));
    let results = [ra, rb];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .any(|r| r.as_ref().is_err_and(RepositoryError::is_conflict)));
    let (loaded, _) = repo.load::<InventoryItem>("item-cn").await.unwrap();
    assert_eq!(loaded.version(), 4);
    assert!(
        loaded.state().on_hand == 6 || loaded.state().on_hand == 60,
        "one commit applied whole, not mixed"
    );
}

#[tokio::test]
async fn aggregate_with_more_than_one_megabyte_of_events_loads_completely() {
    let tables = TestTables::create("bigstream").await;
    let repo = repository(&tables);
    let id = "item-big";
    let reference = "r".repeat(6_000);
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU", "Big", 0).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let count = 220u64; // 220 × ~6 KB ≈ 1.3 MB: more than one 1 MB query page
    let events: Vec<EventEnvelope> = (0..count)
        .map(|i| {
            let mut r = AggregateRoot::<InventoryItem>::from_state(id, 1 + i, root.state().clone());
            r.receive(1, Some(&reference)).unwrap();
            EventEnvelope::wrap::<InventoryItem>(id, 2 + i, &r.uncommitted()[0], 0, None)
        })
        .collect();
    // Appends in order (no append may leave a gap), 20 events per transaction.
    let store = repo.events();
    for chunk in events.chunks(20) {
        store.append(chunk[0].sequence - 1, chunk).await.unwrap();
    }
    let stored = repo.events().read(id, 1, None).await.unwrap();
    assert_eq!(stored.len() as u64, count + 1, "every page was read");
    let (loaded, report) = repo.load::<InventoryItem>(id).await.unwrap();
    assert_eq!(loaded.version(), count + 1);
    assert_eq!(loaded.state().on_hand, count as i64);
    assert_eq!(report.events_replayed, count + 1);
}

#[tokio::test]
async fn corrupted_stored_snapshot_is_skipped_and_state_is_still_correct() {
    let tables = TestTables::create("corrupt").await;
    let repo = repository(&tables);
    let root = create_item(&repo, "item-x", &[3, 4]).await;
    repo.snapshots()
        .put_if_absent(&snapshot_of(&root, 1))
        .await
        .unwrap();
    // Flip the stored state in place, as a bad write or manual edit would.
    let corrupted = serde_json::to_string(root.state())
        .unwrap()
        .replace("\"onHand\":7", "\"onHand\":9");
    tables
        .client
        .update_item()
        .table_name(&tables.snapshots_table)
        .key("aggregateId", AttributeValue::S("item-x".into()))
        .key("version", AttributeValue::N("3".into()))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":s", AttributeValue::S(corrupted))
        .send()
        .await
        .unwrap();
    let (loaded, report) = repo.load::<InventoryItem>("item-x").await.unwrap();
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(report.snapshot_version, None);
    assert_eq!(loaded.state().on_hand, 7);
    assert_eq!(repo.invalid_snapshots_skipped(), 1);
}

#[tokio::test]
async fn snapshot_of_another_schema_version_is_ignored_and_older_valid_one_used() {
    let tables = TestTables::create("schema").await;
    let repo = repository(&tables);
    let mut root = create_item(&repo, "item-s", &[1]).await;
    repo.snapshots()
        .put_if_absent(&snapshot_of(&root, 1))
        .await
        .unwrap(); // v2, valid
    root.receive(5, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let mut wrong = snapshot_of(&root, 99); // v3, other revision, fine checksum
    wrong.state = StateBody::Text(r#"{"bogus":true}"#.into());
    wrong.header.checksum = snapshot_core::codec::sha256_hex(br#"{"bogus":true}"#);
    repo.snapshots().put_if_absent(&wrong).await.unwrap();
    let (loaded, report) = repo.load::<InventoryItem>("item-s").await.unwrap();
    assert_eq!(
        report.snapshot_version,
        Some(2),
        "falls back to the older valid snapshot"
    );
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(report.events_replayed, 1);
    assert_eq!(loaded.state().on_hand, 6);
}

#[tokio::test]
async fn snapshot_beyond_the_event_stream_is_not_applied() {
    let tables = TestTables::create("beyond").await;
    let repo = repository(&tables);
    let root = create_item(&repo, "item-b", &[2]).await;
    let mut ahead = AggregateRoot::<InventoryItem>::from_state("item-b", 10, root.state().clone());
    ahead.receive(100, None).unwrap();
    ahead.mark_committed();
    repo.snapshots()
        .put_if_absent(&snapshot_of(&ahead, 1))
        .await
        .unwrap();
    let (loaded, report) = repo.load::<InventoryItem>("item-b").await.unwrap();
    assert_eq!(report.snapshot_version, None);
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(loaded.state().on_hand, 2);
}

#[tokio::test]
async fn load_uses_snapshot_and_only_the_tail() {
    let tables = TestTables::create("tail").await;
    let repo = repository(&tables);
    let mut root = create_item(&repo, "item-t", &[1, 1, 1]).await;
    repo.snapshots()
        .put_if_absent(&snapshot_of(&root, 1))
        .await
        .unwrap();
    root.receive(10, None).unwrap();
    root.receive(20, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let (loaded, report) = repo.load::<InventoryItem>("item-t").await.unwrap();
    assert_eq!(report.snapshot_version, Some(4));
    assert_eq!(report.events_replayed, 2);
    assert_eq!(loaded.state(), root.state());
}

fn big_warehouse(id: &str, locations: usize, random_names: bool) -> Warehouse {
    let mut state = Warehouse::initial(id);
    state.name = "Distribution centre".into();
    state.capacity = i64::MAX;
    for i in 0..locations {
        let name = if random_names {
            uuid::Uuid::new_v4().to_string()
        } else {
            format!("AISLE-{:03}-BAY-{:04}", i / 1000, i % 1000)
        };
        let skus = state.locations.entry(name).or_default();
        for s in 0..3 {
            let sku = if random_names {
                uuid::Uuid::new_v4().to_string()
            } else {
                format!("SKU-{:06}", i * 3 + s)
            };
            skus.insert(sku, (i + s) as i64 + 1);
            state.used += (i + s) as i64 + 1;
        }
    }
    state
}

#[tokio::test]
async fn multi_megabyte_warehouse_state_is_compressed_and_round_trips() {
    let tables = TestTables::create("bigstate").await;
    let store = tables.snapshot_store();
    let codec = SnapshotCodec::default();
    let state = big_warehouse("wh-big", 30_000, false);
    let json = serde_json::to_vec(&state).unwrap();
    assert!(
        json.len() > 2 * 1024 * 1024,
        "state is multi-megabyte: {} bytes",
        json.len()
    );
    let subject = SnapshotSubject {
        aggregate_id: "wh-big",
        aggregate_type: "WAREHOUSE",
        schema_version: Warehouse::SCHEMA_VERSION,
        version: 30_000,
        last_event_id: None,
    };
    let record = build_snapshot(
        &codec,
        subject,
        json.clone(),
        SnapshotMetadata::default(),
        1,
        None,
    )
    .unwrap();
    assert_eq!(record.header.encoding, "json+zstd");
    assert!(record.header.stored_bytes < DYNAMODB_ITEM_LIMIT as u64);
    assert_eq!(
        store.put_if_absent(&record).await.unwrap(),
        PutOutcome::Created
    );
    let fetched = store.get("wh-big", 30_000).await.unwrap().unwrap();
    assert_eq!(fetched, record);
    let decoded = open_snapshot(
        &codec,
        &fetched,
        "wh-big",
        "WAREHOUSE",
        Warehouse::SCHEMA_VERSION,
    )
    .unwrap();
    assert_eq!(
        serde_json::from_slice::<Warehouse>(&decoded).unwrap(),
        state
    );
}

#[tokio::test]
async fn warehouse_state_over_the_item_limit_after_compression_fails_with_typed_error_before_write()
{
    let tables = TestTables::create("toolarge").await;
    let store = tables.snapshot_store();
    let state = big_warehouse("wh-huge", 12_000, true); // random names barely compress
    let json = serde_json::to_vec(&state).unwrap();
    let subject = SnapshotSubject {
        aggregate_id: "wh-huge",
        aggregate_type: "WAREHOUSE",
        schema_version: 1,
        version: 7,
        last_event_id: None,
    };
    let err = build_snapshot(
        &SnapshotCodec::default(),
        subject,
        json,
        SnapshotMetadata::default(),
        1,
        None,
    )
    .unwrap_err();
    match &err {
        SnapshotBuildError::TooLarge {
            aggregate_id,
            version,
            item_bytes,
            limit,
        } => {
            assert_eq!(
                (aggregate_id.as_str(), *version, *limit),
                ("wh-huge", 7, DYNAMODB_ITEM_LIMIT)
            );
            assert!(*item_bytes > DYNAMODB_ITEM_LIMIT);
        }
        other @ SnapshotBuildError::Codec { .. } => panic!("expected TooLarge, got {other}"),
    }
    assert!(err.to_string().contains("wh-huge"));
    assert!(
        store.latest_header("wh-huge").await.unwrap().is_none(),
        "nothing was written"
    );
}

async fn put_raw_event(tables: &TestTables, item: HashMap<String, AttributeValue>) {
    tables
        .client
        .put_item()
        .table_name(&tables.events_table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

fn raw_event(id: &str, sequence: u64, event_type: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("aggregateId".into(), AttributeValue::S(id.into())),
        ("sequence".into(), AttributeValue::N(sequence.to_string())),
        (
            "aggregateType".into(),
            AttributeValue::S("INVENTORY_ITEM".into()),
        ),
        ("eventType".into(), AttributeValue::S(event_type.into())),
        ("eventId".into(), AttributeValue::S(format!("e-{sequence}"))),
        ("timestamp".into(), AttributeValue::N("1".into())),
        (
            "payload".into(),
            AttributeValue::M(HashMap::from([(
                "quantity".into(),
                AttributeValue::N("3".into()),
            )])),
        ),
    ])
}

#[tokio::test]
async fn malformed_stored_events_are_typed_errors_naming_aggregate_and_sequence() {
    let tables = TestTables::create("malformed").await;
    let repo = repository(&tables);

    create_item(&repo, "item-m1", &[]).await;
    let mut missing = raw_event("item-m1", 2, "StockReceived");
    missing.remove("payload");
    put_raw_event(&tables, missing).await;
    let err = repo.load::<InventoryItem>("item-m1").await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Store(StoreError::Event(EventError::Malformed { at, .. })) if at.aggregate_id == "item-m1" && at.sequence == Some(2)),
        "{err}"
    );
    assert!(
        err.to_string().contains("aggregateId=item-m1 sequence=2"),
        "{err}"
    );

    create_item(&repo, "item-m2", &[]).await;
    let mut wrong_type = raw_event("item-m2", 2, "StockReceived");
    wrong_type.insert("timestamp".into(), AttributeValue::S("yesterday".into()));
    put_raw_event(&tables, wrong_type).await;
    let err = repo.load::<InventoryItem>("item-m2").await.unwrap_err();
    assert!(
        err.to_string().contains("aggregateId=item-m2 sequence=2"),
        "{err}"
    );

    create_item(&repo, "item-m3", &[]).await;
    put_raw_event(&tables, raw_event("item-m3", 2, "StockTeleported")).await;
    let err = repo.load::<InventoryItem>("item-m3").await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Event(EventError::UnknownEventType { event_type, at, .. }) if event_type == "StockTeleported" && at.sequence == Some(2)),
        "{err}"
    );

    create_item(&repo, "item-m4", &[]).await;
    let mut other_type = raw_event("item-m4", 2, "StockReceived");
    other_type.insert(
        "aggregateType".into(),
        AttributeValue::S("SPACESHIP".into()),
    );
    put_raw_event(&tables, other_type).await;
    let err = repo.load::<InventoryItem>("item-m4").await.unwrap_err();
    assert!(
        matches!(&err, RepositoryError::Event(EventError::WrongAggregate { at, .. }) if at.sequence == Some(2)),
        "{err}"
    );
}

#[tokio::test]
async fn unreadable_snapshot_item_is_skipped_for_an_older_valid_snapshot() {
    let tables = TestTables::create("unreadable").await;
    let repo = repository(&tables);
    let mut root = create_item(&repo, "item-u", &[2]).await;
    repo.snapshots()
        .put_if_absent(&snapshot_of(&root, 1))
        .await
        .unwrap(); // v2, valid
    root.receive(3, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    // v3 lacks most attributes: it cannot even be parsed into a record.
    tables
        .client
        .put_item()
        .table_name(&tables.snapshots_table)
        .item("aggregateId", AttributeValue::S("item-u".into()))
        .item("version", AttributeValue::N("3".into()))
        .item("state", AttributeValue::S("{}".into()))
        .send()
        .await
        .unwrap();
    let (loaded, report) = repo.load::<InventoryItem>("item-u").await.unwrap();
    assert_eq!(report.snapshot_version, Some(2));
    assert_eq!(report.snapshots_skipped, 1);
    assert_eq!(repo.invalid_snapshots_skipped(), 1);
    assert_eq!(loaded.state(), root.state());
}

/// The event table restored from a backup at version 3, then different events at 4..=5: the
/// snapshot at 5 names an eventId the table no longer has, so it is not used, and is marked.
#[tokio::test]
async fn a_snapshot_whose_boundary_event_was_rewritten_is_marked_and_not_used() {
    let tables = TestTables::create("restored").await;
    let repo = repository(&tables);
    let registry = snapshot_core::Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    create_item(&repo, "item-r", &[1, 1, 100, 100]).await;
    let (snapshot, _) = repo
        .snapshot_now(kind, "item-r", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(snapshot.header.version, 5);
    assert!(snapshot.header.last_event_id.is_some());
    for sequence in [4, 5] {
        tables
            .client
            .delete_item()
            .table_name(&tables.events_table)
            .key("aggregateId", AttributeValue::S("item-r".into()))
            .key("sequence", AttributeValue::N(sequence.to_string()))
            .send()
            .await
            .unwrap();
    }
    let (mut restored, report) = repo.load::<InventoryItem>("item-r").await.unwrap();
    assert_eq!(report.snapshot_version, None, "beyond the restored stream");
    restored.receive(7, None).unwrap();
    restored.receive(7, None).unwrap();
    repo.save(&mut restored, None).await.unwrap();

    let (loaded, report) = repo.load::<InventoryItem>("item-r").await.unwrap();
    assert_eq!(report.snapshot_version, None);
    assert_eq!(loaded.version(), 5);
    assert_eq!(loaded.state().on_hand, 2 + 14);
    let stored = repo.snapshots().get("item-r", 5).await.unwrap().unwrap();
    assert!(
        stored.header.invalid.is_some(),
        "marked invalid in the table"
    );
    let page = repo.snapshots().headers("item-r", None, 10).await.unwrap();
    assert!(page.items[0].as_ref().unwrap().invalid.is_some());
    // Replaceable at its version: a manual snapshot now stores the right state there.
    let (replacement, outcome) = repo
        .snapshot_now(kind, "item-r", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(replacement.header.version, 5);
    let (again, report) = repo.load::<InventoryItem>("item-r").await.unwrap();
    assert_eq!(report.snapshot_version, Some(5));
    assert_eq!(again.state(), loaded.state());
}

/// An item that does not read as a snapshot comes back as such in a listing, not as an error.
#[tokio::test]
async fn an_unreadable_snapshot_item_is_listed_as_unreadable() {
    let tables = TestTables::create("unreadable").await;
    let repo = repository(&tables);
    let root = create_item(&repo, "item-u", &[3]).await;
    repo.snapshots()
        .put_if_absent(&snapshot_of(&root, 1))
        .await
        .unwrap();
    tables
        .client
        .put_item()
        .table_name(&tables.snapshots_table)
        .item("aggregateId", AttributeValue::S("item-u".into()))
        .item("version", AttributeValue::N("9".into()))
        .item("state", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
    for page in [
        repo.snapshots()
            .headers("item-u", None, 10)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|h| h.map(|h| h.version))
            .collect::<Vec<_>>(),
        repo.snapshots()
            .records("item-u", None, 10)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.map(|r| r.header.version))
            .collect(),
    ] {
        assert_eq!(page.len(), 2);
        let unreadable = page[0].as_ref().unwrap_err();
        assert_eq!(unreadable.version, Some(9));
        assert_eq!(page[1].as_ref().unwrap(), &2);
    }
    let (_, report) = repo.load::<InventoryItem>("item-u").await.unwrap();
    assert_eq!(report.snapshot_version, Some(2));
    assert_eq!(report.snapshots_skipped, 1);
}
