//! Aggregate loads at several history sizes, this product and the peer in the same run:
//! full replay and snapshot + tail, with a snapshot 50 events before the end.

use std::time::Instant;

use anyhow::{ensure, Context as _, Result};
use aws_sdk_dynamodb::Client;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{fold, Aggregate, EventEnvelope, InventoryItem};
use snapshot_core::ports::SnapshotStore;
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateRepository, LoadMode, LoadReport};
use snapshot_dynamo::{schema, DynamoEventStore, DynamoSnapshotStore};

use crate::peer::Peer;
use crate::seed::write_all;
use crate::stats::Figure;
use crate::wire::{Cost, Wire};
use snapshot_core::testing::histories::item_events;

/// Events between the snapshot and the end of the history.
pub const TAIL: usize = 50;

/// Untimed rounds of every load before the measured ones, at each size and added latency:
/// DynamoDB Local is a JVM, whose first requests of a kind run before the JIT has compiled
/// them (the first loads of a fresh instance took several times as long as later ones).
pub const WARM_UP: usize = 2;

#[derive(Debug, Clone)]
pub struct LoadRow {
    pub events: usize,
    pub store: &'static str,
    pub load: &'static str,
    pub wall_ms: Figure,
    pub requests: Figure,
    pub round_trips: Figure,
    pub items: Figure,
    pub kib: Figure,
    /// Capacity units consumed, as DynamoDB Local reports them.
    pub read_units: Figure,
    pub write_units: Figure,
    /// Milliseconds with a request in flight (sent, not yet deserialised by the SDK).
    pub in_flight_ms: Figure,
    /// Milliseconds the SDK spent reading and deserialising responses.
    pub deserialize_ms: Figure,
    /// The requests' spans summed (above `in_flight_ms` when they overlapped).
    pub requests_ms: Figure,
    /// Milliseconds of the load outside the SDK's calls (item conversion, fold, checks).
    pub outside_ms: Figure,
    /// What the product's `LoadReport` said: sequential round trips, and requests.
    pub reported_round_trips: Option<Figure>,
    pub reported_requests: Option<Figure>,
}

pub const PRODUCT: &str = "this product";
pub const PEER: &str = "cqrs-es + dynamo-es";
pub const REPLAY: &str = "full replay";
pub const SNAPSHOT: &str = "snapshot + tail";
/// This product's other load mode (snapshot_core::LoadMode::FewestReadUnits).
pub const SNAPSHOT_UNITS: &str = "snapshot + tail, fewest read units";

/// Snapshot + tail loads through a client that delays every request (crate::latency).
#[derive(Debug, Clone)]
pub struct DelayedRow {
    /// Milliseconds added before each request is sent.
    pub delay_ms: u64,
    pub row: LoadRow,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Default)]
pub struct Loads {
    pub rows: Vec<LoadRow>,
    pub delayed: Vec<DelayedRow>,
}

struct Samples {
    wall: Vec<f64>,
    costs: Vec<Cost>,
    reported: Vec<f64>,
    reported_requests: Vec<f64>,
}

impl Samples {
    fn new() -> Self {
        Self {
            wall: Vec::new(),
            costs: Vec::new(),
            reported: Vec::new(),
            reported_requests: Vec::new(),
        }
    }

    fn push(&mut self, wall: f64, cost: Cost, reported: Option<&LoadReport>) {
        self.wall.push(wall);
        self.costs.push(cost);
        if let Some(report) = reported {
            self.reported.push(f64::from(report.round_trips));
            self.reported_requests.push(f64::from(report.requests));
        }
    }

    /// Times `load` (its requests counted on `wire`), checks that it gave `expected` at
    /// version `n`, and records it; `what` names the load in the error.
    async fn measure(
        &mut self,
        wire: &Wire,
        expected: &InventoryItem,
        n: usize,
        what: &str,
        load: impl std::future::Future<Output = Result<(InventoryItem, usize, Option<LoadReport>)>>,
    ) -> Result<()> {
        wire.reset();
        let t = Instant::now();
        let (state, version, reported) = load.await?;
        let wall = t.elapsed().as_secs_f64() * 1000.0;
        let cost = wire.take();
        ensure!(
            &state == expected && version == n,
            "{what} gave version {version} and a different state"
        );
        self.push(wall, cost, reported.as_ref());
        Ok(())
    }

    fn row(self, events: usize, store: &'static str, load: &'static str) -> LoadRow {
        let of = |f: fn(&Cost) -> f64| Figure::of(self.costs.iter().map(f).collect());
        LoadRow {
            events,
            store,
            load,
            wall_ms: Figure::of(self.wall.clone()),
            requests: of(|c| c.requests as f64),
            round_trips: of(|c| c.round_trips as f64),
            items: of(|c| c.items as f64),
            kib: of(|c| c.bytes as f64 / 1024.0),
            read_units: of(|c| c.units.read),
            write_units: of(|c| c.units.write),
            in_flight_ms: of(|c| c.in_flight_ms),
            deserialize_ms: of(|c| c.deserialize_ms),
            requests_ms: of(|c| c.requests_ms),
            outside_ms: Figure::of(
                self.wall
                    .iter()
                    .zip(&self.costs)
                    .map(|(wall, c)| wall - c.in_flight_ms)
                    .collect(),
            ),
            reported_round_trips: (!self.reported.is_empty()).then(|| Figure::of(self.reported)),
            reported_requests: (!self.reported_requests.is_empty())
                .then(|| Figure::of(self.reported_requests)),
        }
    }
}

pub struct Tables {
    pub events: String,
    pub snapshots: String,
    /// Never written: loads through it are full replays.
    pub no_snapshots: String,
}

/// `delayed`: clients counted on `wire` whose requests each wait the given milliseconds
/// (crate::latency); their snapshot + tail loads are measured after each size's main loads.
pub async fn run(
    plain: &Client,
    counted: &Client,
    delayed: &[(u64, Client)],
    wire: &Wire,
    suffix: &str,
    sizes: &[usize],
    runs: usize,
) -> Result<Loads> {
    let tables = Tables {
        events: format!("bench_events_{suffix}"),
        snapshots: format!("bench_snapshots_{suffix}"),
        no_snapshots: format!("bench_no_snapshots_{suffix}"),
    };
    crate::seed::events_table_without_stream(plain, &tables.events).await?;
    schema::create_snapshots_table(plain, &tables.snapshots).await?;
    schema::create_snapshots_table(plain, &tables.no_snapshots).await?;
    let peer = Peer::create(plain.clone(), suffix).await?;
    let codec = SnapshotCodec::default();
    let with_snapshots = AggregateRepository::new(
        DynamoEventStore::new(counted.clone(), &tables.events),
        DynamoSnapshotStore::new(counted.clone(), &tables.snapshots),
        codec.clone(),
    );
    let by_units = AggregateRepository::new(
        DynamoEventStore::new(counted.clone(), &tables.events),
        DynamoSnapshotStore::new(counted.clone(), &tables.snapshots),
        codec.clone(),
    )
    .with_load_mode(LoadMode::FewestReadUnits);
    let without_snapshots = AggregateRepository::new(
        DynamoEventStore::new(counted.clone(), &tables.events),
        DynamoSnapshotStore::new(counted.clone(), &tables.no_snapshots),
        codec.clone(),
    );

    let mut rows = Vec::new();
    let mut delayed_rows = Vec::new();
    for &n in sizes {
        let id = format!("item-{n}");
        let started = Instant::now();
        let events = item_events(n);
        let expected = fold(InventoryItem::initial(&id), &events);
        seed_product(plain, &tables, &codec, &id, &events).await?;
        peer.seed(&id, &events, n - TAIL).await?;
        eprintln!(
            "bench: load: {n} events seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let mut samples: Vec<Samples> = (0..5).map(|_| Samples::new()).collect();
        let mut warm_up = Samples::new();
        for run in 0..WARM_UP + runs {
            for k in 0..5 {
                // Rotate the order so no load always runs first (warm caches in the engine).
                let which = (k + run) % 5;
                let load = async {
                    Ok(match which {
                        0 => {
                            let (root, report) =
                                without_snapshots.load::<InventoryItem>(&id).await?;
                            ensure!(report.snapshot_version.is_none(), "expected a full replay");
                            (root.state().clone(), root.version() as usize, Some(report))
                        }
                        1 => {
                            let (state, version, report) =
                                load_from_snapshot(&with_snapshots, &id, n).await?;
                            (state, version, Some(report))
                        }
                        2 => {
                            let (state, version) = peer.load_replay(counted, &id).await?;
                            (state, version, None)
                        }
                        3 => {
                            let (state, version, report) =
                                load_from_snapshot(&by_units, &id, n).await?;
                            (state, version, Some(report))
                        }
                        _ => {
                            let (state, version) = peer.load_snapshot(counted, &id).await?;
                            (state, version, None)
                        }
                    })
                };
                let what = format!("load {which} of {id}");
                let sample = if run < WARM_UP {
                    &mut warm_up
                } else {
                    &mut samples[which]
                };
                sample.measure(wire, &expected, n, &what, load).await?;
            }
        }
        let mut it = samples.into_iter();
        let mut next = || it.next().context("samples");
        rows.push(next()?.row(n, PRODUCT, REPLAY));
        rows.push(next()?.row(n, PRODUCT, SNAPSHOT));
        rows.push(next()?.row(n, PEER, REPLAY));
        rows.push(next()?.row(n, PRODUCT, SNAPSHOT_UNITS));
        rows.push(next()?.row(n, PEER, SNAPSHOT));
        for row in &rows[rows.len() - 5..] {
            eprintln!(
                "bench: load {n:>6} {:<20} {:<16} {:>10} ms, {} requests, {} round trips, \
                 {} items, {} KiB, {} read units, {} write units; in flight {} ms \
                 (requests summed {} ms, SDK read + deserialise {} ms), outside requests {} ms",
                row.store,
                row.load,
                row.wall_ms,
                row.requests,
                row.round_trips,
                row.items,
                row.kib,
                row.read_units,
                row.write_units,
                row.in_flight_ms,
                row.requests_ms,
                row.deserialize_ms,
                row.outside_ms
            );
        }
        for (delay_ms, client) in delayed {
            let repository = AggregateRepository::new(
                DynamoEventStore::new(client.clone(), &tables.events),
                DynamoSnapshotStore::new(client.clone(), &tables.snapshots),
                codec.clone(),
            );
            let units_repository = AggregateRepository::new(
                DynamoEventStore::new(client.clone(), &tables.events),
                DynamoSnapshotStore::new(client.clone(), &tables.snapshots),
                codec.clone(),
            )
            .with_load_mode(LoadMode::FewestReadUnits);
            let mut samples: Vec<Samples> = (0..3).map(|_| Samples::new()).collect();
            let mut warm_up = Samples::new();
            for run in 0..WARM_UP + runs {
                for k in 0..3 {
                    let which = (k + run) % 3;
                    let load = async {
                        match which {
                            0 => {
                                let (state, version, report) =
                                    load_from_snapshot(&repository, &id, n).await?;
                                Ok((state, version, Some(report)))
                            }
                            1 => {
                                let (state, version, report) =
                                    load_from_snapshot(&units_repository, &id, n).await?;
                                Ok((state, version, Some(report)))
                            }
                            _ => {
                                let (state, version) = peer.load_snapshot(client, &id).await?;
                                Ok((state, version, None))
                            }
                        }
                    };
                    let sample = if run < WARM_UP {
                        &mut warm_up
                    } else {
                        &mut samples[which]
                    };
                    let what = format!("delayed load of {id}");
                    sample.measure(wire, &expected, n, &what, load).await?;
                }
            }
            let loads = [
                (PRODUCT, SNAPSHOT),
                (PRODUCT, SNAPSHOT_UNITS),
                (PEER, SNAPSHOT),
            ];
            for ((store, load), sample) in loads.into_iter().zip(samples) {
                let row = sample.row(n, store, load);
                eprintln!(
                    "bench: load {n:>6} {store:<20} {load} +{delay_ms} ms per request: \
                     {} ms, {} round trips, {} read units, {} write units",
                    row.wall_ms, row.round_trips, row.read_units, row.write_units
                );
                delayed_rows.push(DelayedRow {
                    delay_ms: *delay_ms,
                    row,
                });
            }
        }
    }
    for table in [
        &tables.events,
        &tables.snapshots,
        &tables.no_snapshots,
        &peer.events_table,
        &peer.snapshots_table,
    ] {
        let _ = plain.delete_table().table_name(table).send().await;
    }
    Ok(Loads {
        rows,
        delayed: delayed_rows,
    })
}

/// This product's snapshot + tail load of the `n`-event history, checked to start from the
/// snapshot `TAIL` events before the end.
async fn load_from_snapshot(
    repository: &AggregateRepository<DynamoEventStore, DynamoSnapshotStore>,
    id: &str,
    n: usize,
) -> Result<(InventoryItem, usize, LoadReport)> {
    let (root, report) = repository.load::<InventoryItem>(id).await?;
    ensure!(
        report.snapshot_version == Some((n - TAIL) as u64),
        "expected the snapshot at {}: {report:?}",
        n - TAIL
    );
    Ok((root.state().clone(), root.version() as usize, report))
}

async fn seed_product(
    client: &Client,
    tables: &Tables,
    codec: &SnapshotCodec,
    id: &str,
    events: &[<InventoryItem as Aggregate>::Event],
) -> Result<()> {
    let envelopes: Vec<EventEnvelope> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventEnvelope::wrap::<InventoryItem>(id, i as u64 + 1, e, 0, None))
        .collect();
    let items = envelopes
        .iter()
        .map(serde_dynamo::to_item)
        .collect::<Result<Vec<_>, _>>()?;
    write_all(client, &tables.events, items).await?;
    let at = events.len() - TAIL;
    let state = fold(InventoryItem::initial(id), &events[..at]);
    let boundary = envelopes.get(at - 1).context("snapshot boundary event")?;
    let record = build_snapshot(
        codec,
        SnapshotSubject {
            aggregate_id: id,
            aggregate_type: InventoryItem::TYPE,
            schema_version: InventoryItem::SCHEMA_VERSION,
            version: at as u64,
            last_event_id: Some(&boundary.event_id),
        },
        serde_json::to_vec(&state)?,
        SnapshotMetadata {
            created_by: "bench".to_owned(),
            reason: "manual".to_owned(),
            request_id: None,
        },
        0,
        None,
    )?;
    DynamoSnapshotStore::new(client.clone(), &tables.snapshots)
        .put_if_absent(&record)
        .await?;
    Ok(())
}
