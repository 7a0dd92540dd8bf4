//! `make bench`: the performance figures of README's Performance section, written to
//! docs/bench/ (README.md with the tables, SVG plots). Needs the local emulator
//! (`AWS_ENDPOINT_URL`, as `scripts/bench.sh` starts it) and the release bootstraps of
//! `make build`.
//!
//! Env: BENCH_RUNS (default 5) runs per figure; BENCH_SIZES (default 1000,10000,50000)
//! history sizes; BENCH_PRUNE_SNAPSHOTS (default 5000); BENCH_OUT (default docs/bench);
//! BENCH_ONLY (e.g. `load` or `fold,codec`: only those sections of fold, codec, load,
//! snapshotter, pruner, binaries run, their figures go to stderr and docs/bench is not written;
//! fold and codec alone run in memory, without the emulator).

mod binaries;
mod inmem;
mod latency;
mod load;
mod peer;
mod prune;
mod report;
mod seed;
mod stats;
mod stream;
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

/// What a function's environment holds in the template, pointed at the emulator: its tables
/// (created here), a snapshot MAC key made in the emulator's KMS (decrypted by each function
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
        .context("snapshot MAC key in the emulator's KMS")?;
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
    const SECTIONS: [&'static str; 6] =
        ["fold", "codec", "load", "snapshotter", "pruner", "binaries"];

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

    /// Only sections that need no emulator.
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

#[tokio::main]
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
    eprintln!("bench: {runs} runs per figure against {endpoint}");

    let section =
        |name: &str| eprintln!("bench: {name} ({:.0} s)", started.elapsed().as_secs_f64());
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
    let mut loads = load::Loads::default();
    if only.runs("load") {
        section("aggregate loads");
        let delayed: Vec<(u64, aws_sdk_dynamodb::Client)> = ADDED_LATENCY_MS
            .iter()
            .map(|&ms| {
                let delay = std::time::Duration::from_millis(ms);
                (ms, latency::delayed_client(&sdk, &wire, delay))
            })
            .collect();
        loads = load::run(&plain, &counted, &delayed, &wire, &suffix, &sizes, runs).await?;
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

    let notes = vec![
        "The emulator is moto 5.2.5 started by `tools/moto/launcher.py`, which serves a \
         key-condition Query on a table's key in proportion to its result, as DynamoDB does: \
         each partition keeps its range keys sorted and the Query bisects to the first \
         matching item and reads only what it returns (moto itself sorts every item of the \
         table and walks the partition from its start for every Query, so a tail read of a \
         50,000-event aggregate would cost as much as reading all of it). Same pages, limits \
         and keys as moto's own walk. Both stores are measured on this same emulator."
            .to_owned(),
        "The emulator answers one request at a time (moto is one Python process: one \
         interpreter lock, and the launcher's lock around DynamoDB operations), so the \
         snapshot read and the tail read this product sends together are served one after \
         the other. On it, the round trip a load saves is worth only the client's gap between \
         two requests, while the newest-first tail read returns the policy threshold + 1 \
         events (101, what one round trip needs whenever fewer than the threshold follow the \
         snapshot) where the peer, which reads the snapshot's version first, returns exactly \
         the 50 after it. On DynamoDB the two reads are served in parallel and a round trip \
         costs the network and the service's latency, not an interpreter's turn: the \
         section *Snapshot + tail with network latency added* loads the same histories again \
         with 2 and 5 ms added to every request."
            .to_owned(),
        "The peer is the real cqrs-es 0.5 + dynamo-es 0.5 from crates.io on our \
         aws-sdk-dynamodb: its snapshot load is \
         `PersistedEventStore::new_snapshot_store(..).load_aggregate` (the snapshot Query, \
         then a Query of the events after it), its full replay dynamo-es's paginated \
         `stream_events` (pages of 200). Its tables follow dynamo-es's schema; its aggregate \
         folds the same INVENTORY_ITEM events with the same `apply` (tools/bench/src/peer.rs)."
            .to_owned(),
        "Requests, items, bytes and consumed capacity are counted on the wire by an SDK \
         interceptor (which asks every read for ReturnConsumedCapacity=TOTAL); sequential \
         round trips are the longest chain of requests each sent after the previous one was \
         answered. Every load's state and version are checked against the expected fold. \
         The emulator reports a fixed 1.0 capacity unit per read request whatever it returns \
         (moto's placeholder), so the capacity column counts read requests, not DynamoDB's \
         RCUs; items and KiB read are the size measure."
            .to_owned(),
        "The emulator also writes a Query's items to JSON directly (the launcher's third \
         patch): moto's generic response serializer spent about a millisecond per returned \
         item, which made a 50,000-event replay take a minute and this whole run far longer \
         than ten minutes. Each returned item is turned into its response JSON in one walk \
         under the table lock, which also measures it for the 1 MB page with moto's own size \
         rule; moto instead deep-copies every returned item, measures it in a second walk and \
         converts it twice more (to plain values, then to JSON), about 0.1 ms per returned \
         event that DynamoDB does not spend and that weighed on the 101-event tail read of \
         this product's one-round-trip load more than on the peer's 50-event read. The \
         documents are moto's: tools/moto/test_launcher.py sends the same requests to the \
         launcher and to moto's unpatched server (every attribute type, binaries, limits, \
         start keys, both directions, projections, filters, 1 MB pages cut to the byte) and \
         compares the answers."
            .to_owned(),
        "Seeding the histories (BatchWriteItem, not measured) is part of the whole-run time."
            .to_owned(),
    ];
    let took_s = started.elapsed().as_secs_f64();
    let results = Results {
        runs,
        machine: machine(),
        took_s,
        loads: loads.rows,
        delayed_loads: loads.delayed,
        folds,
        codec,
        stream,
        prune,
        binaries,
        parallelization_factor: parallelization_factor(&root),
        notes,
    };
    report::plot_loads(&results.loads, &out.join("load_wall.svg"))?;
    report::plot_folds(&results.folds, &out.join("fold.svg"))?;
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

/// BENCH_ONLY=fold and/or codec: figures printed, no emulator needed, no report written.
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
