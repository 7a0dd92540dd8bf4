//! Drift check: the state loaded through the latest valid snapshot + tail against a full
//! replay of every event.

use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::repository::LoadedState;
use tracing::warn;

use super::openapi::{
    AggregateIdParam, BadRequest, Conflict, Forbidden, Internal, NotFound, Unauthorized,
    Unavailable,
};
use crate::auth::Actor;
use crate::diff::differences;
use crate::observe::AuditNote;
use crate::problem::Problem;
use crate::route_table::VERIFY;
use crate::state::AppState;
use crate::validation::{aggregate_id, ValidPath};
use crate::views::{encode_within_limit, json_response, omitted_state, VerifyOutcome, VerifyView};

/// Loads compared per request; a concurrent append between the two loads is retried once.
const ATTEMPTS: usize = 2;

/// `POST /admin/snapshots/{aggregateId}/verify`: `match`, or `mismatch` with the JSON
/// Pointers that differ. The aggregate type is the one its first event was stored with.
#[utoipa::path(
    post,
    path = VERIFY,
    operation_id = "verifySnapshot",
    tag = "snapshots",
    summary = "Drift check: load through the latest valid snapshot + tail and compare with a full replay",
    params(
        ("aggregateId" = inline(AggregateIdParam), Path,
            description = "1-256 printable characters"),
    ),
    responses(
        (status = 200, description = "match or mismatch", body = VerifyView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn verify<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    _actor: Actor,
    ValidPath(raw_id): ValidPath<String>,
) -> Result<Response, Problem> {
    let id = aggregate_id(&raw_id)?;
    let first = app.repository.events().read(id, 1, Some(1)).await?;
    let Some(first) = first.into_iter().next() else {
        return Err(Problem::not_found(
            "aggregate-not-found",
            format!("aggregate `{id}` has no events"),
        ));
    };
    let Some(kind) = app.registry.get(&first.aggregate_type) else {
        return Err(Problem::conflict(
            "unsupported-aggregate-type",
            format!(
                "aggregate `{id}` is stored as `{}`, which is not registered",
                first.aggregate_type
            ),
        ));
    };
    for _ in 0..ATTEMPTS {
        // From the stores, never the cache of warm states: this checks the stored snapshot.
        let loaded = app
            .repository
            .load_kind_from_stores(kind.as_ref(), id)
            .await?;
        let replayed = app.repository.replay_kind(kind.as_ref(), id).await?;
        if loaded.version != replayed.version {
            continue;
        }
        let (loaded_json, replayed_json) = (json(&loaded)?, json(&replayed)?);
        let diffs = differences(&loaded_json, &replayed_json);
        // Both states go back on a mismatch, so a client can show the differences, unless
        // they would not fit one response.
        let show = !diffs.is_empty()
            && omitted_state(loaded.state_json.len() + replayed.state_json.len()).is_none();
        let result = if diffs.is_empty() {
            VerifyOutcome::Match
        } else {
            VerifyOutcome::Mismatch
        };
        if !diffs.is_empty() {
            warn!(aggregate_id = %id, version = loaded.version,
                snapshot_version = ?loaded.report.snapshot_version, differences = ?diffs,
                "snapshot drift detected");
        }
        let detail = format!(
            "{} at version {} (snapshot {:?})",
            result.as_str(),
            loaded.version,
            loaded.report.snapshot_version
        );
        let mut view = VerifyView {
            aggregate_id: id.to_owned(),
            aggregate_type: kind.type_name().to_owned(),
            result,
            differences_omitted: diffs.omitted(),
            differences: diffs.paths,
            version: loaded.version,
            snapshot_load: loaded.report,
            events_replayed: replayed.report.events_replayed,
            loaded_state: show.then_some(loaded_json),
            replayed_state: show.then_some(replayed_json),
            states_omitted: None,
        };
        // Measured as Lambda counts it (the encoded, escaped body), not the raw state size.
        let body = match encode_within_limit(&view)? {
            Ok(body) => body,
            Err(reason) => {
                view.loaded_state = None;
                view.replayed_state = None;
                view.states_omitted = Some(reason);
                serde_json::to_vec(&view)?
            }
        };
        return Ok(AuditNote::default()
            .version(view.snapshot_load.snapshot_version)
            .detail(detail)
            .attach(json_response(body)));
    }
    Err(Problem::conflict(
        "concurrent-change",
        format!("aggregate `{id}` kept changing during verification; retry"),
    ))
}

fn json(loaded: &LoadedState) -> Result<Value, Problem> {
    Ok(serde_json::from_slice(&loaded.state_json)?)
}
