//! Helpers of the in-process tests: the router on in-memory stores, seeded aggregates,
//! requests as an admin, and captured audit records ([`AuditCapture`], shared with the
//! snapshotter's tests). Every response a test reads goes through [`receive`], which holds it
//! to the OpenAPI document ([`contract`]).
#![allow(dead_code)]

pub mod contract;
pub mod tokens;

use std::sync::Arc;

use admin_api::{router, AccessPolicy, AppState, Authenticator, DevToken};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::config::Config;
use snapshot_core::domain::{AggregateRoot, InventoryItem, Warehouse};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{AggregateRepository, Registry};
use tower::ServiceExt;

/// The audit records a test wrote, as the deployed function writes them.
// Not every test binary that includes this module captures audit records.
#[allow(unused_imports)]
pub use snapshot_core::testing::audit::AuditCapture;

pub const TOKEN: &str = "local-dev-token";

pub type Repo = AggregateRepository<Arc<InMemoryEventStore>, Arc<InMemorySnapshotStore>>;

/// The router on fresh in-memory stores, plus a repository on the same stores for seeding.
pub struct TestApp {
    pub router: Router,
    pub events: Arc<InMemoryEventStore>,
    pub snapshots: Arc<InMemorySnapshotStore>,
    pub repo: Repo,
}

pub fn config() -> Config {
    Config::from_lookup(|_| None).unwrap()
}

pub fn policy() -> AccessPolicy {
    AccessPolicy::from_lookup(|name| match name {
        "ADMIN_SCOPE" => Some("snapshots/admin".to_owned()),
        "ADMIN_PRINCIPALS" => Some(
            "arn:aws:iam::123456789012:user/ops-admin, arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/*"
                .to_owned(),
        ),
        _ => None,
    })
    .unwrap()
}

impl TestApp {
    /// Lambda-style authentication (API Gateway context, tokens of the local test issuer)
    /// and the local dev token.
    pub fn new() -> Self {
        Self::with_authenticator(
            Authenticator::gateway(policy(), tokens::verifier())
                .with_dev_token(DevToken::new(TOKEN).unwrap()),
        )
    }

    /// As deployed: only the API Gateway context with a verified token identifies callers.
    pub fn lambda() -> Self {
        Self::with_authenticator(Authenticator::gateway(policy(), tokens::verifier()))
    }

    pub fn with_authenticator(authenticator: Authenticator) -> Self {
        Self::with(authenticator, config())
    }

    /// The dev token, and these settings.
    pub fn with_config(config: Config) -> Self {
        Self::with(
            Authenticator::gateway(policy(), tokens::verifier())
                .with_dev_token(DevToken::new(TOKEN).unwrap()),
            config,
        )
    }

    fn with(authenticator: Authenticator, config: Config) -> Self {
        let events = Arc::new(InMemoryEventStore::new());
        let snapshots = Arc::new(InMemorySnapshotStore::new());
        let codec = SnapshotCodec::default();
        let state = AppState::new(
            // As deployed: plain state reads through the cache of warm states.
            AggregateRepository::new(Arc::clone(&events), Arc::clone(&snapshots), codec.clone())
                .with_state_cache(admin_api::state::state_cache()),
            Registry::builtin(),
            config,
        );
        let repo = AggregateRepository::new(Arc::clone(&events), Arc::clone(&snapshots), codec);
        Self {
            router: router(state, authenticator),
            events,
            snapshots,
            repo,
        }
    }

    /// An inventory item with `events` events in total (created, then receipts of 1..).
    pub async fn seed_item(&self, id: &str, events: u64) {
        let mut root = AggregateRoot::<InventoryItem>::new(id);
        root.create("SKU-1", "Widget", 5).unwrap();
        for quantity in 1..events {
            root.receive(quantity as i64, None).unwrap();
        }
        self.repo.save(&mut root, None).await.unwrap();
    }

    /// Appends `more` receipts of 10 to an existing item.
    pub async fn append_receipts(&self, id: &str, more: u64) {
        let (mut root, _) = self.repo.load::<InventoryItem>(id).await.unwrap();
        for _ in 0..more {
            root.receive(10, None).unwrap();
        }
        self.repo.save(&mut root, None).await.unwrap();
    }

    pub async fn seed_warehouse(&self, id: &str) {
        let mut root = AggregateRoot::<Warehouse>::new(id);
        root.create("Main", 100).unwrap();
        root.add_location("A-1").unwrap();
        self.repo.save(&mut root, None).await.unwrap();
    }

    /// A snapshot of the item at its current version, as the snapshotter would make.
    pub async fn snapshot_item(&self, id: &str) -> u64 {
        let kind = Registry::builtin();
        let kind = kind.get("INVENTORY_ITEM").unwrap();
        let metadata = SnapshotMetadata {
            created_by: "snapshotter".into(),
            reason: "threshold:count".into(),
            request_id: None,
        };
        let (record, _) = self
            .repo
            .snapshot_now(kind.as_ref(), id, metadata, None)
            .await
            .unwrap();
        record.header.version
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        send(&self.router, request).await
    }
}

/// Status, headers and parsed JSON body of a response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json body with this status and returns its `type` slug.
    pub fn problem(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["status"], status.as_u16());
        for member in ["type", "title", "detail", "instance"] {
            assert!(
                self.body[member].is_string(),
                "{member} missing in {}",
                self.body
            );
        }
        self.body["type"]
            .as_str()
            .unwrap()
            .trim_start_matches("urn:inventory-snapshots:problem:")
            .to_owned()
    }
}

/// Status, headers and body bytes of a response, once checked against the OpenAPI document:
/// a status, content type or body it does not describe fails the test.
pub struct Received {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: axum::body::Bytes,
}

/// Reads the response to `method path` (the request's path, without the query) and checks it
/// against the document ([`contract::contract`]).
pub async fn receive(method: &Method, path: &str, response: Response) -> Received {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(broken) = contract::contract().check(method, path, status, content_type, &bytes) {
        panic!("{method} {path} -> {status}: not as the OpenAPI document says: {broken}");
    }
    Received {
        status,
        headers,
        bytes,
    }
}

/// Sends `request` through `router` and reads the response ([`receive`]).
pub async fn send<B>(router: &Router, request: Request<B>) -> Reply
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = router.clone().oneshot(request).await.unwrap();
    let Received {
        status,
        headers,
        bytes,
    } = receive(&method, &path, response).await;
    let text_asset = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/"));
    let body = if bytes.is_empty() {
        Value::Null
    } else if text_asset {
        // The console's page and assets; every API reply must be JSON.
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A request as the local admin (dev token).
pub fn admin(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

/// A request as the local admin with a JSON body.
pub fn admin_json(method: Method, uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub fn anonymous(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}
