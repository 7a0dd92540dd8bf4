//! Errors shared by the ports and adapters. Each names the aggregate (and sequence or version)
//! it is about, so an operator can find the offending item.

use std::fmt;

/// Points at one event item: `aggregateId` and `sequence` as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub aggregate_id: String,
    pub sequence: Option<u64>,
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sequence {
            Some(seq) => write!(f, "aggregateId={} sequence={}", self.aggregate_id, seq),
            None => write!(f, "aggregateId={} sequence=<unreadable>", self.aggregate_id),
        }
    }
}

/// A stored event that cannot be used: a poison record, never silently skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed event item ({at}): {reason}")]
    Malformed { at: EventRef, reason: String },
    #[error("unknown aggregateType `{aggregate_type}` ({at})")]
    UnknownAggregateType {
        at: EventRef,
        aggregate_type: String,
    },
    #[error("unknown eventType `{event_type}` for {aggregate_type} ({at})")]
    UnknownEventType {
        at: EventRef,
        aggregate_type: String,
        event_type: String,
    },
    #[error("invalid {event_type} payload ({at}): {reason}")]
    InvalidPayload {
        at: EventRef,
        event_type: String,
        reason: String,
    },
    /// `expected` and `found` read `aggregateType/aggregateId`.
    #[error("event belongs to {found}, expected {expected} ({at})")]
    WrongAggregate {
        at: EventRef,
        expected: String,
        found: String,
    },
    #[error("sequence gap for aggregateId={aggregate_id}: expected {expected}, found {found}")]
    SequenceGap {
        aggregate_id: String,
        expected: u64,
        found: u64,
    },
}

impl EventError {
    pub fn aggregate_id(&self) -> &str {
        match self {
            Self::Malformed { at, .. }
            | Self::UnknownAggregateType { at, .. }
            | Self::UnknownEventType { at, .. }
            | Self::InvalidPayload { at, .. }
            | Self::WrongAggregate { at, .. } => &at.aggregate_id,
            Self::SequenceGap { aggregate_id, .. } => aggregate_id,
        }
    }
}

/// Failures of an event or snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: another writer appended at this version first.
    #[error("concurrent append to aggregateId={aggregate_id}: expected version {expected_version} is no longer current")]
    Conflict {
        aggregate_id: String,
        expected_version: u64,
    },
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("malformed snapshot item aggregateId={aggregate_id} version={version}: {reason}")]
    MalformedSnapshot {
        aggregate_id: String,
        version: String,
        reason: String,
    },
    #[error("invalid request for aggregateId={aggregate_id}: {reason}")]
    InvalidRequest {
        aggregate_id: String,
        reason: String,
    },
    #[error("{operation} failed: {message}")]
    Backend {
        operation: &'static str,
        message: String,
    },
}

impl StoreError {
    pub fn backend(operation: &'static str, err: impl fmt::Display) -> Self {
        Self::Backend {
            operation,
            message: err.to_string(),
        }
    }
}
