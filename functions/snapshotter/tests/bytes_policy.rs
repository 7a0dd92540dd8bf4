//! The bytes budget on in-memory stores: it trips at exactly the budget and not a byte under,
//! before the count; a load afterwards folds a tail within the budget; and what a record that
//! is not due reads to know the bytes (nothing when warm and the batch follows on, one read
//! of only the events in between otherwise, never any without a budget).

mod support;

use serde_json::json;
use snapshot_core::policy::{PolicySet, SnapshotPolicy, Strategy, TripReason};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::stored_size::event_bytes;
use snapshot_core::testing::stored_event;
use snapshot_core::EventEnvelope;
use snapshotter::{Action, BatchReport};
use support::Harness;

/// An inventory item's events whose orders carry `pad` extra bytes in their ids (created at
/// 1, then receipts, reservations and shipments, as `support::item_events`).
fn padded_events(id: &str, from: u64, to: u64, pad: usize) -> Vec<EventEnvelope> {
    let order = |s: u64| format!("o-{s}-{}", "x".repeat(pad));
    (from..=to)
        .map(|seq| match seq {
            1 => stored_event(
                id,
                1,
                "INVENTORY_ITEM",
                "ItemCreated",
                json!({"sku": format!("SKU-{id}"), "name": "widget", "reorderPoint": 3}),
            ),
            s if s % 3 == 0 => stored_event(
                id,
                s,
                "INVENTORY_ITEM",
                "StockReserved",
                json!({"orderId": order(s), "quantity": 1}),
            ),
            s if s % 3 == 1 => stored_event(
                id,
                s,
                "INVENTORY_ITEM",
                "StockShipped",
                json!({"orderId": order(s - 1), "quantity": 1}),
            ),
            s => stored_event(
                id,
                s,
                "INVENTORY_ITEM",
                "StockReceived",
                json!({"quantity": s}),
            ),
        })
        .collect()
}

fn bytes_of(events: &[EventEnvelope]) -> u64 {
    events.iter().map(event_bytes).sum()
}

fn budget_harness(budget: u64) -> Harness {
    Harness::new(&[
        ("SNAPSHOT_STRATEGY", "count"),
        ("SNAPSHOT_THRESHOLD", "100"),
        ("SNAPSHOT_BYTES_THRESHOLD", &budget.to_string()),
    ])
}

fn created(report: &BatchReport) -> Option<(u64, TripReason)> {
    match report.outcomes[0].result() {
        Ok(Action::Created {
            version, reason, ..
        }) => Some((*version, *reason)),
        _ => None,
    }
}

/// Delivers `events` without appending them again (they are in the event table already),
/// and says how many requests each store served for it.
async fn process(h: &mut Harness, events: &[EventEnvelope]) -> (BatchReport, u64, u64) {
    let batch = h.batch(events);
    let (events_before, snapshots_before) = (h.events.requests(), h.snapshots.requests());
    let report = h.snapshotter.process(batch, None).await;
    (
        report,
        h.events.requests() - events_before,
        h.snapshots.requests() - snapshots_before,
    )
}

#[tokio::test]
async fn the_budget_trips_at_exactly_its_bytes_and_not_a_byte_under() {
    let events = padded_events("item-1", 1, 6, 300);
    let exact = bytes_of(&events);
    assert!(exact > 1024, "{exact}");

    let mut under = budget_harness(exact + 1);
    let report = under.deliver(&events).await;
    assert!(
        matches!(report.outcomes[0].result(), Ok(Action::NotDue)),
        "one byte under: {:?}",
        report.outcomes
    );
    assert!(under.snapshot_versions("item-1").is_empty());

    let mut at = budget_harness(exact);
    let report = at.deliver(&events).await;
    assert_eq!(created(&report), Some((6, TripReason::Bytes)));
    let record = SnapshotStore::get(&*at.snapshots, "item-1", 6)
        .await
        .unwrap()
        .expect("snapshot at 6");
    assert_eq!(record.header.metadata.reason, "threshold:bytes");
    at.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn the_budget_trips_before_the_count_and_a_load_then_folds_a_tail_within_it() {
    let budget = 4096;
    let mut h = budget_harness(budget);
    let events = padded_events("item-1", 1, 40, 400);
    let mut snapshots = Vec::new();
    for pair in events.chunks(2) {
        let report = h.deliver(pair).await;
        if let Some((version, reason)) = created(&report) {
            assert_eq!(reason, TripReason::Bytes, "at {version}");
            snapshots.push(version);
        }
    }
    assert!(
        snapshots.len() >= 3,
        "40 events of ~500 bytes against 4 KB: {snapshots:?}"
    );
    assert!(snapshots.iter().all(|v| *v < 100), "long before the count");
    // Each snapshot was taken at the first batch whose end reached the budget.
    let mut previous = 0;
    for version in &snapshots {
        let since = |to: u64| bytes_of(&events[previous as usize..to as usize]);
        assert!(since(*version) >= budget, "{version}");
        assert!(
            since(version - 2) < budget,
            "{version}: not a batch earlier"
        );
        previous = *version;
    }
    h.assert_snapshots_match_replay().await;

    // A load folds the events after the newest snapshot: fewer bytes than the budget.
    let newest = *snapshots.last().unwrap();
    let repository = h.repository().with_policies(PolicySet {
        default: SnapshotPolicy {
            strategy: Strategy::Count,
            threshold: 100,
            bytes_threshold: Some(budget),
            ..SnapshotPolicy::default()
        },
        ..PolicySet::default()
    });
    let loaded = repository
        .load_kind(
            snapshot_core::Registry::builtin()
                .get("INVENTORY_ITEM")
                .unwrap()
                .as_ref(),
            "item-1",
        )
        .await
        .unwrap();
    assert_eq!(loaded.report.snapshot_version, Some(newest));
    assert_eq!(loaded.report.events_replayed, 40 - newest);
    assert!(bytes_of(&events[newest as usize..]) < budget);
    assert_eq!(
        loaded.report.round_trips, 1,
        "one request reaches back to it"
    );
}

#[tokio::test]
async fn a_record_that_is_not_due_reads_no_event_when_warm_and_only_the_gap_when_cold() {
    let mut h = budget_harness(64 * 1024);
    let events = padded_events("item-1", 1, 30, 200);
    h.append(&events).await;

    // Never snapshotted, first batch from sequence 1: its images are every byte.
    let (report, event_reads, _) = process(&mut h, &events[0..5]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(
        (event_reads, report.outcomes[0].counts().events_sized()),
        (0, 0)
    );

    // Warm, the next batch follows on: the container counted the bytes before it.
    let (report, event_reads, snapshot_reads) = process(&mut h, &events[5..10]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!((event_reads, snapshot_reads), (0, 0), "warm: no request");

    // Another container took 11..=15; this one gets 16..=20: it reads only 11..=15.
    let (report, event_reads, snapshot_reads) = process(&mut h, &events[15..20]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!((event_reads, snapshot_reads), (1, 0));
    assert_eq!(report.outcomes[0].counts().events_sized(), 5);

    // Cold: the head (none here: decided as no snapshot, the newest snapshot is not asked)
    // and every event since.
    h.snapshotter.heads().forget("item-1");
    let (report, event_reads, snapshot_reads) = process(&mut h, &events[20..25]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!((event_reads, snapshot_reads), (1, 1), "the head only");
    assert_eq!(report.outcomes[0].counts().events_sized(), 20);
    // The count is remembered: the next one is free again.
    let (_, event_reads, snapshot_reads) = process(&mut h, &events[25..30]).await;
    assert_eq!((event_reads, snapshot_reads), (0, 0));
}

#[tokio::test]
async fn after_a_snapshot_the_count_starts_again_and_a_cold_head_reads_only_since_it() {
    let mut h = budget_harness(2048);
    let events = padded_events("item-1", 1, 12, 900);
    assert!(bytes_of(&events[0..3]) < 2048 && bytes_of(&events[0..4]) >= 2048);
    assert!(bytes_of(&events[4..6]) < 2048, "5 and 6 stay under it");
    assert!(bytes_of(&events[7..12]) >= 2048, "8..=12 reach it alone");
    h.append(&events).await;
    let (report, ..) = process(&mut h, &events[0..4]).await;
    assert_eq!(created(&report), Some((4, TripReason::Bytes)));

    // Cold right after the snapshot: the head (half a unit on DynamoDB), and the bytes since
    // it are the batch's.
    h.snapshotter.heads().forget("item-1");
    let (report, event_reads, snapshot_reads) = process(&mut h, &events[4..5]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!((event_reads, snapshot_reads), (0, 1), "the head alone");

    // Cold: the store's head (one small read), then the one event between it and the batch.
    h.snapshotter.heads().forget("item-1");
    let (report, event_reads, snapshot_reads) = process(&mut h, &events[5..6]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!((event_reads, snapshot_reads), (1, 1), "the gap, the head");
    assert_eq!(report.outcomes[0].counts().events_sized(), 1);

    // Cold, and the batch alone reaches the budget: due without reading the gap.
    h.snapshotter.heads().forget("item-1");
    let (report, ..) = process(&mut h, &events[7..12]).await;
    assert_eq!(created(&report), Some((12, TripReason::Bytes)));
    assert_eq!(report.outcomes[0].counts().events_sized(), 0);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn without_a_budget_no_event_is_ever_read_to_decide() {
    let mut h = Harness::count(100);
    let events = padded_events("item-1", 1, 20, 2000);
    h.append(&events).await;
    process(&mut h, &events[0..5]).await;
    process(&mut h, &events[10..15]).await;
    h.snapshotter.heads().forget("item-1");
    let (report, event_reads, _) = process(&mut h, &events[15..20]).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(event_reads, 0);
    assert_eq!(report.outcomes[0].counts().events_sized(), 0);
}
