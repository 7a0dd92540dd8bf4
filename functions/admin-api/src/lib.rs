//! Admin API of the aggregate-snapshot service: snapshot management over HTTP, admin-only,
//! validated and audited (docs/functions.md#admin-api, docs/security.md#access).
//!
//! One axum [`router`] serves both in Lambda (API Gateway HTTP API through `lambda_http`) and
//! on 127.0.0.1 (the `admin-api-local` binary); handlers are generic over the
//! [`EventStore`](snapshot_core::ports::EventStore) and
//! [`SnapshotStore`](snapshot_core::ports::SnapshotStore) ports.
//!
//! Layers, outside in: [`observe`] (request id, problem+json for every error, panic guard,
//! audit record), [`auth`] (deny by default, except `/health`), then the handlers in
//! `routes`, whose inputs pass [`validation`].
//!
//! Imports run one way: `routes` → `observe` → the leaves [`route_table`], [`request_id`],
//! [`auth`] and [`problem`]; core errors become problems through `From` ([`errors`]).

#![warn(missing_docs)]

pub mod auth;
pub mod console;
pub mod diff;
pub mod errors;
pub mod local;
pub mod observe;
pub mod problem;
pub mod request_id;
pub mod route_table;
mod routes;
pub mod state;
pub mod validation;
pub mod views;

pub use auth::{AccessPolicy, Actor, AuthMethod, Authenticator, DevToken};
pub use problem::{Problem, PROBLEM_JSON};
pub use request_id::{RequestId, REQUEST_ID_HEADER};
pub use route_table::{action_for, RouteSpec, ROUTES};
pub use routes::router;
pub use state::{dynamo_state, AppState};

/// The OpenAPI 3.1 document served at `/admin/openapi.json`, generated from the routes and the
/// request and response types.
pub use routes::{openapi_json, DocumentError};
