//! The histories both stores are loaded from: INVENTORY_ITEM streams (create, then receive /
//! reserve / ship cycles over eight orders), and WAREHOUSE states of a given size.

use snapshot_core::domain::inventory_item::{
    InventoryItemEvent as E, ItemCreated, OrderQuantity, StockReceived,
};
use snapshot_core::domain::warehouse::WarehouseEvent;
use snapshot_core::domain::{Aggregate, Warehouse};

pub fn item_events(n: usize) -> Vec<E> {
    let mut events = vec![E::ItemCreated(ItemCreated {
        sku: "SKU-1".into(),
        name: "Widget".into(),
        reorder_point: 10,
    })];
    let mut i = 0;
    while events.len() < n {
        let order_id = format!("order-{}", i % 8);
        events.push(E::StockReceived(StockReceived {
            quantity: 5,
            reference: None,
        }));
        events.push(E::StockReserved(OrderQuantity {
            order_id: order_id.clone(),
            quantity: 3,
        }));
        events.push(E::StockShipped(OrderQuantity {
            order_id,
            quantity: 2,
        }));
        i += 1;
    }
    events.truncate(n);
    events
}

/// WAREHOUSE events: stock placed and picked over 64 locations of 16 SKUs each.
pub fn warehouse_events(n: usize) -> Vec<WarehouseEvent> {
    use snapshot_core::domain::warehouse::{LocationStock, WarehouseCreated};
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
    events
}

/// A WAREHOUSE state whose JSON is at least `target_bytes` long.
pub fn warehouse_state_json(target_bytes: usize) -> Vec<u8> {
    let mut state = Warehouse::initial("wh-1");
    state.name = "Distribution centre".into();
    state.capacity = i64::MAX;
    let mut i = 0;
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
            let json = serde_json::to_vec(&state).unwrap_or_default();
            if json.len() >= target_bytes {
                return json;
            }
        }
    }
}
