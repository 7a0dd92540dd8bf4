//! Item decoding fuzz: arbitrary attribute maps as a stored snapshot item (a genuine, signed
//! item with attributes removed, retyped or replaced, or a map of anything) are read through
//! the DynamoDB snapshot store exactly as DynamoDB would return them (a mocked SDK answers
//! GetItem, Query and Scan). They give an error or an item listed as unreadable, never a panic
//! and never a state: a snapshot that opens is the genuine one, and a load through the
//! repository equals the full replay. (Arbitrary bytes as a state: shared/core/tests/decode_fuzz.rs.)

use integration_tests::mock_dynamo::{MockDynamo, Reply};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use snapshot_core::codec::{SnapshotCodec, StateBody};
use snapshot_core::domain::{AggregateRoot, EventEnvelope, InventoryItem};
use snapshot_core::memory::InMemoryEventStore;
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::snapshot::{
    build_snapshot, open_snapshot, SnapshotMetadata, SnapshotRecord, SnapshotSubject,
};
use snapshot_core::AggregateRepository;
use snapshot_dynamo::DynamoSnapshotStore;

/// An item as DynamoDB sends it: attribute name → `{"S": …}`, `{"N": …}`, `{"M": {…}}`, …
type Item = Map<String, Value>;

const ID: &str = "item-fuzz";
const TYPE: &str = "INVENTORY_ITEM";
/// The snapshot item's attributes, and a few names nobody uses.
const NAMES: [&str; 19] = [
    "aggregateId",
    "version",
    "aggregateType",
    "state",
    "encoding",
    "schemaVersion",
    "checksum",
    "lastEventSequence",
    "timestamp",
    "sizeBytes",
    "storedBytes",
    "metadata",
    "expiresAt",
    "lastEventId",
    "invalid",
    "stateRef",
    "mac",
    "extra",
    "",
];

fn s(value: &str) -> Value {
    json!({ "S": value })
}

fn n(value: impl ToString) -> Value {
    json!({ "N": value.to_string() })
}

/// The item the snapshot table holds for `record` (docs/data-model.md#snapshot-table).
fn item_of(record: &SnapshotRecord) -> Item {
    let h = &record.header;
    let mut item = Item::new();
    for (name, value) in [
        ("aggregateId", s(&h.aggregate_id)),
        ("version", n(h.version)),
        ("aggregateType", s(&h.aggregate_type)),
        ("encoding", s(&h.encoding)),
        ("schemaVersion", n(h.schema_version)),
        ("checksum", s(&h.checksum)),
        ("lastEventSequence", n(h.last_event_sequence)),
        ("timestamp", n(h.timestamp)),
        ("sizeBytes", n(h.size_bytes)),
        ("storedBytes", n(h.stored_bytes)),
        (
            "metadata",
            json!({"M": {"createdBy": s(&h.metadata.created_by), "reason": s(&h.metadata.reason)}}),
        ),
    ] {
        item.insert(name.to_owned(), value);
    }
    let state = match &record.state {
        StateBody::Text(text) => s(text),
        StateBody::Binary(bytes) => json!({ "B": aws_smithy_types::base64::encode(bytes) }),
    };
    item.insert("state".to_owned(), state);
    if let Some(id) = &h.last_event_id {
        item.insert("lastEventId".to_owned(), s(id));
    }
    if let Some(mac) = &h.mac {
        item.insert(
            "mac".to_owned(),
            json!({"M": {"keyId": s(&mac.key_id), "value": s(&mac.value)}}),
        );
    }
    item
}

/// Any attribute value, nested a little.
fn value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        "[0-9eE.+-]{0,24}",
    ];
    let leaf = prop_oneof![
        "\\PC{0,40}".prop_map(|v| json!({ "S": v })),
        number.prop_map(|v| json!({ "N": v })),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| json!({ "B": aws_smithy_types::base64::encode(b) })),
        any::<bool>().prop_map(|v| json!({ "BOOL": v })),
        Just(json!({ "NULL": true })),
        prop::collection::vec("\\PC{0,8}", 0..4).prop_map(|v| json!({ "SS": v })),
        prop::collection::vec("[0-9]{1,4}", 0..4).prop_map(|v| json!({ "NS": v })),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({ "L": v })),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "keyId",
                    "value",
                    "reason",
                    "at",
                    "by",
                    "bucket",
                    "key",
                    "createdBy",
                    "x"
                ])
                .prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|v| json!({ "M": v })),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Set(usize, Value),
    /// A map attribute keeps its shape with one entry replaced.
    SetInside(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let name = 0..NAMES.len();
    prop_oneof![
        name.clone().prop_map(Mutation::Remove),
        (name.clone(), value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (
            name,
            prop::sample::select(vec!["keyId", "value", "createdBy", "reason", "x"]),
            value()
        )
            .prop_map(|(i, k, v)| Mutation::SetInside(i, k.to_owned(), v)),
    ]
}

fn apply(item: &mut Item, mutation: &Mutation) {
    match mutation {
        Mutation::Remove(i) => {
            item.remove(NAMES[*i]);
        }
        Mutation::Set(i, value) => {
            item.insert(NAMES[*i].to_owned(), value.clone());
        }
        Mutation::SetInside(i, key, value) => {
            let entry = item
                .entry(NAMES[*i].to_owned())
                .or_insert_with(|| json!({ "M": {} }));
            if let Some(map) = entry.get_mut("M").and_then(Value::as_object_mut) {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Stored {
    /// The genuine item, changed.
    Mutated(Vec<Mutation>),
    /// Anything at all.
    Random(Item),
}

fn stored() -> impl Strategy<Value = Stored> {
    prop_oneof![
        4 => prop::collection::vec(mutation(), 1..5).prop_map(Stored::Mutated),
        1 => prop::collection::btree_map(
            prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned),
            value(),
            0..10
        )
        .prop_map(|map| Stored::Random(map.into_iter().collect())),
    ]
}

struct Genuine {
    events: Vec<EventEnvelope>,
    state: InventoryItem,
    record: SnapshotRecord,
    codec: SnapshotCodec,
}

async fn genuine(compress: bool) -> Genuine {
    let codec = SnapshotCodec::new(if compress { 0 } else { usize::MAX });
    let events_store = InMemoryEventStore::new();
    let repo = AggregateRepository::new(
        events_store,
        snapshot_core::memory::InMemorySnapshotStore::new(),
        codec.clone(),
    );
    let mut root = AggregateRoot::<InventoryItem>::new(ID);
    root.create("SKU-I", "Item", 2).unwrap();
    root.receive(9, None).unwrap();
    root.reserve("order-1", 4).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let events = repo.events().read(ID, 1, None).await.unwrap();
    let record = build_snapshot(
        &codec,
        SnapshotSubject {
            aggregate_id: ID,
            aggregate_type: TYPE,
            schema_version: 1,
            version: 3,
            last_event_id: Some(&events[2].event_id),
        },
        serde_json::to_vec(root.state()).unwrap(),
        SnapshotMetadata::default(),
        1_700_000_000_000,
        None,
    )
    .unwrap();
    Genuine {
        events,
        state: root.state().clone(),
        record,
        codec,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reads `item` as the stored snapshot every way the code reads one; returns whether any
/// reader accepted it as a valid snapshot (then it must be the genuine one).
async fn read_every_way(genuine: &Genuine, item: &Item) -> Result<bool, TestCaseError> {
    let answer = item.clone();
    let mock = MockDynamo::new(move |operation, body| match operation {
        "GetItem" => Reply::ok(json!({ "Item": answer })),
        // The newest page holds the item; any older page (`version < :before`) is empty.
        "Query" if body["ExpressionAttributeValues"].get(":before").is_some() => {
            Reply::ok(json!({ "Items": [], "Count": 0, "ScannedCount": 0 }))
        }
        "Query" | "Scan" => Reply::ok(json!({ "Items": [answer], "Count": 1, "ScannedCount": 1 })),
        // The mark of an invalid snapshot.
        "UpdateItem" => Reply::ok(json!({})),
        other => Reply::error(400, "ValidationException", &format!("{other} not mocked")),
    });
    let client = mock.client(1);
    let store = DynamoSnapshotStore::new(client, "snapshots");
    let mut accepted = false;
    let mut check = |record: &SnapshotRecord| -> Result<(), TestCaseError> {
        if let Ok(state) = open_snapshot(&genuine.codec, record, ID, TYPE, 1) {
            prop_assert_eq!(
                record.header.checksum.as_str(),
                genuine.record.header.checksum.as_str()
            );
            prop_assert_eq!(record.header.version, 3);
            let decoded: InventoryItem = serde_json::from_slice(&state)
                .map_err(|e| TestCaseError::fail(format!("opened state does not decode: {e}")))?;
            prop_assert_eq!(
                &decoded,
                &genuine.state,
                "a state other than the genuine one"
            );
            accepted = true;
        }
        Ok(())
    };

    // GetItem: an error, or a record that opens only if it is the genuine snapshot.
    if let Ok(Some(record)) = store.get(ID, 3).await {
        check(&record)?;
    }
    // Query (newest first): listed as unreadable, or a record as above; headers the same way.
    if let Ok(page) = store.records(ID, None, 1).await {
        for record in page.items.iter().flatten() {
            check(record)?;
        }
    }
    let _ = store.headers(ID, None, 1).await;
    let _ = store.latest_header(ID).await;
    // Scan (the pruner's read): a summary or an error, never a panic.
    let _ = store.scan_summaries(0, 1, None, 10).await;

    // A load through the repository: the genuine events, this item as the only snapshot.
    let events = InMemoryEventStore::new();
    events.append(0, &genuine.events).await.unwrap();
    let repo = AggregateRepository::new(events, store, genuine.codec.clone());
    let (loaded, report) = repo
        .load::<InventoryItem>(ID)
        .await
        .map_err(|e| TestCaseError::fail(format!("load failed: {e}")))?;
    prop_assert_eq!(loaded.state(), &genuine.state);
    prop_assert_eq!(loaded.version(), 3);
    if report.snapshot_version.is_some() {
        prop_assert!(
            accepted,
            "the load used a snapshot no reader accepted: {:?}",
            report
        );
    }
    Ok(accepted)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn arbitrary_attribute_maps_as_a_stored_snapshot_are_an_error_never_a_state(
        planted in stored(),
        compress in any::<bool>(),
    ) {
        runtime().block_on(async {
            let genuine = genuine(compress).await;
            let mut item = item_of(&genuine.record);
            match &planted {
                Stored::Mutated(mutations) => {
                    for m in mutations {
                        apply(&mut item, m);
                    }
                }
                Stored::Random(map) => item = map.clone(),
            }
            read_every_way(&genuine, &item).await.map(|_| ())
        })?;
    }
}

/// The fuzz's reference point: the genuine item, read the same ways, is accepted.
#[test]
fn the_genuine_item_reads_back_as_the_genuine_snapshot() {
    runtime().block_on(async {
        for compress in [false, true] {
            let genuine = genuine(compress).await;
            let accepted = read_every_way(&genuine, &item_of(&genuine.record))
                .await
                .unwrap();
            assert!(accepted, "compress={compress}");
        }
    });
}
