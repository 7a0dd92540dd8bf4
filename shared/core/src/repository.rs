//! Loads aggregates from their latest *valid* snapshot plus only the newer events, and saves
//! new events with optimistic concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::now_millis;
use crate::codec::SnapshotCodec;
use crate::domain::{Aggregate, AggregateRoot, DomainError, EventEnvelope, ReadEvent};
use crate::error::{EventError, StoreError};
use crate::policy::PolicySet;
use crate::ports::{Decoding, EventReader, EventStore, Page, PutOutcome, Relaxed, SnapshotStore};
use crate::registry::{fold_decoded, AggregateKind, FoldError};
use crate::snapshot::{
    build_snapshot, InvalidSnapshot, SnapshotBuildError, SnapshotHeader, SnapshotMetadata,
    SnapshotRecord, SnapshotSubject,
};
use crate::state_cache::{Cached, StateCache};
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
    /// True when the state came from this process's cache of warm states
    /// ([`crate::state_cache`]): one read of the events from the cached version on, its
    /// first event checked to be the one the state was built on, no snapshot read
    /// (`snapshotVersion` is then null and `eventsReplayed` counts the newer events).
    pub from_cache: bool,
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

/// How a load reads the newest snapshot and the events after it (docs/functions.md#load-modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadMode {
    /// The newest snapshot and the newest `threshold + 1` events are read together, strongly
    /// consistent: one round trip whenever the snapshotter keeps up, but about twice the
    /// events a load needs (the tail is `threshold / 2` long on average).
    #[default]
    OneRoundTrip,
    /// The newest snapshot first (strongly consistent, so a snapshot marked invalid is never
    /// used), then only the events from its version on, eventually consistent: two round
    /// trips, and the fewest read units (half a unit per 4 KB of the tail that is needed). A
    /// stale tail is a prefix of the stream: the state may lack the newest events of the
    /// last moment (a `save` from it then conflicts, as with any concurrent writer), never
    /// has a gap; a missing boundary event is asked again strongly before a snapshot is
    /// called wrong for it.
    FewestReadUnits,
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
    load_mode: LoadMode,
    cache: Option<Arc<StateCache>>,
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

    /// How loads read (the default: [`LoadMode::OneRoundTrip`]).
    pub fn with_load_mode(mut self, load_mode: LoadMode) -> Self {
        self.load_mode = load_mode;
        self
    }

    /// Keeps the states this repository loads and saves in `cache` (see
    /// [`crate::state_cache`]), so a load of an aggregate it holds reads only the newer
    /// events: for a process that outlives one request (a warm container). Share one cache
    /// between repositories over the same event table only.
    pub fn with_state_cache(mut self, cache: Arc<StateCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The cache of warm states, when there is one.
    pub fn state_cache(&self) -> Option<&Arc<StateCache>> {
        self.cache.as_ref()
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
            load_mode: LoadMode::default(),
            cache: None,
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
        let mut spent = 0;
        if let Some(cache) = &self.cache {
            match cache.load::<A, E>(&self.events, aggregate_id).await? {
                Cached::Hit(warm) => {
                    let root = AggregateRoot::from_state(aggregate_id, warm.version, warm.state);
                    return Ok((root, warm.report));
                }
                Cached::Miss { requests } => spent = requests,
            }
        }
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
        if let (Some(cache), Some(last_event_id)) = (&self.cache, &head.last_event_id) {
            cache.put_typed(aggregate_id, head.version, last_event_id, state.clone());
        }
        Ok((
            AggregateRoot::from_state(aggregate_id, head.version, state),
            report.after_cache_miss(spent),
        ))
    }

    /// Loads any registered type; the state comes back as JSON. From the cache of warm
    /// states when there is one and it holds the aggregate (see
    /// [`AggregateRepository::load_kind_from_stores`] for a load that never is).
    pub async fn load_kind(
        &self,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
    ) -> Result<LoadedState, RepositoryError> {
        let mut spent = 0;
        if let Some(cache) = &self.cache {
            match cache.load_kind(&self.events, kind, aggregate_id).await? {
                Cached::Hit(warm) => {
                    return Ok(LoadedState {
                        aggregate_id: aggregate_id.to_owned(),
                        aggregate_type: kind.type_name(),
                        version: warm.version,
                        last_event_id: Some(warm.last_event_id),
                        state_json: warm.state,
                        report: warm.report,
                    })
                }
                Cached::Miss { requests } => spent = requests,
            }
        }
        let mut loaded = self.load_kind_from_stores(kind, aggregate_id).await?;
        loaded.report = loaded.report.after_cache_miss(spent);
        Ok(loaded)
    }

    /// Loads any registered type from its newest valid snapshot and the newer events, whatever
    /// the cache of warm states holds: for checks of the stored data (drift, verification)
    /// and for states that are persisted (manual snapshots). The result refreshes the cache.
    pub async fn load_kind_from_stores(
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
        if let (Some(cache), Some(last_event_id)) = (&self.cache, &head.last_event_id) {
            cache.put_json(kind, aggregate_id, head.version, last_event_id, &state_json);
        }
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
                from_cache: false,
            },
            state_json,
        })
    }

    /// The load, by [`LoadMode`]. [`LoadMode::OneRoundTrip`]: the newest snapshot and the
    /// newest events (newest first, as many as the policy lets follow a snapshot, plus its
    /// boundary event) are read at once; a second read happens only when those events do not
    /// reach back to the snapshot (or to the first event, for a full replay).
    /// [`LoadMode::FewestReadUnits`]: the newest snapshot, then the events from its version
    /// on, eventually consistent ([`Relaxed`]). Invalid snapshots are passed over newest
    /// first, as ever. `events` reads the events in the form `fold` takes; `newest` is its
    /// read of the newest events, sent together with the snapshot read (and never sent by
    /// the other mode).
    async fn load_with<T, V: ReadEvent, R: EventReader<V>>(
        &self,
        events: &R,
        newest: impl std::future::Future<Output = Result<Page<V, u64>, StoreError>>,
        target: Target<'_>,
        fold: impl Fn(u64, Option<&[u8]>, &[V]) -> Result<T, FoldError>,
    ) -> Result<(T, Head, LoadReport), RepositoryError> {
        match self.load_mode {
            LoadMode::OneRoundTrip => {
                let (first_page, newest) =
                    futures::join!(self.snapshots.records(target.aggregate_id, None, 1), newest);
                let reads = Reads::with_newest(newest?, 2);
                self.walk_and_fold(events, Start::Page(first_page?), reads, target, fold)
                    .await
            }
            LoadMode::FewestReadUnits => {
                self.walk_and_fold(
                    &Relaxed(events),
                    Start::Newest,
                    Reads::default(),
                    target,
                    fold,
                )
                .await
            }
        }
    }

    /// The rest of a load: the walk to the newest valid snapshot from `start`, its tail
    /// folded on, or a full replay when there is none.
    async fn walk_and_fold<T, V: ReadEvent, R: EventReader<V>>(
        &self,
        events: &R,
        start: Start,
        mut reads: Reads<V>,
        target: Target<'_>,
        fold: impl Fn(u64, Option<&[u8]>, &[V]) -> Result<T, FoldError>,
    ) -> Result<(T, Head, LoadReport), RepositoryError> {
        let aggregate_id = target.aggregate_id;
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
                from_cache: false,
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
            from_cache: false,
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
        let Some(last) = envelopes.last() else {
            root.mark_committed();
            return Ok(root.version());
        };
        if let Err(e) = self.events.append(root.version(), &envelopes).await {
            // A conflict, or an outcome unknown: what the cache holds may be behind.
            if let Some(cache) = &self.cache {
                cache.evict(root.id());
            }
            return Err(e.into());
        }
        root.mark_committed();
        if let Some(cache) = &self.cache {
            cache.put_typed(
                root.id(),
                root.version(),
                &last.event_id,
                root.state().clone(),
            );
        }
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
        // From the stores, never the cache: a snapshot outlives this process, and a cached
        // state may derive from a snapshot another process has since found wrong.
        let loaded = self.load_kind_from_stores(kind, aggregate_id).await?;
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

impl LoadReport {
    /// This report with the requests of a cache attempt that did not answer (a boundary
    /// event that was not the cached one) added, sent before the load's own.
    fn after_cache_miss(mut self, requests: u32) -> Self {
        self.requests += requests;
        self.round_trips += requests;
        self
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
