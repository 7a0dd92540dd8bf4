//! Core hot paths: folding 1,000,000 INVENTORY_ITEM events in memory (typed, and from stored
//! envelopes as a load does), and decoding + verifying a ~1 MB WAREHOUSE snapshot.
//! Run: `cargo bench -p snapshot-core --bench core`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use snapshot_core::codec::{Encoding, SnapshotCodec};
use snapshot_core::domain::{fold, Aggregate, EventEnvelope, InventoryItem, Warehouse};
use snapshot_core::registry::fold_envelopes;
use snapshot_core::testing::histories::{item_events, warehouse_state_json};

const EVENTS: usize = 1_000_000;

fn fold_events(c: &mut Criterion) {
    let events = item_events(EVENTS);
    let envelopes: Vec<EventEnvelope> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventEnvelope::wrap::<InventoryItem>("item-1", i as u64 + 1, e, 0, None))
        .collect();
    let mut group = c.benchmark_group("fold_inventory_item");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("typed_1m_events", |b| {
        b.iter(|| black_box(fold(InventoryItem::initial("item-1"), black_box(&events))));
    });
    group.bench_function("stored_envelopes_1m_events", |b| {
        b.iter(|| {
            black_box(
                fold_envelopes::<InventoryItem>("item-1", 0, None, black_box(&envelopes)).ok(),
            )
        });
    });
    group.finish();
}

fn decode_snapshot(c: &mut Criterion) {
    let json = warehouse_state_json(1024 * 1024);
    let codec = SnapshotCodec::default();
    let encoded = codec
        .encode(json.clone())
        .unwrap_or_else(|e| panic!("encode: {e}"));
    assert_eq!(encoded.encoding, Encoding::JsonZstd);
    println!(
        "warehouse snapshot: {} bytes JSON, {} bytes stored ({:.1}x)",
        json.len(),
        encoded.stored_bytes,
        json.len() as f64 / encoded.stored_bytes as f64
    );
    let mut group = c.benchmark_group("warehouse_snapshot_1mb");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("decompress_and_verify_checksum", |b| {
        b.iter(|| {
            black_box(
                codec
                    .decode(
                        encoded.encoding,
                        &encoded.body,
                        encoded.size_bytes,
                        &encoded.checksum,
                    )
                    .ok(),
            )
        });
    });
    group.bench_function("decompress_verify_and_deserialize", |b| {
        b.iter(|| {
            let bytes = codec
                .decode(
                    encoded.encoding,
                    &encoded.body,
                    encoded.size_bytes,
                    &encoded.checksum,
                )
                .unwrap_or_default();
            black_box(serde_json::from_slice::<Warehouse>(&bytes).ok())
        });
    });
    group.bench_function("encode", |b| {
        b.iter(|| black_box(codec.encode(json.clone()).ok()));
    });
    group.finish();
}

criterion_group!(benches, fold_events, decode_snapshot);
criterion_main!(benches);
