//! Every route's success and error paths, in-process on the in-memory stores.

mod common;

use axum::http::{header, Method, StatusCode};
use common::{admin, admin_json, anonymous, TestApp};
use serde_json::json;
use snapshot_core::codec::{SnapshotCodec, StateBody};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};

#[tokio::test]
async fn create_returns_201_with_metadata_then_200_when_that_version_exists() {
    let app = TestApp::new();
    app.seed_item("item-1", 3).await;

    let first = app
        .send(admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-1",
        ))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["outcome"], "created");
    let snapshot = &first.body["snapshot"];
    assert_eq!(snapshot["aggregateId"], "item-1");
    assert_eq!(snapshot["aggregateType"], "INVENTORY_ITEM");
    assert_eq!(snapshot["version"], 3);
    assert_eq!(snapshot["lastEventSequence"], 3);
    assert_eq!(snapshot["encoding"], "json");
    assert_eq!(snapshot["metadata"]["reason"], "manual");
    assert_eq!(snapshot["metadata"]["createdBy"], "local-admin");
    let request_id = first.headers["x-request-id"].to_str().unwrap();
    assert_eq!(snapshot["metadata"]["requestId"], request_id);
    assert!(snapshot.get("state").is_none(), "metadata only");
    let stored = app.snapshots.get("item-1", 3).await.unwrap().unwrap();
    assert_eq!(stored.header.metadata.reason, "manual");

    let again = app
        .send(admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-1",
        ))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["outcome"], "alreadyExists");
    // The stored snapshot is shown, not the copy built by the second call.
    assert_eq!(again.body["snapshot"]["metadata"]["requestId"], request_id);
    assert_eq!(app.snapshots.keys().len(), 1);
}

#[tokio::test]
async fn create_rejects_an_unregistered_type_listing_the_supported_ones() {
    let app = TestApp::new();
    let reply = app
        .send(admin(Method::POST, "/admin/snapshots/create/CUSTOMER/c-1"))
        .await;
    assert_eq!(
        reply.problem(StatusCode::BAD_REQUEST),
        "unsupported-aggregate-type"
    );
    assert_eq!(
        reply.body["supportedTypes"],
        json!(["INVENTORY_ITEM", "WAREHOUSE"])
    );
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains("INVENTORY_ITEM, WAREHOUSE"), "{detail}");
}

#[tokio::test]
async fn create_for_an_aggregate_without_events_is_404() {
    let app = TestApp::new();
    let reply = app
        .send(admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/ghost",
        ))
        .await;
    assert_eq!(reply.problem(StatusCode::NOT_FOUND), "aggregate-not-found");
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn create_under_the_wrong_type_is_409_naming_the_stored_type() {
    let app = TestApp::new();
    app.seed_warehouse("wh-1").await;
    let reply = app
        .send(admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/wh-1",
        ))
        .await;
    assert_eq!(
        reply.problem(StatusCode::CONFLICT),
        "aggregate-type-mismatch"
    );
    assert!(reply.body["detail"]
        .as_str()
        .unwrap()
        .contains("WAREHOUSE/wh-1"));
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn invalid_aggregate_ids_are_400() {
    let app = TestApp::new();
    let too_long = "x".repeat(257);
    for id in [too_long.as_str(), "%07bell", "%20%20"] {
        let reply = app
            .send(admin(
                Method::POST,
                &format!("/admin/snapshots/create/INVENTORY_ITEM/{id}"),
            ))
            .await;
        assert_eq!(
            reply.problem(StatusCode::BAD_REQUEST),
            "invalid-aggregate-id",
            "{id}"
        );
    }
    let longest = "x".repeat(256);
    let reply = app
        .send(admin(Method::GET, &format!("/admin/snapshots/{longest}")))
        .await;
    assert_eq!(reply.problem(StatusCode::NOT_FOUND), "aggregate-not-found");
}

/// An item with snapshots at versions 2, 4 and 6 (7 events).
async fn item_with_three_snapshots(app: &TestApp, id: &str) {
    app.seed_item(id, 2).await;
    app.snapshot_item(id).await;
    app.append_receipts(id, 2).await;
    app.snapshot_item(id).await;
    app.append_receipts(id, 2).await;
    app.snapshot_item(id).await;
    app.append_receipts(id, 1).await;
}

#[tokio::test]
async fn list_is_newest_first_metadata_only_and_paginates() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;

    let first = app
        .send(admin(Method::GET, "/admin/snapshots/item-1?limit=2"))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let versions: Vec<u64> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![6, 4]);
    assert!(first.body["items"][0].get("state").is_none());
    assert_eq!(first.body["nextCursor"], "4");

    let second = app
        .send(admin(
            Method::GET,
            "/admin/snapshots/item-1?limit=2&cursor=4",
        ))
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["items"][0]["version"], 2);
    assert!(second.body.get("nextCursor").is_none());

    let default_page = app
        .send(admin(Method::GET, "/admin/snapshots/item-1"))
        .await;
    assert_eq!(default_page.body["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn list_with_state_decodes_valid_snapshots_and_flags_corrupt_ones() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;
    let mut corrupt = app.snapshots.get("item-1", 4).await.unwrap().unwrap();
    corrupt.state = StateBody::Text(r#"{"id":"item-1","tampered":true}"#.into());
    app.snapshots.overwrite(corrupt);

    let reply = app
        .send(admin(
            Method::GET,
            "/admin/snapshots/item-1?includeState=true",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["version"], 6);
    assert_eq!(items[0]["valid"], true);
    assert_eq!(items[0]["state"]["id"], "item-1");
    assert_eq!(items[0]["state"]["onHand"], 1 + 20 + 20);
    assert_eq!(items[1]["version"], 4);
    assert_eq!(items[1]["valid"], false);
    assert!(items[1].get("state").is_none());
    assert!(items[1]["invalidReason"]
        .as_str()
        .unwrap()
        .contains("checksum mismatch"));
    assert_eq!(items[2]["valid"], true);
}

#[tokio::test]
async fn list_rejects_bad_query_parameters_as_problems() {
    let app = TestApp::new();
    app.seed_item("item-1", 1).await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=abc",
        "cursor=0",
        "includeState=yes",
        "colour=blue",
    ] {
        let reply = app
            .send(admin(
                Method::GET,
                &format!("/admin/snapshots/item-1?{query}"),
            ))
            .await;
        assert_eq!(
            reply.problem(StatusCode::BAD_REQUEST),
            "invalid-query",
            "{query}"
        );
    }
    let reply = app
        .send(admin(Method::GET, "/admin/snapshots/item-1?limit=100"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn list_is_404_for_an_unknown_aggregate_and_empty_for_one_without_snapshots() {
    let app = TestApp::new();
    let unknown = app.send(admin(Method::GET, "/admin/snapshots/ghost")).await;
    assert_eq!(
        unknown.problem(StatusCode::NOT_FOUND),
        "aggregate-not-found"
    );

    app.seed_item("item-1", 2).await;
    let empty = app
        .send(admin(Method::GET, "/admin/snapshots/item-1"))
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["items"], json!([]));
}

#[tokio::test]
async fn latest_returns_the_newest_valid_snapshot_with_state_skipping_invalid_ones() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;
    let mut corrupt = app.snapshots.get("item-1", 6).await.unwrap().unwrap();
    corrupt.header.schema_version = 99;
    app.snapshots.overwrite(corrupt);

    let reply = app
        .send(admin(Method::GET, "/admin/snapshots/item-1/latest"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["version"], 4);
    assert_eq!(reply.body["valid"], true);
    assert_eq!(reply.body["state"]["onHand"], 1 + 20);
    assert_eq!(reply.body["skippedInvalid"], json!([6]));
}

#[tokio::test]
async fn latest_is_404_without_a_valid_snapshot() {
    let app = TestApp::new();
    app.seed_item("item-1", 2).await;
    let none = app
        .send(admin(Method::GET, "/admin/snapshots/item-1/latest"))
        .await;
    assert_eq!(none.problem(StatusCode::NOT_FOUND), "snapshot-not-found");

    app.snapshot_item("item-1").await;
    let mut corrupt = app.snapshots.get("item-1", 2).await.unwrap().unwrap();
    corrupt.header.checksum = "0".repeat(64);
    app.snapshots.overwrite(corrupt);
    let invalid_only = app
        .send(admin(Method::GET, "/admin/snapshots/item-1/latest"))
        .await;
    assert_eq!(
        invalid_only.problem(StatusCode::NOT_FOUND),
        "snapshot-not-found"
    );
    assert!(invalid_only.body["detail"]
        .as_str()
        .unwrap()
        .contains("1 invalid"));
}

#[tokio::test]
async fn verify_reports_match_for_a_faithful_snapshot() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;
    let reply = app
        .send(admin(Method::POST, "/admin/snapshots/item-1/verify"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["result"], "match");
    assert_eq!(reply.body["differences"], json!([]));
    assert_eq!(reply.body["aggregateType"], "INVENTORY_ITEM");
    assert_eq!(reply.body["version"], 7);
    assert_eq!(reply.body["snapshotLoad"]["snapshotVersion"], 6);
    assert_eq!(reply.body["snapshotLoad"]["eventsReplayed"], 1);
    assert_eq!(reply.body["eventsReplayed"], 7);
}

#[tokio::test]
async fn verify_reports_mismatch_with_the_differing_paths() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;
    // A drifted snapshot: well-formed, checksum right, state wrong (as a buggy writer would).
    let latest = app.snapshots.get("item-1", 6).await.unwrap().unwrap();
    let StateBody::Text(text) = &latest.state else {
        panic!("small states are stored as text")
    };
    let mut state: serde_json::Value = serde_json::from_str(text).unwrap();
    state["onHand"] = json!(999);
    state["available"] = json!(999);
    state["reservations"]["ghost-order"] = json!(1);
    let drifted = build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id: "item-1",
            aggregate_type: "INVENTORY_ITEM",
            schema_version: latest.header.schema_version,
            version: 6,
            last_event_id: None,
        },
        serde_json::to_vec(&state).unwrap(),
        SnapshotMetadata::default(),
        0,
        None,
    )
    .unwrap();
    app.snapshots.overwrite(drifted);

    let reply = app
        .send(admin(Method::POST, "/admin/snapshots/item-1/verify"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["result"], "mismatch");
    assert_eq!(
        reply.body["differences"],
        json!(["/available", "/onHand", "/reservations/ghost-order"])
    );
}

#[tokio::test]
async fn verify_of_an_unknown_aggregate_is_404() {
    let app = TestApp::new();
    let reply = app
        .send(admin(Method::POST, "/admin/snapshots/ghost/verify"))
        .await;
    assert_eq!(reply.problem(StatusCode::NOT_FOUND), "aggregate-not-found");
}

#[tokio::test]
async fn delete_refuses_the_only_snapshot_unless_forced() {
    let app = TestApp::new();
    app.seed_item("item-1", 2).await;
    app.snapshot_item("item-1").await;

    let refused = app
        .send(admin(Method::DELETE, "/admin/snapshots/item-1/2"))
        .await;
    assert_eq!(refused.problem(StatusCode::CONFLICT), "only-snapshot");
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("force=true"));
    assert_eq!(app.snapshots.keys().len(), 1);

    let forced = app
        .send(admin(
            Method::DELETE,
            "/admin/snapshots/item-1/2?force=true",
        ))
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.body);
    assert_eq!(forced.body["deleted"], true);
    assert_eq!(forced.body["wasOnlySnapshot"], true);
    assert!(app.snapshots.keys().is_empty());
}

#[tokio::test]
async fn delete_removes_one_of_several_and_404s_when_absent() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;
    let deleted = app
        .send(admin(Method::DELETE, "/admin/snapshots/item-1/4"))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["wasOnlySnapshot"], false);
    let versions: Vec<u64> = app.snapshots.keys().iter().map(|k| k.version).collect();
    assert_eq!(versions, vec![2, 6]);

    let absent = app
        .send(admin(Method::DELETE, "/admin/snapshots/item-1/4"))
        .await;
    assert_eq!(absent.problem(StatusCode::NOT_FOUND), "snapshot-not-found");
}

#[tokio::test]
async fn delete_with_a_malformed_version_or_force_is_400() {
    let app = TestApp::new();
    for uri in [
        "/admin/snapshots/item-1/abc",
        "/admin/snapshots/item-1/-1",
        "/admin/snapshots/item-1/99999999999999999999999",
    ] {
        let reply = app.send(admin(Method::DELETE, uri)).await;
        assert_eq!(
            reply.problem(StatusCode::BAD_REQUEST),
            "invalid-path",
            "{uri}"
        );
    }
    let reply = app
        .send(admin(Method::DELETE, "/admin/snapshots/item-1/2?force=yes"))
        .await;
    assert_eq!(reply.problem(StatusCode::BAD_REQUEST), "invalid-query");
}

/// A warm container answers a second read of an aggregate from its cache of warm states (one
/// read of the newer events); verification still reads the stored snapshot, and deleting a
/// snapshot drops the cached state.
#[tokio::test]
async fn a_second_state_read_comes_from_the_cache_and_verify_never_does() {
    let app = TestApp::new();
    app.seed_item("item-1", 3).await;
    app.snapshot_item("item-1").await;
    let path = "/admin/aggregates/INVENTORY_ITEM/item-1";
    let cold = app.send(admin(Method::GET, path)).await;
    assert_eq!(cold.body["load"]["fromCache"], false);
    app.append_receipts("item-1", 2).await;

    let warm = app.send(admin(Method::GET, path)).await;

    assert_eq!(warm.status, StatusCode::OK, "{}", warm.body);
    assert_eq!(warm.body["version"], 5);
    assert_eq!(warm.body["state"]["onHand"], 1 + 2 + 20);
    assert_eq!(
        warm.body["load"],
        json!({"snapshotVersion": null, "eventsReplayed": 2, "snapshotsSkipped": 0, "roundTrips": 1, "requests": 1, "fromCache": true})
    );
    let verify = app
        .send(admin(Method::POST, "/admin/snapshots/item-1/verify"))
        .await;
    assert_eq!(verify.body["result"], "match", "{}", verify.body);
    assert_eq!(verify.body["snapshotLoad"]["fromCache"], false);
    assert_eq!(verify.body["snapshotLoad"]["snapshotVersion"], 3);

    let deleted = app
        .send(admin(
            Method::DELETE,
            "/admin/snapshots/item-1/3?force=true",
        ))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let after = app.send(admin(Method::GET, path)).await;
    assert_eq!(after.body["load"]["fromCache"], false);
    assert_eq!(after.body["state"]["onHand"], 1 + 2 + 20);
}

#[tokio::test]
async fn aggregate_state_says_how_it_was_loaded() {
    let app = TestApp::new();
    app.seed_item("item-1", 3).await;
    app.snapshot_item("item-1").await;
    app.append_receipts("item-1", 2).await;

    let reply = app
        .send(admin(
            Method::GET,
            "/admin/aggregates/INVENTORY_ITEM/item-1",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["version"], 5);
    assert_eq!(reply.body["state"]["onHand"], 1 + 2 + 20);
    assert_eq!(
        reply.body["load"],
        json!({"snapshotVersion": 3, "eventsReplayed": 2, "snapshotsSkipped": 0, "roundTrips": 1, "requests": 2, "fromCache": false})
    );

    let warehouse = app.seed_warehouse("wh-1");
    warehouse.await;
    let reply = app
        .send(admin(Method::GET, "/admin/aggregates/WAREHOUSE/wh-1"))
        .await;
    assert_eq!(reply.body["state"]["locations"], json!({"A-1": {}}));
    assert_eq!(reply.body["load"]["snapshotVersion"], json!(null));
}

#[tokio::test]
async fn aggregate_state_errors_are_problems() {
    let app = TestApp::new();
    let unknown = app
        .send(admin(Method::GET, "/admin/aggregates/INVENTORY_ITEM/ghost"))
        .await;
    assert_eq!(
        unknown.problem(StatusCode::NOT_FOUND),
        "aggregate-not-found"
    );
    let bad_type = app
        .send(admin(Method::GET, "/admin/aggregates/inventory_item/ghost"))
        .await;
    assert_eq!(
        bad_type.problem(StatusCode::BAD_REQUEST),
        "unsupported-aggregate-type"
    );
}

#[tokio::test]
async fn health_needs_no_authentication_and_touches_no_store() {
    let app = TestApp::new();
    let reply = app.send(anonymous(Method::GET, "/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Open to anyone, so it says nothing about versions or builds.
    assert_eq!(reply.body, json!({ "status": "ok" }));
    assert_eq!(app.events.requests() + app.snapshots.requests(), 0);
}

#[tokio::test]
async fn openapi_document_is_served_to_admins_only() {
    let app = TestApp::new();
    let reply = app.send(admin(Method::GET, "/admin/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    assert_eq!(reply.body["openapi"], "3.1.0");
    let anonymous = app
        .send(anonymous(Method::GET, "/admin/openapi.json"))
        .await;
    assert_eq!(
        anonymous.problem(StatusCode::UNAUTHORIZED),
        "unauthenticated"
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::new();
    let missing = app.send(admin(Method::GET, "/admin/nothing/here")).await;
    assert_eq!(missing.problem(StatusCode::NOT_FOUND), "route-not-found");
    let root = app.send(admin(Method::GET, "/")).await;
    assert_eq!(root.problem(StatusCode::NOT_FOUND), "route-not-found");

    let wrong = app
        .send(admin(Method::PUT, "/admin/snapshots/item-1"))
        .await;
    assert_eq!(
        wrong.problem(StatusCode::METHOD_NOT_ALLOWED),
        "method-not-allowed"
    );
    let allow = wrong.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("GET"), "{allow}");
    assert_eq!(wrong.body["instance"], "/admin/snapshots/item-1");

    let health = app.send(anonymous(Method::POST, "/health")).await;
    assert_eq!(
        health.problem(StatusCode::METHOD_NOT_ALLOWED),
        "method-not-allowed"
    );
}

#[tokio::test]
async fn problems_carry_instance_and_the_request_id() {
    let app = TestApp::new();
    let mut request = admin(Method::GET, "/admin/snapshots/ghost");
    request
        .headers_mut()
        .insert("x-request-id", "trace-123".parse().unwrap());
    let reply = app.send(request).await;
    reply.problem(StatusCode::NOT_FOUND);
    assert_eq!(reply.body["instance"], "/admin/snapshots/ghost");
    assert_eq!(reply.body["requestId"], "trace-123");
    assert_eq!(reply.headers["x-request-id"], "trace-123");
}

#[tokio::test]
async fn every_admin_call_emits_exactly_one_audit_record() {
    let app = TestApp::new();
    app.seed_item("item-1", 2).await;
    let audit = common::AuditCapture::start();

    let created = app
        .send(admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-1",
        ))
        .await;
    let request_id = created.headers["x-request-id"].to_str().unwrap().to_owned();
    app.send(admin(
        Method::POST,
        "/admin/snapshots/create/INVENTORY_ITEM/item-1",
    ))
    .await;
    app.send(admin(Method::DELETE, "/admin/snapshots/item-1/2"))
        .await;
    app.send(anonymous(Method::GET, "/admin/snapshots/item-1"))
        .await;
    app.send(anonymous(Method::GET, "/health")).await;

    let records = audit.records();
    assert_eq!(records.len(), 4, "{records:#?}");
    let created = &records[0];
    assert_eq!(created["actor"], "local-admin");
    assert_eq!(created["action"], "snapshot.create");
    assert_eq!(created["aggregateId"], "item-1");
    assert_eq!(created["version"], 2);
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["requestId"], request_id.as_str());
    assert!(created["durationMs"].is_u64());
    assert_eq!(records[1]["outcome"], "noop");
    assert_eq!(records[2]["action"], "snapshot.delete");
    assert_eq!(records[2]["version"], 2);
    assert_eq!(records[2]["outcome"], "rejected");
    assert!(records[2]["detail"]
        .as_str()
        .unwrap()
        .contains("only-snapshot"));
    assert_eq!(records[3]["actor"], "anonymous");
    assert_eq!(records[3]["action"], "snapshot.list");
    assert_eq!(records[3]["outcome"], "denied");
}

#[tokio::test]
async fn oversized_and_non_json_bodies_are_rejected_as_problems() {
    let app = TestApp::new();
    let big = format!(r#"{{"aggregateId":"{}"}}"#, "x".repeat(17 * 1024));
    let too_large = app
        .send(admin_json(Method::POST, "/admin/snapshots/cleanup", &big))
        .await;
    assert_eq!(
        too_large.problem(StatusCode::PAYLOAD_TOO_LARGE),
        "body-too-large"
    );

    let mut form = admin(Method::POST, "/admin/snapshots/cleanup");
    *form.body_mut() = axum::body::Body::from("dryRun=true");
    form.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let reply = app.send(form).await;
    assert_eq!(
        reply.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        "unsupported-media-type"
    );

    let malformed = app
        .send(admin_json(
            Method::POST,
            "/admin/snapshots/cleanup",
            "{\"dryRun\":",
        ))
        .await;
    assert_eq!(malformed.problem(StatusCode::BAD_REQUEST), "invalid-body");
}

/// An item with snapshots at versions 1..=count (one per event).
async fn item_with_snapshots(app: &TestApp, id: &str, count: u64) {
    app.seed_item(id, 1).await;
    app.snapshot_item(id).await;
    for _ in 1..count {
        app.append_receipts(id, 1).await;
        app.snapshot_item(id).await;
    }
}

fn versions_of(app: &TestApp, id: &str) -> Vec<u64> {
    app.snapshots
        .keys()
        .into_iter()
        .filter(|k| k.aggregate_id == id)
        .map(|k| k.version)
        .collect()
}

#[tokio::test]
async fn cleanup_without_a_body_prunes_every_aggregate_to_the_configured_maximum() {
    let app = TestApp::new();
    item_with_snapshots(&app, "item-1", 5).await;
    item_with_snapshots(&app, "item-2", 2).await;

    let reply = app
        .send(admin(Method::POST, "/admin/snapshots/cleanup"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["scanned"], 7);
    assert_eq!(reply.body["aggregates"], 2);
    assert_eq!(reply.body["deleted"], 2);
    assert_eq!(reply.body["kept"], 5);
    assert_eq!(reply.body["dryRun"], false);
    assert_eq!(reply.body["complete"], true);
    assert_eq!(versions_of(&app, "item-1"), vec![3, 4, 5]);
    assert_eq!(versions_of(&app, "item-2"), vec![1, 2]);
}

#[tokio::test]
async fn cleanup_dry_run_for_one_aggregate_reports_and_deletes_nothing() {
    let app = TestApp::new();
    item_with_snapshots(&app, "item-1", 5).await;
    item_with_snapshots(&app, "item-2", 5).await;

    let reply = app
        .send(admin_json(
            Method::POST,
            "/admin/snapshots/cleanup",
            r#"{"aggregateId":"item-2","dryRun":true}"#,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["dryRun"], true);
    assert_eq!(reply.body["aggregates"], 1);
    assert_eq!(reply.body["deleted"], 2);
    assert_eq!(
        reply.body["wouldDelete"],
        json!([{"aggregateId": "item-2", "version": 1}, {"aggregateId": "item-2", "version": 2}])
    );
    assert_eq!(app.snapshots.keys().len(), 10);

    let real = app
        .send(admin_json(
            Method::POST,
            "/admin/snapshots/cleanup",
            r#"{"aggregateId":"item-2"}"#,
        ))
        .await;
    assert_eq!(real.body["deleted"], 2);
    assert_eq!(versions_of(&app, "item-1"), vec![1, 2, 3, 4, 5]);
    assert_eq!(versions_of(&app, "item-2"), vec![3, 4, 5]);
}

#[tokio::test]
async fn cleanup_rejects_invalid_bodies() {
    let app = TestApp::new();
    for body in [
        r#"{"aggregateId":""}"#,
        r#"{"aggregateId":"a\u0007b"}"#,
        r#"{"dryRun":"yes"}"#,
        r#"{"aggregate":"item-1"}"#,
        r"[1,2]",
    ] {
        let reply = app
            .send(admin_json(Method::POST, "/admin/snapshots/cleanup", body))
            .await;
        let kind = reply.problem(StatusCode::BAD_REQUEST);
        assert!(
            kind == "invalid-body" || kind == "invalid-aggregate-id",
            "{body}: {kind}"
        );
    }
    assert_eq!(app.snapshots.requests(), 0, "nothing ran");
}

/// Adds locations with 1000-character names until the warehouse has `total` (about 1 KB of
/// state each), saving in the largest appends the store takes.
async fn grow_warehouse(app: &TestApp, id: &str, total: usize) {
    use snapshot_core::domain::Warehouse;
    let (mut root, _) = app.repo.load::<Warehouse>(id).await.unwrap();
    while root.state().locations.len() < total {
        let have = root.state().locations.len();
        for n in have..total.min(have + snapshot_core::ports::MAX_EVENTS_PER_APPEND) {
            root.add_location(&format!("{n:05}-{}", "x".repeat(994)))
                .unwrap();
        }
        app.repo.save(&mut root, None).await.unwrap();
    }
}

async fn snapshot_warehouse(app: &TestApp, id: &str) -> u64 {
    let registry = snapshot_core::Registry::builtin();
    let kind = registry.get("WAREHOUSE").unwrap();
    let (record, _) = app
        .repo
        .snapshot_now(kind.as_ref(), id, SnapshotMetadata::default(), None)
        .await
        .unwrap();
    record.header.version
}

#[tokio::test]
async fn states_are_kept_within_the_lambda_response_budget() {
    let app = TestApp::new();
    app.seed_warehouse("wh-big").await;
    grow_warehouse(&app, "wh-big", 3_000).await;
    let small = snapshot_warehouse(&app, "wh-big").await;
    grow_warehouse(&app, "wh-big", 3_400).await;
    let medium = snapshot_warehouse(&app, "wh-big").await;
    grow_warehouse(&app, "wh-big", 5_400).await;
    let huge = snapshot_warehouse(&app, "wh-big").await;

    let page = app
        .send(admin(
            Method::GET,
            "/admin/snapshots/wh-big?includeState=true&limit=3",
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let items = page.body["items"].as_array().unwrap();
    // ~5.4 MB: valid but omitted (over the 5 MiB state budget); ~3.4 MB: included; ~3 MB more
    // would pass the 6 MB Lambda response limit: next page.
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["version"], huge);
    assert_eq!(items[0]["valid"], true);
    assert!(items[0].get("state").is_none());
    assert!(items[0]["stateOmitted"]
        .as_str()
        .unwrap()
        .contains("response budget"));
    assert_eq!(items[1]["version"], medium);
    assert_eq!(
        items[1]["state"]["locations"].as_object().unwrap().len(),
        3_400
    );
    assert_eq!(page.body["nextCursor"], medium.to_string());

    let rest = app
        .send(admin(
            Method::GET,
            &format!("/admin/snapshots/wh-big?includeState=true&cursor={medium}"),
        ))
        .await;
    assert_eq!(rest.body["items"][0]["version"], small);
    assert!(rest.body["items"][0]["state"].is_object());

    let current = app
        .send(admin(Method::GET, "/admin/aggregates/WAREHOUSE/wh-big"))
        .await;
    assert_eq!(current.status, StatusCode::OK);
    assert!(current.body.get("state").is_none());
    assert!(current.body["stateOmitted"].is_string());
    assert_eq!(current.body["load"]["snapshotVersion"], huge);
}

#[tokio::test]
async fn a_listed_state_under_the_raw_budget_but_over_the_limit_once_encoded_is_left_out() {
    use admin_api::views::{lambda_payload_bytes, LAMBDA_RESPONSE_LIMIT, STATE_RESPONSE_BUDGET};
    use snapshot_core::domain::Warehouse;
    let app = TestApp::new();
    app.seed_warehouse("wh-quotes").await;
    // Location names of quotes: each is `\"` in the state, `\\\"` in the response envelope.
    let (mut root, _) = app.repo.load::<Warehouse>("wh-quotes").await.unwrap();
    while root.state().locations.len() < 1_800 {
        let have = root.state().locations.len();
        for n in have..1_800.min(have + snapshot_core::ports::MAX_EVENTS_PER_APPEND) {
            root.add_location(&format!("{n:05}{}", "\"".repeat(995)))
                .unwrap();
        }
        app.repo.save(&mut root, None).await.unwrap();
    }
    let version = snapshot_warehouse(&app, "wh-quotes").await;

    let page = app
        .send(admin(
            Method::GET,
            "/admin/snapshots/wh-quotes?includeState=true",
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["version"], version);
    assert_eq!(items[0]["valid"], true);
    let raw = items[0]["sizeBytes"].as_u64().unwrap();
    assert!(
        raw < STATE_RESPONSE_BUDGET as u64,
        "{raw} bytes: under the raw budget"
    );
    assert!(items[0].get("state").is_none());
    let reason = items[0]["stateOmitted"].as_str().unwrap();
    assert!(reason.contains("Lambda response limit"), "{reason}");
    let payload = lambda_payload_bytes(&serde_json::to_vec(&page.body).unwrap());
    assert!(payload < LAMBDA_RESPONSE_LIMIT, "{payload} bytes");
}

#[tokio::test]
async fn an_unreadable_item_is_listed_as_such_and_latest_walks_past_it() {
    let app = TestApp::new();
    item_with_three_snapshots(&app, "item-1").await;
    app.snapshots
        .insert_unreadable("item-1", 7, "missing attribute `checksum`");

    for uri in [
        "/admin/snapshots/item-1",
        "/admin/snapshots/item-1?includeState=true",
    ] {
        let reply = app.send(admin(Method::GET, uri)).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        let items = reply.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 4, "{uri}");
        assert_eq!(items[0]["version"], 7);
        assert_eq!(items[0]["unreadable"], true);
        assert_eq!(items[0]["valid"], false);
        assert!(items[0]["invalidReason"]
            .as_str()
            .unwrap()
            .contains("checksum"));
        assert_eq!(items[1]["version"], 6);
    }

    let latest = app
        .send(admin(Method::GET, "/admin/snapshots/item-1/latest"))
        .await;
    assert_eq!(latest.status, StatusCode::OK, "{}", latest.body);
    assert_eq!(latest.body["version"], 6);
    assert_eq!(latest.body["skippedInvalid"], json!([7]));
    assert!(latest.body["lastEventId"].is_string());
}

#[tokio::test]
async fn create_replaces_a_snapshot_marked_invalid_at_the_same_version() {
    let app = TestApp::new();
    app.seed_item("item-1", 3).await;
    app.snapshot_item("item-1").await;
    let mut corrupt = app.snapshots.get("item-1", 3).await.unwrap().unwrap();
    corrupt.header.checksum = "0".repeat(64);
    app.snapshots.overwrite(corrupt);

    // The API finds it invalid and marks it…
    let latest = app
        .send(admin(Method::GET, "/admin/snapshots/item-1/latest"))
        .await;
    assert_eq!(latest.problem(StatusCode::NOT_FOUND), "snapshot-not-found");
    let marked = app.snapshots.get("item-1", 3).await.unwrap().unwrap();
    let mark = marked.header.invalid.expect("marked invalid by the API");
    assert_eq!(mark.by, "admin-api");
    let listed = app
        .send(admin(Method::GET, "/admin/snapshots/item-1"))
        .await;
    // The altered checksum is covered by the snapshot's MAC: caught there, before decoding.
    assert!(listed.body["items"][0]["invalid"]["reason"]
        .as_str()
        .unwrap()
        .contains("MAC does not match"));

    // …and a manual snapshot may replace it at its version.
    let created = app
        .send(admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-1",
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["outcome"], "created");
    let latest = app
        .send(admin(Method::GET, "/admin/snapshots/item-1/latest"))
        .await;
    assert_eq!(latest.status, StatusCode::OK, "{}", latest.body);
    assert_eq!(latest.body["version"], 3);
    assert_eq!(latest.body["valid"], true);
}
