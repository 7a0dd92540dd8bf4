//! Helpers of the snapshotter tests: in-memory stores, generated events and stream batches.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use serde_json::json;
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::EventStore;
use snapshot_core::testing::stored_event;
use snapshot_core::{AggregateRepository, EventEnvelope, Registry};
use snapshotter::records::insert_record;
use snapshotter::{Settings, Snapshotter};

pub type Events = Arc<InMemoryEventStore>;
pub type Snapshots = Arc<InMemorySnapshotStore>;
pub type TestSnapshotter = Snapshotter<Events, Snapshots>;

pub use snapshot_core::testing::T0;
pub const HOUR: i64 = 3_600_000;

pub fn settings(vars: &[(&str, &str)]) -> Settings {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
        .unwrap()
}

/// A snapshotter on fresh in-memory stores with a settable clock (starting at [`T0`]).
pub struct Harness {
    pub events: Events,
    pub snapshots: Snapshots,
    pub clock: Arc<AtomicI64>,
    pub snapshotter: TestSnapshotter,
    stream: u64,
}

impl Harness {
    pub fn new(vars: &[(&str, &str)]) -> Self {
        Self::with_settings(settings(vars))
    }

    /// Count policy with this threshold.
    pub fn count(threshold: u64) -> Self {
        Self::new(&[
            ("SNAPSHOT_STRATEGY", "count"),
            ("SNAPSHOT_THRESHOLD", &threshold.to_string()),
        ])
    }

    pub fn with_settings(settings: Settings) -> Self {
        let events = Arc::new(InMemoryEventStore::new());
        let snapshots = Arc::new(InMemorySnapshotStore::new());
        let clock = Arc::new(AtomicI64::new(T0));
        let now = Arc::clone(&clock);
        let snapshotter = Snapshotter::new(Arc::clone(&events), Arc::clone(&snapshots), settings)
            .with_clock(move || now.load(Ordering::SeqCst));
        Self {
            events,
            snapshots,
            clock,
            snapshotter,
            stream: 0,
        }
    }

    pub fn set_now(&self, millis: i64) {
        self.clock.store(millis, Ordering::SeqCst);
    }

    /// Appends events to the event table (as the service writing it does).
    pub async fn append(&self, events: &[EventEnvelope]) {
        for event in events {
            self.events
                .append(event.sequence - 1, std::slice::from_ref(event))
                .await
                .unwrap();
        }
    }

    /// The stream batch that delivers `events`, numbered after the previous batches.
    pub fn batch(&mut self, events: &[EventEnvelope]) -> Event {
        let mut batch = Event::default();
        for event in events {
            self.stream += 1;
            let sequence_number = format!(
                "{}",
                500_000_000_000_000_000_000_u128 + u128::from(self.stream)
            );
            batch
                .records
                .push(insert_record(event, &sequence_number).unwrap());
        }
        batch
    }

    /// Appends and delivers `events` as one batch.
    pub async fn deliver(&mut self, events: &[EventEnvelope]) -> snapshotter::BatchReport {
        self.append(events).await;
        let batch = self.batch(events);
        self.snapshotter.process(batch, Some("test-request")).await
    }

    pub fn snapshot_versions(&self, aggregate_id: &str) -> Vec<u64> {
        self.snapshots
            .keys()
            .into_iter()
            .filter(|k| k.aggregate_id == aggregate_id)
            .map(|k| k.version)
            .collect()
    }

    pub fn repository(&self) -> AggregateRepository<Events, Snapshots> {
        AggregateRepository::new(
            Arc::clone(&self.events),
            Arc::clone(&self.snapshots),
            snapshot_core::codec::SnapshotCodec::new(8192),
        )
    }

    /// Asserts that every stored snapshot holds exactly the full replay of the events up to
    /// its version, and that loading each aggregate through its snapshot equals full replay.
    pub async fn assert_snapshots_match_replay(&self) {
        self.assert_snapshots_match_replay_from(0).await;
    }

    /// Like [`Harness::assert_snapshots_match_replay`] for snapshots from version `from` on
    /// (older ones may be stale by design of the test; loads must skip them).
    pub async fn assert_snapshots_match_replay_from(&self, from: u64) {
        let registry = Registry::builtin();
        let repository = self.repository();
        let mut ids: Vec<String> = self
            .snapshots
            .keys()
            .into_iter()
            .map(|k| k.aggregate_id)
            .collect();
        ids.dedup();
        for key in self
            .snapshots
            .keys()
            .into_iter()
            .filter(|k| k.version >= from)
        {
            let record = snapshot_core::ports::SnapshotStore::get(
                &*self.snapshots,
                &key.aggregate_id,
                key.version,
            )
            .await
            .unwrap()
            .unwrap();
            let kind = registry.get(&record.header.aggregate_type).unwrap();
            let state = snapshot_core::snapshot::open_snapshot(
                repository.codec(),
                &record,
                &key.aggregate_id,
                kind.type_name(),
                kind.schema_version(),
            )
            .unwrap();
            let events = self
                .events
                .read(&key.aggregate_id, 1, Some(key.version))
                .await
                .unwrap();
            let replayed = kind.fold_json(&key.aggregate_id, 0, None, &events).unwrap();
            assert_eq!(
                json_of(&state),
                json_of(&replayed),
                "snapshot {}@{} differs from replay",
                key.aggregate_id,
                key.version
            );
        }
        for id in ids {
            let any = self.events.read(&id, 1, Some(1)).await.unwrap();
            let kind = registry.get(&any[0].aggregate_type).unwrap();
            let loaded = repository.load_kind(kind.as_ref(), &id).await.unwrap();
            let replayed = repository.replay_kind(kind.as_ref(), &id).await.unwrap();
            assert!(
                loaded.report.snapshot_version.is_some(),
                "{id} loaded without snapshot"
            );
            assert_eq!(loaded.version, replayed.version, "{id}");
            assert_eq!(
                json_of(&loaded.state_json),
                json_of(&replayed.state_json),
                "{id}"
            );
        }
    }
}

pub fn json_of(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Events `from..=to` of an inventory item: created at 1, then stock movements that change
/// the state at every step (receipts, reservations, shipments).
pub fn item_events(id: &str, from: u64, to: u64) -> Vec<EventEnvelope> {
    (from..=to)
        .map(|seq| match seq {
            1 => stored_event(
                id,
                1,
                "INVENTORY_ITEM",
                "ItemCreated",
                json!({"sku": format!("SKU-{id}"), "name": "widget", "reorderPoint": 3}),
            ),
            s if s % 3 == 0 => stored_event(
                id,
                s,
                "INVENTORY_ITEM",
                "StockReserved",
                json!({"orderId": format!("o-{s}"), "quantity": 1}),
            ),
            s if s % 3 == 1 => stored_event(
                id,
                s,
                "INVENTORY_ITEM",
                "StockShipped",
                json!({"orderId": format!("o-{}", s - 1), "quantity": 1}),
            ),
            s => stored_event(
                id,
                s,
                "INVENTORY_ITEM",
                "StockReceived",
                json!({"quantity": s}),
            ),
        })
        .collect()
}

/// Events `from..=to` of a warehouse: created at 1, then locations and stock.
pub fn warehouse_events(id: &str, from: u64, to: u64) -> Vec<EventEnvelope> {
    (from..=to)
        .map(|seq| match seq {
            1 => stored_event(
                id,
                1,
                "WAREHOUSE",
                "WarehouseCreated",
                json!({"name": id, "capacity": 1_000_000}),
            ),
            s if s % 2 == 0 => stored_event(
                id,
                s,
                "WAREHOUSE",
                "LocationAdded",
                json!({"location": format!("L-{s}")}),
            ),
            s => stored_event(
                id,
                s,
                "WAREHOUSE",
                "StockPlaced",
                json!({"location": format!("L-{}", s - 1), "sku": "SKU-1", "quantity": s}),
            ),
        })
        .collect()
}

/// Decodes a sample stream event of `events/`.
pub fn sample(json: &str) -> Event {
    serde_json::from_str(json).unwrap()
}

/// The events a sample batch's INSERT images carry (to seed the event table with them).
pub fn sample_events(event: &Event) -> Vec<EventEnvelope> {
    event
        .records
        .iter()
        .filter(|r| r.event_name == "INSERT")
        .filter_map(|r| {
            serde_dynamo::from_item::<_, EventEnvelope>(r.change.new_image.clone()).ok()
        })
        .collect()
}

pub fn failures(report: &snapshotter::BatchReport) -> Vec<String> {
    report
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

pub fn metric(report: &snapshotter::BatchReport, name: &str) -> u64 {
    report.metrics.get(name).unwrap_or(-1.0) as u64
}
