//! Snapshot retention (docs/functions.md#pruner), used by the scheduled pruner and by the admin
//! API's cleanup route: one implementation, generic over [`SnapshotStore`].
//!
//! What is deleted is decided per aggregate by [`Retention`] (see `pruning/plan.rs` for the
//! rule: keep the newest N, drop obsolete schema versions, never the newest snapshot nor the
//! newest usable one). Snapshots of an `aggregateType` the registry does not know are left
//! alone.
//!
//! Reads are paginated: all aggregates through a parallel scan of `segments` segments of keys
//! only, one aggregate through its newest-first headers. A scan returns an aggregate's
//! snapshots across pages, so keys are grouped per aggregate, and an aggregate is decided only
//! once the scan has moved past it (DynamoDB returns an item collection contiguously, in key
//! order, and all of an aggregate's items fall in one segment) or its segment has ended. That
//! happens whenever about `buffer_keys` keys are buffered, so deletes keep pace with reads and
//! only keys are held in memory.
//!
//! The [`Deadline`] is checked before every page read and every delete batch. Once reached,
//! nothing new starts: what is undecided or not yet deleted stays for the next run, and the
//! summary says `complete: false`. Deleting is idempotent and the rule is monotone (a partial
//! view deletes a subset of what the full view would, see [`Retention`]), so no run deletes a
//! snapshot the rule keeps — even if a store returned an aggregate's items out of order.
//!
//! With [`prune_resuming`], each segment saves where its next run must start
//! ([`ScanPositions`]): the page that first showed the earliest aggregate left undecided, so
//! that aggregate is read whole again. A table whose scan outlasts one run is pruned part by
//! part; a segment read to its end starts over next time.

mod deadline;
mod deleter;
mod plan;
mod positions;
mod retain;
mod sweep;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::info;

pub use deadline::Deadline;
pub use plan::{Retention, SeenSnapshot};
pub use positions::{MemoryScanPositions, ScanPositions, StartOver};
pub use retain::{fallen_out, put_retaining, Retained, MAX_TRACKED};

use crate::domain::check_aggregate_id;
use crate::error::StoreError;
use crate::metrics::{MetricSet, Unit};
use crate::ports::SnapshotStore;
use crate::registry::Registry;
use crate::snapshot::SnapshotKey;

/// Parallel scan segments when the caller does not say.
pub const DEFAULT_SEGMENTS: u32 = 4;
/// Upper bound of `segments` (each runs concurrently).
pub const MAX_SEGMENTS: u32 = 256;
/// Items asked per page. DynamoDB stops a page at 1 MB read first (a few thousand snapshot
/// items); fewer, fuller pages mean fewer requests.
pub const DEFAULT_PAGE_SIZE: usize = 10_000;
/// Keys a segment buffers before deciding the aggregates it has moved past (about a page).
pub const DEFAULT_BUFFER_KEYS: usize = DEFAULT_PAGE_SIZE;
/// Deletes per BatchWriteItem, and per audit record.
pub const DELETE_BATCH: usize = 25;
/// Most keys a dry run lists in its summary (the counts are always complete).
pub const DRY_RUN_REPORT_LIMIT: usize = 1000;
/// Audit action of a pruning run.
pub const AUDIT_ACTION: &str = "snapshot.prune";
/// Actor recorded when the caller names none.
pub const DEFAULT_ACTOR: &str = "pruner";

/// What to prune and how.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// Snapshots to keep per aggregate (`MAX_SNAPSHOTS_PER_AGGREGATE`); at least 1.
    pub max_snapshots: usize,
    /// Decide and report, delete nothing.
    pub dry_run: bool,
    /// Only this aggregate (a paginated query instead of a scan).
    pub aggregate_id: Option<String>,
    /// Parallel scan segments, all read concurrently (1 ..= [`MAX_SEGMENTS`]; default
    /// [`DEFAULT_SEGMENTS`]). Ignored for one aggregate.
    pub segments: u32,
    /// Items asked per page of the scan or query (at least 1; default [`DEFAULT_PAGE_SIZE`]);
    /// DynamoDB may return fewer (1 MB per page).
    pub page_size: usize,
    /// Keys a segment holds before it decides the aggregates it has moved past (at least 1;
    /// default [`DEFAULT_BUFFER_KEYS`]): bounds memory, and how much a deadline makes the
    /// next run read again.
    pub buffer_keys: usize,
    /// When to stop: checked before every page read and delete batch; the run then reports
    /// `complete: false` and the next one resumes ([`prune_resuming`]).
    pub deadline: Deadline,
    /// Most keys the sweep of all aggregates reads in this run (`PRUNE_KEYS_PER_RUN`; `None`:
    /// no bound), shared evenly between the segments. A segment stops at a page boundary once
    /// it has read its share and decided at least one aggregate, reporting `complete: false`;
    /// the next run resumes there ([`prune_resuming`]). So a run costs at most this many keys'
    /// reads whatever the table's size, and the whole table is covered over runs. An aggregate
    /// with more snapshots than a segment's share is still read whole.
    pub key_budget: Option<usize>,
    /// Who runs it, for the audit trail.
    pub actor: String,
    /// Request id, when there was one.
    pub request_id: Option<String>,
}

impl PruneRequest {
    /// A run over the whole table that keeps `max_snapshots` per aggregate, deletes for real,
    /// has no deadline and the defaults above; [`PruneRequest::validate`] refuses 0.
    pub fn new(max_snapshots: usize) -> Self {
        Self {
            max_snapshots,
            dry_run: false,
            aggregate_id: None,
            segments: DEFAULT_SEGMENTS,
            page_size: DEFAULT_PAGE_SIZE,
            buffer_keys: DEFAULT_BUFFER_KEYS,
            deadline: Deadline::none(),
            key_budget: None,
            actor: DEFAULT_ACTOR.to_owned(),
            request_id: None,
        }
    }

    /// Checks the request (aggregate id, keep count) before anything is read.
    pub fn validate(&self) -> Result<(), PruneError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(PruneError::InvalidRequest {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.max_snapshots == 0 {
            return invalid(
                "maxSnapshots",
                "must be at least 1: keeping 0 snapshots would delete every one",
            );
        }
        if self.segments == 0 || self.segments > MAX_SEGMENTS {
            return invalid("segments", &format!("must be between 1 and {MAX_SEGMENTS}"));
        }
        if self.page_size == 0 || self.buffer_keys == 0 {
            return invalid("pageSize", "page size and buffer must be at least 1");
        }
        if self.key_budget == Some(0) {
            return invalid("keyBudget", "must be at least 1 key per run");
        }
        if let Some(id) = &self.aggregate_id {
            validate_aggregate_id(id)?;
        }
        Ok(())
    }
}

/// Checks an aggregate id from input with the domain's rule ([`check_aggregate_id`]).
pub fn validate_aggregate_id(id: &str) -> Result<(), PruneError> {
    check_aggregate_id(id).map_err(|e| PruneError::InvalidRequest {
        field: "aggregateId",
        reason: e.to_string(),
    })
}

/// A snapshot named in a dry-run report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRef {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// The aggregate version (sequence of the last event folded in).
    pub version: u64,
}

impl From<SnapshotKey> for SnapshotRef {
    fn from(key: SnapshotKey) -> Self {
        Self {
            aggregate_id: key.aggregate_id,
            version: key.version,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PruneSummary {
    /// Snapshot items read.
    pub scanned: u64,
    /// Aggregates the retention rule was applied to (not those left alone: see `skipped`).
    pub aggregates: u64,
    /// Snapshots deleted (in a dry run: that would have been deleted).
    pub deleted: u64,
    /// Snapshots of decided aggregates that stay.
    pub kept: u64,
    /// Snapshots left alone: unknown or inconsistent `aggregateType`.
    pub skipped: u64,
    /// Report what would be deleted without deleting.
    pub dry_run: bool,
    /// False when the deadline cut the run short; the next run continues.
    pub complete: bool,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Dry run only: the snapshots it would delete (at most 1,000: `DRY_RUN_REPORT_LIMIT`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub would_delete: Vec<SnapshotRef>,
}

impl PruneSummary {
    /// The run's EMF metrics (`SnapshotsPruned`, `AggregatesScanned`, `Duration`, …).
    pub fn metrics(&self, function: &str) -> MetricSet {
        let mut metrics = MetricSet::new(function);
        let pruned = if self.dry_run { 0 } else { self.deleted };
        metrics.count("SnapshotsPruned", pruned);
        metrics.count("AggregatesScanned", self.aggregates);
        metrics.count("SnapshotsScanned", self.scanned);
        metrics.add("Duration", self.duration_ms as f64, Unit::Milliseconds);
        metrics
    }
}

/// Why a pruning run failed. A refused request deleted nothing; a store failure keeps what
/// was deleted before it (`partial`), and the next run goes on from the last saved position.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("invalid prune request: {field} {reason}")]
    /// The request is refused before anything is read (see [`PruneRequest::validate`]); the
    /// admin API answers it with a 400 naming the field.
    InvalidRequest {
        /// The request field at fault, as the API names it (`maxSnapshots`, `aggregateId`, …).
        field: &'static str,
        /// Why, in words that name what is wrong.
        reason: String,
    },
    /// The store failed; `partial` is what was done before (its deletions stand).
    #[error("pruning stopped after deleting {} snapshots: {source}", .partial.deleted)]
    Store {
        /// The underlying error.
        source: StoreError,
        /// What was done before the failure (its deletions stand).
        partial: Box<PruneSummary>,
    },
}

/// Prunes the snapshot table (or one aggregate) as `request` says, every segment from the
/// beginning.
pub async fn prune<S: SnapshotStore + ?Sized>(
    store: &S,
    registry: &Registry,
    request: &PruneRequest,
) -> Result<PruneSummary, PruneError> {
    prune_resuming(store, &StartOver, registry, request).await
}

/// Like [`prune`], each segment continuing from where the last run stopped (`positions`),
/// so a table too large for one run's deadline is pruned over several runs.
pub async fn prune_resuming<S: SnapshotStore + ?Sized, P: ScanPositions + ?Sized>(
    store: &S,
    positions: &P,
    registry: &Registry,
    request: &PruneRequest,
) -> Result<PruneSummary, PruneError> {
    request.validate()?;
    let started = Instant::now();
    let result = match &request.aggregate_id {
        Some(id) => sweep::one_aggregate(store, registry, request, id).await,
        None => sweep::all_segments(store, positions, registry, request).await,
    };
    let (tally, failure) = match result {
        Ok(tally) => (tally, None),
        Err(failed) => (failed.tally, Some(failed.source)),
    };
    let mut summary = tally.into_summary(request.dry_run);
    summary.duration_ms = crate::clock::millis(started.elapsed());
    info!(
        scanned = summary.scanned,
        aggregates = summary.aggregates,
        deleted = summary.deleted,
        kept = summary.kept,
        skipped = summary.skipped,
        dry_run = summary.dry_run,
        complete = summary.complete,
        duration_ms = summary.duration_ms,
        failed = failure.is_some(),
        "pruning run finished"
    );
    match failure {
        None => Ok(summary),
        Some(source) => Err(PruneError::Store {
            source,
            partial: Box::new(summary),
        }),
    }
}
