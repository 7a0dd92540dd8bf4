//! Given/when/then helpers for an aggregate's command tests, shared by the built-in
//! aggregates' tests and usable for an application's own:
//!
//! ```
//! use snapshot_core::domain::inventory_item::{InventoryItem, InventoryItemEvent, ItemCreated};
//! use snapshot_core::testing::{given, then_recorded};
//!
//! let created = InventoryItemEvent::ItemCreated(ItemCreated {
//!     sku: "SKU-1".into(),
//!     name: "Bolt".into(),
//!     reorder_point: 5,
//! });
//! let mut item = given::<InventoryItem>("item-1", &[]);
//! item.create("SKU-1", "Bolt", 5).unwrap();
//! then_recorded(&item, &[created]);
//! ```
//!
//! Also: event items as a test stores them ([`stored_event`]), deterministic histories for
//! benchmarks ([`histories`]) and the audit records a test's thread wrote ([`audit`]). Compiled
//! with the `testing` feature only (a test's or a tool's dev-dependency), so none of it is in
//! the functions' release builds.

use crate::domain::{fold, Aggregate, AggregateRoot, DomainError, EventEnvelope};

pub mod audit;
pub mod histories;

/// Epoch milliseconds of the first event [`stored_event`] writes (2024-05-31).
pub const T0: i64 = 1_717_200_000_000;

/// An event item as a test writes it straight into an event store (any payload, well formed
/// or not): `eventId` `{id}-{sequence}`, timestamp [`T0`] + `sequence`, no metadata.
pub fn stored_event(
    id: &str,
    sequence: u64,
    aggregate_type: &str,
    event_type: &str,
    payload: serde_json::Value,
) -> EventEnvelope {
    EventEnvelope {
        aggregate_id: id.to_owned(),
        sequence,
        aggregate_type: aggregate_type.to_owned(),
        event_type: event_type.to_owned(),
        payload,
        event_id: format!("{id}-{sequence}"),
        timestamp: T0 + sequence as i64,
        metadata: None,
    }
}

/// An aggregate at the version its `events` reach, with nothing uncommitted.
pub fn given<A: Aggregate>(id: &str, events: &[A::Event]) -> AggregateRoot<A> {
    let state = fold(A::initial(id), events);
    AggregateRoot::from_state(id, events.len() as u64, state)
}

/// Asserts the command recorded exactly `expected`.
///
/// # Panics
/// When the recorded events differ (it is a test assertion).
#[track_caller]
pub fn then_recorded<A: Aggregate>(root: &AggregateRoot<A>, expected: &[A::Event]) {
    assert_eq!(root.uncommitted(), expected, "recorded events");
}

/// Asserts the command was rejected and recorded nothing; returns the rejection.
///
/// # Panics
/// When the command succeeded or recorded an event (it is a test assertion).
#[track_caller]
pub fn then_rejected<A: Aggregate>(
    root: &AggregateRoot<A>,
    result: Result<(), DomainError>,
) -> DomainError {
    assert!(
        root.uncommitted().is_empty(),
        "a rejected command must record nothing, recorded {:?}",
        root.uncommitted()
    );
    match result {
        Ok(()) => panic!("command should have been rejected"),
        Err(e) => e,
    }
}
