//! Input validation and extractors whose rejections are problem+json (axum's own answer in
//! plain text): path, query and JSON body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use snapshot_core::domain::check_aggregate_id;
use snapshot_core::{AggregateKind, Registry};

use crate::problem::Problem;

/// Longest accepted aggregate id, in characters.
pub use snapshot_core::domain::MAX_AGGREGATE_ID_CHARS as MAX_ID_CHARS;
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Checks an aggregate id with the domain's rule: 1–256 printable characters, not blank.
pub fn aggregate_id(raw: &str) -> Result<&str, Problem> {
    check_aggregate_id(raw)
        .map(|()| raw)
        .map_err(|e| Problem::bad_request("invalid-aggregate-id", format!("aggregateId {e}")))
}

/// Looks up a registered aggregate type; an unknown one is a 400 that lists the supported.
pub fn aggregate_type<'r>(
    registry: &'r Registry,
    raw: &str,
) -> Result<&'r Arc<dyn AggregateKind>, Problem> {
    registry.get(raw).ok_or_else(|| {
        let supported = registry.type_names();
        let shown: String = raw.chars().take(MAX_ID_CHARS).collect();
        Problem::bad_request(
            "unsupported-aggregate-type",
            format!(
                "aggregateType `{shown}` is not supported; supported types: {}",
                supported.join(", ")
            ),
        )
        .with("supportedTypes", supported)
    })
}

/// Path parameters; a value that does not parse (e.g. a non-numeric version) is a 400.
#[derive(Debug)]
pub struct ValidPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ValidPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|rejection| {
                let status = rejection.status();
                let problem = Problem::from_status(status, &rejection.body_text());
                if status.is_client_error() {
                    Problem::bad_request("invalid-path", problem.detail().to_owned())
                } else {
                    problem
                }
            })
    }
}

/// Query string; unknown or malformed parameters are a 400.
#[derive(Debug)]
pub struct ValidQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))
    }
}

/// An optional JSON body: empty means `T::default()`; otherwise it must be
/// `application/json`, at most [`MAX_BODY_BYTES`], and parse as `T`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        status,
                        "body-too-large",
                        "Payload too large",
                        format!("the request body is over the {MAX_BODY_BYTES} byte limit"),
                    )
                } else {
                    Problem::bad_request("invalid-body", rejection.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if is_json != Some(true) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the request body must be JSON with Content-Type: application/json",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| Problem::bad_request("invalid-body", format!("invalid JSON body: {e}")))
    }
}
