//! The identity of a request: the id that ties its response, log lines and audit record
//! together. A leaf shared by the outer layer (which assigns it) and the handlers (which
//! record it).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

/// Response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id accepted from a client header.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The id of this request: API Gateway's, else a sane client `x-request-id`, else a new UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id for an incoming request.
    pub fn of(request: &Request) -> Self {
        if let Some(RequestContext::ApiGatewayV2(context)) =
            request.extensions().get::<RequestContext>()
        {
            if let Some(id) = context.request_id.as_deref().filter(|id| !id.is_empty()) {
                return Self(id.to_owned());
            }
        }
        let from_header = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= MAX_REQUEST_ID_CHARS
                    && id.chars().all(|c| c.is_ascii_graphic())
            });
        match from_header {
            Some(id) => Self(id.to_owned()),
            None => Self::fresh(),
        }
    }

    fn fresh() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(Self::fresh))
    }
}
