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

use super::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, TooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use crate::auth::Actor;
use crate::observe::AuditNote;
use crate::problem::Problem;
use crate::request_id::RequestId;
use crate::route_table::{BACKFILL, BACKFILL_STATUS};
use crate::state::AppState;
use crate::validation::{OptionalJson, ValidPath};
use crate::views::BackfillPlanView;

/// Time a start spends backfilling before it answers (API Gateway waits 30 s at most).
pub const START_BUDGET: Duration = Duration::from_secs(20);

/// Body of `POST /admin/backfill`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = BackfillRequest)]
pub struct BackfillBody {
    /// Report what would be done, do nothing (the default); false starts a job.
    #[serde(default = "yes")]
    #[schema(default = true)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackfillJob)]
pub struct JobView {
    /// The job's id (a UUID), for `GET /admin/backfill/{jobId}`.
    pub job_id: String,
    /// `running` or `complete`.
    pub state: JobState,
    /// Aggregates re-snapshotted.
    pub done: u64,
    /// Aggregates in the job.
    pub total: u64,
    /// Aggregates that could not be re-snapshotted (logged, not retried).
    pub failed: u64,
    /// Events read so far.
    pub events_read: u64,
    /// Runs so far: this request's, then the pruner's scheduled ones.
    pub runs: u64,
    /// When the job started, epoch milliseconds.
    pub started_at: i64,
    /// When a run last saved it, epoch milliseconds.
    pub updated_at: i64,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What `POST /admin/backfill` answers with 200: a dry run's plan, or a job that completed
/// within the request (`oneOf`: the two share no required member).
#[derive(Debug, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(description = "A dry run's plan, or a job that completed within the request")]
#[allow(dead_code)] // read by the schema derive only: the handler builds each arm's view
enum Started {
    /// A dry run's plan.
    Plan(BackfillPlanView),
    /// A job that completed within the request.
    Job(JobView),
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
#[utoipa::path(
    post,
    path = BACKFILL,
    operation_id = "backfill",
    tag = "backfill",
    summary = "Backfill after a schema change: dry run (default) counts the aggregates whose newest snapshot is of an older schema, the events to read and the read units; dryRun false starts a job and runs it for up to 20 s",
    request_body(content = Option<BackfillBody>, content_type = "application/json",
        description = "Optional: no body is a dry run"),
    responses(
        (status = 200, description = "Dry run plan, or a job that completed within the request",
            body = Started),
        (status = 202, description = "Job started, still running (resumed by the pruner's schedule)",
            body = JobView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn start<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    actor: Actor,
    request_id: RequestId,
    OptionalJson(body): OptionalJson<BackfillBody>,
) -> Result<Response, Problem> {
    let found = plan(app.repository.snapshots(), &app.registry).await?;
    if body.dry_run {
        let detail = format!("dry run: {} aggregates", found.aggregates);
        let view = BackfillPlanView {
            dry_run: true,
            plan: found,
        };
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
#[utoipa::path(
    get,
    path = BACKFILL_STATUS,
    operation_id = "backfillStatus",
    tag = "backfill",
    summary = "Progress of the current backfill job (done / total)",
    params(("jobId" = String, Path, description = "jobId of the started job")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
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
