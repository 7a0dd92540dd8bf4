//! Retention on the write path and the bounded sweep, over the in-memory store: a write deletes
//! what falls out of keep-N from the head's list, never reading a state; invalid snapshots are
//! never counted and the newest valid one stays; a sweep reads at most its key budget and
//! covers the table over runs.

use snapshot_core::codec::SnapshotCodec;
use snapshot_core::memory::InMemorySnapshotStore;
use snapshot_core::ports::{PutOutcome, SnapshotStore};
use snapshot_core::pruning::{
    prune_resuming, put_retaining, MemoryScanPositions, PruneRequest, SeenSnapshot,
};
use snapshot_core::snapshot::{
    build_snapshot, InvalidMark, SnapshotMetadata, SnapshotRecord, SnapshotSubject,
};
use snapshot_core::Registry;

const ITEM: &str = "INVENTORY_ITEM";

fn record(aggregate_id: &str, version: u64, schema: u32) -> SnapshotRecord {
    let state = serde_json::json!({"id": aggregate_id, "onHand": version}).to_string();
    build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id,
            aggregate_type: ITEM,
            schema_version: schema,
            version,
            last_event_id: None,
        },
        state.into_bytes(),
        SnapshotMetadata::default(),
        1_700_000_000_000 + version as i64,
        None,
    )
    .unwrap()
}

fn versions_of(store: &InMemorySnapshotStore, aggregate_id: &str) -> Vec<u64> {
    store
        .keys()
        .into_iter()
        .filter(|k| k.aggregate_id == aggregate_id)
        .map(|k| k.version)
        .collect()
}

fn mark() -> InvalidMark {
    InvalidMark {
        reason: "test".to_owned(),
        at: 1,
        by: "test".to_owned(),
    }
}

async fn valid_versions(store: &InMemorySnapshotStore, id: &str) -> Vec<u64> {
    let page = store.headers(id, None, 10_000).await.unwrap();
    let mut valid: Vec<u64> = page
        .items
        .into_iter()
        .filter_map(Result::ok)
        .filter(|h| h.invalid.is_none())
        .map(|h| h.version)
        .collect();
    valid.sort_unstable();
    valid
}

#[tokio::test]
async fn each_write_past_keep_deletes_the_one_that_falls_out_without_reading() {
    let store = InMemorySnapshotStore::new();
    for version in 1..=3 {
        let retained = put_retaining(&store, &record("a", version, 1), 3, "test")
            .await
            .unwrap();
        assert_eq!(retained.outcome, PutOutcome::Created);
        assert!(retained.tracked);
        assert!(retained.deleted.is_empty());
    }
    for version in 4..=10 {
        let before = store.requests();
        let retained = put_retaining(&store, &record("a", version, 1), 3, "test")
            .await
            .unwrap();
        assert_eq!(retained.deleted, vec![version - 3]);
        // The put, the head's update (which hands back its list) and one batch delete: no read.
        assert_eq!(store.requests() - before, 3, "version {version}");
        assert_eq!(
            versions_of(&store, "a"),
            vec![version - 2, version - 1, version]
        );
    }
    let tracked: Vec<u64> = store.tracked("a").iter().map(|s| s.version).collect();
    assert_eq!(tracked, vec![10, 9, 8]);
}

#[tokio::test]
async fn a_redelivered_or_older_write_is_not_tracked_and_deletes_nothing() {
    let store = InMemorySnapshotStore::new();
    for version in [10, 20, 30] {
        put_retaining(&store, &record("a", version, 1), 2, "test")
            .await
            .unwrap();
    }
    assert_eq!(versions_of(&store, "a"), vec![20, 30]);
    // Redelivered: already there, the head does not move.
    let again = put_retaining(&store, &record("a", 30, 1), 2, "test")
        .await
        .unwrap();
    assert_eq!(again.outcome, PutOutcome::AlreadyExists);
    assert!(!again.tracked && again.deleted.is_empty());
    // Older than the head (another writer got further): written, untracked, nothing deleted.
    let older = put_retaining(&store, &record("a", 25, 1), 2, "test")
        .await
        .unwrap();
    assert_eq!(older.outcome, PutOutcome::Created);
    assert!(!older.tracked && older.deleted.is_empty());
    assert_eq!(versions_of(&store, "a"), vec![20, 25, 30]);
    // The next write counts only what was tracked: 25 is left for the sweep.
    let next = put_retaining(&store, &record("a", 40, 1), 2, "test")
        .await
        .unwrap();
    assert_eq!(next.deleted, vec![20]);
    assert_eq!(versions_of(&store, "a"), vec![25, 30, 40]);
}

#[tokio::test]
async fn a_marked_snapshot_restarts_tracking_so_it_is_never_counted() {
    let store = InMemorySnapshotStore::new();
    for version in 1..=3 {
        put_retaining(&store, &record("a", version, 1), 3, "test")
            .await
            .unwrap();
    }
    // 3 found invalid: the head and its list go with the mark.
    assert!(store.mark_invalid("a", 3, &mark()).await.unwrap());
    assert!(store.head("a").await.unwrap().is_none());
    assert!(store.tracked("a").is_empty());
    // Had 3 still counted, writing 4 would have deleted 1 though only 4, 2, 1 are valid.
    let next = put_retaining(&store, &record("a", 4, 1), 3, "test")
        .await
        .unwrap();
    assert!(next.tracked);
    assert!(next.deleted.is_empty());
    assert_eq!(valid_versions(&store, "a").await, vec![1, 2, 4]);
    // The invalid one is replaced at its version: tracked again, counted again.
    let replaced = put_retaining(&store, &record("a", 3, 1), 3, "test")
        .await
        .unwrap();
    assert_eq!(replaced.outcome, PutOutcome::Created);
    assert!(
        !replaced.tracked,
        "3 is below the head (4): the sweep covers it"
    );
    // A deleted snapshot drops the head too.
    put_retaining(&store, &record("a", 5, 1), 3, "test")
        .await
        .unwrap();
    assert!(store.delete("a", 1).await.unwrap());
    assert!(store.tracked("a").is_empty());
}

#[tokio::test]
async fn keep_one_always_keeps_the_newest_valid_snapshot() {
    let store = InMemorySnapshotStore::new();
    put_retaining(&store, &record("a", 1, 1), 1, "test")
        .await
        .unwrap();
    let second = put_retaining(&store, &record("a", 2, 1), 1, "test")
        .await
        .unwrap();
    assert_eq!(second.deleted, vec![1]);
    store.mark_invalid("a", 2, &mark()).await.unwrap();
    let third = put_retaining(&store, &record("a", 3, 1), 1, "test")
        .await
        .unwrap();
    assert!(third.deleted.is_empty());
    assert_eq!(valid_versions(&store, "a").await, vec![3]);
}

#[tokio::test]
async fn an_obsolete_schema_falls_out_at_once_and_retention_off_deletes_nothing() {
    let store = InMemorySnapshotStore::new();
    for version in 1..=2 {
        put_retaining(&store, &record("a", version, 1), 3, "test")
            .await
            .unwrap();
    }
    let upgraded = put_retaining(&store, &record("a", 3, 2), 3, "test")
        .await
        .unwrap();
    assert_eq!(upgraded.deleted, vec![2, 1]);
    for version in 4..=8 {
        let off = put_retaining(&store, &record("a", version, 2), 0, "test")
            .await
            .unwrap();
        assert!(!off.tracked && off.deleted.is_empty());
    }
    assert_eq!(versions_of(&store, "a"), vec![3, 4, 5, 6, 7, 8]);
    // Keep-N above what a head tracks: retention is the pruner's alone.
    let wide = put_retaining(&store, &record("a", 9, 2), 17, "test")
        .await
        .unwrap();
    assert!(!wide.tracked);
}

/// A seeded walk of writes (in order, redelivered, older), marks and deletes on a few
/// aggregates: after every write, the newest valid snapshot is there, and no write leaves an
/// aggregate with fewer valid snapshots than keep-N or than it had (counting the new one).
#[tokio::test]
async fn no_write_leaves_fewer_valid_snapshots_than_keep_or_than_it_had() {
    for keep in 1..=4 {
        let store = InMemorySnapshotStore::new();
        let mut rng = 0x5EED_u64 + keep as u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut tops = [0u64; 3];
        for _ in 0..600 {
            let which = (next() % 3) as usize;
            let id = format!("agg-{which}");
            let roll = next() % 100;
            if roll < 8 {
                let valid = valid_versions(&store, &id).await;
                if let Some(&version) = valid.get((next() % 4) as usize) {
                    store.mark_invalid(&id, version, &mark()).await.unwrap();
                }
                continue;
            }
            let version = if roll < 20 && tops[which] > 3 {
                tops[which] - next() % 3 // redelivered or older
            } else {
                tops[which] += 1 + next() % 5;
                tops[which]
            };
            let had = valid_versions(&store, &id).await;
            let retained = put_retaining(&store, &record(&id, version, 1), keep, "test")
                .await
                .unwrap();
            let after = valid_versions(&store, &id).await;
            let expected = (had.len() + usize::from(!had.contains(&version))).min(keep);
            assert!(
                after.len() >= expected,
                "keep {keep}: {id}@{version} left {after:?} (had {had:?}, deleted {:?})",
                retained.deleted
            );
            let newest = had.iter().copied().chain([version]).max();
            assert_eq!(
                after.last().copied(),
                newest,
                "keep {keep}: newest valid kept"
            );
        }
    }
}

#[tokio::test]
async fn a_bounded_sweep_reads_its_budget_whatever_the_table_size_and_covers_it_over_runs() {
    let registry = Registry::builtin();
    let mut per_run = Vec::new();
    for aggregates in [100usize, 1_000] {
        let store = InMemorySnapshotStore::new();
        // Three snapshots each, written without retention: nothing due at keep 3 ...
        for n in 0..aggregates {
            for version in 1..=3 {
                store
                    .put_if_absent(&record(&format!("agg-{n:05}"), version, 1))
                    .await
                    .unwrap();
            }
        }
        // ... but one aggregate with a snapshot too many, near the end of the key order.
        store
            .put_if_absent(&record(&format!("agg-{:05}", aggregates - 1), 4, 1))
            .await
            .unwrap();
        let positions = MemoryScanPositions::new();
        let mut request = PruneRequest::new(3);
        request.segments = 2;
        request.page_size = 50;
        request.key_budget = Some(120);
        let first = prune_resuming(&store, &positions, &registry, &request)
            .await
            .unwrap();
        assert!(first.scanned <= 120, "{aggregates} aggregates: {first:?}");
        per_run.push(first.scanned);
        // Over runs, the whole table is read and the extra snapshot goes.
        let mut runs = 1;
        let mut deleted = first.deleted;
        let mut complete = first.complete;
        while !complete {
            let summary = prune_resuming(&store, &positions, &registry, &request)
                .await
                .unwrap();
            assert!(summary.scanned <= 120);
            deleted += summary.deleted;
            complete = summary.complete;
            runs += 1;
            assert!(runs <= 3 * aggregates * 3 / 120 + 2, "no progress");
        }
        assert_eq!(deleted, 1, "{aggregates} aggregates");
        assert!(runs >= aggregates * 3 / 120, "{aggregates}: {runs} runs");
    }
    assert_eq!(per_run[0], per_run[1], "a run reads its budget at any size");
}

#[test]
fn tracked_lists_are_newest_first() {
    let s = |version| SeenSnapshot {
        version,
        schema_version: 1,
        invalid: false,
    };
    assert_eq!(
        snapshot_core::pruning::fallen_out(2, s(9), &[s(8), s(7), s(6)]),
        vec![7, 6]
    );
}
