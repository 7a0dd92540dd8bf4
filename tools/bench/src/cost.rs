//! What the service costs on DynamoDB's on-demand bill: the capacity units of its unit
//! operations measured on DynamoDB Local (an event append, a not-due decision before and after
//! snapshot heads, a snapshot put, a delete, at several state sizes), and a model at the
//! seed's scale built from them and from the other sections' figures (snapshotter, pruner,
//! loads) of the same run. The formula is written out in the report (`report::cost`).

use anyhow::{Context as _, Result};
use aws_sdk_dynamodb::Client;
use snapshot_core::domain::{EventEnvelope, InventoryItem};
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::snapshot::SnapshotKey;
use snapshot_core::testing::histories::item_events;
use snapshot_core::testing::sized_snapshot;
use snapshot_dynamo::{schema, DynamoEventStore, DynamoSnapshotStore};

use crate::stats::Figure;
use crate::wire::{Units, Wire};

/// State sizes measured: an INVENTORY_ITEM-like state, the issue's ~12 KB WAREHOUSE item, and
/// two large ones (the largest fits the 400 KB item limit with its attributes).
pub const STATE_BYTES: [usize; 4] = [1_000, 12_000, 100_000, 350_000];

/// Events appended one per request to measure an append's write units.
const APPENDS: usize = 50;

/// The unit operations at one state size (medians over the runs).
#[derive(Debug, Clone)]
pub struct SizeRow {
    pub state_bytes: usize,
    /// The not-due decision before heads: the newest snapshot item, strongly consistent.
    pub decide_before: Figure,
    /// The not-due decision with heads: the head item, eventually consistent.
    pub decide_after: Figure,
    /// A snapshot put with its head.
    pub put: Units,
    /// The base a due snapshot is built on: the newest snapshot item (as `decide_before`).
    pub base_read: f64,
    /// One snapshot deleted (BatchWriteItem).
    pub delete: Units,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Default)]
pub struct CostRows {
    /// Write units per event appended (one event per append).
    pub append_per_event: f64,
    /// Read units of a snapshot's boundary event read (the snapshotter's event read).
    pub boundary_read: f64,
    pub sizes: Vec<SizeRow>,
}

pub async fn run(
    plain: &Client,
    counted: &Client,
    wire: &Wire,
    suffix: &str,
    runs: usize,
) -> Result<CostRows> {
    let events_table = format!("bench_cost_events_{suffix}");
    let snapshots_table = format!("bench_cost_snapshots_{suffix}");
    crate::seed::events_table_without_stream(plain, &events_table).await?;
    schema::create_snapshots_table(plain, &snapshots_table).await?;
    let events = DynamoEventStore::new(counted.clone(), &events_table);
    let snapshots = DynamoSnapshotStore::new(counted.clone(), &snapshots_table);

    // An append of one event at a time, as the seed's service writes most of them.
    let history = item_events(APPENDS);
    let id = "cost-item";
    let mut write_units = 0.0;
    for (i, event) in history.iter().enumerate() {
        let envelope = EventEnvelope::wrap::<InventoryItem>(id, i as u64 + 1, event, 0, None);
        wire.reset();
        events.append(i as u64, &[envelope]).await?;
        write_units += wire.take().units.write;
    }
    let append_per_event = write_units / APPENDS as f64;
    wire.reset();
    events.read(id, 10, Some(10)).await?;
    let boundary_read = wire.take().units.read;

    let mut sizes = Vec::new();
    for &state_bytes in &STATE_BYTES {
        let (mut before, mut after, mut puts, mut deletes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs.max(1) {
            let aggregate = format!("cost-{state_bytes}-{run}");
            let snapshot = sized_snapshot(&aggregate, 10, state_bytes)?;
            wire.reset();
            snapshots.put_if_absent(&snapshot).await?;
            puts.push(wire.take().units);
            wire.reset();
            let head = snapshots.head(&aggregate).await?;
            after.push(wire.take().units.read);
            head.context("the put wrote a head")?;
            wire.reset();
            snapshots.newest_unfetched(&aggregate).await?;
            before.push(wire.take().units.read);
            wire.reset();
            snapshots
                .delete_many(&[SnapshotKey {
                    aggregate_id: aggregate.clone(),
                    version: 10,
                }])
                .await?;
            deletes.push(wire.take().units);
        }
        let median_units = |units: &[Units]| Units {
            read: Figure::of(units.iter().map(|u| u.read).collect()).median,
            write: Figure::of(units.iter().map(|u| u.write).collect()).median,
        };
        let decide_before = Figure::of(before);
        sizes.push(SizeRow {
            state_bytes,
            base_read: decide_before.median,
            decide_before,
            decide_after: Figure::of(after),
            put: median_units(&puts),
            delete: median_units(&deletes),
        });
    }
    for table in [&events_table, &snapshots_table] {
        let _ = plain.delete_table().table_name(table.as_str()).send().await;
    }
    Ok(CostRows {
        append_per_event,
        boundary_read,
        sizes,
    })
}
