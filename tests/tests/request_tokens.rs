//! Exactly once on the real engine: DynamoDB (here AWS's DynamoDB Local) recognises a
//! TransactWriteItems retried with the same ClientRequestToken and answers it without writing
//! again. moto ignored the token, so a retry used to fail its conditions and the event store
//! had to read the events back to learn its first attempt had committed
//! (shared/dynamo/src/events.rs); on DynamoDB the SDK's own retry already succeeds.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use integration_tests::faults::{faulty_dynamodb, Fault, FaultPlan};
use integration_tests::TestTables;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::ports::EventStore;
use snapshot_core::AggregateRepository;
use snapshot_dynamo::DynamoEventStore;

fn put(table: &str, sequence: u64, note: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .item("aggregateId", AttributeValue::S("item-token".into()))
        .item("sequence", AttributeValue::N(sequence.to_string()))
        .item("note", AttributeValue::S(note.into()))
        .condition_expression("attribute_not_exists(#seq)")
        .expression_attribute_names("#seq", "sequence")
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

#[tokio::test]
async fn a_transaction_sent_again_with_its_token_succeeds_and_writes_nothing_twice() {
    let tables = TestTables::create("request_token").await;
    // A token of this test's own: DynamoDB remembers one for ten minutes per account and region.
    let token = uuid::Uuid::new_v4().simple().to_string();
    let send = |note: &'static str| {
        tables
            .client
            .transact_write_items()
            .client_request_token(&token)
            .transact_items(put(&tables.events_table, 1, note))
            .transact_items(put(&tables.events_table, 2, note))
            .send()
    };
    send("first").await.unwrap();
    // The same request again: its conditions would now fail, but DynamoDB recognises the
    // token and answers as it did the first time.
    send("first").await.unwrap();
    let stored = tables
        .client
        .query()
        .table_name(&tables.events_table)
        .key_condition_expression("aggregateId = :id")
        .expression_attribute_values(":id", AttributeValue::S("item-token".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.count(), 2, "each event stored once");

    // The same token with other items is refused, never applied.
    let err = send("other").await.unwrap_err();
    assert!(
        matches!(
            err.as_service_error(),
            Some(TransactWriteItemsError::IdempotentParameterMismatchException(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_append_whose_reply_is_lost_is_retried_by_the_sdk_and_stored_once_without_a_read_back() {
    let tables = TestTables::create("request_token_retry").await;
    // The first TransactWriteItems is served (committed) and its reply lost; the SDK sends it
    // again with the same token.
    let plan = FaultPlan::new(5, 1000)
        .kinds(&[Fault::ReplyLost])
        .only(&["TransactWriteItems"])
        .at_most(1);
    let events = DynamoEventStore::new(faulty_dynamodb(&plan, 3).await, &tables.events_table);
    let repo = AggregateRepository::new(events, tables.snapshot_store(), SnapshotCodec::default());
    let mut item = AggregateRoot::<InventoryItem>::new("item-token-retry");
    item.create("SKU-1", "Widget", 2).unwrap();
    item.receive(5, None).unwrap();
    item.receive(7, None).unwrap();
    repo.save(&mut item, None).await.unwrap();

    assert_eq!(plan.injected_of(Fault::ReplyLost), 1);
    assert_eq!(
        plan.requests_of("TransactWriteItems"),
        2,
        "one lost reply, one retry"
    );
    assert_eq!(
        plan.requests_of("Query"),
        0,
        "the retry itself succeeded: nothing had to be read back"
    );
    let stored = tables
        .event_store()
        .read("item-token-retry", 1, None)
        .await
        .unwrap();
    let sequences: Vec<u64> = stored.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![1, 2, 3], "each event stored once");
    let (loaded, _) = repo
        .load::<InventoryItem>("item-token-retry")
        .await
        .unwrap();
    assert_eq!(loaded.state().on_hand, 12);
}

#[tokio::test]
async fn the_same_events_appended_to_two_tables_are_two_appends_not_a_retry() {
    // DynamoDB keeps a token per account and region, not per table: a token made of the
    // events alone would make the second table's append look like a retry of the first's
    // with other parameters (refused), within ten minutes.
    let first = TestTables::create("request_token_a").await;
    let second = TestTables::create("request_token_b").await;
    let mut item = AggregateRoot::<InventoryItem>::new("item-token-twice");
    item.create("SKU-1", "Widget", 2).unwrap();
    item.receive(5, None).unwrap();
    let mut copy = item.clone();
    for (tables, root) in [(&first, &mut item), (&second, &mut copy)] {
        let repo = AggregateRepository::new(
            tables.event_store(),
            tables.snapshot_store(),
            SnapshotCodec::default(),
        );
        repo.save(root, None).await.unwrap();
        let stored = tables
            .event_store()
            .read("item-token-twice", 1, None)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2, "{}", tables.events_table);
    }
    assert_eq!(item.uncommitted_ids(), copy.uncommitted_ids());
}
