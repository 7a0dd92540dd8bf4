//! Policy decisions of the snapshotter on in-memory stores: count thresholds at N−1, N, N+1,
//! the time policy and hybrid.

mod support;

use snapshot_core::policy::TripReason;
use snapshotter::metrics::{AGGREGATES_EVALUATED, SNAPSHOTS_CREATED};
use snapshotter::Action;
use support::{item_events, metric, Harness, HOUR, T0};

/// Aggregate with a snapshot at 10 (threshold 10), then a batch bringing it to `10 + new`.
async fn count_case(new_events: u64) -> (Harness, snapshotter::BatchReport) {
    let mut h = Harness::count(10);
    let first = h.deliver(&item_events("item-1", 1, 10)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10], "{first:?}");
    let report = h.deliver(&item_events("item-1", 11, 10 + new_events)).await;
    (h, report)
}

#[tokio::test]
async fn count_threshold_minus_one_does_not_trip() {
    let (h, report) = count_case(9).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10]);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 0);
    assert_eq!(metric(&report, AGGREGATES_EVALUATED), 1);
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
}

#[tokio::test]
async fn count_threshold_exactly_n_trips() {
    let (h, report) = count_case(10).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10, 20]);
    assert_eq!(metric(&report, SNAPSHOTS_CREATED), 1);
    assert!(matches!(
        report.outcomes[0].result(),
        Ok(Action::Created {
            version: 20,
            reason: TripReason::Count,
            ..
        })
    ));
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn count_threshold_plus_one_trips_at_the_highest_sequence() {
    let (h, _) = count_case(11).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10, 21]);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn count_threshold_counts_events_across_batches() {
    let mut h = Harness::count(10);
    h.deliver(&item_events("item-1", 1, 4)).await;
    h.deliver(&item_events("item-1", 5, 9)).await;
    assert!(h.snapshot_versions("item-1").is_empty());
    h.deliver(&item_events("item-1", 10, 10)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10]);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn time_policy_trips_once_the_interval_has_passed() {
    let mut h = Harness::new(&[
        ("SNAPSHOT_STRATEGY", "time"),
        ("SNAPSHOT_INTERVAL_HOURS", "1"),
    ]);
    // No snapshot yet: overdue at once.
    h.deliver(&item_events("item-1", 1, 3)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![3]);

    h.set_now(T0 + HOUR - 1);
    let early = h.deliver(&item_events("item-1", 4, 4)).await;
    assert!(matches!(early.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(h.snapshot_versions("item-1"), vec![3]);

    h.set_now(T0 + HOUR);
    let due = h.deliver(&item_events("item-1", 5, 5)).await;
    assert!(matches!(
        due.outcomes[0].result(),
        Ok(Action::Created {
            version: 5,
            reason: TripReason::Time,
            ..
        })
    ));
    assert_eq!(h.snapshot_versions("item-1"), vec![3, 5]);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn time_policy_never_trips_without_new_events() {
    let mut h = Harness::new(&[
        ("SNAPSHOT_STRATEGY", "time"),
        ("SNAPSHOT_INTERVAL_HOURS", "1"),
    ]);
    let events = item_events("item-1", 1, 3);
    h.deliver(&events).await;
    h.set_now(T0 + 10 * HOUR);
    // Redelivery of the same events long after: nothing is new.
    let batch = h.batch(&events);
    let report = h.snapshotter.process(batch, None).await;
    assert!(matches!(
        report.outcomes[0].result(),
        Ok(Action::UpToDate {
            snapshot_version: 3
        })
    ));
    assert_eq!(h.snapshot_versions("item-1"), vec![3]);
}

#[tokio::test]
async fn hybrid_trips_on_count_or_on_time_whichever_comes_first() {
    let mut h = Harness::new(&[
        ("SNAPSHOT_STRATEGY", "hybrid"),
        ("SNAPSHOT_THRESHOLD", "5"),
        ("SNAPSHOT_INTERVAL_HOURS", "1"),
    ]);
    // A new aggregate has no reference point for time: under hybrid only the count decides,
    // however late it is.
    h.set_now(T0 + 10 * HOUR);
    h.deliver(&item_events("item-1", 1, 2)).await;
    assert!(h.snapshot_versions("item-1").is_empty());
    // Threshold reached: count trips.
    let by_count = h.deliver(&item_events("item-1", 3, 5)).await;
    assert!(matches!(
        by_count.outcomes[0].result(),
        Ok(Action::Created {
            version: 5,
            reason: TripReason::Count,
            ..
        })
    ));
    // Within the interval and below the threshold: nothing.
    h.set_now(T0 + 10 * HOUR + 10);
    h.deliver(&item_events("item-1", 6, 7)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![5]);
    // One event, but the interval has passed since the snapshot at 5: time trips.
    h.set_now(T0 + 10 * HOUR + 10 + HOUR);
    let by_time = h.deliver(&item_events("item-1", 8, 8)).await;
    assert!(matches!(
        by_time.outcomes[0].result(),
        Ok(Action::Created {
            version: 8,
            reason: TripReason::Time,
            ..
        })
    ));
    assert_eq!(h.snapshot_versions("item-1"), vec![5, 8]);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn per_type_overrides_apply() {
    let mut h = Harness::new(&[
        ("SNAPSHOT_STRATEGY", "count"),
        ("SNAPSHOT_THRESHOLD", "100"),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"threshold":2}}"#,
        ),
    ]);
    let mut events = item_events("item-1", 1, 3);
    events.extend(support::warehouse_events("wh-1", 1, 3));
    h.deliver(&events).await;
    assert!(h.snapshot_versions("item-1").is_empty());
    assert_eq!(h.snapshot_versions("wh-1"), vec![3]);
}
