//! In-memory figures: fold throughput from stored items (typed events, stored envelopes and
//! DynamoDB attribute maps, both aggregate types) and the snapshot codec. No DynamoDB needed.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{ensure, Result};
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{
    fold, Aggregate, DecodedEvent, EventEnvelope, InventoryItem, Warehouse,
};
use snapshot_core::registry::{fold_decoded_onto, fold_envelopes, fold_stored};
use snapshot_core::snapshot::{build_snapshot, open_snapshot, SnapshotMetadata, SnapshotSubject};

use crate::stats::Figure;
use aws_sdk_dynamodb::types::AttributeValue;
use snapshot_core::testing::histories::{item_events, warehouse_events, warehouse_state_json};
use snapshot_dynamo::{Item, ItemEvent};

/// The fold a typed load can do with a Query's items: attribute maps decoded in place into
/// typed events (`snapshot_dynamo::ItemEvent`, what `fold_items` folds) → state.
pub const FROM_ITEMS: &str = "stored items, decoded in place (fold_items)";
/// What `AggregateRepository::load` does with a Query's items (the DynamoDB adapter's
/// `read_decoded`): each decoded in place into a `DecodedEvent` (typed event, sequence and
/// `eventId`, kept for the snapshot walk), then folded.
pub const FROM_ITEMS_DECODED: &str = "stored items → decoded events → fold (a repository load)";
/// What the type-agnostic ports do with the same items: an envelope per item (payload as a
/// JSON value), then the typed fold.
pub const FROM_ITEMS_VIA_ENVELOPES: &str = "stored items → envelopes → fold";
/// The ceiling of any fold from the SDK's items: every attribute of every item visited (key
/// and value read, nested payload maps too), nothing decoded or folded.
pub const ITEMS_VISITED: &str = "stored items, every attribute visited, nothing decoded";
/// Events per fold run (each run folds the same history from each source).
pub const FOLD_EVENTS: usize = 200_000;
/// Items per page: about 1 MiB of these items, as a DynamoDB Query page returns them (the
/// loads' table reads about 290 bytes per event). A load folds each page's items right after
/// the SDK has built them, so each page is built (not timed) just before it is folded.
pub const PAGE_ITEMS: usize = 3_600;

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

/// The items of `envelopes` as the SDK hands a Query page over.
fn page_items(envelopes: &[EventEnvelope]) -> Result<Vec<Item>> {
    Ok(envelopes
        .iter()
        .map(serde_dynamo::to_item)
        .collect::<Result<_, _>>()?)
}

/// Reads every attribute of an item (key bytes and the first byte of each scalar, nested
/// maps and lists too) and decodes nothing: the memory walk any fold from these items makes.
fn visit(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => {
            usize::from(s.as_bytes().first().copied().unwrap_or(0))
        }
        AttributeValue::M(m) => m.iter().map(|(k, v)| k.len() + visit(v)).sum(),
        AttributeValue::L(l) => l.iter().map(visit).sum(),
        _ => 1,
    }
}

/// Seconds spent by `fold_page` over the history in pages, each page's items built just
/// before it is folded; `fold_page` gets the page, the version before it and the state.
fn paged<A: Aggregate>(
    envelopes: &[EventEnvelope],
    mut state: A,
    mut fold_page: impl FnMut(&[Item], u64, A) -> Result<A>,
) -> Result<(A, f64)> {
    let mut seconds = 0.0;
    for (n, page) in envelopes.chunks(PAGE_ITEMS).enumerate() {
        let items = page_items(page)?;
        let t = Instant::now();
        state = fold_page(black_box(&items), (n * PAGE_ITEMS) as u64, state)?;
        seconds += t.elapsed().as_secs_f64();
    }
    Ok((state, seconds))
}

fn fold_rows<A: Aggregate>(events: &[A::Event], runs: usize) -> Result<Vec<FoldRow>> {
    let id = "bench-1";
    let envelopes: Vec<EventEnvelope> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventEnvelope::wrap::<A>(id, i as u64 + 1, e, 0, None))
        .collect();
    let expected = fold(A::initial(id), events);
    let (mut typed, mut decoded, mut in_place, mut load_path, mut via_envelopes, mut visited) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for _ in 0..runs {
        let t = Instant::now();
        let state = fold(A::initial(id), black_box(events));
        typed.push(rate(events.len(), t.elapsed().as_secs_f64()));
        ensure!(state == expected);

        let t = Instant::now();
        let state = fold_envelopes::<A>(id, 0, None, black_box(&envelopes))?;
        decoded.push(rate(events.len(), t.elapsed().as_secs_f64()));
        ensure!(state == expected);

        let (state, seconds) = paged(&envelopes, A::initial(id), |items, base, state| {
            let events = items.iter().map(|item| ItemEvent::read(item, id));
            Ok(fold_stored(id, base, state, events)?)
        })?;
        in_place.push(rate(events.len(), seconds));
        ensure!(state == expected);

        let (state, seconds) = paged(&envelopes, A::initial(id), |items, base, state| {
            let read = items
                .iter()
                .map(|item| Ok(DecodedEvent::read::<A>(id, &ItemEvent::read(item, id)?)))
                .collect::<Result<Vec<_>, snapshot_core::EventError>>()?;
            Ok(fold_decoded_onto(id, base, state, &read)?)
        })?;
        load_path.push(rate(events.len(), seconds));
        ensure!(state == expected);

        let (state, seconds) = paged(&envelopes, A::initial(id), |items, base, state| {
            let read = items
                .iter()
                .map(|item| ItemEvent::read(item, id).and_then(|e| e.to_envelope()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(fold_stored(id, base, state, read.iter().map(Ok))?)
        })?;
        via_envelopes.push(rate(events.len(), seconds));
        ensure!(state == expected);

        let mut sum = 0_usize;
        let (_, seconds) = paged(&envelopes, A::initial(id), |items, _, state| {
            for item in items {
                sum += item.iter().map(|(k, v)| k.len() + visit(v)).sum::<usize>();
            }
            Ok(state)
        })?;
        black_box(sum);
        visited.push(rate(events.len(), seconds));
    }
    let row = |from, figures| FoldRow {
        aggregate: A::TYPE,
        from,
        meps: Figure::of(figures),
    };
    Ok(vec![
        row("typed events (reference)", typed),
        row("decoded envelopes (payload as JSON value)", decoded),
        row(FROM_ITEMS, in_place),
        row(FROM_ITEMS_DECODED, load_path),
        row(FROM_ITEMS_VIA_ENVELOPES, via_envelopes),
        row(ITEMS_VISITED, visited),
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
        ("1 MB", 1024 * 1024, 50),
        ("5 MB", 5 * 1024 * 1024, 10),
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
