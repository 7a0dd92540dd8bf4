//! The ports: what the snapshot logic needs from storage. DynamoDB and in-memory adapters
//! implement them with the same semantics.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Aggregate, DecodedEvent, EventEnvelope, ReadEvent};
use crate::error::StoreError;
use crate::head::SnapshotHead;
use crate::pruning::SeenSnapshot;
use crate::snapshot::{
    InvalidMark, SnapshotHeader, SnapshotKey, SnapshotRecord, SnapshotSummary, Stored,
};

/// One page of a listing and where the next one starts (`None`: no more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<C>,
}

/// What [`EventStore::stored_bytes`] measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoredBytes {
    /// Events measured.
    pub events: u64,
    /// Their stored bytes (crate::stored_size).
    pub bytes: u64,
    /// Read capacity units the reads consumed, as the store reports them (`None`: a store
    /// that does not).
    pub read_units: Option<f64>,
}

/// Outcome of a conditional snapshot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written: no snapshot had this key, or the one there was marked invalid (replaced).
    Created,
    /// A snapshot at this version already exists; it was left untouched.
    AlreadyExists,
}

/// Outcome of a snapshot write that also keeps the head's list of tracked snapshots
/// ([`SnapshotStore::put_tracked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedPut {
    /// What the write did.
    pub outcome: PutOutcome,
    /// The snapshots the head tracked before this write, newest first, when this write moved
    /// the head forward (they and the new one are what keep-N is decided on). `None`: the
    /// head did not move (another writer's newer snapshot is there: this one is not tracked)
    /// or the store tracks nothing.
    pub tracked_before: Option<Vec<SeenSnapshot>>,
}

/// Most events one atomic append may carry: DynamoDB's 100-item transaction limit, less the
/// ConditionCheck on the event at the expected version that every append after the first carries
/// (`shared/dynamo/src/events.rs`), so a full-size append fits whatever the expected version.
pub const MAX_EVENTS_PER_APPEND: usize = 99;

/// True when `stored` are exactly `events` (same sequences and `eventId`s): an append that
/// finds them already there was ours, committed before its reply was lost.
pub fn already_appended(events: &[EventEnvelope], stored: &[EventEnvelope]) -> bool {
    stored.len() == events.len()
        && stored
            .iter()
            .zip(events)
            .all(|(s, e)| s.sequence == e.sequence && s.event_id == e.event_id)
}

/// Checks what every adapter requires of an append batch.
pub fn validate_append(expected_version: u64, events: &[EventEnvelope]) -> Result<(), StoreError> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    let invalid = |reason: String| StoreError::InvalidRequest {
        aggregate_id: first.aggregate_id.clone(),
        reason,
    };
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(invalid(format!(
            "{} events in one append, at most {MAX_EVENTS_PER_APPEND}",
            events.len()
        )));
    }
    for (offset, event) in events.iter().enumerate() {
        let expected = expected_version + 1 + offset as u64;
        if event.aggregate_id != first.aggregate_id || event.sequence != expected {
            return Err(invalid(format!(
                "event {offset} is {}#{}, expected {}#{expected}",
                event.aggregate_id, event.sequence, first.aggregate_id
            )));
        }
    }
    Ok(())
}

/// The event table as the snapshot logic needs it: append-only streams of events per
/// aggregate, numbered from 1 without gaps. Appends are conditional (optimistic concurrency,
/// [`StoreError::Conflict`]) and idempotent; reads are strongly consistent. A failing call is
/// [`StoreError::Backend`] whose kind says whether retrying can help.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` atomically. They must carry sequences `expected_version + 1 ..` of one
    /// aggregate, and the event at `expected_version` must exist (no gap is ever left). If
    /// another writer got there first, or `expected_version` is not the stream's last event,
    /// the result is [`StoreError::Conflict`].
    ///
    /// Idempotent: when the events at those sequences are already these very events (same
    /// `eventId`s: a retry after a lost reply), the append succeeds without writing again.
    async fn append(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError>;

    /// Events with `from <= sequence <= to` (`to = None`: to the end), ascending, every page,
    /// strongly consistent.
    async fn read(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError>;

    /// Like [`EventStore::read`], also saying how many sequential requests (pages) it took.
    async fn read_counted(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        Ok((self.read(aggregate_id, from, to).await?, 1))
    }

    /// The newest events, newest first, at most `limit` of them, in ONE request (strongly
    /// consistent). `next` is the sequence of the oldest event returned when older events may
    /// exist, `None` when the page reaches back to the first event. A store may return fewer
    /// than `limit` (a page-size cap) with `next` set. The default reads the whole stream
    /// (correct, not cheap): adapters override it.
    async fn read_newest(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<EventEnvelope, u64>, StoreError> {
        let all = self.read(aggregate_id, 1, None).await?;
        let total = all.len();
        let items: Vec<EventEnvelope> = all.into_iter().rev().take(limit).collect();
        let next = if items.len() < total {
            items.last().map(|e| e.sequence)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The stored bytes of the events `from <= sequence <= to`, summed in sequence order, for
    /// the bytes policy (crate::policy::SnapshotPolicy::bytes_threshold). It may stop once
    /// the sum reaches `enough`: a result of `enough` or more is then a lower bound, one
    /// below it is the exact sum. The events asked for are older than events already seen
    /// on the stream, so an adapter may read them eventually consistent (half the cost) as
    /// long as it misses none. The default reads them ([`EventStore::read`]) and measures
    /// their envelopes ([`crate::stored_size::event_bytes`]); the DynamoDB adapter measures
    /// the items it reads.
    async fn stored_bytes(
        &self,
        aggregate_id: &str,
        from: u64,
        to: u64,
        enough: u64,
    ) -> Result<StoredBytes, StoreError> {
        let mut measured = StoredBytes::default();
        for event in self.read(aggregate_id, from, Some(to)).await? {
            if measured.bytes >= enough {
                break;
            }
            measured.events += 1;
            measured.bytes += crate::stored_size::event_bytes(&event);
        }
        Ok(measured)
    }

    /// [`EventStore::read_counted`] for a typed fold: each event decoded as `A`'s (see
    /// [`DecodedEvent`]). The default decodes the envelopes; an adapter whose items decode in
    /// place, without an untyped JSON payload per event, overrides it.
    async fn read_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        let (events, pages) = self.read_counted(aggregate_id, from, to).await?;
        let decoded = events
            .iter()
            .map(|event| DecodedEvent::read::<A>(aggregate_id, event))
            .collect();
        Ok((decoded, pages))
    }

    /// [`EventStore::read_newest`] for a typed fold (see [`EventStore::read_decoded`]).
    async fn read_newest_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<DecodedEvent<A::Event>, u64>, StoreError> {
        let page = self.read_newest(aggregate_id, limit).await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|event| DecodedEvent::read::<A>(aggregate_id, event))
                .collect(),
            next: page.next,
        })
    }

    /// [`EventStore::read_counted`], eventually consistent where the store offers it (on
    /// DynamoDB half the read units). A stale answer is a prefix of the stream: it may lack
    /// the newest events, never has a gap. The default reads strongly.
    async fn read_counted_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.read_counted(aggregate_id, from, to).await
    }

    /// [`EventStore::read_decoded`], eventually consistent where the store offers it (see
    /// [`EventStore::read_counted_relaxed`]). The default reads strongly.
    async fn read_decoded_relaxed<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.read_decoded::<A>(aggregate_id, from, to).await
    }
}

/// Reads an aggregate's events in one form `V`: what the snapshot walk
/// (`crate::walk`) reads a candidate's boundary and tail with. Every [`EventStore`] reads
/// envelopes; [`Decoding`] reads one aggregate type's typed events.
#[async_trait]
pub trait EventReader<V: ReadEvent>: Send + Sync {
    /// Events with `from <= sequence <= to` (`to = None`: to the end), ascending, every
    /// page, and how many sequential requests (pages) that took.
    async fn read_range(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<V>, u32), StoreError>;

    /// [`EventReader::read_range`], eventually consistent where the store offers it (a
    /// prefix of the stream, see [`EventStore::read_counted_relaxed`]).
    async fn read_range_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<V>, u32), StoreError> {
        self.read_range(aggregate_id, from, to).await
    }

    /// [`EventReader::read_range`], strongly consistent whatever this reader's own reads
    /// are: what a snapshot's missing boundary event is asked again with before the snapshot
    /// is called wrong (crate::walk).
    async fn read_range_strong(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<V>, u32), StoreError> {
        self.read_range(aggregate_id, from, to).await
    }

    /// True when [`EventReader::read_range`] may be stale (eventually consistent).
    fn may_lag(&self) -> bool {
        false
    }
}

/// An event reader whose reads are eventually consistent ([`EventReader::read_range_relaxed`]):
/// half the read units on DynamoDB; a missing boundary event is asked again strongly
/// ([`EventReader::read_range_strong`]) before a snapshot is called wrong for it.
pub struct Relaxed<'a, R: ?Sized>(pub &'a R);

#[async_trait]
impl<V: ReadEvent, R: EventReader<V> + ?Sized> EventReader<V> for Relaxed<'_, R> {
    async fn read_range(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<V>, u32), StoreError> {
        self.0.read_range_relaxed(aggregate_id, from, to).await
    }

    async fn read_range_strong(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<V>, u32), StoreError> {
        self.0.read_range(aggregate_id, from, to).await
    }

    fn may_lag(&self) -> bool {
        true
    }
}

#[async_trait]
impl<E: EventStore + ?Sized> EventReader<EventEnvelope> for E {
    async fn read_range(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.read_counted(aggregate_id, from, to).await
    }

    async fn read_range_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.read_counted_relaxed(aggregate_id, from, to).await
    }
}

/// An event store read as aggregate `A`'s typed events ([`EventStore::read_decoded`]).
pub struct Decoding<'a, E: ?Sized, A> {
    store: &'a E,
    aggregate: PhantomData<fn() -> A>,
}

impl<'a, E: ?Sized, A> Decoding<'a, E, A> {
    /// Reads `store`'s events as `A`'s.
    pub fn new(store: &'a E) -> Self {
        Self {
            store,
            aggregate: PhantomData,
        }
    }
}

#[async_trait]
impl<E: EventStore + ?Sized, A: Aggregate> EventReader<DecodedEvent<A::Event>>
    for Decoding<'_, E, A>
{
    async fn read_range(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.store.read_decoded::<A>(aggregate_id, from, to).await
    }

    async fn read_range_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.store
            .read_decoded_relaxed::<A>(aggregate_id, from, to)
            .await
    }
}

/// The snapshot table: at most one snapshot per aggregate and version (same key = same
/// content), read newest first, never rewritten except to mark one invalid or replace a
/// marked one. An item that does not read as a snapshot is returned as
/// [`UnreadableSnapshot`](crate::snapshot::UnreadableSnapshot), never as an error of the call.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Writes the snapshot unless one with the same key exists (same key = same content);
    /// one marked invalid is replaced.
    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError>;

    /// [`SnapshotStore::put_if_absent`], and when the write moves the aggregate's head forward
    /// the head also tracks the newest `track` valid snapshots written through it (version and
    /// schema version: a few bytes each), this one first; the ones tracked before are returned
    /// ([`TrackedPut`]) so that the writer can delete what falls out of keep-N without reading
    /// a state ([`crate::pruning::put_retaining`]). The list is only ever a subset of the
    /// aggregate's valid snapshots: marking or deleting a snapshot drops the head and its list.
    /// The default tracks nothing.
    async fn put_tracked(
        &self,
        snapshot: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        let _ = track;
        Ok(TrackedPut {
            outcome: self.put_if_absent(snapshot).await?,
            tracked_before: None,
        })
    }

    /// Headers newest first, versions below `before` (all when `None`), at most `limit`.
    /// The cursor of the next page is the last version returned. An item that does not read
    /// as a snapshot is returned as such: it never fails the page.
    async fn headers(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError>;

    /// Like [`SnapshotStore::headers`] with states.
    async fn records(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError>;

    /// Marks one snapshot invalid (see [`InvalidMark`]); `false` when there is none at that
    /// key. Marking never creates an item.
    async fn mark_invalid(
        &self,
        aggregate_id: &str,
        version: u64,
        mark: &InvalidMark,
    ) -> Result<bool, StoreError>;

    /// The entry, if any.
    async fn get(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Option<SnapshotRecord>, StoreError>;

    /// Deletes one snapshot; `false` when there was none.
    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError>;

    /// One page of a parallel scan (`segment` of `total_segments`) over every snapshot,
    /// returning only keys and the attributes the pruner decides on, and reading nothing else:
    /// its cost must not depend on the size of the states (DynamoDB: a scan of the keys-only
    /// index, eventually consistent).
    async fn scan_summaries(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<SnapshotKey>,
        limit: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError>;

    /// Deletes many snapshots (batched, unprocessed items retried); returns how many were sent.
    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError>;

    /// The newest snapshot in one request, for a caller that needs its state only sometimes:
    /// a store that keeps large states outside the item (see [`crate::offload`]) returns
    /// such a record without its state (`header.state_ref` set), for
    /// [`SnapshotStore::fetch_state`] to complete when it is needed.
    async fn newest_unfetched(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<Stored<SnapshotRecord>>, StoreError> {
        Ok(self
            .records(aggregate_id, None, 1)
            .await?
            .items
            .into_iter()
            .next())
    }

    /// Completes a record read by [`SnapshotStore::newest_unfetched`] with its state (no
    /// request when the state is in the item). A missing state object is
    /// [`StoreError::MalformedSnapshot`].
    async fn fetch_state(&self, record: SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        Ok(record)
    }

    /// The newest snapshot's header, if any.
    async fn latest_header(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<Stored<SnapshotHeader>>, StoreError> {
        Ok(self
            .headers(aggregate_id, None, 1)
            .await?
            .items
            .into_iter()
            .next())
    }

    /// The head of the aggregate's newest valid snapshot as the store keeps it
    /// ([`crate::head`]): a small read (half a read unit on DynamoDB, whatever the state's
    /// size), possibly older than the newest snapshot, never naming one since marked invalid
    /// or deleted. `None`: no head kept (no snapshot yet, one written before heads existed, or
    /// its head dropped with it); the caller then reads the snapshot itself. A store that
    /// keeps no heads answers `None` always.
    async fn head(&self, aggregate_id: &str) -> Result<Option<SnapshotHead>, StoreError> {
        let _ = aggregate_id;
        Ok(None)
    }

    /// Records `head` for a snapshot the caller read and found to be the newest valid one, so
    /// a store written before heads existed gets them as aggregates are met. Never moves a
    /// stored head back to an older version.
    async fn record_head(&self, head: &SnapshotHead) -> Result<(), StoreError> {
        let _ = head;
        Ok(())
    }
}

/// An [`EventStore`] that wraps another and changes only some of its calls (metering, fault
/// injection, recording). Implement this trait instead of [`EventStore`]: name the wrapped store
/// in [`EventStoreDecorator::delegate`] and override only the methods the wrapper changes; every
/// other call goes to the wrapped store unchanged, its own overrides included (not the port's
/// defaults, which would turn one `read_newest` into a full read). The blanket
/// `impl EventStore for D: EventStoreDecorator` below makes the wrapper a store.
///
/// A method added to [`EventStore`] gets its forward here and in that impl (this file), and
/// its implementation in the adapters (`crate::memory`, `shared/dynamo`); no wrapper changes.
/// Where both this trait and [`EventStore`] are in scope, a call on a decorator is ambiguous:
/// name the port there (`EventStore::read(&store, ..)`).
#[async_trait]
pub trait EventStoreDecorator: Send + Sync {
    /// The wrapped store.
    type Inner: EventStore + ?Sized;

    /// The store every call this decorator does not override goes to. Asked exactly once per
    /// forwarded call, so a decorator that counts calls can count here
    /// ([`crate::load_metrics::Metered`]).
    fn delegate(&self) -> &Self::Inner;

    /// Forwards [`EventStore::append`].
    async fn append(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        self.delegate().append(expected_version, events).await
    }

    /// Forwards [`EventStore::read`].
    async fn read(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.delegate().read(aggregate_id, from, to).await
    }

    /// Forwards [`EventStore::read_counted`].
    async fn read_counted(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.delegate().read_counted(aggregate_id, from, to).await
    }

    /// Forwards [`EventStore::read_newest`].
    async fn read_newest(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<EventEnvelope, u64>, StoreError> {
        self.delegate().read_newest(aggregate_id, limit).await
    }

    /// Forwards [`EventStore::stored_bytes`].
    async fn stored_bytes(
        &self,
        aggregate_id: &str,
        from: u64,
        to: u64,
        enough: u64,
    ) -> Result<StoredBytes, StoreError> {
        self.delegate()
            .stored_bytes(aggregate_id, from, to, enough)
            .await
    }

    /// Forwards [`EventStore::read_decoded`].
    async fn read_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.delegate()
            .read_decoded::<A>(aggregate_id, from, to)
            .await
    }

    /// Forwards [`EventStore::read_newest_decoded`].
    async fn read_newest_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<DecodedEvent<A::Event>, u64>, StoreError> {
        self.delegate()
            .read_newest_decoded::<A>(aggregate_id, limit)
            .await
    }

    /// Forwards [`EventStore::read_counted_relaxed`].
    async fn read_counted_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.delegate()
            .read_counted_relaxed(aggregate_id, from, to)
            .await
    }

    /// Forwards [`EventStore::read_decoded_relaxed`].
    async fn read_decoded_relaxed<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.delegate()
            .read_decoded_relaxed::<A>(aggregate_id, from, to)
            .await
    }
}

#[async_trait]
impl<D: EventStoreDecorator> EventStore for D {
    async fn append(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        EventStoreDecorator::append(self, expected_version, events).await
    }

    async fn read(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        EventStoreDecorator::read(self, aggregate_id, from, to).await
    }

    async fn read_counted(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        EventStoreDecorator::read_counted(self, aggregate_id, from, to).await
    }

    async fn read_newest(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<EventEnvelope, u64>, StoreError> {
        EventStoreDecorator::read_newest(self, aggregate_id, limit).await
    }

    async fn stored_bytes(
        &self,
        aggregate_id: &str,
        from: u64,
        to: u64,
        enough: u64,
    ) -> Result<StoredBytes, StoreError> {
        EventStoreDecorator::stored_bytes(self, aggregate_id, from, to, enough).await
    }

    async fn read_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        EventStoreDecorator::read_decoded::<A>(self, aggregate_id, from, to).await
    }

    async fn read_newest_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<DecodedEvent<A::Event>, u64>, StoreError> {
        EventStoreDecorator::read_newest_decoded::<A>(self, aggregate_id, limit).await
    }

    async fn read_counted_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        EventStoreDecorator::read_counted_relaxed(self, aggregate_id, from, to).await
    }

    async fn read_decoded_relaxed<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        EventStoreDecorator::read_decoded_relaxed::<A>(self, aggregate_id, from, to).await
    }
}

/// A [`SnapshotStore`] that wraps another and changes only some of its calls (offloading,
/// metering, recording). Implement this trait instead of [`SnapshotStore`]: name the wrapped
/// store in [`SnapshotStoreDecorator::delegate`] and override only the methods the wrapper
/// changes; every other call goes to the wrapped store unchanged, its own overrides included
/// (a DynamoDB `latest_header` stays one request). The blanket
/// `impl SnapshotStore for D: SnapshotStoreDecorator` below makes the wrapper a store.
///
/// A method added to [`SnapshotStore`] gets its forward here and in that impl (this file), and
/// its implementation in the adapters (`crate::memory`, `shared/dynamo`); no wrapper changes.
/// Where both this trait and [`SnapshotStore`] are in scope, a call on a decorator is
/// ambiguous: name the port there (`SnapshotStore::get(&store, ..)`).
#[async_trait]
pub trait SnapshotStoreDecorator: Send + Sync {
    /// The wrapped store.
    type Inner: SnapshotStore + ?Sized;

    /// The store every call this decorator does not override goes to. Asked exactly once per
    /// forwarded call, so a decorator that counts calls can count here
    /// ([`crate::load_metrics::Metered`]).
    fn delegate(&self) -> &Self::Inner;

    /// Forwards [`SnapshotStore::put_if_absent`].
    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        self.delegate().put_if_absent(snapshot).await
    }

    /// Forwards [`SnapshotStore::put_tracked`].
    async fn put_tracked(
        &self,
        snapshot: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        self.delegate().put_tracked(snapshot, track).await
    }

    /// Forwards [`SnapshotStore::headers`].
    async fn headers(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError> {
        self.delegate().headers(aggregate_id, before, limit).await
    }

    /// Forwards [`SnapshotStore::records`].
    async fn records(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        self.delegate().records(aggregate_id, before, limit).await
    }

    /// Forwards [`SnapshotStore::mark_invalid`].
    async fn mark_invalid(
        &self,
        aggregate_id: &str,
        version: u64,
        mark: &InvalidMark,
    ) -> Result<bool, StoreError> {
        self.delegate()
            .mark_invalid(aggregate_id, version, mark)
            .await
    }

    /// Forwards [`SnapshotStore::get`].
    async fn get(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        self.delegate().get(aggregate_id, version).await
    }

    /// Forwards [`SnapshotStore::delete`].
    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError> {
        self.delegate().delete(aggregate_id, version).await
    }

    /// Forwards [`SnapshotStore::scan_summaries`].
    async fn scan_summaries(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<SnapshotKey>,
        limit: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        self.delegate()
            .scan_summaries(segment, total_segments, cursor, limit)
            .await
    }

    /// Forwards [`SnapshotStore::delete_many`].
    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        self.delegate().delete_many(keys).await
    }

    /// Forwards [`SnapshotStore::newest_unfetched`].
    async fn newest_unfetched(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<Stored<SnapshotRecord>>, StoreError> {
        self.delegate().newest_unfetched(aggregate_id).await
    }

    /// Forwards [`SnapshotStore::fetch_state`].
    async fn fetch_state(&self, record: SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.delegate().fetch_state(record).await
    }

    /// Forwards [`SnapshotStore::latest_header`].
    async fn latest_header(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<Stored<SnapshotHeader>>, StoreError> {
        self.delegate().latest_header(aggregate_id).await
    }

    /// Forwards [`SnapshotStore::head`].
    async fn head(&self, aggregate_id: &str) -> Result<Option<SnapshotHead>, StoreError> {
        self.delegate().head(aggregate_id).await
    }

    /// Forwards [`SnapshotStore::record_head`].
    async fn record_head(&self, head: &SnapshotHead) -> Result<(), StoreError> {
        self.delegate().record_head(head).await
    }
}

#[async_trait]
impl<D: SnapshotStoreDecorator> SnapshotStore for D {
    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        SnapshotStoreDecorator::put_if_absent(self, snapshot).await
    }

    async fn put_tracked(
        &self,
        snapshot: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        SnapshotStoreDecorator::put_tracked(self, snapshot, track).await
    }

    async fn headers(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError> {
        SnapshotStoreDecorator::headers(self, aggregate_id, before, limit).await
    }

    async fn records(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        SnapshotStoreDecorator::records(self, aggregate_id, before, limit).await
    }

    async fn mark_invalid(
        &self,
        aggregate_id: &str,
        version: u64,
        mark: &InvalidMark,
    ) -> Result<bool, StoreError> {
        SnapshotStoreDecorator::mark_invalid(self, aggregate_id, version, mark).await
    }

    async fn get(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        SnapshotStoreDecorator::get(self, aggregate_id, version).await
    }

    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError> {
        SnapshotStoreDecorator::delete(self, aggregate_id, version).await
    }

    async fn scan_summaries(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<SnapshotKey>,
        limit: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        SnapshotStoreDecorator::scan_summaries(self, segment, total_segments, cursor, limit).await
    }

    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        SnapshotStoreDecorator::delete_many(self, keys).await
    }

    async fn newest_unfetched(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<Stored<SnapshotRecord>>, StoreError> {
        SnapshotStoreDecorator::newest_unfetched(self, aggregate_id).await
    }

    async fn fetch_state(&self, record: SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        SnapshotStoreDecorator::fetch_state(self, record).await
    }

    async fn latest_header(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<Stored<SnapshotHeader>>, StoreError> {
        SnapshotStoreDecorator::latest_header(self, aggregate_id).await
    }

    async fn head(&self, aggregate_id: &str) -> Result<Option<SnapshotHead>, StoreError> {
        SnapshotStoreDecorator::head(self, aggregate_id).await
    }

    async fn record_head(&self, head: &SnapshotHead) -> Result<(), StoreError> {
        SnapshotStoreDecorator::record_head(self, head).await
    }
}

/// A shared store is the store itself: every call goes to it.
impl<T: EventStore + ?Sized> EventStoreDecorator for Arc<T> {
    type Inner = T;

    fn delegate(&self) -> &T {
        self
    }
}

/// A shared store is the store itself: every call goes to it.
impl<T: SnapshotStore + ?Sized> SnapshotStoreDecorator for Arc<T> {
    type Inner = T;

    fn delegate(&self) -> &T {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose reads answer in a way no port default does: a forward that fell back to
    /// the default (a full read, `headers(.., 1)`) would not see these answers.
    struct Probe;

    #[async_trait]
    impl EventStore for Probe {
        async fn append(&self, _: u64, _: &[EventEnvelope]) -> Result<(), StoreError> {
            Ok(())
        }
        async fn read(
            &self,
            _: &str,
            _: u64,
            _: Option<u64>,
        ) -> Result<Vec<EventEnvelope>, StoreError> {
            Err(StoreError::backend(
                "Query",
                "the default read_newest reads it all",
            ))
        }
        async fn read_newest(
            &self,
            _: &str,
            _: usize,
        ) -> Result<Page<EventEnvelope, u64>, StoreError> {
            Ok(Page {
                items: Vec::new(),
                next: Some(42),
            })
        }
        async fn stored_bytes(
            &self,
            _: &str,
            _: u64,
            _: u64,
            _: u64,
        ) -> Result<StoredBytes, StoreError> {
            Ok(StoredBytes {
                events: 1,
                bytes: 42,
                read_units: Some(0.5),
            })
        }
    }

    /// Wraps without changing anything.
    struct Plain(Probe);

    impl EventStoreDecorator for Plain {
        type Inner = Probe;

        fn delegate(&self) -> &Probe {
            &self.0
        }
    }

    #[tokio::test]
    async fn decorators_forward_to_the_wrapped_stores_own_overrides() {
        // Both traits are in scope here, so calls name the port.
        let shared = Arc::new(Probe);
        let page = EventStore::read_newest(&shared, "a", 1).await.unwrap();
        assert_eq!(page.next, Some(42));
        let page = EventStore::read_newest(&Plain(Probe), "a", 1)
            .await
            .unwrap();
        assert_eq!(page.next, Some(42));
        let nested = Arc::new(Plain(Probe));
        let page = EventStore::read_newest_decoded::<crate::domain::InventoryItem>(&nested, "a", 1)
            .await
            .unwrap();
        assert_eq!(page.next, Some(42));
        let measured = EventStore::stored_bytes(&nested, "a", 1, 2, 100)
            .await
            .unwrap();
        assert_eq!(measured.bytes, 42);
    }
}
