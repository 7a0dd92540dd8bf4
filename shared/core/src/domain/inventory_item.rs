//! `INVENTORY_ITEM`: stock of one SKU, with per-order reservations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{domain_events, Aggregate, AggregateRoot, DomainError};

/// Whether an item still takes stock commands (stored as `ACTIVE` / `DISCONTINUED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemStatus {
    #[default]
    /// Created and not discontinued: every command applies.
    Active,
    /// After `ItemDiscontinued`: final; every stock command is refused
    /// ([`DomainError::Discontinued`]).
    Discontinued,
}

/// State of an inventory item; this exact shape is the snapshot JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    /// The aggregate id.
    pub id: String,
    /// Stock keeping unit.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Units in stock.
    pub on_hand: i64,
    /// Units reserved for orders.
    pub reserved: i64,
    /// Units that can still be reserved (on hand minus reserved).
    pub available: i64,
    /// Stock level at which to reorder.
    pub reorder_point: i64,
    /// Whether it still takes stock commands.
    pub status: ItemStatus,
    /// Reserved units by order id.
    pub reservations: BTreeMap<String, i64>,
}

/// Payload of `ItemCreated`, the first event of every item: it starts active with no stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCreated {
    /// Stock keeping unit.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Stock level at which to reorder.
    pub reorder_point: i64,
}

/// Payload of `StockReceived`: units added to the stock on hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReceived {
    /// How many (above zero).
    pub quantity: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Optional reference (e.g. a delivery note).
    pub reference: Option<String>,
}

/// Payload of `StockReserved`, `ReservationReleased` and `StockShipped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderQuantity {
    /// The order the stock is for.
    pub order_id: String,
    /// How many (above zero).
    pub quantity: i64,
}

/// Payload of `StockAdjusted`: a correction of the units on hand (a count, breakage), never
/// below what is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockAdjusted {
    /// Change to the units in stock (not zero).
    pub delta: i64,
    /// Why the stock was corrected (not blank).
    pub reason: String,
}

/// Payload of `ItemDiscontinued`: the item takes no more stock commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDiscontinued {
    /// Why it was discontinued (not blank).
    pub reason: String,
}

domain_events! {
    /// The events of an inventory item, named as stored (`eventType`; see docs/event-contract.md#inventory_item).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum InventoryItemEvent {
        ItemCreated(ItemCreated),
        StockReceived(StockReceived),
        StockReserved(OrderQuantity),
        ReservationReleased(OrderQuantity),
        StockShipped(OrderQuantity),
        StockAdjusted(StockAdjusted),
        ItemDiscontinued(ItemDiscontinued),
    }
}

impl InventoryItem {
    fn take_reservation(&mut self, order_id: &str, quantity: i64) {
        if let Some(held) = self.reservations.get_mut(order_id) {
            *held = held.saturating_sub(quantity);
            if *held <= 0 {
                self.reservations.remove(order_id);
            }
        }
    }

    fn reserved_for(&self, order_id: &str) -> i64 {
        self.reservations.get(order_id).copied().unwrap_or(0)
    }
}

impl Aggregate for InventoryItem {
    const TYPE: &'static str = "INVENTORY_ITEM";
    const SCHEMA_VERSION: u32 = 1;
    type Event = InventoryItemEvent;

    fn initial(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            sku: String::new(),
            name: String::new(),
            on_hand: 0,
            reserved: 0,
            available: 0,
            reorder_point: 0,
            status: ItemStatus::Active,
            reservations: BTreeMap::new(),
        }
    }

    fn aggregate_id(&self) -> &str {
        &self.id
    }

    fn apply(&mut self, event: &InventoryItemEvent) {
        use InventoryItemEvent as E;
        match event {
            E::ItemCreated(e) => {
                self.sku.clone_from(&e.sku);
                self.name.clone_from(&e.name);
                self.reorder_point = e.reorder_point;
                self.status = ItemStatus::Active;
                self.on_hand = 0;
                self.reserved = 0;
                self.reservations.clear();
            }
            E::StockReceived(e) => self.on_hand = self.on_hand.saturating_add(e.quantity),
            E::StockReserved(e) => {
                self.reserved = self.reserved.saturating_add(e.quantity);
                // An order usually holds a reservation already: its id is copied only when new
                // (the fold of a long history spends its time in allocations otherwise).
                match self.reservations.get_mut(&e.order_id) {
                    Some(held) => *held = held.saturating_add(e.quantity),
                    None => {
                        self.reservations.insert(e.order_id.clone(), e.quantity);
                    }
                }
            }
            E::ReservationReleased(e) => {
                self.reserved = self.reserved.saturating_sub(e.quantity);
                self.take_reservation(&e.order_id, e.quantity);
            }
            E::StockShipped(e) => {
                self.on_hand = self.on_hand.saturating_sub(e.quantity);
                self.reserved = self.reserved.saturating_sub(e.quantity);
                self.take_reservation(&e.order_id, e.quantity);
            }
            E::StockAdjusted(e) => self.on_hand = self.on_hand.saturating_add(e.delta),
            E::ItemDiscontinued(_) => self.status = ItemStatus::Discontinued,
        }
        self.available = self.on_hand.saturating_sub(self.reserved);
    }
}

/// Commands: each validates against the current state, then records one event.
impl AggregateRoot<InventoryItem> {
    fn require_active(&self) -> Result<(), DomainError> {
        self.require_exists()?;
        if self.state().status == ItemStatus::Discontinued {
            return Err(DomainError::Discontinued {
                aggregate_id: self.id().to_owned(),
            });
        }
        Ok(())
    }

    /// Creates the item (`ItemCreated`).
    pub fn create(&mut self, sku: &str, name: &str, reorder_point: i64) -> Result<(), DomainError> {
        self.require_new()?;
        self.not_blank("sku", sku)?;
        self.not_blank("name", name)?;
        if reorder_point < 0 {
            return Err(self.invalid("reorderPoint", ">= 0", reorder_point));
        }
        self.record(InventoryItemEvent::ItemCreated(ItemCreated {
            sku: sku.to_owned(),
            name: name.to_owned(),
            reorder_point,
        }));
        Ok(())
    }

    /// Receives `quantity` (> 0) units into stock (`StockReceived`), with an optional
    /// reference such as a delivery note. Refused for an item that does not exist or is
    /// discontinued.
    pub fn receive(&mut self, quantity: i64, reference: Option<&str>) -> Result<(), DomainError> {
        self.require_active()?;
        self.positive("quantity", quantity)?;
        self.record(InventoryItemEvent::StockReceived(StockReceived {
            quantity,
            reference: reference.map(str::to_owned),
        }));
        Ok(())
    }

    /// Reserves `quantity` (> 0) units for order `order_id` (`StockReserved`); refused when
    /// more than the available units are asked for ([`DomainError::Exceeds`]).
    pub fn reserve(&mut self, order_id: &str, quantity: i64) -> Result<(), DomainError> {
        self.require_active()?;
        self.not_blank("orderId", order_id)?;
        self.positive("quantity", quantity)?;
        let available = self.state().available;
        if quantity > available {
            return Err(self.exceeds("reserve", quantity, available, "available"));
        }
        self.record(InventoryItemEvent::StockReserved(order(order_id, quantity)));
        Ok(())
    }

    /// Gives back `quantity` (> 0) units of order `order_id`'s reservation
    /// (`ReservationReleased`); at most what that order holds.
    pub fn release(&mut self, order_id: &str, quantity: i64) -> Result<(), DomainError> {
        self.require_active()?;
        self.positive("quantity", quantity)?;
        let held = self.state().reserved_for(order_id);
        if quantity > held {
            return Err(self.exceeds("release", quantity, held, "reserved for this order"));
        }
        self.record(InventoryItemEvent::ReservationReleased(order(
            order_id, quantity,
        )));
        Ok(())
    }

    /// Ships `quantity` (> 0) reserved units of order `order_id` (`StockShipped`): they leave
    /// the stock and the reservation; at most what that order holds.
    pub fn ship(&mut self, order_id: &str, quantity: i64) -> Result<(), DomainError> {
        self.require_active()?;
        self.positive("quantity", quantity)?;
        let held = self.state().reserved_for(order_id);
        if quantity > held {
            return Err(self.exceeds("ship", quantity, held, "reserved for this order"));
        }
        self.record(InventoryItemEvent::StockShipped(order(order_id, quantity)));
        Ok(())
    }

    /// Corrects the stock on hand by `delta` (not 0) for `reason` (`StockAdjusted`); a
    /// removal may not take the stock below what is reserved.
    pub fn adjust(&mut self, delta: i64, reason: &str) -> Result<(), DomainError> {
        self.require_active()?;
        if delta == 0 {
            return Err(self.invalid("delta", "!= 0", delta));
        }
        self.not_blank("reason", reason)?;
        let state = self.state();
        let adjusted = state.on_hand.checked_add(delta);
        let Some(on_hand) = adjusted else {
            return Err(self.invalid("delta", "within the range of onHand", delta));
        };
        if on_hand < state.reserved {
            let removed = delta.saturating_neg();
            return Err(self.exceeds("remove", removed, state.available, "unreserved on hand"));
        }
        self.record(InventoryItemEvent::StockAdjusted(StockAdjusted {
            delta,
            reason: reason.to_owned(),
        }));
        Ok(())
    }

    /// Discontinues the item for `reason` (`ItemDiscontinued`): final, later stock commands
    /// are refused.
    pub fn discontinue(&mut self, reason: &str) -> Result<(), DomainError> {
        self.require_active()?;
        self.not_blank("reason", reason)?;
        self.record(InventoryItemEvent::ItemDiscontinued(ItemDiscontinued {
            reason: reason.to_owned(),
        }));
        Ok(())
    }
}

fn order(order_id: &str, quantity: i64) -> OrderQuantity {
    OrderQuantity {
        order_id: order_id.to_owned(),
        quantity,
    }
}
