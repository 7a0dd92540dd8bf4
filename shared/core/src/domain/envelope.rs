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
        EventRef {
            aggregate_id: self.aggregate_id.clone(),
            sequence: Some(self.sequence),
        }
    }

    /// Decodes the typed event of aggregate `A`, checking the aggregate type.
    pub fn decode<A: Aggregate>(&self) -> Result<A::Event, EventError> {
        if self.aggregate_type != A::TYPE {
            return Err(EventError::WrongAggregate {
                at: self.at(),
                expected: format!("{}/{}", A::TYPE, self.aggregate_id),
                found: format!("{}/{}", self.aggregate_type, self.aggregate_id),
            });
        }
        A::Event::from_parts(&self.event_type, &self.payload).map_err(|e| match e {
            EventDecodeError::UnknownEventType => EventError::UnknownEventType {
                at: self.at(),
                aggregate_type: self.aggregate_type.clone(),
                event_type: self.event_type.clone(),
            },
            EventDecodeError::InvalidPayload(reason) => EventError::InvalidPayload {
                at: self.at(),
                event_type: self.event_type.clone(),
                reason,
            },
        })
    }
}
