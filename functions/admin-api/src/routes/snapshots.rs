//! Snapshot management: create now, list, latest valid, delete one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use snapshot_core::audit::Outcome;
use snapshot_core::clock::now_millis;
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::registry::AggregateKind;
use snapshot_core::snapshot::{InvalidSnapshot, SnapshotHeader, SnapshotMetadata, Stored};
use snapshot_core::walk::{Start, Tail, Target, Verdict, WalkError};
use snapshot_core::StoreError;
use std::sync::Arc;
use tracing::info;

use super::openapi::{
    AggregateIdParam, AggregateTypeParam, BadRequest, BoolParam, Conflict, Forbidden, Internal,
    NotFound, PageSizeParam, Unauthorized, Unavailable,
};
use crate::auth::Actor;
use crate::observe::AuditNote;
use crate::problem::Problem;
use crate::request_id::RequestId;
use crate::route_table::{CREATE, DELETE, LATEST, LIST};
use crate::state::AppState;
use crate::validation::{aggregate_id, aggregate_type, ValidPath, ValidQuery};
use crate::views::{
    encode_within_limit, fits_lambda_response, json_response, lambda_payload_bytes, CreateOutcome,
    CreateView, DeletedView, LatestView, ListPage, Listed, SnapshotPage, SnapshotView,
    SnapshotWithState, LAMBDA_RESPONSE_LIMIT,
};

/// `metadata.reason` of snapshots made through this API.
pub const MANUAL_REASON: &str = "manual";
/// Page size of a listing when `limit` is not given, and its bounds.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// What a listing adds around its items (`aggregateId`, `nextCursor`, brackets), escaped.
const PAGE_OVERHEAD: usize = 1024;

/// `POST /admin/snapshots/create/{aggregateType}/{aggregateId}`: 201 with the new snapshot's
/// metadata, or 200 with the stored one when a snapshot at that version already exists.
#[utoipa::path(
    post,
    path = CREATE,
    operation_id = "createSnapshot",
    tag = "snapshots",
    summary = "Snapshot the aggregate now at its current version (reason `manual`)",
    params(
        ("aggregateType" = inline(AggregateTypeParam), Path,
            description = "A registered aggregate type; others are a 400 listing the supported ones"),
        ("aggregateId" = inline(AggregateIdParam), Path,
            description = "1-256 printable characters"),
    ),
    responses(
        (status = 201, description = "Snapshot stored", body = CreateView),
        (status = 200, description = "A snapshot at this version already existed; it is returned unchanged",
            body = CreateView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, description = "The state is too large for one snapshot item",
            body = crate::problem::ProblemSchema, content_type = "application/problem+json"),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    actor: Actor,
    request_id: RequestId,
    ValidPath((raw_type, raw_id)): ValidPath<(String, String)>,
) -> Result<Response, Problem> {
    let kind = aggregate_type(&app.registry, &raw_type)?;
    let id = aggregate_id(&raw_id)?;
    let metadata = SnapshotMetadata {
        created_by: actor.id.clone(),
        reason: MANUAL_REASON.to_owned(),
        request_id: Some(request_id.into_string()),
    };
    let expires_at = app.config.expires_at(now_millis());
    let (record, outcome) = app
        .repository
        .snapshot_now(kind.as_ref(), id, metadata, expires_at)
        .await?;
    let version = record.header.version;
    let response = match outcome {
        PutOutcome::Created => {
            info!(aggregate_id = %id, version, actor = %actor.id, "manual snapshot stored");
            let view = CreateView {
                outcome: CreateOutcome::Created,
                snapshot: SnapshotView::from(&record.header),
            };
            AuditNote::default()
                .version(Some(version))
                .attach((StatusCode::CREATED, Json(view)).into_response())
        }
        PutOutcome::AlreadyExists => {
            // Show what is stored, not the copy we just built (its metadata differs).
            let stored = match app.repository.snapshots().get(id, version).await {
                Ok(found) => found.map_or(record.header, |r| r.header),
                // What is stored there does not read; show what we built.
                Err(StoreError::MalformedSnapshot { .. }) => record.header,
                Err(e) => return Err(e.into()),
            };
            let view = CreateView {
                outcome: CreateOutcome::AlreadyExists,
                snapshot: SnapshotView::from(&stored),
            };
            AuditNote::default()
                .outcome(Outcome::Noop)
                .version(Some(version))
                .detail(format!("a snapshot at version {version} already exists"))
                .attach((StatusCode::OK, Json(view)).into_response())
        }
    };
    Ok(response)
}

/// Query of a listing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub include_state: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

struct ListParams {
    include_state: bool,
    limit: usize,
    before: Option<u64>,
}

impl ListQuery {
    fn parse(&self) -> Result<ListParams, Problem> {
        let include_state = match self.include_state.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(Problem::bad_request(
                    "invalid-query",
                    format!("includeState must be true or false, got `{}`", clip(other)),
                ))
            }
        };
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    Problem::bad_request(
                        "invalid-query",
                        format!(
                            "limit must be a whole number from 1 to {MAX_PAGE}, got `{}`",
                            clip(raw)
                        ),
                    )
                })?,
        };
        let before = match self.cursor.as_deref() {
            None => None,
            Some(raw) => Some(raw.parse::<u64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                Problem::bad_request(
                    "invalid-query",
                    format!(
                        "cursor must be a nextCursor returned by a previous page, got `{}`",
                        clip(raw)
                    ),
                )
            })?),
        };
        Ok(ListParams {
            include_state,
            limit,
            before,
        })
    }
}

fn clip(raw: &str) -> String {
    raw.chars().take(64).collect()
}

/// `GET /admin/snapshots/{aggregateId}`: newest first, metadata only unless
/// `includeState=true`; `limit` (1–100, default 20) and `cursor` page through.
#[utoipa::path(
    get,
    path = LIST,
    operation_id = "listSnapshots",
    tag = "snapshots",
    summary = "Snapshots of an aggregate, newest first; metadata only unless includeState=true",
    params(
        ("aggregateId" = inline(AggregateIdParam), Path,
            description = "1-256 printable characters"),
        ("includeState" = inline(Option<BoolParam>), Query,
            description = "Add each snapshot's verified, decoded state; invalid snapshots are flagged with invalidReason. A page stops early (nextCursor set) before it would pass Lambda's 6 MB response limit once encoded; a single state that would pass it alone is left out (stateOmitted)"),
        ("limit" = inline(Option<PageSizeParam>), Query, description = "Page size"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = ListPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    _actor: Actor,
    ValidPath(raw_id): ValidPath<String>,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<Response, Problem> {
    let id = aggregate_id(&raw_id)?;
    let params = query.parse()?;
    let snapshots = app.repository.snapshots();
    let (body, empty) = if params.include_state {
        let page = snapshots.records(id, params.before, params.limit).await?;
        let codec = app.repository.codec();
        let mut items: Vec<Listed<SnapshotWithState>> = Vec::with_capacity(page.items.len());
        let mut next = page.next;
        // Measured as Lambda counts it (each item encoded, then escaped in the envelope), so
        // a page of states with many quotes never passes the 6 MB response limit.
        let mut payload = PAGE_OVERHEAD;
        let mut last_version = None;
        for stored in &page.items {
            let mut item = Listed::of(stored, |record| {
                SnapshotWithState::open(&app.registry, codec, id, record)
            });
            let mut cost = lambda_payload_bytes(&serde_json::to_vec(&item)?);
            if !fits_lambda_response(payload.saturating_add(cost)) {
                if last_version.is_some() {
                    // Cut the page short; the next one starts below the last included version.
                    next = last_version;
                    break;
                }
                // Over the limit on its own: listed without its state, saying why.
                if let Listed::Snapshot(snapshot) = &mut item {
                    if snapshot.state.take().is_some() {
                        snapshot.state_omitted = Some(format!(
                            "the state would make the response {} bytes once encoded, over the {LAMBDA_RESPONSE_LIMIT} byte Lambda response limit",
                            payload.saturating_add(cost)
                        ));
                    }
                }
                cost = lambda_payload_bytes(&serde_json::to_vec(&item)?);
            }
            payload = payload.saturating_add(cost);
            let version = match stored {
                Ok(record) => Some(record.header.version),
                Err(unreadable) => unreadable.version,
            };
            last_version = version.or(last_version);
            items.push(item);
        }
        let empty = items.is_empty();
        (serde_json::to_value(page_of(id, items, next)), empty)
    } else {
        let page = snapshots.headers(id, params.before, params.limit).await?;
        // An item that does not read is listed as such (the page never fails for it).
        let items: Vec<Listed<SnapshotView>> = page
            .items
            .iter()
            .map(|stored| Listed::of(stored, |h| SnapshotView::from(h)))
            .collect();
        let empty = items.is_empty();
        (serde_json::to_value(page_of(id, items, page.next)), empty)
    };
    if empty && params.before.is_none() {
        require_events(&app, id).await?;
    }
    let body = body?;
    Ok(Json(body).into_response())
}

fn page_of<T>(id: &str, items: Vec<T>, next: Option<u64>) -> SnapshotPage<T> {
    SnapshotPage {
        aggregate_id: id.to_owned(),
        items,
        next_cursor: next.map(|v| v.to_string()),
    }
}

/// 404 unless the aggregate has at least one event.
async fn require_events<E: EventStore, S: SnapshotStore>(
    app: &AppState<E, S>,
    id: &str,
) -> Result<(), Problem> {
    let first = app.repository.events().read(id, 1, Some(1)).await?;
    if first.is_empty() {
        return Err(Problem::not_found(
            "aggregate-not-found",
            format!("aggregate `{id}` has no events and no snapshots"),
        ));
    }
    Ok(())
}

/// `GET /admin/snapshots/{aggregateId}/latest`: the newest snapshot that passes every
/// check (the core's walk, boundary event included), with its state; newer ones it passed
/// over are listed in `skippedInvalid` (and marked invalid when proven wrong).
#[utoipa::path(
    get,
    path = LATEST,
    operation_id = "latestSnapshot",
    tag = "snapshots",
    summary = "The newest snapshot that passes every check, with its decoded state",
    params(
        ("aggregateId" = inline(AggregateIdParam), Path,
            description = "1-256 printable characters"),
    ),
    responses(
        (status = 200, description = "Latest valid snapshot", body = LatestView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn latest<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    _actor: Actor,
    ValidPath(raw_id): ValidPath<String>,
) -> Result<Response, Problem> {
    let id = aggregate_id(&raw_id)?;
    let kind = stored_kind(&app, id).await?;
    let target = Target {
        aggregate_id: id,
        aggregate_type: kind.type_name(),
        schema_version: kind.schema_version(),
    };
    let walked = app
        .repository
        .walk()
        .newest_valid(
            target,
            Start::Newest,
            Tail::BoundaryOnly,
            |candidate| -> Verdict<_, Problem> {
                let version = candidate.header.version;
                if let Err(e) = kind.fold_json(id, version, Some(&candidate.state), &[]) {
                    return Verdict::Invalid(InvalidSnapshot::State(e.to_string()));
                }
                match serde_json::from_slice::<serde_json::Value>(&candidate.state) {
                    Ok(state) => Verdict::Use((state, candidate.state.len())),
                    Err(e) => Verdict::Invalid(InvalidSnapshot::State(e.to_string())),
                }
            },
        )
        .await
        .map_err(|e| match e {
            WalkError::Store(e) => Problem::from(e),
            WalkError::Fail(problem) => problem,
        })?;
    let skipped: Vec<Option<u64>> = walked.skipped.iter().map(|s| s.version).collect();
    if let Some((header, (state, bytes))) = walked.found {
        let mut view = LatestView {
            snapshot: SnapshotWithState::valid(&header, state, bytes),
            skipped_invalid: skipped,
        };
        // Measured as Lambda counts it: the encoded body, escaped once more in the envelope.
        let body = match encode_within_limit(&view)? {
            Ok(bytes) => bytes,
            Err(reason) => {
                view.snapshot.state = None;
                view.snapshot.state_omitted = Some(reason);
                serde_json::to_vec(&view)?
            }
        };
        return Ok(json_response(body));
    }
    let detail = if skipped.is_empty() {
        format!("aggregate `{id}` has no snapshots")
    } else {
        format!(
            "aggregate `{id}` has no valid snapshot ({} invalid: versions {:?})",
            skipped.len(),
            skipped.iter().flatten().collect::<Vec<_>>()
        )
    };
    Err(Problem::not_found("snapshot-not-found", detail))
}

/// The registered type of an aggregate, from its first event: 404 without events, 409 when
/// the type is not registered.
async fn stored_kind<E: EventStore, S: SnapshotStore>(
    app: &AppState<E, S>,
    id: &str,
) -> Result<Arc<dyn AggregateKind>, Problem> {
    let first = app.repository.events().read(id, 1, Some(1)).await?;
    let Some(first) = first.into_iter().next() else {
        return Err(Problem::not_found(
            "aggregate-not-found",
            format!("aggregate `{id}` has no events"),
        ));
    };
    app.registry
        .get(&first.aggregate_type)
        .cloned()
        .ok_or_else(|| {
            Problem::conflict(
                "unsupported-aggregate-type",
                format!(
                    "aggregate `{id}` is stored as `{}`, which is not registered",
                    first.aggregate_type
                ),
            )
        })
}

fn stored_version_of_header(stored: &Stored<SnapshotHeader>) -> Option<u64> {
    match stored {
        Ok(header) => Some(header.version),
        Err(unreadable) => unreadable.version,
    }
}

/// Query of a delete.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    pub force: Option<String>,
}

/// `DELETE /admin/snapshots/{aggregateId}/{version}`: 404 if absent; 409 if it is the
/// aggregate's only snapshot, unless `force=true`.
#[utoipa::path(
    delete,
    path = DELETE,
    operation_id = "deleteSnapshot",
    tag = "snapshots",
    summary = "Delete one snapshot; the aggregate's only snapshot only with force=true",
    params(
        ("aggregateId" = inline(AggregateIdParam), Path,
            description = "1-256 printable characters"),
        ("version" = u64, Path, description = "The snapshot's version"),
        ("force" = inline(Option<BoolParam>), Query,
            description = "Also delete the aggregate's only snapshot"),
    ),
    responses(
        (status = 200, description = "Deleted", body = DeletedView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete<E: EventStore, S: SnapshotStore>(
    State(app): State<AppState<E, S>>,
    actor: Actor,
    ValidPath((raw_id, version)): ValidPath<(String, u64)>,
    ValidQuery(query): ValidQuery<DeleteQuery>,
) -> Result<Response, Problem> {
    let id = aggregate_id(&raw_id)?;
    let force = match query.force.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::bad_request(
                "invalid-query",
                format!("force must be true or false, got `{}`", clip(other)),
            ))
        }
    };
    let snapshots = app.repository.snapshots();
    let newest_two = snapshots.headers(id, None, 2).await?;
    let listed = newest_two
        .items
        .iter()
        .any(|h| stored_version_of_header(h) == Some(version));
    let exists = listed
        || match snapshots.get(id, version).await {
            Ok(found) => found.is_some(),
            // An unreadable item exists and may be deleted like any other.
            Err(StoreError::MalformedSnapshot { .. }) => true,
            Err(e) => return Err(e.into()),
        };
    if !exists {
        return Err(Problem::not_found(
            "snapshot-not-found",
            format!("aggregate `{id}` has no snapshot at version {version}"),
        ));
    }
    let only = newest_two.items.len() == 1 && newest_two.next.is_none();
    if only && !force {
        return Err(Problem::conflict(
            "only-snapshot",
            format!(
                "version {version} is the only snapshot of `{id}`; repeat with ?force=true to delete it"
            ),
        ));
    }
    if !snapshots.delete(id, version).await? {
        return Err(Problem::not_found(
            "snapshot-not-found",
            format!("aggregate `{id}` has no snapshot at version {version}"),
        ));
    }
    // A state this container keeps may have been folded from it.
    if let Some(cache) = app.repository.state_cache() {
        cache.evict(id);
    }
    info!(aggregate_id = %id, version, actor = %actor.id, forced = only, "snapshot deleted");
    let view = DeletedView {
        aggregate_id: id.to_owned(),
        version,
        deleted: true,
        was_only_snapshot: only,
    };
    let note = if only {
        AuditNote::default().detail("forced delete of the only snapshot")
    } else {
        AuditNote::default()
    };
    Ok(note.attach(Json(view).into_response()))
}
