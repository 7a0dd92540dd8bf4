//! The report's cost section: capacity units per 1,000 events written and a monthly bill at
//! the seed's scale, from the unit costs this run measured (crate::cost and the other
//! sections), with the formula and every input written out; and the plot of a not-due
//! record's read units against state size, before and after snapshot heads.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::cost::{CostRows, SizeRow};
use crate::load::{LoadRow, PRODUCT, SNAPSHOT, SNAPSHOT_UNITS};
use crate::retention::RetentionRow;
use crate::warm::WarmRow;

/// On-demand prices, us-east-1, DynamoDB Standard table class (since November 2024): dollars
/// per million write request units, per million read request units, per GB-month stored.
pub const WRITE_PRICE: f64 = 0.625;
pub const READ_PRICE: f64 = 0.125;
pub const STORAGE_PRICE: f64 = 0.25;

/// The share of not-due records shown decided by a warm container, beside the cold upper
/// bound: a stream shard's records go to one container, which keeps the heads it has seen
/// (snapshot_core::head::HeadCache, 100,000 of them) while it stays warm.
pub const WARM_SHARE: f64 = 0.9;

/// The seed's scale (an Inventory Service with millions of events).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub aggregates: f64,
    pub events_per_day: f64,
    /// The count policy's threshold (the default policy).
    pub threshold: f64,
    /// Snapshots kept per aggregate (`MAX_SNAPSHOTS_PER_AGGREGATE`).
    pub keep: f64,
    pub pruner_runs_per_day: f64,
    pub loads_per_aggregate_per_day: f64,
}

pub const SEED: Scale = Scale {
    aggregates: 1_000_000.0,
    events_per_day: 10_000_000.0,
    threshold: 100.0,
    keep: 3.0,
    pruner_runs_per_day: 24.0,
    loads_per_aggregate_per_day: 100.0,
};

/// Read and write units a day of one part of the bill.
#[derive(Debug, Clone, Copy, Default)]
pub struct Daily {
    pub read: f64,
    pub write: f64,
}

impl Daily {
    /// Dollars a month (30 days).
    pub fn dollars_a_month(self) -> f64 {
        30.0 * (self.write * WRITE_PRICE + self.read * READ_PRICE) / 1e6
    }

    /// Weighted by price, in read units (a write unit costs five read units).
    fn weighted(self) -> f64 {
        self.read + self.write * WRITE_PRICE / READ_PRICE
    }
}

/// Retention's reads per scheduled run, and where the figure comes from.
#[derive(Debug, Clone)]
pub struct RetentionReads {
    pub per_run: f64,
    pub source: String,
}

/// Index keys a scheduled pruner run reads at most by default (`PRUNE_KEYS_PER_RUN`,
/// functions/pruner/src/settings.rs).
pub const PRUNE_KEYS_PER_RUN: f64 = 100_000.0;

/// What a scheduled retention run reads at the seed's scale, from the retention section: the
/// sweep reads at most `PRUNE_KEYS_PER_RUN` entries of the retention index a run (about 90
/// bytes each, whatever the state's size) and nothing else when nothing is due, so the run
/// measured there is scaled from its key budget to the default one; the seed's table (3M
/// entries) is larger than that budget, so every run reads the whole budget.
pub fn retention_reads(retention: Option<&RetentionRow>, scale: Scale) -> RetentionReads {
    let Some(idle) = retention
        .and_then(|r| r.idle.iter().max_by_key(|i| i.snapshots))
        .filter(|i| i.keys_read > 0)
    else {
        return RetentionReads {
            per_run: 0.0,
            source: "not measured in this run".to_owned(),
        };
    };
    let per_key = idle.read_units / idle.keys_read as f64;
    let keys = PRUNE_KEYS_PER_RUN.min(scale.aggregates * scale.keep);
    RetentionReads {
        per_run: per_key * keys,
        source: format!(
            "the sweep reads the retention index within a key budget: {:.4} read units per index \
             entry (a run with nothing due over {} snapshots read {} entries for {:.1} read \
             units, as DynamoDB bills index reads), × {keys:.0} entries (the default \
             `PRUNE_KEYS_PER_RUN`); snapshots that fall out of keep-N are deleted by the write \
             that pushes them out, reading nothing",
            per_key, idle.snapshots, idle.keys_read, idle.read_units
        ),
    }
}

/// One state size's bill, by part.
#[derive(Debug, Clone)]
pub struct Bill {
    pub state_bytes: usize,
    pub events: Daily,
    pub snapshotter: Daily,
    pub retention: Daily,
    pub loads_one_trip: Daily,
    pub loads_fewest_units: Daily,
    /// Loads of aggregates a warm container holds (the repository's cache of warm states),
    /// when the warm section ran.
    pub loads_warm: Option<Daily>,
    pub storage_gb: f64,
    pub retention_source: String,
    /// The snapshotter's head reads for not-due records (part of `snapshotter.read`): what a
    /// warm container, which remembers heads, does not read.
    pub not_due_reads: f64,
}

impl Bill {
    /// The snapshot service: the snapshotter and retention (loads are the application's reads,
    /// which a full replay would make far larger; storage is shown apart).
    pub fn service(&self) -> Daily {
        Daily {
            read: self.snapshotter.read + self.retention.read,
            write: self.snapshotter.write + self.retention.write,
        }
    }

    /// The service's bill against the event writes it serves, weighted by price.
    pub fn service_share(&self) -> f64 {
        self.service().weighted() / self.events.weighted()
    }

    /// [`Bill::service_share`] when `warm` of the not-due records are decided by a warm
    /// container (no read).
    pub fn service_share_warm(&self, warm: f64) -> f64 {
        let mut service = self.service();
        service.read -= self.not_due_reads * warm;
        service.weighted() / self.events.weighted()
    }
}

/// Read units of one load, by mode, at the smallest size measured.
fn load_units(loads: &[LoadRow], load: &str) -> Option<f64> {
    loads
        .iter()
        .filter(|l| l.store == PRODUCT && l.load == load)
        .min_by_key(|l| l.events)
        .map(|l| l.read_units.median)
}

/// The bill at `scale` for every measured state size (none when a needed figure is missing).
pub fn bills(
    cost: &CostRows,
    loads: &[LoadRow],
    warm: &[WarmRow],
    retention: Option<&RetentionRow>,
    scale: Scale,
) -> Vec<Bill> {
    let warm_units = warm
        .iter()
        .find(|w| w.delay_ms == 0 && w.load == crate::warm::WARM)
        .map(|w| w.read_units.median);
    let (Some(small), Some(one_trip), Some(fewest)) = (
        cost.sizes.first(),
        load_units(loads, SNAPSHOT),
        load_units(loads, SNAPSHOT_UNITS),
    ) else {
        return Vec::new();
    };
    let snapshots = scale.events_per_day / scale.threshold;
    let not_due = scale.events_per_day - snapshots;
    let loads_a_day = scale.aggregates * scale.loads_per_aggregate_per_day;
    cost.sizes
        .iter()
        .map(|size| {
            // A larger state's snapshot read costs more on every load.
            let extra_state = size.base_read - small.base_read;
            let retention = retention_reads(retention, scale);
            Bill {
                state_bytes: size.state_bytes,
                events: Daily {
                    read: 0.0,
                    write: scale.events_per_day * cost.append_per_event,
                },
                snapshotter: Daily {
                    read: not_due * size.decide_after.median
                        + snapshots
                            * (size.decide_after.median + size.base_read + cost.boundary_read),
                    write: snapshots * size.put.write,
                },
                retention: Daily {
                    read: scale.pruner_runs_per_day * retention.per_run
                        + snapshots * size.delete.read,
                    write: snapshots * size.delete.write,
                },
                loads_one_trip: Daily {
                    read: loads_a_day * (one_trip + extra_state),
                    write: 0.0,
                },
                loads_fewest_units: Daily {
                    read: loads_a_day * (fewest + extra_state),
                    write: 0.0,
                },
                // A warm load reads no snapshot: its units do not grow with the state.
                loads_warm: warm_units.map(|units| Daily {
                    read: loads_a_day * units,
                    write: 0.0,
                }),
                storage_gb: scale.aggregates
                    * (scale.keep * (size.state_bytes as f64 + 300.0) + 100.0)
                    / 1e9,
                retention_source: retention.source,
                not_due_reads: not_due * size.decide_after.median,
            }
        })
        .collect()
}

fn kb(bytes: usize) -> String {
    format!("{} KB", bytes / 1000)
}

/// The cost section of docs/bench/README.md.
pub fn markdown(md: &mut String, cost: &CostRows, bills: &[Bill], scale: Scale) {
    let _ = writeln!(md, "\n## Cost\n");
    let _ = writeln!(
        md,
        "Capacity units as DynamoDB Local reports them, per operation (medians), with a \
         snapshot item of each state size (stored uncompressed, so the item weighs what its \
         state does):\n"
    );
    let _ = writeln!(
        md,
        "| state | not-due record, before heads (newest snapshot, strongly consistent) | not-due record, with heads (head item, eventually consistent) | snapshot put with its head | snapshot deleted |\n|---:|---:|---:|---:|---:|"
    );
    for s in &cost.sizes {
        let _ = writeln!(
            md,
            "| {} | {} read units | {} read units | {:.1} write units | {:.1} write units |",
            kb(s.state_bytes),
            s.decide_before.show(1),
            s.decide_after.show(1),
            s.put.write,
            s.delete.write
        );
    }
    let _ = writeln!(
        md,
        "\nAn event appended alone: {:.1} write units. A snapshot's boundary event read: {:.1} read \
         units. A warm snapshotter that has seen the aggregate reads nothing for a not-due \
         record.\n",
        cost.append_per_event, cost.boundary_read
    );
    let _ = writeln!(md, "![read units per not-due record](cost_not_due.svg)\n");
    if bills.is_empty() {
        let _ = writeln!(md, "The model needs the load section's figures: not run.");
        return;
    }
    let _ = writeln!(
        md,
        "### A month at the seed's scale\n\n\
         Inputs: {:.0} aggregates, {:.0} events a day (appended one at a time), count policy \
         threshold {:.0} (so {:.0} snapshots a day, each one later deleted by retention), keep \
         {:.0}, {:.0} pruner runs a day, {:.0} loads per aggregate a day, every not-due record \
         decided cold (a head read; a warm container reads nothing, so this is the upper \
         bound). On-demand prices (us-east-1, Standard): ${WRITE_PRICE} per million write \
         units, ${READ_PRICE} per million read units, ${STORAGE_PRICE} per GB-month.\n",
        scale.aggregates,
        scale.events_per_day,
        scale.threshold,
        scale.events_per_day / scale.threshold,
        scale.keep,
        scale.pruner_runs_per_day,
        scale.loads_per_aggregate_per_day
    );
    let _ = writeln!(
        md,
        "Formula, per day (E events, S = E / threshold snapshots, L loads; the unit costs from \
         the table above at the state size, loads from the load section):\n\n\
         - events: E × append write units\n\
         - snapshotter: (E − S) × head read + S × (head read + newest snapshot read + boundary \
           read) read units; S × put write units\n\
         - retention: runs × reads per run (the sweep, below) + S × delete read units; S × \
           delete write units (the write that pushes a snapshot out of keep-N deletes it)\n\
         - loads: L × load read units (+ the larger snapshot's extra read units; a warm load, \
           of an aggregate the container's cache holds, reads no snapshot)\n\
         - dollars a month = 30 × (write units × write price + read units × read price) / 10⁶; \
           the service's share weighs a write unit as five read units\n"
    );
    let _ = writeln!(
        md,
        "| state | events $/month | snapshotter $/month | retention $/month | snapshot service / event writes | the same, {:.0} % of not-due records decided warm | snapshot storage $/month | loads, one round trip $/month | loads, fewest read units $/month | loads, all warm $/month |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        WARM_SHARE * 100.0
    );
    for b in bills {
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.2} | {:.2} | **{:.1} %** | {:.1} % | {:.2} | {:.2} | {:.2} | {} |",
            kb(b.state_bytes),
            b.events.dollars_a_month(),
            b.snapshotter.dollars_a_month(),
            b.retention.dollars_a_month(),
            b.service_share() * 100.0,
            b.service_share_warm(WARM_SHARE) * 100.0,
            b.storage_gb * STORAGE_PRICE,
            b.loads_one_trip.dollars_a_month(),
            b.loads_fewest_units.dollars_a_month(),
            b.loads_warm
                .map_or_else(|| "-".to_owned(), |d| format!("{:.2}", d.dollars_a_month())),
        );
    }
    let _ = writeln!(
        md,
        "\nRetention's reads per run: {}.\n",
        bills.first().map_or("", |b| b.retention_source.as_str())
    );
    let per_thousand = 1000.0 / scale.events_per_day;
    let _ = writeln!(
        md,
        "Units per 1,000 events written (read / write), the same model:\n\n\
         | state | events | snapshotter | retention | loads, one round trip ({:.0} per event) | loads, fewest read units |\n|---:|---:|---:|---:|---:|---:|",
        scale.aggregates * scale.loads_per_aggregate_per_day / scale.events_per_day
    );
    for b in bills {
        let show = |d: Daily| {
            format!(
                "{:.1} / {:.1}",
                d.read * per_thousand,
                d.write * per_thousand
            )
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            kb(b.state_bytes),
            show(b.events),
            show(b.snapshotter),
            show(b.retention),
            show(b.loads_one_trip),
            show(b.loads_fewest_units),
        );
    }
    let _ = writeln!(md, "\n{}", verdict(bills));
}

/// Where the service stands against the aim (≤ 10 % of the event writes' bill) and what
/// dominates its bill, at each state size.
pub fn verdict(bills: &[Bill]) -> String {
    let mut lines = Vec::new();
    for b in bills {
        let parts = [
            ("snapshotter reads", b.snapshotter.read, 0.0),
            ("snapshot writes", 0.0, b.snapshotter.write),
            ("retention reads", b.retention.read, 0.0),
            ("retention deletes", 0.0, b.retention.write),
        ];
        let (name, _) = parts
            .iter()
            .map(|(name, read, write)| {
                (
                    *name,
                    Daily {
                        read: *read,
                        write: *write,
                    }
                    .weighted(),
                )
            })
            .fold(
                ("nothing", 0.0),
                |best, part| if part.1 > best.1 { part } else { best },
            );
        lines.push(format!(
            "{}: the snapshot service costs {:.1} % of the event writes ({:.1} % with {:.0} % of \
             not-due records decided warm; {}), mostly {name}",
            kb(b.state_bytes),
            b.service_share() * 100.0,
            b.service_share_warm(WARM_SHARE) * 100.0,
            WARM_SHARE * 100.0,
            if b.service_share() <= 0.10 {
                "within the 10 % aim"
            } else {
                "**over** the 10 % aim"
            },
        ));
    }
    format!(
        "Against the aim (the snapshot service at most 10 % of the event writes it serves): {}.",
        lines.join("; ")
    )
}

/// A plotted line: its label, colour and the figure it plots of each size.
type Series = (&'static str, RGBColor, fn(&SizeRow) -> f64);

/// Plot: read units per not-due record against the state size, before and after heads.
pub fn plot_not_due(cost: &CostRows, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let x_max = cost.sizes.iter().map(|s| s.state_bytes).max().unwrap_or(1) as f64 / 1000.0 * 1.3;
    let y_max = cost
        .sizes
        .iter()
        .map(|s| s.decide_before.max)
        .fold(1.0, f64::max)
        * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Read units per not-due stream record, by snapshot state size",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((0.8..x_max).log_scale(), (0.25..y_max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("state KB")
        .y_desc("read units")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let series: [Series; 2] = [
        (
            "before: the newest snapshot item",
            RGBColor(213, 94, 0),
            |s| s.decide_before.median,
        ),
        ("with heads: the head item", RGBColor(0, 114, 178), |s| {
            s.decide_after.median
        }),
    ];
    for (label, color, value) in series {
        chart
            .draw_series(LineSeries::new(
                cost.sizes
                    .iter()
                    .map(|s| (s.state_bytes as f64 / 1000.0, value(s))),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                cost.sizes.iter().map(|s| {
                    Circle::new((s.state_bytes as f64 / 1000.0, value(s)), 4, color.filled())
                }),
            )
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Figure;
    use crate::wire::Units;

    fn figure(v: f64) -> Figure {
        Figure::of(vec![v])
    }

    fn load(load: &'static str, read_units: f64) -> LoadRow {
        LoadRow {
            events: 1000,
            store: PRODUCT,
            load,
            wall_ms: Figure::default(),
            requests: Figure::default(),
            round_trips: Figure::default(),
            items: Figure::default(),
            kib: Figure::default(),
            read_units: figure(read_units),
            write_units: Figure::default(),
            in_flight_ms: Figure::default(),
            deserialize_ms: Figure::default(),
            requests_ms: Figure::default(),
            outside_ms: Figure::default(),
            reported_round_trips: None,
            reported_requests: None,
        }
    }

    fn size(state_bytes: usize, before: f64, put: f64, delete: f64) -> SizeRow {
        SizeRow {
            state_bytes,
            decide_before: figure(before),
            decide_after: figure(0.5),
            put: Units {
                read: 0.0,
                write: put,
            },
            base_read: before,
            delete: Units {
                read: 0.0,
                write: delete,
            },
        }
    }

    #[test]
    fn the_bill_follows_the_written_formula() {
        let cost = CostRows {
            append_per_event: 1.0,
            boundary_read: 1.0,
            sizes: vec![size(1_000, 1.0, 3.0, 2.0), size(12_000, 4.0, 14.0, 13.0)],
        };
        let loads = [load(SNAPSHOT, 6.0), load(SNAPSHOT_UNITS, 2.5)];
        let scale = Scale {
            aggregates: 1000.0,
            events_per_day: 10_000.0,
            threshold: 100.0,
            keep: 3.0,
            pruner_runs_per_day: 24.0,
            loads_per_aggregate_per_day: 10.0,
        };
        let bills = bills(&cost, &loads, &[], None, scale);
        assert_eq!(bills.len(), 2);
        let small = &bills[0];
        assert_eq!(small.events.write, 10_000.0);
        // 9,900 not-due head reads; 100 snapshots × (head + base + boundary).
        assert_eq!(small.snapshotter.read, 9_900.0 * 0.5 + 100.0 * 2.5);
        assert_eq!(small.snapshotter.write, 300.0);
        assert_eq!(small.retention.write, 200.0);
        assert_eq!(
            small.retention.read, 0.0,
            "no pruner figures: no scan reads"
        );
        assert_eq!(small.loads_one_trip.read, 10_000.0 * 6.0);
        assert_eq!(small.loads_fewest_units.read, 10_000.0 * 2.5);
        // (5,200 reads + 500 writes × 5) against 10,000 writes × 5.
        assert!((small.service_share() - 7_700.0 / 50_000.0).abs() < 1e-12);
        // Warm, 90 % of the 4,950 head reads are not made.
        let warm = (7_700.0 - 4_950.0 * 0.9) / 50_000.0;
        assert!((small.service_share_warm(0.9) - warm).abs() < 1e-12);
        // A 12 KB state's snapshot read costs 3 units more on every load.
        assert_eq!(bills[1].loads_one_trip.read, 10_000.0 * 9.0);
        assert_eq!(
            Daily {
                read: 8e6,
                write: 1.6e6
            }
            .dollars_a_month(),
            30.0 * (1.6 * WRITE_PRICE + 8.0 * READ_PRICE)
        );
    }
}
