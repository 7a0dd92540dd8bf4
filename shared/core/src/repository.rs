//! Loads aggregates from their latest *valid* snapshot plus only the newer events, and saves
//! new events with optimistic concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::now_millis;
use crate::codec::SnapshotCodec;
use crate::domain::{Aggregate, AggregateRoot, DomainError, EventEnvelope, ReadEvent};
use crate::error::{EventError, StoreError};
use crate::policy::PolicySet;
use crate::ports::{Decoding, EventReader, EventStore, Page, PutOutcome, SnapshotStore};
use crate::registry::{fold_decoded, AggregateKind, FoldError};
use crate::snapshot::{
    build_snapshot, InvalidSnapshot, SnapshotBuildError, SnapshotHeader, SnapshotMetadata,
    SnapshotRecord, SnapshotSubject,
};
use crate::walk::{Reads, SnapshotWalk, Start, Tail, Target, Verdict, WalkError};

/// Why a load, save or manual snapshot failed. Only [`RepositoryError::Store`] can be
/// transient (see [`StoreError::is_retryable`]); the others say something about the data.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(transparent)]
    /// A store call failed: a conflict on save ([`RepositoryError::is_conflict`]), or a
    /// backend failure that may be worth retrying.
    Store(#[from] StoreError),
    #[error(transparent)]
    /// A stored event could not be folded (unknown type, bad payload, a gap): the aggregate
    /// cannot be loaded until the code or the data is fixed.
    Event(#[from] EventError),
    #[error(transparent)]
    /// A command refused by the aggregate's rules, for callers that run commands and save in
    /// one function (`?` converts it); the repository itself never returns it.
    Domain(#[from] DomainError),
    #[error(transparent)]
    /// A manual snapshot could not be built (too large for one item without a state bucket,
    /// or not encodable); nothing was written.
    Snapshot(#[from] SnapshotBuildError),
    #[error("aggregate {aggregate_id} has no events")]
    /// The aggregate has no events: it does not exist (a load or manual snapshot of it is
    /// refused, not answered with an initial state).
    NotFound {
        /// The aggregate the item belongs to.
        aggregate_id: String,
    },
}

impl RepositoryError {
    /// True when retrying with a fresh load may succeed (optimistic-concurrency conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict { .. }))
    }
}

/// How a load was served.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// Version of the snapshot the state started from (none, `null` in JSON: a full replay).
    // Always serialised (null for a full replay), so required in the admin API's document.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub snapshot_version: Option<u64>,
    /// Events folded on top of it.
    pub events_replayed: u64,
    /// Invalid snapshots passed over on the way.
    pub snapshots_skipped: u64,
    /// Sequential round trips to the stores: requests sent together count once, every page
    /// of a paginated read counts. One when the newest snapshot is valid and the newest
    /// events read with it reach back to it.
    pub round_trips: u32,
    /// Requests sent to the stores (reads, and marks of invalid snapshots found on the way).
    pub requests: u32,
}

/// A state as JSON bytes, for callers that handle every aggregate type generically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedState {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
    pub aggregate_type: &'static str,
    /// The aggregate version (sequence of the last event folded in).
    pub version: u64,
    /// `eventId` of the event at `version` (`None` only when the state came from a snapshot
    /// written before snapshots recorded it, with no newer events).
    pub last_event_id: Option<String>,
    /// The state as JSON bytes.
    pub state_json: Vec<u8>,
    /// How it was loaded.
    pub report: LoadReport,
}

/// The last event folded into a loaded state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    version: u64,
    /// `None` only for a snapshot written before `lastEventId` existed, with no tail.
    last_event_id: Option<String>,
}

impl Head {
    fn at(last: &impl ReadEvent) -> Self {
        Self {
            version: last.sequence(),
            last_event_id: Some(last.event_id().to_owned()),
        }
    }

    fn after(header: &SnapshotHeader, tail: &[impl ReadEvent]) -> Self {
        match tail.last() {
            Some(last) => Self::at(last),
            None => Self {
                version: header.version,
                last_event_id: header.last_event_id.clone(),
            },
        }
    }
}

/// Audit actor of the marks a repository sets when none is given.
pub const DEFAULT_ACTOR: &str = "repository";

/// Loads aggregates from their newest valid snapshot plus the events after it, and saves new
/// events with optimistic concurrency, through any [`EventStore`] and [`SnapshotStore`].
/// Invalid snapshots it finds on the way are skipped, marked (as [`DEFAULT_ACTOR`] unless
/// [`AggregateRepository::with_actor`] names another) and counted; a load never fails
/// because of a snapshot.
pub struct AggregateRepository<E, S> {
    events: E,
    snapshots: S,
    codec: SnapshotCodec,
    actor: String,
    invalid_snapshots: Arc<AtomicU64>,
    marked_snapshots: Arc<AtomicU64>,
    policies: PolicySet,
    /// Snapshots kept per aggregate by [`AggregateRepository::snapshot_now`]'s write (0: the
    /// write deletes nothing, the pruner alone keeps keep-N).
    keep: usize,
}

impl<E, S> AggregateRepository<E, S> {
    /// Names who marks the invalid snapshots this repository finds (audit actor, metric).
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The snapshot policies in force: a load reads the newest `threshold + 1` events with
    /// the newest snapshot, enough to reach back to it whenever the snapshotter keeps up.
    pub fn with_policies(mut self, policies: PolicySet) -> Self {
        self.policies = policies;
        self
    }

    /// Keep-N on the write path (`MAX_SNAPSHOTS_PER_AGGREGATE`): a snapshot written by
    /// [`AggregateRepository::snapshot_now`] deletes the one it pushes out of keep-N, without
    /// reading (see [`crate::pruning::put_retaining`]).
    pub fn with_retention(mut self, keep: usize) -> Self {
        self.keep = keep;
        self
    }

    /// Events read newest first alongside the snapshot: the policy's threshold (the most
    /// events a kept-up aggregate has after its newest snapshot) plus the boundary event.
    fn tail_limit(&self, aggregate_type: &str) -> usize {
        let threshold = self.policies.for_type(aggregate_type).threshold;
        usize::try_from(threshold.saturating_add(1)).unwrap_or(usize::MAX)
    }
}

impl<E: EventStore, S: SnapshotStore> AggregateRepository<E, S> {
    /// A repository over these stores, opening and building snapshots with `codec`, with the
    /// default snapshot policies (the newest events read alongside a snapshot follow them).
    pub fn new(events: E, snapshots: S, codec: SnapshotCodec) -> Self {
        Self {
            events,
            snapshots,
            codec,
            actor: DEFAULT_ACTOR.to_owned(),
            invalid_snapshots: Arc::default(),
            marked_snapshots: Arc::default(),
            policies: PolicySet::default(),
            keep: 0,
        }
    }

    /// The event store.
    pub fn events(&self) -> &E {
        &self.events
    }

    /// The snapshot store.
    pub fn snapshots(&self) -> &S {
        &self.snapshots
    }

    /// The codec that opens (verifies) and builds this repository's snapshots.
    pub fn codec(&self) -> &SnapshotCodec {
        &self.codec
    }

    /// Invalid snapshots skipped since this repository was made.
    pub fn invalid_snapshots_skipped(&self) -> u64 {
        self.invalid_snapshots.load(Ordering::Relaxed)
    }

    /// Snapshots this repository marked invalid since it was made.
    pub fn snapshots_marked_invalid(&self) -> u64 {
        self.marked_snapshots.load(Ordering::Relaxed)
    }

    /// Loads a typed aggregate: one round trip (two requests sent together) when the newest
    /// snapshot is valid and at most the policy threshold of events follow it. The events
    /// are read as `A`'s typed events ([`EventStore::read_decoded`]): the DynamoDB adapter
    /// decodes each item's payload in place, with no untyped JSON value per event.
    pub async fn load<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<(AggregateRoot<A>, LoadReport), RepositoryError> {
        let newest = self
            .events
            .read_newest_decoded::<A>(aggregate_id, self.tail_limit(A::TYPE));
        let (state, head, report) = self
            .load_with(
                &Decoding::<E, A>::new(&self.events),
                newest,
                Target {
                    aggregate_id,
                    aggregate_type: A::TYPE,
                    schema_version: A::SCHEMA_VERSION,
                },
                |base_version, base, tail| {
                    fold_decoded::<A>(aggregate_id, base_version, base, tail)
                },
            )
            .await?;
        Ok((
            AggregateRoot::from_state(aggregate_id, head.version, state),
            report,
        ))
    }

    /// Loads any registered type; the state comes back as JSON.
    pub async fn load_kind(
        &self,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
    ) -> Result<LoadedState, RepositoryError> {
        let newest = self
            .events
            .read_newest(aggregate_id, self.tail_limit(kind.type_name()));
        let (state_json, head, report) = self
            .load_with(
                &self.events,
                newest,
                Target {
                    aggregate_id,
                    aggregate_type: kind.type_name(),
                    schema_version: kind.schema_version(),
                },
                |base_version, base, tail| kind.fold_json(aggregate_id, base_version, base, tail),
            )
            .await?;
        Ok(LoadedState {
            aggregate_id: aggregate_id.to_owned(),
            aggregate_type: kind.type_name(),
            version: head.version,
            last_event_id: head.last_event_id,
            state_json,
            report,
        })
    }

    /// Rebuilds from every event, ignoring snapshots (the reference for drift checks).
    pub async fn replay_kind(
        &self,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
    ) -> Result<LoadedState, RepositoryError> {
        let (events, pages) = self.events.read_counted(aggregate_id, 1, None).await?;
        let last = events.last().ok_or_else(|| RepositoryError::NotFound {
            aggregate_id: aggregate_id.to_owned(),
        })?;
        let version = last.sequence;
        let last_event_id = Some(last.event_id.clone());
        let state_json = kind
            .fold_json(aggregate_id, 0, None, &events)
            .map_err(fold_error)?;
        Ok(LoadedState {
            aggregate_id: aggregate_id.to_owned(),
            aggregate_type: kind.type_name(),
            version,
            last_event_id,
            report: LoadReport {
                snapshot_version: None,
                events_replayed: events.len() as u64,
                snapshots_skipped: 0,
                round_trips: pages,
                requests: pages,
            },
            state_json,
        })
    }

    /// The load: the newest snapshot and the newest events (newest first, as many as the
    /// policy lets follow a snapshot, plus its boundary event) are read at once; a second
    /// read happens only when those events do not reach back to the snapshot (or to the first
    /// event, for a full replay). Invalid snapshots are passed over newest first, as ever.
    /// `events` reads the events in the form `fold` takes; `newest` is its read of the
    /// newest events, sent together with the snapshot read.
    async fn load_with<T, V: ReadEvent, R: EventReader<V>>(
        &self,
        events: &R,
        newest: impl std::future::Future<Output = Result<Page<V, u64>, StoreError>>,
        target: Target<'_>,
        fold: impl Fn(u64, Option<&[u8]>, &[V]) -> Result<T, FoldError>,
    ) -> Result<(T, Head, LoadReport), RepositoryError> {
        let aggregate_id = target.aggregate_id;
        let (first_page, newest) =
            futures::join!(self.snapshots.records(aggregate_id, None, 1), newest);
        let mut reads = Reads::with_newest(newest?, 2);
        let start = Start::Page(first_page?);
        let walked = self
            .walk_with(events)
            .newest_valid_with(target, start, Tail::ToEnd, &mut reads, |candidate| {
                let version = candidate.header.version;
                match fold(version, Some(&candidate.state), &candidate.tail) {
                    Ok(state) => {
                        let head = Head::after(&candidate.header, &candidate.tail);
                        Verdict::Use((state, head, candidate.tail.len() as u64))
                    }
                    Err(FoldError::BaseState { reason, .. }) => {
                        Verdict::Invalid(InvalidSnapshot::State(reason))
                    }
                    Err(FoldError::Event(e)) => Verdict::Fail(e),
                }
            })
            .await
            .map_err(|e| match e {
                WalkError::Store(e) => RepositoryError::Store(e),
                WalkError::Fail(e) => RepositoryError::Event(e),
            })?;
        let skipped = walked.skipped.len() as u64;
        self.invalid_snapshots.fetch_add(skipped, Ordering::Relaxed);
        self.marked_snapshots
            .fetch_add(walked.marked(), Ordering::Relaxed);
        if let Some((header, (state, head, replayed))) = walked.found {
            let report = LoadReport {
                snapshot_version: Some(header.version),
                events_replayed: replayed,
                snapshots_skipped: skipped,
                round_trips: reads.round_trips,
                requests: reads.requests,
            };
            return Ok((state, head, report));
        }
        let events = reads.take_events_from(events, aggregate_id, 1).await?;
        let Some(last) = events.last() else {
            return Err(RepositoryError::NotFound {
                aggregate_id: aggregate_id.to_owned(),
            });
        };
        let head = Head::at(last);
        let state = fold(0, None, &events).map_err(fold_error)?;
        let report = LoadReport {
            snapshot_version: None,
            events_replayed: events.len() as u64,
            snapshots_skipped: skipped,
            round_trips: reads.round_trips,
            requests: reads.requests,
        };
        Ok((state, head, report))
    }

    /// The walk over this repository's stores.
    pub fn walk(&self) -> SnapshotWalk<'_, E, S> {
        self.walk_with(&self.events)
    }

    /// The walk over this repository's snapshots, reading events through `events` (its event
    /// store in another form, e.g. [`Decoding`]).
    fn walk_with<'a, R: ?Sized>(&'a self, events: &'a R) -> SnapshotWalk<'a, R, S> {
        SnapshotWalk {
            events,
            snapshots: &self.snapshots,
            codec: &self.codec,
            actor: &self.actor,
        }
    }

    /// Appends the aggregate's uncommitted events at its version; on success they are committed.
    /// A concurrent writer makes this fail with a conflict (see [`RepositoryError::is_conflict`]).
    ///
    /// Exactly once: the events carry the ids they were recorded with, so the store recognises
    /// its own events after a lost reply, and a `save` retried after an error whose outcome is
    /// unknown (see [`StoreError::is_retryable`]) appends them at most once.
    pub async fn save<A: Aggregate>(
        &self,
        root: &mut AggregateRoot<A>,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<u64, RepositoryError> {
        let now = now_millis();
        let envelopes: Vec<EventEnvelope> = root
            .uncommitted()
            .iter()
            .zip(root.uncommitted_ids())
            .enumerate()
            .map(|(offset, (event, event_id))| {
                EventEnvelope::wrap_with_id::<A>(
                    root.id(),
                    root.version() + 1 + offset as u64,
                    event,
                    event_id.clone(),
                    now,
                    metadata.clone(),
                )
            })
            .collect();
        if !envelopes.is_empty() {
            self.events.append(root.version(), &envelopes).await?;
        }
        root.mark_committed();
        Ok(root.version())
    }

    /// Snapshots an aggregate at its current version (used for manual snapshots).
    pub async fn snapshot_now(
        &self,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
        metadata: SnapshotMetadata,
        expires_at: Option<i64>,
    ) -> Result<(SnapshotRecord, PutOutcome), RepositoryError> {
        let loaded = self.load_kind(kind, aggregate_id).await?;
        let subject = SnapshotSubject {
            aggregate_id,
            aggregate_type: kind.type_name(),
            schema_version: kind.schema_version(),
            version: loaded.version,
            last_event_id: loaded.last_event_id.as_deref(),
        };
        let record = build_snapshot(
            &self.codec,
            subject,
            loaded.state_json,
            metadata,
            now_millis(),
            expires_at,
        )?;
        let retained =
            crate::pruning::put_retaining(&self.snapshots, &record, self.keep, &self.actor).await?;
        Ok((record, retained.outcome))
    }
}

fn fold_error(e: FoldError) -> RepositoryError {
    match e {
        FoldError::Event(e) => RepositoryError::Event(e),
        // Only reachable with a base state; a full replay has none.
        FoldError::BaseState {
            aggregate_id,
            reason,
            ..
        } => RepositoryError::Store(StoreError::MalformedSnapshot {
            aggregate_id,
            version: "replay".to_owned(),
            reason,
        }),
    }
}
