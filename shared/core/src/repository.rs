//! Loads aggregates from their latest *valid* snapshot plus only the newer events, and saves
//! new events with optimistic concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::warn;

use crate::clock::now_millis;
use crate::codec::SnapshotCodec;
use crate::domain::{Aggregate, AggregateRoot, DomainError, EventEnvelope};
use crate::error::{EventError, StoreError};
use crate::ports::{EventStore, PutOutcome, SnapshotStore};
use crate::registry::{fold_envelopes, AggregateKind, FoldError};
use crate::snapshot::{
    build_snapshot, open_snapshot, InvalidSnapshot, SnapshotBuildError, SnapshotMetadata,
    SnapshotRecord, SnapshotSubject,
};

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotBuildError),
    #[error("aggregate {aggregate_id} has no events")]
    NotFound { aggregate_id: String },
}

impl RepositoryError {
    /// True when retrying with a fresh load may succeed (optimistic-concurrency conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict { .. }))
    }
}

/// How a load was served.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// Version of the snapshot the state started from (`None`: full replay).
    pub snapshot_version: Option<u64>,
    /// Events folded on top of it.
    pub events_replayed: u64,
    /// Invalid snapshots passed over on the way.
    pub snapshots_skipped: u64,
}

/// A state as JSON bytes, for callers that handle every aggregate type generically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedState {
    pub aggregate_id: String,
    pub aggregate_type: &'static str,
    pub version: u64,
    pub state_json: Vec<u8>,
    pub report: LoadReport,
}

/// Snapshots newer than this are looked at one at a time; older ones in pages of this size.
const FALLBACK_PAGE: usize = 4;

pub struct AggregateRepository<E, S> {
    events: E,
    snapshots: S,
    codec: SnapshotCodec,
    invalid_snapshots: Arc<AtomicU64>,
}

impl<E: EventStore, S: SnapshotStore> AggregateRepository<E, S> {
    pub fn new(events: E, snapshots: S, codec: SnapshotCodec) -> Self {
        Self {
            events,
            snapshots,
            codec,
            invalid_snapshots: Arc::default(),
        }
    }

    pub fn events(&self) -> &E {
        &self.events
    }

    pub fn snapshots(&self) -> &S {
        &self.snapshots
    }

    pub fn codec(&self) -> &SnapshotCodec {
        &self.codec
    }

    /// Invalid snapshots skipped since this repository was made.
    pub fn invalid_snapshots_skipped(&self) -> u64 {
        self.invalid_snapshots.load(Ordering::Relaxed)
    }

    /// Loads a typed aggregate. A load whose tail fits one page costs two requests.
    pub async fn load<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<(AggregateRoot<A>, LoadReport), RepositoryError> {
        let (state, version, report) = self
            .load_with(
                aggregate_id,
                A::TYPE,
                A::SCHEMA_VERSION,
                |base_version, base, tail| {
                    fold_envelopes::<A>(aggregate_id, base_version, base, tail)
                },
            )
            .await?;
        Ok((
            AggregateRoot::from_state(aggregate_id, version, state),
            report,
        ))
    }

    /// Loads any registered type; the state comes back as JSON.
    pub async fn load_kind(
        &self,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
    ) -> Result<LoadedState, RepositoryError> {
        let (state_json, version, report) = self
            .load_with(
                aggregate_id,
                kind.type_name(),
                kind.schema_version(),
                |base_version, base, tail| kind.fold_json(aggregate_id, base_version, base, tail),
            )
            .await?;
        Ok(LoadedState {
            aggregate_id: aggregate_id.to_owned(),
            aggregate_type: kind.type_name(),
            version,
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
        let events = self.events.read(aggregate_id, 1, None).await?;
        let version =
            events
                .last()
                .map(|e| e.sequence)
                .ok_or_else(|| RepositoryError::NotFound {
                    aggregate_id: aggregate_id.to_owned(),
                })?;
        let state_json = kind
            .fold_json(aggregate_id, 0, None, &events)
            .map_err(fold_error)?;
        Ok(LoadedState {
            aggregate_id: aggregate_id.to_owned(),
            aggregate_type: kind.type_name(),
            version,
            report: LoadReport {
                snapshot_version: None,
                events_replayed: events.len() as u64,
                snapshots_skipped: 0,
            },
            state_json,
        })
    }

    async fn load_with<T>(
        &self,
        aggregate_id: &str,
        aggregate_type: &str,
        schema_version: u32,
        fold: impl Fn(u64, Option<&[u8]>, &[EventEnvelope]) -> Result<T, FoldError>,
    ) -> Result<(T, u64, LoadReport), RepositoryError> {
        let mut before = None;
        let mut page_size = 1;
        let mut skipped = 0;
        loop {
            let page = match self
                .snapshots
                .records(aggregate_id, before, page_size)
                .await
            {
                Ok(page) => page,
                // An item that does not even parse is an invalid snapshot like any other:
                // narrow the page to find it, then step past it.
                Err(StoreError::MalformedSnapshot {
                    version, reason, ..
                }) => match version.parse::<u64>() {
                    Ok(_) if page_size > 1 => {
                        page_size = 1;
                        continue;
                    }
                    Ok(parsed) => {
                        self.count_skip(aggregate_id, &version, &reason);
                        skipped += 1;
                        before = Some(parsed);
                        continue;
                    }
                    Err(_) => {
                        self.count_skip(aggregate_id, &version, &reason);
                        skipped += 1;
                        break;
                    }
                },
                Err(e) => return Err(e.into()),
            };
            for record in &page.items {
                match self
                    .try_snapshot(record, aggregate_id, aggregate_type, schema_version)
                    .await?
                {
                    Ok(base) => match fold(
                        record.header.version,
                        Some(&base.snapshot_state),
                        &base.tail,
                    ) {
                        Ok(state) => {
                            let version = record.header.version + base.tail.len() as u64;
                            let report = LoadReport {
                                snapshot_version: Some(record.header.version),
                                events_replayed: base.tail.len() as u64,
                                snapshots_skipped: skipped,
                            };
                            return Ok((state, version, report));
                        }
                        Err(FoldError::BaseState { reason, .. }) => {
                            self.skip(record, &InvalidSnapshot::State(reason));
                            skipped += 1;
                        }
                        Err(FoldError::Event(e)) => return Err(e.into()),
                    },
                    Err(invalid) => {
                        self.skip(record, &invalid);
                        skipped += 1;
                    }
                }
            }
            match page.next {
                Some(next) => {
                    before = Some(next);
                    page_size = FALLBACK_PAGE;
                }
                None => break,
            }
        }
        let events = self.events.read(aggregate_id, 1, None).await?;
        if events.is_empty() {
            return Err(RepositoryError::NotFound {
                aggregate_id: aggregate_id.to_owned(),
            });
        }
        let state = fold(0, None, &events).map_err(fold_error)?;
        let report = LoadReport {
            snapshot_version: None,
            events_replayed: events.len() as u64,
            snapshots_skipped: skipped,
        };
        Ok((state, events.len() as u64, report))
    }

    /// Opens a snapshot and reads its tail. The read starts at the snapshot's own version so
    /// the boundary event proves the snapshot is not beyond the event stream (same request).
    async fn try_snapshot(
        &self,
        record: &SnapshotRecord,
        aggregate_id: &str,
        aggregate_type: &str,
        schema_version: u32,
    ) -> Result<Result<OpenedSnapshot, InvalidSnapshot>, RepositoryError> {
        let snapshot_state = match open_snapshot(
            &self.codec,
            record,
            aggregate_id,
            aggregate_type,
            schema_version,
        ) {
            Ok(state) => state,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let version = record.header.version;
        let mut tail = self.events.read(aggregate_id, version, None).await?;
        if tail.first().map(|e| e.sequence) != Some(version) {
            return Ok(Err(InvalidSnapshot::BeyondStream { version }));
        }
        tail.remove(0);
        Ok(Ok(OpenedSnapshot {
            snapshot_state,
            tail,
        }))
    }

    fn count_skip(&self, aggregate_id: &str, version: &str, reason: &str) {
        self.invalid_snapshots.fetch_add(1, Ordering::Relaxed);
        warn!(
            aggregate_id,
            version, reason, "unreadable snapshot item skipped"
        );
    }

    fn skip(&self, record: &SnapshotRecord, reason: &InvalidSnapshot) {
        self.invalid_snapshots.fetch_add(1, Ordering::Relaxed);
        warn!(
            aggregate_id = %record.header.aggregate_id,
            version = record.header.version,
            reason = %reason,
            "invalid snapshot skipped"
        );
    }

    /// Appends the aggregate's uncommitted events at its version; on success they are committed.
    /// A concurrent writer makes this fail with a conflict (see [`RepositoryError::is_conflict`]).
    pub async fn save<A: Aggregate>(
        &self,
        root: &mut AggregateRoot<A>,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<u64, RepositoryError> {
        let now = now_millis();
        let envelopes: Vec<EventEnvelope> = root
            .uncommitted()
            .iter()
            .enumerate()
            .map(|(offset, event)| {
                EventEnvelope::wrap::<A>(
                    root.id(),
                    root.version() + 1 + offset as u64,
                    event,
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
        };
        let record = build_snapshot(
            &self.codec,
            subject,
            loaded.state_json,
            metadata,
            now_millis(),
            expires_at,
        )?;
        let outcome = self.snapshots.put_if_absent(&record).await?;
        Ok((record, outcome))
    }
}

struct OpenedSnapshot {
    snapshot_state: Vec<u8>,
    tail: Vec<EventEnvelope>,
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
