//! The operator console in a real headless browser: the admin API's local server (same router
//! as in Lambda) on tables of DynamoDB Local, with seeded aggregates, driven by Debian's
//! chromium through playwright-core (`tests/browser/console.mjs`, installed with chromium by
//! `scripts/browser.sh`, which `make test` runs). Screenshots of each screen land in
//! `target/console-screenshots/`; their copies in `docs/console/` must exist
//! (`scripts/console-screenshots.sh` refreshes them).

use std::path::PathBuf;
use std::process::Command;

use admin_api::local::{bind, serve};
use admin_api::{dynamo_state, router, AccessPolicy, Authenticator, DevToken};
use integration_tests::{sdk_config, TestTables};
use snapshot_core::clock::now_millis;
use snapshot_core::config::Config;
use snapshot_core::domain::{AggregateRoot, InventoryItem, Warehouse};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateRepository, Registry};

const TOKEN: &str = "console-dev-token";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_headless_browser() {
    let root = repo_root();
    let script = root.join("tests/browser/console.mjs");
    let playwright = root.join("tests/browser/node_modules/playwright-core");
    assert!(
        playwright.exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs chromium and playwright-core: run scripts/browser.sh (make test does)"
    );

    let tables = TestTables::create("console").await;
    let config = Config::from_lookup(|name| match name {
        "EVENTS_TABLE" => Some(tables.events_table.clone()),
        "SNAPSHOTS_TABLE" => Some(tables.snapshots_table.clone()),
        _ => None,
    })
    .unwrap();
    let repo = AggregateRepository::new(
        tables.event_store(),
        tables.snapshot_store(),
        config.codec.clone(),
    );
    let registry = Registry::builtin();

    // An item with two snapshots (versions 5 and 8), then two more events.
    let item = "console-item";
    let mut root_item = AggregateRoot::<InventoryItem>::new(item);
    root_item.create("SKU-1", "Widget", 2).unwrap();
    for _ in 0..4 {
        root_item.receive(5, None).unwrap();
    }
    repo.save(&mut root_item, None).await.unwrap();
    let kind = registry.get("INVENTORY_ITEM").unwrap().clone();
    repo.snapshot_now(kind.as_ref(), item, SnapshotMetadata::default(), None)
        .await
        .unwrap();
    for _ in 0..3 {
        root_item.receive(1, None).unwrap();
    }
    repo.save(&mut root_item, None).await.unwrap();
    repo.snapshot_now(kind.as_ref(), item, SnapshotMetadata::default(), None)
        .await
        .unwrap();
    root_item.receive(1, None).unwrap();
    repo.save(&mut root_item, None).await.unwrap();

    // A warehouse whose only snapshot drifted: its checksum is right for a wrong state.
    let drifted = "console-warehouse";
    let mut wh = AggregateRoot::<Warehouse>::new(drifted);
    wh.create("North", 100).unwrap();
    wh.add_location("A1").unwrap();
    wh.place("A1", "SKU-1", 7).unwrap();
    repo.save(&mut wh, None).await.unwrap();
    let mut wrong = serde_json::to_value(wh.state()).unwrap();
    wrong["used"] = serde_json::json!(70);
    wrong["locations"]["A1"]["SKU-1"] = serde_json::json!(70);
    let wh_kind = registry.get("WAREHOUSE").unwrap().clone();
    let record = build_snapshot(
        &config.codec,
        SnapshotSubject {
            aggregate_id: drifted,
            aggregate_type: "WAREHOUSE",
            schema_version: wh_kind.schema_version(),
            version: wh.version(),
            last_event_id: None,
        },
        serde_json::to_vec(&wrong).unwrap(),
        SnapshotMetadata::default(),
        now_millis(),
        None,
    )
    .unwrap();
    repo.snapshots().put_if_absent(&record).await.unwrap();

    // An item whose only snapshot is of an older schema: what a backfill redoes.
    let old = "console-old-schema";
    let mut old_item = AggregateRoot::<InventoryItem>::new(old);
    old_item.create("SKU-2", "Gadget", 1).unwrap();
    old_item.receive(3, None).unwrap();
    repo.save(&mut old_item, None).await.unwrap();
    let record = build_snapshot(
        &config.codec,
        SnapshotSubject {
            aggregate_id: old,
            aggregate_type: "INVENTORY_ITEM",
            schema_version: kind.schema_version() - 1,
            version: old_item.version(),
            last_event_id: None,
        },
        serde_json::to_vec(old_item.state()).unwrap(),
        SnapshotMetadata::default(),
        now_millis(),
        None,
    )
    .unwrap();
    repo.snapshots().put_if_absent(&record).await.unwrap();

    let state = dynamo_state(&sdk_config().await, config);
    let authenticator =
        Authenticator::local(AccessPolicy::default()).with_dev_token(DevToken::new(TOKEN).unwrap());
    let listener = bind(0).await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, router(state, authenticator)));

    // `scripts/console-screenshots.sh` points this at `docs/console/` to refresh the copies.
    let shots = std::env::var_os("CONSOLE_SCREENSHOTS")
        .map_or_else(|| root.join("target/console-screenshots"), PathBuf::from);
    let out_dir = shots.clone();
    let output = tokio::task::spawn_blocking(move || {
        // Bounded: a hung browser fails the test instead of the whole run.
        Command::new("timeout")
            .args(["--kill-after=5", "180", "node"])
            .arg(script)
            .args([base.as_str(), TOKEN])
            .arg(&out_dir)
            .args([item, drifted])
            .output()
            .expect("node runs (scripts/browser.sh installs it)")
    })
    .await
    .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}"
    );
    for check in [
        "an action without a token is refused",
        "verify shows a mismatch",
        "without force the last snapshot is kept",
        "backfill started and watched to completion",
        "no Content-Security-Policy violation",
    ] {
        assert!(
            stdout.contains(check),
            "missing check `{check}` in:\n{stdout}"
        );
    }
    // Every screen the run shot has its copy in docs/ (the README shows them).
    let docs = root.join("docs/console");
    let screens: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n != "failure.png")
        .collect();
    assert!(screens.len() >= 8, "screens: {screens:?}");
    for screen in &screens {
        assert!(
            docs.join(screen).is_file(),
            "docs/console/{screen} is missing: run scripts/console-screenshots.sh"
        );
    }
    // The backfill re-snapshotted the old-schema item with the current schema.
    let newest = repo
        .snapshots()
        .latest_header(old)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(newest.schema_version, kind.schema_version());
}
