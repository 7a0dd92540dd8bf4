//! Bearer tokens verified inside the function, against a JWKS generated in the test: forged,
//! expired, misdirected and mis-signed tokens are refused even with an admin authorizer
//! context, and a context that disagrees with its token is refused.

mod common;

use std::sync::Arc;

use admin_api::auth::jwks::{HttpJwks, JwksCache};
use admin_api::auth::{TokenError, TokenVerifier};
use admin_api::{Authenticator, PROBLEM_JSON};
use axum::http::{header, StatusCode};
use common::tokens::{
    self, access_claims, issuer_key, now, rs256_header, sign_hs256, signing_input, stranger_key,
    LocalJwks, SigningKey, CLIENT_ID, ISSUER,
};
use common::{send, Reply, TestApp};
use lambda_http::request::LambdaRequest;
use serde_json::{json, Value};

const CREATE: &str = include_str!("../../../events/admin-api/create.json");

fn admin_claims(extra: Value) -> Value {
    access_claims("alice", {
        let mut extra = extra;
        if extra.get("cognito:groups").is_none() {
            tokens::merge(&mut extra, json!({"cognito:groups": ["snapshot-admins"]}));
        }
        extra
    })
}

/// The create sample with an admin JWT context and `authorization` as the bearer token.
async fn create_with(app: &TestApp, context_claims: Value, authorization: Option<String>) -> Reply {
    let mut event: Value = serde_json::from_str(CREATE).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["claims"] = context_claims;
    if let Some(value) = authorization {
        event["headers"]["authorization"] = Value::from(value);
    }
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    send(&app.router, lambda_http::Request::from(request)).await
}

/// The admin context API Gateway would pass for `claims`.
fn context_of(claims: &Value) -> Value {
    let mut context = json!({});
    for key in ["sub", "iss", "cognito:username", "token_use", "client_id"] {
        if let Some(v) = claims.get(key) {
            context[key] = v.clone();
        }
    }
    if let Some(groups) = claims.get("cognito:groups").and_then(Value::as_array) {
        let names: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
        context["cognito:groups"] = Value::from(format!("[{}]", names.join(" ")));
    }
    context
}

async fn app() -> TestApp {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 2).await;
    app
}

async fn refused(token: String, claims: &Value) -> Reply {
    let app = app().await;
    let reply = create_with(&app, context_of(claims), Some(format!("Bearer {token}"))).await;
    assert!(
        app.snapshots.keys().is_empty(),
        "a refused call wrote a snapshot"
    );
    reply
}

fn assert_401(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        reply.body
    );
    assert_eq!(reply.content_type(), PROBLEM_JSON, "{what}");
    assert_eq!(
        reply.body["type"],
        "urn:inventory-snapshots:problem:unauthenticated"
    );
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn a_valid_admin_token_with_an_agreeing_context_is_admitted_and_audited() {
    let app = app().await;
    let audit = common::AuditCapture::start();
    let claims = admin_claims(json!({}));
    let reply = create_with(
        &app,
        context_of(&claims),
        Some(format!("Bearer {}", tokens::token(&claims))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let records = audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["issuer"], ISSUER);
    assert_eq!(records[0]["subject"], "sub-alice");
    assert_eq!(records[0]["authMethod"], "jwtGroup");
    assert_eq!(records[0]["httpMethod"], "POST");
}

#[tokio::test]
async fn a_forged_context_without_a_token_is_refused() {
    let app = app().await;
    let reply = create_with(&app, context_of(&admin_claims(json!({}))), None).await;
    assert_401(&reply, "no token");
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let expired = admin_claims(json!({"exp": now() - 120, "iat": now() - 900}));
    assert_401(&refused(tokens::token(&expired), &expired).await, "expired");
    let early = admin_claims(json!({"nbf": now() + 600}));
    assert_401(&refused(tokens::token(&early), &early).await, "nbf");
    let no_exp = admin_claims(json!({"exp": null}));
    assert_401(&refused(tokens::token(&no_exp), &no_exp).await, "no exp");
}

#[tokio::test]
async fn tokens_of_another_issuer_audience_or_use_are_refused() {
    let issuer =
        admin_claims(json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"}));
    assert_401(&refused(tokens::token(&issuer), &issuer).await, "issuer");
    let audience = admin_claims(json!({"client_id": "another-app"}));
    assert_401(
        &refused(tokens::token(&audience), &audience).await,
        "client_id",
    );
    let id_token_for_another_app =
        admin_claims(json!({"token_use": "id", "aud": "another-app", "client_id": null}));
    assert_401(
        &refused(
            tokens::token(&id_token_for_another_app),
            &id_token_for_another_app,
        )
        .await,
        "aud",
    );
    let refresh = admin_claims(json!({"token_use": "refresh"}));
    assert_401(
        &refused(tokens::token(&refresh), &refresh).await,
        "token_use",
    );
}

#[tokio::test]
async fn an_id_token_for_our_client_is_accepted() {
    let app = app().await;
    let claims = admin_claims(json!({"token_use": "id", "aud": CLIENT_ID, "client_id": null}));
    let reply = create_with(
        &app,
        context_of(&claims),
        Some(format!("Bearer {}", tokens::token(&claims))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn alg_none_and_hs256_keyed_with_the_public_key_are_refused() {
    let claims = admin_claims(json!({}));
    let none = format!(
        "{}.",
        signing_input(
            &json!({"alg": "none", "typ": "JWT", "kid": issuer_key().kid}),
            &claims
        )
    );
    assert_401(&refused(none, &claims).await, "alg none");

    let hs256_header = json!({"alg": "HS256", "typ": "JWT", "kid": issuer_key().kid});
    for secret in [
        issuer_key().public_bytes(),
        issuer_key().jwk().to_string().into_bytes(),
    ] {
        let forged = sign_hs256(&secret, &hs256_header, &claims);
        assert_401(&refused(forged, &claims).await, "HS256 with the public key");
    }
}

#[tokio::test]
async fn tokens_signed_by_an_unknown_key_or_tampered_are_refused() {
    let claims = admin_claims(json!({}));
    let unknown_kid = stranger_key().sign(&rs256_header(&stranger_key().kid), &claims);
    assert_401(&refused(unknown_kid, &claims).await, "unknown kid");
    // A stranger's signature under our key id.
    let wrong_key = stranger_key().sign(&rs256_header(&issuer_key().kid), &claims);
    assert_401(&refused(wrong_key, &claims).await, "wrong key");
    // Our signature, then the payload swapped for one with more rights.
    let plain = access_claims("alice", json!({"cognito:groups": ["operators"]}));
    let signed = tokens::token(&plain);
    let parts: Vec<&str> = signed.split('.').collect();
    let promoted = signing_input(&rs256_header(&issuer_key().kid), &claims);
    let tampered = format!("{promoted}.{}", parts[2]);
    assert_401(&refused(tampered, &claims).await, "tampered payload");
    for junk in ["", "a.b", "a.b.c", "Bearer", &"x".repeat(20_000)] {
        assert_401(&refused(junk.to_owned(), &claims).await, "junk");
    }
}

#[tokio::test]
async fn a_context_that_disagrees_with_its_token_is_refused() {
    // A real non-admin token with a context claiming the admin group.
    let claims = access_claims("bob", json!({"cognito:groups": ["operators"]}));
    let token = tokens::token(&claims);
    let mut context = context_of(&claims);
    context["cognito:groups"] = json!("[snapshot-admins]");
    let app = app().await;
    let reply = create_with(&app, context, Some(format!("Bearer {token}"))).await;
    assert_401(&reply, "groups differ");

    // Another subject in the context than in the token.
    let admin = admin_claims(json!({}));
    let mut context = context_of(&admin);
    context["sub"] = json!("sub-someone-else");
    let reply = create_with(
        &app,
        context,
        Some(format!("Bearer {}", tokens::token(&admin))),
    )
    .await;
    assert_401(&reply, "sub differs");
    assert!(app.snapshots.keys().is_empty());

    // The verified non-admin token with an honest context: 403, not admin.
    let reply = create_with(&app, context_of(&claims), Some(format!("Bearer {token}"))).await;
    assert_eq!(reply.problem(StatusCode::FORBIDDEN), "forbidden");
}

#[tokio::test]
async fn keys_are_fetched_once_and_again_only_for_an_unknown_kid() {
    let rotated = SigningKey::generate("test-key-2");
    let jwks = LocalJwks::of(&[issuer_key()]);
    let verifier = tokens::verifier_with(jwks.clone());
    let claims = admin_claims(json!({}));
    for _ in 0..3 {
        verifier.verify(&tokens::token(&claims)).await.unwrap();
    }
    assert_eq!(jwks.fetches(), 1, "cached after the first fetch");

    // The issuer rotates: a token under the new kid triggers one refresh and verifies.
    jwks.publish(&[issuer_key(), &rotated]);
    let new_token = rotated.sign(&rs256_header(&rotated.kid), &claims);
    verifier.verify(&new_token).await.unwrap();
    assert_eq!(jwks.fetches(), 2);
    verifier.verify(&new_token).await.unwrap();
    assert_eq!(jwks.fetches(), 2);

    // A kid nobody publishes: one refresh, then refused.
    let unknown = stranger_key().sign(&rs256_header(&stranger_key().kid), &claims);
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(TokenError::UnknownKey)
    ));
    assert_eq!(jwks.fetches(), 3);
}

#[tokio::test]
async fn unknown_kids_cannot_force_a_fetch_per_request() {
    let jwks = LocalJwks::of(&[issuer_key()]);
    let verifier = TokenVerifier::with_keys(
        tokens::settings(),
        JwksCache::new(jwks.clone()), // the default minimum refresh interval
    );
    let claims = admin_claims(json!({}));
    verifier.verify(&tokens::token(&claims)).await.unwrap();
    for i in 0..20 {
        let forged = stranger_key().sign(&rs256_header(&format!("random-{i}")), &claims);
        assert!(verifier.verify(&forged).await.is_err());
    }
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn the_jwks_is_fetched_over_http_from_the_issuer() {
    // A real HTTP JWKS endpoint on loopback (https is required for any other host).
    let document = tokens::jwks(&[issuer_key()]);
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let source = HttpJwks::new(&url).unwrap();
    let verifier = TokenVerifier::with_keys(tokens::settings(), JwksCache::new(source));
    let app = TestApp::with_authenticator(Authenticator::gateway(common::policy(), verifier));
    app.seed_item("item-0001", 2).await;
    let claims = admin_claims(json!({}));
    for _ in 0..2 {
        let reply = create_with(
            &app,
            context_of(&claims),
            Some(format!("Bearer {}", tokens::token(&claims))),
        )
        .await;
        assert!(
            reply.status.is_success() || reply.status == StatusCode::CONFLICT,
            "{}",
            reply.body
        );
    }
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

    assert!(HttpJwks::new("http://issuer.example.com/jwks.json").is_err());
    assert!(HttpJwks::new("https://issuer.example.com/jwks.json").is_ok());
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_not_a_pass() {
    let source = HttpJwks::new("http://127.0.0.1:9/.well-known/jwks.json").unwrap();
    let verifier = TokenVerifier::with_keys(tokens::settings(), JwksCache::new(source));
    let app = TestApp::with_authenticator(Authenticator::gateway(common::policy(), verifier));
    app.seed_item("item-0001", 2).await;
    let claims = admin_claims(json!({}));
    let reply = create_with(
        &app,
        context_of(&claims),
        Some(format!("Bearer {}", tokens::token(&claims))),
    )
    .await;
    assert_eq!(
        reply.problem(StatusCode::SERVICE_UNAVAILABLE),
        "token-verification-unavailable"
    );
    assert!(app.snapshots.keys().is_empty());
}

#[test]
fn issuer_settings_are_required_and_checked() {
    use admin_api::auth::IssuerSettings;
    let err = IssuerSettings::from_lookup(|_| None).unwrap_err();
    assert_eq!(err.variable, "JWT_ISSUER");
    let err =
        IssuerSettings::from_lookup(|n| (n == "JWT_ISSUER").then(|| ISSUER.into())).unwrap_err();
    assert_eq!(err.variable, "JWT_AUDIENCE");
    let err = IssuerSettings::from_lookup(|n| match n {
        "JWT_ISSUER" => Some("http://issuer.example.com".into()),
        "JWT_AUDIENCE" => Some("a".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(err.variable, "JWT_ISSUER");
    let ok = IssuerSettings::from_lookup(|n| match n {
        "JWT_ISSUER" => Some(format!("{ISSUER}/")),
        "JWT_AUDIENCE" => Some(" a , b ".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(ok.issuer, ISSUER);
    assert_eq!(ok.audiences, ["a", "b"]);
    assert_eq!(ok.token_uses, ["access", "id"]);
    assert_eq!(ok.jwks_url, format!("{ISSUER}/.well-known/jwks.json"));
}
