//! One contract for every [`EventStore`] adapter: the in-memory and the DynamoDB one must
//! behave the same (appends, conflicts, no gaps, idempotent retries, reads).

use serde_json::json;
use snapshot_core::domain::{DecodedEvent, EventEnvelope, InventoryItem};
use snapshot_core::error::{EventError, EventRef};
use snapshot_core::ports::{EventStore, MAX_EVENTS_PER_APPEND};
use snapshot_core::StoreError;

fn event(id: &str, sequence: u64, event_id: &str) -> EventEnvelope {
    let (event_type, payload) = if sequence == 1 {
        (
            "ItemCreated",
            json!({"sku": "SKU-1", "name": "Widget", "reorderPoint": 1}),
        )
    } else {
        ("StockReceived", json!({"quantity": sequence}))
    };
    EventEnvelope {
        aggregate_id: id.to_owned(),
        sequence,
        aggregate_type: "INVENTORY_ITEM".to_owned(),
        event_type: event_type.to_owned(),
        payload,
        event_id: event_id.to_owned(),
        timestamp: 1_700_000_000_000 + sequence as i64,
        metadata: None,
    }
}

fn events(id: &str, from: u64, to: u64, tag: &str) -> Vec<EventEnvelope> {
    (from..=to)
        .map(|s| event(id, s, &format!("{tag}-{s}")))
        .collect()
}

fn ids(events: &[EventEnvelope]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

fn is_conflict(result: &Result<(), StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict { .. }))
}

/// Runs every clause of the contract against `store`; aggregate ids start with `prefix`.
pub async fn event_store_contract<E: EventStore>(store: &E, prefix: &str) {
    let id = |name: &str| format!("{prefix}-{name}");

    // Appends of one and of many events, read back in order.
    let a = id("append");
    store.append(0, &events(&a, 1, 1, "a")).await.unwrap();
    store.append(1, &events(&a, 2, 4, "a")).await.unwrap();
    store.append(4, &events(&a, 5, 5, "a")).await.unwrap();
    let all = store.read(&a, 1, None).await.unwrap();
    assert_eq!(ids(&all), ids(&events(&a, 1, 5, "a")));
    assert_eq!(
        ids(&store.read(&a, 2, Some(3)).await.unwrap()),
        ["a-2", "a-3"]
    );

    // Another writer's events at taken sequences: a conflict, nothing written.
    for (expected, batch) in [(0, events(&a, 1, 1, "b")), (3, events(&a, 4, 6, "b"))] {
        let result = store.append(expected, &batch).await;
        assert!(
            is_conflict(&result),
            "stale append at {expected}: {result:?}"
        );
    }
    assert_eq!(store.read(&a, 1, None).await.unwrap().len(), 5);

    // An expected version beyond the stream never leaves a gap.
    for (expected, batch) in [(7, events(&a, 8, 8, "g")), (6, events(&a, 7, 9, "g"))] {
        let result = store.append(expected, &batch).await;
        assert!(
            is_conflict(&result),
            "append after a gap at {expected}: {result:?}"
        );
    }
    let g = id("gap");
    let result = store.append(2, &events(&g, 3, 3, "g")).await;
    assert!(is_conflict(&result), "first append at 2: {result:?}");
    assert!(store.read(&g, 1, None).await.unwrap().is_empty());
    assert_eq!(store.read(&a, 1, None).await.unwrap().len(), 5);

    // The same events again (a retry after a lost reply): success, stored once.
    store.append(0, &events(&a, 1, 1, "a")).await.unwrap();
    store.append(1, &events(&a, 2, 4, "a")).await.unwrap();
    store.append(4, &events(&a, 5, 5, "a")).await.unwrap();
    assert_eq!(ids(&store.read(&a, 1, None).await.unwrap()), ids(&all));
    // Partly ours is not ours.
    let mut mixed = events(&a, 4, 6, "a");
    mixed[2].event_id = "other-6".into();
    let result = store.append(3, &mixed).await;
    assert!(is_conflict(&result), "{result:?}");

    // A malformed batch is refused before any write.
    let result = store.append(5, &events(&a, 7, 8, "x")).await;
    assert!(
        matches!(result, Err(StoreError::InvalidRequest { .. })),
        "{result:?}"
    );
    assert_eq!(store.read(&a, 1, None).await.unwrap().len(), 5);

    // Two writers at one version: exactly one wins, with single-event puts and with
    // multi-event transactions alike (moto, which undid a concurrent writer's committed put
    // when a transaction failed, could only be given the first).
    let c = id("race");
    store.append(0, &events(&c, 1, 1, "c")).await.unwrap();
    for (at, last) in [(1, 2), (2, 4)] {
        let left = events(&c, at + 1, last, "left");
        let right = events(&c, at + 1, last, "right");
        let (l, r) = tokio::join!(store.append(at, &left), store.append(at, &right));
        assert_eq!(
            [l.is_ok(), r.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{l:?} {r:?}"
        );
        assert!(is_conflict(&l) || is_conflict(&r));
        let stored = store.read(&c, at + 1, None).await.unwrap();
        let winner = if l.is_ok() { &left } else { &right };
        assert_eq!(ids(&stored), ids(winner));
    }

    // The largest append fits in one atomic write even after the first event (DynamoDB's
    // transaction carries a check on the event at the expected version too); one more is refused.
    let big = id("big");
    let max = MAX_EVENTS_PER_APPEND as u64;
    store.append(0, &events(&big, 1, 1, "big")).await.unwrap();
    store
        .append(1, &events(&big, 2, 1 + max, "big"))
        .await
        .unwrap();
    assert_eq!(
        store.read(&big, 1, None).await.unwrap().len() as u64,
        1 + max
    );
    let result = store
        .append(1 + max, &events(&big, 2 + max, 2 + max + max, "big"))
        .await;
    assert!(
        matches!(result, Err(StoreError::InvalidRequest { .. })),
        "{result:?}"
    );

    // Typed reads (a repository's load): the same events as the envelopes, each decoded as
    // the aggregate's typed event; a payload that does not decode is that event's error,
    // naming aggregate and sequence, and fails neither the read nor its neighbours.
    let decoded_of = |id: &str, envelopes: &[EventEnvelope]| -> Vec<DecodedEvent<_>> {
        envelopes
            .iter()
            .map(|e| DecodedEvent::read::<InventoryItem>(id, e))
            .collect()
    };
    let (range, pages) = store
        .read_decoded::<InventoryItem>(&a, 2, Some(4))
        .await
        .unwrap();
    assert_eq!(pages, 1);
    assert_eq!(range, decoded_of(&a, &all[1..4]));
    assert!(range.iter().all(|e| e.event.is_ok()), "{range:?}");
    let newest = store.read_newest(&a, 3).await.unwrap();
    let newest_decoded = store
        .read_newest_decoded::<InventoryItem>(&a, 3)
        .await
        .unwrap();
    assert_eq!(
        newest.items.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [5, 4, 3]
    );
    assert_eq!(newest_decoded.items, decoded_of(&a, &newest.items));
    assert_eq!((newest.next, newest_decoded.next), (Some(3), Some(3)));
    let whole = store
        .read_newest_decoded::<InventoryItem>(&a, 10)
        .await
        .unwrap();
    assert_eq!((whole.items.len(), whole.next), (5, None));

    let bad = id("undecodable");
    let mut undecodable = events(&bad, 1, 3, "u");
    undecodable[1].payload = serde_json::json!({"quantity": "ten"});
    store.append(0, &undecodable).await.unwrap();
    let (read, _) = store
        .read_decoded::<InventoryItem>(&bad, 1, None)
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    assert!(read[0].event.is_ok() && read[2].event.is_ok(), "{read:?}");
    match &read[1].event {
        Err(EventError::InvalidPayload { at, event_type, .. }) => {
            assert_eq!(
                at,
                &EventRef {
                    aggregate_id: bad.clone(),
                    sequence: Some(2)
                }
            );
            assert_eq!(event_type, "StockReceived");
        }
        other => panic!("expected an invalid payload at {bad}#2, got {other:?}"),
    }
    let stored = store.read(&bad, 1, None).await.unwrap();
    assert_eq!(read, decoded_of(&bad, &stored));
}
