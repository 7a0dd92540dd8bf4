//! docs/bench/: the Markdown report and its plots (SVG, drawn here with plotters).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::binaries::BinaryRow;
use crate::inmem::{CodecRow, FoldRow};
use crate::load::{DelayedRow, LoadRow, PEER, PRODUCT, REPLAY, SNAPSHOT, SNAPSHOT_UNITS};
use crate::prune::PruneRow;
use crate::stream::StreamRow;

pub struct Results {
    pub runs: usize,
    pub machine: String,
    /// The DynamoDB engine measured, with the version it reported (`DynamoDB Local 3.3.1`).
    pub engine: String,
    pub took_s: f64,
    pub loads: Vec<LoadRow>,
    /// Snapshot + tail loads with a fixed latency added to every request.
    pub delayed_loads: Vec<DelayedRow>,
    /// Loads through the repository's cache of warm states, next to cold ones.
    pub warm_loads: Vec<crate::warm::WarmRow>,
    pub folds: Vec<FoldRow>,
    pub codec: Vec<CodecRow>,
    pub stream: Vec<StreamRow>,
    pub prune: Option<PruneRow>,
    /// The unit operations' capacity units by state size (crate::cost).
    pub cost: Option<crate::cost::CostRows>,
    pub retention: Option<crate::retention::RetentionRow>,
    pub binaries: Vec<BinaryRow>,
    /// The stream trigger's ParallelizationFactor in template.yaml.
    pub parallelization_factor: u32,
    pub notes: Vec<String>,
}

fn load_of<'a>(rows: &'a [LoadRow], n: usize, store: &str, load: &str) -> Option<&'a LoadRow> {
    rows.iter()
        .find(|r| r.events == n && r.store == store && r.load == load)
}

/// Plot: load wall time against history size, median with min–max bars, log scale.
pub fn plot_loads(rows: &[LoadRow], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = rows.iter().map(|r| r.events).collect();
        s.dedup();
        s
    };
    let (x_min, x_max) = (
        *sizes.first().unwrap_or(&1) as f64 * 0.8,
        *sizes.last().unwrap_or(&1) as f64 * 1.25,
    );
    let y_max = rows.iter().map(|r| r.wall_ms.max).fold(1.0, f64::max) * 2.0;
    let y_min = rows
        .iter()
        .map(|r| r.wall_ms.min)
        .fold(f64::MAX, f64::min)
        .max(0.1)
        / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Aggregate load, wall time on DynamoDB Local (median, min–max)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("events in the history")
        .y_desc("ms")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let series = [
        (PRODUCT, SNAPSHOT, RGBColor(0, 114, 178)),
        (PRODUCT, SNAPSHOT_UNITS, RGBColor(0, 158, 115)),
        (PRODUCT, REPLAY, RGBColor(86, 180, 233)),
        (PEER, SNAPSHOT, RGBColor(213, 94, 0)),
        (PEER, REPLAY, RGBColor(230, 159, 0)),
    ];
    for (store, load, color) in series {
        let points: Vec<&LoadRow> = sizes
            .iter()
            .filter_map(|n| load_of(rows, *n, store, load))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|r| (r.events as f64, r.wall_ms.median)),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label(format!("{store}: {load}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|r| {
                ErrorBar::new_vertical(
                    r.events as f64,
                    r.wall_ms.min,
                    r.wall_ms.median,
                    r.wall_ms.max,
                    color.filled(),
                    8,
                )
            }))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Plot: fold throughput per source, horizontal bars (median) with min–max whiskers.
pub fn plot_folds(rows: &[FoldRow], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let max = rows.iter().map(|r| r.meps.max).fold(1.0, f64::max) * 1.1;
    let n = rows.len() as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fold throughput, million events/s (median, min–max)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(20)
        .build_cartesian_2d(0.0..max, 0..n)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("M events/s")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, row) in rows.iter().enumerate() {
        let y = n - 1 - i as i32;
        let color = if row.aggregate == "INVENTORY_ITEM" {
            RGBColor(0, 114, 178)
        } else {
            RGBColor(0, 158, 115)
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y), (row.meps.median, y + 1)],
                color.mix(0.6).filled(),
            )))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!(
                    "{} from {}: {:.1}",
                    row.aggregate, row.from, row.meps.median
                ),
                (max * 0.01, y),
                ("sans-serif", 14),
            )))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(row.meps.min, y), (row.meps.max, y)],
                BLACK.stroke_width(2),
            )))
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
}

/// One target of the issue, as measured.
pub struct Target {
    pub name: String,
    pub goal: String,
    pub measured: String,
    /// `None`: met; otherwise by how much it was missed.
    pub missed_by: Option<String>,
}

fn verdict(t: &Target) -> String {
    t.missed_by
        .as_ref()
        .map_or_else(|| "met".to_owned(), |by| format!("**missed** by {by}"))
}

/// Our delayed loads, each with the peer's at the same size and added latency.
fn latency_pairs(rows: &[DelayedRow]) -> impl Iterator<Item = (&DelayedRow, &DelayedRow)> {
    latency_pairs_of(rows, SNAPSHOT)
}

/// Our delayed loads of mode `load`, each with the peer's at the same size and latency.
fn latency_pairs_of<'a>(
    rows: &'a [DelayedRow],
    load: &'a str,
) -> impl Iterator<Item = (&'a DelayedRow, &'a DelayedRow)> {
    rows.iter()
        .filter(move |d| d.row.store == PRODUCT && d.row.load == load)
        .filter_map(move |ours| {
            rows.iter()
                .find(|d| {
                    d.row.store == PEER
                        && d.delay_ms == ours.delay_ms
                        && d.row.events == ours.row.events
                })
                .map(|theirs| (ours, theirs))
        })
}

/// Snapshot + tail at `n` events against the peer. A round trip to DynamoDB costs the network
/// and the service's latency, which the bare loopback lacks, so the goal is judged on the loads
/// with latency added to every request: fewer sequential round trips and a faster load with
/// each added latency measured. The bare-loopback figure is reported as measured, with what
/// its loads read when it is behind.
fn snapshot_target(r: &Results, n: usize) -> Option<Target> {
    let ours = load_of(&r.loads, n, PRODUCT, SNAPSHOT)?;
    let peer = load_of(&r.loads, n, PEER, SNAPSHOT)?;
    let delayed: Vec<(&DelayedRow, &DelayedRow)> = latency_pairs(&r.delayed_loads)
        .filter(|(o, _)| o.row.events == n)
        .collect();
    let added: Vec<String> = delayed
        .iter()
        .map(|(o, _)| o.delay_ms.to_string())
        .collect();
    let mut missed = Vec::new();
    if ours.round_trips.median >= peer.round_trips.median {
        missed.push(format!(
            "{:.0} round trip(s)",
            ours.round_trips.median - peer.round_trips.median + 1.0
        ));
    }
    let mut measured = format!(
        "{:.0} vs {:.0} round trips",
        ours.round_trips.median, peer.round_trips.median
    );
    for (o, t) in &delayed {
        let (mine, theirs) = (o.row.wall_ms.median, t.row.wall_ms.median);
        let _ = write!(
            measured,
            "; with {} ms added per request: {mine:.1} ms vs {theirs:.1} ms",
            o.delay_ms
        );
        if mine >= theirs {
            missed.push(format!(
                "{:.1} ms with {} ms added",
                mine - theirs,
                o.delay_ms
            ));
        }
    }
    if delayed.is_empty() {
        missed.push("no load with latency added was measured".to_owned());
    }
    let (mine, theirs) = (ours.wall_ms.median, peer.wall_ms.median);
    let _ = write!(
        measured,
        "; bare loopback (reported, not judged): {mine:.1} ms vs {theirs:.1} ms"
    );
    if mine > theirs {
        let _ = write!(measured, ", behind by {:.1} ms", mine - theirs);
        let extra = ours.items.median - peer.items.median;
        if extra > 0.0 {
            let _ = write!(
                measured,
                ": on the bare loopback a Query's items cost more than a round trip, and this \
                 product's one-round-trip load reads the policy threshold + 1 newest events \
                 ({} items, {} KiB, {} read units) where the peer reads {} items ({} KiB, {} \
                 read units) in two round trips",
                ours.items.show(0),
                ours.kib.show(0),
                ours.read_units.show(1),
                peer.items.show(0),
                peer.kib.show(0),
                peer.read_units.show(1),
            );
            // What an item costs here, from this size's full replay (one Query page after
            // another, little else): the extra items at that rate, next to the gap.
            if let Some(replay) =
                load_of(&r.loads, n, PRODUCT, REPLAY).filter(|l| l.items.median > 0.0)
            {
                let per_item = replay.wall_ms.median / replay.items.median;
                let _ = write!(
                    measured,
                    "; at the {per_item:.3} ms per item of this size's full replay, its {extra:.0} \
                     more items take about {:.1} ms",
                    extra * per_item
                );
            }
        } else {
            measured.push_str(" (reading no more items than the peer)");
        }
    }
    Some(Target {
        name: format!("{SNAPSHOT}, {n} events: this product vs cqrs-es + dynamo-es"),
        goal: if added.is_empty() {
            "fewer sequential round trips, faster with latency added per request".to_owned()
        } else {
            format!(
                "fewer sequential round trips, faster with {} ms added per request",
                added.join(" and ")
            )
        },
        measured,
        missed_by: (!missed.is_empty()).then(|| missed.join(" and ")),
    })
}

/// Read units of a cold snapshot + tail load against the peer's: at most 1.2× in one round
/// trip, or in the documented fewest-read-units mode (then in two round trips, as the peer).
fn load_units_target(r: &Results, n: usize) -> Option<Target> {
    let one_trip = load_of(&r.loads, n, PRODUCT, SNAPSHOT)?;
    let by_units = load_of(&r.loads, n, PRODUCT, SNAPSHOT_UNITS)?;
    let peer = load_of(&r.loads, n, PEER, SNAPSHOT)?;
    let ratio = |row: &LoadRow| row.read_units.median / peer.read_units.median;
    let measured = format!(
        "one round trip (the default): {} read units, {:.2}× the peer's {}; fewest read units: \
         {} read units in {} round trips, {:.2}×",
        one_trip.read_units.show(1),
        ratio(one_trip),
        peer.read_units.show(1),
        by_units.read_units.show(1),
        by_units.round_trips.show(0),
        ratio(by_units),
    );
    let best = ratio(one_trip).min(ratio(by_units));
    Some(Target {
        name: format!("read units of a cold snapshot + tail load, {n} events"),
        goal: "≤ 1.2× the peer's, in one round trip or in a documented load mode".to_owned(),
        measured,
        missed_by: (best > 1.2).then(|| format!("{:.2}×", best - 1.2)),
    })
}

/// A scheduled retention run with nothing due costs the same at the smallest and the largest
/// table measured (±20 %).
fn retention_target(ret: &crate::retention::RetentionRow) -> Option<Target> {
    let small = ret.idle.iter().min_by_key(|i| i.snapshots)?;
    let large = ret.idle.iter().max_by_key(|i| i.snapshots)?;
    if small.snapshots == large.snapshots || small.read_units <= 0.0 {
        return None;
    }
    let ratio = large.read_units / small.read_units;
    Some(Target {
        name: "read units of a scheduled retention run with nothing due".to_owned(),
        goal: format!(
            "the same (±20 %) at {} and {} snapshots",
            small.snapshots, large.snapshots
        ),
        measured: format!(
            "{:.1} vs {:.1} read units ({} vs {} index entries read, key budget {}), {:.2}×",
            small.read_units,
            large.read_units,
            small.keys_read,
            large.keys_read,
            ret.keys_per_run,
            ratio
        ),
        missed_by: (!(0.8..=1.2).contains(&ratio))
            .then(|| format!("{:.0} %", (ratio - 1.0).abs() * 100.0 - 20.0)),
    })
}

/// The cost targets: a not-due record's read units whatever the state size, and the snapshot
/// service's share of the event writes' bill at the seed's scale.
fn cost_targets(r: &Results, cost: &crate::cost::CostRows) -> Vec<Target> {
    let mut out = Vec::new();
    if !cost.sizes.is_empty() {
        let worst = cost
            .sizes
            .iter()
            .map(|s| s.decide_after.max)
            .fold(0.0, f64::max);
        let each: Vec<String> = cost
            .sizes
            .iter()
            .map(|s| format!("{} at {} KB", s.decide_after.show(1), s.state_bytes / 1000))
            .collect();
        out.push(Target {
            name: "read units of a stream record that trips no policy (cold container)".to_owned(),
            goal: "≤ 0.5 whatever the state size; 0 on a warm container".to_owned(),
            measured: format!(
                "{} (before heads: {})",
                each.join(", "),
                cost.sizes
                    .iter()
                    .map(|s| s.decide_before.show(1))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            missed_by: (worst > 0.5).then(|| format!("{:.1} read units", worst - 0.5)),
        });
    }
    // The seed's own state sizes: INVENTORY_ITEM (about 1 KB) and the ~12 KB WAREHOUSE item;
    // the larger sizes of the section show how the bill grows with the state.
    let bills: Vec<crate::cost_model::Bill> = crate::cost_model::bills(
        cost,
        &r.loads,
        &r.warm_loads,
        r.retention.as_ref(),
        crate::cost_model::SEED,
    )
    .into_iter()
    .filter(|b| b.state_bytes <= 12_000)
    .collect();
    if !bills.is_empty() {
        let worst = bills
            .iter()
            .map(crate::cost_model::Bill::service_share)
            .fold(0.0, f64::max);
        out.push(Target {
            name: "the snapshot service's bill at the seed's scale (see Cost)".to_owned(),
            goal: "≤ 10 % of the event writes it serves (a write unit weighs five read units), \
                   every not-due record decided cold"
                .to_owned(),
            measured: bills
                .iter()
                .map(|b| {
                    format!(
                        "{:.1} % with {} KB states ({:.1} % with {:.0} % of not-due records \
                         decided warm)",
                        b.service_share() * 100.0,
                        b.state_bytes / 1000,
                        b.service_share_warm(crate::cost_model::WARM_SHARE) * 100.0,
                        crate::cost_model::WARM_SHARE * 100.0
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            missed_by: (worst > 0.10).then(|| format!("{:.1} points", (worst - 0.10) * 100.0)),
        });
    }
    out
}

/// Every target of the issue, checked against this run's medians.
pub fn targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let largest = r.loads.iter().map(|l| l.events).max().unwrap_or(0);
    let wall = |n, s, l| load_of(&r.loads, n, s, l).map(|x| x.wall_ms.median);
    if let (Some(replay), Some(snap)) = (
        wall(largest, PRODUCT, REPLAY),
        wall(largest, PRODUCT, SNAPSHOT),
    ) {
        let ratio = replay / snap;
        out.push(Target {
            name: format!("snapshot load of {largest} events vs full replay"),
            goal: "≥ 50× faster".to_owned(),
            measured: format!("{ratio:.0}× ({snap:.1} ms vs {replay:.1} ms)"),
            missed_by: (ratio < 50.0).then(|| format!("{:.0}×", 50.0 - ratio)),
        });
    }
    let snapshot_rows: Vec<&LoadRow> = r
        .loads
        .iter()
        .filter(|l| l.store == PRODUCT && l.load == SNAPSHOT)
        .collect();
    if !snapshot_rows.is_empty() {
        let worst = snapshot_rows
            .iter()
            .map(|l| l.round_trips.max)
            .fold(0.0, f64::max);
        let reported = snapshot_rows
            .iter()
            .filter_map(|l| l.reported_round_trips.map(|f| f.max))
            .fold(0.0, f64::max);
        out.push(Target {
            name: format!(
                "round trips of a load whose tail ({} events) is under the policy threshold",
                crate::load::TAIL
            ),
            goal: "1".to_owned(),
            measured: format!(
                "{worst:.0} on the wire, {reported:.0} in LoadReport.roundTrips (worst of every run and size)"
            ),
            missed_by: (worst > 1.0 || reported > 1.0)
                .then(|| format!("{:.0} round trip(s)", worst.max(reported) - 1.0)),
        });
    }
    if let Some(cost) = &r.cost {
        out.extend(cost_targets(r, cost));
    }
    if let Some(target) = r.retention.as_ref().and_then(retention_target) {
        out.push(target);
    }
    let mut sizes: Vec<usize> = r.loads.iter().map(|l| l.events).collect();
    sizes.dedup();
    for n in &sizes {
        if let Some(target) = snapshot_target(r, *n) {
            out.push(target);
        }
        if let Some(target) = load_units_target(r, *n) {
            out.push(target);
        }
        let (Some(ours), Some(peer)) = (
            load_of(&r.loads, *n, PRODUCT, REPLAY),
            load_of(&r.loads, *n, PEER, REPLAY),
        ) else {
            continue;
        };
        let mut missed = Vec::new();
        if ours.round_trips.median >= peer.round_trips.median {
            missed.push(format!(
                "{:.0} round trip(s)",
                ours.round_trips.median - peer.round_trips.median + 1.0
            ));
        }
        if ours.wall_ms.median > peer.wall_ms.median {
            missed.push(format!(
                "{:.1} ms",
                ours.wall_ms.median - peer.wall_ms.median
            ));
        }
        let mut measured = format!(
            "{:.0} vs {:.0} round trips; {:.1} ms vs {:.1} ms",
            ours.round_trips.median,
            peer.round_trips.median,
            ours.wall_ms.median,
            peer.wall_ms.median
        );
        if ours.wall_ms.median > peer.wall_ms.median {
            // Where the time went: with a request in flight (the engine, the loopback, the
            // SDK's reading) or outside the requests (item conversion, fold, checks).
            let _ = write!(
                measured,
                "; with a request in flight {:.1} ms vs {:.1} ms, outside requests {:.1} ms vs \
                 {:.1} ms",
                ours.in_flight_ms.median,
                peer.in_flight_ms.median,
                ours.outside_ms.median,
                peer.outside_ms.median
            );
        }
        out.push(Target {
            name: format!("{REPLAY}, {n} events: this product vs cqrs-es + dynamo-es"),
            goal: "fewer sequential round trips, wall no worse".to_owned(),
            measured,
            missed_by: (!missed.is_empty()).then(|| missed.join(" and ")),
        });
    }
    for row in r
        .folds
        .iter()
        .filter(|f| f.from == crate::inmem::FROM_ITEMS)
    {
        // The repository's load path, and the ceiling any fold from the SDK's attribute maps
        // has on this machine.
        let median = |from: &str| {
            r.folds
                .iter()
                .find(|f| f.aggregate == row.aggregate && f.from == from)
                .map(|f| f.meps.median)
        };
        let load_path = median(crate::inmem::FROM_ITEMS_DECODED).map_or_else(String::new, |m| {
            format!("; a repository load's path: {m:.1} M/s")
        });
        let ceiling = median(crate::inmem::ITEMS_VISITED).map_or_else(String::new, |m| {
            format!(" (visiting the items' attributes alone, nothing decoded: {m:.1} M/s)")
        });
        out.push(Target {
            name: format!("fold of {} from stored items", row.aggregate),
            goal: "≥ 20 M events/s".to_owned(),
            measured: format!("{:.1} M events/s{load_path}{ceiling}", row.meps.median),
            missed_by: (row.meps.median < 20.0)
                .then(|| format!("{:.1} M events/s", 20.0 - row.meps.median)),
        });
    }
    if let Some(row) = r.codec.iter().find(|c| c.label == "1 MB") {
        out.push(Target {
            name: "decode + verify of a 1 MB state".to_owned(),
            goal: "< 2 ms".to_owned(),
            measured: format!("{:.3} ms", row.decode_ms.median),
            missed_by: (row.decode_ms.median >= 2.0)
                .then(|| format!("{:.3} ms", row.decode_ms.median - 2.0)),
        });
    }
    for row in &r.binaries {
        out.push(Target {
            name: format!("{} release binary", row.function),
            goal: "< 10 MB (10,000,000 bytes)".to_owned(),
            measured: format!("{} bytes ({})", row.bytes, mib(row.bytes)),
            missed_by: (row.bytes >= BINARY_LIMIT)
                .then(|| format!("{:.2} MB", (row.bytes - BINARY_LIMIT) as f64 / 1_000_000.0)),
        });
    }
    for row in &r.binaries {
        out.push(Target {
            name: format!("{} cold start", row.function),
            goal: "< 50 ms".to_owned(),
            measured: row
                .cold_start_ms
                .map_or_else(|| row.outcome.clone(), |f| format!("{:.1} ms", f.median)),
            missed_by: match row.cold_start_ms {
                Some(f) if f.median < 50.0 => None,
                Some(f) => Some(format!("{:.1} ms", f.median - 50.0)),
                None => Some("no answer".to_owned()),
            },
        });
    }
    out
}

const BINARY_LIMIT: u64 = 10_000_000;

/// The snapshot + tail loads with latency added per request, both stores side by side.
fn delayed_loads(md: &mut String, rows: &[DelayedRow]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n### Snapshot + tail with network latency added\n\n\
         DynamoDB Local answers on the loopback, with no network between the client and the \
         engine; DynamoDB answers a Lambda function in single-digit milliseconds. These loads go \
         through an SDK HTTP client that waits a fixed time before sending each request \
         (tools/bench/src/latency.rs): requests sent together wait together, as on a network. \
         Same histories, same run, same checks of state and version; read and write units as \
         DynamoDB Local reports them.\n"
    );
    let _ = writeln!(
        md,
        "| events | added per request | this product wall ms | round trips | read units | write units | cqrs-es + dynamo-es wall ms | round trips | read units | write units | peer / ours |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (ours, theirs) in latency_pairs(rows) {
        let _ = writeln!(
            md,
            "| {} | {} ms | {} | {} | {} | {} | {} | {} | {} | {} | {:.2}× |",
            ours.row.events,
            ours.delay_ms,
            ours.row.wall_ms.show(1),
            ours.row.round_trips.show(0),
            ours.row.read_units.show(1),
            ours.row.write_units.show(1),
            theirs.row.wall_ms.show(1),
            theirs.row.round_trips.show(0),
            theirs.row.read_units.show(1),
            theirs.row.write_units.show(1),
            theirs.row.wall_ms.median / ours.row.wall_ms.median
        );
    }
}

/// One line of the load-modes table: added latency, then one round trip, fewest read units
/// and the peer's loads.
type ModeLine<'a> = (
    String,
    Option<&'a LoadRow>,
    Option<&'a LoadRow>,
    Option<&'a LoadRow>,
);

/// The two load modes side by side (docs/functions.md#load-modes), with the peer's units.
fn load_modes(md: &mut String, rows: &[LoadRow], delayed: &[DelayedRow]) {
    let mut sizes: Vec<usize> = rows
        .iter()
        .filter(|l| l.load == SNAPSHOT_UNITS)
        .map(|l| l.events)
        .collect();
    sizes.dedup();
    if sizes.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n### Load modes: one round trip or fewest read units\n\n\
         `LoadMode::OneRoundTrip` (the default) reads the newest snapshot and the policy \
         threshold + 1 newest events together, strongly consistent. \
         `LoadMode::FewestReadUnits` reads the newest snapshot (strongly consistent), then only \
         the events from its version on, eventually consistent. The same histories, same run; \
         wall time in ms.\n"
    );
    let _ = writeln!(
        md,
        "| events | added per request | one round trip: ms | round trips | items | read units | fewest read units: ms | round trips | items | read units | peer: ms | peer read units |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for n in sizes {
        let mut lines: Vec<ModeLine> = vec![(
            "0 ms".to_owned(),
            load_of(rows, n, PRODUCT, SNAPSHOT),
            load_of(rows, n, PRODUCT, SNAPSHOT_UNITS),
            load_of(rows, n, PEER, SNAPSHOT),
        )];
        let mut delays: Vec<u64> = delayed.iter().map(|d| d.delay_ms).collect();
        delays.sort_unstable();
        delays.dedup();
        for delay in delays {
            let find = |store: &str, load: &str| {
                delayed
                    .iter()
                    .find(|d| {
                        d.delay_ms == delay
                            && d.row.events == n
                            && d.row.store == store
                            && d.row.load == load
                    })
                    .map(|d| &d.row)
            };
            lines.push((
                format!("{delay} ms"),
                find(PRODUCT, SNAPSHOT),
                find(PRODUCT, SNAPSHOT_UNITS),
                find(PEER, SNAPSHOT),
            ));
        }
        for (added, one, units, peer) in lines {
            let (Some(one), Some(units), Some(peer)) = (one, units, peer) else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {n} | {added} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                one.wall_ms.show(1),
                one.round_trips.show(0),
                one.items.show(0),
                one.read_units.show(1),
                units.wall_ms.show(1),
                units.round_trips.show(0),
                units.items.show(0),
                units.read_units.show(1),
                peer.wall_ms.show(1),
                peer.read_units.show(1),
            );
        }
    }
}

pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `make bench` ({} runs per figure: median, with min–max in brackets; {}; \
         whole run {:.0} s). Release build, against {} for DynamoDB and DynamoDB Streams on \
         the loopback; moto serves KMS and S3 only.\n",
        r.runs, r.machine, r.took_s, r.engine
    );
    for note in &r.notes {
        let _ = writeln!(md, "- {note}");
    }

    let _ = writeln!(md, "\n## Targets\n");
    let _ = writeln!(
        md,
        "| target | goal | measured (median) | verdict |\n|---|---|---|---|"
    );
    for t in targets(r) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            t.name,
            t.goal,
            t.measured,
            verdict(&t)
        );
    }

    let _ = writeln!(
        md,
        "\n## Aggregate load: this product and cqrs-es + dynamo-es, same engine, same run\n"
    );
    let _ = writeln!(
        md,
        "A history of INVENTORY_ITEM events with a snapshot {} events before the end. \
         Full replay of this product: the same repository over a snapshot table with no \
         snapshot.\n",
        crate::load::TAIL
    );
    let _ = writeln!(md, "![load wall time](load_wall.svg)\n");
    let _ = writeln!(
        md,
        "| events | store | load | wall ms | requests | sequential round trips | LoadReport roundTrips / requests | items read | KiB read | read units | write units |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in &r.loads {
        let reported = match (row.reported_round_trips, row.reported_requests) {
            (Some(rt), Some(rq)) => format!("{} / {}", rt.show(0), rq.show(0)),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.events,
            row.store,
            row.load,
            row.wall_ms.show(1),
            row.requests.show(0),
            row.round_trips.show(0),
            reported,
            row.items.show(0),
            row.kib.show(0),
            row.read_units.show(1),
            row.write_units.show(1),
        );
    }
    let _ = writeln!(md, "\nRatios (medians):\n");
    let mut sizes: Vec<usize> = r.loads.iter().map(|l| l.events).collect();
    sizes.dedup();
    for n in sizes {
        let get = |s, l| load_of(&r.loads, n, s, l).map(|x| x.wall_ms.median);
        if let (Some(replay), Some(snap), Some(peer_snap), Some(peer_replay)) = (
            get(PRODUCT, REPLAY),
            get(PRODUCT, SNAPSHOT),
            get(PEER, SNAPSHOT),
            get(PEER, REPLAY),
        ) {
            let _ = writeln!(
                md,
                "- {n} events: snapshot + tail is {:.0}× faster than our full replay and {:.0}× faster than the peer's paginated replay; the peer's snapshot load takes {:.2}× our time.",
                replay / snap,
                peer_replay / snap,
                peer_snap / snap
            );
        }
    }

    delayed_loads(&mut md, &r.delayed_loads);
    load_modes(&mut md, &r.loads, &r.delayed_loads);
    crate::warm::markdown(&mut md, &r.warm_loads);

    let _ = writeln!(md, "\n## Fold from stored items\n");
    let _ = writeln!(
        md,
        "{} events per run folded into the state from each source; the typed fold is the \
         reference. The stored items are DynamoDB attribute maps as the SDK hands them over, \
         in pages of {} items (about 1 MiB, a Query page); each page is built just before it \
         is folded, as in a load, and only the fold is timed. *{}* is the fold from a Query's \
         items in one pass (attribute maps → typed events → state, every check of a load); \
         *{}* is what `AggregateRepository::load` does with them (the DynamoDB adapter's \
         `read_decoded`: each item decoded in place into its typed event, kept with its \
         sequence and `eventId` for the snapshot walk, then folded; no JSON value per event); \
         *{}* is the type-agnostic ports' path (`load_kind`, the admin API and the \
         snapshotter); *{}* is the ceiling of any fold from these maps: it only visits every \
         attribute (each key and value is a separate heap allocation), decoding and folding \
         nothing.\n",
        crate::inmem::FOLD_EVENTS,
        crate::inmem::PAGE_ITEMS,
        crate::inmem::FROM_ITEMS,
        crate::inmem::FROM_ITEMS_DECODED,
        crate::inmem::FROM_ITEMS_VIA_ENVELOPES,
        crate::inmem::ITEMS_VISITED,
    );
    let _ = writeln!(md, "![fold throughput](fold.svg)\n");
    let _ = writeln!(md, "| aggregate | from | M events/s |\n|---|---|---:|");
    for row in &r.folds {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            row.aggregate,
            row.from,
            row.meps.show(1)
        );
    }

    let _ = writeln!(md, "\n## Snapshot codec (WAREHOUSE states)\n");
    let _ = writeln!(
        md,
        "Encode: `build_snapshot` (checksum, zstd above 8 KiB, MAC). Decode + verify: \
         `open_snapshot` (MAC, identity, decompression into the declared size, SHA-256 \
         checksum), what every reader does before it uses a snapshot. From 256 KiB up, and \
         where two cores are available, the checksum is computed on a second thread piece by \
         piece while the state is decompressed (SHA-256 and zstd cost about the same per \
         byte).\n"
    );
    let _ = writeln!(md, "| state | JSON bytes | stored bytes | compression ratio | encode ms | decode + verify ms |\n|---|---:|---:|---:|---:|---:|");
    for row in &r.codec {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}× | {} | {} |",
            row.label,
            row.json_bytes,
            row.stored_bytes,
            row.json_bytes as f64 / row.stored_bytes.max(1) as f64,
            row.encode_ms.show(3),
            row.decode_ms.show(3)
        );
    }

    let _ = writeln!(
        md,
        "\n## Snapshotter (one stream batch of {} records over {} aggregates per scenario)\n",
        crate::stream::AGGREGATES,
        crate::stream::AGGREGATES
    );
    let _ = writeln!(
        md,
        "Each batch goes through the snapshotter library (the code of the function's \
         bootstrap) with its stores on the counted client. Read and write units are as \
         DynamoDB Local reports them, per stream record processed (every batch has {} \
         records) and per snapshot written.\n",
        crate::stream::AGGREGATES
    );
    let _ = writeln!(md, "| scenario | snapshots per batch | DynamoDB requests per snapshot | requests per batch by operation | read units per record | write units per record | read units per snapshot | write units per snapshot | wall ms | records/s (one shard) |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for row in &r.stream {
        let ops: Vec<String> = row
            .by_operation
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        let per_snapshot = |f: fn(&crate::wire::Units) -> f64| {
            row.units_per_snapshot
                .as_ref()
                .map_or("-".to_owned(), |u| format!("{:.2}", f(u)))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {} |",
            row.scenario,
            row.snapshots,
            row.requests_per_snapshot
                .map_or("-".to_owned(), |v| format!("{v:.2}")),
            if ops.is_empty() {
                "-".to_owned()
            } else {
                ops.join(", ")
            },
            row.units_per_record.read,
            row.units_per_record.write,
            per_snapshot(|u| u.read),
            per_snapshot(|u| u.write),
            row.wall_ms.show(1),
            row.records_per_second.show(0)
        );
    }
    if let Some(slowest) = r
        .stream
        .iter()
        .filter(|s| s.snapshots > 0)
        .map(|s| s.records_per_second.median)
        .reduce(f64::min)
    {
        let factor = r.parallelization_factor;
        let _ = writeln!(
            md,
            "\nThroughput: one shard sustains about {slowest:.0} records/s when every record \
             makes a snapshot (the slowest scenario above, batches of 100 aggregates, 16 at a \
             time), more when few do. The template's stream trigger has ParallelizationFactor \
             {factor}{}: {} batch(es) of a shard in flight, so about {:.0} records/s per shard; \
             Lambda allows up to 10, for up to about {:.0} records/s per shard. Measured on \
             DynamoDB Local, which shares this machine's cores with the bench and has no \
             network in between; on DynamoDB each request waits for the network instead.",
            if factor == 1 {
                " (not set: Lambda's default)"
            } else {
                ""
            },
            factor,
            slowest * f64::from(factor),
            slowest * 10.0
        );
    }
    if let Some(ret) = &r.retention {
        let _ = writeln!(md, "\n## Retention\n");
        let _ = writeln!(
            md,
            "A scheduled pruner run with nothing due (3 snapshots an aggregate, keep 3), reading \
             at most {} keys of the retention index a run and resuming where the last run \
             stopped (median of three consecutive runs). Read units as DynamoDB bills an index \
             read, by its entries; DynamoDB Local reports the base items' sizes for it (shown \
             apart). Write units: the saved scan positions.\n",
            ret.keys_per_run
        );
        let _ = writeln!(md, "| snapshots | keys read | requests | read units (index entries) | read units (as the engine reports) | write units |\n|---:|---:|---:|---:|---:|---:|");
        for run in &ret.idle {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                run.snapshots,
                run.keys_read,
                run.requests,
                run.read_units,
                run.engine_read_units,
                run.write_units
            );
        }
        let _ = writeln!(md, "\nUnits per deleted snapshot (small states):\n\n| path | deleted | read units per deleted | write units per deleted (all) | write units per deleted (retention's own) |\n|---|---:|---:|---:|---:|");
        for row in &ret.per_deleted {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} |",
                row.path,
                row.deleted,
                row.read_per_deleted,
                row.write_per_deleted,
                row.delete_write_per_deleted
            );
        }
    }
    let _ = writeln!(md, "\n## Pruner\n");
    if let Some(p) = &r.prune {
        let _ = writeln!(
            md,
            "{} snapshots ({} per aggregate, keep {}), {} scan segments, a fresh table per run \
             with the same items: a dry run (the whole table read and decided, nothing deleted) \
             then the real run (end to end), scanning the keys-only `retention` index. Read \
             units are as DynamoDB bills an index read, by the entries it returns (DynamoDB \
             Local reports the base items' sizes for an index read: its figure is in brackets); \
             write units as DynamoDB Local reports them; per run and per snapshot deleted.\n",
            p.snapshots,
            crate::prune::PER_AGGREGATE,
            crate::prune::KEEP,
            p.segments,
        );
        let _ = writeln!(md, "| run | items scanned | snapshots deleted | requests per run by operation | read units per run | write units per run | read units per deleted item | write units per deleted item | items/s |\n|---|---:|---:|---|---:|---:|---:|---:|---:|");
        for (label, run, rate) in [
            ("dry run", &p.dry, "scanned"),
            ("real run", &p.real, "deleted"),
        ] {
            let ops: Vec<String> = run
                .by_operation
                .iter()
                .map(|(op, n)| format!("{op} {n}"))
                .collect();
            let per_deleted = |units| {
                run.per_deleted(units)
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
            };
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} ({}) | {} | {} | {} | {} {rate} |",
                run.scanned,
                if run.dry_run {
                    format!("0 ({} due)", run.deleted)
                } else {
                    run.deleted.to_string()
                },
                ops.join(", "),
                run.billed_read_units.show(1),
                run.read_units.show(1),
                run.write_units.show(1),
                per_deleted(&run.billed_read_units),
                per_deleted(&run.write_units),
                run.per_second.show(0),
            );
        }
    }
    if let Some(cost) = &r.cost {
        let bills = crate::cost_model::bills(
            cost,
            &r.loads,
            &r.warm_loads,
            r.retention.as_ref(),
            crate::cost_model::SEED,
        );
        crate::cost_model::markdown(&mut md, cost, &bills, crate::cost_model::SEED);
    }

    let _ = writeln!(md, "\n## Functions: release binary and cold start\n");
    let _ = writeln!(
        md,
        "Each function's `bootstrap` from `make build` (x86_64), started {} times with the \
         environment the template gives it, pointed at the local services, under a local Lambda \
         Runtime API serving one sample event of `events/`: cold start is process start to \
         the function's answer to that first invocation (its init, including the KMS Decrypt \
         of the snapshot MAC key, and the handling of the event).\n",
        r.runs
    );
    let _ = writeln!(md, "| function | bootstrap | cold start ms | sample event | first answer |\n|---|---:|---:|---|---|");
    for row in &r.binaries {
        let _ = writeln!(
            md,
            "| {} | {} bytes ({}) | {} | `{}` | {} |",
            row.function,
            row.bytes,
            mib(row.bytes),
            row.cold_start_ms
                .map_or_else(|| "-".to_owned(), |f| f.show(1)),
            row.event,
            row.outcome
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Figure;

    fn fixed(value: f64) -> Figure {
        Figure::of(vec![value])
    }

    fn row(events: usize, store: &'static str, load: &'static str, wall: f64) -> LoadRow {
        let (round_trips, items) = match (store, load) {
            (PRODUCT, SNAPSHOT) => (1.0, 102.0),
            (PEER, SNAPSHOT) => (2.0, 51.0),
            _ => (3.0, events as f64),
        };
        LoadRow {
            events,
            store,
            load,
            wall_ms: fixed(wall),
            requests: fixed(2.0),
            round_trips: fixed(round_trips),
            items: fixed(items),
            kib: fixed(items * 0.27),
            read_units: fixed(items / 17.0),
            write_units: fixed(0.0),
            in_flight_ms: fixed(wall),
            deserialize_ms: fixed(0.0),
            requests_ms: fixed(wall),
            outside_ms: fixed(0.0),
            reported_round_trips: None,
            reported_requests: None,
        }
    }

    /// One size: our and the peer's snapshot loads on the bare loopback, our replay, and the
    /// loads with 2 and 5 ms added (ours, theirs).
    fn results(bare: (f64, f64), added_2: (f64, f64), added_5: (f64, f64)) -> Results {
        let n = 1000;
        let delayed = |delay_ms, store, wall| DelayedRow {
            delay_ms,
            row: row(n, store, SNAPSHOT, wall),
        };
        Results {
            runs: 1,
            machine: String::new(),
            engine: "DynamoDB Local x".to_owned(),
            took_s: 0.0,
            loads: vec![
                row(n, PRODUCT, REPLAY, 40.0),
                row(n, PRODUCT, SNAPSHOT, bare.0),
                row(n, PEER, SNAPSHOT, bare.1),
            ],
            delayed_loads: vec![
                delayed(2, PRODUCT, added_2.0),
                delayed(2, PEER, added_2.1),
                delayed(5, PRODUCT, added_5.0),
                delayed(5, PEER, added_5.1),
            ],
            warm_loads: Vec::new(),
            folds: Vec::new(),
            codec: Vec::new(),
            stream: Vec::new(),
            prune: None,
            cost: None,
            retention: None,
            binaries: Vec::new(),
            parallelization_factor: 1,
            notes: Vec::new(),
        }
    }

    fn snapshot(r: &Results) -> Target {
        snapshot_target(r, 1000).unwrap_or_else(|| panic!("no snapshot target"))
    }

    #[test]
    fn snapshot_target_is_judged_with_latency_added_and_reports_the_bare_loopback() {
        let t = snapshot(&results((6.0, 4.0), (8.0, 9.0), (11.0, 15.0)));
        assert!(t.missed_by.is_none(), "{:?}", t.missed_by);
        assert_eq!(
            t.goal,
            "fewer sequential round trips, faster with 2 and 5 ms added per request"
        );
        assert!(t
            .measured
            .contains("with 2 ms added per request: 8.0 ms vs 9.0 ms"));
        // Behind on the bare loopback: said, with the reason from the measured items and
        // the replay's cost per item (40 ms / 1000 items; 51 more items).
        assert!(t.measured.contains("6.0 ms vs 4.0 ms, behind by 2.0 ms"));
        assert!(t.measured.contains("(102 items, 28 KiB, 6.0 read units)"));
        assert!(t.measured.contains("the peer reads 51 items"));
        assert!(t.measured.contains("at the 0.040 ms per item"));
        assert!(t.measured.contains("its 51 more items take about 2.0 ms"));
    }

    #[test]
    fn snapshot_target_is_missed_when_any_added_latency_is_not_ahead() {
        let t = snapshot(&results((3.0, 4.0), (9.5, 9.0), (11.0, 15.0)));
        assert_eq!(t.missed_by.as_deref(), Some("0.5 ms with 2 ms added"));
        // Ahead on the bare loopback: no reason to give.
        assert!(t
            .measured
            .ends_with("bare loopback (reported, not judged): 3.0 ms vs 4.0 ms"));
    }

    #[test]
    fn snapshot_target_without_latency_loads_is_not_met() {
        let mut r = results((3.0, 4.0), (1.0, 2.0), (1.0, 2.0));
        r.delayed_loads.clear();
        let t = snapshot(&r);
        assert_eq!(
            t.missed_by.as_deref(),
            Some("no load with latency added was measured")
        );
    }
}
