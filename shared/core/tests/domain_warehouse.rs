//! Given/when/then tests of every WAREHOUSE command, accepted and rejected.

use snapshot_core::domain::warehouse::{
    CapacityChanged, LocationRef, LocationStock, WarehouseCreated, WarehouseEvent as E,
};
use snapshot_core::domain::{AggregateRoot, DomainError, Warehouse};
use snapshot_core::testing::{then_recorded, then_rejected};

const ID: &str = "wh-1";

/// Given: a warehouse with these events.
fn given(events: &[E]) -> AggregateRoot<Warehouse> {
    snapshot_core::testing::given(ID, events)
}

fn created(capacity: i64) -> E {
    E::WarehouseCreated(WarehouseCreated {
        name: "Main".into(),
        capacity,
    })
}

fn location(name: &str) -> E {
    E::LocationAdded(LocationRef {
        location: name.into(),
    })
}

fn placed(location: &str, sku: &str, quantity: i64) -> E {
    E::StockPlaced(LocationStock {
        location: location.into(),
        sku: sku.into(),
        quantity,
    })
}

#[test]
fn create_records_warehouse_created() {
    let mut root = given(&[]);
    root.create("Main", 100).unwrap();
    then_recorded(&root, &[created(100)]);
    assert_eq!((root.state().capacity, root.state().used), (100, 0));
}

#[test]
fn create_with_non_positive_capacity_or_twice_is_rejected() {
    let mut root = given(&[]);
    let result = root.create("Main", 0);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::InvalidValue {
            field: "capacity",
            ..
        }
    ));
    let mut root = given(&[created(10)]);
    let result = root.create("Main", 10);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::AlreadyExists { .. }
    ));
}

#[test]
fn add_location_creates_empty_location() {
    let mut root = given(&[created(10)]);
    root.add_location("A-1").unwrap();
    then_recorded(&root, &[location("A-1")]);
    assert!(root.state().locations["A-1"].is_empty());
}

#[test]
fn duplicate_location_is_rejected() {
    let mut root = given(&[created(10), location("A-1")]);
    let result = root.add_location("A-1");
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Location {
            problem: "already exists",
            ..
        }
    ));
}

#[test]
fn remove_empty_location_succeeds() {
    let mut root = given(&[created(10), location("A-1")]);
    root.remove_location("A-1").unwrap();
    then_recorded(
        &root,
        &[E::LocationRemoved(LocationRef {
            location: "A-1".into(),
        })],
    );
    assert!(root.state().locations.is_empty());
}

#[test]
fn remove_non_empty_or_unknown_location_is_rejected() {
    let mut root = given(&[created(10), location("A-1"), placed("A-1", "S", 1)]);
    let result = root.remove_location("A-1");
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Location {
            problem: "is not empty",
            ..
        }
    ));
    let result = root.remove_location("B-9");
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Location {
            problem: "does not exist",
            ..
        }
    ));
}

#[test]
fn place_adds_stock_and_used() {
    let mut root = given(&[created(10), location("A-1")]);
    root.place("A-1", "S", 4).unwrap();
    then_recorded(&root, &[placed("A-1", "S", 4)]);
    assert_eq!(root.state().locations["A-1"]["S"], 4);
    assert_eq!(root.state().used, 4);
}

#[test]
fn place_beyond_capacity_or_at_unknown_location_or_non_positive_is_rejected() {
    let mut root = given(&[created(10), location("A-1"), placed("A-1", "S", 8)]);
    let result = root.place("A-1", "S", 3);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Exceeds {
            requested: 3,
            limit: 2,
            ..
        }
    ));
    let result = root.place("Z", "S", 1);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Location { .. }
    ));
    let result = root.place("A-1", "S", 0);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::InvalidValue {
            field: "quantity",
            ..
        }
    ));
}

#[test]
fn pick_removes_stock_and_drops_empty_sku() {
    let mut root = given(&[created(10), location("A-1"), placed("A-1", "S", 4)]);
    root.pick("A-1", "S", 4).unwrap();
    assert!(root.state().locations["A-1"].is_empty());
    assert_eq!(root.state().used, 0);
}

#[test]
fn picking_more_than_placed_is_rejected() {
    let mut root = given(&[created(10), location("A-1"), placed("A-1", "S", 4)]);
    let result = root.pick("A-1", "S", 5);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::Exceeds {
            requested: 5,
            limit: 4,
            ..
        }
    ));
    let result = root.pick("A-1", "OTHER", 1);
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
fn change_capacity_never_below_used() {
    let mut root = given(&[created(10), location("A-1"), placed("A-1", "S", 6)]);
    root.change_capacity(6).unwrap();
    then_recorded(
        &root,
        &[E::CapacityChanged(CapacityChanged { capacity: 6 })],
    );
    let mut root = given(&[created(10), location("A-1"), placed("A-1", "S", 6)]);
    let result = root.change_capacity(5);
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::InvalidValue {
            field: "capacity",
            ..
        }
    ));
}

#[test]
fn commands_on_missing_warehouse_are_rejected() {
    let mut root = given(&[]);
    let result = root.add_location("A-1");
    assert!(matches!(
        then_rejected(&root, result),
        DomainError::NotFound { .. }
    ));
}

#[test]
fn state_json_has_the_contract_shape() {
    let root = given(&[created(10), location("A-1"), placed("A-1", "S", 2)]);
    assert_eq!(
        serde_json::to_value(root.state()).unwrap(),
        serde_json::json!({"id": ID, "name": "Main", "capacity": 10, "used": 2, "locations": {"A-1": {"S": 2}}})
    );
}

#[test]
fn placing_again_adds_to_the_sku_and_a_new_sku_or_location_starts_at_the_quantity() {
    // Events are facts: a placement at a location never added still lands (apply is total).
    let root = given(&[
        created(100),
        location("A-1"),
        placed("A-1", "S", 4),
        placed("A-1", "S", 3),
        placed("A-1", "T", 1),
        placed("B-2", "S", 5),
    ]);
    let state = root.state();
    assert_eq!(state.locations["A-1"]["S"], 7);
    assert_eq!(state.locations["A-1"]["T"], 1);
    assert_eq!(state.locations["B-2"]["S"], 5);
    assert_eq!(state.used, 13);
}
