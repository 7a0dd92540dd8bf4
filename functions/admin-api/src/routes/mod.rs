//! The routes: one table ([`ROUTES`]) that the router, the audit trail and the OpenAPI test
//! all read, and the handlers by resource.

mod aggregates;
mod cleanup;
pub(crate) mod meta;
mod snapshots;
mod verify;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, post};
use axum::{middleware, Router};
use snapshot_core::ports::{EventStore, SnapshotStore};

use crate::auth::{require_admin, Authenticator};
use crate::observe::observe;
use crate::problem::route_not_found;
use crate::state::AppState;
use crate::validation::MAX_BODY_BYTES;

pub use meta::OPENAPI_JSON;

pub const HEALTH: &str = "/health";
pub const OPENAPI: &str = "/admin/openapi.json";
pub const CREATE: &str = "/admin/snapshots/create/{aggregateType}/{aggregateId}";
pub const LIST: &str = "/admin/snapshots/{aggregateId}";
pub const CLEANUP: &str = "/admin/snapshots/cleanup";
pub const LATEST: &str = "/admin/snapshots/{aggregateId}/latest";
pub const VERIFY: &str = "/admin/snapshots/{aggregateId}/verify";
pub const DELETE: &str = "/admin/snapshots/{aggregateId}/{version}";
pub const AGGREGATE: &str = "/admin/aggregates/{aggregateType}/{aggregateId}";

/// One route: method, path template (axum/OpenAPI syntax) and its audit action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/admin/snapshots/{aggregateId}`.
    pub path: &'static str,
    /// Audit action, e.g. `snapshot.create`.
    pub action: &'static str,
    /// False only for the health check.
    pub admin_only: bool,
}

const fn spec(method: Method, path: &'static str, action: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        path,
        action,
        admin_only: true,
    }
}

/// Every route the API serves.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::GET,
        path: HEALTH,
        action: "health",
        admin_only: false,
    },
    spec(Method::GET, OPENAPI, "admin.openapi"),
    spec(Method::POST, CREATE, "snapshot.create"),
    spec(Method::GET, LIST, "snapshot.list"),
    spec(Method::POST, CLEANUP, "snapshot.prune"),
    spec(Method::GET, LATEST, "snapshot.latest"),
    spec(Method::POST, VERIFY, "snapshot.verify"),
    spec(Method::DELETE, DELETE, "snapshot.delete"),
    spec(Method::GET, AGGREGATE, "aggregate.get"),
];

/// Audit action of a matched route, `None` if the method is not served there.
pub fn action_for(method: &Method, path: &str) -> Option<&'static str> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ROUTES
        .iter()
        .find(|r| r.path == path && r.method == method)
        .map(|r| r.action)
}

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
        .fallback(route_not_found)
        .layer(middleware::from_fn_with_state(authenticator, require_admin))
        .with_state(state);
    Router::new()
        .route(HEALTH, get(meta::health))
        .merge(admin)
        .layer(middleware::from_fn(observe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
