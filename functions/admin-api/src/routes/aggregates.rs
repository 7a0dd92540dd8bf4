//! Current state of an aggregate through the repository.

use axum::extract::State;
use axum::response::Response;
use snapshot_core::ports::{EventStore, SnapshotStore};

use super::openapi::{
    AggregateIdParam, AggregateTypeParam, BadRequest, Conflict, Forbidden, Internal, NotFound,
    Unauthorized, Unavailable,
};
use crate::auth::Actor;
use crate::problem::Problem;
use crate::route_table::AGGREGATE;
use crate::state::AppState;
use crate::validation::{aggregate_id, aggregate_type, ValidPath};
use crate::views::{encode_within_limit, json_response, omitted_state, AggregateView};

/// `GET /admin/aggregates/{aggregateType}/{aggregateId}`: the state as the application would
/// load it, and how (snapshot version used, events replayed, invalid snapshots skipped).
#[utoipa::path(
    get,
    path = AGGREGATE,
    operation_id = "getAggregate",
    tag = "aggregates",
    summary = "Current state through the repository and how it was loaded",
    params(
        ("aggregateType" = inline(AggregateTypeParam), Path,
            description = "A registered aggregate type; others are a 400 listing the supported ones"),
        ("aggregateId" = inline(AggregateIdParam), Path,
            description = "1-256 printable characters"),
    ),
    responses(
        (status = 200, description = "Current state", body = AggregateView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn current<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    _actor: Actor,
    ValidPath((raw_type, raw_id)): ValidPath<(String, String)>,
) -> Result<Response, Problem> {
    let kind = aggregate_type(&app.registry, &raw_type)?;
    let id = aggregate_id(&raw_id)?;
    let loaded = app.repository.load_kind(kind.as_ref(), id).await?;
    let state_omitted = omitted_state(loaded.state_json.len());
    let state = match state_omitted {
        Some(_) => None,
        None => Some(serde_json::from_slice(&loaded.state_json)?),
    };
    let mut view = AggregateView {
        aggregate_id: loaded.aggregate_id,
        aggregate_type: loaded.aggregate_type.to_owned(),
        version: loaded.version,
        state,
        state_omitted,
        load: loaded.report,
    };
    // Measured as Lambda counts it: the encoded body, escaped once more inside the envelope.
    let body = match encode_within_limit(&view)? {
        Ok(body) => body,
        Err(reason) => {
            view.state = None;
            view.state_omitted = Some(reason);
            serde_json::to_vec(&view)?
        }
    };
    Ok(json_response(body))
}
