//! Demo traffic: a few inventory items and warehouses receiving, reserving, shipping, placing
//! and picking at a steady rate, written the way application code writes — load through
//! [`AggregateRepository`] (latest valid snapshot + newer events), run a command, save with
//! optimistic concurrency. The stream carries the events to the snapshotter.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use snapshot_core::domain::{AggregateRoot, InventoryItem, Warehouse};
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::{Aggregate, AggregateRepository, DomainError, RepositoryError};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::warn;

use crate::progress::{Progress, Reporter, Totals};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSettings {
    /// Commands per second, over all demo aggregates.
    pub rate_per_sec: u32,
    pub items: u32,
    pub warehouses: u32,
}

/// Locations each demo warehouse gets.
const LOCATIONS: usize = 4;

pub fn item_id(n: u32) -> String {
    format!("demo-item-{n}")
}

pub fn warehouse_id(n: u32) -> String {
    format!("demo-warehouse-{n}")
}

fn sku(n: u32) -> String {
    format!("SKU-{n:04}")
}

/// A small deterministic generator (xorshift64*): the demo needs variety, not secrecy.
#[derive(Debug, Clone)]
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `1..=max` (1 when `max < 1`).
    fn upto(&mut self, max: i64) -> i64 {
        let max = u64::try_from(max.max(1)).unwrap_or(1);
        i64::try_from(self.next() % max + 1).unwrap_or(1)
    }
}

/// One command on an inventory item: create it, or receive / reserve / ship / release stock,
/// always within the rules (so every command is accepted).
fn item_command(
    root: &mut AggregateRoot<InventoryItem>,
    n: u32,
    tick: u64,
    dice: &mut Dice,
) -> Result<(), DomainError> {
    if !root.exists() {
        return root.create(&sku(n), &format!("Demo item {n}"), 10);
    }
    let state = root.state();
    let order = state
        .reservations
        .iter()
        .next()
        .map(|(order, quantity)| (order.clone(), *quantity));
    let available = state.available;
    let reference = format!("PO-{tick}");
    match (dice.next() % 10, order) {
        (3..=5, _) if available > 0 => {
            root.reserve(&format!("order-{tick}"), dice.upto(available.min(10)))
        }
        (6..=7, Some((order, held))) => root.ship(&order, dice.upto(held)),
        (8, Some((order, held))) => root.release(&order, dice.upto(held)),
        (9, _) => {
            // Two events in one commit: the snapshotter must handle multi-event appends.
            let quantity = dice.upto(20);
            root.receive(quantity, Some(&reference))?;
            root.reserve(&format!("order-{tick}"), quantity.min(5))
        }
        _ => root.receive(dice.upto(50), Some(&reference)),
    }
}

/// One command on a warehouse: create it, add its locations, then place or pick stock.
fn warehouse_command(
    root: &mut AggregateRoot<Warehouse>,
    n: u32,
    items: u32,
    dice: &mut Dice,
) -> Result<(), DomainError> {
    if !root.exists() {
        return root.create(&format!("Demo warehouse {n}"), 100_000);
    }
    let state = root.state();
    if state.locations.len() < LOCATIONS {
        return root.add_location(&format!("A-{:02}", state.locations.len() + 1));
    }
    let stocked = state
        .locations
        .iter()
        .flat_map(|(location, skus)| skus.iter().map(move |(sku, qty)| (location, sku, *qty)))
        .nth(usize::try_from(dice.next() % 8).unwrap_or(0))
        .map(|(location, sku, qty)| (location.clone(), sku.clone(), qty));
    let free = state.capacity.saturating_sub(state.used);
    let location = format!("A-{:02}", dice.next() % LOCATIONS as u64 + 1);
    match (dice.next() % 3, stocked) {
        (0, Some((location, sku, held))) => root.pick(&location, &sku, dice.upto(held)),
        _ if free > 0 => {
            let item = u32::try_from(dice.next() % u64::from(items.max(1))).unwrap_or(0) + 1;
            root.place(&location, &sku(item), dice.upto(free.min(20)))
        }
        (_, Some((location, sku, held))) => root.pick(&location, &sku, held),
        _ => root.change_capacity(state.capacity.saturating_mul(2)),
    }
}

/// The demo aggregates, driven in turn.
pub struct DemoTraffic<E, S> {
    repository: AggregateRepository<E, S>,
    settings: DemoSettings,
    totals: Arc<Totals>,
    reporter: Reporter,
    tick: u64,
    dice: Dice,
}

impl<E: EventStore, S: SnapshotStore> DemoTraffic<E, S> {
    pub fn new(
        repository: AggregateRepository<E, S>,
        settings: DemoSettings,
        totals: Arc<Totals>,
        reporter: Reporter,
    ) -> Self {
        Self {
            repository,
            settings,
            totals,
            reporter,
            tick: 0,
            dice: Dice::new(crate::seed()),
        }
    }

    /// The ids of the demo aggregates, items first.
    pub fn aggregate_ids(settings: &DemoSettings) -> Vec<String> {
        (1..=settings.items)
            .map(item_id)
            .chain((1..=settings.warehouses).map(warehouse_id))
            .collect()
    }

    /// Runs one command per `1 / rate` seconds until `shutdown` turns true.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) {
        let period = Duration::from_secs(1) / self.settings.rate_per_sec.max(1);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let stop = crate::until_stopped(shutdown);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticker.tick() => self.step().await,
            }
        }
    }

    /// One command on the next aggregate in turn.
    pub async fn step(&mut self) {
        self.tick += 1;
        let aggregates = self.settings.items + self.settings.warehouses;
        let turn = u32::try_from(self.tick % u64::from(aggregates.max(1))).unwrap_or(0);
        let (tick, items) = (self.tick, self.settings.items);
        let mut dice = self.dice.clone();
        let (id, result) = if turn < self.settings.items {
            let n = turn + 1;
            let id = item_id(n);
            let result = self
                .command::<InventoryItem>(&id, |root| item_command(root, n, tick, &mut dice))
                .await;
            (id, result)
        } else {
            let n = turn - self.settings.items + 1;
            let id = warehouse_id(n);
            let result = self
                .command::<Warehouse>(&id, |root| warehouse_command(root, n, items, &mut dice))
                .await;
            (id, result)
        };
        self.dice = dice;
        Totals::add(&self.totals.commands, 1);
        match result {
            Ok(()) => {}
            Err(RepositoryError::Domain(e)) => {
                // The commands keep to the rules; a rejection means the demo has a bug.
                Totals::add(&self.totals.commands_rejected, 1);
                warn!(aggregate_id = %id, error = %e, "demo command rejected");
            }
            Err(e) => {
                Totals::add(&self.totals.commands_rejected, 1);
                (self.reporter)(&Progress::DemoFailed {
                    aggregate_id: id,
                    error: e.to_string(),
                });
            }
        }
    }

    /// Load (snapshot + tail), run `command`, save.
    async fn command<A: Aggregate>(
        &self,
        id: &str,
        command: impl FnOnce(&mut AggregateRoot<A>) -> Result<(), DomainError>,
    ) -> Result<(), RepositoryError> {
        let mut root = match self.repository.load::<A>(id).await {
            Ok((root, report)) => {
                let counter = if report.snapshot_version.is_some() {
                    &self.totals.loads_from_snapshot
                } else {
                    &self.totals.loads_full_replay
                };
                Totals::add(counter, 1);
                Totals::add(&self.totals.events_replayed, report.events_replayed);
                root
            }
            Err(RepositoryError::NotFound { .. }) => AggregateRoot::new(id),
            Err(e) => return Err(e),
        };
        command(&mut root)?;
        let events = root.uncommitted().len() as u64;
        self.repository
            .save(&mut root, Some(metadata(self.tick)))
            .await?;
        Totals::add(&self.totals.events_appended, events);
        Ok(())
    }
}

fn metadata(tick: u64) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "actor": "local-demo",
        "correlationId": format!("demo-{tick}"),
    }) else {
        return Map::new();
    };
    map
}

#[cfg(test)]
mod tests {
    use snapshot_core::codec::SnapshotCodec;
    use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};

    use super::*;

    #[tokio::test]
    async fn every_demo_command_keeps_to_the_domain_rules() {
        let settings = DemoSettings {
            rate_per_sec: 1,
            items: 3,
            warehouses: 2,
        };
        let repository = AggregateRepository::new(
            InMemoryEventStore::new(),
            InMemorySnapshotStore::new(),
            SnapshotCodec::new(8192),
        );
        let totals = Arc::new(Totals::default());
        let mut demo = DemoTraffic::new(repository, settings, totals.clone(), Arc::new(|_| {}));
        for _ in 0..600 {
            demo.step().await;
        }
        let view = totals.view();
        assert_eq!(view.commands, 600);
        assert_eq!(view.commands_rejected, 0);
        assert!(view.events_appended >= 600, "{view:?}");
        // Every aggregate exists and moved well past its creation.
        for id in DemoTraffic::<InMemoryEventStore, InMemorySnapshotStore>::aggregate_ids(&settings)
        {
            let events = demo.repository.events().read(&id, 1, None).await.unwrap();
            assert!(events.len() > 50, "{id}: {} events", events.len());
        }
        let (item, _) = demo
            .repository
            .load::<InventoryItem>("demo-item-1")
            .await
            .unwrap();
        let state = item.state();
        assert!(
            state.on_hand >= state.reserved && state.reserved >= 0,
            "{state:?}"
        );
        let (warehouse, _) = demo
            .repository
            .load::<Warehouse>("demo-warehouse-1")
            .await
            .unwrap();
        assert_eq!(warehouse.state().locations.len(), LOCATIONS);
        assert!(warehouse.state().used > 0);
    }
}
