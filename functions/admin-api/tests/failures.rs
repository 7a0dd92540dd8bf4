//! Storage failures and bugs never leak as bare 5xx: a failing store is a 503 problem, a
//! panicking one a 500 problem, and both are audited as failures.

mod common;

use std::sync::Arc;

use admin_api::{router, AppState, Authenticator, DevToken};
use async_trait::async_trait;
use axum::http::{header, Method, StatusCode};
use common::{admin, send, AuditCapture, TOKEN};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::memory::InMemoryEventStore;
use snapshot_core::ports::{Page, PutOutcome, SnapshotStore};
use snapshot_core::snapshot::{
    InvalidMark, SnapshotHeader, SnapshotKey, SnapshotRecord, SnapshotSummary, Stored,
};
use snapshot_core::{AggregateRepository, BackendFailure, Registry, StoreError};

/// A snapshot store that fails every call, by error (of one kind) or by panic.
struct BrokenStore {
    panics: bool,
    failure: BackendFailure,
}

impl BrokenStore {
    fn fail<T>(&self, operation: &'static str) -> Result<T, StoreError> {
        if self.panics {
            panic!("bug in {operation}");
        }
        Err(StoreError::backend_failure_of(
            operation,
            self.failure,
            "connection reset",
        ))
    }
}

#[async_trait]
impl SnapshotStore for BrokenStore {
    async fn put_if_absent(&self, _: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        self.fail("PutItem")
    }
    async fn headers(
        &self,
        _: &str,
        _: Option<u64>,
        _: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError> {
        self.fail("Query")
    }
    async fn records(
        &self,
        _: &str,
        _: Option<u64>,
        _: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        self.fail("Query")
    }
    async fn get(&self, _: &str, _: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        self.fail("GetItem")
    }
    async fn delete(&self, _: &str, _: u64) -> Result<bool, StoreError> {
        self.fail("DeleteItem")
    }
    async fn scan_summaries(
        &self,
        _: u32,
        _: u32,
        _: Option<SnapshotKey>,
        _: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        self.fail("Scan")
    }
    async fn delete_many(&self, _: &[SnapshotKey]) -> Result<usize, StoreError> {
        self.fail("BatchWriteItem")
    }
    async fn mark_invalid(&self, _: &str, _: u64, _: &InvalidMark) -> Result<bool, StoreError> {
        self.fail("UpdateItem")
    }
}

fn app(panics: bool) -> axum::Router {
    app_failing(panics, BackendFailure::Unavailable)
}

fn app_failing(panics: bool, failure: BackendFailure) -> axum::Router {
    // The aggregate exists (its events are readable); only the snapshot store fails.
    let events = InMemoryEventStore::new();
    events.insert_raw(snapshot_core::EventEnvelope {
        aggregate_id: "item-1".into(),
        sequence: 1,
        aggregate_type: "INVENTORY_ITEM".into(),
        event_type: "ItemCreated".into(),
        payload: serde_json::json!({"sku": "SKU-1", "name": "Bolt", "reorderPoint": 0}),
        event_id: "e-1".into(),
        timestamp: 0,
        metadata: None,
    });
    let repository = AggregateRepository::new(
        Arc::new(events),
        BrokenStore { panics, failure },
        SnapshotCodec::default(),
    );
    let state = AppState::new(repository, Registry::builtin(), common::config());
    router(
        state,
        Authenticator::default().with_dev_token(DevToken::new(TOKEN).unwrap()),
    )
}

#[tokio::test]
async fn a_failing_store_is_a_503_problem_without_its_internals() {
    let app = app(false);
    let audit = AuditCapture::start();
    for (method, uri) in [
        (Method::GET, "/admin/snapshots/item-1"),
        (Method::GET, "/admin/snapshots/item-1/latest"),
        (Method::DELETE, "/admin/snapshots/item-1/3"),
        (Method::POST, "/admin/snapshots/cleanup"),
    ] {
        let reply = send(&app, admin(method.clone(), uri)).await;
        assert_eq!(
            reply.problem(StatusCode::SERVICE_UNAVAILABLE),
            "storage-unavailable",
            "{method} {uri}"
        );
        assert!(!reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("connection reset"));
        assert_eq!(reply.headers[header::RETRY_AFTER], "1", "{method} {uri}");
    }
    let records = audit.records();
    assert_eq!(records.len(), 4);
    assert!(
        records.iter().all(|r| r["outcome"] == "failure"),
        "{records:#?}"
    );
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_and_the_router_keeps_serving() {
    let app = app(true);
    let audit = AuditCapture::start();
    let reply = send(&app, admin(Method::GET, "/admin/snapshots/item-1")).await;
    assert_eq!(
        reply.problem(StatusCode::INTERNAL_SERVER_ERROR),
        "internal-error"
    );
    assert!(!reply.body["detail"].as_str().unwrap().contains("bug in"));
    assert_eq!(audit.records()[0]["outcome"], "failure");
    let health = send(&app, common::anonymous(Method::GET, "/health")).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn a_throttled_store_is_a_503_with_retry_after() {
    let app = app_failing(false, BackendFailure::Throttled);
    for uri in ["/admin/snapshots/item-1", "/admin/snapshots/item-1/latest"] {
        let reply = send(&app, admin(Method::GET, uri)).await;
        assert_eq!(
            reply.problem(StatusCode::SERVICE_UNAVAILABLE),
            "storage-throttled",
            "{uri}"
        );
        assert_eq!(reply.headers[header::RETRY_AFTER], "2", "{uri}");
    }
}

#[tokio::test]
async fn a_store_refusing_the_request_is_a_500_without_retry_after() {
    // Access denied or a missing table: retrying cannot help, and it is our fault.
    let app = app_failing(false, BackendFailure::Rejected);
    let reply = send(&app, admin(Method::GET, "/admin/snapshots/item-1")).await;
    assert_eq!(
        reply.problem(StatusCode::INTERNAL_SERVER_ERROR),
        "storage-rejected"
    );
    assert!(reply.headers.get(header::RETRY_AFTER).is_none());
    assert!(!reply.body["detail"]
        .as_str()
        .unwrap()
        .contains("connection reset"));
}

#[tokio::test]
async fn a_500_says_only_a_generic_detail_and_the_request_id() {
    // A stored event whose payload does not fit its type: corrupt data, a 500. Its error text
    // names internals (the field serde missed); the response must not.
    let events = InMemoryEventStore::new();
    for (sequence, event_type, payload) in [
        (
            1,
            "ItemCreated",
            serde_json::json!({"sku": "S", "name": "N", "reorderPoint": 0}),
        ),
        (
            2,
            "ItemReceived",
            serde_json::json!({"quantityX": "secret-internal-shape"}),
        ),
    ] {
        events.insert_raw(snapshot_core::EventEnvelope {
            aggregate_id: "item-9".into(),
            sequence,
            aggregate_type: "INVENTORY_ITEM".into(),
            event_type: event_type.into(),
            payload,
            event_id: format!("e-{sequence}"),
            timestamp: 0,
            metadata: None,
        });
    }
    let repository = AggregateRepository::new(
        Arc::new(events),
        Arc::new(snapshot_core::memory::InMemorySnapshotStore::new()),
        SnapshotCodec::default(),
    );
    let state = AppState::new(repository, Registry::builtin(), common::config());
    let app = router(
        state,
        Authenticator::default().with_dev_token(DevToken::new(TOKEN).unwrap()),
    );
    let audit = AuditCapture::start();
    let reply = send(
        &app,
        admin(Method::GET, "/admin/aggregates/INVENTORY_ITEM/item-9"),
    )
    .await;
    assert_eq!(
        reply.problem(StatusCode::INTERNAL_SERVER_ERROR),
        "unusable-event"
    );
    assert_eq!(reply.body["detail"], admin_api::problem::INTERNAL_DETAIL);
    let request_id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(reply.body["requestId"], request_id);
    let text = reply.body.to_string();
    for internal in [
        "quantity",
        "secret-internal-shape",
        "missing field",
        "sequence 2",
    ] {
        assert!(!text.contains(internal), "{internal} leaked: {text}");
    }
    // The audit record keeps what went wrong, for the operators.
    let records = audit.records();
    let detail = records[0]["detail"].as_str().unwrap();
    assert!(detail.contains("item-9"), "{detail}");
}
