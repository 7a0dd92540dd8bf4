//! Warm loads: the repository with a cache of warm states (a warm container) loading an
//! aggregate it holds, after another writer appended a few events, next to the cold load of the
//! same aggregate at the same moment (newest snapshot + newest events), on the bare loopback
//! and with latency added to every request (crate::latency).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Result};
use aws_sdk_dynamodb::Client;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{Aggregate, AggregateRepository, LoadReport, Registry, StateCache};
use snapshot_dynamo::{schema, DynamoEventStore, DynamoSnapshotStore};

use crate::stats::Figure;
use crate::wire::{Cost, Wire};

/// Events in the history before the measured loads.
pub const HISTORY: u64 = 1000;
/// Events between the snapshot and the end of the history when the loads start.
pub const TAIL: u64 = 50;
/// Events another writer appends before each measured pair of loads.
pub const NEWER: usize = 4;

pub const WARM: &str = "warm (cached state + newer events)";
pub const COLD: &str = "cold (snapshot + tail)";

#[derive(Debug, Clone)]
pub struct WarmRow {
    /// Milliseconds added before each request (0: the bare loopback).
    pub delay_ms: u64,
    pub load: &'static str,
    pub wall_ms: Figure,
    pub requests: Figure,
    pub round_trips: Figure,
    pub items: Figure,
    pub kib: Figure,
    pub read_units: Figure,
    /// Events folded onto the cached state or the snapshot.
    pub events_replayed: Figure,
}

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

fn repository(client: &Client, events: &str, snapshots: &str) -> Repo {
    AggregateRepository::new(
        DynamoEventStore::new(client.clone(), events),
        DynamoSnapshotStore::new(client.clone(), snapshots),
        SnapshotCodec::default(),
    )
}

#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    costs: Vec<Cost>,
    replayed: Vec<f64>,
}

impl Samples {
    fn row(self, delay_ms: u64, load: &'static str) -> WarmRow {
        let of = |f: fn(&Cost) -> f64| Figure::of(self.costs.iter().map(f).collect());
        WarmRow {
            delay_ms,
            load,
            wall_ms: Figure::of(self.wall),
            requests: of(|c| c.requests as f64),
            round_trips: of(|c| c.round_trips as f64),
            items: of(|c| c.items as f64),
            kib: of(|c| c.bytes as f64 / 1024.0),
            read_units: of(|c| c.units.read),
            events_replayed: Figure::of(self.replayed),
        }
    }
}

/// Times one load on `wire`, checks its state and version against the writer's, and records
/// it (warm-up rounds pass `None`).
async fn measure(
    wire: &Wire,
    repo: &Repo,
    id: &str,
    writer: &AggregateRoot<InventoryItem>,
    warm: bool,
    samples: Option<&mut Samples>,
) -> Result<()> {
    wire.reset();
    let t = Instant::now();
    let (root, report): (_, LoadReport) = repo.load::<InventoryItem>(id).await?;
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    let cost = wire.take();
    ensure!(
        root.state() == writer.state() && root.version() == writer.version(),
        "{id}: load at version {} differs from the writer's at {}",
        root.version(),
        writer.version()
    );
    ensure!(
        report.from_cache == warm,
        "{id}: expected a {} load: {report:?}",
        if warm { "warm" } else { "cold" }
    );
    if let Some(samples) = samples {
        samples.wall.push(wall);
        samples.costs.push(cost);
        samples.replayed.push(report.events_replayed as f64);
    }
    Ok(())
}

/// `delayed`: clients counted on `wire` whose requests each wait the given milliseconds.
pub async fn run(
    plain: &Client,
    counted: &Client,
    delayed: &[(u64, Client)],
    wire: &Wire,
    suffix: &str,
    runs: usize,
) -> Result<Vec<WarmRow>> {
    let (events, snapshots) = (
        format!("bench_warm_events_{suffix}"),
        format!("bench_warm_snapshots_{suffix}"),
    );
    crate::seed::events_table_without_stream(plain, &events).await?;
    schema::create_snapshots_table(plain, &snapshots).await?;
    // The other writer: never counted, never cached.
    let other = repository(plain, &events, &snapshots);
    let registry = Registry::builtin();
    let kind = registry.get(InventoryItem::TYPE).map(Arc::clone);
    let Some(kind) = kind else {
        anyhow::bail!("INVENTORY_ITEM is not registered");
    };
    let clients: Vec<(u64, &Client)> = std::iter::once((0, counted))
        .chain(delayed.iter().map(|(ms, c)| (*ms, c)))
        .collect();
    let mut rows = Vec::new();
    for (delay_ms, client) in clients {
        let id = format!("warm-item-{delay_ms}");
        let mut writer = AggregateRoot::<InventoryItem>::new(&id);
        writer.create("SKU-1", "Widget", 10)?;
        other.save(&mut writer, None).await?;
        // Saved in commits of up to 99 events (one append's limit).
        while writer.version() < HISTORY {
            let stop = if writer.version() < HISTORY - TAIL {
                HISTORY - TAIL
            } else {
                HISTORY
            };
            let batch = (stop - writer.version()).min(99);
            for _ in 0..batch {
                writer.receive(1, None)?;
            }
            other.save(&mut writer, None).await?;
            if writer.version() == HISTORY - TAIL {
                other
                    .snapshot_now(kind.as_ref(), &id, SnapshotMetadata::default(), None)
                    .await?;
            }
        }
        let warm = repository(client, &events, &snapshots)
            .with_state_cache(Arc::new(StateCache::new(1 << 20)));
        let cold = repository(client, &events, &snapshots);
        // The first load fills the cache (a cold load, not measured).
        warm.load::<InventoryItem>(&id).await?;
        let (mut warm_samples, mut cold_samples) = (Samples::default(), Samples::default());
        for run in 0..crate::load::WARM_UP + runs {
            for _ in 0..NEWER {
                writer.receive(1, None)?;
            }
            other.save(&mut writer, None).await?;
            let measured = run >= crate::load::WARM_UP;
            // Alternate which goes first (warm caches in the engine).
            let order = if run % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_warm in order {
                let (repo, samples) = if is_warm {
                    (&warm, &mut warm_samples)
                } else {
                    (&cold, &mut cold_samples)
                };
                let samples = measured.then_some(samples);
                measure(wire, repo, &id, &writer, is_warm, samples).await?;
            }
        }
        for (load, samples) in [(WARM, warm_samples), (COLD, cold_samples)] {
            let row = samples.row(delay_ms, load);
            eprintln!(
                "bench: warm +{delay_ms} ms {load:<36} {} ms, {} requests, {} round trips, \
                 {} items, {} KiB, {} read units, {} events folded",
                row.wall_ms,
                row.requests,
                row.round_trips,
                row.items,
                row.kib,
                row.read_units,
                row.events_replayed
            );
            rows.push(row);
        }
    }
    for table in [&events, &snapshots] {
        let _ = plain.delete_table().table_name(table).send().await;
    }
    Ok(rows)
}

/// The report's section.
pub fn markdown(md: &mut String, rows: &[WarmRow]) {
    use std::fmt::Write as _;
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n### Warm loads: the repository's cache of warm states\n\n\
         A repository with a cache of warm states (`AggregateRepository::with_state_cache`, as \
         in a warm container) loads an INVENTORY_ITEM of {HISTORY} events that it loaded \
         before, after another writer appended {NEWER} events it never saw: one strongly \
         consistent Query of the events from the cached version on, its first event checked \
         to be the cached boundary event, the newer ones folded. Next to it, the cold load of \
         the same aggregate at the same moment (newest snapshot, {TAIL} events before the end \
         at the start, plus the newest events), alternating which goes first. Both checked \
         against the writer's state and version.\n"
    );
    let _ = writeln!(
        md,
        "| added per request | load | wall ms | requests | round trips | items read | KiB read | read units | events folded |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} ms | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.delay_ms,
            row.load,
            row.wall_ms.show(2),
            row.requests.show(0),
            row.round_trips.show(0),
            row.items.show(0),
            row.kib.show(1),
            row.read_units.show(1),
            row.events_replayed.show(0)
        );
    }
}
