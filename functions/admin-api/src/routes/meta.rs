//! Health check and the OpenAPI document.

use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// The OpenAPI 3.1 description of this API, kept in the repository beside the crate.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// `GET /health`: liveness only, no storage call and no authentication. It is open to anyone,
/// so it names no version or build: nothing that helps match the service to a known flaw.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /admin/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
