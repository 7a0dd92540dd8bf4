//! The pruner handler over the in-memory store, fed the sample events of `events/pruner/`.

use std::collections::HashMap;

use lambda_runtime::Diagnostic;
use pruner::input::InputError;
use pruner::{handler, parse_input, Invocation, PruneInput, PrunerError, PrunerSettings};
use serde_json::{json, Value};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::memory::InMemorySnapshotStore;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::pruning::{Deadline, PruneError};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::Registry;

const SCHEDULED: &str = include_str!("../../../events/pruner/scheduled.json");
const DRY_RUN: &str = include_str!("../../../events/pruner/dry-run.json");
const SINGLE_AGGREGATE: &str = include_str!("../../../events/pruner/single-aggregate.json");
const SCHEDULE_INPUT: &str = include_str!("../../../events/pruner/schedule-input.json");

fn event(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn settings(keep: usize) -> PrunerSettings {
    let keep = keep.to_string();
    PrunerSettings::from_lookup(|k| (k == "MAX_SNAPSHOTS_PER_AGGREGATE").then(|| keep.clone()))
        .unwrap()
}

async fn store_with(aggregates: &[&str], snapshots: u64) -> InMemorySnapshotStore {
    let store = InMemorySnapshotStore::new();
    for id in aggregates {
        for version in 1..=snapshots {
            let record = build_snapshot(
                &SnapshotCodec::default(),
                SnapshotSubject {
                    aggregate_id: id,
                    aggregate_type: "INVENTORY_ITEM",
                    schema_version: 1,
                    version,
                    last_event_id: None,
                },
                json!({"id": id, "onHand": version})
                    .to_string()
                    .into_bytes(),
                SnapshotMetadata::default(),
                1_700_000_000_000,
                None,
            )
            .unwrap();
            store.put_if_absent(&record).await.unwrap();
        }
    }
    store
}

fn counts(store: &InMemorySnapshotStore) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for key in store.keys() {
        *counts.entry(key.aggregate_id).or_default() += 1;
    }
    counts
}

async fn invoke(
    store: &InMemorySnapshotStore,
    settings: &PrunerSettings,
    payload: Value,
) -> Result<snapshot_core::pruning::PruneSummary, PrunerError> {
    let invocation = Invocation {
        deadline: Deadline::none(),
        request_id: Some("req-1".to_owned()),
    };
    handler(
        store,
        &snapshot_core::pruning::StartOver,
        &Registry::builtin(),
        settings,
        payload,
        invocation,
    )
    .await
}

#[tokio::test]
async fn the_scheduled_event_keeps_the_configured_number_per_aggregate() {
    let store = store_with(&["item-0001", "item-0002", "item-0003"], 10).await;
    let summary = invoke(&store, &settings(3), event(SCHEDULED))
        .await
        .unwrap();
    assert!(counts(&store).values().all(|n| *n == 3));
    assert_eq!(summary.deleted, 21);
    assert!(summary.complete);
    let json = serde_json::to_value(&summary).unwrap();
    for field in [
        "scanned",
        "aggregates",
        "deleted",
        "kept",
        "dryRun",
        "complete",
    ] {
        assert!(json.get(field).is_some(), "summary has {field}: {json}");
    }
}

#[tokio::test]
async fn the_dry_run_event_deletes_nothing_and_reports_what_it_would() {
    let store = store_with(&["item-0001", "item-0002"], 5).await;
    let summary = invoke(&store, &settings(3), event(DRY_RUN)).await.unwrap();
    assert!(counts(&store).values().all(|n| *n == 5));
    assert!(summary.dry_run);
    assert_eq!(summary.deleted, 4);
    assert_eq!(summary.would_delete.len(), 4);
    assert!(summary.would_delete.iter().all(|k| k.version <= 2));
}

#[tokio::test]
async fn the_single_aggregate_event_prunes_only_that_aggregate_to_its_own_limit() {
    let store = store_with(&["item-0001", "item-0002"], 6).await;
    let summary = invoke(&store, &settings(3), event(SINGLE_AGGREGATE))
        .await
        .unwrap();
    let counts = counts(&store);
    assert_eq!(counts["item-0001"], 2, "maxSnapshots from the event");
    assert_eq!(counts["item-0002"], 6, "other aggregates untouched");
    assert_eq!(summary.aggregates, 1);
}

#[tokio::test]
async fn a_custom_schedule_input_is_read_as_the_options_themselves() {
    assert_eq!(
        parse_input(event(SCHEDULE_INPUT)).unwrap(),
        PruneInput {
            dry_run: true,
            aggregate_id: None,
            max_snapshots: Some(5),
        }
    );
    let store = store_with(&["item-0001"], 8).await;
    let summary = invoke(&store, &settings(3), event(SCHEDULE_INPUT))
        .await
        .unwrap();
    assert!(summary.dry_run);
    assert_eq!(summary.deleted, 3, "keeps 5 of 8");
    assert_eq!(counts(&store)["item-0001"], 8);
}

#[tokio::test]
async fn a_deadline_already_within_the_margin_stops_before_reading() {
    let store = store_with(&["item-0001"], 8).await;
    let invocation = Invocation {
        deadline: Deadline::before(std::time::SystemTime::now(), std::time::Duration::ZERO),
        request_id: None,
    };
    let summary = handler(
        &store,
        &snapshot_core::pruning::StartOver,
        &Registry::builtin(),
        &settings(3),
        event(SCHEDULED),
        invocation,
    )
    .await
    .unwrap();
    assert!(!summary.complete);
    assert_eq!(summary.scanned, 0);
    assert_eq!(counts(&store)["item-0001"], 8);
}

#[tokio::test]
async fn bad_input_is_a_clear_error_and_touches_nothing() {
    let store = store_with(&["item-0001"], 5).await;
    let mut scheduled = event(SCHEDULED);
    let cases = [
        (json!({"dryRun": "yes"}), "dryRun must be true or false"),
        (json!({"dryrun": true}), "unknown field `dryrun`"),
        (
            json!({"maxSnapshots": 0}),
            "maxSnapshots must be a whole number from 1",
        ),
        (
            json!({"maxSnapshots": -2}),
            "maxSnapshots must be a whole number from 1",
        ),
        (
            json!({"maxSnapshots": 2.5}),
            "maxSnapshots must be a whole number from 1",
        ),
        (json!({"aggregateId": 42}), "aggregateId must be a string"),
        (json!({"aggregateId": ""}), "aggregateId must not be empty"),
        (json!([1, 2]), "options must be a JSON object"),
        (json!("prune"), "options must be a JSON object"),
    ];
    for (detail, message) in cases {
        scheduled["detail"] = detail.clone();
        for payload in [scheduled.clone(), detail.clone()] {
            let err = invoke(&store, &settings(3), payload).await.unwrap_err();
            assert!(
                matches!(err, PrunerError::Input(InputError(_))),
                "{detail}: {err}"
            );
            assert!(err.to_string().contains(message), "{detail}: {err}");
            let diagnostic = Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, "InvalidInput");
        }
    }
    let err = invoke(&store, &settings(3), json!({"aggregateId": ""}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid pruner input: aggregateId must not be empty"
    );
    let broken = json!({"detail-type": "Scheduled Event", "detail": {}});
    let err = invoke(&store, &settings(3), broken).await.unwrap_err();
    assert!(
        err.to_string().contains("not a valid EventBridge event"),
        "{err}"
    );
    assert_eq!(counts(&store)["item-0001"], 5);
}

#[test]
fn an_empty_or_null_input_means_the_defaults() {
    assert_eq!(parse_input(Value::Null).unwrap(), PruneInput::default());
    assert_eq!(parse_input(json!({})).unwrap(), PruneInput::default());
}

#[test]
fn settings_come_from_env_with_defaults_and_name_a_bad_variable() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let defaults = PrunerSettings::from_lookup(env(&[])).unwrap();
    assert_eq!(defaults.segments, 4);
    assert_eq!(defaults.max_snapshots, 3);
    assert_eq!(defaults.deadline_margin.as_millis(), 10_000);
    assert_eq!(defaults.snapshots_table, "inventory_snapshots");
    let custom = PrunerSettings::from_lookup(env(&[
        ("PRUNE_SCAN_SEGMENTS", "8"),
        ("PRUNE_DEADLINE_MARGIN_MS", "2500"),
        ("SNAPSHOTS_TABLE", "snaps"),
    ]))
    .unwrap();
    assert_eq!(custom.segments, 8);
    assert_eq!(custom.deadline_margin.as_millis(), 2500);
    assert_eq!(custom.snapshots_table, "snaps");
    for (variable, value) in [
        ("PRUNE_SCAN_SEGMENTS", "0"),
        ("PRUNE_SCAN_SEGMENTS", "four"),
        ("PRUNE_DEADLINE_MARGIN_MS", "-1"),
        ("MAX_SNAPSHOTS_PER_AGGREGATE", "0"),
    ] {
        let lookup = move |k: &str| (k == variable).then(|| value.to_owned());
        let err = PrunerSettings::from_lookup(lookup).unwrap_err();
        assert_eq!(err.variable, variable, "{err}");
    }
}

#[test]
fn a_store_failure_is_reported_as_a_failed_prune() {
    let err = PrunerError::Prune(PruneError::Store {
        source: snapshot_core::StoreError::backend("Scan", "throttled"),
        partial: Box::default(),
    });
    assert_eq!(Diagnostic::from(err).error_type, "PruneFailed");
}
