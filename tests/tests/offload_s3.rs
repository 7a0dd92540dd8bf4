//! States larger than one item on DynamoDB Local and moto's S3: a multi-megabyte WAREHOUSE is
//! snapshotted to S3 (KMS-encrypted, tagged committed), loaded back through the object,
//! snapshotted by the snapshotter only once for a version however often the batch comes
//! back, and deleted with its item; the pruner deletes pruned states' objects with their
//! items and leaves the backfill job's record alone.

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_s3::types::ServerSideEncryption;
use integration_tests::{sdk_config, TestTables};
use snapshot_core::codec::{sha256_hex, DYNAMODB_ITEM_LIMIT};
use snapshot_core::config::Config;
use snapshot_core::domain::{AggregateRoot, Warehouse};
use snapshot_core::offload::object_key;
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{AggregateRepository, Registry};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};
use snapshot_s3::{client, create_bucket, with_state_objects, SnapshotStoreWithObjects};
use snapshotter::records::insert_record;
use snapshotter::{Action, Settings, Snapshotter};

type Store = SnapshotStoreWithObjects<DynamoSnapshotStore>;

struct Setup {
    tables: TestTables,
    bucket: String,
    s3: aws_sdk_s3::Client,
    config: Config,
    lookup: Vec<(&'static str, String)>,
}

impl Setup {
    async fn new(name: &str) -> Self {
        let tables = TestTables::create(name).await;
        let bucket = format!(
            "states-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let s3 = client(&sdk_config().await);
        create_bucket(&s3, &bucket).await.unwrap();
        let lookup = vec![
            ("EVENTS_TABLE", tables.events_table.clone()),
            ("SNAPSHOTS_TABLE", tables.snapshots_table.clone()),
            ("SNAPSHOT_BUCKET", bucket.clone()),
            ("SNAPSHOT_STRATEGY", "count".to_owned()),
            ("SNAPSHOT_THRESHOLD", "100".to_owned()),
        ];
        let config = Config::from_lookup(|k| find(&lookup, k)).unwrap();
        Self {
            tables,
            bucket,
            s3,
            config,
            lookup,
        }
    }

    async fn store(&self) -> Store {
        with_state_objects(
            self.tables.snapshot_store(),
            &sdk_config().await,
            &self.config,
        )
    }

    async fn object_keys(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

const API_TOKEN: &str = "offload-dev-token";

/// The admin API's local server (the Lambda's router) on the setup's tables and bucket.
async fn admin_api_on(setup: &Setup) -> String {
    use admin_api::local::{bind, serve};
    use admin_api::{dynamo_state, router, AccessPolicy, Authenticator, DevToken};
    let state = dynamo_state(&sdk_config().await, setup.config.clone());
    let authenticator = Authenticator::local(AccessPolicy::default())
        .with_dev_token(DevToken::new(API_TOKEN).unwrap());
    let listener = bind(0).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, router(state, authenticator)));
    base
}

fn find(lookup: &[(&'static str, String)], key: &str) -> Option<String> {
    lookup
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone())
}

/// About 3 MB of state that compresses to well over one item: 700 placements of 4 KB SKUs
/// made of hashes (the locations in one transaction, each placement on its own).
async fn multi_megabyte_warehouse(events: &DynamoEventStore, id: &str) -> u64 {
    // Saving touches no snapshot.
    let repo = AggregateRepository::new(
        events.clone(),
        snapshot_core::memory::InMemorySnapshotStore::new(),
        snapshot_core::codec::SnapshotCodec::default(),
    );
    let mut root = AggregateRoot::<Warehouse>::new(id);
    root.create("Big", i64::MAX / 2).unwrap();
    for l in 0..50 {
        root.add_location(&format!("L{l:02}")).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    for p in 0..700 {
        let sku: String = (0..64)
            .map(|i| sha256_hex(format!("{id}/{p}/{i}").as_bytes()))
            .collect();
        root.place(&format!("L{:02}", p % 50), &sku, 1).unwrap();
        // One event per append (a PutItem), as the history was first written for moto, which
        // copied a whole table for each transaction.
        repo.save(&mut root, None).await.unwrap();
    }
    root.version()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_megabyte_warehouse_is_offloaded_to_s3_and_loads_back() {
    let setup = Setup::new("offload").await;
    let events = setup.tables.event_store();
    let version = multi_megabyte_warehouse(&events, "wh-mega").await;
    let repo = AggregateRepository::new(events, setup.store().await, setup.config.codec.clone());
    let kind = Registry::builtin().get("WAREHOUSE").unwrap().clone();

    let (record, outcome) = repo
        .snapshot_now(kind.as_ref(), "wh-mega", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(record.header.encoding, "s3+json+zstd");
    assert!(
        record.header.size_bytes > 2_000_000,
        "{}",
        record.header.size_bytes
    );
    assert!(record.header.stored_bytes as usize > DYNAMODB_ITEM_LIMIT);

    // The object: keyed by aggregate and version, KMS-encrypted, committed.
    let key = object_key("wh-mega", version);
    assert_eq!(setup.object_keys().await, vec![key.clone()]);
    let head = setup
        .s3
        .head_object()
        .bucket(&setup.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(
        head.content_length(),
        Some(record.header.stored_bytes as i64)
    );
    let tags = setup
        .s3
        .get_object_tagging()
        .bucket(&setup.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let tag = tags
        .tag_set()
        .iter()
        .find(|t| t.key() == snapshot_s3::STATE_TAG)
        .unwrap();
    assert_eq!(tag.value(), snapshot_s3::COMMITTED);

    // The item keeps the pointer, the sizes and the checksum, not the state.
    let item = setup
        .tables
        .client
        .get_item()
        .table_name(&setup.tables.snapshots_table)
        .key(
            "aggregateId",
            aws_sdk_dynamodb::types::AttributeValue::S("wh-mega".into()),
        )
        .key(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N(version.to_string()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("state"));
    let state_ref = item["stateRef"].as_m().unwrap();
    assert_eq!(state_ref["bucket"].as_s().unwrap(), &setup.bucket);
    assert_eq!(state_ref["key"].as_s().unwrap(), &key);
    assert_eq!(item["checksum"].as_s().unwrap(), &record.header.checksum);

    // Loaded back through the object, equal to a full replay.
    let (root, report) = repo.load::<Warehouse>("wh-mega").await.unwrap();
    assert_eq!(report.snapshot_version, Some(version));
    assert_eq!(report.events_replayed, 0);
    let replayed = repo.replay_kind(kind.as_ref(), "wh-mega").await.unwrap();
    assert_eq!(
        serde_json::to_vec(root.state()).unwrap(),
        replayed.state_json
    );

    // The admin API reads, verifies and deletes it through the object too.
    let api = admin_api_on(&setup).await;
    let http = reqwest::Client::new();
    let latest: serde_json::Value = http
        .get(format!("{api}/admin/snapshots/wh-mega/latest"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["version"], version, "{latest}");
    assert_eq!(latest["encoding"], "s3+json+zstd", "{latest}");
    assert_eq!(latest["stateRef"]["key"], key.as_str(), "{latest}");
    let replayed_value: serde_json::Value = serde_json::from_slice(&replayed.state_json).unwrap();
    assert!(
        latest["state"] == replayed_value,
        "the state read from the object differs from a full replay"
    );
    let verify: serde_json::Value = http
        .post(format!("{api}/admin/snapshots/wh-mega/verify"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["result"], "match", "{verify}");
    assert_eq!(
        verify["snapshotLoad"]["snapshotVersion"], version,
        "{verify}"
    );

    // Deleted with its item (the only snapshot: with force).
    let deleted = http
        .delete(format!(
            "{api}/admin/snapshots/wh-mega/{version}?force=true"
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert!(setup.object_keys().await.is_empty());
    assert!(repo
        .snapshots()
        .latest_header("wh-mega")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshotter_offloads_an_oversized_aggregate_once_per_version() {
    let setup = Setup::new("offload_snap").await;
    let events = setup.tables.event_store();
    let version = multi_megabyte_warehouse(&events, "wh-stream").await;
    let settings = Settings::from_lookup(|k| find(&setup.lookup, k)).unwrap();
    let snapshotter = Snapshotter::new(setup.tables.event_store(), setup.store().await, settings);
    // The stream batch of the last 100 events.
    let tail = events.read("wh-stream", version - 99, None).await.unwrap();
    let records = tail
        .iter()
        .map(|e| insert_record(e, &format!("{:040}", e.sequence)).unwrap())
        .collect();
    let mut batch = Event::default();
    batch.records = records;

    let first = snapshotter.process(batch.clone(), None).await;
    assert!(first.response.batch_item_failures.is_empty());
    assert!(
        matches!(first.outcomes[0].result(), Ok(Action::Created { version: v, .. }) if *v == version),
        "{:?}",
        first.outcomes[0].result()
    );
    assert!(
        first.outcomes[0].counts().events_fetched() > 0,
        "first time: rebuilt by replay"
    );

    // Redelivery (and any later batch at this version) does not rebuild it again.
    for _ in 0..2 {
        let again = snapshotter.process(batch.clone(), None).await;
        assert!(
            matches!(again.outcomes[0].result(), Ok(Action::UpToDate { snapshot_version }) if *snapshot_version == version),
            "{:?}",
            again.outcomes[0].result()
        );
        assert_eq!(again.outcomes[0].counts().events_fetched(), 0);
        assert_eq!(again.outcomes[0].counts().events_folded(), 0);
    }
    assert_eq!(
        setup.object_keys().await,
        vec![object_key("wh-stream", version)]
    );
}

/// A snapshot whose state (about 1.2 MB of hashes) compresses to more than one item.
fn oversized_record(
    codec: &snapshot_core::codec::SnapshotCodec,
    id: &str,
    version: u64,
) -> snapshot_core::snapshot::SnapshotRecord {
    let blob: String = (0..19_000)
        .map(|i| sha256_hex(format!("{id}/{version}/{i}").as_bytes()))
        .collect();
    let state = serde_json::json!({"id": id, "name": "Big", "capacity": 1, "used": 0, "locations": {}, "blob": blob});
    snapshot_core::snapshot::build_snapshot(
        codec,
        snapshot_core::snapshot::SnapshotSubject {
            aggregate_id: id,
            aggregate_type: "WAREHOUSE",
            schema_version: Registry::builtin()
                .get("WAREHOUSE")
                .unwrap()
                .schema_version(),
            version,
            last_event_id: None,
        },
        state.to_string().into_bytes(),
        SnapshotMetadata::default(),
        1_700_000_000_000 + version as i64,
        None,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pruner_deletes_offloaded_states_with_their_items_and_leaves_the_backfill_job() {
    use pruner::{handler, Invocation, PrunerSettings};
    use snapshot_core::backfill::{BackfillJob, BackfillJobStore, BackfillPlan};
    use snapshot_core::pruning::Deadline;
    use snapshot_dynamo::DynamoJobStore;

    let setup = Setup::new("offload_prune").await;
    let store = setup.store().await;
    for version in 1..=3 {
        let record = oversized_record(&setup.config.codec, "wh-prune", version);
        assert!(
            record.header.encoding.starts_with("s3+"),
            "{}",
            record.header.encoding
        );
        store.put_if_absent(&record).await.unwrap();
    }
    assert_eq!(setup.object_keys().await.len(), 3);
    // The backfill job's record lives in the same table.
    let jobs = DynamoJobStore::new(setup.tables.client.clone(), &setup.tables.snapshots_table);
    let job = BackfillJob::start(BackfillPlan::default());
    jobs.save(&job).await.unwrap();

    let mut lookup = setup.lookup.clone();
    lookup.push(("MAX_SNAPSHOTS_PER_AGGREGATE", "1".to_owned()));
    let settings = PrunerSettings::from_lookup(|k| find(&lookup, k)).unwrap();
    let invocation = Invocation {
        deadline: Deadline::none(),
        request_id: Some("prune-1".to_owned()),
    };
    let summary = handler(
        &store,
        &snapshot_core::pruning::StartOver,
        &Registry::builtin(),
        &settings,
        serde_json::json!({}),
        invocation,
    )
    .await
    .unwrap();
    assert_eq!(summary.deleted, 2, "{summary:?}");
    assert_eq!(
        setup.object_keys().await,
        vec![object_key("wh-prune", 3)],
        "the pruned snapshots' objects go with their items"
    );
    let kept = store
        .latest_header("wh-prune")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(kept.version, 3);
    assert_eq!(
        jobs.load().await.unwrap(),
        Some(job),
        "the job record is left alone"
    );
}
