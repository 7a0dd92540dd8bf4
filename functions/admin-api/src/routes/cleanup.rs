//! Pruning on demand, with the same implementation the scheduled pruner runs
//! ([`snapshot_core::pruning`]).

use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::pruning::{prune, Deadline, PruneError, PruneRequest, PruneSummary};
use tracing::info;

use super::openapi::{
    BadRequest, Forbidden, Internal, TooLarge, Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::auth::Actor;
use crate::observe::AuditNote;
use crate::problem::Problem;
use crate::request_id::RequestId;
use crate::route_table::CLEANUP;
use crate::state::AppState;
use crate::validation::{aggregate_id, OptionalJson};

/// Longest a cleanup call runs: API Gateway HTTP APIs give up on an integration after 30 s.
/// A run cut short says `complete: false`; calling again continues.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(25);
/// Kept free before the Lambda deadline to answer.
const LAMBDA_MARGIN: Duration = Duration::from_secs(2);

/// Body of `POST /admin/snapshots/cleanup` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CleanupRequest)]
pub struct CleanupBody {
    /// Only this aggregate; all of them when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub aggregate_id: Option<String>,
    /// Report what would be deleted, delete nothing.
    #[serde(default)]
    #[schema(default = false)]
    pub dry_run: bool,
}

/// `POST /admin/snapshots/cleanup`: keeps the newest `MAX_SNAPSHOTS_PER_AGGREGATE` per
/// aggregate and drops obsolete schema versions; returns the pruning summary.
#[utoipa::path(
    post,
    path = CLEANUP,
    operation_id = "cleanupSnapshots",
    tag = "snapshots",
    summary = "Run the pruning now: keep the newest MAX_SNAPSHOTS_PER_AGGREGATE per aggregate, drop obsolete schema versions",
    request_body(content = Option<CleanupBody>, content_type = "application/json",
        description = "Optional: no body prunes every aggregate for real"),
    responses(
        (status = 200, description = "Pruning summary (complete false: the time budget cut the run short; run again to continue)",
            body = PruneSummary),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn cleanup<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    actor: Actor,
    request_id: RequestId,
    lambda: Option<Extension<lambda_http::Context>>,
    OptionalJson(body): OptionalJson<CleanupBody>,
) -> Result<Response, Problem> {
    if let Some(id) = &body.aggregate_id {
        aggregate_id(id)?;
    }
    let mut request = PruneRequest::new(app.config.max_snapshots_per_aggregate);
    request.dry_run = body.dry_run;
    request.aggregate_id = body.aggregate_id;
    request.actor = actor.id.clone();
    request.request_id = Some(request_id.into_string());
    request.deadline = deadline(lambda.map(|Extension(context)| context.deadline()));
    info!(actor = %actor.id, dry_run = request.dry_run,
        aggregate_id = request.aggregate_id.as_deref().unwrap_or("*"), "cleanup requested");
    match prune(app.repository.snapshots(), &app.registry, &request).await {
        Ok(summary) => {
            let detail = format!(
                "{} {} of {} scanned{}{}",
                if summary.dry_run {
                    "would delete"
                } else {
                    "deleted"
                },
                summary.deleted,
                summary.scanned,
                if summary.complete { "" } else { ", incomplete" },
                request
                    .aggregate_id
                    .as_deref()
                    .map(|id| format!(", aggregate {id}"))
                    .unwrap_or_default(),
            );
            Ok(AuditNote::default()
                .detail(detail)
                .attach(Json(summary).into_response()))
        }
        Err(PruneError::InvalidRequest { field, reason }) => Err(Problem::bad_request(
            "invalid-body",
            format!("{field} {reason}"),
        )),
        Err(PruneError::Store { source, partial }) => {
            let problem = Problem::from(source);
            Err(problem.with(
                "partial",
                serde_json::to_value(*partial).unwrap_or_default(),
            ))
        }
    }
}

/// The earlier of [`CLEANUP_BUDGET`] from now and the Lambda deadline less a margin.
fn deadline(lambda_deadline: Option<SystemTime>) -> Deadline {
    let budget = Instant::now() + CLEANUP_BUDGET;
    let Some(lambda_deadline) = lambda_deadline else {
        return Deadline::at(budget);
    };
    let remaining = lambda_deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .saturating_sub(LAMBDA_MARGIN);
    Deadline::at(budget.min(Instant::now() + remaining))
}
