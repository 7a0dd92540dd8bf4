//! The scheduled side of a backfill ([`snapshot_core::backfill`]): each pruner run resumes a
//! running job for one budgeted slice (`BACKFILL_READ_BUDGET` events, stopping before the
//! Lambda deadline), so a job started from the admin API finishes on the schedule.

use std::time::Instant;

use snapshot_core::backfill::{run, BackfillJob, BackfillJobStore, JobState, RunLimits};
use snapshot_core::error::StoreError;
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::{AggregateRepository, Registry};
use tracing::info;

/// Runs one slice of the current job if it is running; `None` when there is nothing to do.
pub async fn resume_backfill<E: EventStore, S: SnapshotStore, J: BackfillJobStore + ?Sized>(
    repository: &AggregateRepository<E, S>,
    jobs: &J,
    registry: &Registry,
    read_budget: u64,
    deadline: Option<Instant>,
    request_id: Option<String>,
) -> Result<Option<BackfillJob>, StoreError> {
    let Some(job) = jobs.load().await? else {
        return Ok(None);
    };
    if job.state != JobState::Running {
        return Ok(None);
    }
    info!(job_id = %job.job_id, done = job.done, total = job.total, "resuming backfill");
    let limits = RunLimits {
        read_budget,
        deadline,
    };
    run(job, repository, registry, jobs, limits, request_id)
        .await
        .map(Some)
}
