//! Continuous drift checks: with every snapshot sampled (`SNAPSHOT_DRIFT_SAMPLE=1`), a
//! snapshot built on a base that holds a wrong state (with a matching checksum) is caught by
//! the full-replay comparison, counted as `SnapshotDrift`, audited (`snapshot.drift`) and marked invalid; a correct one
//! is checked and kept.

mod support;

use snapshot_core::clock::now_millis;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::testing::audit::AuditCapture;
use snapshotter::evaluate::sampled;
use snapshotter::metrics::{DRIFT_CHECKS, SNAPSHOT_DRIFT};
use support::{item_events, json_of, metric, Harness};

fn harness() -> Harness {
    Harness::new(&[
        ("SNAPSHOT_STRATEGY", "count"),
        ("SNAPSHOT_THRESHOLD", "1"),
        ("SNAPSHOT_DRIFT_SAMPLE", "1"),
    ])
}

#[tokio::test]
async fn a_correct_snapshot_passes_its_drift_check() {
    let mut h = harness();
    let report = h.deliver(&item_events("ok-1", 1, 6)).await;
    assert_eq!(metric(&report, DRIFT_CHECKS), 1);
    assert_eq!(metric(&report, SNAPSHOT_DRIFT), 0);
    assert_eq!(h.snapshot_versions("ok-1"), vec![6]);
}

#[tokio::test]
async fn a_drifted_snapshot_is_detected_counted_and_taken_out_of_use() {
    let mut h = harness();
    let events = item_events("drift-1", 1, 6);
    h.append(&events[..5]).await;
    // A base at version 5 whose state is wrong but whose checksum matches it.
    let mut wrong = json_of(
        &h.repository()
            .replay_kind(
                snapshot_core::Registry::builtin()
                    .get("INVENTORY_ITEM")
                    .unwrap()
                    .as_ref(),
                "drift-1",
            )
            .await
            .unwrap()
            .state_json,
    );
    wrong["onHand"] = serde_json::json!(999);
    let base = build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id: "drift-1",
            aggregate_type: "INVENTORY_ITEM",
            schema_version: 1,
            version: 5,
            last_event_id: None,
        },
        serde_json::to_vec(&wrong).unwrap(),
        SnapshotMetadata::default(),
        now_millis(),
        None,
    )
    .unwrap();
    h.snapshots.put_if_absent(&base).await.unwrap();

    // The next snapshot (version 6) is built on it, inherits the error, and is caught.
    let audit = AuditCapture::start();
    let report = h.deliver(&events[5..]).await;
    let records = audit.text();
    let drift_record = records
        .lines()
        .find(|l| l.contains(snapshotter::audit::DRIFT_ACTION))
        .unwrap_or_else(|| {
            panic!(
                "no {} audit record in:\n{records}",
                snapshotter::audit::DRIFT_ACTION
            )
        });
    assert!(drift_record.contains("drift-1"), "{drift_record}");
    assert!(
        drift_record.contains("marked invalid: true"),
        "{drift_record}"
    );
    assert_eq!(metric(&report, DRIFT_CHECKS), 1);
    assert_eq!(metric(&report, SNAPSHOT_DRIFT), 1);
    // Out of use: kept as evidence, marked invalid (no load starts from it).
    assert_eq!(h.snapshot_versions("drift-1"), vec![5, 6]);
    let drifted = h
        .repository()
        .snapshots()
        .get("drift-1", 6)
        .await
        .unwrap()
        .expect("the drifted snapshot is kept");
    let mark = drifted
        .header
        .invalid
        .expect("the drifted snapshot at 6 is marked invalid");
    assert!(mark.reason.starts_with("drift:"), "{}", mark.reason);
}

#[test]
fn sampling_is_one_in_n_and_stable() {
    assert!(!sampled(0, "a", 1), "0 turns checks off");
    assert!((1..100).all(|v| sampled(1, "a", v)));
    let hits = (1..=10_000).filter(|v| sampled(100, "agg", *v)).count();
    assert!((50..=150).contains(&hits), "about 1 in 100, got {hits}");
    assert_eq!(sampled(100, "agg", 42), sampled(100, "agg", 42));
}
