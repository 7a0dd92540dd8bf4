//! Snapshot retention over the in-memory store: the keep-N rule, obsolete schemas, dry runs,
//! pagination across aggregates, deadlines and convergence, single aggregates, failures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use proptest::prelude::*;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::error::StoreError;
use snapshot_core::memory::InMemorySnapshotStore;
use snapshot_core::ports::{Page, SnapshotStore, SnapshotStoreDecorator};
use snapshot_core::pruning::{
    prune, prune_resuming, Deadline, MemoryScanPositions, PruneError, PruneRequest, Retention,
    ScanPositions, SeenSnapshot, SnapshotRef, StartOver,
};
use snapshot_core::snapshot::{
    build_snapshot, SnapshotKey, SnapshotMetadata, SnapshotRecord, SnapshotSubject, SnapshotSummary,
};
use snapshot_core::Registry;

const ITEM: &str = "INVENTORY_ITEM";
const CURRENT: u32 = 1;

fn record(aggregate_id: &str, aggregate_type: &str, version: u64, schema: u32) -> SnapshotRecord {
    let state = serde_json::json!({"id": aggregate_id, "onHand": version}).to_string();
    build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id,
            aggregate_type,
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

async fn seed(store: &InMemorySnapshotStore, aggregate_id: &str, versions: &[(u64, u32)]) {
    for &(version, schema) in versions {
        store
            .put_if_absent(&record(aggregate_id, ITEM, version, schema))
            .await
            .unwrap();
    }
}

fn current(versions: impl IntoIterator<Item = u64>) -> Vec<(u64, u32)> {
    versions.into_iter().map(|v| (v, CURRENT)).collect()
}

fn versions_of(store: &InMemorySnapshotStore, aggregate_id: &str) -> Vec<u64> {
    store
        .keys()
        .into_iter()
        .filter(|k| k.aggregate_id == aggregate_id)
        .map(|k| k.version)
        .collect()
}

fn request(keep: usize) -> PruneRequest {
    PruneRequest::new(keep)
}

/// Reached after `checks` checks (page reads and delete batches).
fn after_checks(checks: usize) -> Deadline {
    let seen = Arc::new(AtomicUsize::new(0));
    Deadline::when(move || seen.fetch_add(1, Ordering::SeqCst) >= checks)
}

async fn three_by_ten() -> InMemorySnapshotStore {
    let store = InMemorySnapshotStore::new();
    for id in ["item-a", "item-b", "item-c"] {
        seed(&store, id, &current(1..=10)).await;
    }
    store
}

#[tokio::test]
async fn three_aggregates_of_ten_keep_three_leaves_the_three_newest_of_each() {
    let store = three_by_ten().await;
    let summary = prune(&store, &Registry::builtin(), &request(3))
        .await
        .unwrap();
    for id in ["item-a", "item-b", "item-c"] {
        assert_eq!(versions_of(&store, id), vec![8, 9, 10], "{id}");
    }
    assert_eq!(summary.scanned, 30);
    assert_eq!(summary.aggregates, 3);
    assert_eq!(summary.deleted, 21);
    assert_eq!(summary.kept, 9);
    assert!(summary.complete);
    assert!(!summary.dry_run);
}

#[tokio::test]
async fn pages_smaller_than_an_aggregate_still_decide_on_all_its_snapshots() {
    for (segments, page_size, buffer_keys) in [(1, 4, 10_000), (4, 3, 10_000), (1, 4, 5), (2, 1, 1)]
    {
        let store = three_by_ten().await;
        let mut req = request(3);
        req.segments = segments;
        req.page_size = page_size;
        req.buffer_keys = buffer_keys;
        let summary = prune(&store, &Registry::builtin(), &req).await.unwrap();
        for id in ["item-a", "item-b", "item-c"] {
            assert_eq!(
                versions_of(&store, id),
                vec![8, 9, 10],
                "{id} with {segments} segments, pages of {page_size}, buffer {buffer_keys}"
            );
        }
        assert_eq!(summary.deleted, 21);
        assert!(store.requests() > 3, "pages were read one by one");
    }
}

#[tokio::test]
async fn dry_run_deletes_nothing_and_reports_what_it_would_delete() {
    let store = three_by_ten().await;
    let before = store.keys();
    let mut req = request(3);
    req.dry_run = true;
    let summary = prune(&store, &Registry::builtin(), &req).await.unwrap();
    assert_eq!(store.keys(), before, "nothing deleted");
    assert!(summary.dry_run);
    assert_eq!(summary.deleted, 21);
    assert_eq!(summary.kept, 9);
    let expected: Vec<SnapshotRef> = ["item-a", "item-b", "item-c"]
        .iter()
        .flat_map(|id| {
            (1..=7).map(|version| SnapshotRef {
                aggregate_id: (*id).to_owned(),
                version,
            })
        })
        .collect();
    assert_eq!(summary.would_delete, expected);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["dryRun"], true);
    assert_eq!(json["wouldDelete"][0]["aggregateId"], "item-a");
}

#[tokio::test]
async fn a_second_run_deletes_nothing() {
    let store = three_by_ten().await;
    prune(&store, &Registry::builtin(), &request(3))
        .await
        .unwrap();
    let again = prune(&store, &Registry::builtin(), &request(3))
        .await
        .unwrap();
    assert_eq!(again.deleted, 0);
    assert_eq!(again.kept, 9);
    assert_eq!(store.keys().len(), 9);
}

#[tokio::test]
async fn obsolete_schema_snapshots_go_while_the_newest_usable_one_stays() {
    let registry = Registry::new().with::<snapshot_core::domain::InventoryItem>();
    let store = InMemorySnapshotStore::new();
    // Current schema is 1; the "obsolete" ones are 0. The newest three are obsolete.
    seed(
        &store,
        "mixed",
        &[(1, 1), (2, 1), (3, 0), (4, 1), (5, 0), (6, 0), (7, 0)],
    )
    .await;
    seed(&store, "fresh", &[(1, 0), (2, 0), (3, 1), (4, 0), (5, 1)]).await;
    seed(&store, "unusable", &[(1, 0), (2, 0), (3, 0)]).await;
    prune(&store, &registry, &request(3)).await.unwrap();
    // mixed: 7 is the newest (kept), 4 the newest usable (kept beyond the newest three).
    assert_eq!(versions_of(&store, "mixed"), vec![4, 7]);
    // fresh: newest three are 5, 4(obsolete), 3 → 4 goes, 1 and 2 are beyond three.
    assert_eq!(versions_of(&store, "fresh"), vec![3, 5]);
    // Nothing usable: the newest stays so the aggregate never loses everything.
    assert_eq!(versions_of(&store, "unusable"), vec![3]);
}

#[tokio::test]
async fn unknown_aggregate_types_are_left_alone() {
    let store = InMemorySnapshotStore::new();
    for version in 1..=6 {
        store
            .put_if_absent(&record("ghost-1", "GHOST", version, 1))
            .await
            .unwrap();
    }
    seed(&store, "item-a", &current(1..=6)).await;
    let summary = prune(&store, &Registry::builtin(), &request(2))
        .await
        .unwrap();
    assert_eq!(versions_of(&store, "ghost-1"), (1..=6).collect::<Vec<_>>());
    assert_eq!(versions_of(&store, "item-a"), vec![5, 6]);
    assert_eq!(summary.skipped, 6);
    assert_eq!(summary.aggregates, 1);
}

/// What the rule allows to delete given the full view, per aggregate.
fn allowed(original: &BTreeMap<String, Vec<(u64, u32)>>, keep: usize) -> Vec<SnapshotKey> {
    let rule = Retention {
        keep,
        current_schema: CURRENT,
    };
    original
        .iter()
        .flat_map(|(id, versions)| {
            let seen: Vec<SeenSnapshot> = versions
                .iter()
                .map(|&(version, schema_version)| SeenSnapshot {
                    version,
                    schema_version,
                    invalid: false,
                })
                .collect();
            rule.deletions(&seen)
                .into_iter()
                .map(move |version| SnapshotKey {
                    aggregate_id: id.clone(),
                    version,
                })
        })
        .collect()
}

#[tokio::test]
async fn a_run_cut_short_at_any_point_deletes_only_what_a_full_run_would_and_the_next_converges() {
    let mut original: BTreeMap<String, Vec<(u64, u32)>> = BTreeMap::new();
    for n in 0..8 {
        let mut versions = current(1..=(4 + n));
        versions[0].1 = 0; // the oldest of each is obsolete
        original.insert(format!("item-{n}"), versions);
    }
    let keep = 3;
    let deletable = allowed(&original, keep);
    let (mut cut_short, mut cut_after_progress) = (0, 0);
    for checks in 0..40 {
        let store = InMemorySnapshotStore::new();
        for (id, versions) in &original {
            seed(&store, id, versions).await;
        }
        let mut req = request(keep);
        req.segments = 2;
        req.page_size = 3;
        req.buffer_keys = 4;
        req.deadline = after_checks(checks);
        let first = prune(&store, &Registry::builtin(), &req).await.unwrap();
        if !first.complete {
            cut_short += 1;
            if first.deleted > 0 {
                cut_after_progress += 1;
            }
        }
        let remaining = store.keys();
        for (id, versions) in &original {
            for &(version, _) in versions {
                let key = SnapshotKey {
                    aggregate_id: id.clone(),
                    version,
                };
                assert!(
                    remaining.contains(&key) || deletable.contains(&key),
                    "cut after {checks} checks deleted {id}@{version}, which the rule keeps"
                );
            }
            let newest = versions.iter().map(|v| v.0).max().unwrap();
            assert!(versions_of(&store, id).contains(&newest), "newest of {id}");
            assert!(
                versions_of(&store, id).len() >= keep,
                "{id} has at least {keep}"
            );
        }
        req.deadline = Deadline::none();
        let second = prune(&store, &Registry::builtin(), &req).await.unwrap();
        assert!(second.complete);
        for id in original.keys() {
            let n = versions_of(&store, id).len();
            assert_eq!(n, keep, "{id} converged after a run cut at {checks} checks");
        }
    }
    assert!(
        cut_short > 10,
        "the deadline cut most runs short ({cut_short})"
    );
    assert!(
        cut_after_progress > 5,
        "runs cut short had deleted some ({cut_after_progress})"
    );
}

#[tokio::test]
async fn a_deadline_already_passed_reads_and_deletes_nothing() {
    let store = three_by_ten().await;
    let mut req = request(3);
    req.deadline = after_checks(0);
    let summary = prune(&store, &Registry::builtin(), &req).await.unwrap();
    assert!(!summary.complete);
    assert_eq!(summary.scanned, 0);
    assert_eq!(store.keys().len(), 30);
}

#[tokio::test]
async fn a_single_aggregate_is_pruned_through_its_headers_only() {
    let store = three_by_ten().await;
    let before = store.requests();
    let mut req = request(2);
    req.aggregate_id = Some("item-b".to_owned());
    req.page_size = 3;
    let summary = prune(&store, &Registry::builtin(), &req).await.unwrap();
    assert_eq!(versions_of(&store, "item-b"), vec![9, 10]);
    assert_eq!(versions_of(&store, "item-a").len(), 10);
    assert_eq!(versions_of(&store, "item-c").len(), 10);
    assert_eq!(summary.scanned, 10);
    assert_eq!(summary.aggregates, 1);
    assert_eq!(summary.deleted, 8);
    // 4 header pages of 3 and one delete batch.
    assert_eq!(store.requests() - before, 5);
}

#[tokio::test]
async fn a_single_aggregate_cut_short_deletes_nothing_undecided_and_the_next_run_converges() {
    let store = three_by_ten().await;
    let mut req = request(2);
    req.aggregate_id = Some("item-a".to_owned());
    req.page_size = 4;
    req.deadline = after_checks(2);
    let summary = prune(&store, &Registry::builtin(), &req).await.unwrap();
    assert!(!summary.complete);
    assert_eq!(summary.scanned, 8, "two pages read before the deadline");
    assert_eq!(summary.deleted, 0);
    assert_eq!(versions_of(&store, "item-a").len(), 10);
    req.deadline = Deadline::none();
    let summary = prune(&store, &Registry::builtin(), &req).await.unwrap();
    assert!(summary.complete);
    assert_eq!(versions_of(&store, "item-a"), vec![9, 10]);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_any_read() {
    let store = three_by_ten().await;
    let cases = [
        (request(0), "maxSnapshots"),
        (
            PruneRequest {
                aggregate_id: Some("  ".to_owned()),
                ..request(3)
            },
            "aggregateId",
        ),
        (
            PruneRequest {
                aggregate_id: Some("bad\nid".to_owned()),
                ..request(3)
            },
            "aggregateId",
        ),
        (
            PruneRequest {
                segments: 0,
                ..request(3)
            },
            "segments",
        ),
    ];
    for (req, field) in cases {
        match prune(&store, &Registry::builtin(), &req).await {
            Err(PruneError::InvalidRequest { field: found, .. }) => assert_eq!(found, field),
            other => panic!("expected InvalidRequest({field}), got {other:?}"),
        }
    }
    // Each seeding put is two requests: the snapshot and its head.
    assert_eq!(store.requests(), 60, "only the seeding writes");
    assert_eq!(store.keys().len(), 30);
}

/// Fails every scan of one segment; the others go on.
struct FailingSegment {
    inner: InMemorySnapshotStore,
    segment: u32,
}

#[async_trait]
impl SnapshotStoreDecorator for FailingSegment {
    type Inner = InMemorySnapshotStore;

    fn delegate(&self) -> &InMemorySnapshotStore {
        &self.inner
    }

    async fn scan_summaries(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<SnapshotKey>,
        limit: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        if segment == self.segment {
            return Err(StoreError::backend("Scan", "throttled"));
        }
        self.inner
            .scan_summaries(segment, total_segments, cursor, limit)
            .await
    }
}

#[tokio::test]
async fn a_failing_segment_fails_the_run_and_reports_what_the_others_did() {
    let inner = InMemorySnapshotStore::new();
    for n in 0..12 {
        seed(&inner, &format!("item-{n}"), &current(1..=5)).await;
    }
    let failing = snapshot_core::memory::segment_of("item-0", 4);
    let store = FailingSegment {
        inner,
        segment: failing,
    };
    let err = prune(&store, &Registry::builtin(), &request(2))
        .await
        .unwrap_err();
    let PruneError::Store { partial, source } = err else {
        panic!("expected a store error");
    };
    assert!(source.to_string().contains("throttled"));
    assert!(!partial.complete);
    assert_eq!(
        versions_of(&store.inner, "item-0").len(),
        5,
        "its segment untouched"
    );
    let pruned: u64 = (0..12)
        .map(|n| format!("item-{n}"))
        .filter(|id| snapshot_core::memory::segment_of(id, 4) != failing)
        .map(|id| {
            assert_eq!(versions_of(&store.inner, &id), vec![4, 5]);
            3
        })
        .sum();
    assert_eq!(partial.deleted, pruned);
}

#[tokio::test]
async fn metrics_name_what_was_pruned() {
    let store = three_by_ten().await;
    let summary = prune(&store, &Registry::builtin(), &request(3))
        .await
        .unwrap();
    let metrics = summary.metrics("pruner");
    assert_eq!(metrics.get("SnapshotsPruned"), Some(21.0));
    assert_eq!(metrics.get("AggregatesScanned"), Some(3.0));
    assert!(metrics.get("Duration").is_some());
    let mut dry = summary.clone();
    dry.dry_run = true;
    assert_eq!(dry.metrics("pruner").get("SnapshotsPruned"), Some(0.0));
}

fn snapshots() -> impl Strategy<Value = Vec<SeenSnapshot>> {
    prop::collection::btree_map(1u64..60, 0u32..4, 0..25).prop_map(|m| {
        m.into_iter()
            .map(|(version, schema_version)| SeenSnapshot {
                version,
                schema_version,
                invalid: false,
            })
            .collect()
    })
}

proptest! {
    /// Deciding on part of an aggregate's snapshots never deletes one the full view keeps:
    /// why a run cut short is safe.
    #[test]
    fn the_rule_is_monotone(all in snapshots(), mask in prop::collection::vec(any::<bool>(), 25),
                            keep in 1usize..6, current_schema in 0u32..4) {
        let rule = Retention { keep, current_schema };
        let subset: Vec<SeenSnapshot> = all.iter().zip(&mask).filter(|(_, m)| **m).map(|(s, _)| *s).collect();
        let full = rule.deletions(&all);
        for version in rule.deletions(&subset) {
            prop_assert!(full.contains(&version), "{version} deleted from a subset only");
        }
    }

    #[test]
    fn the_rule_keeps_the_newest_the_newest_usable_and_the_newest_n_current(
        all in snapshots(), keep in 1usize..6, current_schema in 0u32..4) {
        let rule = Retention { keep, current_schema };
        let doomed = rule.deletions(&all);
        let mut ranked = all.clone();
        ranked.sort_by_key(|s| std::cmp::Reverse(s.version));
        if let Some(newest) = ranked.first() {
            prop_assert!(!doomed.contains(&newest.version));
        }
        if let Some(usable) = ranked.iter().find(|s| s.schema_version == current_schema) {
            prop_assert!(!doomed.contains(&usable.version));
        }
        for s in ranked.iter().take(keep).filter(|s| s.schema_version >= current_schema) {
            prop_assert!(!doomed.contains(&s.version));
        }
        for s in ranked.iter().skip(keep) {
            let newest_usable = ranked.iter().find(|u| u.schema_version == current_schema);
            if newest_usable.map(|u| u.version) != Some(s.version) {
                prop_assert!(doomed.contains(&s.version), "{} beyond keep stays", s.version);
            }
        }
    }
}

/// Runs with a budget of `checks` deadline checks each (page reads and delete batches) until
/// every aggregate keeps exactly `keep`; returns how many runs that took (`None`: not within
/// `max_runs`). Every run is checked never to go below keep-N.
async fn runs_to_converge<P: ScanPositions>(
    positions: &P,
    checks: usize,
    max_runs: usize,
) -> (Option<usize>, InMemorySnapshotStore) {
    let store = InMemorySnapshotStore::new();
    // 100 aggregates already pruned (three snapshots each) come first in key order, then 10
    // with eight: a run that starts over spends its budget re-reading the first part.
    let ids: Vec<String> = (0..110).map(|n| format!("item-{n:03}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let first = if n < 100 { 6 } else { 1 };
        seed(&store, id, &current(first..=8)).await;
    }
    let keep = 3;
    for run in 1..=max_runs {
        let mut req = request(keep);
        req.segments = 1;
        req.page_size = 10;
        req.buffer_keys = 10;
        req.deadline = after_checks(checks);
        prune_resuming(&store, positions, &Registry::builtin(), &req)
            .await
            .unwrap();
        let mut converged = true;
        for id in &ids {
            let left = versions_of(&store, id);
            assert!(left.len() >= keep, "run {run}: {id} below keep-N: {left:?}");
            assert!(left.contains(&8), "run {run}: {id} lost its newest");
            converged &= left.len() == keep;
        }
        if converged {
            return (Some(run), store);
        }
    }
    (None, store)
}

#[tokio::test]
async fn a_table_too_large_for_one_run_is_pruned_over_several_runs_that_resume() {
    // About six page reads per run; the table holds 33 pages (the first 30 already pruned).
    let budget = 6;
    let (restarting, _) = runs_to_converge(&StartOver, budget, 30).await;
    assert_eq!(
        restarting, None,
        "starting over every run never gets past the first part of the table"
    );
    let positions = MemoryScanPositions::new();
    let (resuming, store) = runs_to_converge(&positions, budget, 30).await;
    let runs = resuming.expect("resuming runs converge");
    assert!(
        runs >= 5,
        "the budget is small enough to need at least five runs ({runs})"
    );
    assert_eq!(store.keys().len(), 110 * 3);
    // A segment read to its end starts over next time.
    let mut req = request(3);
    req.segments = 1;
    req.page_size = 10;
    req.buffer_keys = 10;
    let last = prune_resuming(&store, &positions, &Registry::builtin(), &req)
        .await
        .unwrap();
    assert!(last.complete);
    assert_eq!(last.deleted, 0);
    assert_eq!(positions.load(0, 1).await.unwrap(), None);
}

#[tokio::test]
async fn a_position_saved_for_another_segment_count_is_not_used() {
    let positions = MemoryScanPositions::new();
    let key = SnapshotKey {
        aggregate_id: "item-009".into(),
        version: 4,
    };
    positions.save(0, 2, Some(&key)).await.unwrap();
    assert_eq!(positions.load(0, 2).await.unwrap(), Some(key));
    assert_eq!(positions.load(0, 4).await.unwrap(), None);
    positions.save(0, 2, None).await.unwrap();
    assert_eq!(positions.load(0, 2).await.unwrap(), None);
}

#[tokio::test]
async fn a_run_whose_last_deletes_the_deadline_stops_resumes_before_them_not_from_the_start() {
    // Key order a8 | b1 b2 | c1 c2, two keys a page: the deadline's fifth check is the delete
    // batch sent after the segment's last page (c1). That run read to the end of the segment
    // but did not delete everything it decided; the next run must read c again, not start over.
    let store = InMemorySnapshotStore::new();
    seed(&store, "item-a", &current([8])).await;
    seed(&store, "item-b", &current(1..=2)).await;
    seed(&store, "item-c", &current(1..=2)).await;
    let positions = MemoryScanPositions::new();
    let mut req = request(1);
    req.segments = 1;
    req.page_size = 2;
    req.buffer_keys = 2;
    req.deadline = after_checks(4);
    let cut = prune_resuming(&store, &positions, &Registry::builtin(), &req)
        .await
        .unwrap();
    assert!(!cut.complete, "{cut:?}");
    assert_eq!(cut.deleted, 1, "b1 only: {cut:?}");
    assert_eq!(versions_of(&store, "item-c"), vec![1, 2]);
    let resume_at = SnapshotKey {
        aggregate_id: "item-b".into(),
        version: 2,
    };
    assert_eq!(positions.load(0, 1).await.unwrap(), Some(resume_at));

    req.deadline = Deadline::none();
    let next = prune_resuming(&store, &positions, &Registry::builtin(), &req)
        .await
        .unwrap();
    assert!(next.complete);
    assert_eq!(next.scanned, 2, "c1 and c2 again, nothing before them");
    assert_eq!(next.deleted, 1);
    assert_eq!(versions_of(&store, "item-c"), vec![2]);
    assert_eq!(positions.load(0, 1).await.unwrap(), None);
}
