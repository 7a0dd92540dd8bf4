//! Deterministic histories of the built-in aggregates, for benchmarks and throughput figures
//! (`make bench` in tools/bench, `cargo bench -p snapshot-core`): one definition, so every
//! figure folds the same events.

use crate::domain::inventory_item::{
    InventoryItemEvent, ItemCreated, OrderQuantity, StockReceived,
};
use crate::domain::warehouse::{LocationStock, WarehouseCreated, WarehouseEvent};
use crate::domain::{Aggregate, Warehouse};

/// `n` INVENTORY_ITEM events: the item created, then receive / reserve / ship cycles over
/// eight orders (every event valid against the state before it).
pub fn item_events(n: usize) -> Vec<InventoryItemEvent> {
    let mut events = vec![InventoryItemEvent::ItemCreated(ItemCreated {
        sku: "SKU-1".into(),
        name: "Widget".into(),
        reorder_point: 10,
    })];
    let mut i = 0;
    while events.len() < n {
        let order_id = format!("order-{}", i % 8);
        events.push(InventoryItemEvent::StockReceived(StockReceived {
            quantity: 5,
            reference: None,
        }));
        events.push(InventoryItemEvent::StockReserved(OrderQuantity {
            order_id: order_id.clone(),
            quantity: 3,
        }));
        events.push(InventoryItemEvent::StockShipped(OrderQuantity {
            order_id,
            quantity: 2,
        }));
        i += 1;
    }
    events.truncate(n);
    events
}

/// `n` WAREHOUSE events: the warehouse created, then stock placed and picked in turn over 64
/// location names of 16 SKUs each (every placement on an even-numbered one).
pub fn warehouse_events(n: usize) -> Vec<WarehouseEvent> {
    let mut events = vec![WarehouseEvent::WarehouseCreated(WarehouseCreated {
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
            WarehouseEvent::StockPlaced(stock)
        } else {
            WarehouseEvent::StockPicked(LocationStock {
                quantity: 1,
                ..stock
            })
        });
        i += 1;
    }
    events.truncate(n);
    events
}

/// A WAREHOUSE state (aggregate `wh-1`) whose JSON is at least `target_bytes` long: aisles
/// of bays holding four SKUs each, the shape that makes a warehouse state megabytes large.
pub fn warehouse_state_json(target_bytes: usize) -> Vec<u8> {
    let mut state = Warehouse::initial("wh-1");
    state.name = "Distribution centre".into();
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
        if i % 25 == 0 {
            // A state of strings and integers always serialises.
            let json = serde_json::to_vec(&state).unwrap_or_default();
            if json.len() >= target_bytes {
                return json;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{fold, InventoryItem};

    #[test]
    fn histories_have_the_length_asked_for_and_fold_to_their_shape() {
        let items = item_events(1_000);
        assert_eq!(items.len(), 1_000);
        let item = fold(InventoryItem::initial("item-1"), &items);
        assert_eq!(item.sku, "SKU-1");
        assert!(item.on_hand > 0 && item.reserved >= 0);

        let moves = warehouse_events(1_000);
        assert_eq!(moves.len(), 1_000);
        let warehouse = fold(Warehouse::initial("wh-1"), &moves);
        // Placements fall on the even-numbered locations (picks on the odd ones find nothing).
        assert_eq!(warehouse.locations.len(), 32);
        assert!(warehouse.used > 0);
    }

    #[test]
    fn a_warehouse_state_reaches_the_size_asked_for_and_reads_back() {
        let json = warehouse_state_json(64 * 1024);
        assert!(json.len() >= 64 * 1024);
        let state: Warehouse = serde_json::from_slice(&json).expect("the state reads back");
        assert_eq!(state.id, "wh-1");
        assert!(!state.locations.is_empty());
    }
}
