//! The operator console: one page, its script and its style sheet, embedded in the binary
//! (no front-end build step) and served without authentication: they hold no data. Every
//! call the page makes goes to the admin routes with the operator's bearer token, under the
//! same checks as any other client.
//!
//! A strict Content-Security-Policy allows only this origin's script, style and API calls: no
//! inline script or style, no framing, no other origin.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};

use crate::route_table;

const INDEX_HTML: &str = include_str!("../console/index.html");
const CONSOLE_JS: &str = include_str!("../console/console.js");
const CONSOLE_CSS: &str = include_str!("../console/console.css");

/// The console's policy: same-origin script, style and fetch; nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/`: the page.
#[utoipa::path(
    get,
    path = route_table::CONSOLE,
    operation_id = "console",
    tag = "console",
    summary = "Operator console page (static; its calls to the admin routes need the bearer token)",
    security(),
    responses((status = 200, description = "HTML page, strict Content-Security-Policy",
        content_type = "text/html"))
)]
pub async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /console/console.js`.
#[utoipa::path(
    get,
    path = route_table::CONSOLE_JS,
    operation_id = "consoleScript",
    tag = "console",
    summary = "Operator console script",
    security(),
    responses((status = 200, description = "JavaScript", content_type = "text/javascript"))
)]
pub async fn script() -> Response {
    asset(CONSOLE_JS, "text/javascript; charset=utf-8")
}

/// `GET /console/console.css`.
#[utoipa::path(
    get,
    path = route_table::CONSOLE_CSS,
    operation_id = "consoleStyle",
    tag = "console",
    summary = "Operator console style sheet",
    security(),
    responses((status = 200, description = "CSS", content_type = "text/css"))
)]
pub async fn style() -> Response {
    asset(CONSOLE_CSS, "text/css; charset=utf-8")
}
