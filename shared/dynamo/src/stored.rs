//! Event items read in place: an item of the event table checked attribute by attribute and
//! its payload decoded straight into the typed event ([`fold_items`]), or into an
//! [`EventEnvelope`] for the type-agnostic ports. Both read the same checks: a malformed item
//! is an [`EventError::Malformed`] naming what could be read of its key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;

use crate::attr::Attr;
use snapshot_core::domain::{Aggregate, DomainEvent, EventDecodeError, EventEnvelope, StoredEvent};
use snapshot_core::error::{EventError, EventRef};
use snapshot_core::registry::{base_state, fold_stored, FoldError};

/// One item of a DynamoDB table, as the SDK gives it.
pub type Item = HashMap<String, AttributeValue>;

/// An event item, borrowed: its key, type and payload as stored, checked but not copied.
#[derive(Debug, Clone, Copy)]
pub struct ItemEvent<'a> {
    aggregate_id: &'a str,
    sequence: u64,
    aggregate_type: &'a str,
    event_type: &'a str,
    event_id: &'a str,
    timestamp: i64,
    payload: &'a AttributeValue,
    metadata: Option<&'a AttributeValue>,
}

/// The attributes of an event item, as found.
#[derive(Default)]
struct Found<'a> {
    aggregate_id: Option<&'a AttributeValue>,
    sequence: Option<&'a AttributeValue>,
    aggregate_type: Option<&'a AttributeValue>,
    event_type: Option<&'a AttributeValue>,
    event_id: Option<&'a AttributeValue>,
    timestamp: Option<&'a AttributeValue>,
    payload: Option<&'a AttributeValue>,
    metadata: Option<&'a AttributeValue>,
}

fn string<'a>(value: Option<&'a AttributeValue>, name: &str) -> Result<&'a str, String> {
    match value {
        Some(AttributeValue::S(s)) => Ok(s),
        Some(_) => Err(format!("attribute `{name}` must be a string (S)")),
        None => Err(format!("missing attribute `{name}`")),
    }
}

fn number<T: std::str::FromStr>(value: Option<&AttributeValue>, name: &str) -> Result<T, String> {
    match value {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| {
            format!(
                "attribute `{name}` must be a {} number, got {n}",
                std::any::type_name::<T>()
            )
        }),
        Some(_) => Err(format!("attribute `{name}` must be a number (N)")),
        None => Err(format!("missing attribute `{name}`")),
    }
}

/// True when the value has a JSON form (no binary value anywhere in it).
fn json_compatible(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::M(m) => m.values().all(json_compatible),
        AttributeValue::L(l) => l.iter().all(json_compatible),
        AttributeValue::B(_) | AttributeValue::Bs(_) => false,
        AttributeValue::S(_)
        | AttributeValue::N(_)
        | AttributeValue::Bool(_)
        | AttributeValue::Null(_)
        | AttributeValue::Ss(_)
        | AttributeValue::Ns(_) => true,
        _ => false,
    }
}

impl<'a> ItemEvent<'a> {
    /// Reads an event item; `aggregate_id` (the one asked for) names it in errors when the
    /// item's own id does not read.
    pub fn read(item: &'a Item, aggregate_id: &str) -> Result<Self, EventError> {
        // One pass over the attributes (cheaper than hashing each name for a lookup).
        let mut found = Found::default();
        for (name, value) in item {
            let slot = match name.as_str() {
                "aggregateId" => &mut found.aggregate_id,
                "sequence" => &mut found.sequence,
                "aggregateType" => &mut found.aggregate_type,
                "eventType" => &mut found.event_type,
                "eventId" => &mut found.event_id,
                "timestamp" => &mut found.timestamp,
                "payload" => &mut found.payload,
                "metadata" => &mut found.metadata,
                _ => continue,
            };
            *slot = Some(value);
        }
        Self::check(&found).map_err(|reason| EventError::Malformed {
            at: EventRef {
                aggregate_id: string(found.aggregate_id, "aggregateId")
                    .unwrap_or(aggregate_id)
                    .to_owned(),
                sequence: number(found.sequence, "sequence").ok(),
            },
            reason,
        })
    }

    fn check(found: &Found<'a>) -> Result<Self, String> {
        let payload = match found.payload {
            Some(payload @ AttributeValue::M(_)) => payload,
            Some(_) => return Err("payload must be a map".to_owned()),
            None => return Err("missing attribute `payload`".to_owned()),
        };
        let metadata = match found.metadata {
            None | Some(AttributeValue::Null(_)) => None,
            Some(metadata @ AttributeValue::M(_)) => Some(metadata),
            Some(_) => return Err("attribute `metadata` must be a map".to_owned()),
        };
        // The payload is walked whole when decoded (unknown fields too), which refuses a
        // binary value; the metadata is not decoded by a fold, so it is checked here.
        if metadata.is_some_and(|m| !json_compatible(m)) {
            return Err("metadata: binary attribute values have no JSON form".to_owned());
        }
        Ok(Self {
            aggregate_id: string(found.aggregate_id, "aggregateId")?,
            sequence: number(found.sequence, "sequence")?,
            aggregate_type: string(found.aggregate_type, "aggregateType")?,
            event_type: string(found.event_type, "eventType")?,
            event_id: string(found.event_id, "eventId")?,
            timestamp: number(found.timestamp, "timestamp")?,
            payload,
            metadata,
        })
    }

    /// The envelope the type-agnostic ports carry (payload and metadata as JSON values).
    pub fn to_envelope(&self) -> Result<EventEnvelope, EventError> {
        let malformed = |reason: String| EventError::Malformed {
            at: self.at(),
            reason,
        };
        let payload = serde_json::Value::deserialize(Attr(self.payload))
            .map_err(|e| malformed(format!("payload: {e}")))?;
        let metadata = self
            .metadata
            .map(|m| serde_json::Map::deserialize(Attr(m)))
            .transpose()
            .map_err(|e| malformed(format!("metadata: {e}")))?;
        Ok(EventEnvelope {
            aggregate_id: self.aggregate_id.to_owned(),
            sequence: self.sequence,
            aggregate_type: self.aggregate_type.to_owned(),
            event_type: self.event_type.to_owned(),
            payload,
            event_id: self.event_id.to_owned(),
            timestamp: self.timestamp,
            metadata,
        })
    }
}

impl StoredEvent for ItemEvent<'_> {
    fn aggregate_id(&self) -> &str {
        self.aggregate_id
    }

    fn sequence(&self) -> u64 {
        self.sequence
    }

    fn aggregate_type(&self) -> &str {
        self.aggregate_type
    }

    fn event_type(&self) -> &str {
        self.event_type
    }

    fn event_id(&self) -> &str {
        self.event_id
    }

    fn decode_payload<E: DomainEvent>(&self) -> Result<E, EventDecodeError> {
        E::from_payload(self.event_type, Attr(self.payload))
    }
}

/// Folds event items (ascending, as a Query returns them) onto `base`, the JSON state at
/// `base_version` (`None`: a new aggregate), each decoded in place straight into `A`'s typed
/// event. The checks are the load's: every item reads as an event, belongs to `aggregate_id`
/// and `A`, carries the next sequence and a known event type with a payload of its shape;
/// each failure names the aggregate and sequence.
pub fn fold_items<A: Aggregate>(
    aggregate_id: &str,
    base_version: u64,
    base: Option<&[u8]>,
    items: &[Item],
) -> Result<A, FoldError> {
    let state = base_state::<A>(aggregate_id, base)?;
    let events = items.iter().map(|item| ItemEvent::read(item, aggregate_id));
    Ok(fold_stored(aggregate_id, base_version, state, events)?)
}
