//! Retention that costs what it removes, on DynamoDB Local, every unit counted from what the
//! engine reports: a write past keep-N deletes the snapshot that falls out of it reading
//! nothing; invalid snapshots are never counted and the newest valid one stays; the pruner's
//! sweep reads the keys-only index, so its read units do not depend on the states' size, and
//! within its key budget they do not depend on the table's size either.

use futures::stream::{self, StreamExt, TryStreamExt};
use integration_tests::capacity::{index_units, units, Capacity};
use integration_tests::TestTables;
use snapshot_core::ports::{PutOutcome, SnapshotStore};
use snapshot_core::pruning::{prune, prune_resuming, put_retaining, PruneRequest};
use snapshot_core::snapshot::{InvalidMark, SnapshotRecord};
use snapshot_core::testing::sized_snapshot;
use snapshot_core::Registry;
use snapshot_dynamo::{DynamoScanPositions, DynamoSnapshotStore, HEAD_PREFIX};

fn record(aggregate_id: &str, version: u64, state_bytes: usize) -> SnapshotRecord {
    sized_snapshot(aggregate_id, version, state_bytes).unwrap()
}

fn mark() -> InvalidMark {
    InvalidMark {
        reason: "test".to_owned(),
        by: "test".to_owned(),
        at: 1_700_000_000_000,
    }
}

async fn versions(store: &DynamoSnapshotStore, id: &str, valid_only: bool) -> Vec<u64> {
    let page = store.headers(id, None, 1000).await.unwrap();
    let mut found: Vec<u64> = page
        .items
        .into_iter()
        .map(Result::unwrap)
        .filter(|h| !valid_only || h.invalid.is_none())
        .map(|h| h.version)
        .collect();
    found.sort_unstable();
    found
}

/// The head item's tracked places, newest first, as stored.
async fn tracked(tables: &TestTables, id: &str) -> Vec<u64> {
    let item = tables
        .client
        .get_item()
        .table_name(&tables.snapshots_table)
        .key(
            "aggregateId",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{HEAD_PREFIX}{id}")),
        )
        .key(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N("0".to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    (0..)
        .map_while(|place| item.get(&format!("tracked{place}")))
        .filter_map(|value| match value {
            aws_sdk_dynamodb::types::AttributeValue::L(pair) => match pair.first() {
                Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) => v.parse().ok(),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_write_past_keep_deletes_the_one_that_falls_out_reading_nothing() {
    let tables = TestTables::create("retain_write").await;
    let capacity = Capacity::default();
    let store = DynamoSnapshotStore::new(capacity.client().await, &tables.snapshots_table);
    for version in 1..=3 {
        let retained = put_retaining(&store, &record("item-r", version, 20_000), 3, "test")
            .await
            .unwrap();
        assert!(retained.tracked && retained.deleted.is_empty());
    }
    assert_eq!(tracked(&tables, "item-r").await, vec![3, 2, 1]);
    capacity.take();
    let retained = put_retaining(&store, &record("item-r", 4, 20_000), 3, "test")
        .await
        .unwrap();
    assert_eq!(retained.outcome, PutOutcome::Created);
    assert_eq!(retained.deleted, vec![1]);
    let spent = capacity.take();
    let (read, write) = units(&spent);
    assert_eq!(read, 0.0, "no read on the write path: {spent:?}");
    let ops: Vec<&str> = spent.keys().map(String::as_str).collect();
    assert_eq!(
        ops,
        ["BatchWriteItem", "PutItem", "UpdateItem"],
        "{spent:?}"
    );
    // The head's update is one unit; the put and the delete each pay the ~20 KB item.
    assert_eq!(spent["UpdateItem"].write, 1.0, "{spent:?}");
    assert!(spent["BatchWriteItem"].write >= 5.0, "{spent:?}");
    println!("write past keep: read {read} write {write} units: {spent:?}");
    assert_eq!(versions(&store, "item-r", false).await, vec![2, 3, 4]);
    assert_eq!(tracked(&tables, "item-r").await, vec![4, 3, 2]);

    // A write under keep-N costs the put and the head only.
    capacity.take();
    let retained = put_retaining(&store, &record("item-s", 1, 20_000), 3, "test")
        .await
        .unwrap();
    assert!(retained.deleted.is_empty());
    let spent = capacity.take();
    assert_eq!(units(&spent).0, 0.0);
    assert!(!spent.contains_key("BatchWriteItem"), "{spent:?}");
}

#[tokio::test]
async fn invalid_snapshots_are_never_counted_and_the_newest_valid_one_stays() {
    let tables = TestTables::create("retain_invalid").await;
    let store = tables.snapshot_store();
    let registry = Registry::builtin();
    for version in 1..=2 {
        put_retaining(&store, &record("item-i", version, 100), 2, "test")
            .await
            .unwrap();
    }
    // The newest is found invalid: its head and list go with the mark.
    assert!(store.mark_invalid("item-i", 2, &mark()).await.unwrap());
    assert!(tracked(&tables, "item-i").await.is_empty());
    // Writing 3: had 2 still counted, 1 would fall out though only 3 and 1 are valid.
    let third = put_retaining(&store, &record("item-i", 3, 100), 2, "test")
        .await
        .unwrap();
    assert!(third.deleted.is_empty());
    assert_eq!(versions(&store, "item-i", true).await, vec![1, 3]);
    let fourth = put_retaining(&store, &record("item-i", 4, 100), 2, "test")
        .await
        .unwrap();
    assert!(
        fourth.deleted.is_empty(),
        "1 was never tracked: the sweep's"
    );
    // The sweep over the index decides with the marks: 1 (beyond keep) and 2 (invalid, two
    // counted newer) go; 3 and 4 stay.
    let summary = prune(&store, &registry, &PruneRequest::new(2))
        .await
        .unwrap();
    assert_eq!(summary.deleted, 2, "{summary:?}");
    assert_eq!(versions(&store, "item-i", false).await, vec![3, 4]);

    // Keep 1: the newest valid snapshot is the one kept, whatever was marked.
    put_retaining(&store, &record("item-k", 1, 100), 1, "test")
        .await
        .unwrap();
    let second = put_retaining(&store, &record("item-k", 2, 100), 1, "test")
        .await
        .unwrap();
    assert_eq!(second.deleted, vec![1]);
    store.mark_invalid("item-k", 2, &mark()).await.unwrap();
    let third = put_retaining(&store, &record("item-k", 3, 100), 1, "test")
        .await
        .unwrap();
    assert!(third.deleted.is_empty());
    assert_eq!(versions(&store, "item-k", true).await, vec![3]);
    prune(&store, &registry, &PruneRequest::new(1))
        .await
        .unwrap();
    assert_eq!(versions(&store, "item-k", false).await, vec![3]);
}

/// `aggregates` × 3 snapshots of about `state_bytes` each, written concurrently (no retention:
/// nothing is due at keep 3).
async fn seed(store: &DynamoSnapshotStore, prefix: &str, aggregates: usize, state_bytes: usize) {
    let records: Vec<SnapshotRecord> = (0..aggregates)
        .flat_map(|n| (1..=3).map(move |v| record(&format!("{prefix}-{n:05}"), v, state_bytes)))
        .collect();
    stream::iter(records)
        .map(|r| async move { store.put_if_absent(&r).await.map(|_| ()) })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sweep_never_reads_a_state_its_units_are_the_same_for_1_kb_and_100_kb_states() {
    let registry = Registry::builtin();
    let mut read_units = Vec::new();
    for state_bytes in [1_000, 100_000] {
        let tables = TestTables::create(&format!("sweep_state_{state_bytes}")).await;
        seed(&tables.snapshot_store(), "item", 20, state_bytes).await;
        let capacity = Capacity::default();
        let store = DynamoSnapshotStore::new(capacity.client().await, &tables.snapshots_table);
        // Pages of 10: DynamoDB Local ends an index page at 1 MB of the *base* items (11 of
        // 100 KB), the service at 1 MB of index entries; under both bounds the pages match.
        let mut request = PruneRequest::new(3);
        request.page_size = 10;
        let summary = prune(&store, &registry, &request).await.unwrap();
        assert_eq!((summary.scanned, summary.deleted), (60, 0), "{summary:?}");
        let spent = capacity.take();
        assert!(spent.keys().all(|op| op == "Scan(index)"), "{spent:?}");
        read_units.push((
            index_units(&spent),
            spent["Scan(index)"].index_bytes,
            units(&spent).0,
        ));
    }
    println!(
        "sweep of 60 snapshots, nothing due, 1 KB and 100 KB states: (billed read units, index bytes, DynamoDB Local's figure) {read_units:?}"
    );
    assert!(read_units[0].0 > 0.0);
    assert_eq!(read_units[0].0, read_units[1].0, "states are never read");
    assert_eq!(read_units[0].1, read_units[1].1, "the same index entries");
}

#[tokio::test]
async fn a_bounded_sweep_costs_the_same_at_two_table_sizes_and_covers_both_over_runs() {
    const BUDGET: usize = 100;
    let registry = Registry::builtin();
    let mut first_runs = Vec::new();
    for aggregates in [50, 500] {
        let tables = TestTables::create(&format!("sweep_budget_{aggregates}")).await;
        seed(&tables.snapshot_store(), "item", aggregates, 100).await;
        // One snapshot too many on one aggregate: the sweep finds it within a cycle of runs.
        tables
            .snapshot_store()
            .put_if_absent(&record("item-00007", 4, 100))
            .await
            .unwrap();
        let capacity = Capacity::default();
        let client = capacity.client().await;
        let store = DynamoSnapshotStore::new(client.clone(), &tables.snapshots_table);
        let positions = DynamoScanPositions::new(client, &tables.snapshots_table);
        let mut request = PruneRequest::new(3);
        request.segments = 2;
        request.key_budget = Some(BUDGET);
        // One cycle: as many runs as the budget takes to read the table, and one more (the
        // segments' shares do not end on the same run).
        let keys = aggregates * 3 + 1;
        let cycle = keys.div_ceil(BUDGET) + 1;
        let (mut deleted, mut scanned) = (0, 0);
        for run in 1..=cycle {
            let summary = prune_resuming(&store, &positions, &registry, &request)
                .await
                .unwrap();
            let spent = capacity.take();
            deleted += summary.deleted;
            scanned += summary.scanned;
            assert!(
                summary.scanned <= BUDGET as u64,
                "{aggregates}: run {run} read {} keys",
                summary.scanned
            );
            if run == 1 {
                first_runs.push((summary.scanned, index_units(&spent)));
            }
        }
        assert_eq!(deleted, 1, "{aggregates} aggregates: the extra snapshot");
        assert!(
            scanned >= keys as u64,
            "{aggregates}: one cycle reads the table"
        );
    }
    println!("bounded sweep, first run (keys read, scan read units) at 150 and 1,500 snapshots: {first_runs:?}");
    let (small, large) = (first_runs[0].1, first_runs[1].1);
    assert!(small > 0.0);
    assert!(
        (large - small).abs() <= 0.2 * small,
        "within 20 %: {first_runs:?}"
    );
}
