//! Retention that costs what it removes (`make bench BENCH_ONLY=retention`), on DynamoDB Local,
//! every request counted on the wire:
//! - a scheduled pruner run with nothing due, at 1,000 and 100,000 snapshots, reading at most
//!   `BENCH_RETENTION_KEYS` (default 250) index keys a run and resuming where the last run
//!   stopped: its read units by the index entries it read (as DynamoDB bills an index read; the
//!   engine itself reports the base items' sizes, also shown);
//! - units per deleted snapshot on the write path (a snapshot written past keep-N deletes the
//!   one that falls out, reading nothing) and on the sweep path (the pruner's scan of the index
//!   and its batched deletes).
//!
//! Seeds with BatchWriteItem (small states, 3 snapshots an aggregate).

use anyhow::{bail, Result};
use aws_sdk_dynamodb::Client;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::pruning::{prune, prune_resuming, put_retaining, PruneRequest};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::Registry;
use snapshot_dynamo::{schema, DynamoScanPositions, DynamoSnapshotStore};

use crate::prune::item;
use crate::seed::write_all;
use crate::wire::{Cost, Wire};

const KEEP: usize = 3;

/// A scheduled run with nothing due at one table size (median of its runs).
#[derive(Debug, Clone)]
pub struct IdleRun {
    pub snapshots: u64,
    pub keys_read: u64,
    pub requests: u64,
    /// Read units as DynamoDB bills the index reads (by their entries).
    pub read_units: f64,
    /// What DynamoDB Local reports for the same reads (by the base items).
    pub engine_read_units: f64,
    /// The saved scan positions.
    pub write_units: f64,
}

/// Units per deleted snapshot on one path.
#[derive(Debug, Clone)]
pub struct PerDeleted {
    pub path: &'static str,
    pub deleted: u64,
    pub read_per_deleted: f64,
    pub write_per_deleted: f64,
    /// The deletes' own write units per deleted snapshot.
    pub delete_write_per_deleted: f64,
}

#[derive(Debug, Clone)]
pub struct RetentionRow {
    pub keys_per_run: usize,
    pub idle: Vec<IdleRun>,
    pub per_deleted: Vec<PerDeleted>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

async fn seeded_table(plain: &Client, table: &str, aggregates: u64, per: u64) -> Result<()> {
    schema::create_snapshots_table(plain, table).await?;
    let mut items = Vec::with_capacity((aggregates * per) as usize);
    for aggregate in 0..aggregates {
        for version in 1..=per {
            items.push(item(aggregate, version)?);
        }
    }
    write_all(plain, table, items).await
}

fn record(aggregate: u64, version: u64) -> Result<snapshot_core::snapshot::SnapshotRecord> {
    let id = format!("bench-{aggregate:06}");
    let state = serde_json::json!({"id": id, "onHand": version, "reserved": 0});
    Ok(build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id: &id,
            aggregate_type: "INVENTORY_ITEM",
            schema_version: 1,
            version,
            last_event_id: None,
        },
        state.to_string().into_bytes(),
        SnapshotMetadata::default(),
        1_700_000_000_000,
        None,
    )?)
}

pub async fn run(
    plain: &Client,
    counted: &Client,
    wire: &Wire,
    suffix: &str,
    keys_per_run: usize,
) -> Result<RetentionRow> {
    let registry = Registry::builtin();
    let mut idle = Vec::new();
    for snapshots in [1_000u64, 100_000] {
        let table = format!("bench_retention_idle_{snapshots}_{suffix}");
        seeded_table(plain, &table, snapshots / 3 + 1, 3).await?;
        let store = DynamoSnapshotStore::new(counted.clone(), &table);
        let positions = DynamoScanPositions::new(counted.clone(), &table);
        let mut request = PruneRequest::new(KEEP);
        request.key_budget = Some(keys_per_run);
        let mut costs: Vec<(u64, Cost)> = Vec::new();
        // Run 0 warms the engine; then three scheduled runs, each resuming the last.
        for run in 0..=3 {
            wire.reset();
            let summary = prune_resuming(&store, &positions, &registry, &request).await?;
            let cost = wire.take();
            if summary.deleted != 0 {
                bail!("nothing is due, yet a run deleted: {summary:?}");
            }
            if run > 0 {
                costs.push((summary.scanned, cost));
            }
        }
        let row = IdleRun {
            snapshots: (snapshots / 3 + 1) * 3,
            keys_read: median(costs.iter().map(|(k, _)| *k as f64).collect()) as u64,
            requests: median(costs.iter().map(|(_, c)| c.requests as f64).collect()) as u64,
            read_units: median(costs.iter().map(|(_, c)| c.index_read).collect()),
            engine_read_units: median(costs.iter().map(|(_, c)| c.units.read).collect()),
            write_units: median(costs.iter().map(|(_, c)| c.units.write).collect()),
        };
        eprintln!("bench: retention: scheduled run, nothing due: {row:?}");
        idle.push(row);
        let _ = plain.delete_table().table_name(&table).send().await;
    }

    let mut per_deleted = Vec::new();
    // The write path: 200 aggregates at keep-N, each written once more.
    let table = format!("bench_retention_write_{suffix}");
    schema::create_snapshots_table(plain, &table).await?;
    let store = DynamoSnapshotStore::new(counted.clone(), &table);
    let aggregates = 200u64;
    for aggregate in 0..aggregates {
        for version in 1..=KEEP as u64 {
            put_retaining(&store, &record(aggregate, version)?, KEEP, "bench").await?;
        }
    }
    wire.reset();
    let mut deleted = 0;
    for aggregate in 0..aggregates {
        let retained =
            put_retaining(&store, &record(aggregate, KEEP as u64 + 1)?, KEEP, "bench").await?;
        deleted += retained.deleted.len() as u64;
    }
    let cost = wire.take();
    if deleted != aggregates {
        bail!("the write path deleted {deleted} of {aggregates}");
    }
    // The same writes with retention off (other aggregates, same sizes): what retention adds.
    for aggregate in aggregates..2 * aggregates {
        for version in 1..=KEEP as u64 {
            put_retaining(&store, &record(aggregate, version)?, 0, "bench").await?;
        }
    }
    wire.reset();
    for aggregate in aggregates..2 * aggregates {
        put_retaining(&store, &record(aggregate, KEEP as u64 + 1)?, 0, "bench").await?;
    }
    let plain_cost = wire.take();
    per_deleted.push(PerDeleted {
        path: "write (put + head + delete)",
        deleted,
        read_per_deleted: cost.units.read / deleted as f64,
        write_per_deleted: cost.units.write / deleted as f64,
        delete_write_per_deleted: (cost.units.write - plain_cost.units.write) / deleted as f64,
    });
    let _ = plain.delete_table().table_name(&table).send().await;

    // The sweep path: 1,000 aggregates with one snapshot too many.
    let table = format!("bench_retention_sweep_{suffix}");
    seeded_table(plain, &table, 1_000, KEEP as u64 + 1).await?;
    let store = DynamoSnapshotStore::new(counted.clone(), &table);
    wire.reset();
    let summary = prune(&store, &registry, &PruneRequest::new(KEEP)).await?;
    let cost = wire.take();
    if summary.deleted != 1_000 {
        bail!("the sweep deleted {summary:?}");
    }
    per_deleted.push(PerDeleted {
        path: "sweep (index scan + batched deletes)",
        deleted: summary.deleted,
        read_per_deleted: cost.index_read / summary.deleted as f64,
        write_per_deleted: cost.units.write / summary.deleted as f64,
        delete_write_per_deleted: cost.units.write / summary.deleted as f64,
    });
    let _ = plain.delete_table().table_name(&table).send().await;
    for row in &per_deleted {
        eprintln!("bench: retention: per deleted snapshot: {row:?}");
    }
    Ok(RetentionRow {
        keys_per_run,
        idle,
        per_deleted,
    })
}
