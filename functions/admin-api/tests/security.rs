//! The security suite: hostile requests in-process (API Gateway events through the Lambda
//! path, with forged tokens behind an admin-looking authorizer context) and black-box (raw
//! HTTP/1.1 over TCP to the local server), and snapshots planted in the store with a valid
//! checksum but no or a wrong MAC. Every figure of the summary line is counted from what the
//! suite sent and received:
//!
//! `security: requests=… forged_tokens_refused=… auth_leaks=0 server_5xx=0 planted_snapshots_used=0`
//!
//! It fails if any request without admin credentials got through (`auth_leaks`), any request
//! produced a 5xx (`server_5xx`), or any reader used a planted snapshot
//! (`planted_snapshots_used`).

mod common;

use std::io::Write as _;
use std::sync::Arc;

use admin_api::{router, AppState, Authenticator, DevToken};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::tokens::{
    self, access_claims, issuer_key, now, rs256_header, sign_hs256, stranger_key, ISSUER,
};
use common::{TestApp, TOKEN};
use lambda_http::request::LambdaRequest;
use serde_json::{json, Value};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::mac::{SnapshotAuthenticator, SnapshotKey, SnapshotKeys};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateRepository, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const CREATE: &str = include_str!("../../../events/admin-api/create.json");
/// What a planted state claims: if any reader used it, a response would show it.
const FORGED_ON_HAND: i64 = 1_000_000;

/// What the suite counted.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    forged_tokens_sent: u64,
    forged_tokens_refused: u64,
    auth_leaks: u64,
    server_5xx: u64,
    planted_snapshots_used: u64,
    failures: Vec<String>,
}

impl Tally {
    /// Records a response to a request made without admin credentials.
    fn unauthorised(&mut self, what: &str, status: StatusCode) {
        self.any(what, status);
        if status.is_success() || status.is_redirection() {
            self.auth_leaks += 1;
            self.failures.push(format!("auth leak: {what} -> {status}"));
        }
    }

    /// Records any response.
    fn any(&mut self, what: &str, status: StatusCode) {
        self.requests += 1;
        if status.is_server_error() {
            self.server_5xx += 1;
            self.failures.push(format!("5xx: {what} -> {status}"));
        }
    }

    fn planted_used(&mut self, what: String) {
        self.planted_snapshots_used += 1;
        self.failures.push(format!("planted snapshot used: {what}"));
    }
}

/// Paths of every admin route, with ordinary ids.
fn admin_routes() -> Vec<(&'static str, String)> {
    vec![
        (
            "POST",
            "/admin/snapshots/create/INVENTORY_ITEM/item-0001".into(),
        ),
        ("GET", "/admin/snapshots/item-0001".into()),
        ("GET", "/admin/snapshots/item-0001?includeState=true".into()),
        ("GET", "/admin/snapshots/item-0001/latest".into()),
        ("POST", "/admin/snapshots/item-0001/verify".into()),
        ("DELETE", "/admin/snapshots/item-0001/2?force=true".into()),
        ("POST", "/admin/snapshots/cleanup".into()),
        ("GET", "/admin/aggregates/INVENTORY_ITEM/item-0001".into()),
        ("GET", "/admin/openapi.json".into()),
        ("POST", "/admin/backfill".into()),
        ("GET", "/admin/backfill/job-1".into()),
    ]
}

/// Ids and query strings an attacker would try (valid URI syntax: API Gateway sends no other).
fn hostile_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "item%00",
        "%27%20OR%201%3D1--",
        "%7B%22%24ne%22%3Anull%7D",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "%E2%80%AE%F0%9F%92%A5",
        "%FF%FE",
        "%20",
        "-1",
        "18446744073709551616",
        "item-0001%2F..%2F..",
        "%25%25%25",
        "%24%7Bjndi%3Aldap%3A%2F%2Fx%7D",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    ids.push("a".repeat(300));
    ids.push("%41".repeat(3000));
    ids
}

fn hostile_paths() -> Vec<(&'static str, String)> {
    let mut paths = Vec::new();
    for id in hostile_ids() {
        for (method, template) in [
            ("POST", "/admin/snapshots/create/INVENTORY_ITEM/{id}"),
            ("POST", "/admin/snapshots/create/{id}/item-0001"),
            ("GET", "/admin/snapshots/{id}"),
            ("GET", "/admin/snapshots/{id}/latest"),
            ("POST", "/admin/snapshots/{id}/verify"),
            ("DELETE", "/admin/snapshots/item-0001/{id}"),
            ("GET", "/admin/aggregates/{id}/item-0001"),
            ("GET", "/admin/aggregates/INVENTORY_ITEM/{id}"),
            ("GET", "/admin/snapshots/item-0001?limit={id}&cursor={id}"),
            ("GET", "/admin/backfill/{id}"),
        ] {
            paths.push((method, template.replace("{id}", &id)));
        }
    }
    paths
}

/// Bodies for the routes that take one.
fn hostile_bodies() -> Vec<(&'static str, String)> {
    vec![
        ("application/json", "{".into()),
        ("application/json", "[]".into()),
        ("application/json", "null".into()),
        (
            "application/json",
            r#"{"dryRun": "yes", "unknown": 1}"#.into(),
        ),
        (
            "application/json",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        ),
        (
            "application/json",
            format!(r#"{{"reason": "{}"}}"#, "x".repeat(20 * 1024)),
        ),
        ("text/plain", "hello".into()),
        ("application/x-www-form-urlencoded", "a=b".into()),
        ("application/json", "\u{0}\u{1}\u{2}".into()),
    ]
}

/// Forged bearer tokens: every way of minting a token without the issuer's key, and the
/// issuer's tokens that must not pass (expired, other issuer, audience or use).
fn forged_tokens() -> Vec<(&'static str, String)> {
    let admin = || access_claims("mallory", json!({"cognito:groups": ["snapshot-admins"]}));
    let signed = |extra: Value| {
        let mut claims = admin();
        tokens::merge(&mut claims, extra);
        tokens::token(&claims)
    };
    let b64 = |v: &Value| {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let valid = tokens::token(&admin());
    let mut parts = valid.split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let mut escalated = admin();
    escalated["cognito:groups"] = json!(["snapshot-admins", "root"]);
    vec![
        (
            "stranger key, issuer kid",
            stranger_key().sign(&rs256_header(&issuer_key().kid), &admin()),
        ),
        (
            "stranger key, own kid",
            stranger_key().sign(&rs256_header(&stranger_key().kid), &admin()),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&admin())
            ),
        ),
        (
            "HS256 keyed with the public key",
            sign_hs256(
                &issuer_key().public_bytes(),
                &json!({"alg": "HS256", "typ": "JWT", "kid": issuer_key().kid}),
                &admin(),
            ),
        ),
        (
            "expired",
            signed(json!({"exp": now() - 120, "iat": now() - 3600})),
        ),
        ("not yet valid", signed(json!({"nbf": now() + 3600}))),
        (
            "other issuer",
            signed(json!({"iss": format!("{ISSUER}-evil")})),
        ),
        ("other client", signed(json!({"client_id": "someone-else"}))),
        ("refresh token use", signed(json!({"token_use": "refresh"}))),
        (
            "payload swapped under a valid signature",
            format!("{header}.{}.{signature}", b64(&escalated)),
        ),
        ("signature stripped", format!("{header}.{}.", b64(&admin()))),
        ("garbage", "not-a-token".into()),
        ("three empty parts", "..".into()),
        (
            "oversized",
            format!("{header}.{}.{signature}", "A".repeat(20 * 1024)),
        ),
    ]
}

/// The admin context API Gateway would pass for `claims` (what a direct invoker forges).
fn admin_context() -> Value {
    json!({
        "sub": "sub-mallory", "iss": ISSUER, "cognito:username": "mallory",
        "cognito:groups": "[snapshot-admins]", "token_use": "access",
        "client_id": tokens::CLIENT_ID,
    })
}

/// An API Gateway v2 event for `method path` with `context` claims (None: no authorizer)
/// and an `Authorization` header.
fn event(
    method: &str,
    path_and_query: &str,
    context: Option<Value>,
    authorization: Option<&str>,
    body: Option<(&str, &str)>,
) -> lambda_http::Request {
    let mut event: Value = serde_json::from_str(CREATE).unwrap();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    event["routeKey"] = json!("$default");
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["routeKey"] = json!("$default");
    event.as_object_mut().unwrap().remove("pathParameters");
    match context {
        Some(claims) => event["requestContext"]["authorizer"]["jwt"]["claims"] = claims,
        None => {
            event["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
        }
    }
    if let Some(value) = authorization {
        event["headers"]["authorization"] = json!(value);
    }
    if let Some((content_type, text)) = body {
        event["headers"]["content-type"] = json!(content_type);
        event["body"] = json!(text);
    }
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    lambda_http::Request::from(request)
}

async fn call<B>(router: &axum::Router, request: Request<B>) -> (StatusCode, Vec<u8>)
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = router.clone().oneshot(request).await.unwrap();
    let received = common::receive(&method, &path, response).await;
    (received.status, received.bytes.to_vec())
}

/// In-process, through the Lambda path: forged tokens, missing and non-admin identities on
/// every route, then hostile paths and bodies as a real admin.
async fn in_process(tally: &mut Tally) {
    let app = TestApp::lambda();
    app.seed_item("item-0001", 3).await;
    let routes = admin_routes();

    for (what, token) in forged_tokens() {
        for (method, path) in &routes {
            let bearer = format!("Bearer {token}");
            let request = event(method, path, Some(admin_context()), Some(&bearer), None);
            let (status, _) = call(&app.router, request).await;
            tally.unauthorised(&format!("forged token ({what}) {method} {path}"), status);
            tally.forged_tokens_sent += 1;
            if status == StatusCode::UNAUTHORIZED {
                tally.forged_tokens_refused += 1;
            }
        }
    }
    // A forged context with no token, no identity at all, a real non-admin.
    let member = access_claims("bob", json!({"cognito:groups": ["operators"]}));
    let member_bearer = format!("Bearer {}", tokens::token(&member));
    let member_context = json!({
        "sub": "sub-bob", "iss": ISSUER, "cognito:username": "bob",
        "cognito:groups": "[operators]", "token_use": "access", "client_id": tokens::CLIENT_ID,
    });
    for (method, path) in routes.iter().cloned().chain(hostile_paths()) {
        for (who, context, bearer) in [
            ("forged context, no token", Some(admin_context()), None),
            ("anonymous", None, None),
            (
                "non-admin",
                Some(member_context.clone()),
                Some(member_bearer.as_str()),
            ),
        ] {
            let request = event(method, &path, context, bearer, None);
            let (status, _) = call(&app.router, request).await;
            tally.unauthorised(&format!("{who} {method} {path}"), status);
        }
    }
    // A real admin sending hostile input: refused with 4xx, never a 5xx.
    let admin = access_claims("alice", json!({"cognito:groups": ["snapshot-admins"]}));
    let bearer = format!("Bearer {}", tokens::token(&admin));
    let context = json!({
        "sub": "sub-alice", "iss": ISSUER, "cognito:username": "alice",
        "cognito:groups": "[snapshot-admins]", "token_use": "access",
        "client_id": tokens::CLIENT_ID,
    });
    for (method, path) in hostile_paths() {
        let request = event(method, &path, Some(context.clone()), Some(&bearer), None);
        let (status, _) = call(&app.router, request).await;
        tally.any(&format!("admin {method} {path}"), status);
    }
    for (content_type, text) in hostile_bodies() {
        for path in ["/admin/snapshots/cleanup", "/admin/backfill"] {
            let request = event(
                "POST",
                path,
                Some(context.clone()),
                Some(&bearer),
                Some((content_type, &text)),
            );
            let (status, _) = call(&app.router, request).await;
            tally.any(&format!("admin POST {path} {content_type}"), status);
        }
    }
}

/// Raw HTTP/1.1 to the local server: returns the status, or None when the server closed the
/// connection without one (hyper does for requests it cannot parse).
async fn raw_http(address: std::net::SocketAddr, request: &[u8]) -> Option<StatusCode> {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let _ = stream.shutdown().await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut reply),
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    let code = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    StatusCode::from_u16(code).ok()
}

/// Black-box: the local server over TCP, with the dev token as the only admin credential.
async fn black_box(tally: &mut Tally) {
    let app = TestApp::new();
    app.seed_item("item-0001", 3).await;
    let listener = admin_api::local::bind(0).await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(admin_api::local::serve(listener, app.router.clone()));

    let request = |method: &str, path: &str, auth: Option<&str>, extra: &str| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}{extra}Connection: close\r\n\r\n"
        )
    };
    let mut plain: Vec<(String, Option<String>, bool)> = Vec::new();
    let wrong_auth = [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
    ];
    for (method, path) in admin_routes().into_iter().chain(hostile_paths()) {
        for auth in &wrong_auth {
            plain.push((request(method, &path, auth.as_deref(), ""), None, false));
        }
        let admin = format!("Bearer {TOKEN}");
        plain.push((
            request(method, &path, Some(&admin), ""),
            Some(path.clone()),
            true,
        ));
    }
    // Malformed requests and smuggling attempts, as an admin and not.
    let admin_header = format!("Authorization: Bearer {TOKEN}\r\n");
    for (text, admin) in [
        ("GET /admin/snapshots/item-0001 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n".to_owned(), false),
        ("GET /admin/snapshots/item-0001 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n".to_owned(), false),
        (format!("POST /admin/snapshots/cleanup HTTP/1.1\r\nHost: x\r\n{admin_header}Content-Type: application/json\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n{{"), true),
        (format!("POST /admin/snapshots/cleanup HTTP/1.1\r\nHost: x\r\n{admin_header}Content-Type: application/json\r\nContent-Length: 40000\r\nConnection: close\r\n\r\n{}", " ".repeat(40_000)), true),
        ("GARBAGE\r\n\r\n".to_owned(), false),
        (format!("GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(70_000)), false),
        (format!("GET /admin/snapshots/item-0001 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(200_000)), false),
        ("GET /health HTTP/1.1\r\nHost: x\r\nx-request-id: \u{7f}\u{1}\r\nConnection: close\r\n\r\n".to_owned(), false),
    ] {
        plain.push((text, None, admin));
    }
    for (text, _, admin) in &plain {
        let Some(status) = raw_http(address, text.as_bytes()).await else {
            // Closed without a response: not a leak, not a 5xx; still a request sent.
            tally.requests += 1;
            continue;
        };
        let what = text
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(120)
            .collect::<String>();
        let health = what.starts_with("GET /health");
        if *admin || health {
            tally.any(&format!("black-box {what}"), status);
        } else {
            tally.unauthorised(&format!("black-box {what}"), status);
        }
    }
    server.abort();
}

/// Snapshots planted with a valid checksum but no MAC, or a MAC under the right key id made
/// with another secret: no reader (repository load, newest-valid walk behind `latest`, the
/// state route, listing with states, verify) may use them.
async fn planted(tally: &mut Tally) {
    let events = Arc::new(InMemoryEventStore::new());
    let snapshots = Arc::new(InMemorySnapshotStore::new());
    let codec = SnapshotCodec::default();
    let repository = AggregateRepository::new(Arc::clone(&events), Arc::clone(&snapshots), codec);
    let mut root = AggregateRoot::<InventoryItem>::new("item-plant");
    root.create("SKU-1", "Widget", 2).unwrap();
    for quantity in [5, 7, 11] {
        root.receive(quantity, None).unwrap();
    }
    repository.save(&mut root, None).await.unwrap();
    let true_on_hand = serde_json::to_value(root.state()).unwrap()["onHand"].clone();

    // The attacker knows the key id (it is stored with every MAC) but not the secret.
    let key_id = SnapshotAuthenticator::process_local()
        .keys()
        .current_id()
        .to_owned();
    let attacker = SnapshotCodec::default().with_keys(
        SnapshotKeys::new(SnapshotKey::new(key_id, vec![42; 32]).unwrap(), vec![]).unwrap(),
    );
    let mut planted_versions = Vec::new();
    for (version, strip_mac) in [(2, true), (3, false), (4, true)] {
        let boundary = events
            .read("item-plant", version, Some(version))
            .await
            .unwrap();
        let mut state = serde_json::to_value(root.state()).unwrap();
        state["onHand"] = json!(FORGED_ON_HAND);
        let subject = SnapshotSubject {
            aggregate_id: "item-plant",
            aggregate_type: "INVENTORY_ITEM",
            schema_version: 1,
            version,
            last_event_id: Some(&boundary[0].event_id),
        };
        let mut record = build_snapshot(
            &attacker,
            subject,
            serde_json::to_vec(&state).unwrap(),
            SnapshotMetadata::default(),
            1,
            None,
        )
        .unwrap();
        if strip_mac {
            record.header.mac = None;
        }
        snapshots.put_if_absent(&record).await.unwrap();
        planted_versions.push(version);
    }

    let shows_forged =
        |body: &[u8]| String::from_utf8_lossy(body).contains(&FORGED_ON_HAND.to_string());
    let state = AppState::new(repository, Registry::builtin(), common::config());
    let router = router(
        state,
        Authenticator::default().with_dev_token(DevToken::new(TOKEN).unwrap()),
    );
    let admin = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap()
    };
    for (method, uri) in [
        ("GET", "/admin/aggregates/INVENTORY_ITEM/item-plant"),
        ("GET", "/admin/snapshots/item-plant/latest"),
        ("POST", "/admin/snapshots/item-plant/verify"),
        ("GET", "/admin/snapshots/item-plant?includeState=true"),
    ] {
        let (status, body) = call(&router, admin(method, uri)).await;
        tally.any(&format!("planted {method} {uri}"), status);
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let used = match uri {
            u if u.ends_with("includeState=true") => json["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|item| item["valid"] == true && shows_forged(item.to_string().as_bytes())),
            u if u.ends_with("/verify") => {
                planted_versions
                    .iter()
                    .any(|v| json["snapshotLoad"]["snapshotVersion"] == json!(v))
                    || json["result"] != "match"
            }
            _ => status.is_success() && shows_forged(&body),
        };
        if used {
            tally.planted_used(format!(
                "{method} {uri}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
    }
    // The repository itself, as the application loads.
    let direct = AggregateRepository::new(
        Arc::clone(&events),
        Arc::clone(&snapshots),
        SnapshotCodec::default(),
    );
    let (loaded, report) = direct.load::<InventoryItem>("item-plant").await.unwrap();
    tally.requests += 1;
    if report
        .snapshot_version
        .is_some_and(|v| planted_versions.contains(&v))
        || serde_json::to_value(loaded.state()).unwrap()["onHand"] != true_on_hand
    {
        tally.planted_used(format!("repository load: {report:?}"));
    }
    // Each was marked invalid by the first reader that met it.
    for version in planted_versions {
        let stored = snapshots.get("item-plant", version).await.unwrap().unwrap();
        assert!(
            stored.header.invalid.is_some(),
            "planted snapshot {version} was not marked invalid"
        );
    }
}

#[tokio::test]
async fn hostile_requests_forged_tokens_and_planted_snapshots() {
    let mut tally = Tally::default();
    in_process(&mut tally).await;
    black_box(&mut tally).await;
    planted(&mut tally).await;

    let line = format!(
        "security: requests={} forged_tokens_refused={} auth_leaks={} server_5xx={} planted_snapshots_used={}",
        tally.requests,
        tally.forged_tokens_refused,
        tally.auth_leaks,
        tally.server_5xx,
        tally.planted_snapshots_used
    );
    // Straight to the process's stderr (not the test harness's capture): the line shows in
    // every `cargo test` run.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    assert!(tally.failures.is_empty(), "{line}\n{:#?}", tally.failures);
    assert_eq!(tally.auth_leaks, 0, "{line}");
    assert_eq!(tally.server_5xx, 0, "{line}");
    assert_eq!(tally.planted_snapshots_used, 0, "{line}");
    assert_eq!(
        tally.forged_tokens_refused, tally.forged_tokens_sent,
        "every forged token is refused with 401: {line}"
    );
    assert!(tally.forged_tokens_sent >= 14 * 11, "{line}");
    assert!(tally.requests > 1000, "{line}");
}
