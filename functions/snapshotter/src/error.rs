//! Why an aggregate of a batch failed. Every variant names the aggregate.

use snapshot_core::registry::FoldError;
use snapshot_core::snapshot::SnapshotBuildError;
use snapshot_core::{EventError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotterError {
    #[error("aggregateId={aggregate_id} has {count} poison record(s), first: {first}")]
    Poison {
        aggregate_id: String,
        count: usize,
        first: String,
    },
    #[error("aggregateId={aggregate_id}: aggregateType `{aggregate_type}` is not registered")]
    UnknownType {
        aggregate_id: String,
        aggregate_type: String,
    },
    #[error("aggregateId={aggregate_id}: {source}")]
    Store {
        aggregate_id: String,
        source: StoreError,
    },
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Build(#[from] SnapshotBuildError),
    #[error("aggregateId={aggregate_id}: events {from}..={to} expected in the event table, {found} found")]
    MissingEvents {
        aggregate_id: String,
        from: u64,
        to: u64,
        found: usize,
    },
}

impl SnapshotterError {
    pub(crate) fn store(aggregate_id: &str) -> impl FnOnce(StoreError) -> Self + '_ {
        move |source| Self::Store {
            aggregate_id: aggregate_id.to_owned(),
            source,
        }
    }

    /// A fold failure that is not about the base state: an event is unusable.
    pub(crate) fn from_fold(aggregate_id: &str, e: FoldError) -> Self {
        match e {
            FoldError::Event(e) => Self::Event(e),
            FoldError::BaseState { reason, .. } => Self::Store {
                aggregate_id: aggregate_id.to_owned(),
                source: StoreError::MalformedSnapshot {
                    aggregate_id: aggregate_id.to_owned(),
                    version: "replay".to_owned(),
                    reason,
                },
            },
        }
    }
}
