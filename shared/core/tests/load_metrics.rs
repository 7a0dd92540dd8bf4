//! Load telemetry: loads through metered stores report events folded, snapshot age, invalid
//! snapshots skipped, full replays and requests, and a flush starts over.

use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::load_metrics::{LoadTelemetry, LoadTotals, LOADS, LOAD_REQUESTS};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{AggregateRepository, Registry};

#[tokio::test]
async fn loads_report_what_they_cost() {
    let telemetry = LoadTelemetry::new("inventory-service");
    let repo = AggregateRepository::new(
        telemetry.meter(InMemoryEventStore::new()),
        telemetry.meter(InMemorySnapshotStore::new()),
        SnapshotCodec::default(),
    );
    let mut root = AggregateRoot::<InventoryItem>::new("i-1");
    root.create("SKU", "Thing", 1).unwrap();
    for _ in 0..9 {
        root.receive(1, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    // Saving is not a load: only its request is counted.
    assert_eq!(telemetry.totals().requests, 1);
    telemetry.take();

    // No snapshot: a full replay of 10 events (one snapshot query, one event read).
    let (_, report) = repo.load::<InventoryItem>("i-1").await.unwrap();
    telemetry.record(&report);
    assert_eq!(
        telemetry.totals(),
        LoadTotals {
            loads: 1,
            events_folded: 10,
            snapshot_age_events_sum: 10,
            snapshot_age_events_max: 10,
            invalid_skipped: 0,
            full_replays: 1,
            requests: 2,
        }
    );

    // A snapshot at 10 and 3 more events: the next load folds 3 on top of it.
    let kind = Registry::builtin().get("INVENTORY_ITEM").unwrap().clone();
    repo.snapshot_now(kind.as_ref(), "i-1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    for _ in 0..3 {
        root.receive(1, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    telemetry.take();
    let (_, report) = repo.load::<InventoryItem>("i-1").await.unwrap();
    telemetry.record(&report);
    let totals = telemetry.totals();
    assert_eq!(totals.events_folded, 3);
    assert_eq!(totals.snapshot_age_events_max, 3);
    assert_eq!(totals.full_replays, 0);
    assert_eq!(totals.requests, 2);

    // A newer snapshot marked invalid is passed over (counted), the one at 10 used.
    repo.snapshot_now(kind.as_ref(), "i-1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    let mark = snapshot_core::snapshot::InvalidMark {
        reason: "test".into(),
        at: 1,
        by: "test".into(),
    };
    assert!(repo
        .snapshots()
        .mark_invalid("i-1", 13, &mark)
        .await
        .unwrap());
    telemetry.take();
    let (_, report) = repo.load::<InventoryItem>("i-1").await.unwrap();
    telemetry.record(&report);
    let totals = telemetry.totals();
    assert_eq!(report.snapshot_version, Some(10));
    assert_eq!(totals.invalid_skipped, 1);
    assert_eq!(totals.events_folded, 3);
    assert_eq!(totals.snapshot_age_events_max, 3);
    let emf = telemetry.take().to_emf();
    assert_eq!(emf[snapshot_core::load_metrics::LOAD_INVALID_SKIPPED], 1.0);

    // Back to the valid newest: a snapshot of the same content replaces the marked one.
    repo.snapshot_now(kind.as_ref(), "i-1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    telemetry.take();
    let (_, report) = repo.load::<InventoryItem>("i-1").await.unwrap();
    telemetry.record(&report);
    assert_eq!(report.snapshot_version, Some(13));
    let emf = telemetry.take().to_emf();
    assert_eq!(emf["Function"], "inventory-service");
    assert_eq!(emf[LOADS], 1.0);
    assert_eq!(emf[LOAD_REQUESTS], 2.0);
    assert_eq!(
        telemetry.totals(),
        LoadTotals::default(),
        "a flush starts over"
    );
}
