//! The router over the route table ([`crate::route_table`]), and the handlers by resource.

mod aggregates;
mod backfill;
mod cleanup;
mod meta;
mod openapi;
mod snapshots;
mod verify;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::{middleware, Router};
use snapshot_core::ports::{EventStore, SnapshotStore};

use crate::auth::{require_admin, Authenticator};
use crate::console;
use crate::observe::observe;
use crate::problem::route_not_found;
use crate::route_table::{
    AGGREGATE, BACKFILL, BACKFILL_STATUS, CLEANUP, CONSOLE, CONSOLE_CSS, CONSOLE_JS, CREATE,
    DELETE, HEALTH, LATEST, LIST, OPENAPI, VERIFY,
};
use crate::state::AppState;
use crate::validation::MAX_BODY_BYTES;

pub use openapi::{openapi_json, DocumentError};

/// The admin API. The same router serves in Lambda (through `lambda_http::run`) and locally
/// (through `axum::serve`); only `authenticator` differs.
pub fn router<E, S>(state: AppState<E, S>, authenticator: Authenticator) -> Router
where
    E: EventStore + 'static,
    S: SnapshotStore + 'static,
{
    let admin = Router::new()
        .route(OPENAPI, get(meta::openapi))
        .route(CREATE, post(snapshots::create::<E, S>))
        .route(LIST, get(snapshots::list::<E, S>))
        .route(CLEANUP, post(cleanup::cleanup::<E, S>))
        .route(LATEST, get(snapshots::latest::<E, S>))
        .route(VERIFY, post(verify::verify::<E, S>))
        .route(DELETE, delete(snapshots::delete::<E, S>))
        .route(AGGREGATE, get(aggregates::current::<E, S>))
        .route(BACKFILL, post(backfill::start::<E, S>))
        .route(BACKFILL_STATUS, get(backfill::status::<E, S>))
        .fallback(route_not_found)
        .layer(middleware::from_fn_with_state(authenticator, require_admin))
        .with_state(state);
    Router::new()
        .route(HEALTH, get(meta::health))
        .route(CONSOLE, get(console::index))
        .route(CONSOLE_JS, get(console::script))
        .route(CONSOLE_CSS, get(console::style))
        .merge(admin)
        .layer(middleware::from_fn(observe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
