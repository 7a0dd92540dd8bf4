//! The stored bytes of an aggregate's events since its last snapshot, for the bytes budget
//! (docs/policies.md#bytes-budget), read as little as possible:
//!
//! - the batch's own events are measured from their stream images (no request);
//! - the events before the batch and after the snapshot were seen by earlier batches: a warm
//!   container that counted them remembers their bytes with the head
//!   ([`snapshot_core::head::TailBytes`]), so a batch that follows on costs no request;
//! - otherwise (a cold container, another container took the batches in between) they are
//!   measured by one eventually consistent Query of just that gap
//!   ([`snapshot_core::ports::EventStore::stored_bytes`]): its bytes / 8 KB in read units,
//!   never more than the budget's worth when the snapshot is not due, since it stops once
//!   the budget is reached. No gap is read when the batch alone reaches the budget.

use snapshot_core::head::{HeadCache, TailBytes};
use snapshot_core::ports::EventStore;
use snapshot_core::StoreError;
use tracing::debug;

use crate::batch::AggregateBatch;

/// Measures one aggregate's tail for one evaluation; what it measured is kept for the
/// evaluation's second decision (on the full record) and, when exact, for the container.
pub(crate) struct TailMeter<'a, E> {
    events: &'a E,
    heads: &'a HeadCache,
    batch: &'a AggregateBatch,
    measured: Option<TailBytes>,
    /// Events read from the event table to measure them.
    pub(crate) events_read: u64,
}

impl<'a, E: EventStore> TailMeter<'a, E> {
    pub(crate) fn new(events: &'a E, heads: &'a HeadCache, batch: &'a AggregateBatch) -> Self {
        Self {
            events,
            heads,
            batch,
            measured: None,
            events_read: 0,
        }
    }

    /// The stored bytes of the events after version `after` through the batch's last event:
    /// exact when below `budget`, at least `budget` otherwise (no need to read further).
    pub(crate) async fn bytes_after(&mut self, after: u64, budget: u64) -> Result<u64, StoreError> {
        let id = self.batch.aggregate_id.as_str();
        let Some(last) = self.batch.events.last().map(|e| e.sequence) else {
            return Ok(0);
        };
        if let Some(measured) = self
            .measured
            .filter(|m| m.after == after && m.through == last)
        {
            return Ok(measured.bytes);
        }
        // Counted by this container since the same snapshot, up to a point at or before the
        // batch's end (a count that ran past it belongs to a later batch: not used).
        let counted = self
            .heads
            .tail(id)
            .filter(|t| t.after == after && t.through <= last);
        let (mut bytes, through) = counted.map_or((0, after), |t| (t.bytes, t.through));
        let next = through.saturating_add(1);
        let in_batch: u64 = self.batch.stored_bytes.range(next..).map(|(_, b)| b).sum();
        let first_in_batch = self
            .batch
            .stored_bytes
            .range(next..)
            .next()
            .map_or(last.saturating_add(1), |(sequence, _)| *sequence);
        let mut exact = true;
        if first_in_batch > next {
            let known = bytes + in_batch;
            if known >= budget {
                // Due on what is known: the gap can only add to it.
                exact = false;
            } else {
                let gap = self
                    .events
                    .stored_bytes(id, next, first_in_batch - 1, budget - known)
                    .await?;
                self.events_read += gap.events;
                debug!(
                    aggregate_id = id,
                    after,
                    from = next,
                    to = first_in_batch - 1,
                    events = gap.events,
                    bytes = gap.bytes,
                    read_units = ?gap.read_units,
                    "measured the events between the last counted and the batch"
                );
                // Below what was asked for: the gap was read to its end.
                exact = gap.bytes < budget - known;
                bytes += gap.bytes;
            }
        }
        let tail = TailBytes {
            after,
            through: last,
            bytes: bytes + in_batch,
        };
        self.measured = Some(tail);
        if exact {
            self.heads.remember_tail(id, tail);
        }
        Ok(tail.bytes)
    }
}
