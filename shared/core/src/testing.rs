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
//! Also: event items as a test stores them ([`stored_event`]), snapshots of a chosen item size
//! ([`sized_snapshot`], for capacity measurements), deterministic histories for
//! benchmarks ([`histories`]) and the audit records a test's thread wrote ([`audit`]). Compiled
//! with the `testing` feature only (a test's or a tool's dev-dependency), so none of it is in
//! the functions' release builds.

use crate::codec::SnapshotCodec;
use crate::domain::{fold, Aggregate, AggregateRoot, DomainError, EventEnvelope};
use crate::snapshot::{
    build_snapshot, SnapshotBuildError, SnapshotMetadata, SnapshotRecord, SnapshotSubject,
};

pub mod audit;
pub mod histories;

/// An INVENTORY_ITEM snapshot of `aggregate_id` at `version` whose state holds about
/// `state_bytes` bytes, stored uncompressed so that the item weighs what the state does: what
/// a test or the bench measures capacity units against (DynamoDB bills by item size). Created
/// at 1,700,000,000,000 + `version` epoch milliseconds, no `lastEventId`.
pub fn sized_snapshot(
    aggregate_id: &str,
    version: u64,
    state_bytes: usize,
) -> Result<SnapshotRecord, SnapshotBuildError> {
    let state = serde_json::json!({
        "id": aggregate_id,
        "sku": "SKU-1",
        "name": "x".repeat(state_bytes),
        "onHand": version,
    });
    build_snapshot(
        &SnapshotCodec::new(usize::MAX),
        SnapshotSubject {
            aggregate_id,
            aggregate_type: "INVENTORY_ITEM",
            schema_version: 1,
            version,
            last_event_id: None,
        },
        state.to_string().into_bytes(),
        SnapshotMetadata::default(),
        1_700_000_000_000 + i64::try_from(version).unwrap_or(i64::MAX),
        None,
    )
}

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
