//! The domain: a generic [`Aggregate`] and the aggregates of the Inventory Service.
//!
//! Events are facts: [`Aggregate::apply`] is total and never rejects. Business rules live in the
//! command methods on [`AggregateRoot`], which validate and then record events.

pub mod envelope;
pub mod inventory_item;
pub mod warehouse;

use std::fmt::Debug;

use serde::{de::DeserializeOwned, Serialize};

pub use envelope::{DecodedEvent, EventEnvelope, ReadEvent, StoredEvent};
pub use inventory_item::InventoryItem;
pub use warehouse::Warehouse;

/// An event-sourced aggregate; the implementing type is its state (the snapshot JSON).
pub trait Aggregate:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// The `aggregateType` stored with every event and snapshot.
    const TYPE: &'static str;
    /// Revision of the state shape; snapshots of any other revision are never applied.
    const SCHEMA_VERSION: u32;
    /// The aggregate's events: the only way its state changes ([`Aggregate::apply`]).
    type Event: DomainEvent;

    /// The state before the first event.
    fn initial(id: &str) -> Self;
    /// The id recorded in the state (checked against the key before a snapshot is applied).
    fn aggregate_id(&self) -> &str;
    /// Folds one event into the state. Total: it never fails and never panics.
    fn apply(&mut self, event: &Self::Event);
}

/// Why a stored event could not be turned into a typed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDecodeError {
    /// The aggregate has no event of the stored `eventType` (the payload is not looked at).
    UnknownEventType,
    /// The event type is known and its payload does not deserialise into it; the text is
    /// serde's.
    InvalidPayload(String),
}

/// A typed domain event that maps to the stored `eventType` + `payload` pair.
pub trait DomainEvent: Clone + Debug + PartialEq + Send + Sync + 'static {
    /// The stored `eventType` of this event (`StockReceived`, …): fixed per variant, part of
    /// the event contract (docs/event-contract.md).
    fn event_type(&self) -> &'static str;
    /// The stored `payload`: the variant's fields as a JSON object.
    fn to_payload(&self) -> serde_json::Value;
    /// The event stored as `event_type` with `payload` (the inverse of
    /// [`DomainEvent::event_type`] and [`DomainEvent::to_payload`]).
    fn from_parts(event_type: &str, payload: &serde_json::Value) -> Result<Self, EventDecodeError>;

    /// Built from the stored `eventType` and the payload in any serde representation (e.g. a
    /// DynamoDB attribute map read in place), without an untyped value in between. The event
    /// type is looked at first: an unknown one is [`EventDecodeError::UnknownEventType`]
    /// whatever its payload. The default goes through a JSON value; [`domain_events!`]
    /// decodes straight into the payload struct.
    fn from_payload<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, EventDecodeError>
    where
        Self: Sized,
    {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(payload)
            .map_err(|e| EventDecodeError::InvalidPayload(e.to_string()))?;
        Self::from_parts(event_type, &value)
    }
}

/// Declares an event enum whose variants are named after the stored `eventType` and hold the
/// payload struct (which must implement `serde::Serialize` and `serde::Deserialize`), and
/// implements [`DomainEvent`](crate::domain::DomainEvent) for it. Public so an aggregate
/// defined in another crate declares its events the same way (see the `examples/` crate).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// pub struct Rang {
///     pub times: i64,
/// }
///
/// snapshot_core::domain_events! {
///     #[derive(Debug, Clone, PartialEq, Eq)]
///     pub enum BellEvent {
///         Rang(Rang),
///     }
/// }
///
/// use snapshot_core::DomainEvent;
/// assert_eq!(BellEvent::Rang(Rang { times: 2 }).event_type(), "Rang");
/// ```
#[macro_export]
macro_rules! domain_events {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident($payload:ty)),+ $(,)? }) => {
        $(#[$meta])*
        pub enum $name { $(#[doc = concat!("`", stringify!($variant), "`.")] $variant($payload)),+ }

        impl $crate::domain::DomainEvent for $name {
            fn event_type(&self) -> &'static str {
                match self { $(Self::$variant(_) => stringify!($variant)),+ }
            }

            fn to_payload(&self) -> $crate::__private::serde_json::Value {
                // Payload structs hold only strings and integers: serialisation cannot fail.
                match self {
                    $(Self::$variant(p) => $crate::__private::serde_json::to_value(p)
                        .unwrap_or($crate::__private::serde_json::Value::Null)),+
                }
            }

            fn from_parts(
                event_type: &str,
                payload: &$crate::__private::serde_json::Value,
            ) -> Result<Self, $crate::domain::EventDecodeError> {
                // A JSON value is one more serde representation of the payload.
                Self::from_payload(event_type, payload)
            }

            fn from_payload<'de, D: $crate::__private::serde::Deserializer<'de>>(
                event_type: &str,
                payload: D,
            ) -> Result<Self, $crate::domain::EventDecodeError> {
                match event_type {
                    $(stringify!($variant) => <$payload as $crate::__private::serde::Deserialize>::deserialize(payload)
                        .map(Self::$variant)
                        .map_err(|e| $crate::domain::EventDecodeError::InvalidPayload(e.to_string())),)+
                    _ => Err($crate::domain::EventDecodeError::UnknownEventType),
                }
            }
        }
    };
}
pub use crate::domain_events;

/// A command was rejected by a business rule; nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{aggregate_id} does not exist")]
    /// The command needs an existing aggregate and this one has no events yet.
    NotFound {
        /// The aggregate the item belongs to.
        aggregate_id: String,
    },
    #[error("{aggregate_id} already exists")]
    /// A creating command on an aggregate that already has events.
    AlreadyExists {
        /// The aggregate the item belongs to.
        aggregate_id: String,
    },
    #[error("{aggregate_id}: {field} must be {rule}, got {value}")]
    /// A command argument breaks a rule on its own (a quantity not positive, a blank name).
    InvalidValue {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The command argument concerned (`quantity`, `name`, …).
        field: &'static str,
        /// The rule it breaks, as it reads after "must be" (`positive`, `non-empty`).
        rule: &'static str,
        /// The value given, as text.
        value: String,
    },
    #[error("{aggregate_id} is discontinued")]
    /// A command that changes stock on an inventory item that was discontinued.
    Discontinued {
        /// The aggregate the item belongs to.
        aggregate_id: String,
    },
    #[error("{aggregate_id}: cannot {action} {requested}, only {limit} {what}")]
    /// A quantity over what the state holds (reserving more than is available, picking more
    /// than a location holds).
    Exceeds {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The command's verb, as the message reads it (`reserve`, `ship`, `place`, …).
        action: &'static str,
        /// How much was asked for.
        requested: i64,
        /// How much the state allows.
        limit: i64,
        /// What the limit counts.
        what: &'static str,
    },
    #[error("{aggregate_id}: location `{location}` {problem}")]
    /// A warehouse command names a location that does not fit it (unknown, already there,
    /// not empty).
    Location {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The warehouse location.
        location: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// An aggregate loaded at `version`, plus the events recorded by commands since then.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRoot<A: Aggregate> {
    id: String,
    version: u64,
    state: A,
    uncommitted: Vec<A::Event>,
    /// The `eventId` of each uncommitted event, fixed when it is recorded: a save retried
    /// after a lost reply sends the same ids, so the store recognises what it already holds.
    uncommitted_ids: Vec<String>,
}

impl<A: Aggregate> AggregateRoot<A> {
    /// A new, not yet existing aggregate.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        let state = A::initial(&id);
        Self::from_state(id, 0, state)
    }

    /// An aggregate at `version` with `state` (loaded or folded elsewhere) and nothing
    /// uncommitted; the state is taken as it is, not checked against `id`.
    pub fn from_state(id: impl Into<String>, version: u64, state: A) -> Self {
        Self {
            id: id.into(),
            version,
            state,
            uncommitted: Vec::new(),
            uncommitted_ids: Vec::new(),
        }
    }

    /// The aggregate id: the events' and snapshots' `aggregateId`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sequence of the last committed event (0 before the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current state, uncommitted events included.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Events recorded by commands and not yet saved.
    pub fn uncommitted(&self) -> &[A::Event] {
        &self.uncommitted
    }

    /// The `eventId`s of the uncommitted events, in order.
    pub fn uncommitted_ids(&self) -> &[String] {
        &self.uncommitted_ids
    }

    /// True once any event exists, committed or not.
    pub fn exists(&self) -> bool {
        self.version > 0 || !self.uncommitted.is_empty()
    }

    /// Applies and records an event that a command has validated. Commands call it last,
    /// after every check passed, so a rejected command records nothing.
    pub fn record(&mut self, event: A::Event) {
        self.state.apply(&event);
        self.uncommitted.push(event);
        self.uncommitted_ids.push(uuid::Uuid::new_v4().to_string());
    }

    /// Called after a successful append of the uncommitted events.
    pub fn mark_committed(&mut self) {
        self.version += self.uncommitted.len() as u64;
        self.uncommitted.clear();
        self.uncommitted_ids.clear();
    }

    /// Rejects a command on an aggregate that has no events yet.
    pub fn require_exists(&self) -> Result<(), DomainError> {
        if self.exists() {
            Ok(())
        } else {
            Err(DomainError::NotFound {
                aggregate_id: self.id.clone(),
            })
        }
    }

    /// Rejects a creating command on an aggregate that exists already.
    pub fn require_new(&self) -> Result<(), DomainError> {
        if self.exists() {
            Err(DomainError::AlreadyExists {
                aggregate_id: self.id.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Rejects a quantity that is not above zero, naming the field.
    pub fn positive(&self, field: &'static str, value: i64) -> Result<(), DomainError> {
        if value > 0 {
            Ok(())
        } else {
            Err(self.invalid(field, "> 0", value))
        }
    }

    /// The error for a value breaking `rule`, naming the aggregate and the field.
    pub fn invalid(
        &self,
        field: &'static str,
        rule: &'static str,
        value: impl ToString,
    ) -> DomainError {
        DomainError::InvalidValue {
            aggregate_id: self.id.clone(),
            field,
            rule,
            value: value.to_string(),
        }
    }

    /// The error for a request above what the state allows (e.g. reserving more than is
    /// available).
    pub fn exceeds(
        &self,
        action: &'static str,
        requested: i64,
        limit: i64,
        what: &'static str,
    ) -> DomainError {
        DomainError::Exceeds {
            aggregate_id: self.id().to_owned(),
            action,
            requested,
            limit,
            what,
        }
    }

    /// Rejects a blank text value, naming the field.
    pub fn not_blank(&self, field: &'static str, value: &str) -> Result<(), DomainError> {
        if value.trim().is_empty() {
            Err(self.invalid(field, "non-empty", format!("{value:?}")))
        } else {
            Ok(())
        }
    }
}

/// Longest accepted aggregate id, in characters.
pub const MAX_AGGREGATE_ID_CHARS: usize = 256;

/// Why an aggregate id from input is refused (the message reads after "aggregateId").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAggregateId {
    #[error("must not be empty")]
    /// Empty or blank.
    Empty,
    #[error("is {0} characters long, at most {MAX_AGGREGATE_ID_CHARS}")]
    /// Longer than [`MAX_AGGREGATE_ID_CHARS`] characters (the count given).
    TooLong(usize),
    #[error("must contain printable characters only")]
    /// Holds a control character (a newline, a NUL, …), which would forge log lines or keys.
    NotPrintable,
}

/// The one rule for aggregate ids taken from input: 1–256 printable characters, not blank.
pub fn check_aggregate_id(id: &str) -> Result<(), InvalidAggregateId> {
    let chars = id.chars().count();
    if chars == 0 || id.trim().is_empty() {
        Err(InvalidAggregateId::Empty)
    } else if chars > MAX_AGGREGATE_ID_CHARS {
        Err(InvalidAggregateId::TooLong(chars))
    } else if id.chars().any(char::is_control) {
        Err(InvalidAggregateId::NotPrintable)
    } else {
        Ok(())
    }
}

/// Folds events into a state; used by replay and by the property tests.
pub fn fold<A: Aggregate>(mut state: A, events: &[A::Event]) -> A {
    for event in events {
        state.apply(event);
    }
    state
}
