//! The outer layer every request passes: assigns the request id, turns any error response
//! into problem+json (with `instance` and `requestId`), catches panics as a 500 and emits one
//! audit record per admin call.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use snapshot_core::audit::{AuditRecord, Outcome};
use tracing::{error, info};

use crate::auth::{Actor, RefusedCaller};
use crate::problem::{Problem, PROBLEM_JSON};
use crate::request_id::{RequestId, REQUEST_ID_HEADER};
use crate::route_table::{action_for, HEALTH};

/// How much of a framework error body is kept as the problem's detail.
const MAX_FRAMEWORK_BODY: usize = 4 * 1024;

/// What a handler adds to the audit record beyond what the request and status tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditNote {
    /// Overrides the outcome derived from the status (e.g. `noop`).
    outcome: Option<Outcome>,
    /// Snapshot version concerned, when not in the path.
    version: Option<u64>,
    /// What happened, in a few words.
    detail: Option<String>,
}

impl AuditNote {
    /// Overrides the outcome derived from the status.
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// The snapshot version concerned, when not in the path.
    #[must_use]
    pub fn version(mut self, version: Option<u64>) -> Self {
        self.version = version;
        self
    }

    /// What happened, in a few words.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Attaches the note to a response.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// The middleware; see the module documentation.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = RequestId::of(&request);
    let (mut parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let matched = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map(|params| {
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    parts.extensions.insert(request_id.clone());
    let request = Request::from_parts(parts, body);

    let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            error!(method = %method, path = %path, request_id = %request_id, "handler panicked");
            Problem::internal("internal-error", "internal error").into_response()
        }
    };
    let mut response = as_problem(response, &path, &request_id).await;
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    // Responses carry aggregate state, snapshot contents or who may do what: no cache (browser,
    // proxy or CDN) may keep them.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));

    let status = response.status();
    info!(method = %method, path = %path, status = status.as_u16(), request_id = %request_id,
        duration_ms = snapshot_core::clock::millis(started.elapsed()), "request");
    if matched.as_deref() != Some(HEALTH) {
        audit_record(&method, matched.as_deref(), &params, &response, &request_id)
            .took(started.elapsed())
            .emit();
    }
    response
}

fn audit_record(
    method: &Method,
    matched: Option<&str>,
    params: &[(String, String)],
    response: &Response,
    request_id: &RequestId,
) -> AuditRecord {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let actor = response
        .extensions()
        .get::<Actor>()
        .map(|a| a.id.clone())
        .or_else(|| {
            response
                .extensions()
                .get::<RefusedCaller>()
                .map(|c| c.0.clone())
        })
        .unwrap_or_else(|| "anonymous".to_owned());
    let note = response
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let status = response.status();
    let outcome = note.outcome.unwrap_or(match status {
        s if s.is_success() => Outcome::Success,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Denied,
        s if s.is_client_error() => Outcome::Rejected,
        _ => Outcome::Failure,
    });
    let action = matched
        .and_then(|m| action_for(method, m))
        .unwrap_or(if matched.is_some() {
            "admin.method-not-allowed"
        } else {
            "admin.unknown-route"
        });
    let mut record = AuditRecord::new(actor, action, outcome)
        .http_method(method.as_str())
        .request(Some(request_id.to_string()));
    if let Some(actor) = response.extensions().get::<Actor>() {
        record = record.identity(
            actor.issuer.clone(),
            actor.subject.clone(),
            Some(actor.method.as_str()),
        );
    }
    if let Some(aggregate_id) = param("aggregateId") {
        let version = note
            .version
            .or_else(|| param("version").and_then(|v| v.parse().ok()));
        record = record.aggregate(aggregate_id, version);
    }
    let detail = note.detail.or_else(|| {
        response
            .extensions()
            .get::<Problem>()
            .map(|p| format!("{} {}: {}", status.as_u16(), p.kind(), p.log_detail()))
    });
    if let Some(detail) = detail {
        record = record.detail(detail);
    }
    record
}

/// Renders problems with `instance` and `requestId`, and replaces any other error body (the
/// framework's plain-text or empty ones) with a problem, keeping headers such as `Allow`.
async fn as_problem(response: Response, path: &str, request_id: &RequestId) -> Response {
    let status = response.status();
    let problem = response.extensions().get::<Problem>().cloned();
    if problem.is_none() && !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut problem = match problem {
        Some(problem) => problem,
        None => {
            let text = axum::body::to_bytes(body, MAX_FRAMEWORK_BODY)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let mut problem = Problem::from_status(status, &text);
            if status == StatusCode::METHOD_NOT_ALLOWED {
                if let Some(allow) = parts
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                {
                    problem = problem
                        .with_detail(format!("this route accepts {allow}"))
                        .with("allow", allow);
                }
            }
            problem
        }
    };
    problem = problem
        .or_instance(path)
        .with("requestId", request_id.to_string());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.extensions.insert(problem.clone());
    Response::from_parts(parts, Body::from(problem.body().to_string()))
}
