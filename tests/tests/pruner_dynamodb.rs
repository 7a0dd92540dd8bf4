//! Snapshot pruning against DynamoDB Local: parallel paginated scans, batched
//! deletes, dry runs, deadlines and convergence, obsolete schemas, the pruner handler.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use integration_tests::TestTables;
use pruner::{handler, Invocation, PrunerSettings};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::pruning::{prune, Deadline, PruneRequest, Retention, SeenSnapshot};
use snapshot_core::snapshot::{
    build_snapshot, SnapshotKey, SnapshotMetadata, SnapshotRecord, SnapshotSubject,
};
use snapshot_core::Registry;
use snapshot_dynamo::DynamoSnapshotStore;

const ITEM: &str = "INVENTORY_ITEM";

fn record(aggregate_id: &str, version: u64, schema: u32, padding: usize) -> SnapshotRecord {
    // Uncompressed, so the stored size is what the test asks for.
    let codec = SnapshotCodec::new(usize::MAX);
    let pad: String = (0..padding)
        .map(|i| char::from(b'a' + ((i * 7 + version as usize) % 26) as u8))
        .collect();
    let state = serde_json::json!({"id": aggregate_id, "onHand": version, "pad": pad});
    build_snapshot(
        &codec,
        SnapshotSubject {
            aggregate_id,
            aggregate_type: ITEM,
            schema_version: schema,
            version,
            last_event_id: None,
        },
        state.to_string().into_bytes(),
        SnapshotMetadata::default(),
        1_700_000_000_000 + version as i64,
        None,
    )
    .unwrap()
}

async fn seed(store: &DynamoSnapshotStore, records: Vec<SnapshotRecord>) {
    stream::iter(records)
        .map(|r| async move { store.put_if_absent(&r).await.map(|_| ()) })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
}

fn current(ids: &[String], versions: std::ops::RangeInclusive<u64>) -> Vec<SnapshotRecord> {
    ids.iter()
        .flat_map(|id| versions.clone().map(move |v| record(id, v, 1, 16)))
        .collect()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

/// Versions of one aggregate, ascending, read through the paginated headers query.
async fn versions(store: &DynamoSnapshotStore, aggregate_id: &str) -> Vec<u64> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store.headers(aggregate_id, before, 100).await.unwrap();
        all.extend(page.items.iter().map(|h| h.as_ref().unwrap().version));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    all.reverse();
    all
}

fn after_checks(checks: usize) -> Deadline {
    let seen = Arc::new(AtomicUsize::new(0));
    Deadline::when(move || seen.fetch_add(1, Ordering::SeqCst) >= checks)
}

#[tokio::test]
async fn three_aggregates_of_ten_keep_three_leaves_the_three_newest_of_each() {
    let tables = TestTables::create("prune_3x10").await;
    let store = tables.snapshot_store();
    let aggregates = ids("item", 3);
    seed(&store, current(&aggregates, 1..=10)).await;
    let summary = prune(&store, &Registry::builtin(), &PruneRequest::new(3))
        .await
        .unwrap();
    for id in &aggregates {
        assert_eq!(versions(&store, id).await, vec![8, 9, 10], "{id}");
    }
    assert_eq!(
        (
            summary.scanned,
            summary.aggregates,
            summary.deleted,
            summary.kept
        ),
        (30, 3, 21, 9)
    );
    assert!(summary.complete);
}

#[tokio::test]
async fn more_than_one_megabyte_of_snapshots_is_read_page_by_page_and_every_aggregate_pruned() {
    let tables = TestTables::create("prune_big").await;
    let store = tables.snapshot_store();
    let aggregates = ids("big", 16);
    let records: Vec<SnapshotRecord> = aggregates
        .iter()
        .flat_map(|id| (1..=5).map(move |v| record(id, v, 1, 20_000)))
        .collect();
    let bytes: usize = records.iter().map(|r| r.state.len()).sum();
    assert!(bytes > 1_500_000, "{bytes} bytes of state");
    seed(&store, records).await;
    // One segment: a single Scan page cannot hold it all.
    let first_page = store.scan_summaries(0, 1, None, 1000).await.unwrap();
    assert!(
        first_page.next.is_some(),
        "DynamoDB paginates a scan at 1 MB"
    );
    assert!(first_page.items.len() < 80);

    let mut request = PruneRequest::new(2);
    request.segments = 1;
    let summary = prune(&store, &Registry::builtin(), &request).await.unwrap();
    assert_eq!(summary.scanned, 80);
    assert_eq!(summary.aggregates, 16);
    assert_eq!(summary.deleted, 48);
    for id in &aggregates {
        assert_eq!(versions(&store, id).await, vec![4, 5], "{id}");
    }
}

#[tokio::test]
async fn parallel_segments_cover_every_aggregate_once() {
    let tables = TestTables::create("prune_segments").await;
    let store = tables.snapshot_store();
    let aggregates = ids("seg", 24);
    seed(&store, current(&aggregates, 1..=4)).await;
    let mut request = PruneRequest::new(1);
    request.segments = 4;
    request.page_size = 7;
    let summary = prune(&store, &Registry::builtin(), &request).await.unwrap();
    assert_eq!(summary.scanned, 96, "every item read exactly once");
    assert_eq!(summary.aggregates, 24);
    for id in &aggregates {
        assert_eq!(versions(&store, id).await, vec![4], "{id}");
    }
}

#[tokio::test]
async fn dry_run_deletes_nothing_and_reports_what_it_would_delete() {
    let tables = TestTables::create("prune_dry").await;
    let store = tables.snapshot_store();
    let aggregates = ids("dry", 2);
    seed(&store, current(&aggregates, 1..=5)).await;
    let mut request = PruneRequest::new(3);
    request.dry_run = true;
    let summary = prune(&store, &Registry::builtin(), &request).await.unwrap();
    for id in &aggregates {
        assert_eq!(versions(&store, id).await, vec![1, 2, 3, 4, 5]);
    }
    assert_eq!(summary.deleted, 4);
    let reported: Vec<(String, u64)> = summary
        .would_delete
        .iter()
        .map(|k| (k.aggregate_id.clone(), k.version))
        .collect();
    let expected: Vec<(String, u64)> = aggregates
        .iter()
        .flat_map(|id| [(id.clone(), 1), (id.clone(), 2)])
        .collect();
    assert_eq!(reported, expected);
}

#[tokio::test]
async fn a_run_cut_short_by_the_deadline_then_a_second_run_converges() {
    let tables = TestTables::create("prune_deadline").await;
    let store = tables.snapshot_store();
    let aggregates = ids("cut", 8);
    let mut original: BTreeMap<String, Vec<SeenSnapshot>> = BTreeMap::new();
    let mut records = Vec::new();
    for (n, id) in aggregates.iter().enumerate() {
        for version in 1..=(4 + n as u64) {
            let schema = u32::from(version != 2);
            records.push(record(id, version, schema, 16));
            original.entry(id.clone()).or_default().push(SeenSnapshot {
                version,
                schema_version: schema,
                invalid: false,
            });
        }
    }
    seed(&store, records).await;
    let keep = 3;
    let mut request = PruneRequest::new(keep);
    request.segments = 2;
    request.page_size = 5;
    request.buffer_keys = 5;
    request.deadline = after_checks(6);
    let first = prune(&store, &Registry::builtin(), &request).await.unwrap();
    assert!(!first.complete, "cut short: {first:?}");
    assert!(first.deleted > 0, "made progress before the deadline");

    let rule = Retention {
        keep,
        current_schema: 1,
    };
    for (id, seen) in &original {
        let left = versions(&store, id).await;
        let deletable = rule.deletions(seen);
        for s in seen {
            assert!(
                left.contains(&s.version) || deletable.contains(&s.version),
                "{id}@{} deleted although the rule keeps it",
                s.version
            );
        }
        let newest = seen.iter().map(|s| s.version).max().unwrap();
        assert!(left.contains(&newest), "newest of {id} kept");
        assert!(
            left.len() >= seen.len() - deletable.len(),
            "{id} keeps at least what the rule keeps: {left:?}"
        );
    }

    request.deadline = Deadline::none();
    let second = prune(&store, &Registry::builtin(), &request).await.unwrap();
    assert!(second.complete);
    for (id, seen) in &original {
        let newest = seen.iter().map(|s| s.version).max().unwrap();
        // The newest three, except cut-000's obsolete version 2 (it has only 4 snapshots).
        let expected: Vec<u64> = (newest - 2..=newest).filter(|v| *v != 2).collect();
        assert_eq!(versions(&store, id).await, expected, "{id} converged");
    }
    let third = prune(&store, &Registry::builtin(), &request).await.unwrap();
    assert_eq!(third.deleted, 0, "idempotent once converged");
}

#[tokio::test]
async fn obsolete_schema_snapshots_are_removed_while_the_newest_usable_one_stays() {
    let tables = TestTables::create("prune_schema").await;
    let store = tables.snapshot_store();
    // INVENTORY_ITEM is at schema 1; schema 0 is obsolete. The newest three are obsolete.
    let plan = [(1, 1), (2, 1), (3, 0), (4, 1), (5, 0), (6, 0), (7, 0)];
    seed(
        &store,
        plan.iter()
            .map(|&(v, s)| record("old-1", v, s, 16))
            .collect(),
    )
    .await;
    seed(
        &store,
        (1..=3).map(|v| record("none-usable", v, 0, 16)).collect(),
    )
    .await;
    prune(&store, &Registry::builtin(), &PruneRequest::new(3))
        .await
        .unwrap();
    assert_eq!(versions(&store, "old-1").await, vec![4, 7]);
    assert_eq!(versions(&store, "none-usable").await, vec![3]);
}

#[tokio::test]
async fn delete_many_sends_batches_of_25_and_deletes_every_key() {
    let tables = TestTables::create("prune_batches").await;
    let store = tables.snapshot_store();
    seed(&store, current(&["many".to_owned()], 1..=60)).await;
    let keys: Vec<SnapshotKey> = (1..=60)
        .map(|version| SnapshotKey {
            aggregate_id: "many".to_owned(),
            version,
        })
        .collect();
    assert_eq!(store.delete_many(&keys).await.unwrap(), 60);
    assert!(versions(&store, "many").await.is_empty());
}

#[tokio::test]
async fn the_handler_prunes_one_aggregate_from_the_sample_event() {
    let tables = TestTables::create("prune_handler").await;
    let store = tables.snapshot_store();
    seed(&store, current(&ids("item", 1), 1..=6)).await;
    seed(&store, current(&["item-0001".to_owned()], 1..=6)).await;
    let settings = PrunerSettings::from_lookup(|k| {
        (k == "SNAPSHOTS_TABLE").then(|| tables.snapshots_table.clone())
    })
    .unwrap();
    let event =
        serde_json::from_str(include_str!("../../events/pruner/single-aggregate.json")).unwrap();
    let summary = handler(
        &store,
        &snapshot_core::pruning::StartOver,
        &Registry::builtin(),
        &settings,
        event,
        Invocation::default(),
    )
    .await
    .unwrap();
    assert_eq!(summary.aggregates, 1);
    assert_eq!(versions(&store, "item-0001").await, vec![5, 6]);
    assert_eq!(
        versions(&store, "item-000").await.len(),
        6,
        "others untouched"
    );
}

#[tokio::test]
async fn a_table_too_large_for_one_run_is_pruned_over_runs_that_resume_from_a_saved_position() {
    use snapshot_core::pruning::{prune_resuming, ScanPositions};
    use snapshot_dynamo::DynamoScanPositions;

    let tables = TestTables::create("prune-resume").await;
    let store = tables.snapshot_store();
    let positions = DynamoScanPositions::new(tables.client.clone(), &tables.snapshots_table);
    let done = ids("done", 60);
    let todo = ids("todo", 8);
    seed(&store, current(&done, 6..=8)).await;
    seed(&store, current(&todo, 1..=8)).await;
    let keep = 3;
    let mut runs = 0;
    let mut saved_between_runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 40, "no convergence after 40 runs");
        let mut request = PruneRequest::new(keep);
        request.segments = 1;
        request.page_size = 10;
        request.buffer_keys = 10;
        // About five page reads per run; the table holds 24 pages.
        let checks = Arc::new(AtomicUsize::new(0));
        request.deadline = Deadline::when(move || checks.fetch_add(1, Ordering::SeqCst) >= 5);
        let summary = prune_resuming(&store, &positions, &Registry::builtin(), &request)
            .await
            .unwrap();
        // From the second run on, the position record is in the table: not a snapshot.
        assert_eq!(
            summary.skipped, 0,
            "run {runs}: the position record counted"
        );
        let mut converged = true;
        let all = everything(&store).await;
        for id in done.iter().chain(&todo) {
            let left = all.get(id).cloned().unwrap_or_default();
            assert!(
                left.len() >= keep,
                "run {runs}: {id} below keep-N: {left:?}"
            );
            assert_eq!(left.last(), Some(&8), "run {runs}: {id} lost its newest");
            converged &= left.len() == keep;
        }
        if !summary.complete {
            assert!(
                positions.load(0, 1).await.unwrap().is_some(),
                "run {runs} stopped early and saved where the next one starts"
            );
            saved_between_runs += 1;
        }
        if converged {
            break;
        }
    }
    assert!(runs >= 5, "the budget needs at least five runs ({runs})");
    assert!(saved_between_runs >= 4);
    // Read to its end, the segment starts over next time: the position is cleared.
    let mut request = PruneRequest::new(keep);
    request.segments = 1;
    let last = prune_resuming(&store, &positions, &Registry::builtin(), &request)
        .await
        .unwrap();
    assert!(last.complete);
    assert_eq!(last.deleted, 0);
    assert_eq!(last.skipped, 0);
    assert_eq!(positions.load(0, 1).await.unwrap(), None);
    assert_eq!(positions.load(0, 4).await.unwrap(), None);
}

/// Every snapshot's version by aggregate, through one full scan (cheaper than a query each).
async fn everything(store: &DynamoSnapshotStore) -> BTreeMap<String, Vec<u64>> {
    let mut all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = store.scan_summaries(0, 1, cursor, 1000).await.unwrap();
        for summary in page.items {
            all.entry(summary.key.aggregate_id)
                .or_default()
                .push(summary.key.version);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for versions in all.values_mut() {
        versions.sort_unstable();
    }
    all
}

/// The pruner under faults: its BatchWriteItem deletes fail with 500s and timeouts or lose
/// their reply after the deletes were done (no SDK retry), so runs stop with an error part way;
/// in the runs between, deletes are served halfway (the rest comes back as `UnprocessedItems`).
/// No run leaves an aggregate with fewer than keep-N snapshots or without one the rule keeps;
/// rerun, the pruner converges to exactly keep-N.
#[tokio::test]
async fn the_pruner_under_faults_never_goes_below_keep_n_and_converges_on_rerun() {
    use integration_tests::faults::{faulty_dynamodb, Fault, FaultPlan};
    use snapshot_core::pruning::{prune_resuming, PruneError};
    use snapshot_dynamo::DynamoScanPositions;

    let tables = TestTables::create("prune-faults").await;
    let clean = tables.snapshot_store();
    let aggregates = ids("fault", 60);
    seed(&clean, current(&aggregates, 1..=8)).await;
    let failing = FaultPlan::new(17, 500)
        .kinds(&[Fault::ServerError, Fault::Timeout, Fault::ReplyLost])
        .only(&["BatchWriteItem"]);
    let halfway = FaultPlan::new(18, 500)
        .kinds(&[Fault::Unprocessed])
        .only(&["BatchWriteItem"]);
    let mut stores = Vec::new();
    for plan in [&failing, &halfway] {
        let client = faulty_dynamodb(plan, 1).await;
        stores.push((
            DynamoSnapshotStore::new(client.clone(), &tables.snapshots_table),
            DynamoScanPositions::new(client, &tables.snapshots_table),
        ));
    }
    let keep = 3;
    let (mut runs, mut failed_runs) = (0, 0);
    loop {
        runs += 1;
        assert!(runs <= 40, "no convergence after 40 runs");
        let (store, positions) = &stores[runs % 2];
        let mut request = PruneRequest::new(keep);
        request.segments = 1;
        request.page_size = 40;
        request.buffer_keys = 40;
        let result = prune_resuming(store, positions, &Registry::builtin(), &request).await;
        let all = everything(&clean).await;
        for id in &aggregates {
            let left = all.get(id).cloned().unwrap_or_default();
            for kept in 6..=8 {
                assert!(
                    left.contains(&kept),
                    "run {runs}: {id} lost version {kept}: {left:?}"
                );
            }
        }
        let converged = aggregates
            .iter()
            .all(|id| all.get(id).is_some_and(|left| *left == vec![6, 7, 8]));
        match result {
            Err(PruneError::Store { source, partial }) => {
                failed_runs += 1;
                assert!(source.is_retryable(), "run {runs}: {source}");
                assert!(!partial.complete);
            }
            Err(other) => panic!("run {runs}: {other}"),
            Ok(summary) if summary.complete && converged => break,
            Ok(_) => {}
        }
    }
    assert!(
        failed_runs >= 1,
        "deletes failed part way in some run: {failing:?}"
    );
    assert!(
        halfway.injected_of(Fault::Unprocessed) >= 1,
        "some deletes came back unprocessed: {halfway:?}"
    );
    // Converged: a clean run finds nothing more to delete.
    let last = prune(&clean, &Registry::builtin(), &PruneRequest::new(keep))
        .await
        .unwrap();
    assert_eq!(last.deleted, 0);
}
