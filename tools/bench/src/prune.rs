//! The pruner on the emulator: items scanned per second (a dry run reads everything, deletes
//! nothing) and deleted per second (a real run keeping 3 of 10 per aggregate), each run on a
//! freshly seeded table (`make bench BENCH_ONLY=pruner`; `BENCH_PRUNE_SNAPSHOTS` sets its size).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::Serialize;
use snapshot_core::codec::{SnapshotCodec, StateBody};
use snapshot_core::mac::SnapshotMac;
use snapshot_core::pruning::{prune, PruneRequest};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::Registry;
use snapshot_dynamo::{schema, DynamoSnapshotStore};

use crate::seed::write_all;
use crate::stats::Figure;

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

fn item(aggregate: u64, version: u64) -> Result<HashMap<String, AttributeValue>> {
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

#[derive(Debug, Clone)]
pub struct PruneRow {
    pub snapshots: u64,
    pub segments: u32,
    pub scanned_per_second: Figure,
    pub deleted_per_second: Figure,
}

fn per_second(count: u64, millis: u64) -> f64 {
    count as f64 / Duration::from_millis(millis.max(1)).as_secs_f64()
}

pub async fn run(client: &Client, suffix: &str, snapshots: u64, runs: usize) -> Result<PruneRow> {
    let registry = Registry::builtin();
    let (mut scanned, mut deleted) = (Vec::new(), Vec::new());
    let mut segments = 0;
    for run in 0..runs {
        let table = format!("bench_prune_{suffix}_{run}");
        schema::create_snapshots_table(client, &table).await?;
        let mut items = Vec::new();
        for aggregate in 0..snapshots / PER_AGGREGATE {
            for version in 1..=PER_AGGREGATE {
                items.push(item(aggregate, version)?);
            }
        }
        write_all(client, &table, items).await?;
        let store = DynamoSnapshotStore::new(client.clone(), &table);
        let mut request = PruneRequest::new(KEEP);
        segments = request.segments;
        request.dry_run = true;
        let dry = prune(&store, &registry, &request).await?;
        scanned.push(per_second(dry.scanned, dry.duration_ms));
        request.dry_run = false;
        let real = prune(&store, &registry, &request).await?;
        let expected = snapshots / PER_AGGREGATE * (PER_AGGREGATE - KEEP as u64);
        if !real.complete || real.deleted != expected {
            bail!("unexpected prune summary: {real:?}");
        }
        deleted.push(per_second(real.deleted, real.duration_ms));
        let _ = client.delete_table().table_name(&table).send().await;
    }
    Ok(PruneRow {
        snapshots,
        segments,
        scanned_per_second: Figure::of(scanned),
        deleted_per_second: Figure::of(deleted),
    })
}
