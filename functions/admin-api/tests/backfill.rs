//! The backfill routes: a dry run reports aggregates, events to read and read units and
//! writes nothing; a start runs under the read budget (202 while running, 409 for a second
//! start); the status route shows `done / total` until complete; unknown jobs are 404.

mod common;

use axum::http::{Method, StatusCode};
use common::{admin, admin_json, anonymous, config, TestApp};
use snapshot_core::backfill::read_units;
use snapshot_core::clock::now_millis;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::config::Config;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::Registry;

/// `n` items of `events` events each, whose only snapshot is of the previous schema.
async fn obsolete_items(app: &TestApp, n: usize, events: u64) {
    let old = Registry::builtin()
        .get("INVENTORY_ITEM")
        .unwrap()
        .schema_version()
        - 1;
    for i in 0..n {
        let id = format!("obsolete-{i}");
        app.seed_item(&id, events).await;
        let (root, _) = app
            .repo
            .load::<snapshot_core::domain::InventoryItem>(&id)
            .await
            .unwrap();
        let record = build_snapshot(
            &SnapshotCodec::default(),
            SnapshotSubject {
                aggregate_id: &id,
                aggregate_type: "INVENTORY_ITEM",
                schema_version: old,
                version: root.version(),
                last_event_id: None,
            },
            serde_json::to_vec(root.state()).unwrap(),
            SnapshotMetadata::default(),
            now_millis(),
            None,
        )
        .unwrap();
        app.snapshots.put_if_absent(&record).await.unwrap();
    }
}

#[tokio::test]
async fn a_dry_run_reports_the_cost_and_changes_nothing() {
    let app = TestApp::new();
    obsolete_items(&app, 3, 7).await;
    app.seed_item("current", 3).await;
    app.snapshot_item("current").await;
    let before = app.snapshots.keys();

    // No body is a dry run.
    for request in [
        admin(Method::POST, "/admin/backfill"),
        admin_json(Method::POST, "/admin/backfill", r#"{"dryRun": true}"#),
    ] {
        let reply = app.send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["dryRun"], true);
        assert_eq!(reply.body["aggregates"], 3);
        assert_eq!(reply.body["eventsToRead"], 3 * 7);
        assert_eq!(reply.body["estimatedReadUnits"], 3 * read_units(7));
        assert_eq!(reply.body["byType"]["INVENTORY_ITEM"], 3);
    }
    assert_eq!(app.snapshots.keys(), before);
}

#[tokio::test]
async fn a_started_job_runs_under_its_budget_and_its_status_shows_progress() {
    // 10 events per run: the start does two aggregates of 7 events, then stops.
    let config =
        Config::from_lookup(|name| (name == "BACKFILL_READ_BUDGET").then(|| "10".into())).unwrap();
    let app = TestApp::with_config(config);
    obsolete_items(&app, 5, 7).await;

    let started = app
        .send(admin_json(
            Method::POST,
            "/admin/backfill",
            r#"{"dryRun": false}"#,
        ))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    assert_eq!(started.body["state"], "running");
    assert_eq!(started.body["done"], 2);
    assert_eq!(started.body["total"], 5);
    let job_id = started.body["jobId"].as_str().unwrap().to_owned();

    // One job at a time.
    let again = app
        .send(admin_json(
            Method::POST,
            "/admin/backfill",
            r#"{"dryRun": false}"#,
        ))
        .await;
    assert_eq!(again.problem(StatusCode::CONFLICT), "backfill-running");
    assert!(again.body["detail"].as_str().unwrap().contains(&job_id));

    let status = app
        .send(admin(Method::GET, &format!("/admin/backfill/{job_id}")))
        .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["done"], 2);
    assert_eq!(status.body["total"], 5);
    assert_eq!(status.body["eventsRead"], 14);
    assert!(status.body.get("pending").is_none(), "{}", status.body);

    // The dry run now counts what is left.
    let left = app.send(admin(Method::POST, "/admin/backfill")).await;
    assert_eq!(left.body["aggregates"], 3);

    let unknown = app
        .send(admin(Method::GET, "/admin/backfill/no-such-job"))
        .await;
    assert_eq!(unknown.problem(StatusCode::NOT_FOUND), "backfill-not-found");
}

#[tokio::test]
async fn a_job_within_budget_completes_in_the_start_request() {
    let app = TestApp::with_config(config());
    obsolete_items(&app, 2, 4).await;
    let done = app
        .send(admin_json(
            Method::POST,
            "/admin/backfill",
            r#"{"dryRun": false}"#,
        ))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["state"], "complete");
    assert_eq!(
        (done.body["done"].as_u64(), done.body["total"].as_u64()),
        (Some(2), Some(2))
    );
    let left = app.send(admin(Method::POST, "/admin/backfill")).await;
    assert_eq!(left.body["aggregates"], 0);
}

#[tokio::test]
async fn backfill_routes_refuse_callers_without_a_token() {
    let app = TestApp::new();
    obsolete_items(&app, 1, 3).await;
    let before = app.snapshots.keys();
    for (method, uri) in [
        (Method::POST, "/admin/backfill"),
        (Method::GET, "/admin/backfill/some-job"),
    ] {
        let reply = app.send(anonymous(method, uri)).await;
        reply.problem(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.snapshots.keys(), before);
}
