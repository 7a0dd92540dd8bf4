//! `make bench`: the performance figures of README's Performance section, written to
//! docs/bench/ (README.md with the tables, SVG plots). Needs DynamoDB Local
//! (`AWS_ENDPOINT_URL_DYNAMODB`) and moto for KMS (`AWS_ENDPOINT_URL_KMS`), as `scripts/bench.sh`
//! starts them, and the release bootstraps of `make build`.
//!
//! Env: BENCH_RUNS (default 5) runs per figure; BENCH_SIZES (default 1000,10000,50000)
//! history sizes; BENCH_PRUNE_SNAPSHOTS (default 5000); BENCH_OUT (default docs/bench);
//! BENCH_ONLY (e.g. `load` or `fold,codec`: only those sections of fold, codec, load, warm,
//! snapshotter, pruner, retention, cost, binaries run, their figures go to stderr and docs/bench is not written;
//! fold and codec alone run in memory, without DynamoDB Local).

mod binaries;
mod cost;
mod cost_model;
mod inmem;
mod latency;
mod load;
mod peer;
mod prune;
mod report;
mod retention;
mod seed;
mod stats;
mod stream;
mod warm;
mod warm_up;
mod wire;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use aws_config::BehaviorVersion;
use snapshot_dynamo::schema;

use crate::report::Results;
use crate::wire::Wire;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        _ => Ok(default),
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {cpu}")
}

fn cold_tables(suffix: &str) -> (String, String) {
    (
        format!("bench_cold_events_{suffix}"),
        format!("bench_cold_snapshots_{suffix}"),
    )
}

/// What a function's environment holds in the template, pointed at the local services: its
/// tables (created here), a snapshot MAC key made in moto's KMS (decrypted by each function
/// at cold start, as in AWS), the admin API's issuer settings and an IAM admin principal
/// matching the sample request of `events/admin-api/list.json`.
async fn cold_start_env(
    sdk: &aws_config::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
    suffix: &str,
) -> Result<Vec<(String, String)>> {
    let (events, snapshots) = cold_tables(suffix);
    schema::create_events_table(dynamodb, &events).await?;
    schema::create_snapshots_table(dynamodb, &snapshots).await?;
    let kms = aws_sdk_kms::Client::new(sdk);
    let (kms_key, encrypted, _) = snapshot_kms::set_up_keys(&kms, "bench-1")
        .await
        .context("snapshot MAC key in moto's KMS")?;
    let fixed = [
        ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("JWT_ISSUER", "https://issuer.bench.invalid"),
        ("JWT_AUDIENCE", "bench"),
        (
            "ADMIN_PRINCIPALS",
            "arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/*",
        ),
    ];
    let mut env: Vec<(String, String)> = fixed
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.extend([
        ("EVENTS_TABLE".to_owned(), events),
        ("SNAPSHOTS_TABLE".to_owned(), snapshots),
        (snapshot_kms::KEYS_VARIABLE.to_owned(), encrypted.to_entry()),
        (snapshot_kms::KMS_KEY_VARIABLE.to_owned(), kms_key),
    ]);
    env.extend(
        [
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
            "AWS_ENDPOINT_URL_KMS",
            "AWS_ENDPOINT_URL_S3",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v))),
    );
    Ok(env)
}

/// Each function's release binary and its cold starts, against tables and a KMS key made for
/// them (deleted afterwards).
async fn binaries_and_cold_starts(
    root: &std::path::Path,
    sdk: &aws_config::SdkConfig,
    plain: &aws_sdk_dynamodb::Client,
    suffix: &str,
    runs: usize,
) -> Result<Vec<binaries::BinaryRow>> {
    let env = cold_start_env(sdk, plain, suffix).await?;
    let binaries = binaries::run(root, &env, runs).await?;
    let (cold_events, cold_snapshots) = cold_tables(suffix);
    for table in [cold_events, cold_snapshots] {
        let _ = plain.delete_table().table_name(table).send().await;
    }
    Ok(binaries)
}

/// BENCH_ONLY: the sections to run (all when unset).
struct Only(Option<Vec<String>>);

impl Only {
    const SECTIONS: [&'static str; 9] = [
        "fold",
        "codec",
        "load",
        "warm",
        "snapshotter",
        "pruner",
        "retention",
        "cost",
        "binaries",
    ];

    fn from_env() -> Result<Self> {
        let Some(value) = std::env::var("BENCH_ONLY")
            .ok()
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(Self(None));
        };
        let sections: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
        if let Some(unknown) = sections
            .iter()
            .find(|s| !Self::SECTIONS.contains(&s.as_str()))
        {
            bail!(
                "BENCH_ONLY: unknown section {unknown:?} (sections: {})",
                Self::SECTIONS.join(", ")
            );
        }
        Ok(Self(Some(sections)))
    }

    /// Only sections that need no local AWS services.
    fn in_memory(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|sections| sections.iter().all(|s| s == "fold" || s == "codec"))
    }

    fn runs(&self, section: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|sections| sections.iter().any(|s| s == section))
    }
}

/// Latency added to every request of the extra snapshot + tail loads (tools/bench/src/latency.rs):
/// DynamoDB answers in single-digit milliseconds; these bracket a fast and a typical request.
const ADDED_LATENCY_MS: [u64; 2] = [2, 5];

/// The stream trigger's `ParallelizationFactor` in template.yaml (Lambda's default is 1).
fn parallelization_factor(root: &std::path::Path) -> u32 {
    std::fs::read_to_string(root.join("template.yaml"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("ParallelizationFactor:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// The engine measured, named with the version that instance printed at start-up (passed by
/// scripts/bench.sh as DYNAMODB_LOCAL_VERSION); never a version this run did not see.
fn engine() -> String {
    match std::env::var("DYNAMODB_LOCAL_VERSION") {
        Ok(version) if !version.trim().is_empty() => format!("DynamoDB Local {}", version.trim()),
        _ => "DynamoDB Local (version unknown: run through `make bench`, which reads it from \
              the engine's start-up log)"
            .to_owned(),
    }
}

/// The report's notes: how and on what it measured, with what the loads showed of the engine.
fn notes(engine: &str, warmed: &warm_up::WarmUp, loads: &[load::LoadRow]) -> Vec<String> {
    let mut notes = vec![
        format!(
            "DynamoDB and DynamoDB Streams are {engine}, AWS's DynamoDB engine for local use, a \
             fresh in-memory instance for this run (scripts/dynamodb-local.sh), on the loopback \
             of this machine; both stores are measured on it in the same run. moto serves KMS \
             and S3 only (the snapshot MAC key the functions decrypt at cold start) and serves \
             no measured request."
        ),
        format!(
            "DynamoDB Local runs on a JVM, which serves a request kind slowly until its JIT has \
             compiled it, so before any section the bench sends it {} requests of the kinds the \
             sections measure ({:.1} s; a newest-first 101-item Query took {:.2} ms in the \
             first rounds and {:.2} ms in the last, medians of ten), and each section runs \
             untimed rounds of its own before it measures. The event tables measured have \
             their stream turned off: nothing here reads them, and DynamoDB Local keeps every \
             stream record it writes, even after the table is deleted, and serves every later \
             request more slowly the more it keeps.",
            warmed.requests,
            warmed.took.as_secs_f64(),
            warmed.tail_query_first_ms,
            warmed.tail_query_last_ms
        ),
    ];
    // Whether the engine served this product's two concurrent reads side by side: their
    // spans summed against the time with a request in flight, at the largest size.
    if let Some(row) = loads
        .iter()
        .filter(|l| l.store == load::PRODUCT && l.load == load::SNAPSHOT)
        .max_by_key(|l| l.events)
    {
        let (summed, in_flight) = (row.requests_ms.median, row.in_flight_ms.median);
        let served = if summed > in_flight * 1.1 {
            "side by side"
        } else {
            "about one after the other"
        };
        // The sizes at which the peer's two-round-trip load beat this product's one on the
        // bare loopback (medians), to say so or not.
        let wall = |events: usize, store: &str| {
            loads
                .iter()
                .find(|l| l.events == events && l.store == store && l.load == load::SNAPSHOT)
                .map(|l| l.wall_ms.median)
        };
        let behind: Vec<String> = loads
            .iter()
            .filter(|l| l.store == load::PRODUCT && l.load == load::SNAPSHOT)
            .filter(|l| matches!(wall(l.events, load::PEER), Some(peer) if l.wall_ms.median > peer))
            .map(|l| l.events.to_string())
            .collect();
        let loopback = if behind.is_empty() {
            "On the bare loopback this product's one round trip came out ahead at every size, \
             though"
                .to_owned()
        } else {
            format!(
                "On the bare loopback a round trip costs little, so what a load reads weighs \
                 more than how many round trips it takes (the peer's load was faster there at \
                 {} events), since",
                behind.join(", ")
            )
        };
        notes.push(format!(
            "This product's load sends its snapshot read and its tail read together; at {} \
             events {engine} served them {served}: {summed:.1} ms of request time summed within \
             {in_flight:.1} ms with a request in flight (medians). {loopback} the newest-first \
             tail read returns the policy threshold + 1 events (101, what one round trip needs \
             whenever fewer than the threshold follow the snapshot) where the peer, which reads \
             the snapshot's version first, returns exactly the 50 after it. A Lambda function \
             meets DynamoDB's latency on every round trip: the section *Snapshot + tail with \
             network latency added* loads the same histories again with {} ms added to every \
             request.",
            row.events,
            ADDED_LATENCY_MS.map(|ms| ms.to_string()).join(" and ")
        ));
    }
    notes.extend([
        "The peer is the real cqrs-es 0.5 + dynamo-es 0.5 from crates.io on our \
         aws-sdk-dynamodb: its snapshot load is \
         `PersistedEventStore::new_snapshot_store(..).load_aggregate` (the snapshot Query, \
         then a Query of the events after it), its full replay dynamo-es's paginated \
         `stream_events` (pages of 200). Its tables follow dynamo-es's schema; its aggregate \
         folds the same INVENTORY_ITEM events with the same `apply` (tools/bench/src/peer.rs). \
         dynamo-es reads the events after its snapshot eventually consistent (half the read \
         units of a strongly consistent read); all its other reads, and all of this \
         product's, are strongly consistent."
            .to_owned(),
        "Requests, items, bytes and consumed capacity are counted on the wire by an SDK \
         interceptor, which asks every operation that can report consumed capacity (GetItem, \
         Query, Scan, BatchGetItem, TransactGetItems, PutItem, UpdateItem, DeleteItem, \
         BatchWriteItem, TransactWriteItems) for ReturnConsumedCapacity=TOTAL; sequential \
         round trips are the longest chain of requests each sent after the previous one was \
         answered. Every load's state and version are checked against the expected fold. \
         DynamoDB Local computes capacity by size as DynamoDB bills it (a read unit per 4 KB \
         a strongly consistent read returns, half for an eventually consistent one; a write \
         unit per 1 KB of the larger of the old and the new item; twice that in a \
         transaction) and reports it as one CapacityUnits figure per table, without a split \
         into read and write units: the interceptor counts a read's as read units and a \
         write's as write units. A request that fails (a conditional write whose condition \
         does not hold) reports none, though DynamoDB bills it, and a Query that finds nothing \
         reports none either (the snapshotter's read of an aggregate without a snapshot, in \
         its *new* scenario)."
            .to_owned(),
        "The bench's own requests (both stores, the snapshotter and the pruner libraries) run \
         on one thread, a current-thread runtime, as a Lambda function of up to 1,769 MB has \
         one vCPU; DynamoDB Local runs in a process of its own beside it."
            .to_owned(),
        "Seeding the histories (BatchWriteItem, not measured) is part of the whole-run time."
            .to_owned(),
    ]);
    notes
}

// One thread for the bench's own requests, as a Lambda function of up to 1,769 MB has one
// vCPU. On this two-core machine a second worker let the OS preempt a load's thread between
// the two reads it sends together, long enough for DynamoDB Local (on the other core) to
// answer the first before the second was even built: the load then showed two sequential
// round trips on the wire in about one run in fifteen. With one thread, both requests are
// handed to their connections before the load yields, whatever the OS does next.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let started = Instant::now();
    let only = Only::from_env()?;
    if only.in_memory() {
        return in_memory(&only, started);
    }
    let Some(endpoint) = snapshot_dynamo::Endpoints::from_env()?
        .for_service("DynamoDB")
        .map(str::to_owned)
    else {
        bail!("the bench needs a local DynamoDB (DynamoDB Local): run it with `make bench`");
    };
    let runs: usize = env_or("BENCH_RUNS", 5)?;
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "1000,10000,50000".to_owned())
        .split(',')
        .map(|s| s.trim().parse().context("BENCH_SIZES"))
        .collect::<Result<_>>()?;
    let prune_snapshots: u64 = env_or("BENCH_PRUNE_SNAPSHOTS", 5000)?;
    let root = std::env::current_dir()?;
    let out = root.join(std::env::var("BENCH_OUT").unwrap_or_else(|_| "docs/bench".to_owned()));
    std::fs::create_dir_all(&out)?;

    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let plain = aws_sdk_dynamodb::Client::new(&sdk);
    let wire = Wire::default();
    let counted = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(wire.clone())
            .build(),
    );
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let engine = engine();
    eprintln!("bench: {runs} runs per figure against {engine} at {endpoint}");

    let section =
        |name: &str| eprintln!("bench: {name} ({:.0} s)", started.elapsed().as_secs_f64());
    section("DynamoDB Local warm-up");
    let warmed = warm_up::engine(&plain, &suffix).await?;
    eprintln!(
        "bench: warm-up: {} requests in {:.1} s; the 101-item Query took {:.2} ms at first, \
         {:.2} ms at the end (medians of ten)",
        warmed.requests,
        warmed.took.as_secs_f64(),
        warmed.tail_query_first_ms,
        warmed.tail_query_last_ms
    );
    let mut folds = Vec::new();
    if only.runs("fold") {
        section("fold throughput");
        folds = inmem::fold_throughput(runs)?;
    }
    let mut codec = Vec::new();
    if only.runs("codec") {
        section("codec");
        codec = inmem::codec(runs)?;
    }
    let delayed: Vec<(u64, aws_sdk_dynamodb::Client)> = ADDED_LATENCY_MS
        .iter()
        .map(|&ms| {
            let delay = std::time::Duration::from_millis(ms);
            (ms, latency::delayed_client(&sdk, &wire, delay))
        })
        .collect();
    let mut loads = load::Loads::default();
    if only.runs("load") {
        section("aggregate loads");
        loads = load::run(&plain, &counted, &delayed, &wire, &suffix, &sizes, runs).await?;
    }
    let mut warm_loads = Vec::new();
    if only.runs("warm") {
        section("warm loads");
        warm_loads = warm::run(&plain, &counted, &delayed, &wire, &suffix, runs).await?;
    }
    let mut stream = Vec::new();
    if only.runs("snapshotter") {
        section("snapshotter");
        stream = stream::run(&plain, &counted, &wire, &suffix, runs).await?;
    }
    let mut prune = None;
    if only.runs("pruner") {
        section("pruner");
        prune = Some(prune::run(&plain, &counted, &wire, &suffix, prune_snapshots, runs).await?);
    }
    let mut retention = None;
    if only.runs("retention") {
        section("retention");
        let keys: usize = env_or("BENCH_RETENTION_KEYS", 250)?;
        retention = Some(retention::run(&plain, &counted, &wire, &suffix, keys).await?);
    }
    let mut cost = None;
    if only.runs("cost") {
        section("cost");
        let rows = cost::run(&plain, &counted, &wire, &suffix, runs).await?;
        eprintln!(
            "bench: cost: an event appended alone {:.1} write units, a boundary read {:.1} read units",
            rows.append_per_event, rows.boundary_read
        );
        for s in &rows.sizes {
            eprintln!(
                "bench: cost {:>7} B state: not-due before heads {} read units, with heads {}; \
                 put {:.1} write units, delete {:.1} write units",
                s.state_bytes, s.decide_before, s.decide_after, s.put.write, s.delete.write
            );
        }
        for b in cost_model::bills(
            &rows,
            &loads.rows,
            &warm_loads,
            retention.as_ref(),
            cost_model::SEED,
        ) {
            eprintln!(
                "bench: cost model {} B state: events ${:.2}/month, snapshotter ${:.2}, retention \
                 ${:.2}: the service is {:.1} % of the event writes; loads ${:.2} (one round trip) \
                 or ${:.2} (fewest read units)",
                b.state_bytes,
                b.events.dollars_a_month(),
                b.snapshotter.dollars_a_month(),
                b.retention.dollars_a_month(),
                b.service_share() * 100.0,
                b.loads_one_trip.dollars_a_month(),
                b.loads_fewest_units.dollars_a_month()
            );
        }
        cost = Some(rows);
    }
    let mut binaries = Vec::new();
    if only.runs("binaries") {
        section("binaries and cold starts");
        binaries = binaries_and_cold_starts(&root, &sdk, &plain, &suffix, runs).await?;
    }
    if let Some(sections) = &only.0 {
        print_in_memory(&folds, &codec);
        eprintln!(
            "bench: BENCH_ONLY={}: a partial run in {:.0} s; {} not written",
            sections.join(","),
            started.elapsed().as_secs_f64(),
            out.display()
        );
        return Ok(());
    }

    let notes = notes(&engine, &warmed, &loads.rows);
    let took_s = started.elapsed().as_secs_f64();
    let results = Results {
        runs,
        machine: machine(),
        engine,
        took_s,
        loads: loads.rows,
        delayed_loads: loads.delayed,
        warm_loads,
        folds,
        codec,
        stream,
        prune,
        cost,
        retention,
        binaries,
        parallelization_factor: parallelization_factor(&root),
        notes,
    };
    report::plot_loads(&results.loads, &out.join("load_wall.svg"))?;
    report::plot_folds(&results.folds, &out.join("fold.svg"))?;
    if let Some(cost) = &results.cost {
        cost_model::plot_not_due(cost, &out.join("cost_not_due.svg"))?;
    }
    let path: PathBuf = out.join("README.md");
    std::fs::write(&path, report::markdown(&results))?;
    for t in report::targets(&results) {
        eprintln!(
            "bench: target {}: {} (goal {}): {}",
            t.name,
            t.measured,
            t.goal,
            t.missed_by
                .map_or_else(|| "met".to_owned(), |by| format!("MISSED by {by}"))
        );
    }
    eprintln!("bench: wrote {} in {took_s:.0} s", path.display());
    Ok(())
}

/// The in-memory sections' figures, on stderr (a partial run writes no report).
fn print_in_memory(folds: &[inmem::FoldRow], codec: &[inmem::CodecRow]) {
    for row in folds {
        eprintln!(
            "bench: fold {} from {}: {} M events/s",
            row.aggregate,
            row.from,
            row.meps.show(2)
        );
    }
    for row in codec {
        eprintln!(
            "bench: codec {}: encode {} ms, decode + verify {} ms",
            row.label,
            row.encode_ms.show(3),
            row.decode_ms.show(3)
        );
    }
}

/// BENCH_ONLY=fold and/or codec: figures printed, no local services needed, no report written.
fn in_memory(only: &Only, started: Instant) -> Result<()> {
    let runs: usize = env_or("BENCH_RUNS", 5)?;
    let folds = if only.runs("fold") {
        inmem::fold_throughput(runs)?
    } else {
        Vec::new()
    };
    let codec = if only.runs("codec") {
        inmem::codec(runs)?
    } else {
        Vec::new()
    };
    print_in_memory(&folds, &codec);
    eprintln!(
        "bench: a partial run in memory in {:.0} s; the report is not written",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
