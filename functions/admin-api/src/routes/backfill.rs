//! Backfill after a schema change ([`snapshot_core::backfill`]): a dry run with the count
//! and cost, a start that runs the first slice within the request, and the job's status.
//! The pruner's schedule resumes a running job.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use snapshot_core::backfill::{plan, run, BackfillJob, JobState, RunLimits};
use snapshot_core::ports::{EventStore, SnapshotStore};
use tracing::info;

use crate::auth::Actor;
use crate::observe::AuditNote;
use crate::problem::Problem;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::validation::{OptionalJson, ValidPath};

/// Time a start spends backfilling before it answers (API Gateway waits 30 s at most).
pub const START_BUDGET: Duration = Duration::from_secs(20);

/// Body of `POST /admin/backfill`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackfillBody {
    /// Report what would be done, do nothing (the default).
    #[serde(default = "yes")]
    pub dry_run: bool,
}

fn yes() -> bool {
    true
}

/// No body is a dry run: starting a job takes an explicit `{"dryRun": false}`.
impl Default for BackfillBody {
    fn default() -> Self {
        Self { dry_run: true }
    }
}

/// Status of a job.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: String,
    /// `running` or `complete`.
    pub state: JobState,
    pub done: u64,
    pub total: u64,
    pub failed: u64,
    pub events_read: u64,
    pub runs: u64,
    pub started_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<&BackfillJob> for JobView {
    fn from(job: &BackfillJob) -> Self {
        Self {
            job_id: job.job_id.clone(),
            state: job.state,
            done: job.done,
            total: job.total,
            failed: job.failed,
            events_read: job.events_read,
            runs: job.runs,
            started_at: job.started_at,
            updated_at: job.updated_at,
            last_error: job.last_error.clone(),
        }
    }
}

/// `POST /admin/backfill`: `{"dryRun": true}` (default) counts the aggregates whose newest
/// snapshot is of an older schema, the events their replays read and the read units; `false`
/// starts a job (409 while one runs) and runs it until the start budget, then answers with its
/// status (202 while running).
pub async fn start<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    actor: Actor,
    request_id: RequestId,
    OptionalJson(body): OptionalJson<BackfillBody>,
) -> Result<Response, Problem> {
    let found = plan(app.repository.snapshots(), &app.registry).await?;
    if body.dry_run {
        let detail = format!("dry run: {} aggregates", found.aggregates);
        let view = serde_json::json!({
            "dryRun": true,
            "aggregates": found.aggregates,
            "eventsToRead": found.events_to_read,
            "estimatedReadUnits": found.estimated_read_units,
            "byType": found.by_type,
        });
        return Ok(AuditNote::default()
            .detail(detail)
            .attach(Json(view).into_response()));
    }
    if let Some(job) = app.jobs.load().await? {
        if job.state == JobState::Running {
            return Err(Problem::conflict(
                "backfill-running",
                format!(
                    "backfill {} is running ({} / {}); watch it at /admin/backfill/{}",
                    job.job_id, job.done, job.total, job.job_id
                ),
            ));
        }
    }
    let job = BackfillJob::start(found);
    info!(actor = %actor.id, job_id = %job.job_id, total = job.total, "backfill started");
    app.jobs.save(&job).await?;
    let limits = RunLimits {
        read_budget: app.config.backfill_read_budget,
        deadline: Some(Instant::now() + START_BUDGET),
    };
    let job = run(
        job,
        &app.repository,
        &app.registry,
        app.jobs.as_ref(),
        limits,
        Some(request_id.into_string()),
    )
    .await?;
    let status = if job.state == JobState::Running {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(AuditNote::default()
        .detail(format!("job {}: {} / {}", job.job_id, job.done, job.total))
        .attach((status, Json(JobView::from(&job))).into_response()))
}

/// `GET /admin/backfill/{jobId}`: the job's progress (404 unless it is the current job).
pub async fn status<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    _actor: Actor,
    ValidPath(job_id): ValidPath<String>,
) -> Result<Response, Problem> {
    match app.jobs.load().await? {
        Some(job) if job.job_id == job_id => Ok(Json(JobView::from(&job)).into_response()),
        _ => Err(Problem::not_found(
            "backfill-not-found",
            format!(
                "no backfill job `{}`",
                job_id.chars().take(64).collect::<String>()
            ),
        )),
    }
}
