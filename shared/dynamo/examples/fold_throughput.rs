//! Fold throughput from stored items, both aggregate types, and the 1 MB snapshot decode: a
//! quick figure without the benchmark suite (`make bench` has the full report).
//!
//!     cargo run --release -p snapshot-dynamo --example fold_throughput [EVENTS] [RUNS]
//!
//! Prints million events per second (median, min and max of RUNS) for: the typed fold (the
//! reference), `fold_items` (attribute maps decoded in place, what a load's items cost), and
//! the envelope path the type-agnostic ports take (items to envelopes, then the typed fold).

use std::hint::black_box;
use std::time::Instant;

use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::inventory_item::{
    InventoryItemEvent as IE, ItemCreated, OrderQuantity, StockReceived,
};
use snapshot_core::domain::warehouse::{LocationStock, WarehouseCreated, WarehouseEvent as WE};
use snapshot_core::domain::{fold, Aggregate, EventEnvelope, InventoryItem, Warehouse};
use snapshot_core::registry::fold_envelopes;
use snapshot_dynamo::{fold_items, Item, ItemEvent};

/// Create, then receive / reserve / ship cycles over eight orders.
fn item_events(n: usize) -> Vec<IE> {
    let mut events = vec![IE::ItemCreated(ItemCreated {
        sku: "SKU-1".into(),
        name: "Widget".into(),
        reorder_point: 10,
    })];
    let mut i = 0;
    while events.len() < n {
        let order_id = format!("order-{}", i % 8);
        events.push(IE::StockReceived(StockReceived {
            quantity: 5,
            reference: None,
        }));
        events.push(IE::StockReserved(OrderQuantity {
            order_id: order_id.clone(),
            quantity: 3,
        }));
        events.push(IE::StockShipped(OrderQuantity {
            order_id,
            quantity: 2,
        }));
        i += 1;
    }
    events.truncate(n);
    events
}

/// Stock placed and picked over 64 locations of 16 SKUs each.
fn warehouse_events(n: usize) -> Vec<WE> {
    let mut events = vec![WE::WarehouseCreated(WarehouseCreated {
        name: "Distribution centre".into(),
        capacity: i64::MAX,
    })];
    let mut i = 0_usize;
    while events.len() < n {
        let stock = LocationStock {
            location: format!("AISLE-{:02}", i % 64),
            sku: format!("SKU-{:03}", (i / 64) % 16),
            quantity: 2,
        };
        events.push(if i % 2 == 0 {
            WE::StockPlaced(stock)
        } else {
            WE::StockPicked(LocationStock {
                quantity: 1,
                ..stock
            })
        });
        i += 1;
    }
    events
}

/// A WAREHOUSE state whose JSON is at least `target_bytes` long.
fn warehouse_state_json(target_bytes: usize) -> Vec<u8> {
    let mut state = Warehouse::initial("wh-1");
    state.capacity = i64::MAX;
    let mut i = 0_usize;
    loop {
        let skus = state
            .locations
            .entry(format!("AISLE-{:03}-BAY-{:04}", i / 1000, i % 1000))
            .or_default();
        for s in 0..4 {
            skus.insert(
                format!("SKU-{:07}", i * 4 + s),
                (i * 7 + s) as i64 % 500 + 1,
            );
        }
        i += 1;
        if i % 500 == 0 {
            let json = serde_json::to_vec(&state).expect("a state serialises");
            if json.len() >= target_bytes {
                return json;
            }
        }
    }
}

/// Median, min and max.
fn summary(mut figures: Vec<f64>) -> String {
    figures.sort_by(f64::total_cmp);
    format!(
        "{:8.2} (min {:.2}, max {:.2})",
        figures[figures.len() / 2],
        figures[0],
        figures[figures.len() - 1]
    )
}

fn rate(events: usize, started: Instant) -> f64 {
    events as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn measure<A: Aggregate>(events: &[A::Event], runs: usize) {
    let id = "bench-1";
    let items: Vec<Item> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let envelope = EventEnvelope::wrap::<A>(id, i as u64 + 1, e, 1_700_000_000_000, None);
            serde_dynamo::to_item(&envelope).expect("an envelope is an item")
        })
        .collect();
    let expected = fold(A::initial(id), events);
    let (mut typed, mut in_place, mut envelopes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let state = fold(A::initial(id), black_box(events));
        typed.push(rate(events.len(), started));
        assert_eq!(state, expected);

        let started = Instant::now();
        let state = fold_items::<A>(id, 0, None, black_box(&items)).expect("items fold");
        in_place.push(rate(events.len(), started));
        assert_eq!(state, expected);

        let started = Instant::now();
        let read: Vec<EventEnvelope> = black_box(&items)
            .iter()
            .map(|item| ItemEvent::read(item, id).and_then(|e| e.to_envelope()))
            .collect::<Result<_, _>>()
            .expect("items read");
        let state = fold_envelopes::<A>(id, 0, None, &read).expect("envelopes fold");
        envelopes.push(rate(events.len(), started));
        assert_eq!(state, expected);
    }
    println!(
        "{:<15} typed events (reference)  M events/s {}",
        A::TYPE,
        summary(typed)
    );
    println!(
        "{:<15} fold_items (in place)     M events/s {}",
        A::TYPE,
        summary(in_place)
    );
    println!(
        "{:<15} items -> envelopes -> fold M events/s {}",
        A::TYPE,
        summary(envelopes)
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    println!("{events} events, {runs} runs; median (min, max)");
    measure::<InventoryItem>(&item_events(events), runs);
    measure::<Warehouse>(&warehouse_events(events), runs);

    let json = warehouse_state_json(1024 * 1024);
    let codec = SnapshotCodec::default();
    let encoded = codec.encode(json.clone()).expect("the state encodes");
    let mut decode = Vec::new();
    for _ in 0..runs * 10 {
        let started = Instant::now();
        let bytes = codec
            .decode(
                encoded.encoding,
                black_box(&encoded.body),
                encoded.size_bytes,
                &encoded.checksum,
            )
            .expect("the state decodes");
        decode.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(bytes.len(), json.len());
    }
    println!(
        "decode + checksum of a {} byte WAREHOUSE state ({} stored) ms {}",
        json.len(),
        encoded.stored_bytes,
        summary(decode)
    );
}
