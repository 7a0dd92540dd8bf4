//! Rebuilding an aggregate's state at the batch's highest sequence: from the latest valid
//! snapshot (the core's walk past invalid ones) or a full replay, plus only the events missing
//! between base and batch (read consistently, with the base's boundary event) and the batch's
//! own stream images.

use snapshot_core::codec::SnapshotCodec;
use snapshot_core::error::StoreError;
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::registry::{AggregateKind, FoldError};
use snapshot_core::snapshot::{InvalidSnapshot, SnapshotHeader, SnapshotRecord};
use snapshot_core::walk::{Candidate, SnapshotWalk, Start, Tail, Target, Verdict, WalkError};
use snapshot_core::EventEnvelope;

use crate::audit::ACTOR;
use crate::batch::AggregateBatch;
use crate::error::SnapshotterError;
use crate::outcome::Counts;

/// The newest snapshot as first read.
pub(crate) enum Newest {
    /// The aggregate has no snapshot.
    None,
    Record(Box<SnapshotRecord>),
    /// An item that does not read as a snapshot.
    Malformed,
}

impl Newest {
    /// Version of a snapshot that can stand for the aggregate: readable, not marked invalid.
    pub(crate) fn standing_version(&self) -> Option<u64> {
        self.header()
            .filter(|h| h.invalid.is_none())
            .map(|h| h.version)
    }

    pub(crate) fn header(&self) -> Option<&SnapshotHeader> {
        match self {
            Self::Record(r) => Some(&r.header),
            Self::None | Self::Malformed => None,
        }
    }
}

/// A base state with the batch folded on top.
pub(crate) struct Rebuilt {
    pub(crate) state_json: Vec<u8>,
    pub(crate) base_version: u64,
}

/// Checks a header can be the base without reading the state: an obsolete schema, another
/// aggregate's snapshot or one marked invalid never counts, neither for the policy nor as base.
pub(crate) fn header_usable(
    header: &SnapshotHeader,
    kind: &dyn AggregateKind,
    aggregate_id: &str,
) -> bool {
    header.aggregate_id == aggregate_id
        && header.aggregate_type == kind.type_name()
        && header.schema_version == kind.schema_version()
        && header.last_event_sequence == header.version
        && header.invalid.is_none()
}

/// Whether the batch's events are contiguous (a hole, never seen from one shard but cheap to
/// survive, makes the base's whole tail be read from the table).
fn contiguous(events: &[EventEnvelope]) -> bool {
    events.windows(2).all(|w| match w {
        [a, b] => b.sequence == a.sequence + 1,
        _ => true,
    })
}

/// Rebuilds one aggregate of a batch from its stores.
pub(crate) struct Rebuilder<'a, E, S> {
    events: &'a E,
    snapshots: &'a S,
    codec: SnapshotCodec,
    batch: &'a AggregateBatch,
    kind: &'a dyn AggregateKind,
}

impl<'a, E: EventStore, S: SnapshotStore> Rebuilder<'a, E, S> {
    pub(crate) fn new(
        events: &'a E,
        snapshots: &'a S,
        codec: SnapshotCodec,
        batch: &'a AggregateBatch,
        kind: &'a dyn AggregateKind,
    ) -> Self {
        Self {
            events,
            snapshots,
            codec,
            batch,
            kind,
        }
    }

    /// The state at the batch's highest sequence from the latest valid snapshot (the core's
    /// walk: past unreadable, marked and wrong ones, marking what it proves wrong), or from a
    /// full replay when there is none.
    pub(crate) async fn rebuild(
        &self,
        newest: Newest,
        counts: &mut Counts,
    ) -> Result<Rebuilt, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        let (Some(first), Some(last)) = (self.batch.events.first(), self.batch.events.last())
        else {
            return Err(SnapshotterError::MissingEvents {
                aggregate_id: id.to_owned(),
                from: 1,
                to: 0,
                found: 0,
            });
        };
        // The walk reads each candidate's boundary event and the events between it and the
        // batch in one request; the batch's own events come from the stream images.
        let through = if contiguous(&self.batch.events) {
            first.sequence.saturating_sub(1)
        } else {
            last.sequence
        };
        let start = match newest {
            // A state kept as an object is fetched now that it is needed (no table request).
            Newest::Record(record) if record.header.is_offloaded() => {
                match self.snapshots.fetch_state(*record).await {
                    Ok(record) => Some(Start::Prefetched(Box::new(record))),
                    // The walk reads it again and passes it over (and marks it).
                    Err(StoreError::MalformedSnapshot { .. }) => Some(Start::Newest),
                    Err(e) => return Err(SnapshotterError::store(id)(e)),
                }
            }
            Newest::Record(record) => Some(Start::Prefetched(record)),
            Newest::Malformed => Some(Start::Newest),
            // No snapshot to walk (the first read said so): straight to the full replay.
            Newest::None => None,
        };
        let walk = SnapshotWalk {
            events: self.events,
            snapshots: self.snapshots,
            codec: &self.codec,
            actor: ACTOR,
        };
        let target = Target {
            aggregate_id: id,
            aggregate_type: self.kind.type_name(),
            schema_version: self.kind.schema_version(),
        };
        let mut fetched = 0u64;
        let mut folded = 0u64;
        let Some(start) = start else {
            return self.replay(counts).await;
        };
        let walked = walk
            .newest_valid(target, start, Tail::Through(through), |candidate| {
                self.fold_candidate(through, candidate, &mut fetched, &mut folded)
            })
            .await
            .map_err(|e| match e {
                WalkError::Store(e) => SnapshotterError::store(id)(e),
                WalkError::Fail(e) => e,
            })?;
        counts.snapshots_invalid += walked.skipped.len() as u64;
        counts.snapshots_marked += walked.marked();
        counts.events_fetched += fetched;
        if let Some((header, state_json)) = walked.found {
            counts.events_folded += folded;
            return Ok(Rebuilt {
                state_json,
                base_version: header.version,
            });
        }
        self.replay(counts).await
    }

    /// The state from every event: the table's up to the batch, then the batch's images.
    async fn replay(&self, counts: &mut Counts) -> Result<Rebuilt, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        let state = self
            .fold_onto(0, None, counts)
            .await?
            .map_err(|e| SnapshotterError::from_fold(id, e))?;
        Ok(Rebuilt {
            state_json: state,
            base_version: 0,
        })
    }

    /// Folds onto a candidate the events read with it and the batch's newer images.
    fn fold_candidate(
        &self,
        through: u64,
        candidate: Candidate,
        fetched: &mut u64,
        folded: &mut u64,
    ) -> Verdict<Vec<u8>, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        let version = candidate.header.version;
        let read_to = through.max(version);
        *fetched += candidate.tail.len() as u64 + 1;
        // A short read means the table lacks events the stream has shown: the aggregate fails
        // (and is redelivered) rather than being misbuilt.
        let expected = read_to - version;
        if candidate.tail.len() as u64 != expected {
            return Verdict::Fail(SnapshotterError::MissingEvents {
                aggregate_id: id.to_owned(),
                from: version + 1,
                to: read_to,
                found: candidate.tail.len(),
            });
        }
        let mut events = candidate.tail;
        events.extend(
            self.batch
                .events
                .iter()
                .filter(|e| e.sequence > read_to)
                .cloned(),
        );
        match self
            .kind
            .fold_json(id, version, Some(&candidate.state), &events)
        {
            Ok(state) => {
                *folded = events.len() as u64;
                Verdict::Use(state)
            }
            Err(FoldError::BaseState { reason, .. }) => {
                Verdict::Invalid(InvalidSnapshot::State(reason))
            }
            Err(FoldError::Event(e)) => Verdict::Fail(e.into()),
        }
    }

    /// Folds onto the base the events after it: those missing between base and batch are read
    /// from the event table (consistent), the batch's own come from the stream images. The
    /// outer error is a store failure; the inner one a fold failure for the caller to judge.
    async fn fold_onto(
        &self,
        base_version: u64,
        base: Option<&[u8]>,
        counts: &mut Counts,
    ) -> Result<Result<Vec<u8>, FoldError>, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        // Redelivered images at or below the base are already in it.
        let tail: Vec<&EventEnvelope> = self
            .batch
            .events
            .iter()
            .filter(|e| e.sequence > base_version)
            .collect();
        let contiguous = tail.windows(2).all(|w| match w {
            [a, b] => b.sequence == a.sequence + 1,
            _ => true,
        });
        let events: Vec<EventEnvelope> = match (tail.first(), tail.last()) {
            (Some(first), _) if contiguous && first.sequence == base_version + 1 => {
                tail.into_iter().cloned().collect()
            }
            (Some(first), _) if contiguous => {
                let gap = self
                    .read_range(id, base_version + 1, first.sequence - 1)
                    .await?;
                counts.events_fetched += gap.len() as u64;
                gap.into_iter().chain(tail.into_iter().cloned()).collect()
            }
            // A hole inside the batch (never seen from one shard, but cheap to survive):
            // everything after the base is read instead.
            (Some(_), Some(last)) => {
                let all = self.read_range(id, base_version + 1, last.sequence).await?;
                counts.events_fetched += all.len() as u64;
                all
            }
            _ => Vec::new(),
        };
        let folded = self.kind.fold_json(id, base_version, base, &events);
        if folded.is_ok() {
            counts.events_folded += events.len() as u64;
        }
        Ok(folded)
    }

    /// Events `from..=to`, all of them: a short read means the table lacks events the stream
    /// has shown, so the aggregate fails (and is redelivered) rather than being misbuilt.
    async fn read_range(
        &self,
        id: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<EventEnvelope>, SnapshotterError> {
        let events = self
            .events
            .read(id, from, Some(to))
            .await
            .map_err(SnapshotterError::store(id))?;
        let expected = to.saturating_sub(from) + 1;
        if events.len() as u64 != expected {
            return Err(SnapshotterError::MissingEvents {
                aggregate_id: id.to_owned(),
                from,
                to,
                found: events.len(),
            });
        }
        Ok(events)
    }
}
