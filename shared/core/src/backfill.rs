//! Backfill after a schema change: once a deploy raises a type's state schema version, every
//! snapshot of that type is obsolete and loads fall back to full replays. A backfill
//! re-snapshots every aggregate whose newest snapshot is of another schema version or marked
//! invalid.
//!
//! [`plan`] finds them (a keys-only scan of the snapshot table) and estimates the cost; a
//! [`BackfillJob`] keeps the aggregates still to do, so a run stops at its read budget or
//! deadline and the next run (the pruner's schedule, or the admin API) resumes it. The job's
//! record holds at most [`MAX_PENDING_BYTES`] of aggregates; the rest is found again by a new
//! plan when those are done, under the same job.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::audit::{AuditRecord, Outcome};
use crate::clock::now_millis;
use crate::error::StoreError;
use crate::ports::{EventStore, PutOutcome, SnapshotStore};
use crate::registry::Registry;
use crate::repository::AggregateRepository;
use crate::snapshot::{SnapshotKey, SnapshotMetadata};

/// Keys asked per scan page.
const SCAN_PAGE: usize = 10_000;
/// Bytes of queued aggregates one job record holds: the record is one DynamoDB item (400 KB at
/// most), whatever the length of the aggregate ids.
pub const MAX_PENDING_BYTES: usize = 256 * 1024;
/// Event item size assumed by the read-unit estimate (the contract's events are small maps).
pub const ASSUMED_EVENT_BYTES: u64 = 512;
/// Audit actor and reason of backfill snapshots.
pub const ACTOR: &str = "backfill";
/// Audit reason of backfill snapshots.
pub const REASON: &str = "backfill:schema";

/// An aggregate to re-snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The aggregate whose newest snapshot has an old schema revision.
    pub aggregate_id: String,
    /// Its registered type, whose current revision the new snapshot is built with.
    pub aggregate_type: String,
    /// Its newest snapshot's version: a full replay reads at least this many events.
    pub snapshot_version: u64,
}

/// What a backfill would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BackfillPlan {
    /// Aggregates to re-snapshot.
    pub aggregates: u64,
    /// Events the full replays read, at least (up to each obsolete snapshot's version).
    pub events_to_read: u64,
    /// Strongly consistent read units of those reads: 1 per 4 KB per query page, at 512
    /// bytes per event (`ASSUMED_EVENT_BYTES`).
    pub estimated_read_units: u64,
    /// Aggregates to re-snapshot, per type.
    pub by_type: BTreeMap<String, u64>,
    #[serde(skip)]
    /// The aggregates themselves (not in the report).
    pub candidates: Vec<Candidate>,
}

/// Read units of a full replay of `events` events.
pub fn read_units(events: u64) -> u64 {
    (events * ASSUMED_EVENT_BYTES).div_ceil(4096).max(1)
}

/// Finds the aggregates whose newest snapshot is of another schema version than their type's
/// current one, or marked invalid (types the registry does not know are left alone).
pub async fn plan<S: SnapshotStore + ?Sized>(
    store: &S,
    registry: &Registry,
) -> Result<BackfillPlan, StoreError> {
    // Newest snapshot per aggregate: (type, version, schema, invalid).
    let mut newest: BTreeMap<String, (String, u64, u32, bool)> = BTreeMap::new();
    let mut cursor: Option<SnapshotKey> = None;
    loop {
        let page = store.scan_summaries(0, 1, cursor.take(), SCAN_PAGE).await?;
        for s in page.items {
            let entry = newest.entry(s.key.aggregate_id).or_insert((
                s.aggregate_type.clone(),
                0,
                s.schema_version,
                s.invalid,
            ));
            if s.key.version >= entry.1 {
                *entry = (s.aggregate_type, s.key.version, s.schema_version, s.invalid);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut plan = BackfillPlan::default();
    for (aggregate_id, (aggregate_type, version, schema, invalid)) in newest {
        let Some(kind) = registry.get(&aggregate_type) else {
            continue;
        };
        if schema == kind.schema_version() && !invalid {
            continue;
        }
        plan.aggregates += 1;
        plan.events_to_read += version;
        plan.estimated_read_units += read_units(version);
        *plan.by_type.entry(aggregate_type.clone()).or_default() += 1;
        plan.candidates.push(Candidate {
            aggregate_id,
            aggregate_type,
            snapshot_version: version,
        });
    }
    Ok(plan)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
/// Whether a job has aggregates left.
pub enum JobState {
    /// Aggregates are left; the next run continues.
    Running,
    /// Every aggregate was handled.
    Complete,
}

/// A backfill in progress (or done): what is left, what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillJob {
    /// Job id (a UUID).
    pub job_id: String,
    /// Running or complete.
    pub state: JobState,
    /// Aggregates in the job.
    pub total: u64,
    /// Aggregates that got a snapshot of the current revision (written now, or found there).
    pub done: u64,
    /// Aggregates that could not be re-snapshotted (logged, not retried).
    pub failed: u64,
    /// Events read by the job so far.
    pub events_read: u64,
    /// Runs so far (each under the read budget).
    pub runs: u64,
    /// When the job started (epoch milliseconds).
    pub started_at: i64,
    /// When a run last saved it (epoch milliseconds).
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Found but not queued (over [`MAX_PENDING_BYTES`]): a new plan queues them once
    /// `pending` is done.
    #[serde(default)]
    pub left_over: u64,
    /// Still to do, in order.
    pub pending: Vec<Candidate>,
}

/// The candidates that fit one job record, and how many did not.
fn queue(candidates: Vec<Candidate>) -> (Vec<Candidate>, u64) {
    let found = candidates.len();
    let mut bytes = 0;
    let mut queued = Vec::new();
    for candidate in candidates {
        let size = serde_json::to_vec(&candidate).map_or(usize::MAX, |v| v.len() + 1);
        if bytes + size > MAX_PENDING_BYTES {
            break;
        }
        bytes += size;
        queued.push(candidate);
    }
    let left_over = (found - queued.len()) as u64;
    (queued, left_over)
}

impl BackfillJob {
    /// A job over the plan's aggregates (those over [`MAX_PENDING_BYTES`] are left over).
    pub fn start(plan: BackfillPlan) -> Self {
        let (pending, left_over) = queue(plan.candidates);
        let now = now_millis();
        Self {
            job_id: uuid::Uuid::new_v4().to_string(),
            state: if pending.is_empty() && left_over == 0 {
                JobState::Complete
            } else {
                JobState::Running
            },
            total: pending.len() as u64 + left_over,
            done: 0,
            failed: 0,
            events_read: 0,
            runs: 0,
            started_at: now,
            updated_at: now,
            last_error: None,
            left_over,
            pending,
        }
    }
}

/// Where the current job is kept between runs.
#[async_trait]
pub trait BackfillJobStore: Send + Sync {
    /// The current job, if any.
    async fn load(&self) -> Result<Option<BackfillJob>, StoreError>;
    /// Replaces the current job.
    async fn save(&self, job: &BackfillJob) -> Result<(), StoreError>;
}

/// What one backfill run may spend before it saves its progress and stops; the next run (the
/// next call of the backfill route) continues the job.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Events read per run, at most (checked before each aggregate; one aggregate may go over).
    pub read_budget: u64,
    /// Stop starting new aggregates after this.
    pub deadline: Option<Instant>,
}

/// Re-snapshots pending aggregates until the budget or the deadline; returns the job as saved.
pub async fn run<E: EventStore, S: SnapshotStore, J: BackfillJobStore + ?Sized>(
    mut job: BackfillJob,
    repository: &AggregateRepository<E, S>,
    registry: &Registry,
    jobs: &J,
    limits: RunLimits,
    request_id: Option<String>,
) -> Result<BackfillJob, StoreError> {
    job.runs += 1;
    if job.pending.is_empty() && job.left_over > 0 {
        // What did not fit the record: found again (done ones are current now). Aggregates
        // that failed are found too and tried once more.
        let found = plan(repository.snapshots(), registry).await?;
        let (pending, left_over) = queue(found.candidates);
        info!(job_id = %job.job_id, queued = pending.len(), left_over, "backfill queue refilled");
        job.total = job.done + pending.len() as u64 + left_over;
        job.pending = pending;
        job.left_over = left_over;
    }
    let mut read_this_run = 0;
    while let Some(candidate) = job.pending.first().cloned() {
        if read_this_run >= limits.read_budget
            || limits.deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let outcome = resnapshot(repository, registry, &candidate, request_id.clone()).await;
        job.pending.remove(0);
        match outcome {
            Ok(events) => {
                job.done += 1;
                job.events_read += events;
                read_this_run += events;
            }
            Err(reason) => {
                job.failed += 1;
                job.last_error = Some(format!("{}: {reason}", candidate.aggregate_id));
                warn!(aggregate_id = %candidate.aggregate_id, reason = %reason, "backfill of an aggregate failed");
            }
        }
    }
    if job.pending.is_empty() && job.left_over == 0 {
        job.state = JobState::Complete;
    }
    job.updated_at = now_millis();
    info!(job_id = %job.job_id, done = job.done, total = job.total, failed = job.failed, events_read = job.events_read, state = ?job.state, "backfill progress");
    jobs.save(&job).await?;
    Ok(job)
}

/// Snapshots one aggregate at its current version with the current schema; an obsolete
/// snapshot at that same version is replaced (it can never be used). Returns events read.
async fn resnapshot<E: EventStore, S: SnapshotStore>(
    repository: &AggregateRepository<E, S>,
    registry: &Registry,
    candidate: &Candidate,
    request_id: Option<String>,
) -> Result<u64, String> {
    let started = Instant::now();
    let kind = registry.get(&candidate.aggregate_type).ok_or_else(|| {
        format!(
            "aggregateType {} is not registered",
            candidate.aggregate_type
        )
    })?;
    let metadata = SnapshotMetadata {
        created_by: ACTOR.to_owned(),
        reason: REASON.to_owned(),
        request_id: request_id.clone(),
    };
    let id = candidate.aggregate_id.as_str();
    let mut attempt = repository
        .snapshot_now(kind.as_ref(), id, metadata.clone(), None)
        .await
        .map_err(|e| e.to_string())?;
    if attempt.1 == PutOutcome::AlreadyExists {
        let version = attempt.0.header.version;
        let existing = repository
            .snapshots()
            .headers(id, Some(version + 1), 1)
            .await
            .map_err(|e| e.to_string())?;
        let obsolete = existing
            .items
            .first()
            .is_some_and(|h| {
                matches!(h, Ok(h) if h.version == version && h.schema_version != kind.schema_version())
            });
        if obsolete {
            // BatchWriteItem, like the pruner's deletes (which run backfills on schedule).
            repository
                .snapshots()
                .delete_many(&[SnapshotKey {
                    aggregate_id: id.to_owned(),
                    version,
                }])
                .await
                .map_err(|e| e.to_string())?;
            attempt = repository
                .snapshot_now(kind.as_ref(), id, metadata, None)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let (record, outcome) = attempt;
    AuditRecord::new(
        ACTOR,
        "snapshot.backfill",
        match outcome {
            PutOutcome::Created => Outcome::Success,
            PutOutcome::AlreadyExists => Outcome::Noop,
        },
    )
    .aggregate(id.to_owned(), Some(record.header.version))
    .request(request_id)
    .took(started.elapsed())
    .emit();
    Ok(record.header.version)
}

/// The job kept in memory (tests, local tools).
#[derive(Debug, Default)]
pub struct InMemoryJobStore(std::sync::Mutex<Option<BackfillJob>>);

#[async_trait]
impl BackfillJobStore for InMemoryJobStore {
    async fn load(&self) -> Result<Option<BackfillJob>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
    async fn save(&self, job: &BackfillJob) -> Result<(), StoreError> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(job.clone());
        Ok(())
    }
}
