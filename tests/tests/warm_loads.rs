//! Warm loads against DynamoDB Local: a repository with a cache of warm states loads an
//! aggregate it holds with one strongly consistent Query of the events from the cached version
//! on, no snapshot read, one read unit when the boundary event and the newer ones fit in 4 KB;
//! and falls back to the snapshot load when the stored boundary event is not the cached one.
//! Requests, round trips and consumed units are observed on the wire (an SDK interceptor asks
//! every read for its consumed capacity), not taken from the repository's own report.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::body::SdkBody;
use integration_tests::TestTables;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{AggregateRepository, Registry, StateCache};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

/// One request seen on the wire: its operation, when it was sent and answered (as an order
/// of events), the read units it consumed and the bytes of its answer.
#[derive(Debug, Clone)]
struct Exchange {
    operation: String,
    read_units: f64,
    answer_bytes: usize,
}

/// Every request since the last [`Wire::take`], and how many sequential round trips they
/// made (a request sent while none is in flight starts one).
#[derive(Debug, Clone, Default)]
struct Wire(Arc<Mutex<WireState>>);

#[derive(Debug, Default)]
struct WireState {
    exchanges: Vec<Exchange>,
    in_flight: u32,
    round_trips: u32,
}

impl Wire {
    fn take(&self) -> (Vec<Exchange>, u32) {
        let mut state = self.0.lock().unwrap();
        let round_trips = std::mem::take(&mut state.round_trips);
        (std::mem::take(&mut state.exchanges), round_trips)
    }
}

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "Wire"
    }

    /// Asks every Query and GetItem for the capacity it consumed.
    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let operation = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        {
            let mut state = self.0.lock().unwrap();
            if state.in_flight == 0 {
                state.round_trips += 1;
            }
            state.in_flight += 1;
            state.exchanges.push(Exchange {
                operation: operation.clone(),
                read_units: 0.0,
                answer_bytes: 0,
            });
        }
        if !["Query", "GetItem"].contains(&operation.as_str()) {
            return Ok(());
        }
        let Some(body) = request.body().bytes() else {
            return Ok(());
        };
        let mut body: serde_json::Value = serde_json::from_slice(body)?;
        body["ReturnConsumedCapacity"] = "TOTAL".into();
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response().body().bytes().unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let units = parsed["ConsumedCapacity"]["CapacityUnits"]
            .as_f64()
            .unwrap_or(0.0);
        let mut state = self.0.lock().unwrap();
        state.in_flight = state.in_flight.saturating_sub(1);
        // Requests are answered in order here (one at a time, or a load's two sent together
        // whose units are summed): the oldest unanswered one takes these figures.
        if let Some(e) = state
            .exchanges
            .iter_mut()
            .find(|e| e.answer_bytes == 0 && e.read_units == 0.0)
        {
            e.read_units = units;
            e.answer_bytes = body.len().max(1);
        }
        Ok(())
    }
}

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

/// A repository with a cache whose requests go through `wire`, and one without (another
/// writer, unobserved).
async fn setup(name: &str) -> (TestTables, Repo, Repo, Wire) {
    let tables = TestTables::create(name).await;
    let wire = Wire::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        tables
            .client
            .config()
            .to_builder()
            .interceptor(wire.clone())
            .build(),
    );
    let warm = AggregateRepository::new(
        DynamoEventStore::new(client.clone(), &tables.events_table),
        DynamoSnapshotStore::new(client, &tables.snapshots_table),
        SnapshotCodec::default(),
    )
    .with_state_cache(Arc::new(StateCache::new(1 << 20)));
    let other = AggregateRepository::new(
        tables.event_store(),
        tables.snapshot_store(),
        SnapshotCodec::default(),
    );
    (tables, warm, other, wire)
}

/// An item with `events` events written by `repo`, snapshotted at `snapshot_at`.
async fn item(repo: &Repo, id: &str, events: u64, snapshot_at: u64) {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU-1", "Widget", 0).unwrap();
    repo.save(&mut root, None).await.unwrap();
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap();
    for n in 2..=events {
        root.receive(1, None).unwrap();
        repo.save(&mut root, None).await.unwrap();
        if n == snapshot_at {
            repo.snapshot_now(kind.as_ref(), id, SnapshotMetadata::default(), None)
                .await
                .unwrap();
        }
    }
}

async fn receipts(repo: &Repo, id: &str, count: usize) {
    let (mut root, _) = repo.load::<InventoryItem>(id).await.unwrap();
    for _ in 0..count {
        root.receive(1, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
}

#[tokio::test]
async fn a_warm_load_is_one_query_of_at_most_one_read_unit() {
    let (_tables, warm, other, wire) = setup("warm_one").await;
    item(&other, "item-1", 30, 25).await;
    let (_, cold) = warm.load::<InventoryItem>("item-1").await.unwrap();
    assert!(!cold.from_cache);
    let (cold_wire, cold_trips) = wire.take();
    // Four events written by a writer the cache never heard of (well under 4 KB with the
    // boundary event).
    receipts(&other, "item-1", 4).await;

    let (loaded, report) = warm.load::<InventoryItem>("item-1").await.unwrap();

    let (exchanges, round_trips) = wire.take();
    assert_eq!(round_trips, 1);
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].operation, "Query");
    let units = exchanges[0].read_units;
    assert!(units > 0.0 && units <= 1.0, "{units} read units");
    assert!(report.from_cache);
    assert_eq!((report.requests, report.round_trips), (1, 1));
    assert_eq!(report.events_replayed, 4);
    let (expected, _) = other.load::<InventoryItem>("item-1").await.unwrap();
    assert_eq!(loaded.version(), 34);
    assert_eq!(loaded.state(), expected.state());
    // The cold load it replaces: the snapshot and the newest events together.
    assert_eq!((cold_wire.len(), cold_trips), (2, 1));
    let cold_units: f64 = cold_wire.iter().map(|e| e.read_units).sum();
    assert!(cold_units >= units, "cold {cold_units}, warm {units}");

    // A save through the warm repository keeps what it wrote: the next load folds nothing.
    let mut root = loaded;
    root.receive(2, None).unwrap();
    warm.save(&mut root, None).await.unwrap();
    wire.take();
    let (again, report) = warm.load::<InventoryItem>("item-1").await.unwrap();
    assert!(report.from_cache);
    assert_eq!(report.events_replayed, 0);
    assert_eq!(again.state(), root.state());
    let (exchanges, round_trips) = wire.take();
    assert_eq!((exchanges.len(), round_trips), (1, 1));
    assert!(exchanges[0].read_units <= 1.0);
}

#[tokio::test]
async fn a_boundary_event_that_is_not_the_cached_one_falls_back_to_the_snapshot_load() {
    let (tables, warm, other, wire) = setup("warm_fallback").await;
    item(&other, "item-2", 12, 10).await;
    warm.load::<InventoryItem>("item-2").await.unwrap();
    receipts(&other, "item-2", 1).await;
    // The boundary event (version 12, the cached one) rewritten with another id: as in a
    // table restored and written again.
    tables
        .client
        .update_item()
        .table_name(&tables.events_table)
        .key("aggregateId", AttributeValue::S("item-2".to_owned()))
        .key("sequence", AttributeValue::N("12".to_owned()))
        .update_expression("SET eventId = :id")
        .expression_attribute_values(":id", AttributeValue::S("rewritten".to_owned()))
        .send()
        .await
        .unwrap();
    wire.take();

    let (loaded, report) = warm.load::<InventoryItem>("item-2").await.unwrap();

    let (exchanges, round_trips) = wire.take();
    assert!(!report.from_cache);
    assert_eq!(report.snapshot_version, Some(10));
    // The cache's Query, then the snapshot load's two requests sent together.
    assert_eq!((exchanges.len(), round_trips), (3, 2), "{exchanges:?}");
    assert_eq!((report.requests, report.round_trips), (3, 2));
    let (expected, _) = other.load::<InventoryItem>("item-2").await.unwrap();
    assert_eq!(loaded.version(), 13);
    assert_eq!(loaded.state(), expected.state());
    let cache = warm.state_cache().unwrap();
    assert_eq!(cache.stats().invalidated, 1);
    assert_eq!(cache.cached_version("item-2"), Some(13), "refreshed");
}
