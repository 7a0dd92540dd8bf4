//! Event items folded in place ([`fold_items`]): the same state as the typed fold, the same
//! verdict as the JSON-value path on any payload, and every check of a load with its typed
//! error naming aggregate and sequence.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::Blob;
use proptest::prelude::*;
use snapshot_core::domain::inventory_item::{
    InventoryItemEvent as IE, ItemCreated, OrderQuantity, StockAdjusted, StockReceived,
};
use snapshot_core::domain::warehouse::{
    LocationRef, LocationStock, WarehouseCreated, WarehouseEvent as WE,
};
use snapshot_core::domain::{
    fold, Aggregate, EventEnvelope, InventoryItem, StoredEvent, Warehouse,
};
use snapshot_core::error::EventError;
use snapshot_core::registry::FoldError;
use snapshot_dynamo::{fold_items, Item, ItemEvent};

fn items_of<A: Aggregate>(id: &str, events: &[A::Event]) -> Vec<Item> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let envelope = EventEnvelope::wrap::<A>(id, i as u64 + 1, e, 1_700_000_000_000, None);
            serde_dynamo::to_item(&envelope).unwrap()
        })
        .collect()
}

fn item_events() -> Vec<IE> {
    vec![
        IE::ItemCreated(ItemCreated {
            sku: "SKU-1".into(),
            name: "Bolt".into(),
            reorder_point: 3,
        }),
        IE::StockReceived(StockReceived {
            quantity: 10,
            reference: Some("PO-1".into()),
        }),
        IE::StockReserved(OrderQuantity {
            order_id: "o-1".into(),
            quantity: 4,
        }),
        IE::StockShipped(OrderQuantity {
            order_id: "o-1".into(),
            quantity: 2,
        }),
        IE::StockAdjusted(StockAdjusted {
            delta: -1,
            reason: "count".into(),
        }),
    ]
}

fn warehouse_events() -> Vec<WE> {
    vec![
        WE::WarehouseCreated(WarehouseCreated {
            name: "North".into(),
            capacity: 100,
        }),
        WE::LocationAdded(LocationRef {
            location: "A-1".into(),
        }),
        WE::StockPlaced(LocationStock {
            location: "A-1".into(),
            sku: "SKU-1".into(),
            quantity: 7,
        }),
        WE::StockPicked(LocationStock {
            location: "A-1".into(),
            sku: "SKU-1".into(),
            quantity: 3,
        }),
    ]
}

#[test]
fn items_fold_to_the_typed_fold_for_both_types() {
    let events = item_events();
    let items = items_of::<InventoryItem>("item-1", &events);
    let state: InventoryItem = fold_items("item-1", 0, None, &items).unwrap();
    assert_eq!(state, fold(InventoryItem::initial("item-1"), &events));
    assert_eq!(state.available, 5);

    let events = warehouse_events();
    let items = items_of::<Warehouse>("wh-1", &events);
    let state: Warehouse = fold_items("wh-1", 0, None, &items).unwrap();
    assert_eq!(state, fold(Warehouse::initial("wh-1"), &events));
    assert_eq!(state.used, 4);
}

#[test]
fn a_tail_folds_onto_its_snapshot_state() {
    let events = item_events();
    let items = items_of::<InventoryItem>("item-1", &events);
    let base = fold(InventoryItem::initial("item-1"), &events[..2]);
    let json = serde_json::to_vec(&base).unwrap();
    let state: InventoryItem = fold_items("item-1", 2, Some(&json), &items[2..]).unwrap();
    assert_eq!(state, fold(InventoryItem::initial("item-1"), &events));
    // A base of another aggregate is refused before any event.
    let err = fold_items::<InventoryItem>("item-2", 2, Some(&json), &[]).unwrap_err();
    assert!(matches!(err, FoldError::BaseState { .. }), "{err}");
}

#[test]
fn envelopes_read_in_place_equal_serde_dynamo_envelopes() {
    let mut metadata = serde_json::Map::new();
    metadata.insert("actor".into(), "ops".into());
    metadata.insert("attempt".into(), 2.into());
    for (i, event) in item_events().iter().enumerate() {
        let envelope = EventEnvelope::wrap::<InventoryItem>(
            "item-1",
            i as u64 + 1,
            event,
            42,
            (i % 2 == 0).then(|| metadata.clone()),
        );
        let item: Item = serde_dynamo::to_item(&envelope).unwrap();
        let read = ItemEvent::read(&item, "item-1")
            .unwrap()
            .to_envelope()
            .unwrap();
        assert_eq!(read, envelope);
        let old: EventEnvelope = serde_dynamo::from_item(item).unwrap();
        assert_eq!(read, old);
    }
}

fn error_of(item: Item) -> EventError {
    let mut items = items_of::<InventoryItem>("item-1", &item_events()[..1]);
    items.push(item);
    match fold_items::<InventoryItem>("item-1", 0, None, &items) {
        Err(FoldError::Event(e)) => e,
        other => panic!("expected an event error, got {other:?}"),
    }
}

fn second_item() -> Item {
    items_of::<InventoryItem>("item-1", &item_events()[..2]).remove(1)
}

fn at_item_1_seq_2(err: &EventError) {
    assert_eq!(err.aggregate_id(), "item-1", "{err}");
    assert!(
        err.to_string().contains("aggregateId=item-1 sequence=2"),
        "{err}"
    );
}

#[test]
fn an_unknown_event_type_names_aggregate_type_and_sequence() {
    let mut item = second_item();
    item.insert(
        "eventType".into(),
        AttributeValue::S("StockTeleported".into()),
    );
    let err = error_of(item);
    match &err {
        EventError::UnknownEventType {
            at,
            aggregate_type,
            event_type,
        } => {
            assert_eq!(at.aggregate_id, "item-1");
            assert_eq!(at.sequence, Some(2));
            assert_eq!(aggregate_type, "INVENTORY_ITEM");
            assert_eq!(event_type, "StockTeleported");
        }
        other => panic!("{other:?}"),
    }
}

/// Breaks an item in one way.
type Breaker = Box<dyn Fn(&mut Item)>;

#[test]
fn malformed_items_are_typed_errors_naming_aggregate_and_sequence() {
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "missing attribute `payload`",
            Box::new(|i| drop(i.remove("payload"))),
        ),
        (
            "payload must be a map",
            Box::new(|i| drop(i.insert("payload".into(), AttributeValue::S("{}".into())))),
        ),
        (
            "`timestamp`",
            Box::new(|i| drop(i.insert("timestamp".into(), AttributeValue::S("yesterday".into())))),
        ),
        (
            "missing attribute `eventId`",
            Box::new(|i| drop(i.remove("eventId"))),
        ),
        (
            "`aggregateType`",
            Box::new(|i| drop(i.insert("aggregateType".into(), AttributeValue::N("1".into())))),
        ),
        (
            "metadata",
            Box::new(|i| {
                let binary = HashMap::from([("k".to_owned(), AttributeValue::B(Blob::new(*b"x")))]);
                drop(i.insert("metadata".into(), AttributeValue::M(binary)));
            }),
        ),
    ];
    for (reason, break_it) in cases {
        let mut item = second_item();
        break_it(&mut item);
        let err = error_of(item);
        assert!(
            matches!(err, EventError::Malformed { .. }),
            "{reason}: {err:?}"
        );
        at_item_1_seq_2(&err);
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
    // An unreadable sequence: the aggregate is still named.
    let mut item = second_item();
    item.insert("sequence".into(), AttributeValue::S("2".into()));
    let err = error_of(item);
    assert!(
        err.to_string()
            .contains("aggregateId=item-1 sequence=<unreadable>"),
        "{err}"
    );
}

#[test]
fn payloads_of_another_shape_are_invalid_payloads() {
    for quantity in [
        AttributeValue::S("5".into()),
        AttributeValue::N("5.5".into()),
        AttributeValue::N("18446744073709551615".into()),
        AttributeValue::Null(true),
    ] {
        let mut item = second_item();
        item.insert(
            "payload".into(),
            AttributeValue::M(HashMap::from([("quantity".to_owned(), quantity.clone())])),
        );
        let err = error_of(item);
        assert!(
            matches!(&err, EventError::InvalidPayload { event_type, .. } if event_type == "StockReceived"),
            "{quantity:?}: {err:?}"
        );
        at_item_1_seq_2(&err);
    }
}

#[test]
fn sequence_and_aggregate_are_checked() {
    let items = items_of::<InventoryItem>("item-1", &item_events());
    let mut gap = items.clone();
    gap.remove(2);
    let err = fold_items::<InventoryItem>("item-1", 0, None, &gap).unwrap_err();
    assert!(
        matches!(
            err,
            FoldError::Event(EventError::SequenceGap {
                expected: 3,
                found: 4,
                ..
            })
        ),
        "{err}"
    );
    let err = fold_items::<InventoryItem>("item-2", 0, None, &items).unwrap_err();
    assert!(
        matches!(err, FoldError::Event(EventError::WrongAggregate { .. })),
        "{err}"
    );
    let err = fold_items::<Warehouse>("item-1", 0, None, &items).unwrap_err();
    assert!(
        matches!(err, FoldError::Event(EventError::WrongAggregate { .. })),
        "{err}"
    );
}

/// Any attribute value a payload field might hold (binary included).
fn attribute() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        "[a-z0-9-]{0,6}".prop_map(AttributeValue::S),
        any::<i64>().prop_map(|n| AttributeValue::N(n.to_string())),
        Just(AttributeValue::N("18446744073709551615".into())),
        Just(AttributeValue::N("2.5".into())),
        Just(AttributeValue::N("1e3".into())),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        Just(AttributeValue::B(Blob::new(*b"\x00"))),
        Just(AttributeValue::Ss(vec!["a".into()])),
        Just(AttributeValue::Ns(vec!["1".into()])),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(AttributeValue::L),
            prop::collection::hash_map("[a-z]{1,3}", inner, 0..3).prop_map(AttributeValue::M),
        ]
    })
}

fn payload() -> impl Strategy<Value = HashMap<String, AttributeValue>> {
    let field = prop_oneof![
        Just("quantity"),
        Just("orderId"),
        Just("reference"),
        Just("sku"),
        Just("name"),
        Just("reorderPoint"),
        Just("delta"),
        Just("reason"),
        Just("location"),
        Just("capacity"),
        Just("extra"),
    ];
    prop::collection::hash_map(field.prop_map(str::to_owned), attribute(), 0..5)
}

/// A payload made of the fields its event type needs, with well-formed values.
fn good_payload(event_type: &str) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.into());
    let n = |v: i64| AttributeValue::N(v.to_string());
    let fields: Vec<(&str, AttributeValue)> = match event_type {
        "ItemCreated" => vec![("sku", s("S")), ("name", s("N")), ("reorderPoint", n(0))],
        "StockReceived" => vec![("quantity", n(1))],
        "StockAdjusted" => vec![("delta", n(-1)), ("reason", s("r"))],
        "ItemDiscontinued" => vec![("reason", s("r"))],
        "WarehouseCreated" => vec![("name", s("N")), ("capacity", n(5))],
        "LocationAdded" | "LocationRemoved" => vec![("location", s("A"))],
        "StockPlaced" | "StockPicked" => {
            vec![("location", s("A")), ("sku", s("S")), ("quantity", n(2))]
        }
        "CapacityChanged" => vec![("capacity", n(9))],
        _ => vec![("orderId", s("o")), ("quantity", n(3))],
    };
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

const EVENT_TYPES: [&str; 14] = [
    "ItemCreated",
    "StockReceived",
    "StockReserved",
    "ReservationReleased",
    "StockShipped",
    "StockAdjusted",
    "ItemDiscontinued",
    "WarehouseCreated",
    "LocationAdded",
    "LocationRemoved",
    "StockPlaced",
    "StockPicked",
    "CapacityChanged",
    "StockTeleported",
];

fn item_with(event_type: &str, payload: HashMap<String, AttributeValue>) -> Item {
    HashMap::from([
        ("aggregateId".into(), AttributeValue::S("a-1".into())),
        ("sequence".into(), AttributeValue::N("1".into())),
        ("aggregateType".into(), AttributeValue::S("X".into())),
        ("eventType".into(), AttributeValue::S(event_type.into())),
        ("eventId".into(), AttributeValue::S("e-1".into())),
        ("timestamp".into(), AttributeValue::N("1".into())),
        ("payload".into(), AttributeValue::M(payload)),
    ])
}

/// The typed event through the old path (serde_dynamo envelope, JSON value) and in place.
fn both_paths<A: Aggregate>(item: &Item) -> (Result<A::Event, ()>, Result<A::Event, ()>) {
    let old = serde_dynamo::from_item::<_, EventEnvelope>(item.clone())
        .map_err(drop)
        .and_then(|e| {
            <A::Event as snapshot_core::DomainEvent>::from_parts(&e.event_type, &e.payload)
                .map_err(drop)
        });
    let new = ItemEvent::read(item, "a-1")
        .map_err(drop)
        .and_then(|e| e.decode_payload::<A::Event>().map_err(drop));
    (old, new)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// In place, a payload is accepted exactly when the JSON-value path accepts it, as the
    /// same event (§4's payloads are a contract: neither more nor less).
    #[test]
    fn payloads_decode_in_place_exactly_as_through_json_values(
        event_type in prop::sample::select(EVENT_TYPES.to_vec()),
        mut payload in payload(),
        base in any::<bool>(),
    ) {
        if base {
            // Mostly well-formed payloads, with the generated fields over them.
            let mut good = good_payload(event_type);
            good.extend(payload.drain());
            payload = good;
        }
        let item = item_with(event_type, payload);
        let (old, new) = both_paths::<InventoryItem>(&item);
        prop_assert_eq!(old, new);
        let (old, new) = both_paths::<Warehouse>(&item);
        prop_assert_eq!(old, new);
    }
}
