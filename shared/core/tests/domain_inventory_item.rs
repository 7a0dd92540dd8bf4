//! Given/when/then tests of every INVENTORY_ITEM command, accepted and rejected.

use snapshot_core::domain::inventory_item::{
    InventoryItemEvent as E, ItemCreated, ItemDiscontinued, ItemStatus, OrderQuantity,
    StockAdjusted, StockReceived,
};
use snapshot_core::domain::{AggregateRoot, DomainError, InventoryItem};
use snapshot_core::testing::{then_recorded, then_rejected};

const ID: &str = "item-1";

/// Given: an item with these events.
fn given(events: &[E]) -> AggregateRoot<InventoryItem> {
    snapshot_core::testing::given(ID, events)
}

fn created() -> E {
    E::ItemCreated(ItemCreated {
        sku: "SKU-1".into(),
        name: "Widget".into(),
        reorder_point: 5,
    })
}

fn received(quantity: i64) -> E {
    E::StockReceived(StockReceived {
        quantity,
        reference: None,
    })
}

fn reserved(order: &str, quantity: i64) -> E {
    E::StockReserved(OrderQuantity {
        order_id: order.into(),
        quantity,
    })
}

fn discontinued() -> E {
    E::ItemDiscontinued(ItemDiscontinued {
        reason: "eol".into(),
    })
}

#[test]
fn create_records_item_created_and_starts_active_with_zero_counts() {
    let mut root = given(&[]);
    root.create("SKU-1", "Widget", 5).unwrap();
    then_recorded(&root, &[created()]);
    let s = root.state();
    assert_eq!(
        (s.on_hand, s.reserved, s.available, s.reorder_point),
        (0, 0, 0, 5)
    );
    assert_eq!(s.status, ItemStatus::Active);
}

#[test]
fn create_twice_is_rejected() {
    let mut root = given(&[created()]);
    let result = root.create("SKU-1", "Widget", 5);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::AlreadyExists { .. }
    ));
}

#[test]
fn create_with_negative_reorder_point_or_blank_sku_is_rejected() {
    let mut root = given(&[]);
    let result = root.create("SKU-1", "Widget", -1);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::InvalidValue {
            field: "reorderPoint",
            ..
        }
    ));
    let result = root.create("  ", "Widget", 1);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::InvalidValue { field: "sku", .. }
    ));
}

#[test]
fn receive_adds_to_on_hand_and_available() {
    let mut root = given(&[created()]);
    root.receive(10, Some("PO-1")).unwrap();
    then_recorded(
        &root,
        &[E::StockReceived(StockReceived {
            quantity: 10,
            reference: Some("PO-1".into()),
        })],
    );
    assert_eq!((root.state().on_hand, root.state().available), (10, 10));
}

#[test]
fn non_positive_quantities_are_rejected_by_every_command() {
    for quantity in [0, -3] {
        let mut root = given(&[created(), received(10), reserved("o1", 2)]);
        let results = [
            root.receive(quantity, None),
            root.reserve("o2", quantity),
            root.release("o1", quantity),
            root.ship("o1", quantity),
        ];
        for result in results {
            let err = then_rejected(&root, result);
            assert!(
                matches!(
                    err,
                    DomainError::InvalidValue {
                        field: "quantity",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}

#[test]
fn command_on_missing_item_is_rejected() {
    let mut root = given(&[]);
    let result = root.receive(1, None);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::NotFound { .. }
    ));
}

#[test]
fn reserve_within_available_records_reservation() {
    let mut root = given(&[created(), received(10)]);
    root.reserve("o1", 4).unwrap();
    then_recorded(&root, &[reserved("o1", 4)]);
    let s = root.state();
    assert_eq!((s.on_hand, s.reserved, s.available), (10, 4, 6));
    assert_eq!(s.reservations.get("o1"), Some(&4));
}

#[test]
fn over_reserve_is_rejected() {
    let mut root = given(&[created(), received(10), reserved("o1", 8)]);
    let result = root.reserve("o2", 3);
    let err = then_rejected(&root, result);
    assert!(
        matches!(
            err,
            DomainError::Exceeds {
                requested: 3,
                limit: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn release_returns_stock_and_removes_empty_reservation() {
    let mut root = given(&[created(), received(10), reserved("o1", 4)]);
    root.release("o1", 4).unwrap();
    then_recorded(
        &root,
        &[E::ReservationReleased(OrderQuantity {
            order_id: "o1".into(),
            quantity: 4,
        })],
    );
    assert_eq!(root.state().available, 10);
    assert!(root.state().reservations.is_empty());
}

#[test]
fn release_more_than_reserved_for_the_order_is_rejected() {
    let mut root = given(&[
        created(),
        received(10),
        reserved("o1", 2),
        reserved("o2", 5),
    ]);
    let result = root.release("o1", 3);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Exceeds {
            requested: 3,
            limit: 2,
            ..
        }
    ));
}

#[test]
fn ship_reserved_stock_reduces_on_hand_and_reserved() {
    let mut root = given(&[created(), received(10), reserved("o1", 4)]);
    root.ship("o1", 3).unwrap();
    let s = root.state();
    assert_eq!((s.on_hand, s.reserved, s.available), (7, 1, 6));
    assert_eq!(s.reservations.get("o1"), Some(&1));
}

#[test]
fn ship_unreserved_is_rejected() {
    let mut root = given(&[created(), received(10)]);
    let result = root.ship("o1", 1);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Exceeds {
            requested: 1,
            limit: 0,
            ..
        }
    ));
}

#[test]
fn adjust_changes_on_hand_but_never_below_reserved() {
    let mut root = given(&[created(), received(10), reserved("o1", 6)]);
    root.adjust(-4, "damaged").unwrap();
    then_recorded(
        &root,
        &[E::StockAdjusted(StockAdjusted {
            delta: -4,
            reason: "damaged".into(),
        })],
    );
    assert_eq!((root.state().on_hand, root.state().available), (6, 0));
    let mut root = given(&[created(), received(10), reserved("o1", 6)]);
    let result = root.adjust(-5, "lost");
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Exceeds { .. }
    ));
}

#[test]
fn zero_adjustment_is_rejected() {
    let mut root = given(&[created(), received(1)]);
    let result = root.adjust(0, "noop");
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::InvalidValue { field: "delta", .. }
    ));
}

#[test]
fn discontinue_sets_status() {
    let mut root = given(&[created()]);
    root.discontinue("eol").unwrap();
    then_recorded(&root, &[discontinued()]);
    assert_eq!(root.state().status, ItemStatus::Discontinued);
}

#[test]
fn every_command_after_discontinuation_is_rejected() {
    let mut root = given(&[created(), received(10), reserved("o1", 2), discontinued()]);
    let results = [
        root.receive(1, None),
        root.reserve("o2", 1),
        root.release("o1", 1),
        root.ship("o1", 1),
        root.adjust(1, "found"),
        root.discontinue("again"),
    ];
    for result in results {
        assert!(matches!(
            then_rejected(&root, result),
            DomainError::Discontinued { .. }
        ));
    }
}

#[test]
fn state_json_has_the_contract_shape() {
    let root = given(&[created(), received(10), reserved("o1", 4)]);
    let json = serde_json::to_value(root.state()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": ID, "sku": "SKU-1", "name": "Widget", "onHand": 10, "reserved": 4,
            "available": 6, "reorderPoint": 5, "status": "ACTIVE", "reservations": {"o1": 4}
        })
    );
}

#[test]
fn a_second_reservation_for_an_order_adds_to_what_it_holds() {
    let root = given(&[
        created(),
        received(10),
        reserved("o1", 4),
        reserved("o1", 2),
        reserved("o2", 1),
    ]);
    let s = root.state();
    assert_eq!(s.reservations.get("o1"), Some(&6));
    assert_eq!(s.reservations.get("o2"), Some(&1));
    assert_eq!((s.on_hand, s.reserved, s.available), (10, 7, 3));
}
