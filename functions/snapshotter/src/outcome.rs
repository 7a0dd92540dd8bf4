//! What evaluating one aggregate produced. A leaf: the handler tallies these, the evaluation
//! and the rebuild fill them in.

use snapshot_core::policy::TripReason;

use crate::error::SnapshotterError;

/// What happened to one aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The policy did not trip.
    NotDue,
    /// A snapshot at or after the batch's highest sequence exists already.
    UpToDate { snapshot_version: u64 },
    Created {
        version: u64,
        stored_bytes: u64,
        reason: TripReason,
    },
    /// Another writer stored the same snapshot first (same key = same content).
    AlreadyPresent { version: u64 },
    /// The state does not fit one DynamoDB item even compressed. Not a batch failure: a retry
    /// would fail the same way and hold back every other aggregate of the shard; loads keep
    /// working from the previous snapshot and the tail.
    TooLarge { version: u64, item_bytes: usize },
    /// An event of the aggregate (in the batch, or read from the event table to rebuild) has an
    /// `eventType` this version does not know: the writing service deployed it first. Skipped,
    /// not a batch failure: snapshots are derived data, a retry would fail the same way until
    /// this function is redeployed, and the shard must not stall meanwhile. Counted
    /// (`UnknownEventTypes`, alarmed) and audited; once the code knows the type, the
    /// aggregate's next events rebuild it from its latest valid snapshot and the event table,
    /// the skipped events included.
    UnknownEventType {
        sequence: Option<u64>,
        event_type: String,
    },
}

/// Work counted for one aggregate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// The policy was consulted (no poison record stopped it before).
    pub(crate) evaluated: bool,
    pub(crate) events_folded: u64,
    pub(crate) events_fetched: u64,
    pub(crate) snapshots_invalid: u64,
    pub(crate) snapshots_marked: u64,
    /// Sampled snapshots checked against a full replay.
    pub(crate) drift_checks: u64,
    /// Of those, the ones that differed (marked invalid).
    pub(crate) drift: u64,
    /// Events read from the event table only to measure their bytes (the bytes budget).
    pub(crate) events_sized: u64,
}

impl Counts {
    /// The policy was consulted (no poison record stopped it before).
    pub fn evaluated(&self) -> bool {
        self.evaluated
    }

    /// Events folded into the new state.
    pub fn events_folded(&self) -> u64 {
        self.events_folded
    }

    /// Events read from the event table (the base's boundary event and the gap between base
    /// snapshot and batch).
    pub fn events_fetched(&self) -> u64 {
        self.events_fetched
    }

    /// Invalid snapshots passed over.
    pub fn snapshots_invalid(&self) -> u64 {
        self.snapshots_invalid
    }

    /// Snapshots found wrong and marked invalid on the way.
    pub fn snapshots_marked(&self) -> u64 {
        self.snapshots_marked
    }

    /// Snapshots checked against a full replay (the drift sample).
    pub fn drift_checks(&self) -> u64 {
        self.drift_checks
    }

    /// Checked snapshots that differed from the full replay.
    pub fn drift(&self) -> u64 {
        self.drift
    }

    /// Events read from the event table only to measure their stored bytes: those between
    /// the last snapshot (or the last batch this container counted) and the batch, when a
    /// bytes budget is set and neither count nor time decided.
    pub fn events_sized(&self) -> u64 {
        self.events_sized
    }
}

/// One aggregate's result and the work it took.
#[derive(Debug)]
pub struct AggregateOutcome {
    aggregate_id: String,
    failure_identifier: String,
    result: Result<Action, SnapshotterError>,
    counts: Counts,
}

impl AggregateOutcome {
    pub(crate) fn new(
        aggregate_id: String,
        failure_identifier: String,
        result: Result<Action, SnapshotterError>,
        counts: Counts,
    ) -> Self {
        Self {
            aggregate_id,
            failure_identifier,
            result,
            counts,
        }
    }

    /// The aggregate this outcome is about: the batch's records are grouped by it, one outcome
    /// per aggregate.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// Reported when the result is an error (see
    /// [`AggregateBatch::failure_identifier`](crate::batch::AggregateBatch::failure_identifier)).
    pub fn failure_identifier(&self) -> &str {
        &self.failure_identifier
    }

    /// What happened, or why the aggregate failed.
    pub fn result(&self) -> &Result<Action, SnapshotterError> {
        &self.result
    }

    /// The work it took.
    pub fn counts(&self) -> Counts {
        self.counts
    }
}
