//! Health check and the OpenAPI document.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{openapi_json, Forbidden, Internal, Unauthorized};
use crate::problem::Problem;
use crate::route_table::{HEALTH, OPENAPI};

/// Body of the health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the function answers.
    status: HealthStatus,
}

/// The only status the health check reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum HealthStatus {
    /// Up.
    Ok,
}

/// `GET /health`: liveness only, no storage call and no authentication. It is open to anyone,
/// so it names no version or build: nothing that helps match the service to a known flaw.
#[utoipa::path(
    get,
    path = HEALTH,
    operation_id = "health",
    tag = "meta",
    summary = "Liveness check (no authentication, no storage call)",
    security(),
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// `GET /admin/openapi.json`: the document, generated from the types ([`super::openapi`]).
#[utoipa::path(
    get,
    path = OPENAPI,
    operation_id = "openapi",
    tag = "meta",
    summary = "This document",
    responses(
        (status = 200, description = "OpenAPI 3.1 document", body = Object),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub async fn openapi() -> Result<Response, Problem> {
    let document = openapi_json().map_err(|e| Problem::internal("openapi", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], document).into_response())
}
