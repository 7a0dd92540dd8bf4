//! The snapshotter on DynamoDB Local: one stream batch of 100 records over 100 aggregates per
//! scenario through the snapshotter library (the code the Lambda bootstrap runs, here with its
//! two stores on the counted client), DynamoDB requests and the read and write units they
//! consumed per snapshot and per record, counted on the wire, records per second through one
//! shard (`make bench BENCH_ONLY=snapshotter` runs this section alone).
//!
//! - `new`: first event of each aggregate, no snapshot yet;
//! - `redelivery`: the same batch again (nothing to do);
//! - `continuing`: the batch continues the newest snapshot (no gap);
//! - `gap`: two events between the snapshot and the batch were never delivered;
//! - `time`: the time policy trips with one new event (the newest record is the base);
//! - `not-due`: a count-2 policy with one new event;
//! - `count-across-batches`: threshold 2 reached by the second of two batches (newest record,
//!   its boundary event with the first batch's event, put).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_lambda_events::event::dynamodb::Event;
use futures::stream::{self, StreamExt};
use serde_json::json;
use snapshot_core::clock::now_millis;
use snapshot_core::ports::EventStore;
use snapshot_core::EventEnvelope;
use snapshot_dynamo::{schema, DynamoEventStore, DynamoSnapshotStore};
use snapshotter::records::insert_record;
use snapshotter::{Settings, Snapshotter};

use crate::stats::Figure;
use crate::wire::{Units, Wire};

pub const AGGREGATES: usize = 100;
const HOUR: i64 = 3_600_000;

fn item_event(id: &str, sequence: u64) -> EventEnvelope {
    let (event_type, payload) = if sequence == 1 {
        (
            "ItemCreated",
            json!({"sku": format!("SKU-{id}"), "name": "widget", "reorderPoint": 1}),
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
        event_id: uuid::Uuid::new_v4().to_string(),
        timestamp: now_millis(),
        metadata: None,
    }
}

struct Bench {
    seed_store: DynamoEventStore,
    counter: Wire,
    counted: aws_sdk_dynamodb::Client,
    events_table: String,
    snapshots_table: String,
    stream_number: u64,
    clock: Arc<AtomicI64>,
}

impl Bench {
    fn snapshotter(
        &self,
        vars: &'static [(&'static str, &'static str)],
    ) -> Snapshotter<DynamoEventStore, DynamoSnapshotStore> {
        let settings = Settings::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap_or_else(|e| panic!("bench settings: {e}"));
        let clock = Arc::clone(&self.clock);
        Snapshotter::new(
            DynamoEventStore::new(self.counted.clone(), &self.events_table),
            DynamoSnapshotStore::new(self.counted.clone(), &self.snapshots_table),
            settings,
        )
        .with_clock(move || clock.load(Ordering::SeqCst))
    }

    /// Appends event `sequence` of every aggregate (not counted) and returns them.
    async fn append(&self, ids: &[String], sequence: u64) -> Vec<EventEnvelope> {
        let events: Vec<EventEnvelope> = ids.iter().map(|id| item_event(id, sequence)).collect();
        let results: Vec<_> = stream::iter(&events)
            .map(|e| {
                self.seed_store
                    .append(e.sequence - 1, std::slice::from_ref(e))
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for result in results {
            result.unwrap_or_else(|e| panic!("seeding: {e}"));
        }
        events
    }

    fn batch(&mut self, events: &[EventEnvelope]) -> Event {
        let mut batch = Event::default();
        for event in events {
            self.stream_number += 1;
            let number =
                (700_000_000_000_000_000_000_u128 + u128::from(self.stream_number)).to_string();
            batch
                .records
                .push(insert_record(event, &number).unwrap_or_else(|e| panic!("record: {e}")));
        }
        batch
    }

    /// Processes one batch with counting on; prints and returns the figures.
    async fn measure(
        &mut self,
        label: &str,
        snapshotter: &Snapshotter<DynamoEventStore, DynamoSnapshotStore>,
        batch: Event,
        rows: &mut Vec<Row>,
    ) {
        self.counter.reset();
        let started = Instant::now();
        let report = snapshotter.process(batch, None).await;
        let wall = started.elapsed();
        let cost = self.counter.take();
        let (by_operation, requests, units) = (cost.by_operation, cost.requests, cost.units);
        assert!(
            report.response.batch_item_failures.is_empty(),
            "{label}: failures {:?}",
            report.outcomes
        );
        rows.push(Row {
            label: label.to_owned(),
            snapshots: report.tally.snapshots_created,
            requests,
            by_operation,
            units,
            wall,
        });
    }
}

pub struct Row {
    label: String,
    snapshots: u64,
    requests: u64,
    by_operation: BTreeMap<String, u64>,
    units: Units,
    wall: Duration,
}

const COUNT_1: &[(&str, &str)] = &[("SNAPSHOT_STRATEGY", "count"), ("SNAPSHOT_THRESHOLD", "1")];
const COUNT_2: &[(&str, &str)] = &[("SNAPSHOT_STRATEGY", "count"), ("SNAPSHOT_THRESHOLD", "2")];
const TIME_1H: &[(&str, &str)] = &[
    ("SNAPSHOT_STRATEGY", "hybrid"),
    ("SNAPSHOT_THRESHOLD", "1000"),
    ("SNAPSHOT_INTERVAL_HOURS", "1"),
];

async fn round(bench: &mut Bench, round: usize, rows: &mut Vec<Row>) {
    let ids: Vec<String> = (0..AGGREGATES)
        .map(|n| format!("r{round}-item-{n:03}"))
        .collect();
    bench.clock.store(now_millis(), Ordering::SeqCst);
    let count_1 = bench.snapshotter(COUNT_1);

    let events = bench.append(&ids, 1).await;
    let batch = bench.batch(&events);
    bench.measure("new", &count_1, batch.clone(), rows).await;
    bench.measure("redelivery", &count_1, batch, rows).await;

    let events = bench.append(&ids, 2).await;
    let batch = bench.batch(&events);
    bench.measure("continuing", &count_1, batch, rows).await;

    bench.append(&ids, 3).await;
    bench.append(&ids, 4).await;
    let events = bench.append(&ids, 5).await;
    let batch = bench.batch(&events);
    bench.measure("gap", &count_1, batch, rows).await;

    let time = bench.snapshotter(TIME_1H);
    bench.clock.fetch_add(2 * HOUR, Ordering::SeqCst);
    let events = bench.append(&ids, 6).await;
    let batch = bench.batch(&events);
    bench.measure("time", &time, batch, rows).await;

    let count_2 = bench.snapshotter(COUNT_2);
    let events = bench.append(&ids, 7).await;
    let batch = bench.batch(&events);
    bench.measure("not-due", &count_2, batch, rows).await;
    let events = bench.append(&ids, 8).await;
    let batch = bench.batch(&events);
    bench
        .measure("count-across-batches", &count_2, batch, rows)
        .await;
}

#[derive(Debug, Clone)]
pub struct StreamRow {
    pub scenario: String,
    pub snapshots: u64,
    pub requests_per_snapshot: Option<f64>,
    pub by_operation: BTreeMap<String, u64>,
    /// Capacity units per stream record processed (every batch has [`AGGREGATES`] records).
    pub units_per_record: Units,
    /// Capacity units per snapshot written (none when the scenario writes none).
    pub units_per_snapshot: Option<Units>,
    pub wall_ms: Figure,
    pub records_per_second: Figure,
}

/// Per scenario: requests per snapshot over all rounds, wall time and records/s per round.
pub fn summarise(rows: &[Row]) -> Vec<StreamRow> {
    let mut labels: Vec<&str> = Vec::new();
    for row in rows {
        if !labels.contains(&row.label.as_str()) {
            labels.push(&row.label);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let of: Vec<&Row> = rows.iter().filter(|r| r.label == label).collect();
            let snapshots: u64 = of.iter().map(|r| r.snapshots).sum();
            let requests: u64 = of.iter().map(|r| r.requests).sum();
            let mut units = Units::default();
            for row in &of {
                units += row.units;
            }
            let records = (AGGREGATES * of.len()) as f64;
            let per = |count: f64| Units {
                read: units.read / count,
                write: units.write / count,
            };
            let mut by_operation: BTreeMap<String, u64> = BTreeMap::new();
            for row in &of {
                for (op, n) in &row.by_operation {
                    *by_operation.entry(op.clone()).or_default() += n;
                }
            }
            for n in by_operation.values_mut() {
                *n /= of.len() as u64;
            }
            StreamRow {
                scenario: label.to_owned(),
                snapshots: snapshots / of.len() as u64,
                requests_per_snapshot: (snapshots > 0).then(|| requests as f64 / snapshots as f64),
                by_operation,
                units_per_record: per(records),
                units_per_snapshot: (snapshots > 0).then(|| per(snapshots as f64)),
                wall_ms: Figure::of(of.iter().map(|r| r.wall.as_secs_f64() * 1000.0).collect()),
                records_per_second: Figure::of(
                    of.iter()
                        .map(|r| AGGREGATES as f64 / r.wall.as_secs_f64())
                        .collect(),
                ),
            }
        })
        .collect()
}

pub async fn run(
    plain: &aws_sdk_dynamodb::Client,
    counted: &aws_sdk_dynamodb::Client,
    wire: &Wire,
    suffix: &str,
    runs: usize,
) -> Result<Vec<StreamRow>> {
    let events_table = format!("bench_stream_events_{suffix}");
    let snapshots_table = format!("bench_stream_snapshots_{suffix}");
    crate::seed::events_table_without_stream(plain, &events_table).await?;
    schema::create_snapshots_table(plain, &snapshots_table).await?;
    let mut bench = Bench {
        seed_store: DynamoEventStore::new(plain.clone(), &events_table),
        counter: wire.clone(),
        counted: counted.clone(),
        events_table: events_table.clone(),
        snapshots_table: snapshots_table.clone(),
        stream_number: 0,
        clock: Arc::new(AtomicI64::new(now_millis())),
    };
    // One untimed round first: DynamoDB Local's JIT has not compiled this section's writes
    // yet when it runs alone (BENCH_ONLY=snapshotter).
    round(&mut bench, 0, &mut Vec::new()).await;
    let mut rows = Vec::new();
    for n in 1..=runs {
        round(&mut bench, n, &mut rows).await;
    }
    for table in [&events_table, &snapshots_table] {
        let _ = plain.delete_table().table_name(table).send().await;
    }
    let summary = summarise(&rows);
    for row in &summary {
        let per_snapshot = row.units_per_snapshot.map_or_else(
            || "no snapshot".to_owned(),
            |u| {
                format!(
                    "{:.2} read / {:.2} write units per snapshot",
                    u.read, u.write
                )
            },
        );
        eprintln!(
            "bench: snapshotter {:<20} {} snapshots, {:?}, {:.2} read / {:.2} write units per \
             record, {per_snapshot}, {} ms, {} records/s",
            row.scenario,
            row.snapshots,
            row.by_operation,
            row.units_per_record.read,
            row.units_per_record.write,
            row.wall_ms,
            row.records_per_second.show(0)
        );
    }
    Ok(summary)
}
