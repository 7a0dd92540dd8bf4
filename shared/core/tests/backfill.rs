//! Backfill after a schema change, on the in-memory adapters: the dry run's counts and
//! estimate, runs under a read budget resumed until done with `done / total`, invalid newest
//! snapshots redone, and a job larger than its record refilled by a new plan.

use std::sync::Arc;

use snapshot_core::backfill::{
    plan, read_units, run, BackfillJob, BackfillJobStore, InMemoryJobStore, JobState, RunLimits,
    MAX_PENDING_BYTES,
};
use snapshot_core::clock::now_millis;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, InvalidMark, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateKind, AggregateRepository, Registry};

type Repo = AggregateRepository<Arc<InMemoryEventStore>, Arc<InMemorySnapshotStore>>;

fn repo() -> Repo {
    AggregateRepository::new(
        Arc::new(InMemoryEventStore::new()),
        Arc::new(InMemorySnapshotStore::new()),
        SnapshotCodec::default(),
    )
}

fn item_kind() -> Arc<dyn AggregateKind> {
    Registry::builtin().get("INVENTORY_ITEM").unwrap().clone()
}

/// An item with `events` events and a snapshot at its version of `schema_version`.
async fn item_with_snapshot(repo: &Repo, id: &str, events: u64, schema_version: u32) -> u64 {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU-1", "Widget", 1).unwrap();
    for _ in 1..events {
        root.receive(1, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    let record = build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id: id,
            aggregate_type: "INVENTORY_ITEM",
            schema_version,
            version: root.version(),
            last_event_id: None,
        },
        serde_json::to_vec(root.state()).unwrap(),
        SnapshotMetadata::default(),
        now_millis(),
        None,
    )
    .unwrap();
    repo.snapshots().put_if_absent(&record).await.unwrap();
    root.version()
}

fn unlimited() -> RunLimits {
    RunLimits {
        read_budget: u64::MAX,
        deadline: None,
    }
}

#[tokio::test]
async fn the_dry_run_counts_obsolete_and_invalid_newest_snapshots_with_their_cost() {
    let repo = repo();
    let current = item_kind().schema_version();
    let old = current - 1;
    let mut expected_events = 0;
    let mut expected_units = 0;
    for (id, events) in [("old-a", 4), ("old-b", 9), ("old-c", 40)] {
        let v = item_with_snapshot(&repo, id, events, old).await;
        expected_events += v;
        expected_units += read_units(v);
    }
    // Current schema: nothing to do.
    item_with_snapshot(&repo, "current", 5, current).await;
    // Current schema but marked invalid: redone.
    let v = item_with_snapshot(&repo, "invalid", 6, current).await;
    repo.snapshots()
        .mark_invalid(
            "invalid",
            v,
            &InvalidMark {
                reason: "test".into(),
                at: now_millis(),
                by: "test".into(),
            },
        )
        .await
        .unwrap();
    expected_events += v;
    expected_units += read_units(v);

    let found = plan(repo.snapshots(), &Registry::builtin()).await.unwrap();
    assert_eq!(found.aggregates, 4);
    assert_eq!(found.events_to_read, expected_events);
    assert_eq!(expected_events, 4 + 9 + 40 + 6);
    assert_eq!(found.estimated_read_units, expected_units);
    assert_eq!(found.by_type.get("INVENTORY_ITEM"), Some(&4));
    let mut ids: Vec<_> = found
        .candidates
        .iter()
        .map(|c| c.aggregate_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["invalid", "old-a", "old-b", "old-c"]);
    // A dry run writes nothing.
    assert_eq!(repo.snapshots().keys().len(), 5);
}

#[tokio::test]
async fn a_job_runs_under_its_read_budget_and_resumes_until_done() {
    let repo = repo();
    let old = item_kind().schema_version() - 1;
    let mut versions = Vec::new();
    for i in 0..5 {
        versions.push(item_with_snapshot(&repo, &format!("item-{i}"), 8, old).await);
    }
    let jobs = InMemoryJobStore::default();
    let job = BackfillJob::start(plan(repo.snapshots(), &Registry::builtin()).await.unwrap());
    assert_eq!((job.done, job.total, job.state), (0, 5, JobState::Running));
    jobs.save(&job).await.unwrap();

    // 10 events per run: the first aggregate (8) leaves budget, the second spends it.
    let limits = RunLimits {
        read_budget: 10,
        deadline: None,
    };
    let mut progress = Vec::new();
    let mut job = jobs.load().await.unwrap().unwrap();
    while job.state == JobState::Running {
        job = run(job, &repo, &Registry::builtin(), &jobs, limits, None)
            .await
            .unwrap();
        // Each run saves where it stopped: the next one starts from the store.
        assert_eq!(jobs.load().await.unwrap().unwrap(), job);
        progress.push((job.done, job.total));
        job = jobs.load().await.unwrap().unwrap();
        assert!(progress.len() <= 5, "no progress: {progress:?}");
    }
    assert_eq!(progress, [(2, 5), (4, 5), (5, 5)]);
    assert_eq!(job.runs, 3);
    assert_eq!(job.failed, 0);
    assert_eq!(job.events_read, 5 * 8);

    // Nothing is left, and loads start from the new snapshots.
    assert_eq!(
        plan(repo.snapshots(), &Registry::builtin())
            .await
            .unwrap()
            .aggregates,
        0
    );
    for (i, version) in versions.iter().enumerate() {
        let (_, report) = repo
            .load::<InventoryItem>(&format!("item-{i}"))
            .await
            .unwrap();
        assert_eq!(report.snapshot_version, Some(*version));
        assert_eq!(report.events_replayed, 0);
    }
}

#[tokio::test]
async fn a_backfill_larger_than_its_record_is_refilled_under_the_same_job() {
    let repo = repo();
    let old = item_kind().schema_version() - 1;
    // Long ids: fewer than 200 fit the record's queue.
    let ids: Vec<String> = (0..200)
        .map(|i| format!("{i:04}-{}", "x".repeat(2000)))
        .collect();
    for id in &ids {
        item_with_snapshot(&repo, id, 2, old).await;
    }
    let jobs = InMemoryJobStore::default();
    let job = BackfillJob::start(plan(repo.snapshots(), &Registry::builtin()).await.unwrap());
    assert_eq!(job.total, 200);
    assert!(
        job.left_over > 0 && !job.pending.is_empty(),
        "{}",
        job.left_over
    );
    assert_eq!(job.pending.len() as u64 + job.left_over, 200);
    // The record stays well inside one DynamoDB item.
    let record = serde_json::to_vec(&job).unwrap();
    assert!(record.len() <= MAX_PENDING_BYTES + 1024, "{}", record.len());
    jobs.save(&job).await.unwrap();

    let first = run(job, &repo, &Registry::builtin(), &jobs, unlimited(), None)
        .await
        .unwrap();
    assert_eq!(
        first.state,
        JobState::Running,
        "the left-over aggregates remain"
    );
    let second = run(
        first.clone(),
        &repo,
        &Registry::builtin(),
        &jobs,
        unlimited(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(second.job_id, first.job_id);
    assert_eq!(second.state, JobState::Complete);
    assert_eq!((second.done, second.total, second.failed), (200, 200, 0));
    assert_eq!(
        plan(repo.snapshots(), &Registry::builtin())
            .await
            .unwrap()
            .aggregates,
        0
    );
}
