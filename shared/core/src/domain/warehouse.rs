//! `WAREHOUSE`: named locations holding quantities per SKU, within a capacity.
//! Its state can grow to megabytes, which exercises compression and large-state handling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{domain_events, Aggregate, AggregateRoot, DomainError};

/// State of a warehouse; this exact shape is the snapshot JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warehouse {
    /// The aggregate id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Most units the warehouse holds.
    pub capacity: i64,
    /// Units currently stored.
    pub used: i64,
    /// Stock by location and SKU.
    pub locations: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Payload of `WarehouseCreated`, the first event of every warehouse: no locations, nothing
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarehouseCreated {
    /// Display name.
    pub name: String,
    /// Most units the warehouse holds.
    pub capacity: i64,
}

/// Payload of `LocationAdded` and `LocationRemoved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationRef {
    /// The warehouse location.
    pub location: String,
}

/// Payload of `StockPlaced` and `StockPicked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationStock {
    /// The warehouse location.
    pub location: String,
    /// Stock keeping unit.
    pub sku: String,
    /// How many (above zero).
    pub quantity: i64,
}

/// Payload of `CapacityChanged`: the new capacity, never below the units stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityChanged {
    /// Most units the warehouse holds from now on.
    pub capacity: i64,
}

domain_events! {
    /// The events of a warehouse, named as stored (`eventType`; see docs/event-contract.md#warehouse).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum WarehouseEvent {
        WarehouseCreated(WarehouseCreated),
        LocationAdded(LocationRef),
        LocationRemoved(LocationRef),
        StockPlaced(LocationStock),
        StockPicked(LocationStock),
        CapacityChanged(CapacityChanged),
    }
}

impl Warehouse {
    fn quantity_at(&self, location: &str, sku: &str) -> i64 {
        self.locations
            .get(location)
            .and_then(|skus| skus.get(sku))
            .copied()
            .unwrap_or(0)
    }
}

impl Aggregate for Warehouse {
    const TYPE: &'static str = "WAREHOUSE";
    const SCHEMA_VERSION: u32 = 1;
    type Event = WarehouseEvent;

    fn initial(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: String::new(),
            capacity: 0,
            used: 0,
            locations: BTreeMap::new(),
        }
    }

    fn aggregate_id(&self) -> &str {
        &self.id
    }

    fn apply(&mut self, event: &WarehouseEvent) {
        use WarehouseEvent as E;
        match event {
            E::WarehouseCreated(e) => {
                self.name.clone_from(&e.name);
                self.capacity = e.capacity;
                self.used = 0;
                self.locations.clear();
            }
            E::LocationAdded(e) => {
                self.locations.entry(e.location.clone()).or_default();
            }
            E::LocationRemoved(e) => {
                self.locations.remove(&e.location);
            }
            E::StockPlaced(e) => {
                // Locations and SKUs are mostly known already: their names are copied only
                // when new (the fold of a long history spends its time in allocations otherwise).
                if !self.locations.contains_key(&e.location) {
                    self.locations.insert(e.location.clone(), BTreeMap::new());
                }
                if let Some(skus) = self.locations.get_mut(&e.location) {
                    match skus.get_mut(&e.sku) {
                        Some(held) => *held = held.saturating_add(e.quantity),
                        None => {
                            skus.insert(e.sku.clone(), e.quantity);
                        }
                    }
                }
                self.used = self.used.saturating_add(e.quantity);
            }
            E::StockPicked(e) => {
                if let Some(skus) = self.locations.get_mut(&e.location) {
                    if let Some(held) = skus.get_mut(&e.sku) {
                        *held = held.saturating_sub(e.quantity);
                        if *held <= 0 {
                            skus.remove(&e.sku);
                        }
                    }
                }
                self.used = self.used.saturating_sub(e.quantity);
            }
            E::CapacityChanged(e) => self.capacity = e.capacity,
        }
    }
}

/// Commands: each validates against the current state, then records one event.
impl AggregateRoot<Warehouse> {
    fn location_error(&self, location: &str, problem: &'static str) -> DomainError {
        DomainError::Location {
            aggregate_id: self.id().to_owned(),
            location: location.to_owned(),
            problem,
        }
    }

    fn require_location(&self, location: &str) -> Result<(), DomainError> {
        if self.state().locations.contains_key(location) {
            Ok(())
        } else {
            Err(self.location_error(location, "does not exist"))
        }
    }

    /// Creates the warehouse (`WarehouseCreated`).
    pub fn create(&mut self, name: &str, capacity: i64) -> Result<(), DomainError> {
        self.require_new()?;
        self.not_blank("name", name)?;
        self.positive("capacity", capacity)?;
        self.record(WarehouseEvent::WarehouseCreated(WarehouseCreated {
            name: name.to_owned(),
            capacity,
        }));
        Ok(())
    }

    /// Adds an empty location named `location` (`LocationAdded`); refused when it exists.
    pub fn add_location(&mut self, location: &str) -> Result<(), DomainError> {
        self.require_exists()?;
        self.not_blank("location", location)?;
        if self.state().locations.contains_key(location) {
            return Err(self.location_error(location, "already exists"));
        }
        self.record(WarehouseEvent::LocationAdded(LocationRef {
            location: location.to_owned(),
        }));
        Ok(())
    }

    /// Removes `location` (`LocationRemoved`); refused unless it exists and is empty.
    pub fn remove_location(&mut self, location: &str) -> Result<(), DomainError> {
        self.require_exists()?;
        self.require_location(location)?;
        if self
            .state()
            .locations
            .get(location)
            .is_some_and(|skus| !skus.is_empty())
        {
            return Err(self.location_error(location, "is not empty"));
        }
        self.record(WarehouseEvent::LocationRemoved(LocationRef {
            location: location.to_owned(),
        }));
        Ok(())
    }

    /// Stores `quantity` (> 0) units of `sku` at `location` (`StockPlaced`), within the
    /// warehouse's free capacity.
    pub fn place(&mut self, location: &str, sku: &str, quantity: i64) -> Result<(), DomainError> {
        self.require_exists()?;
        self.require_location(location)?;
        self.not_blank("sku", sku)?;
        self.positive("quantity", quantity)?;
        let free = self.state().capacity.saturating_sub(self.state().used);
        if quantity > free {
            return Err(self.exceeds("place", quantity, free, "free capacity"));
        }
        self.record(WarehouseEvent::StockPlaced(stock(location, sku, quantity)));
        Ok(())
    }

    /// Takes `quantity` (> 0) units of `sku` from `location` (`StockPicked`), at most what it
    /// holds there.
    pub fn pick(&mut self, location: &str, sku: &str, quantity: i64) -> Result<(), DomainError> {
        self.require_exists()?;
        self.require_location(location)?;
        self.positive("quantity", quantity)?;
        let held = self.state().quantity_at(location, sku);
        if quantity > held {
            return Err(self.exceeds("pick", quantity, held, "at this location"));
        }
        self.record(WarehouseEvent::StockPicked(stock(location, sku, quantity)));
        Ok(())
    }

    /// Sets the capacity to `capacity` (> 0) units (`CapacityChanged`), at least the units
    /// stored now.
    pub fn change_capacity(&mut self, capacity: i64) -> Result<(), DomainError> {
        self.require_exists()?;
        self.positive("capacity", capacity)?;
        let used = self.state().used;
        if capacity < used {
            return Err(self.invalid("capacity", ">= used", capacity));
        }
        self.record(WarehouseEvent::CapacityChanged(CapacityChanged {
            capacity,
        }));
        Ok(())
    }
}

fn stock(location: &str, sku: &str, quantity: i64) -> LocationStock {
    LocationStock {
        location: location.to_owned(),
        sku: sku.to_owned(),
        quantity,
    }
}
