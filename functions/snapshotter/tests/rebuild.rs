//! Rebuilding on in-memory stores: only the gap is fetched, invalid snapshots are passed over,
//! redelivered images are not folded twice, and every snapshot equals a full replay.

mod support;

use snapshot_core::codec::StateBody;
use snapshot_core::head::SnapshotHead;
use snapshot_core::ports::SnapshotStore;
use snapshotter::metrics::*;
use snapshotter::Action;
use support::{failures, item_events, metric, warehouse_events, Harness};

#[tokio::test]
async fn a_batch_starting_mid_aggregate_fetches_only_the_gap() {
    let mut h = Harness::count(5);
    h.deliver(&item_events("item-1", 1, 10)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10]);
    h.append(&item_events("item-1", 11, 15)).await; // never delivered: the gap
    let events_before = h.events.requests();
    let snapshots_before = h.snapshots.requests();

    let report = h.deliver(&item_events("item-1", 16, 20)).await;

    assert!(failures(&report).is_empty());
    assert_eq!(h.snapshot_versions("item-1"), vec![10, 20]);
    assert_eq!(
        metric(&report, EVENTS_FETCHED),
        6,
        "the base's boundary event 10 and the gap 11..=15 only"
    );
    assert_eq!(
        metric(&report, EVENTS_FOLDED),
        10,
        "gap + batch onto the snapshot at 10"
    );
    // 5 appends by `deliver`, then exactly one read: boundary and gap.
    assert_eq!(h.events.requests() - events_before, 5 + 1);
    // 5 new events >= threshold 5 since the head this container remembers: the newest record
    // is read at once (it is the base), then the put and its head.
    assert_eq!(h.snapshots.requests() - snapshots_before, 3);
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn a_count_reached_across_batches_costs_four_requests() {
    let mut h = Harness::count(8);
    h.deliver(&item_events("item-1", 1, 8)).await;
    h.append(&item_events("item-1", 9, 12)).await;
    let snapshots_before = h.snapshots.requests();
    let events_before = h.events.requests();

    // 4 new events < threshold 8, but 16 - 8 >= 8 since the snapshot: the newest record
    // (the base), its boundary event with the gap, the put and its head. Nothing of the
    // earlier batch is read twice.
    let report = h.deliver(&item_events("item-1", 13, 16)).await;

    assert_eq!(h.snapshot_versions("item-1"), vec![8, 16]);
    let snapshot_requests = h.snapshots.requests() - snapshots_before;
    let event_requests = h.events.requests() - events_before - 4; // less the 4 appends
    assert_eq!(snapshot_requests, 3, "newest record, put, head");
    assert_eq!(event_requests, 1, "boundary and gap in one read");
    assert_eq!(snapshot_requests + event_requests, 4);
    assert_eq!(
        metric(&report, EVENTS_FETCHED),
        5,
        "boundary 8 and gap 9..=12"
    );
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn a_batch_that_does_not_trip_reads_no_snapshot_only_its_head_or_nothing_when_warm() {
    let mut h = Harness::count(10);
    // Never snapshotted: no head, decided as no snapshot; the newest snapshot is not asked.
    let before = h.snapshots.requests();
    let report = h.deliver(&item_events("item-1", 1, 3)).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(h.snapshots.requests() - before, 1, "the head only");
    // Warm, the container remembers there was none: nothing is read.
    let before = h.snapshots.requests();
    let report = h.deliver(&item_events("item-1", 4, 6)).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(
        h.snapshots.requests() - before,
        0,
        "remembered: no snapshot"
    );
    h.deliver(&item_events("item-1", 7, 10)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10]);

    // Snapshotted, warm: this container remembers the head; nothing is read.
    let before = h.snapshots.requests();
    let report = h.deliver(&item_events("item-1", 11, 13)).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(h.snapshots.requests() - before, 0, "warm: no request");

    // Cold (a new container): the store's head alone decides, never the snapshot item.
    h.snapshotter.heads().forget("item-1");
    let before = h.snapshots.requests();
    let report = h.deliver(&item_events("item-1", 14, 16)).await;
    assert!(matches!(report.outcomes[0].result(), Ok(Action::NotDue)));
    assert_eq!(h.snapshots.requests() - before, 1, "cold: the head only");

    // A redelivery of what the snapshot holds is recognised from the head too.
    h.snapshotter.heads().forget("item-1");
    let batch = h.batch(&item_events("item-1", 8, 10));
    let before = h.snapshots.requests();
    let report = h.snapshotter.process(batch, None).await;
    assert!(matches!(
        report.outcomes[0].result(),
        Ok(Action::UpToDate {
            snapshot_version: 10
        })
    ));
    assert_eq!(h.snapshots.requests() - before, 1, "the head only");
}

#[tokio::test]
async fn a_new_aggregate_needs_no_event_read() {
    let mut h = Harness::count(3);
    let events_before = h.events.requests();
    let report = h.deliver(&item_events("item-1", 1, 3)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![3]);
    assert_eq!(h.events.requests() - events_before, 3, "only the appends");
    assert_eq!(metric(&report, EVENTS_FETCHED), 0);
}

#[tokio::test]
async fn redelivered_images_at_or_below_the_base_are_not_folded_again() {
    let mut h = Harness::count(3);
    h.deliver(&item_events("item-1", 1, 5)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![5]);
    h.append(&item_events("item-1", 6, 8)).await;
    // Redelivery from 3: 3..=5 are in the snapshot already, 6..=8 are new.
    let batch = h.batch(&item_events("item-1", 3, 8));
    let report = h.snapshotter.process(batch, None).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![5, 8]);
    assert_eq!(
        metric(&report, EVENTS_FETCHED),
        1,
        "the boundary event only"
    );
    assert_eq!(metric(&report, EVENTS_FOLDED), 3);
    h.assert_snapshots_match_replay().await;
}

/// Breaks a stored snapshot's checksum (one byte more state).
async fn corrupt(h: &Harness, id: &str, version: u64) {
    let mut record = h.snapshots.get(id, version).await.unwrap().unwrap();
    record.state = match record.state {
        StateBody::Text(mut s) => {
            s.push(' ');
            StateBody::Text(s)
        }
        StateBody::Binary(mut b) => {
            b.push(0);
            StateBody::Binary(b)
        }
    };
    h.snapshots.overwrite(record);
}

#[tokio::test]
async fn an_invalid_newest_snapshot_is_passed_over_for_an_older_valid_one() {
    let mut h = Harness::count(5);
    h.deliver(&item_events("item-1", 1, 5)).await;
    h.deliver(&item_events("item-1", 6, 10)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![5, 10]);
    corrupt(&h, "item-1", 10).await;

    let report = h.deliver(&item_events("item-1", 11, 15)).await;

    assert!(failures(&report).is_empty());
    assert_eq!(h.snapshot_versions("item-1"), vec![5, 10, 15]);
    assert_eq!(metric(&report, SNAPSHOTS_INVALID), 1);
    assert_eq!(
        metric(&report, EVENTS_FETCHED),
        6,
        "boundary 5 and 6..=10 from the table"
    );
    h.snapshots.delete("item-1", 10).await.unwrap(); // the corrupt one would be skipped on load anyway
    h.assert_snapshots_match_replay().await;
}

#[tokio::test]
async fn with_no_valid_snapshot_the_state_comes_from_a_full_replay() {
    let mut h = Harness::count(5);
    h.deliver(&item_events("item-1", 1, 5)).await;
    corrupt(&h, "item-1", 5).await;
    let report = h.deliver(&item_events("item-1", 6, 10)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![5, 10]);
    assert_eq!(metric(&report, SNAPSHOTS_INVALID), 1);
    assert_eq!(metric(&report, EVENTS_FETCHED), 5);
    h.snapshots.delete("item-1", 5).await.unwrap();
    h.assert_snapshots_match_replay().await;
}

/// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Many batches over several aggregates, with multi-event commits crossing the threshold,
/// batches that skip events (gaps), and redeliveries: every snapshot taken at k, plus the tail
/// after it, equals the full replay.
#[tokio::test]
async fn snapshot_at_k_plus_tail_equals_full_replay_for_every_aggregate() {
    let mut fetched = 0;
    for seed in 1..=8_u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let threshold = 1 + rng.below(7);
        let mut h = Harness::count(threshold);
        let ids = ["item-a", "item-b", "wh-a", "wh-b"];
        let mut versions = [0_u64; 4];
        for _ in 0..30 {
            let mut batch = Vec::new();
            let mut appended = Vec::new();
            for (n, id) in ids.iter().enumerate() {
                let count = rng.below(6);
                if count == 0 {
                    continue;
                }
                let from = versions[n] + 1;
                let to = versions[n] + count;
                let events = if id.starts_with("wh") {
                    warehouse_events(id, from, to)
                } else {
                    item_events(id, from, to)
                };
                versions[n] = to;
                appended.extend(events.iter().cloned());
                // Sometimes the batch misses the first events (a gap); sometimes it repeats
                // one already delivered (redelivery).
                let skip = if rng.below(4) == 0 {
                    rng.below(count) as usize
                } else {
                    0
                };
                let mut delivered: Vec<_> = events.into_iter().skip(skip).collect();
                if from > 1 && rng.below(4) == 0 {
                    let earlier = if id.starts_with("wh") {
                        warehouse_events(id, from - 1, from - 1)
                    } else {
                        item_events(id, from - 1, from - 1)
                    };
                    delivered.splice(0..0, earlier);
                }
                batch.extend(delivered);
            }
            h.append(&appended).await;
            let stream_batch = h.batch(&batch);
            let report = h.snapshotter.process(stream_batch, None).await;
            assert!(
                failures(&report).is_empty(),
                "seed {seed}: {:?}",
                report.outcomes
            );
            fetched += metric(&report, EVENTS_FETCHED);
        }
        assert!(
            h.snapshots.keys().len() >= 4,
            "seed {seed}: every aggregate snapshotted"
        );
        h.assert_snapshots_match_replay().await;
    }
    assert!(fetched > 0, "some batches had gaps to fetch");
}

#[tokio::test]
async fn a_snapshot_of_an_obsolete_schema_does_not_count_for_the_policy() {
    let mut h = Harness::count(5);
    h.deliver(&item_events("item-1", 1, 10)).await;
    let mut old = h.snapshots.get("item-1", 10).await.unwrap().unwrap();
    old.header.schema_version = 0;
    // As an older version of the code would have written it, head included, and read by a
    // new container (one that remembers no head).
    h.snapshots.forget_head("item-1");
    h.snapshots
        .record_head(&SnapshotHead::of(&old.header))
        .await
        .unwrap();
    h.snapshots.overwrite(old);
    h.snapshotter.heads().forget("item-1");

    // Two events after a snapshot at 10 would not trip; an unusable one counts as none.
    let report = h.deliver(&item_events("item-1", 11, 12)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![10, 12]);
    assert_eq!(metric(&report, SNAPSHOTS_INVALID), 1);
    assert_eq!(metric(&report, EVENTS_FETCHED), 10, "full replay");
}

/// The event table restored from a backup at version 3, then different events appended at
/// 4..=10: the snapshot at 5 was built from events that no longer exist.
#[tokio::test]
async fn a_base_whose_boundary_event_was_replaced_is_marked_and_not_used() {
    let mut h = Harness::count(5);
    h.deliver(&item_events("item-1", 1, 5)).await;
    assert_eq!(h.snapshot_versions("item-1"), vec![5]);
    h.events.truncate_after("item-1", 3);
    let rewritten: Vec<_> = item_events("item-1", 4, 10)
        .into_iter()
        .map(|mut e| {
            e.event_id = format!("rewritten-{}", e.sequence);
            e.event_type = "StockReceived".into();
            e.payload = serde_json::json!({"quantity": 1000});
            e
        })
        .collect();
    h.append(&rewritten[..2]).await; // 4..=5, not in the batch: the gap
    let report = h.deliver(&rewritten[2..]).await; // 6..=10

    assert!(failures(&report).is_empty());
    assert_eq!(h.snapshot_versions("item-1"), vec![5, 10]);
    assert_eq!(metric(&report, SNAPSHOTS_INVALID), 1);
    let stale = h.snapshots.get("item-1", 5).await.unwrap().unwrap();
    let mark = stale.header.invalid.expect("the stale snapshot is marked");
    assert!(mark.reason.contains("lastEventId"), "{}", mark.reason);
    assert_eq!(mark.by, "snapshotter");
    let fresh = h.snapshots.get("item-1", 10).await.unwrap().unwrap();
    assert_eq!(fresh.header.last_event_id.as_deref(), Some("rewritten-10"));
    // Loads skip the marked snapshot; the new one equals the full replay of the new events.
    h.assert_snapshots_match_replay_from(10).await;
}

#[tokio::test]
async fn a_marked_snapshot_is_replaced_at_its_version() {
    let mut h = Harness::count(5);
    h.deliver(&item_events("item-1", 1, 5)).await;
    let first = h.snapshots.get("item-1", 5).await.unwrap().unwrap();
    corrupt(&h, "item-1", 5).await;
    let mark = snapshot_core::snapshot::InvalidMark {
        reason: "found corrupt".into(),
        at: 1,
        by: "test".into(),
    };
    assert!(h.snapshots.mark_invalid("item-1", 5, &mark).await.unwrap());

    // Redelivery of the same batch: the marked snapshot stands for nothing.
    let batch = h.batch(&item_events("item-1", 1, 5));
    let report = h.snapshotter.process(batch, None).await;

    assert!(matches!(
        report.outcomes[0].result(),
        Ok(Action::Created { version: 5, .. })
    ));
    let replaced = h.snapshots.get("item-1", 5).await.unwrap().unwrap();
    assert!(replaced.header.invalid.is_none());
    assert_eq!(replaced.header.checksum, first.header.checksum);
    h.assert_snapshots_match_replay().await;
}
