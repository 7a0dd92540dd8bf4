//! Rebuilding an aggregate's state at the batch's highest sequence: from the latest valid
//! snapshot (walking past invalid ones) or a full replay, plus only the events missing between
//! base and batch (read consistently) and the batch's own stream images.

use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::registry::{AggregateKind, FoldError};
use snapshot_core::snapshot::{open_snapshot, InvalidSnapshot, SnapshotHeader, SnapshotRecord};
use snapshot_core::{EventEnvelope, StoreError};
use tracing::warn;

use snapshot_core::codec::SnapshotCodec;

use crate::batch::AggregateBatch;
use crate::error::SnapshotterError;
use crate::outcome::Counts;

/// Headers per request when walking past invalid snapshots.
const WALK_PAGE: usize = 25;

/// The newest snapshot as first read.
pub(crate) enum Newest {
    None,
    Header(SnapshotHeader),
    Record(SnapshotRecord),
    /// Unreadable item; its version if that much could be read.
    Malformed(Option<u64>),
}

impl Newest {
    pub(crate) fn version(&self) -> Option<u64> {
        match self {
            Self::None => None,
            Self::Header(h) => Some(h.version),
            Self::Record(r) => Some(r.header.version),
            Self::Malformed(version) => *version,
        }
    }

    pub(crate) fn header(&self) -> Option<&SnapshotHeader> {
        match self {
            Self::Header(h) => Some(h),
            Self::Record(r) => Some(&r.header),
            Self::None | Self::Malformed(_) => None,
        }
    }
}

/// A base state with the batch folded on top.
pub(crate) struct Rebuilt {
    pub(crate) state_json: Vec<u8>,
    pub(crate) base_version: u64,
}

/// Checks a header can be the base without reading the state: an obsolete schema or another
/// aggregate's snapshot never counts, neither for the policy nor as base.
pub(crate) fn header_usable(
    header: &SnapshotHeader,
    kind: &dyn AggregateKind,
    aggregate_id: &str,
) -> bool {
    header.aggregate_id == aggregate_id
        && header.aggregate_type == kind.type_name()
        && header.schema_version == kind.schema_version()
        && header.last_event_sequence == header.version
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

    /// The state at the batch's highest sequence from the latest valid snapshot (walking past
    /// invalid ones), or from a full replay when there is none.
    pub(crate) async fn rebuild(
        &self,
        newest: Newest,
        counts: &mut Counts,
    ) -> Result<Rebuilt, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        let mut below = newest.version();
        match newest {
            Newest::Record(record) => {
                if let Some(rebuilt) = self.try_base(&record, counts).await? {
                    return Ok(rebuilt);
                }
            }
            Newest::Header(header) => {
                if let Some(rebuilt) = self.try_header(&header, counts).await? {
                    return Ok(rebuilt);
                }
            }
            Newest::None | Newest::Malformed(_) => {}
        }
        while let Some(before) = below {
            let page = match self.snapshots.headers(id, Some(before), WALK_PAGE).await {
                Ok(page) => page,
                Err(StoreError::MalformedSnapshot {
                    version, reason, ..
                }) => {
                    counts.snapshots_invalid += 1;
                    warn!(aggregate_id = id, version = %version, reason = %reason, "malformed snapshot among older ones; rebuilding by full replay");
                    break;
                }
                Err(e) => return Err(SnapshotterError::store(id)(e)),
            };
            for header in &page.items {
                if let Some(rebuilt) = self.try_header(header, counts).await? {
                    return Ok(rebuilt);
                }
            }
            below = page.next;
        }
        let state = self
            .fold_onto(0, None, counts)
            .await?
            .map_err(|e| SnapshotterError::from_fold(id, e))?;
        Ok(Rebuilt {
            state_json: state,
            base_version: 0,
        })
    }

    /// Fetches and tries the snapshot a header describes, unless the header already rules it out.
    async fn try_header(
        &self,
        header: &SnapshotHeader,
        counts: &mut Counts,
    ) -> Result<Option<Rebuilt>, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        if !header_usable(header, self.kind, id) {
            self.passed_over(
                id,
                header.version,
                &"header does not match the aggregate's type or schema",
                counts,
            );
            return Ok(None);
        }
        match self.snapshots.get(id, header.version).await {
            Ok(Some(record)) => self.try_base(&record, counts).await,
            // Deleted since the header was read (pruned): try the next one.
            Ok(None) => Ok(None),
            Err(StoreError::MalformedSnapshot { reason, .. }) => {
                self.passed_over(id, header.version, &reason, counts);
                Ok(None)
            }
            Err(e) => Err(SnapshotterError::store(id)(e)),
        }
    }

    /// Validates a snapshot and folds the batch onto it; `None` when it must not be used.
    async fn try_base(
        &self,
        record: &SnapshotRecord,
        counts: &mut Counts,
    ) -> Result<Option<Rebuilt>, SnapshotterError> {
        let id = self.batch.aggregate_id.as_str();
        let version = record.header.version;
        let state = match open_snapshot(
            &self.codec,
            record,
            id,
            self.kind.type_name(),
            self.kind.schema_version(),
        ) {
            Ok(state) => state,
            Err(invalid) => {
                self.passed_over(id, version, &invalid, counts);
                return Ok(None);
            }
        };
        match self.fold_onto(version, Some(&state), counts).await? {
            Ok(state_json) => Ok(Some(Rebuilt {
                state_json,
                base_version: version,
            })),
            Err(FoldError::BaseState { reason, .. }) => {
                self.passed_over(id, version, &InvalidSnapshot::State(reason), counts);
                Ok(None)
            }
            Err(FoldError::Event(e)) => Err(e.into()),
        }
    }

    fn passed_over(
        &self,
        id: &str,
        version: u64,
        reason: &dyn std::fmt::Display,
        counts: &mut Counts,
    ) {
        counts.snapshots_invalid += 1;
        warn!(aggregate_id = id, version, reason = %reason, "invalid snapshot passed over");
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
