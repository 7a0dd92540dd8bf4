//! The one "newest valid snapshot" walk, shared by the repository, the snapshotter and the
//! admin API: newest first, past unreadable items, marked snapshots and snapshots that fail a
//! check, to the first one that is proven to match the events it claims.
//!
//! A candidate is valid when its item reads, it is not marked invalid, its identity, schema,
//! encoding and checksum check out ([`open_snapshot`]), the event at its version exists and
//! carries its `lastEventId` (read in the same request as the tail), and the caller's own
//! check (typically folding the tail onto the state) accepts it. A snapshot found wrong is
//! marked invalid (see [`InvalidMark`]): audited, counted, never used or kept again.

use tracing::warn;

use crate::audit::{AuditRecord, Outcome};
use crate::clock::now_millis;
use crate::codec::SnapshotCodec;
use crate::domain::{EventEnvelope, ReadEvent};
use crate::error::StoreError;
use crate::metrics::MetricSet;
use crate::ports::{EventReader, EventStore, Page, SnapshotStore};
use crate::snapshot::{
    open_snapshot, InvalidMark, InvalidSnapshot, SnapshotHeader, SnapshotRecord, Stored,
};

/// Audit action and metric of a mark.
pub const MARK_ACTION: &str = "snapshot.invalidate";
/// Metric counting snapshots marked invalid.
pub const MARKED_METRIC: &str = "SnapshotsMarkedInvalid";

/// The newest snapshot is read on its own (it is nearly always the one used); older ones in
/// pages of this size.
const FALLBACK_PAGE: usize = 4;

/// Which events to read with a candidate (always from its own version, the boundary event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Every event after the snapshot.
    ToEnd,
    /// Events up to this sequence (at least the boundary event).
    Through(u64),
    /// The boundary event only: enough to check the snapshot was built from the stored
    /// events (its `lastEventId`), for a caller that brings the newer events itself.
    BoundaryOnly,
}

/// A snapshot that passed the store-level checks, with the events after it, in the form the
/// walk reads them (envelopes, or a typed load's [`crate::domain::DecodedEvent`]s).
#[derive(Debug)]
pub struct Candidate<V = EventEnvelope> {
    /// Everything but the state.
    pub header: SnapshotHeader,
    /// The uncompressed, checksum-verified JSON state.
    pub state: Vec<u8>,
    /// The events after `header.version`, as asked by [`Tail`].
    pub tail: Vec<V>,
}

/// What the caller makes of a candidate.
#[derive(Debug)]
pub enum Verdict<T, X> {
    /// The snapshot is good: the walk stops here and returns it with this value (the
    /// caller's folded state, for instance).
    Use(T),
    /// The snapshot is wrong (e.g. its state does not decode): it is marked and passed over.
    Invalid(InvalidSnapshot),
    /// Something else failed (e.g. an event of the tail): the walk stops with this error.
    Fail(X),
}

/// A snapshot passed over on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The aggregate version (sequence of the last event folded in).
    pub version: Option<u64>,
    /// Why, in words that name what is wrong.
    pub reason: String,
    /// True when this walk marked it invalid.
    pub marked: bool,
}

/// The walk's result.
#[derive(Debug)]
pub struct Walked<T> {
    /// The newest valid snapshot's header and what the caller made of it; `None`: there is
    /// no valid snapshot (below the start).
    pub found: Option<(SnapshotHeader, T)>,
    /// The snapshots passed over before `found`, newest first, each with why.
    pub skipped: Vec<Skipped>,
}

impl<T> Walked<T> {
    /// Snapshots marked invalid during the walk.
    pub fn marked(&self) -> u64 {
        self.skipped.iter().filter(|s| s.marked).count() as u64
    }
}

/// Why a walk stopped without an answer. An invalid snapshot never stops it (it is
/// skipped); a failing store or the caller's own verdict does.
#[derive(Debug, thiserror::Error)]
pub enum WalkError<X> {
    #[error(transparent)]
    /// A store call failed.
    Store(#[from] StoreError),
    #[error("{0}")]
    /// The caller's [`Verdict::Fail`] on a candidate (an event of its tail that does not
    /// fold, for instance), as the caller gave it.
    Fail(X),
}

/// Where the walk starts.
#[derive(Debug, Default)]
pub enum Start {
    /// At the newest snapshot.
    #[default]
    Newest,
    /// With this record, already read as the newest (saves a request), then below it.
    Prefetched(Box<SnapshotRecord>),
    /// With this first page, already read (newest first), then below it.
    Page(Page<Stored<SnapshotRecord>, u64>),
}

/// The requests of a load or walk, and the events already read newest first alongside the
/// snapshot (a load's one round trip): a candidate's tail is taken from them when they reach
/// back to it, and only what is missing is read.
#[derive(Debug)]
pub struct Reads<V = EventEnvelope> {
    /// Events already read, ascending, the newest of the aggregate at the time.
    newest: Vec<V>,
    /// True when `newest` reaches back to the first event.
    complete: bool,
    /// Requests sent to the stores so far (reads, and marks of invalid snapshots).
    pub requests: u32,
    /// Sequential round trips: requests sent together count once, each page of a paginated
    /// read counts.
    pub round_trips: u32,
}

impl<V> Default for Reads<V> {
    fn default() -> Self {
        Self {
            newest: Vec::new(),
            complete: false,
            requests: 0,
            round_trips: 0,
        }
    }
}

impl<V: ReadEvent> Reads<V> {
    /// Starts from a page of the newest events, newest first (see
    /// [`EventStore::read_newest`]), read in the same round trip as the snapshot page: one
    /// round trip, `requests` requests.
    pub fn with_newest(page: Page<V, u64>, requests: u32) -> Self {
        let mut newest = page.items;
        newest.reverse();
        Self {
            complete: page.next.is_none(),
            newest,
            requests,
            round_trips: 1,
        }
    }

    /// Counts one request sent on its own.
    fn one(&mut self) {
        self.sequential(1);
    }

    /// Counts `pages` requests sent one after another (a paginated read).
    fn sequential(&mut self, pages: u32) {
        self.requests += pages;
        self.round_trips += pages;
    }

    /// Where the events from `from` on start in what was read, when it covers them.
    fn covered_start(&self, from: u64) -> Option<usize> {
        let (oldest, newest) = (
            self.newest.first()?.sequence(),
            self.newest.last()?.sequence(),
        );
        if from > newest || (from < oldest && !self.complete) {
            return None;
        }
        Some(self.newest.partition_point(|e| e.sequence() < from))
    }

    /// Every event from `from` on: from the events already read when they reach back that
    /// far, else with one more (paginated) read of what is missing, kept for a later
    /// candidate or the full replay. When nothing was read, or the snapshot is newer than
    /// the newest event read (appended since), everything from `from` is read.
    pub async fn events_from<E: EventReader<V> + ?Sized>(
        &mut self,
        events: &E,
        aggregate_id: &str,
        from: u64,
    ) -> Result<Vec<V>, StoreError> {
        if let Some(read) = self.fill(events, aggregate_id, from).await? {
            return Ok(read);
        }
        Ok(self
            .covered_start(from)
            .map(|start| self.newest[start..].to_vec())
            .unwrap_or_default())
    }

    /// [`Self::events_from`] for the last use of what was read (a full replay): the events
    /// are moved out, not copied, and nothing is kept.
    pub async fn take_events_from<E: EventReader<V> + ?Sized>(
        &mut self,
        events: &E,
        aggregate_id: &str,
        from: u64,
    ) -> Result<Vec<V>, StoreError> {
        if let Some(read) = self.fill(events, aggregate_id, from).await? {
            return Ok(read);
        }
        let start = self.covered_start(from);
        let mut taken = std::mem::take(&mut self.newest);
        self.complete = false;
        match start {
            Some(start) => {
                taken.drain(..start);
                Ok(taken)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Reads what is missing for the events from `from` on: `None` when what was read now
    /// covers them (nothing was missing, or the missing older events were read and kept);
    /// the events read when nothing was read before, or the snapshot is newer than the
    /// newest event read (those are not kept).
    async fn fill<E: EventReader<V> + ?Sized>(
        &mut self,
        events: &E,
        aggregate_id: &str,
        from: u64,
    ) -> Result<Option<Vec<V>>, StoreError> {
        if self.covered_start(from).is_some() {
            return Ok(None);
        }
        let oldest = self.newest.first().map(ReadEvent::sequence);
        let newest = self.newest.last().map(ReadEvent::sequence);
        let to = match (oldest, newest) {
            (Some(oldest), Some(newest)) if from < oldest && from <= newest => Some(oldest - 1),
            _ => None,
        };
        let (read, pages) = events.read_range(aggregate_id, from, to).await?;
        self.sequential(pages);
        if to.is_none() {
            return Ok(Some(read));
        }
        let mut older = read;
        older.append(&mut self.newest);
        self.newest = older;
        self.complete |= from <= 1;
        Ok(None)
    }
}

/// The aggregate whose snapshots are walked.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The aggregate the item belongs to.
    pub aggregate_id: &'a str,
    /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
    pub aggregate_type: &'a str,
    /// Revision of the state shape.
    pub schema_version: u32,
}

/// The walk over one pair of stores.
pub struct SnapshotWalk<'a, E: ?Sized, S: ?Sized> {
    /// The events: an event store (envelopes), or a reader of its events in another form
    /// ([`EventReader`], e.g. [`crate::ports::Decoding`] for a typed load).
    pub events: &'a E,
    /// The snapshot store.
    pub snapshots: &'a S,
    /// How states are encoded.
    pub codec: &'a SnapshotCodec,
    /// Who marks what it finds invalid (audit `actor`, metric dimension, `invalid.by`).
    pub actor: &'a str,
}

impl<E: ?Sized, S: SnapshotStore + ?Sized> SnapshotWalk<'_, E, S> {
    /// Walks to the newest valid snapshot of `target`. `accept` sees every candidate that
    /// passed the store-level checks, newest first, and decides.
    pub async fn newest_valid<T, X>(
        &self,
        target: Target<'_>,
        start: Start,
        tail: Tail,
        accept: impl FnMut(Candidate) -> Verdict<T, X>,
    ) -> Result<Walked<T>, WalkError<X>>
    where
        E: EventStore,
    {
        self.newest_valid_with(target, start, tail, &mut Reads::default(), accept)
            .await
    }

    /// [`Self::newest_valid`] counting its requests in `reads`, and taking a
    /// [`Tail::ToEnd`] from the events `reads` already holds when they reach back far enough.
    pub async fn newest_valid_with<T, X, V: ReadEvent>(
        &self,
        target: Target<'_>,
        start: Start,
        tail: Tail,
        reads: &mut Reads<V>,
        mut accept: impl FnMut(Candidate<V>) -> Verdict<T, X>,
    ) -> Result<Walked<T>, WalkError<X>>
    where
        E: EventReader<V>,
    {
        let id = target.aggregate_id;
        let mut skipped = Vec::new();
        let mut before = None;
        let mut page_size = 1;
        let mut pending: Vec<Stored<SnapshotRecord>> = Vec::new();
        let mut more = true;
        match start {
            Start::Newest => {}
            Start::Prefetched(record) => {
                before = Some(record.header.version);
                pending.push(Ok(*record));
            }
            Start::Page(page) => {
                page_size = FALLBACK_PAGE;
                more = page.next.is_some();
                before = page.next;
                pending = page.items;
                pending.reverse();
            }
        }
        loop {
            if pending.is_empty() {
                if !more {
                    break;
                }
                reads.one();
                let page = self.snapshots.records(id, before, page_size).await?;
                page_size = FALLBACK_PAGE;
                more = page.next.is_some();
                before = page.next;
                if page.items.is_empty() {
                    break;
                }
                pending = page.items;
                pending.reverse();
            }
            let Some(item) = pending.pop() else { break };
            let record = match item {
                Ok(record) => record,
                Err(unreadable) => {
                    let reason = InvalidSnapshot::Unreadable(unreadable.reason.clone());
                    skipped.push(self.reject(id, unreadable.version, &reason, reads).await);
                    continue;
                }
            };
            let version = record.header.version;
            let candidate = match self.open(&record, target, tail, reads).await? {
                Ok(candidate) => candidate,
                Err(invalid) => {
                    skipped.push(self.reject(id, Some(version), &invalid, reads).await);
                    continue;
                }
            };
            let header = candidate.header.clone();
            match accept(candidate) {
                Verdict::Use(value) => {
                    return Ok(Walked {
                        found: Some((header, value)),
                        skipped,
                    })
                }
                Verdict::Invalid(invalid) => {
                    skipped.push(self.reject(id, Some(version), &invalid, reads).await);
                }
                Verdict::Fail(e) => return Err(WalkError::Fail(e)),
            }
        }
        Ok(Walked {
            found: None,
            skipped,
        })
    }

    /// Store-level checks and the tail read; the inner error says why the snapshot is invalid.
    async fn open<V: ReadEvent>(
        &self,
        record: &SnapshotRecord,
        target: Target<'_>,
        tail: Tail,
        reads: &mut Reads<V>,
    ) -> Result<Result<Candidate<V>, InvalidSnapshot>, StoreError>
    where
        E: EventReader<V>,
    {
        let state = match open_snapshot(
            self.codec,
            record,
            target.aggregate_id,
            target.aggregate_type,
            target.schema_version,
        ) {
            Ok(state) => state,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let version = record.header.version;
        let to = match tail {
            Tail::ToEnd => None,
            Tail::Through(to) => Some(to.max(version)),
            Tail::BoundaryOnly => Some(version),
        };
        // One request reads the boundary event and the tail: the boundary proves the
        // snapshot is not beyond the event stream and was built from these very events.
        let mut events = match to {
            None => {
                reads
                    .events_from(self.events, target.aggregate_id, version)
                    .await?
            }
            Some(to) => {
                let (read, pages) = self
                    .events
                    .read_range(target.aggregate_id, version, Some(to))
                    .await?;
                reads.sequential(pages);
                read
            }
        };
        let mut boundary = check_boundary(&record.header, events.first());
        if matches!(boundary, Err(InvalidSnapshot::BeyondStream { .. })) && self.events.may_lag() {
            // An eventually consistent read may not have reached the boundary event yet:
            // only a strongly consistent read may call the snapshot beyond the stream.
            let (read, pages) = self
                .events
                .read_range_strong(target.aggregate_id, version, to)
                .await?;
            reads.sequential(pages);
            events = read;
            boundary = check_boundary(&record.header, events.first());
        }
        if let Err(invalid) = boundary {
            return Ok(Err(invalid));
        }
        events.remove(0);
        Ok(Ok(Candidate {
            header: record.header.clone(),
            state,
            tail: events,
        }))
    }

    /// Records a passed-over snapshot and marks it when it is proven wrong.
    async fn reject<V: ReadEvent>(
        &self,
        id: &str,
        version: Option<u64>,
        invalid: &InvalidSnapshot,
        reads: &mut Reads<V>,
    ) -> Skipped {
        warn!(aggregate_id = id, version = ?version, reason = %invalid, "invalid snapshot passed over");
        let marked = match version {
            Some(version) if invalid.is_definitive() => {
                reads.one();
                mark_invalid(
                    self.snapshots,
                    self.actor,
                    id,
                    version,
                    &invalid.to_string(),
                )
                .await
                .unwrap_or(false)
            }
            _ => false,
        };
        Skipped {
            version,
            reason: invalid.to_string(),
            marked,
        }
    }
}

/// The event at a snapshot's version must exist and, when the snapshot names it, be that one.
pub fn check_boundary(
    header: &SnapshotHeader,
    boundary: Option<&impl ReadEvent>,
) -> Result<(), InvalidSnapshot> {
    let version = header.version;
    let Some(event) = boundary.filter(|e| e.sequence() == version) else {
        return Err(InvalidSnapshot::BeyondStream { version });
    };
    match &header.last_event_id {
        Some(expected) if expected != event.event_id() => Err(InvalidSnapshot::BoundaryMismatch {
            version,
            expected: expected.clone(),
            found: event.event_id().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Marks a snapshot invalid, with its audit record and metric. `Ok(false)`: it was gone. A
/// failed mark is logged and returned; the snapshot is still never used by this reader.
pub async fn mark_invalid<S: SnapshotStore + ?Sized>(
    store: &S,
    actor: &str,
    aggregate_id: &str,
    version: u64,
    reason: &str,
) -> Result<bool, StoreError> {
    let mark = InvalidMark {
        reason: reason.to_owned(),
        at: now_millis(),
        by: actor.to_owned(),
    };
    let result = store.mark_invalid(aggregate_id, version, &mark).await;
    let (outcome, detail) = match &result {
        Ok(true) => (Outcome::Success, reason.to_owned()),
        Ok(false) => (Outcome::Noop, format!("already gone: {reason}")),
        Err(e) => (Outcome::Failure, format!("{reason}; marking failed: {e}")),
    };
    AuditRecord::new(actor, MARK_ACTION, outcome)
        .aggregate(aggregate_id, Some(version))
        .detail(detail)
        .emit();
    if matches!(result, Ok(true)) {
        let mut metrics = MetricSet::new(actor);
        metrics.count(MARKED_METRIC, 1);
        metrics.flush();
    }
    if let Err(e) = &result {
        warn!(aggregate_id, version, error = %e, "marking a snapshot invalid failed");
    }
    result
}
