//! In-memory figures: fold throughput from stored items (typed events, stored envelopes and
//! DynamoDB attribute maps, both aggregate types) and the snapshot codec.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{ensure, Result};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{fold, Aggregate, EventEnvelope, InventoryItem, Warehouse};
use snapshot_core::registry::fold_envelopes;
use snapshot_core::snapshot::{build_snapshot, open_snapshot, SnapshotMetadata, SnapshotSubject};

use crate::history::{item_events, warehouse_events, warehouse_state_json};
use crate::seed::Item;
use crate::stats::Figure;

/// The fold a load does with a Query's items: attribute maps → typed events → state.
pub const FROM_ITEMS: &str = "stored items (DynamoDB attribute maps)";
/// Events per fold run (each run folds the same history from each source).
pub const FOLD_EVENTS: usize = 200_000;

#[derive(Debug, Clone)]
pub struct FoldRow {
    pub aggregate: &'static str,
    pub from: &'static str,
    /// Million events per second.
    pub meps: Figure,
}

fn rate(events: usize, seconds: f64) -> f64 {
    events as f64 / seconds / 1e6
}

fn fold_rows<A: Aggregate>(events: &[A::Event], runs: usize) -> Result<Vec<FoldRow>> {
    let id = "bench-1";
    let envelopes: Vec<EventEnvelope> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventEnvelope::wrap::<A>(id, i as u64 + 1, e, 0, None))
        .collect();
    let items: Vec<Item> = envelopes
        .iter()
        .map(serde_dynamo::to_item)
        .collect::<Result<_, _>>()?;
    let expected = fold(A::initial(id), events);
    let (mut typed, mut stored, mut maps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let state = fold(A::initial(id), black_box(events));
        typed.push(rate(events.len(), t.elapsed().as_secs_f64()));
        ensure!(state == expected);

        let t = Instant::now();
        let state = fold_envelopes::<A>(id, 0, None, black_box(&envelopes))?;
        stored.push(rate(events.len(), t.elapsed().as_secs_f64()));
        ensure!(state == expected);

        // What a load does with a Query's items: decode each, then fold.
        let batch = items.clone();
        let t = Instant::now();
        let decoded = batch
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<Vec<EventEnvelope>, _>>()?;
        let state = fold_envelopes::<A>(id, 0, None, &decoded)?;
        maps.push(rate(events.len(), t.elapsed().as_secs_f64()));
        ensure!(state == expected);
    }
    Ok(vec![
        FoldRow {
            aggregate: A::TYPE,
            from: "typed events (reference)",
            meps: Figure::of(typed),
        },
        FoldRow {
            aggregate: A::TYPE,
            from: "decoded envelopes (payload as JSON value)",
            meps: Figure::of(stored),
        },
        FoldRow {
            aggregate: A::TYPE,
            from: FROM_ITEMS,
            meps: Figure::of(maps),
        },
    ])
}

pub fn fold_throughput(runs: usize) -> Result<Vec<FoldRow>> {
    let mut rows = fold_rows::<InventoryItem>(&item_events(FOLD_EVENTS), runs)?;
    rows.extend(fold_rows::<Warehouse>(
        &warehouse_events(FOLD_EVENTS),
        runs,
    )?);
    Ok(rows)
}

#[derive(Debug, Clone)]
pub struct CodecRow {
    pub label: &'static str,
    pub json_bytes: usize,
    pub stored_bytes: u64,
    /// `build_snapshot`: checksum, compression, MAC.
    pub encode_ms: Figure,
    /// `open_snapshot`: MAC verified, decompressed, checksum and size checked (what every
    /// reader does before it uses a snapshot).
    pub decode_ms: Figure,
}

fn metadata() -> SnapshotMetadata {
    SnapshotMetadata {
        created_by: "bench".to_owned(),
        reason: "manual".to_owned(),
        request_id: None,
    }
}

pub fn codec(runs: usize) -> Result<Vec<CodecRow>> {
    // A state too large for one item even compressed goes to the object store (the body is
    // the same bytes; only the encoding says where it lives).
    let codec = SnapshotCodec {
        offload: true,
        ..SnapshotCodec::default()
    };
    let subject = SnapshotSubject {
        aggregate_id: "wh-1",
        aggregate_type: Warehouse::TYPE,
        schema_version: Warehouse::SCHEMA_VERSION,
        version: 1000,
        last_event_id: Some("00000000-0000-4000-8000-000000000000"),
    };
    let mut rows = Vec::new();
    for (label, size, reps) in [
        ("10 KB", 10 * 1024, 200),
        ("1 MB", 1024 * 1024, 5),
        ("5 MB", 5 * 1024 * 1024, 1),
    ] {
        let json = warehouse_state_json(size);
        let record = build_snapshot(&codec, subject, json.clone(), metadata(), 0, None)?;
        let (mut encode, mut decode) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            for _ in 0..reps {
                black_box(build_snapshot(
                    &codec,
                    subject,
                    black_box(json.clone()),
                    metadata(),
                    0,
                    None,
                )?);
            }
            encode.push(t.elapsed().as_secs_f64() * 1000.0 / f64::from(reps));
            let t = Instant::now();
            for _ in 0..reps {
                let bytes = open_snapshot(
                    &codec,
                    black_box(&record),
                    subject.aggregate_id,
                    subject.aggregate_type,
                    subject.schema_version,
                )?;
                ensure!(bytes.len() == json.len(), "decoded state differs in size");
            }
            decode.push(t.elapsed().as_secs_f64() * 1000.0 / f64::from(reps));
        }
        rows.push(CodecRow {
            label,
            json_bytes: json.len(),
            stored_bytes: record.header.stored_bytes,
            encode_ms: Figure::of(encode),
            decode_ms: Figure::of(decode),
        });
    }
    Ok(rows)
}
