//! The route table: one list ([`ROUTES`]) that the router, the audit trail and the OpenAPI
//! test all read. A leaf: it knows paths and actions, nothing of handlers or middleware.

use axum::http::Method;

/// Liveness check, the only route without authentication.
pub const HEALTH: &str = "/health";
/// The OpenAPI document.
pub const OPENAPI: &str = "/admin/openapi.json";
/// Manual snapshot.
pub const CREATE: &str = "/admin/snapshots/create/{aggregateType}/{aggregateId}";
/// Snapshots of an aggregate, newest first.
pub const LIST: &str = "/admin/snapshots/{aggregateId}";
/// Retention run.
pub const CLEANUP: &str = "/admin/snapshots/cleanup";
/// Newest snapshot of an aggregate.
pub const LATEST: &str = "/admin/snapshots/{aggregateId}/latest";
/// Snapshot against replay comparison.
pub const VERIFY: &str = "/admin/snapshots/{aggregateId}/verify";
/// One snapshot version.
pub const DELETE: &str = "/admin/snapshots/{aggregateId}/{version}";
/// Current state of an aggregate.
pub const AGGREGATE: &str = "/admin/aggregates/{aggregateType}/{aggregateId}";
/// Backfill after a schema change: dry run or start.
pub const BACKFILL: &str = "/admin/backfill";
/// A backfill job's progress.
pub const BACKFILL_STATUS: &str = "/admin/backfill/{jobId}";
/// The operator console's page (static, holds no data; its calls need the token).
pub const CONSOLE: &str = "/console/";
/// The console's script.
pub const CONSOLE_JS: &str = "/console/console.js";
/// The console's style sheet.
pub const CONSOLE_CSS: &str = "/console/console.css";

/// One route: method, path template (axum/OpenAPI syntax) and its audit action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    method: Method,
    path: &'static str,
    action: &'static str,
    admin_only: bool,
}

impl RouteSpec {
    const fn admin(method: Method, path: &'static str, action: &'static str) -> Self {
        Self {
            method,
            path,
            action,
            admin_only: true,
        }
    }

    const fn public(method: Method, path: &'static str, action: &'static str) -> Self {
        Self {
            method,
            path,
            action,
            admin_only: false,
        }
    }

    /// HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Path template, e.g. `/admin/snapshots/{aggregateId}`.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Audit action, e.g. `snapshot.create`.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// False only for the health check.
    pub fn admin_only(&self) -> bool {
        self.admin_only
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
    RouteSpec::admin(Method::GET, OPENAPI, "admin.openapi"),
    RouteSpec::admin(Method::POST, CREATE, "snapshot.create"),
    RouteSpec::admin(Method::GET, LIST, "snapshot.list"),
    RouteSpec::admin(Method::POST, CLEANUP, "snapshot.prune"),
    RouteSpec::admin(Method::GET, LATEST, "snapshot.latest"),
    RouteSpec::admin(Method::POST, VERIFY, "snapshot.verify"),
    RouteSpec::admin(Method::DELETE, DELETE, "snapshot.delete"),
    RouteSpec::admin(Method::GET, AGGREGATE, "aggregate.get"),
    RouteSpec::admin(Method::POST, BACKFILL, "backfill.start"),
    RouteSpec::admin(Method::GET, BACKFILL_STATUS, "backfill.status"),
    RouteSpec::public(Method::GET, CONSOLE, "console.page"),
    RouteSpec::public(Method::GET, CONSOLE_JS, "console.asset"),
    RouteSpec::public(Method::GET, CONSOLE_CSS, "console.asset"),
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
