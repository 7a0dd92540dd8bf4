//! Errors shared by the ports and adapters. Each names the aggregate (and sequence or version)
//! it is about, so an operator can find the offending item.

use std::fmt;

/// Points at one event item: `aggregateId` and `sequence` as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// Sequence number of the event within its aggregate.
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
    /// The item lacks an attribute every event has, or one has the wrong type (`sequence`
    /// not a number, no `eventType`, …).
    Malformed {
        /// Which event (aggregate and sequence).
        at: EventRef,
        /// Why, in words that name what is wrong.
        reason: String,
    },
    #[error("unknown aggregateType `{aggregate_type}` ({at})")]
    /// No registered aggregate type has this `aggregateType` (see [`crate::Registry`]).
    UnknownAggregateType {
        /// Which event (aggregate and sequence).
        at: EventRef,
        /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
        aggregate_type: String,
    },
    #[error("unknown eventType `{event_type}` for {aggregate_type} ({at})")]
    /// The aggregate type has no event of this `eventType`: written by a newer version of the
    /// writing service, most often. The snapshotter skips the aggregate until it knows it.
    UnknownEventType {
        /// Which event (aggregate and sequence).
        at: EventRef,
        /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
        aggregate_type: String,
        /// The stored `eventType`.
        event_type: String,
    },
    #[error("invalid {event_type} payload ({at}): {reason}")]
    /// The event type is known but its `payload` does not deserialise into it (a missing or
    /// mistyped field).
    InvalidPayload {
        /// Which event (aggregate and sequence).
        at: EventRef,
        /// The stored `eventType`.
        event_type: String,
        /// Why, in words that name what is wrong.
        reason: String,
    },
    /// `expected` and `found` read `aggregateType/aggregateId`.
    #[error("event belongs to {found}, expected {expected} ({at})")]
    WrongAggregate {
        /// Which event (aggregate and sequence).
        at: EventRef,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    #[error("sequence gap for aggregateId={aggregate_id}: expected {expected}, found {found}")]
    /// The events read do not follow each other one by one from the state they are folded on
    /// (a missing or repeated sequence): folding past it would build a wrong state.
    SequenceGap {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// What was expected.
        expected: u64,
        /// What was found.
        found: u64,
    },
}

impl EventError {
    /// The id of the aggregate whose event this is about (the item's, as far as it reads).
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
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The version the append was made at: the stream's last sequence as the writer saw
        /// it, no longer its last.
        expected_version: u64,
    },
    #[error(transparent)]
    /// A stored event could not be read as one (see [`EventError`]): a retry reads the same
    /// item and fails the same way.
    Event(#[from] EventError),
    #[error("malformed snapshot item aggregateId={aggregate_id} version={version}: {reason}")]
    /// A snapshot item, or its offloaded state, cannot be read as stored (an attribute
    /// missing or mistyped, the state object gone): a reader that meets it passes over the
    /// snapshot as invalid.
    MalformedSnapshot {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The aggregate version (sequence of the last event folded in).
        version: String,
        /// Why, in words that name what is wrong.
        reason: String,
    },
    #[error("invalid request for aggregateId={aggregate_id}: {reason}")]
    /// The call breaks a rule of the port before anything is sent (an append of more than
    /// [`crate::ports::MAX_EVENTS_PER_APPEND`] events or out of sequence, an offload without a
    /// state bucket): a bug in the caller, not retryable.
    InvalidRequest {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// Why, in words that name what is wrong.
        reason: String,
    },
    #[error("{operation} failed ({failure}): {source}")]
    /// The storage backend failed (network, throttling, timeout, service error).
    Backend {
        /// The storage operation that failed.
        operation: &'static str,
        /// What kind of failure: says whether, and when, repeating the call can help.
        failure: BackendFailure,
        /// The underlying error (the SDK's, with the service's code and message).
        #[source]
        source: BoxError,
    },
}

/// Any error, kept as the source of a [`StoreError::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a storage backend failed: the part of a failure a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFailure {
    /// The backend refused for capacity (throttling, provisioned throughput): retry later,
    /// after a pause.
    Throttled,
    /// No answer in time (an attempt or the whole operation timed out): retry.
    Timeout,
    /// Transient trouble: connection failed, the service answered 5xx. Retry.
    Unavailable,
    /// The backend refused the request itself (validation, access, missing table): repeating
    /// it cannot help.
    Rejected,
}

impl BackendFailure {
    /// True when the same call may succeed if repeated.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Rejected)
    }
}

impl fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Throttled => "throttled",
            Self::Timeout => "timed out",
            Self::Unavailable => "unavailable",
            Self::Rejected => "rejected",
        })
    }
}

impl StoreError {
    /// True when the same call may succeed if repeated (storage trouble, not a verdict on the
    /// request). A conflict is not retryable as is: reload first.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Backend { failure, .. } => failure.is_retryable(),
            _ => false,
        }
    }

    /// The backend failure kind, if this is one.
    pub fn backend_failure(&self) -> Option<BackendFailure> {
        match self {
            Self::Backend { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// A transient backend failure of `operation` ([`BackendFailure::Unavailable`]), e.g. a
    /// test's injected fault or an adapter's exhausted retries.
    pub fn backend(operation: &'static str, err: impl Into<BoxError>) -> Self {
        Self::backend_failure_of(operation, BackendFailure::Unavailable, err)
    }

    /// A backend failure of `operation` of the given kind, keeping `err` as its source.
    pub fn backend_failure_of(
        operation: &'static str,
        failure: BackendFailure,
        err: impl Into<BoxError>,
    ) -> Self {
        Self::Backend {
            operation,
            failure,
            source: err.into(),
        }
    }
}
