//! The API Gateway HTTP API samples in `events/admin-api/` through the Lambda entry path:
//! deserialised as lambda_http does, converted to an `http::Request`, served by the router.

mod common;

use axum::http::StatusCode;
use common::{send, Reply, TestApp};
use lambda_http::request::LambdaRequest;
use serde_json::json;

const CREATE: &str = include_str!("../../../events/admin-api/create.json");
const LIST: &str = include_str!("../../../events/admin-api/list.json");
const UNAUTHORIZED: &str = include_str!("../../../events/admin-api/unauthorized.json");
const UNSUPPORTED_TYPE: &str = include_str!("../../../events/admin-api/unsupported-type.json");
const CLEANUP: &str = include_str!("../../../events/admin-api/cleanup.json");

/// Serves one API Gateway event the way `lambda_http::run` does, with the bearer token that
/// API Gateway would have forwarded (signed by the test issuer, saying what the JWT context
/// says; IAM and anonymous samples get none).
async fn invoke(app: &TestApp, event: &str) -> Reply {
    let mut event: serde_json::Value = serde_json::from_str(event).unwrap();
    common::tokens::authorize_event(&mut event);
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    assert!(
        matches!(request, LambdaRequest::ApiGatewayV2(_)),
        "samples are HTTP API (v2) events"
    );
    send(&app.router, lambda_http::Request::from(request)).await
}

#[tokio::test]
async fn create_sample_snapshots_as_the_jwt_admin() {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 4).await;
    let reply = invoke(&app, CREATE).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["snapshot"]["version"], 4);
    assert_eq!(reply.body["snapshot"]["metadata"]["createdBy"], "alice");
    // API Gateway's request id is the request id.
    assert_eq!(
        reply.body["snapshot"]["metadata"]["requestId"],
        "req-create-0001"
    );
    assert_eq!(reply.headers["x-request-id"], "req-create-0001");
}

#[tokio::test]
async fn list_sample_lists_as_the_iam_admin() {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 1).await;
    app.snapshot_item("item-0001").await;
    for _ in 0..2 {
        app.append_receipts("item-0001", 1).await;
        app.snapshot_item("item-0001").await;
    }
    let reply = invoke(&app, LIST).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 2, "limit=2");
    assert_eq!(reply.body["items"][0]["version"], 3);
    assert_eq!(reply.body["nextCursor"], "2");
}

#[tokio::test]
async fn unauthorized_sample_is_401_and_changes_nothing() {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 2).await;
    let reply = invoke(&app, UNAUTHORIZED).await;
    assert_eq!(reply.problem(StatusCode::UNAUTHORIZED), "unauthenticated");
    assert_eq!(reply.body["requestId"], "req-unauth-0001");
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn unsupported_type_sample_is_400_listing_the_supported_types() {
    let app = TestApp::lambda();
    let reply = invoke(&app, UNSUPPORTED_TYPE).await;
    assert_eq!(
        reply.problem(StatusCode::BAD_REQUEST),
        "unsupported-aggregate-type"
    );
    assert_eq!(
        reply.body["supportedTypes"],
        json!(["INVENTORY_ITEM", "WAREHOUSE"])
    );
    assert_eq!(
        reply.body["instance"],
        "/admin/snapshots/create/CUSTOMER/customer-0001"
    );
}

#[tokio::test]
async fn cleanup_sample_runs_a_dry_run_for_one_aggregate() {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 1).await;
    app.snapshot_item("item-0001").await;
    for _ in 0..4 {
        app.append_receipts("item-0001", 1).await;
        app.snapshot_item("item-0001").await;
    }
    let reply = invoke(&app, CLEANUP).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["dryRun"], true);
    assert_eq!(reply.body["deleted"], 2);
    assert_eq!(app.snapshots.keys().len(), 5);
}
