//! Backfill on DynamoDB Local: the job record kept in the snapshot table survives
//! between runs, and the pruner's scheduled side resumes a started job one budgeted run at a
//! time until every obsolete aggregate has a snapshot of the current schema.

use integration_tests::TestTables;
use pruner::backfill::resume_backfill;
use snapshot_core::backfill::{plan, BackfillJob, BackfillJobStore, JobState};
use snapshot_core::clock::now_millis;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateRepository, Registry};
use snapshot_dynamo::DynamoJobStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_resumes_a_backfill_under_its_budget_until_done() {
    let tables = TestTables::create("backfill").await;
    let repo = AggregateRepository::new(
        tables.event_store(),
        tables.snapshot_store(),
        SnapshotCodec::default(),
    );
    let registry = Registry::builtin();
    let current = registry.get("INVENTORY_ITEM").unwrap().schema_version();
    for i in 0..4 {
        let id = format!("bf-{i}");
        let mut root = AggregateRoot::<InventoryItem>::new(&id);
        root.create("SKU-1", "Widget", 1).unwrap();
        for _ in 0..5 {
            root.receive(1, None).unwrap();
        }
        repo.save(&mut root, None).await.unwrap();
        let record = build_snapshot(
            &SnapshotCodec::default(),
            SnapshotSubject {
                aggregate_id: &id,
                aggregate_type: "INVENTORY_ITEM",
                schema_version: current - 1,
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
    }

    let jobs = DynamoJobStore::new(tables.client.clone(), &tables.snapshots_table);
    assert!(
        resume_backfill(&repo, &jobs, &registry, 6, None, None)
            .await
            .unwrap()
            .is_none(),
        "no job, nothing to resume"
    );
    let found = plan(repo.snapshots(), &registry).await.unwrap();
    assert_eq!((found.aggregates, found.events_to_read), (4, 4 * 6));
    let job = BackfillJob::start(found);
    jobs.save(&job).await.unwrap();

    // 6 events per run: one aggregate of 6 events each time.
    let mut progress = Vec::new();
    while let Some(after) = resume_backfill(&repo, &jobs, &registry, 6, None, None)
        .await
        .unwrap()
    {
        assert_eq!(jobs.load().await.unwrap().as_ref(), Some(&after));
        progress.push((after.done, after.total));
        assert!(progress.len() <= 4, "{progress:?}");
    }
    assert_eq!(progress, [(1, 4), (2, 4), (3, 4), (4, 4)]);
    let job = jobs.load().await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Complete);
    assert_eq!((job.runs, job.events_read, job.failed), (4, 24, 0));

    // Every aggregate now loads from a current snapshot; the job record is not one.
    assert_eq!(
        plan(repo.snapshots(), &registry).await.unwrap().aggregates,
        0
    );
    for i in 0..4 {
        let (_, report) = repo
            .load::<InventoryItem>(&format!("bf-{i}"))
            .await
            .unwrap();
        assert_eq!(report.snapshot_version, Some(6));
        assert_eq!(report.events_replayed, 0);
    }
}
