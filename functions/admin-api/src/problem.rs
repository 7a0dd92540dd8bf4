//! Errors as `application/problem+json` (RFC 9457): every error the API returns, including
//! the framework's own (unknown route, wrong method, rejected path, query or body), has this
//! shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The only detail a 500 response carries: what went wrong inside stays in the logs and the
/// audit record, found by the `requestId` every problem carries.
pub const INTERNAL_DETAIL: &str =
    "the request failed on our side; quote its requestId to the operators";

/// Prefix of our problem `type` URIs; the slug after it names the kind of problem.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:inventory-snapshots:problem:";

/// One problem: status, machine-readable kind, human-readable title and detail, and optional
/// extension members (e.g. `supportedTypes`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {kind}: {detail}")]
pub struct Problem {
    /// HTTP status.
    status: StatusCode,
    /// Slug of the problem type, e.g. `unsupported-aggregate-type`.
    kind: &'static str,
    /// Short summary of the kind of problem.
    title: String,
    /// What went wrong with this request, naming the aggregate, version or field.
    detail: String,
    /// The request path the problem occurred on (filled in by the router's outer layer).
    instance: Option<String>,
    /// Extra members of the body.
    extensions: Map<String, Value>,
    /// Seconds a client should wait before retrying (`Retry-After`), for 503s.
    retry_after: Option<u16>,
}

/// The problem+json body as the OpenAPI document describes it (`Problem`): what
/// [`Problem::body`] writes once the outer layer has added `instance` and `requestId`, and the
/// extension members some problems carry. Never built: it only describes.
#[derive(utoipa::ToSchema)]
#[schema(
    as = Problem,
    description = "An error (RFC 9457): type, title, status, detail, the request's path and id, and the members some problems add"
)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read by the schema derive only
pub struct ProblemSchema {
    /// `urn:inventory-snapshots:problem:` and the kind of problem, e.g.
    /// `urn:inventory-snapshots:problem:aggregate-not-found`.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    kind: String,
    /// Short summary of the kind of problem.
    title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong with this request, naming the aggregate, version or field (500s say
    /// only to quote the requestId).
    detail: String,
    /// The request path.
    instance: String,
    /// The request's id, also in the `x-request-id` header and the audit record.
    request_id: String,
    /// `unsupported-aggregate-type` (400): the registered aggregate types.
    supported_types: Option<Vec<String>>,
    /// `method-not-allowed` (405): the methods the route accepts.
    allow: Option<String>,
    /// A cleanup stopped by storage (503): what it did before (its deletions stand).
    partial: Option<snapshot_core::pruning::PruneSummary>,
}

/// Extension key holding what went wrong inside (500s only): logged and audited, never put in
/// the body (kept among the extensions so a problem, the error of most results, stays small).
const INTERNAL_KEY: &str = "\u{0}internal";

impl Problem {
    /// A problem of kind `kind`.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title: title.into(),
            detail: detail.into(),
            instance: None,
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Slug of the problem type, e.g. `unsupported-aggregate-type`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Short summary of the kind of problem.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// What went wrong with this request.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The request path the problem occurred on, once the outer layer has set it.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// Replaces the detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Sets the instance unless one is set already.
    #[must_use]
    pub fn or_instance(mut self, path: &str) -> Self {
        self.instance.get_or_insert_with(|| path.to_owned());
        self
    }

    /// Asks the client to wait `seconds` before retrying (`Retry-After` header).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u16) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Seconds the client is asked to wait before retrying, if any.
    pub fn retry_after(&self) -> Option<u16> {
        self.retry_after
    }

    /// Adds an extension member to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// A 400 problem of type `kind`: the request itself is wrong (a field, a path segment);
    /// `detail` names what, and repeating it unchanged fails the same way.
    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, "Bad request", detail)
    }

    /// A 404 problem of type `kind`: the aggregate or snapshot named does not exist.
    pub fn not_found(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, "Not found", detail)
    }

    /// A 409 problem of type `kind`: the request contradicts what is stored (a concurrent
    /// change, an aggregate of another type, a backfill already running); `detail` says which.
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, "Conflict", detail)
    }

    /// A 500 problem: the body says only [`INTERNAL_DETAIL`] and the request id; `internal`,
    /// the error text naming internals, goes to the log and the audit record.
    pub fn internal(kind: &'static str, internal: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            kind,
            "Internal error",
            INTERNAL_DETAIL,
        );
        problem
            .extensions
            .insert(INTERNAL_KEY.to_owned(), Value::String(internal.into()));
        problem
    }

    /// What went wrong inside, for logs and audit records (500s); otherwise the detail.
    pub fn log_detail(&self) -> &str {
        self.extensions
            .get(INTERNAL_KEY)
            .and_then(Value::as_str)
            .unwrap_or(&self.detail)
    }

    /// The problem `type` URI.
    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.kind)
    }

    /// The JSON body: `type`, `title`, `status`, `detail`, `instance` and the extensions.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), self.type_uri().into());
        body.insert("title".into(), self.title.clone().into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        if let Some(instance) = &self.instance {
            body.insert("instance".into(), instance.clone().into());
        }
        for (key, value) in self.extensions.iter().filter(|(k, _)| *k != INTERNAL_KEY) {
            body.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(body)
    }

    /// A problem for a response the framework produced without one (its default 404/405,
    /// extractor rejections, body limits), keeping what its plain-text body said.
    pub fn from_status(status: StatusCode, text: &str) -> Self {
        let (kind, detail) = match status {
            StatusCode::NOT_FOUND => ("route-not-found", "no such route".to_owned()),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method-not-allowed",
                "this route does not accept that method".to_owned(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", text.to_owned()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", text.to_owned()),
            s if s.is_server_error() => ("internal-error", INTERNAL_DETAIL.to_owned()),
            _ => ("invalid-request", text.to_owned()),
        };
        let detail = if detail.trim().is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            detail
        };
        Self::new(
            status,
            kind,
            status.canonical_reason().unwrap_or("Error"),
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // Kept so the outer layer can add `instance` and `requestId` and the audit its detail.
        response.extensions_mut().insert(self);
        response
    }
}

/// Fallback for paths no route matches.
pub async fn route_not_found() -> Problem {
    Problem::not_found("route-not-found", "no such route")
}
