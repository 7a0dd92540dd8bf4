//! The snapshotter end to end on DynamoDB Local: events appended through the repository,
//! read from the event table's DynamoDB Stream by the stream runner (the local event source
//! mapping), handled by the snapshotter; then loads through snapshots equal full replays.
//! Also the runner's Lambda semantics: redelivery from the reported record, retries,
//! checkpoints, starting positions and expired shard iterators.

use std::convert::Infallible;
use std::sync::Mutex;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{sdk_config, TestTables};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem, Warehouse};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::{AggregateRepository, Registry};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};
use snapshotter::{Settings, Snapshotter};
use stream_runner::{RunnerSettings, StartingPosition, StreamRunner};

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;
type DynamoSnapshotter = Snapshotter<DynamoEventStore, DynamoSnapshotStore>;

fn repository(tables: &TestTables) -> Repo {
    AggregateRepository::new(
        tables.event_store(),
        tables.snapshot_store(),
        SnapshotCodec::default(),
    )
}

fn snapshotter(tables: &TestTables, threshold: u64) -> DynamoSnapshotter {
    let threshold = threshold.to_string();
    let settings = Settings::from_lookup(|key| match key {
        "SNAPSHOT_STRATEGY" => Some("count".to_owned()),
        "SNAPSHOT_THRESHOLD" => Some(threshold.clone()),
        _ => None,
    })
    .unwrap();
    Snapshotter::new(tables.event_store(), tables.snapshot_store(), settings)
}

async fn runner(tables: &TestTables, settings: RunnerSettings) -> StreamRunner {
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config().await);
    StreamRunner::connect(
        &tables.client,
        streams,
        &tables.events_table,
        "us-east-1",
        settings,
    )
    .await
    .unwrap()
}

/// One batch per drain round: everything written in a phase arrives in one invocation.
fn one_batch_per_phase() -> RunnerSettings {
    RunnerSettings {
        batch_size: 1000,
        ..RunnerSettings::default()
    }
}

async fn snapshot_versions(tables: &TestTables, id: &str) -> Vec<u64> {
    let page = tables
        .snapshot_store()
        .headers(id, None, 100)
        .await
        .unwrap();
    let mut versions: Vec<u64> = page
        .items
        .iter()
        .map(|h| h.as_ref().unwrap().version)
        .collect();
    versions.sort_unstable();
    versions
}

async fn item(repo: &Repo, id: &str, commands: impl FnOnce(&mut AggregateRoot<InventoryItem>)) {
    let mut root = match repo.load::<InventoryItem>(id).await {
        Ok((root, _)) => root,
        Err(_) => AggregateRoot::new(id),
    };
    commands(&mut root);
    repo.save(&mut root, None).await.unwrap();
}

async fn warehouse(repo: &Repo, id: &str, commands: impl FnOnce(&mut AggregateRoot<Warehouse>)) {
    let mut root = match repo.load::<Warehouse>(id).await {
        Ok((root, _)) => root,
        Err(_) => AggregateRoot::new(id),
    };
    commands(&mut root);
    repo.save(&mut root, None).await.unwrap();
}

/// Receives stock `times` times, one event (one PutItem) per save.
async fn receive_each(repo: &Repo, id: &str, times: usize) {
    for n in 0..times {
        item(repo, id, |r| r.receive(n as i64 + 1, None).unwrap()).await;
    }
}

#[tokio::test]
async fn events_appended_through_the_repository_are_snapshotted_through_the_stream() {
    let tables = TestTables::create("snap_e2e").await;
    let repo = repository(&tables);
    let snapshotter = snapshotter(&tables, 5);
    let s = &snapshotter;
    let handler =
        move |event: Event| async move { Ok::<_, Infallible>(s.handle(event, Some("e2e")).await) };
    let mut runner = runner(&tables, one_batch_per_phase()).await;

    // Phase 1: item-1 at 4 (below 5); item-2 at 6 in one commit of 6 events crossing the
    // threshold; wh-1 at 5.
    item(&repo, "item-1", |r| r.create("SKU-1", "Widget", 2).unwrap()).await;
    receive_each(&repo, "item-1", 3).await;
    item(&repo, "item-2", |r| {
        r.create("SKU-2", "Gadget", 1).unwrap();
        for q in 1..=5 {
            r.receive(q, None).unwrap();
        }
    })
    .await;
    warehouse(&repo, "wh-1", |w| w.create("Berlin", 10_000).unwrap()).await;
    warehouse(&repo, "wh-1", |w| w.add_location("A-01").unwrap()).await;
    warehouse(&repo, "wh-1", |w| w.add_location("A-02").unwrap()).await;
    warehouse(&repo, "wh-1", |w| w.place("A-01", "SKU-1", 30).unwrap()).await;
    warehouse(&repo, "wh-1", |w| w.place("A-02", "SKU-2", 20).unwrap()).await;
    let phase1 = runner.run_until_idle(&handler).await.unwrap();
    assert_eq!(phase1.total.fetched, 15, "{phase1:?}");
    assert_eq!(phase1.total.acknowledged, 15);
    assert_eq!(phase1.total.failed_batches, 0);
    assert_eq!(phase1.pending, 0);
    assert_eq!(
        snapshot_versions(&tables, "item-1").await,
        Vec::<u64>::new()
    );
    assert_eq!(snapshot_versions(&tables, "item-2").await, vec![6]);
    assert_eq!(snapshot_versions(&tables, "wh-1").await, vec![5]);

    // Phase 2: item-1 reaches 6 (trips from none); item-2 +3 (9 - 6 < 5); wh-1 +5 in one
    // commit (10 - 5 = 5 trips, snapshot at the commit's last event).
    receive_each(&repo, "item-1", 2).await;
    item(&repo, "item-2", |r| {
        r.reserve("order-1", 3).unwrap();
        r.ship("order-1", 2).unwrap();
        r.release("order-1", 1).unwrap();
    })
    .await;
    warehouse(&repo, "wh-1", |w| {
        w.pick("A-01", "SKU-1", 5).unwrap();
        w.add_location("B-01").unwrap();
        w.place("B-01", "SKU-3", 7).unwrap();
        w.pick("A-02", "SKU-2", 20).unwrap();
        w.remove_location("A-02").unwrap();
    })
    .await;
    let phase2 = runner.run_until_idle(&handler).await.unwrap();
    assert_eq!(phase2.total.fetched, 2 + 3 + 5);
    assert_eq!(phase2.pending, 0);
    assert_eq!(snapshot_versions(&tables, "item-1").await, vec![6]);
    assert_eq!(snapshot_versions(&tables, "item-2").await, vec![6]);
    assert_eq!(snapshot_versions(&tables, "wh-1").await, vec![5, 10]);

    // Phase 3: item-2 +2 reaches 11 = 6 + 5; only these two records are in the batch, so
    // 7..=9 are fetched from the table.
    receive_each(&repo, "item-2", 2).await;
    runner.run_until_idle(&handler).await.unwrap();
    assert_eq!(snapshot_versions(&tables, "item-2").await, vec![6, 11]);

    // Loading through the snapshot equals full replay, for every aggregate.
    let registry = Registry::builtin();
    for (id, kind, latest) in [
        ("item-1", "INVENTORY_ITEM", 6),
        ("item-2", "INVENTORY_ITEM", 11),
        ("wh-1", "WAREHOUSE", 10),
    ] {
        let kind = registry.get(kind).unwrap();
        let loaded = repo.load_kind(kind.as_ref(), id).await.unwrap();
        let replayed = repo.replay_kind(kind.as_ref(), id).await.unwrap();
        assert_eq!(loaded.report.snapshot_version, Some(latest), "{id}");
        assert_eq!(loaded.version, replayed.version, "{id}");
        let loaded_json: serde_json::Value = serde_json::from_slice(&loaded.state_json).unwrap();
        let replayed_json: serde_json::Value =
            serde_json::from_slice(&replayed.state_json).unwrap();
        assert_eq!(loaded_json, replayed_json, "{id}");
    }
    let (typed, report) = repo.load::<Warehouse>("wh-1").await.unwrap();
    assert_eq!(report.snapshot_version, Some(10));
    assert_eq!(typed.state().used, 30 - 5 + 7);

    // Every record was acknowledged: the checkpoint is the stream's last record.
    assert_eq!(runner.checkpoints().shards.len(), 1);
}

#[tokio::test]
async fn redelivering_the_whole_stream_creates_no_new_snapshot() {
    let tables = TestTables::create("snap_redeliver").await;
    let repo = repository(&tables);
    let snapshotter = snapshotter(&tables, 2);
    let s = &snapshotter;
    let handler =
        move |event: Event| async move { Ok::<_, Infallible>(s.handle(event, None).await) };
    for id in ["item-a", "item-b"] {
        item(&repo, id, |r| r.create("SKU", "Thing", 0).unwrap()).await;
        receive_each(&repo, id, 3).await;
    }
    let mut first = runner(&tables, one_batch_per_phase()).await;
    first.run_until_idle(&handler).await.unwrap();
    let before = (
        snapshot_versions(&tables, "item-a").await,
        snapshot_versions(&tables, "item-b").await,
    );
    assert_eq!(before, (vec![4], vec![4]));

    // A second mapping from TRIM_HORIZON delivers every record again.
    let mut again = runner(&tables, one_batch_per_phase()).await;
    let drain = again.run_until_idle(&handler).await.unwrap();
    assert_eq!(drain.total.fetched, 8);
    assert_eq!(drain.total.failed_batches, 0);
    let after = (
        snapshot_versions(&tables, "item-a").await,
        snapshot_versions(&tables, "item-b").await,
    );
    assert_eq!(after, before);
}

#[tokio::test]
async fn the_next_batch_starts_at_the_record_the_handler_reported() {
    let tables = TestTables::create("runner_redeliver").await;
    let repo = repository(&tables);
    item(&repo, "item-r", |r| r.create("SKU", "Thing", 0).unwrap()).await;
    receive_each(&repo, "item-r", 4).await; // 5 records

    // Fails the third record of the first delivery only; records every delivery.
    let deliveries: Mutex<Vec<Vec<String>>> = Mutex::new(Vec::new());
    let deliveries_ref = &deliveries;
    let handler = move |event: Event| async move {
        let numbers: Vec<String> = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone().unwrap())
            .collect();
        let mut log = deliveries_ref.lock().unwrap();
        let mut response = DynamoDbEventResponse::default();
        if log.is_empty() {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = numbers.get(2).cloned();
            response.batch_item_failures.push(failure);
        }
        log.push(numbers);
        Ok::<_, Infallible>(response)
    };
    let mut runner = runner(
        &tables,
        RunnerSettings {
            batch_size: 10,
            ..RunnerSettings::default()
        },
    )
    .await;
    let drain = runner.run_until_idle(&handler).await.unwrap();

    let log = deliveries.lock().unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].len(), 5);
    assert_eq!(
        log[1],
        log[0][2..].to_vec(),
        "redelivery starts at the reported record"
    );
    assert_eq!(drain.total.acknowledged, 5);
    assert_eq!(drain.total.failed_batches, 1);
    assert_eq!(runner.checkpoints().shards.values().next(), log[0].last());
}

#[tokio::test]
async fn a_poison_record_blocks_only_until_its_attempts_are_spent_and_never_fails_other_aggregates()
{
    let tables = TestTables::create("runner_poison").await;
    let repo = repository(&tables);
    let snapshotter = snapshotter(&tables, 1);
    let s = &snapshotter;
    let handler =
        move |event: Event| async move { Ok::<_, Infallible>(s.handle(event, None).await) };

    item(&repo, "item-ok-1", |r| r.create("SKU", "Fine", 0).unwrap()).await;
    item(&repo, "item-p", |r| r.create("SKU", "Poisoned", 0).unwrap()).await;
    // A known event type without its payload's fields, written by a misbehaving producer.
    put_raw_event(&tables, "item-p", 2, "StockReceived").await;
    item(&repo, "item-ok-2", |r| {
        r.create("SKU", "Fine too", 0).unwrap();
    })
    .await;

    let mut runner = runner(
        &tables,
        RunnerSettings {
            batch_size: 100,
            max_attempts: Some(2),
            ..RunnerSettings::default()
        },
    )
    .await;
    // First delivery: the aggregates around the poison record are snapshotted at once.
    let first = runner.poll_once(&handler).await.unwrap();
    assert_eq!(
        (first.fetched, first.acknowledged, first.failed_batches),
        (4, 1, 1)
    );
    assert_eq!(snapshot_versions(&tables, "item-ok-1").await, vec![1]);
    assert_eq!(snapshot_versions(&tables, "item-ok-2").await, vec![1]);
    assert!(snapshot_versions(&tables, "item-p").await.is_empty());

    // Redelivered from item-p's first record until its attempts are spent, then from the
    // poison record itself, until both are discarded; the rest is acknowledged.
    let mut discarded = 0;
    for _ in 0..10 {
        let round = runner.poll_once(&handler).await.unwrap();
        discarded += round.discarded;
        if runner.pending() == 0 {
            break;
        }
    }
    assert_eq!(runner.pending(), 0);
    assert_eq!(discarded, 2, "item-p#1 and item-p#2");
    assert!(snapshot_versions(&tables, "item-p").await.is_empty());
}

/// Writes an event item as another service would, with an empty payload.
async fn put_raw_event(tables: &TestTables, id: &str, sequence: u64, event_type: &str) {
    tables
        .client
        .put_item()
        .table_name(&tables.events_table)
        .item("aggregateId", AttributeValue::S(id.to_owned()))
        .item("sequence", AttributeValue::N(sequence.to_string()))
        .item(
            "aggregateType",
            AttributeValue::S("INVENTORY_ITEM".to_owned()),
        )
        .item("eventType", AttributeValue::S(event_type.to_owned()))
        .item(
            "payload",
            AttributeValue::M(std::collections::HashMap::default()),
        )
        .item("eventId", AttributeValue::S(format!("raw-{id}-{sequence}")))
        .item("timestamp", AttributeValue::N("1".to_owned()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_type_this_version_does_not_know_is_skipped_and_never_holds_back_the_stream() {
    let tables = TestTables::create("runner_unknown_type").await;
    let repo = repository(&tables);
    let snapshotter = snapshotter(&tables, 1);
    let s = &snapshotter;
    let handler =
        move |event: Event| async move { Ok::<_, Infallible>(s.handle(event, None).await) };

    item(&repo, "item-new-type", |r| {
        r.create("SKU", "Newer", 0).unwrap();
    })
    .await;
    // The writing service deployed an event type before this function knows it.
    put_raw_event(&tables, "item-new-type", 2, "StockTeleported").await;
    item(&repo, "item-other", |r| {
        r.create("SKU", "Other", 0).unwrap();
    })
    .await;

    let mut runner = runner(
        &tables,
        RunnerSettings {
            batch_size: 100,
            max_attempts: Some(2),
            ..RunnerSettings::default()
        },
    )
    .await;
    let first = runner.poll_once(&handler).await.unwrap();
    assert_eq!(
        (first.fetched, first.acknowledged, first.failed_batches),
        (3, 3, 0),
        "acknowledged at once, nothing redelivered"
    );
    assert_eq!(runner.pending(), 0);
    assert_eq!(snapshot_versions(&tables, "item-other").await, vec![1]);
    assert!(snapshot_versions(&tables, "item-new-type").await.is_empty());
}

#[tokio::test]
async fn checkpoints_let_a_restarted_runner_continue_and_latest_skips_the_past() {
    let tables = TestTables::create("runner_checkpoint").await;
    let repo = repository(&tables);
    let count = Mutex::new(0_usize);
    let count_ref = &count;
    let handler = move |event: Event| async move {
        *count_ref.lock().unwrap() += event.records.len();
        Ok::<_, Infallible>(DynamoDbEventResponse::default())
    };
    let file = std::env::temp_dir().join(format!("checkpoints-{}.json", tables.events_table));
    let with_file = RunnerSettings {
        checkpoint_file: Some(file.clone()),
        ..RunnerSettings::default()
    };

    item(&repo, "item-c", |r| r.create("SKU", "Thing", 0).unwrap()).await;
    receive_each(&repo, "item-c", 2).await;
    runner(&tables, with_file.clone())
        .await
        .run_until_idle(&handler)
        .await
        .unwrap();
    assert_eq!(*count.lock().unwrap(), 3);

    // A new runner with the same checkpoint file resumes after the last acknowledged record.
    receive_each(&repo, "item-c", 1).await;
    let drain = runner(&tables, with_file)
        .await
        .run_until_idle(&handler)
        .await
        .unwrap();
    assert_eq!(drain.total.fetched, 1);
    assert_eq!(*count.lock().unwrap(), 4);

    // LATEST without checkpoints sees only what is written after it starts.
    let mut latest = runner(
        &tables,
        RunnerSettings {
            starting_position: StartingPosition::Latest,
            ..RunnerSettings::default()
        },
    )
    .await;
    assert_eq!(
        latest.run_until_idle(&handler).await.unwrap().total.fetched,
        0
    );
    receive_each(&repo, "item-c", 1).await;
    assert_eq!(
        latest.run_until_idle(&handler).await.unwrap().total.fetched,
        1
    );
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn an_expired_shard_iterator_is_reopened_after_the_checkpoint_and_nothing_is_lost_or_repeated(
) {
    use integration_tests::faults::{faulty_sdk_config, Fault, FaultPlan};

    let tables = TestTables::create("runner_expired").await;
    let repo = repository(&tables);
    item(&repo, "item-x", |r| r.create("SKU", "Thing", 0).unwrap()).await;
    receive_each(&repo, "item-x", 5).await; // 6 records

    // The first two GetRecords answers say the iterator expired (DynamoDB Streams' answer to
    // an iterator older than 15 minutes): the runner must open a new one after its checkpoint.
    let plan = FaultPlan::new(3, 1000)
        .kinds(&[Fault::ExpiredIterator])
        .only(&["GetRecords"])
        .at_most(2);
    let streams = aws_sdk_dynamodbstreams::Client::new(&faulty_sdk_config(&plan, 1).await);
    let mut runner = StreamRunner::connect(
        &tables.client,
        streams,
        &tables.events_table,
        "us-east-1",
        RunnerSettings {
            batch_size: 2,
            ..RunnerSettings::default()
        },
    )
    .await
    .unwrap();
    let delivered: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let delivered_ref = &delivered;
    let handler = move |event: Event| async move {
        delivered_ref.lock().unwrap().extend(
            event
                .records
                .iter()
                .filter_map(|r| r.change.sequence_number.clone()),
        );
        Ok::<_, Infallible>(DynamoDbEventResponse::default())
    };
    for _ in 0..10 {
        runner.run_until_idle(&handler).await.unwrap();
        if delivered.lock().unwrap().len() >= 6 {
            break;
        }
    }
    assert_eq!(plan.injected_of(Fault::ExpiredIterator), 2);
    assert!(
        plan.requests_of("GetShardIterator") >= 3,
        "reopened after each expiry: {}",
        plan.requests_of("GetShardIterator")
    );
    let delivered = delivered.into_inner().unwrap();
    let mut in_order = delivered.clone();
    in_order.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    in_order.dedup();
    assert_eq!(delivered.len(), 6, "every record once: {delivered:?}");
    assert_eq!(delivered, in_order, "in stream order, none twice");
}
