//! The stored form of an event: one item of the event table (docs/data-model.md#event-table).

use serde::{Deserialize, Serialize};

use super::{Aggregate, DomainEvent, EventDecodeError};
use crate::error::{EventError, EventRef};

/// One event as stored in the event table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// Sequence number of the event within its aggregate.
    pub sequence: u64,
    /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
    pub aggregate_type: String,
    /// The stored `eventType`.
    pub event_type: String,
    /// The event body.
    pub payload: serde_json::Value,
    /// Unique id of the event.
    pub event_id: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Who created it, why, and for which request.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl EventEnvelope {
    /// Wraps a typed event for storage.
    pub fn wrap<A: Aggregate>(
        aggregate_id: &str,
        sequence: u64,
        event: &A::Event,
        timestamp: i64,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Self {
        Self::wrap_with_id::<A>(
            aggregate_id,
            sequence,
            event,
            uuid::Uuid::new_v4().to_string(),
            timestamp,
            metadata,
        )
    }

    /// Wraps a typed event under a given `eventId` (the id it was recorded with).
    pub fn wrap_with_id<A: Aggregate>(
        aggregate_id: &str,
        sequence: u64,
        event: &A::Event,
        event_id: String,
        timestamp: i64,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Self {
        Self {
            aggregate_id: aggregate_id.to_owned(),
            sequence,
            aggregate_type: A::TYPE.to_owned(),
            event_type: event.event_type().to_owned(),
            payload: event.to_payload(),
            event_id,
            timestamp,
            metadata,
        }
    }

    /// Which event (aggregate and sequence).
    pub fn at(&self) -> EventRef {
        StoredEvent::at(self)
    }

    /// Decodes the typed event of aggregate `A`, checking the aggregate type.
    pub fn decode<A: Aggregate>(&self) -> Result<A::Event, EventError> {
        StoredEvent::decode::<A>(self)
    }
}

/// An event as a store holds it, read in place: what a fold checks (aggregate, type,
/// sequence) and the payload it decodes. [`EventEnvelope`] is one; a store adapter folds its
/// own items through it without building envelopes (`snapshot_dynamo::fold_items` decodes
/// DynamoDB attribute maps straight into typed events).
pub trait StoredEvent {
    /// The aggregate the item belongs to.
    fn aggregate_id(&self) -> &str;
    /// Sequence number of the event within its aggregate.
    fn sequence(&self) -> u64;
    /// The stored `aggregateType`.
    fn aggregate_type(&self) -> &str;
    /// The stored `eventType`.
    fn event_type(&self) -> &str;
    /// Unique id of the event.
    fn event_id(&self) -> &str;
    /// The payload decoded as `E` (see [`DomainEvent::from_payload`]).
    fn decode_payload<E: DomainEvent>(&self) -> Result<E, EventDecodeError>;

    /// Which event (aggregate and sequence).
    fn at(&self) -> EventRef {
        EventRef {
            aggregate_id: self.aggregate_id().to_owned(),
            sequence: Some(self.sequence()),
        }
    }

    /// Decodes the typed event of aggregate `A`, checking the aggregate type; errors name
    /// the aggregate and sequence.
    fn decode<A: Aggregate>(&self) -> Result<A::Event, EventError> {
        if self.aggregate_type() != A::TYPE {
            return Err(EventError::WrongAggregate {
                at: self.at(),
                expected: format!("{}/{}", A::TYPE, self.aggregate_id()),
                found: format!("{}/{}", self.aggregate_type(), self.aggregate_id()),
            });
        }
        self.decode_payload::<A::Event>().map_err(|e| match e {
            EventDecodeError::UnknownEventType => EventError::UnknownEventType {
                at: self.at(),
                aggregate_type: self.aggregate_type().to_owned(),
                event_type: self.event_type().to_owned(),
            },
            EventDecodeError::InvalidPayload(reason) => EventError::InvalidPayload {
                at: self.at(),
                event_type: self.event_type().to_owned(),
                reason,
            },
        })
    }

    /// Checks that the event belongs to `aggregate_id` and `A` (a [`EventError::WrongAggregate`]
    /// otherwise), then decodes it (see [`StoredEvent::decode`]).
    fn decode_for<A: Aggregate>(&self, aggregate_id: &str) -> Result<A::Event, EventError> {
        self.belongs_to::<A>(aggregate_id)?;
        self.decode::<A>()
    }

    /// Checks that the event belongs to `aggregate_id` and `A`.
    fn belongs_to<A: Aggregate>(&self, aggregate_id: &str) -> Result<(), EventError> {
        if self.aggregate_id() != aggregate_id || self.aggregate_type() != A::TYPE {
            return Err(EventError::WrongAggregate {
                at: self.at(),
                expected: format!("{}/{aggregate_id}", A::TYPE),
                found: format!("{}/{}", self.aggregate_type(), self.aggregate_id()),
            });
        }
        Ok(())
    }
}

impl StoredEvent for EventEnvelope {
    fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    fn sequence(&self) -> u64 {
        self.sequence
    }

    fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }

    fn event_type(&self) -> &str {
        &self.event_type
    }

    fn event_id(&self) -> &str {
        &self.event_id
    }

    fn decode_payload<E: DomainEvent>(&self) -> Result<E, EventDecodeError> {
        E::from_parts(&self.event_type, &self.payload)
    }
}

impl<T: StoredEvent + ?Sized> StoredEvent for &T {
    fn aggregate_id(&self) -> &str {
        (**self).aggregate_id()
    }

    fn sequence(&self) -> u64 {
        (**self).sequence()
    }

    fn aggregate_type(&self) -> &str {
        (**self).aggregate_type()
    }

    fn event_type(&self) -> &str {
        (**self).event_type()
    }

    fn event_id(&self) -> &str {
        (**self).event_id()
    }

    fn decode_payload<E: DomainEvent>(&self) -> Result<E, EventDecodeError> {
        (**self).decode_payload()
    }
}

/// What a reader of an aggregate's events needs of each one, whatever its form: where it sits
/// and its `eventId` (a snapshot's boundary check, a load's head).
pub trait ReadEvent: Clone + Send + Sync {
    /// Sequence number of the event within its aggregate.
    fn sequence(&self) -> u64;
    /// Unique id of the event.
    fn event_id(&self) -> &str;
}

impl ReadEvent for EventEnvelope {
    fn sequence(&self) -> u64 {
        self.sequence
    }

    fn event_id(&self) -> &str {
        &self.event_id
    }
}

/// An event read for one aggregate type's typed fold (a repository's `load`): its sequence and
/// `eventId`, and the typed event decoded straight from the store's own form, with no untyped
/// JSON value in between (`snapshot_dynamo` decodes DynamoDB attribute maps in place). A
/// decoding error is kept for the fold, as an envelope's would surface there: an event a load
/// does not fold (older than the snapshot it uses) never fails it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent<E> {
    /// Sequence number of the event within its aggregate.
    pub sequence: u64,
    /// Unique id of the event.
    pub event_id: String,
    /// The typed event, or why the stored one is not an event of this aggregate.
    pub event: Result<E, EventError>,
}

impl<E> DecodedEvent<E> {
    /// Decodes `stored` as an event of `A` that belongs to `aggregate_id` (see
    /// [`StoredEvent::decode_for`]).
    pub fn read<A: Aggregate<Event = E>>(aggregate_id: &str, stored: &impl StoredEvent) -> Self {
        Self {
            sequence: stored.sequence(),
            event_id: stored.event_id().to_owned(),
            event: stored.decode_for::<A>(aggregate_id),
        }
    }
}

impl<E: Clone + Send + Sync> ReadEvent for DecodedEvent<E> {
    fn sequence(&self) -> u64 {
        self.sequence
    }

    fn event_id(&self) -> &str {
        &self.event_id
    }
}
