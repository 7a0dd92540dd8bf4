//! `make run`'s orchestrator (tools/local-stack) end to end against DynamoDB Local and moto: fresh
//! tables, demo traffic at a high rate, a low snapshot threshold and a one-second pruning
//! timer, so everything it promises shows up within seconds.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use local_stack::{LocalStack, Progress, Reporter, StackSettings};
use reqwest::StatusCode;
use snapshot_core::ports::SnapshotStore;
use snapshot_dynamo::DynamoSnapshotStore;
use tokio::time::{sleep, timeout, Instant};

/// How long the stack gets to show a count-policy snapshot and a pruning deletion.
const ACTIVITY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long shutdown may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

fn settings(events_table: &str, snapshots_table: &str, env_file: &Path) -> StackSettings {
    let vars: Vec<(&str, String)> = vec![
        ("EVENTS_TABLE", events_table.to_owned()),
        ("SNAPSHOTS_TABLE", snapshots_table.to_owned()),
        ("ADMIN_API_PORT", "0".to_owned()),
        ("SNAPSHOT_THRESHOLD", "3".to_owned()),
        ("MAX_SNAPSHOTS_PER_AGGREGATE", "1".to_owned()),
        ("STREAM_POLL_INTERVAL_MS", "100".to_owned()),
        ("LOCAL_DEMO_RATE", "20".to_owned()),
        ("LOCAL_DEMO_ITEMS", "2".to_owned()),
        ("LOCAL_DEMO_WAREHOUSES", "1".to_owned()),
        ("LOCAL_PRUNE_INTERVAL_SECS", "1".to_owned()),
        ("LOCAL_TOTALS_INTERVAL_SECS", "1".to_owned()),
        ("LOCAL_ENV_FILE", env_file.display().to_string()),
    ];
    // Only these variables: the test must not depend on the caller's environment.
    StackSettings::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

fn seen_any(seen: &Mutex<Vec<Progress>>, wanted: impl Fn(&Progress) -> bool) -> bool {
    seen.lock().unwrap().iter().any(wanted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_stack_snapshots_demo_traffic_prunes_serves_the_admin_api_and_stops() {
    integration_tests::endpoint(); // fails clearly without DynamoDB Local
    let sdk = integration_tests::sdk_config().await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let events_table = format!("events_local_stack_{suffix}");
    let snapshots_table = format!("snapshots_local_stack_{suffix}");
    let env_file = std::env::temp_dir().join(format!("local-stack-{suffix}.env"));

    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = seen.clone();
    let reporter: Reporter = Arc::new(move |p: &Progress| sink.lock().unwrap().push(p.clone()));
    let stack = LocalStack::start(
        &sdk,
        settings(&events_table, &snapshots_table, &env_file),
        reporter,
    )
    .await
    .unwrap();
    let (url, token) = (stack.url.clone(), stack.token.clone());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // What `make run` prints names the operator console's page and the token to sign in with.
    let banner = local_stack::banner::banner(
        &stack,
        &settings(&events_table, &snapshots_table, &env_file),
        "emulator",
    );
    let console = format!("{url}/console/");
    assert!(banner.contains(&console), "{banner}");
    assert!(banner.contains(&token), "{banner}");
    assert!(token.len() >= 32, "a freshly generated token: {token}");
    assert_eq!(
        stack.demo_aggregates,
        ["demo-item-1", "demo-item-2", "demo-warehouse-1"]
    );

    // Scripts find the URL and the token in the env file, which only the owner can read.
    let written = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        written.contains(&format!("ADMIN_API_URL={url}\n")),
        "{written}"
    );
    assert!(
        written.contains(&format!("ADMIN_DEV_TOKEN={token}\n")),
        "{written}"
    );
    assert!(written.contains("DEMO_ITEM=demo-item-1\n"), "{written}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "env file mode {mode:o}");
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = stack.run_until(async {
        let _ = stopped.await;
    });
    tokio::pin!(running);

    let store = DynamoSnapshotStore::new(aws_sdk_dynamodb::Client::new(&sdk), &snapshots_table);
    let checks = async {
        // Demo traffic → stream runner → snapshotter: a count-policy snapshot (beyond the
        // first event's) appears, the pruning timer runs, and keep-N (MAX_SNAPSHOTS=1) holds
        // for an aggregate that got two snapshots or more: the write that pushed the older one
        // out deleted it (docs/functions.md#retention), or the pruner's sweep did.
        let deadline = Instant::now() + ACTIVITY_TIMEOUT;
        loop {
            let snapshot = seen_any(&seen, |p| {
                matches!(p, Progress::SnapshotCreated { version, reason, .. }
                    if *version > 1 && reason == "threshold:count")
            });
            let pruned = seen_any(&seen, |p| matches!(p, Progress::Pruned { .. }));
            let snapshotted_twice: Vec<String> = {
                let seen = seen.lock().unwrap();
                let created: Vec<&String> = seen
                    .iter()
                    .filter_map(|p| match p {
                        Progress::SnapshotCreated { aggregate_id, .. } => Some(aggregate_id),
                        _ => None,
                    })
                    .collect();
                let mut twice: Vec<String> = created
                    .iter()
                    .filter(|id| created.iter().filter(|other| other == id).count() > 1)
                    .map(|id| (*id).clone())
                    .collect();
                twice.dedup();
                twice
            };
            let mut kept_to_one = false;
            for id in &snapshotted_twice {
                let stored = store.headers(id, None, 10).await.unwrap();
                kept_to_one |= stored.items.len() == 1;
            }
            if snapshot && pruned && kept_to_one {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "within {ACTIVITY_TIMEOUT:?}: count snapshot seen {snapshot}, pruning run seen {pruned}, an aggregate snapshotted twice kept to one snapshot {kept_to_one}; progress: {:#?}",
                seen.lock().unwrap()
            );
            sleep(Duration::from_millis(200)).await;
        }
        let stored = store.headers("demo-item-1", None, 10).await.unwrap();
        assert!(
            !stored.items.is_empty(),
            "demo-item-1 has snapshots in {snapshots_table}"
        );

        // The admin API: health is open, the rest needs the printed token.
        let http = reqwest::Client::new();
        let health = http.get(format!("{url}/health")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        // The console's page is served at the printed URL, under its strict policy.
        let page = http.get(&console).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(page.text().await.unwrap().contains("Snapshot console"));
        let list = format!("{url}/admin/snapshots/demo-item-1");
        let anonymous = http.get(&list).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let listed = http.get(&list).bearer_auth(&token).send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
        let body: serde_json::Value = listed.json().await.unwrap();
        let items = body["items"].as_array().cloned().unwrap_or_default();
        assert!(!items.is_empty(), "listed snapshots: {body}");
        assert!(
            items.iter().all(|i| i["aggregateId"] == "demo-item-1"),
            "{body}"
        );

        // Each request got its console line.
        for (path, status) in [
            ("/health", 200),
            ("/admin/snapshots/demo-item-1", 401),
            ("/admin/snapshots/demo-item-1", 200),
        ] {
            assert!(
                seen_any(
                    &seen,
                    |p| matches!(p, Progress::Request { path: p_path, status: s, .. }
                    if p_path == path && *s == status)
                ),
                "request line for {path} -> {status}"
            );
        }
    };
    tokio::select! {
        totals = &mut running => panic!("the stack stopped by itself: {totals:?}"),
        () = checks => {}
    }

    stop.send(()).unwrap();
    let totals = timeout(SHUTDOWN_TIMEOUT, running)
        .await
        .expect("shutdown completes");
    assert!(
        totals.events_appended > 0 && totals.snapshots_created > 0,
        "{totals:?}"
    );
    assert_eq!(totals.commands_rejected, 0, "{totals:?}");
    assert!(totals.requests >= 3, "{totals:?}");
    assert!(!env_file.exists(), "the env file is removed on shutdown");
    assert!(
        matches!(seen.lock().unwrap().last(), Some(Progress::Totals(_))),
        "final totals reported last"
    );
    let after = reqwest::Client::new()
        .get(format!("{url}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "the admin API stopped listening: {after:?}");
}
