//! The pruner on DynamoDB Local: items scanned per second (a dry run reads everything, deletes
//! nothing) and deleted per second (a real run keeping 3 of 10 per aggregate), each run on a
//! freshly seeded table, with the requests and the read and write units of each run counted on
//! the wire (`make bench BENCH_ONLY=pruner`; `BENCH_PRUNE_SNAPSHOTS` sets its size).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::Serialize;
use snapshot_core::codec::{SnapshotCodec, StateBody};
use snapshot_core::mac::SnapshotMac;
use snapshot_core::pruning::{prune, PruneRequest, PruneSummary};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::Registry;
use snapshot_dynamo::{schema, DynamoSnapshotStore};

use crate::seed::write_all;
use crate::stats::Figure;
use crate::wire::{Cost, Wire};

pub const PER_AGGREGATE: u64 = 10;
pub const KEEP: usize = 3;

/// The snapshot item as the table stores it (docs/data-model.md#snapshot-table), for
/// BatchWriteItem seeding: the store itself writes one conditional PutItem per snapshot.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeedItem<'a> {
    aggregate_id: &'a str,
    version: u64,
    aggregate_type: &'a str,
    state: &'a str,
    encoding: &'a str,
    schema_version: u32,
    checksum: &'a str,
    last_event_sequence: u64,
    timestamp: i64,
    size_bytes: u64,
    stored_bytes: u64,
    metadata: &'a SnapshotMetadata,
    last_event_id: Option<&'a str>,
    mac: Option<&'a SnapshotMac>,
}

/// A small snapshot item of `bench-{aggregate}` at `version` (also the retention bench's seed).
pub(crate) fn item(aggregate: u64, version: u64) -> Result<HashMap<String, AttributeValue>> {
    let id = format!("bench-{aggregate:06}");
    let event_id = uuid::Uuid::new_v4().to_string();
    let state = serde_json::json!({"id": id, "onHand": version, "reserved": 0});
    let record = build_snapshot(
        &SnapshotCodec::default(),
        SnapshotSubject {
            aggregate_id: &id,
            aggregate_type: "INVENTORY_ITEM",
            schema_version: 1,
            version,
            last_event_id: Some(&event_id),
        },
        state.to_string().into_bytes(),
        SnapshotMetadata {
            created_by: "bench".to_owned(),
            reason: "threshold:count".to_owned(),
            request_id: None,
        },
        1_700_000_000_000,
        None,
    )?;
    let h = &record.header;
    let StateBody::Text(state) = &record.state else {
        bail!("bench states are small JSON text");
    };
    Ok(serde_dynamo::to_item(SeedItem {
        aggregate_id: &h.aggregate_id,
        version: h.version,
        aggregate_type: &h.aggregate_type,
        state,
        encoding: &h.encoding,
        schema_version: h.schema_version,
        checksum: &h.checksum,
        last_event_sequence: h.last_event_sequence,
        timestamp: h.timestamp,
        size_bytes: h.size_bytes,
        stored_bytes: h.stored_bytes,
        metadata: &h.metadata,
        last_event_id: h.last_event_id.as_deref(),
        mac: h.mac.as_ref(),
    })?)
}

/// One kind of pruning run (dry or real), over every bench run.
#[derive(Debug, Clone)]
pub struct PruneRun {
    pub dry_run: bool,
    pub scanned: u64,
    /// Snapshots deleted (a dry run: that would have been).
    pub deleted: u64,
    /// Requests per run by operation (mean over the runs).
    pub by_operation: BTreeMap<String, u64>,
    /// Items per second: scanned for the dry run, deleted for the real one.
    pub per_second: Figure,
    /// Read units per run as DynamoDB bills them (the index scan by its entries).
    pub billed_read_units: Figure,
    /// Capacity units per run, as DynamoDB Local reports them.
    pub read_units: Figure,
    pub write_units: Figure,
}

impl PruneRun {
    /// Units per snapshot deleted (median run); `None` for a dry run, which deletes nothing.
    pub fn per_deleted(&self, units: &Figure) -> Option<f64> {
        (self.deleted > 0 && !self.dry_run).then(|| units.median / self.deleted as f64)
    }
}

#[derive(Debug, Clone)]
pub struct PruneRow {
    pub snapshots: u64,
    pub segments: u32,
    pub dry: PruneRun,
    pub real: PruneRun,
}

fn per_second(count: u64, millis: u64) -> f64 {
    count as f64 / Duration::from_millis(millis.max(1)).as_secs_f64()
}

/// What one kind of run measured in each bench run.
#[derive(Default)]
struct Samples {
    summaries: Vec<PruneSummary>,
    costs: Vec<Cost>,
}

impl Samples {
    /// Runs `prune` with its requests counted on `wire`.
    async fn measure(
        &mut self,
        wire: &Wire,
        store: &DynamoSnapshotStore,
        registry: &Registry,
        request: &PruneRequest,
    ) -> Result<&PruneSummary> {
        wire.reset();
        let summary = prune(store, registry, request).await?;
        self.costs.push(wire.take());
        self.summaries.push(summary);
        self.summaries.last().context("a summary")
    }

    fn summarise(self, per_second_of: fn(&PruneSummary) -> u64) -> PruneRun {
        let runs = self.costs.len().max(1) as u64;
        let mut by_operation: BTreeMap<String, u64> = BTreeMap::new();
        for cost in &self.costs {
            for (op, n) in &cost.by_operation {
                *by_operation.entry(op.clone()).or_default() += n;
            }
        }
        for n in by_operation.values_mut() {
            *n /= runs;
        }
        let last = self.summaries.last();
        PruneRun {
            dry_run: last.is_some_and(|s| s.dry_run),
            scanned: last.map_or(0, |s| s.scanned),
            deleted: last.map_or(0, |s| s.deleted),
            by_operation,
            per_second: Figure::of(
                self.summaries
                    .iter()
                    .map(|s| per_second(per_second_of(s), s.duration_ms))
                    .collect(),
            ),
            billed_read_units: Figure::of(self.costs.iter().map(|c| c.billed_read).collect()),
            read_units: Figure::of(self.costs.iter().map(|c| c.units.read).collect()),
            write_units: Figure::of(self.costs.iter().map(|c| c.units.write).collect()),
        }
    }
}

/// `plain` creates and seeds each run's table; the pruner's own requests go through `counted`
/// and are counted on `wire`.
pub async fn run(
    plain: &Client,
    counted: &Client,
    wire: &Wire,
    suffix: &str,
    snapshots: u64,
    runs: usize,
) -> Result<PruneRow> {
    let registry = Registry::builtin();
    let (mut dry, mut real) = (Samples::default(), Samples::default());
    let mut segments = 0;
    // Run 0 is untimed: it warms DynamoDB Local's JIT for the scan and the batched deletes.
    for run in 0..=runs {
        let (dry, real) = if run == 0 {
            (&mut Samples::default(), &mut Samples::default())
        } else {
            (&mut dry, &mut real)
        };
        let table = format!("bench_prune_{suffix}_{run}");
        schema::create_snapshots_table(plain, &table).await?;
        let mut items = Vec::new();
        for aggregate in 0..snapshots / PER_AGGREGATE {
            for version in 1..=PER_AGGREGATE {
                items.push(item(aggregate, version)?);
            }
        }
        write_all(plain, &table, items).await?;
        let store = DynamoSnapshotStore::new(counted.clone(), &table);
        let mut request = PruneRequest::new(KEEP);
        segments = request.segments;
        request.dry_run = true;
        dry.measure(wire, &store, &registry, &request).await?;
        request.dry_run = false;
        let summary = real.measure(wire, &store, &registry, &request).await?;
        let expected = snapshots / PER_AGGREGATE * (PER_AGGREGATE - KEEP as u64);
        if !summary.complete || summary.deleted != expected {
            bail!("unexpected prune summary: {summary:?}");
        }
        let _ = plain.delete_table().table_name(&table).send().await;
    }
    let row = PruneRow {
        snapshots,
        segments,
        dry: dry.summarise(|s| s.scanned),
        real: real.summarise(|s| s.deleted),
    };
    for (label, run) in [("dry run", &row.dry), ("real run", &row.real)] {
        eprintln!(
            "bench: pruner {label}: {} scanned, {} deleted, {:?}, {} items/s, {} read units \
             billed ({} as DynamoDB Local reports the index scan), {} write units per run",
            run.scanned,
            run.deleted,
            run.by_operation,
            run.per_second.show(0),
            run.billed_read_units,
            run.read_units,
            run.write_units
        );
    }
    Ok(row)
}
