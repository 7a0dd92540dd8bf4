//! The access matrix: no identity, non-admin, admin via group, scope or IAM (API Gateway
//! request context with a verified bearer token), and the local dev token.

mod common;

use admin_api::{AccessPolicy, Authenticator, DevToken};
use axum::http::{header, Method, Request, StatusCode};
use common::{admin, anonymous, send, Reply, TestApp, TOKEN};
use lambda_http::request::LambdaRequest;
use serde_json::{json, Value};

const CREATE: &str = include_str!("../../../events/admin-api/create.json");

/// The create sample with `authorizer` replaced (`None`: no authorizer at all), and a bearer
/// token of the test issuer saying what a JWT context says.
async fn create_as(app: &TestApp, authorizer: Option<Value>) -> Reply {
    let mut event: Value = serde_json::from_str(CREATE).unwrap();
    let context = event["requestContext"].as_object_mut().unwrap();
    match authorizer {
        Some(authorizer) => context.insert("authorizer".into(), authorizer),
        None => context.remove("authorizer"),
    };
    common::tokens::authorize_event(&mut event);
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    send(&app.router, lambda_http::Request::from(request)).await
}

fn jwt(claims: Value) -> Option<Value> {
    Some(json!({ "jwt": { "claims": claims, "scopes": null } }))
}

fn iam(user_arn: &str) -> Option<Value> {
    Some(json!({ "iam": {
        "accessKey": "AKIAEXAMPLE", "accountId": "123456789012", "callerId": "AIDAEXAMPLE",
        "principalOrgId": null, "userArn": user_arn, "userId": "AIDAEXAMPLE"
    }}))
}

async fn app_with_item() -> TestApp {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 2).await;
    app
}

#[tokio::test]
async fn no_identity_is_401_with_a_bearer_challenge() {
    let app = app_with_item().await;
    let reply = create_as(&app, None).await;
    assert_eq!(reply.problem(StatusCode::UNAUTHORIZED), "unauthenticated");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    let empty = create_as(&app, Some(json!({}))).await;
    assert_eq!(empty.problem(StatusCode::UNAUTHORIZED), "unauthenticated");
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn a_jwt_without_the_admin_group_or_scope_is_403() {
    let app = app_with_item().await;
    let reply = create_as(
        &app,
        jwt(json!({"sub": "u-2", "cognito:groups": "[operators snapshot-admins-readonly]", "scope": "openid profile"})),
    )
    .await;
    assert_eq!(reply.problem(StatusCode::FORBIDDEN), "forbidden");
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn admin_group_is_accepted_in_every_claim_format() {
    for groups in [
        "[snapshot-admins]",
        "[operators snapshot-admins]",
        r#"["operators","snapshot-admins"]"#,
        "snapshot-admins",
    ] {
        let app = app_with_item().await;
        let reply = create_as(
            &app,
            jwt(json!({"cognito:username": "alice", "cognito:groups": groups})),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{groups}: {}",
            reply.body
        );
        assert_eq!(reply.body["snapshot"]["metadata"]["createdBy"], "alice");
    }
}

#[tokio::test]
async fn look_alike_groups_grant_nothing() {
    // Parsed exactly: no comma splitting, no quote stripping, no substring match.
    for groups in [
        "operators,snapshot-admins",
        "[operators,snapshot-admins]",
        r#"["operators,snapshot-admins"]"#,
        r#""snapshot-admins""#,
        "snapshot-admins-readonly",
        "[snapshot-admins2]",
    ] {
        let app = app_with_item().await;
        let reply = create_as(
            &app,
            jwt(json!({"cognito:username": "mallory", "cognito:groups": groups})),
        )
        .await;
        assert_eq!(
            reply.problem(StatusCode::FORBIDDEN),
            "forbidden",
            "{groups}"
        );
        assert!(app.snapshots.keys().is_empty());
    }
}

#[tokio::test]
async fn admin_scope_is_accepted_from_the_tokens_scope_claim() {
    // A client-credentials token: Cognito sets `sub` to the client id.
    let app = app_with_item().await;
    let claims = json!({"sub": "ops-cli", "client_id": common::tokens::CLIENT_ID,
        "scope": "openid snapshots/admin"});
    let reply = create_as(&app, jwt(claims)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["snapshot"]["metadata"]["createdBy"], "ops-cli");

    // Only the verified token counts: a `scopes` list in the context alone grants nothing.
    let app = app_with_item().await;
    let listed =
        Some(json!({ "jwt": { "claims": {"sub": "svc"}, "scopes": ["snapshots/admin"] } }));
    let reply = create_as(&app, listed).await;
    assert_eq!(reply.problem(StatusCode::FORBIDDEN), "forbidden");
}

#[tokio::test]
async fn scopes_grant_nothing_when_no_admin_scope_is_configured() {
    let app = TestApp::with_authenticator(Authenticator::gateway(
        AccessPolicy::default(),
        common::tokens::verifier(),
    ));
    app.seed_item("item-0001", 2).await;
    let reply = create_as(&app, jwt(json!({"sub": "svc", "scope": "snapshots/admin"}))).await;
    assert_eq!(reply.problem(StatusCode::FORBIDDEN), "forbidden");
}

#[tokio::test]
async fn listed_iam_principals_are_admins_and_others_are_403() {
    let app = app_with_item().await;
    let exact = create_as(&app, iam("arn:aws:iam::123456789012:user/ops-admin")).await;
    assert_eq!(exact.status, StatusCode::CREATED, "{}", exact.body);
    assert_eq!(
        exact.body["snapshot"]["metadata"]["createdBy"],
        "arn:aws:iam::123456789012:user/ops-admin"
    );

    let app = app_with_item().await;
    let session = create_as(
        &app,
        iam("arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/bob"),
    )
    .await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);

    for arn in [
        "arn:aws:iam::123456789012:user/ops-admin2",
        "arn:aws:sts::123456789012:assumed-role/SnapshotAdminX/bob",
        "arn:aws:iam::999999999999:user/ops-admin",
    ] {
        let reply = create_as(&app, iam(arn)).await;
        assert_eq!(reply.problem(StatusCode::FORBIDDEN), "forbidden", "{arn}");
    }
}

#[tokio::test]
async fn refused_callers_are_audited_as_denied_with_their_identity() {
    let app = app_with_item().await;
    let audit = common::AuditCapture::start();
    create_as(&app, iam("arn:aws:iam::123456789012:user/intruder")).await;
    let records = audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["actor"],
        "arn:aws:iam::123456789012:user/intruder"
    );
    assert_eq!(records[0]["outcome"], "denied");
    assert_eq!(records[0]["action"], "snapshot.create");
    assert_eq!(records[0]["requestId"], "req-create-0001");
}

#[tokio::test]
async fn local_token_right_is_admin_and_wrong_or_missing_is_401() {
    let app = TestApp::new();
    app.seed_item("item-1", 2).await;
    let right = app
        .send(admin(Method::GET, "/admin/snapshots/item-1"))
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);

    for authorization in [
        Some(format!("Bearer {TOKEN}x")),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        None,
    ] {
        let mut request = anonymous(Method::GET, "/admin/snapshots/item-1");
        if let Some(value) = &authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.parse().unwrap());
        }
        let reply = app.send(request).await;
        assert_eq!(
            reply.problem(StatusCode::UNAUTHORIZED),
            "unauthenticated",
            "{authorization:?}"
        );
    }
    let lowercase_scheme = Request::builder()
        .uri("/admin/snapshots/item-1")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(lowercase_scheme).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_bearer_token_grants_nothing_without_a_dev_token_configured() {
    let app = TestApp::lambda();
    app.seed_item("item-1", 2).await;
    let reply = app
        .send(admin(Method::GET, "/admin/snapshots/item-1"))
        .await;
    assert_eq!(reply.problem(StatusCode::UNAUTHORIZED), "unauthenticated");
}

#[tokio::test]
async fn unknown_routes_are_refused_before_they_are_revealed() {
    let app = TestApp::new();
    let reply = app.send(anonymous(Method::GET, "/admin/secret")).await;
    assert_eq!(reply.problem(StatusCode::UNAUTHORIZED), "unauthenticated");
    let reply = app
        .send(anonymous(Method::PATCH, "/admin/snapshots/item-1"))
        .await;
    assert_eq!(reply.problem(StatusCode::UNAUTHORIZED), "unauthenticated");
}

#[test]
fn access_policy_reads_env_with_defaults_and_rejects_non_arns() {
    let policy = AccessPolicy::from_lookup(|_| None).unwrap();
    assert_eq!(policy, AccessPolicy::default());
    assert_eq!(policy.admin_group, "snapshot-admins");
    assert_eq!(policy.admin_scope, None);
    assert!(policy.admin_principals.is_empty());

    let policy = AccessPolicy::from_lookup(|name| match name {
        "ADMIN_GROUP" => Some("ops".into()),
        "ADMIN_SCOPE" => Some("api/admin".into()),
        "ADMIN_PRINCIPALS" => {
            Some(" arn:aws:iam::111111111111:user/a ,, arn:aws:iam::111111111111:role/b ".into())
        }
        _ => None,
    })
    .unwrap();
    assert_eq!(policy.admin_group, "ops");
    assert_eq!(policy.admin_scope.as_deref(), Some("api/admin"));
    assert_eq!(
        policy.admin_principals,
        vec![
            "arn:aws:iam::111111111111:user/a",
            "arn:aws:iam::111111111111:role/b"
        ]
    );

    for bad in [
        "alice",
        "*",
        "arn:aws:iam::111111111111:user/a,bob",
        "arn:*",
        "arn:aws:iam::*",
    ] {
        let err =
            AccessPolicy::from_lookup(|name| (name == "ADMIN_PRINCIPALS").then(|| bad.to_owned()))
                .unwrap_err();
        assert_eq!(err.variable, "ADMIN_PRINCIPALS", "{bad}");
    }
    let err =
        AccessPolicy::from_lookup(|name| (name == "ADMIN_GROUP").then(|| " ".into())).unwrap_err();
    assert_eq!(err.variable, "ADMIN_GROUP");
}

#[test]
fn dev_tokens_never_match_blank_and_only_match_exactly() {
    assert!(DevToken::new("").is_none());
    assert!(DevToken::new("   ").is_none());
    let token = DevToken::new("s3cret").unwrap();
    assert!(token.matches("s3cret"));
    assert!(!token.matches("s3cre"));
    assert!(!token.matches("s3cret "));
    assert!(!format!("{token:?}").contains("s3cret"));
}
