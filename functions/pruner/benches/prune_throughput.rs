//! Pruner throughput on the local DynamoDB emulator: items scanned per second (a dry run reads
//! everything and deletes nothing) and deletes per second (a real run keeping 3 of 10).
//!
//!   eval "$(scripts/moto.sh start)"
//!   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
//!     cargo bench -p pruner --bench prune_throughput
//!
//! PRUNE_BENCH_SNAPSHOTS (default 20000) sets the table size, in aggregates of 10 snapshots;
//! PRUNE_BENCH_SEGMENTS and PRUNE_BENCH_PAGE_SIZE override the pruner's defaults.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::pruning::{prune, PruneRequest};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotRecord, SnapshotSubject};
use snapshot_core::Registry;
use snapshot_dynamo::{schema, DynamoSnapshotStore};

const PER_AGGREGATE: u64 = 10;
const KEEP: usize = 3;
const SEED_CONCURRENCY: usize = 8;

/// The snapshot item as the table stores it (docs/data-model.md#snapshot-table), for BatchWriteItem seeding.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
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
}

fn snapshot(aggregate: u64, version: u64) -> anyhow::Result<SnapshotRecord> {
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
        SnapshotMetadata {
            created_by: "bench".to_owned(),
            reason: "threshold:count".to_owned(),
            request_id: None,
        },
        1_700_000_000_000,
        None,
    )?)
}

fn write_request(record: &SnapshotRecord) -> anyhow::Result<WriteRequest> {
    let h = &record.header;
    let snapshot_core::codec::StateBody::Text(state) = &record.state else {
        bail!("bench states are small JSON text");
    };
    let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(Item {
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
    })?;
    let put = PutRequest::builder().set_item(Some(item)).build()?;
    Ok(WriteRequest::builder().put_request(put).build())
}

async fn write_batch(
    client: &Client,
    table: &str,
    mut batch: Vec<WriteRequest>,
) -> anyhow::Result<()> {
    for attempt in 0..8u32 {
        if batch.is_empty() {
            return Ok(());
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let output = client
            .batch_write_item()
            .request_items(table, batch)
            .send()
            .await
            .context("BatchWriteItem")?;
        batch = output
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
    }
    bail!("{} puts still unprocessed", batch.len())
}

async fn seed(client: &Client, table: &str, snapshots: u64) -> anyhow::Result<()> {
    let aggregates = snapshots / PER_AGGREGATE;
    let mut requests = Vec::new();
    for aggregate in 0..aggregates {
        for version in 1..=PER_AGGREGATE {
            requests.push(write_request(&snapshot(aggregate, version)?)?);
        }
    }
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    stream::iter(batches)
        .map(|batch| write_batch(client, table, batch))
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn env_number(variable: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(variable) {
        Ok(value) => value
            .trim()
            .parse()
            .with_context(|| format!("{variable}={value:?} must be a whole number")),
        Err(_) => Ok(default),
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var("AWS_ENDPOINT_URL").map_or(true, |v| v.trim().is_empty()) {
        println!("prune_throughput needs the local DynamoDB emulator. Run it with:");
        println!("  eval \"$(scripts/moto.sh start)\"");
        println!("  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \\");
        println!("    cargo bench -p pruner --bench prune_throughput");
        return Ok(());
    }
    let snapshots = env_number("PRUNE_BENCH_SNAPSHOTS", 20_000)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let client = Client::new(&sdk);
    let table = format!(
        "bench_prune_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    schema::create_snapshots_table(&client, &table).await?;
    let result = run(&client, &table, snapshots).await;
    client.delete_table().table_name(&table).send().await?;
    result
}

async fn run(client: &Client, table: &str, snapshots: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    seed(client, table, snapshots).await?;
    let seeded = started.elapsed();
    println!(
        "seeded {snapshots} snapshots ({} aggregates x {PER_AGGREGATE}) in {:.1} s ({:.0} puts/s, BatchWriteItem x{SEED_CONCURRENCY})",
        snapshots / PER_AGGREGATE,
        seeded.as_secs_f64(),
        per_second(snapshots, seeded)
    );

    let store = DynamoSnapshotStore::new(client.clone(), table);
    let registry = Registry::builtin();
    let mut request = PruneRequest::new(KEEP);
    request.segments = u32::try_from(env_number("PRUNE_BENCH_SEGMENTS", request.segments.into())?)?;
    request.page_size = usize::try_from(env_number(
        "PRUNE_BENCH_PAGE_SIZE",
        request.page_size as u64,
    )?)?;
    request.buffer_keys = request.page_size;
    request.dry_run = true;
    let dry = prune(&store, &registry, &request).await?;
    let scan_time = Duration::from_millis(dry.duration_ms);
    println!(
        "dry run (scan only, {} segments, pages of {}): {} items in {:.2} s = {:.0} items scanned/s",
        request.segments,
        request.page_size,
        dry.scanned,
        scan_time.as_secs_f64(),
        per_second(dry.scanned, scan_time)
    );

    request.dry_run = false;
    let real = prune(&store, &registry, &request).await?;
    let total = Duration::from_millis(real.duration_ms);
    println!(
        "prune keep {KEEP}: scanned {} and deleted {} in {:.2} s = {:.0} deletes/s end to end",
        real.scanned,
        real.deleted,
        total.as_secs_f64(),
        per_second(real.deleted, total)
    );

    let expected = snapshots / PER_AGGREGATE * (PER_AGGREGATE - KEEP as u64);
    if !real.complete || real.deleted != expected {
        bail!("unexpected summary: {real:?}");
    }

    // Deletes alone: the survivors through delete_many, one stream of 25-key batches per
    // segment, as the pruner sends them.
    let mut survivors = Vec::new();
    for segment in 0..request.segments {
        let mut cursor = None;
        loop {
            let page = store
                .scan_summaries(segment, request.segments, cursor.take(), request.page_size)
                .await?;
            survivors.extend(page.items.into_iter().map(|s| s.key));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let started = Instant::now();
    let streams = usize::try_from(request.segments)?;
    stream::iter(survivors.chunks(25))
        .map(|batch| store.delete_many(batch))
        .buffer_unordered(streams)
        .try_collect::<Vec<usize>>()
        .await?;
    let deleting = started.elapsed();
    println!(
        "delete_many: {} deletes in {:.2} s = {:.0} deletes/s ({streams} concurrent batches of 25)",
        survivors.len(),
        deleting.as_secs_f64(),
        per_second(survivors.len() as u64, deleting)
    );
    Ok(())
}
