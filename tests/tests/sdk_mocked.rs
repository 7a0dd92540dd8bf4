//! Failure paths DynamoDB Local does not produce, through a mocked DynamoDB
//! (`integration_tests::mock_dynamo`): the adapters' own code meets DynamoDB's answers exactly
//! as they come over the wire, the SDK parsing them and running its own retries.
//!
//! - BatchWriteItem leaving `UnprocessedItems`: resent (only those) until none is left, or
//!   reported as throttling after the last attempt;
//! - TransactionCanceled with cancellation reasons: `ConditionalCheckFailed` means the events
//!   are ours (a retry after a lost reply) or another writer's (a conflict); any other reason
//!   (a conflicting transaction, throttling) is a failure worth retrying, never a conflict;
//! - throttling: retried by the SDK as configured, then reported as throttled (retryable).

use std::sync::atomic::{AtomicUsize, Ordering};

use integration_tests::mock_dynamo::{MockDynamo, Reply};
use serde_json::{json, Value};
use snapshot_core::domain::EventEnvelope;
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::snapshot::SnapshotKey;
use snapshot_core::{BackendFailure, StoreError};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

const EVENTS: &str = "events";
const SNAPSHOTS: &str = "snapshots";
/// SDK attempts per call in these tests.
const ATTEMPTS: u32 = 3;

fn event(id: &str, sequence: u64, event_id: &str) -> EventEnvelope {
    EventEnvelope {
        aggregate_id: id.to_owned(),
        sequence,
        aggregate_type: "INVENTORY_ITEM".to_owned(),
        event_type: "StockReceived".to_owned(),
        payload: json!({"quantity": sequence}),
        event_id: event_id.to_owned(),
        timestamp: 1_700_000_000_000,
        metadata: None,
    }
}

fn batch(id: &str, tag: &str, from: u64, to: u64) -> Vec<EventEnvelope> {
    (from..=to)
        .map(|s| event(id, s, &format!("{tag}-{s}")))
        .collect()
}

/// The item the event table holds for `event`, as DynamoDB sends it.
fn event_item(event: &EventEnvelope) -> Value {
    json!({
        "aggregateId": {"S": event.aggregate_id},
        "sequence": {"N": event.sequence.to_string()},
        "aggregateType": {"S": event.aggregate_type},
        "eventType": {"S": event.event_type},
        "payload": {"M": {"quantity": {"N": event.sequence.to_string()}}},
        "eventId": {"S": event.event_id},
        "timestamp": {"N": event.timestamp.to_string()},
    })
}

/// A Query answer holding `events`.
fn items(events: &[EventEnvelope]) -> Reply {
    let items: Vec<Value> = events.iter().map(event_item).collect();
    Reply::ok(json!({"Items": items, "Count": items.len(), "ScannedCount": items.len()}))
}

fn unexpected(operation: &str) -> Reply {
    Reply::error(
        400,
        "ValidationException",
        &format!("{operation} not mocked"),
    )
}

fn failure(err: &StoreError) -> BackendFailure {
    err.backend_failure()
        .unwrap_or_else(|| panic!("expected a backend failure, got {err:?}"))
}

fn keys(n: u64) -> Vec<SnapshotKey> {
    (1..=n)
        .map(|version| SnapshotKey {
            aggregate_id: "item-1".to_owned(),
            version,
        })
        .collect()
}

fn delete_request(version: u64) -> Value {
    json!({"DeleteRequest": {"Key": {"aggregateId": {"S": "item-1"}, "version": {"N": version.to_string()}}}})
}

/// The versions a BatchWriteItem request asked to delete.
fn deleted_versions(body: &Value) -> Vec<u64> {
    body["RequestItems"][SNAPSHOTS]
        .as_array()
        .map(|requests| {
            requests
                .iter()
                .filter_map(|r| r["DeleteRequest"]["Key"]["version"]["N"].as_str())
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn unprocessed_deletes_are_resent_alone_until_none_is_left() {
    // First answer: versions 4..=10 of the batch unprocessed; then all done.
    let sent = AtomicUsize::new(0);
    let mock = MockDynamo::new(move |operation, _| match operation {
        "BatchWriteItem" if sent.fetch_add(1, Ordering::SeqCst) == 0 => {
            let left: Vec<Value> = (4..=10).map(delete_request).collect();
            Reply::ok(json!({"UnprocessedItems": {SNAPSHOTS: left}}))
        }
        "BatchWriteItem" => Reply::ok(json!({"UnprocessedItems": {}})),
        other => unexpected(other),
    });
    let store = DynamoSnapshotStore::new(mock.client(ATTEMPTS), SNAPSHOTS);
    assert_eq!(store.delete_many(&keys(10)).await.unwrap(), 10);
    let sent: Vec<Vec<u64>> = mock
        .bodies("BatchWriteItem")
        .iter()
        .map(deleted_versions)
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], (1..=10).collect::<Vec<u64>>());
    assert_eq!(
        sent[1],
        (4..=10).collect::<Vec<u64>>(),
        "only the unprocessed ones again"
    );
}

#[tokio::test]
async fn deletes_left_unprocessed_on_every_attempt_are_reported_as_throttling() {
    let mock = MockDynamo::new(|operation, _| match operation {
        "BatchWriteItem" => {
            Reply::ok(json!({"UnprocessedItems": {SNAPSHOTS: [delete_request(1)]}}))
        }
        other => unexpected(other),
    });
    let store = DynamoSnapshotStore::new(mock.client(ATTEMPTS), SNAPSHOTS);
    let err = store.delete_many(&keys(3)).await.unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Throttled, "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        mock.bodies("BatchWriteItem").len(),
        8,
        "MAX_BATCH_ATTEMPTS sends, then it gives up"
    );
    assert!(err.to_string().contains("unprocessed"), "{err}");
}

#[tokio::test]
async fn a_cancelled_transaction_whose_events_are_ours_is_an_append_that_succeeded() {
    // The reply of the first attempt was lost; the retry finds our own events in place.
    let ours = batch("item-1", "ours", 2, 4);
    let stored = ours.clone();
    let mock = MockDynamo::new(move |operation, _| match operation {
        "TransactWriteItems" => Reply::cancelled(&[
            "None",
            "ConditionalCheckFailed",
            "ConditionalCheckFailed",
            "ConditionalCheckFailed",
        ]),
        "Query" => items(&stored),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    store.append(1, &ours).await.unwrap();
    assert_eq!(
        mock.bodies("TransactWriteItems").len(),
        1,
        "a cancellation is not retried by the SDK"
    );
    assert_eq!(
        mock.bodies("Query").len(),
        1,
        "one read tells whose events they are"
    );
}

#[tokio::test]
async fn a_cancelled_transaction_whose_events_are_another_writers_is_a_conflict() {
    let ours = batch("item-1", "ours", 2, 4);
    let theirs = batch("item-1", "theirs", 2, 4);
    let mock = MockDynamo::new(move |operation, _| match operation {
        "TransactWriteItems" => {
            Reply::cancelled(&["None", "ConditionalCheckFailed", "None", "None"])
        }
        "Query" => items(&theirs),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    let err = store.append(1, &ours).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { aggregate_id, expected_version: 1 } if aggregate_id == "item-1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_event_at_the_expected_version_is_a_conflict_never_a_gap() {
    // The ConditionCheck on the event at the expected version failed: nothing is there.
    let ours = batch("item-1", "ours", 6, 7);
    let mock = MockDynamo::new(|operation, _| match operation {
        "TransactWriteItems" => Reply::cancelled(&["ConditionalCheckFailed", "None", "None"]),
        "Query" => items(&[]),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    let err = store.append(5, &ours).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected_version: 5,
                ..
            }
        ),
        "{err:?}"
    );
    // The transaction checked the event at the expected version.
    let sent = &mock.bodies("TransactWriteItems")[0];
    assert_eq!(
        sent["TransactItems"][0]["ConditionCheck"]["Key"]["sequence"]["N"],
        "5"
    );
}

#[tokio::test]
async fn a_transaction_cancelled_for_a_conflicting_transaction_or_throttling_is_retryable_not_a_conflict(
) {
    for (reason, expected) in [
        ("TransactionConflict", BackendFailure::Unavailable),
        ("ThrottlingError", BackendFailure::Throttled),
        ("ProvisionedThroughputExceeded", BackendFailure::Throttled),
    ] {
        let ours = batch("item-1", "ours", 2, 3);
        // Nothing of ours landed.
        let mock = MockDynamo::new(move |operation, _| match operation {
            "TransactWriteItems" => Reply::cancelled(&["None", reason, "None"]),
            "Query" => items(&[]),
            other => unexpected(other),
        });
        let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
        let err = store.append(1, &ours).await.unwrap_err();
        assert!(
            !matches!(err, StoreError::Conflict { .. }),
            "{reason}: {err:?}"
        );
        assert_eq!(failure(&err), expected, "{reason}: {err}");
        assert!(err.is_retryable(), "{reason}: {err}");
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
    // A cancellation for the request itself stays final.
    let mock = MockDynamo::new(|operation, _| match operation {
        "TransactWriteItems" => Reply::cancelled(&["None", "ValidationError", "None"]),
        "Query" => items(&[]),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    let err = store
        .append(1, &batch("item-1", "ours", 2, 3))
        .await
        .unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Rejected, "{err}");
}

#[tokio::test]
async fn a_transaction_cancelled_for_a_conflict_whose_events_landed_after_all_succeeds() {
    let ours = batch("item-1", "ours", 2, 3);
    let stored = ours.clone();
    let mock = MockDynamo::new(move |operation, _| match operation {
        "TransactWriteItems" => Reply::cancelled(&["None", "TransactionConflict", "None"]),
        "Query" => items(&stored),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    store.append(1, &ours).await.unwrap();
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_reported_as_throttled() {
    // Throttled on every attempt.
    let mock = MockDynamo::new(|operation, _| match operation {
        "PutItem" => Reply::throttling(),
        "Query" => items(&[]),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    let err = store
        .append(0, &batch("item-1", "a", 1, 1))
        .await
        .unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Throttled, "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        mock.bodies("PutItem").len(),
        ATTEMPTS as usize,
        "every attempt throttled"
    );
    assert!(err.to_string().contains("ThrottlingException"), "{err}");

    // Throttled once: the SDK's retry succeeds, the caller sees nothing.
    for operation in ["PutItem", "TransactWriteItems"] {
        let calls = AtomicUsize::new(0);
        let mock = MockDynamo::new(move |op, _| {
            if op == operation && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::throttling()
            } else if op == operation {
                Reply::ok(json!({}))
            } else {
                unexpected(op)
            }
        });
        let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
        let size = if operation == "PutItem" { 1 } else { 3 };
        store
            .append(0, &batch("item-1", "b", 1, size))
            .await
            .unwrap();
        assert_eq!(mock.bodies(operation).len(), 2, "{operation}");
    }

    // Reads too: a throttled Query is reported as such.
    let mock = MockDynamo::new(|operation, _| match operation {
        "Query" => Reply::error(400, "ProvisionedThroughputExceededException", "mocked"),
        other => unexpected(other),
    });
    let store = DynamoEventStore::new(mock.client(ATTEMPTS), EVENTS);
    let err = store.read("item-1", 1, None).await.unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Throttled, "{err}");
    assert_eq!(mock.bodies("Query").len(), ATTEMPTS as usize);
}

#[tokio::test]
async fn a_snapshot_put_refused_by_its_condition_is_already_there_and_throttling_is_an_error() {
    let record = snapshot_record();
    let mock = MockDynamo::new(|operation, _| match operation {
        "PutItem" | "UpdateItem" => Reply::error(
            400,
            "ConditionalCheckFailedException",
            "The conditional request failed",
        ),
        other => unexpected(other),
    });
    let store = DynamoSnapshotStore::new(mock.client(ATTEMPTS), SNAPSHOTS);
    assert_eq!(
        store.put_if_absent(&record).await.unwrap(),
        PutOutcome::AlreadyExists
    );
    // The snapshot, then its head (refused too: a head at that version is there already),
    // each sent once: a refused condition is an answer, not a failure to retry.
    let puts = mock.bodies("PutItem");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0]["Item"]["aggregateId"]["S"], "item-1");
    let heads = mock.bodies("UpdateItem");
    assert_eq!(heads.len(), 1);
    assert_eq!(
        heads[0]["Key"]["aggregateId"]["S"],
        format!("{}item-1", snapshot_dynamo::HEAD_PREFIX)
    );

    let mock = MockDynamo::new(|operation, _| match operation {
        "PutItem" => Reply::throttling(),
        other => unexpected(other),
    });
    let store = DynamoSnapshotStore::new(mock.client(ATTEMPTS), SNAPSHOTS);
    let err = store.put_if_absent(&record).await.unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Throttled, "{err}");
    assert_eq!(mock.bodies("PutItem").len(), ATTEMPTS as usize);
}

fn snapshot_record() -> snapshot_core::snapshot::SnapshotRecord {
    use snapshot_core::codec::SnapshotCodec;
    use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
    build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id: "item-1",
            aggregate_type: "INVENTORY_ITEM",
            schema_version: 1,
            version: 3,
            last_event_id: Some("e-3"),
        },
        br#"{"id":"item-1"}"#.to_vec(),
        SnapshotMetadata::default(),
        0,
        None,
    )
    .unwrap()
}
