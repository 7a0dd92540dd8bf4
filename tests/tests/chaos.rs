//! The chaos suite: N aggregates × M events appended concurrently through the repository
//! (single- and multi-event commits) while the stream runner feeds the snapshotter, the admin
//! API creates snapshots of the same aggregates over HTTP and the pruner prunes, all on the
//! DynamoDB Local through SDK clients whose HTTP client injects seeded faults (throttling,
//! 500s, timeouts, replies lost after the write committed, BatchWriteItem served halfway);
//! batches are redelivered at random. Then, faults off, the stream is drained, pruning runs
//! to convergence and everything is checked against the event table:
//!
//! - every event appended exactly once: the events in the table are exactly those of the
//!   `save` calls reported as saved (`lost`: reported but missing; `duplicated`: stored twice
//!   or stored although never reported, and snapshot keys created twice);
//! - every snapshot equals a full replay at its version and names its boundary event
//!   (`wrong`, also every load that differed from its writer's own state);
//! - at most one snapshot per (aggregate, version); the stream drains (nothing pending,
//!   nothing discarded); an aggregate with at least the threshold of events has a valid
//!   snapshot; no pruning run leaves an aggregate below keep-N (or below what it had) of valid
//!   snapshots, and pruning converges to keep-N.
//!
//! It prints one line (counted, not assumed), and fails unless lost, duplicated and wrong are 0:
//!
//! `chaos: aggregates=… events=… faults_injected=… redeliveries=… snapshots_verified=… lost=0 duplicated=0 wrong=0`
//!
//! Bounded by default; larger through `CHAOS_AGGREGATES`, `CHAOS_EVENTS`, `CHAOS_SEED`,
//! `CHAOS_FAULT_RATE` (README, "Reliability").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use admin_api::local::{bind, serve};
use admin_api::{dynamo_state, router, AccessPolicy, Authenticator, DevToken};
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
use futures::stream::{self, StreamExt};
use integration_tests::faults::{faulty_sdk_config, Fault, FaultPlan};
use integration_tests::TestTables;
use pruner::PrunerSettings;
use snapshot_core::config::Config;
use snapshot_core::domain::{Aggregate, AggregateRoot, InventoryItem, Warehouse};
use snapshot_core::ports::{EventStore, SnapshotStore, SnapshotStoreDecorator};
use snapshot_core::pruning::{prune, prune_resuming, Deadline, PruneError, PruneRequest};
use snapshot_core::snapshot::{open_snapshot, SnapshotKey};
use snapshot_core::{AggregateRepository, Registry, RepositoryError, StoreError};
use snapshot_dynamo::{DynamoEventStore, DynamoScanPositions, DynamoSnapshotStore};
use snapshotter::{Action, Settings, Snapshotter};
use stream_runner::{RunnerSettings, StreamRunner};

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

const TOKEN: &str = "chaos-dev-token";
/// SDK attempts per call on the faulty clients (the SDK's own retries): two, so that some
/// faults get through to the callers and their own retries run too.
const ATTEMPTS: u32 = 2;
/// Batches the handler fails at a random record, per mille (the runner redelivers from it).
const REDELIVERY_PER_MILLE: u64 = 300;
/// Largest commit: crosses any threshold of the default run in one append.
const MAX_COMMIT: u64 = 12;

/// The run's size and fault rate, from the environment (defaults: the bounded CI run).
#[derive(Debug, Clone)]
struct Chaos {
    aggregates: usize,
    events: u64,
    seed: u64,
    /// Faults per 1000 requests of every faulty client.
    fault_per_mille: u64,
    threshold: u64,
    keep: usize,
    /// Writers at once.
    concurrency: usize,
}

fn env_number(name: &str, default: u64, min: u64, max: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => panic!("{name}={raw}: expected a whole number from {min} to {max}"),
        },
    }
}

impl Chaos {
    fn from_env() -> Self {
        let aggregates = env_number("CHAOS_AGGREGATES", 16, 1, 100_000) as usize;
        let rate = match std::env::var("CHAOS_FAULT_RATE") {
            Err(_) => 0.05,
            Ok(raw) => match raw.trim().parse::<f64>() {
                Ok(r) if (0.0..=0.5).contains(&r) => r,
                _ => panic!("CHAOS_FAULT_RATE={raw}: expected a fraction from 0 to 0.5"),
            },
        };
        Self {
            aggregates,
            events: env_number("CHAOS_EVENTS", 80, 1, 1_000_000),
            seed: env_number("CHAOS_SEED", 1, 0, u64::MAX),
            fault_per_mille: (rate * 1000.0).round() as u64,
            threshold: env_number("CHAOS_THRESHOLD", 10, 1, 10_000),
            keep: env_number("CHAOS_KEEP", 3, 1, 100) as usize,
            concurrency: env_number("CHAOS_CONCURRENCY", aggregates.min(24) as u64, 1, 1_000)
                as usize,
        }
    }
}

/// SplitMix64: the suite's own choices (commit sizes, commands, redeliveries, targets).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What the suite saw, counted as it happened.
#[derive(Default)]
struct Ledger {
    /// `eventId` → (aggregate, sequence) of every event a `save` reported as saved.
    saved: Mutex<HashMap<String, (String, u64)>>,
    /// Snapshot keys reported created (snapshotter outcome or the API's 201), and how often.
    created: Mutex<HashMap<(String, u64), u32>>,
    /// Snapshot keys the pruner was asked to delete.
    deleted: Mutex<HashSet<(String, u64)>>,
    /// Every problem found, in words.
    failures: Mutex<Vec<String>>,
    wrong_loads: AtomicU64,
    loads_verified: AtomicU64,
    save_retries: AtomicU64,
    conflicts: AtomicU64,
    forced_redeliveries: AtomicU64,
    admin_created: AtomicU64,
    admin_existing: AtomicU64,
    admin_unavailable: AtomicU64,
    prune_runs: AtomicU64,
    prune_failed_runs: AtomicU64,
    pruned: AtomicU64,
}

impl Ledger {
    fn fail(&self, problem: String) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(problem);
    }

    fn created(&self, aggregate_id: &str, version: u64) {
        *self
            .created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((aggregate_id.to_owned(), version))
            .or_default() += 1;
    }
}

fn aggregate_id(index: usize) -> String {
    format!("chaos-{index:05}")
}

/// Every fourth aggregate is a warehouse, the others inventory items.
fn aggregate_type(index: usize) -> &'static str {
    if index % 4 == 3 {
        Warehouse::TYPE
    } else {
        InventoryItem::TYPE
    }
}

fn item_command(root: &mut AggregateRoot<InventoryItem>, rng: &mut Rng) {
    if !root.exists() {
        root.create("SKU-CHAOS", "Chaos widget", 5).unwrap();
        return;
    }
    let order = format!("order-{}", rng.below(4));
    let quantity = 1 + rng.below(6) as i64;
    let tried = match rng.below(5) {
        0 | 1 => root.receive(quantity, None),
        2 => root.reserve(&order, quantity),
        3 => root.ship(&order, quantity),
        _ => root.release(&order, quantity),
    };
    // A refused command records nothing; receiving always works (nothing is discontinued).
    if tried.is_err() {
        root.receive(1, None).unwrap();
    }
}

fn warehouse_command(root: &mut AggregateRoot<Warehouse>, rng: &mut Rng) {
    if !root.exists() {
        root.create("Chaos depot", 1_000).unwrap();
        return;
    }
    let location = format!("L{}", rng.below(5));
    let sku = format!("SKU-{}", rng.below(3));
    let quantity = 1 + rng.below(20) as i64;
    let tried = match rng.below(5) {
        0 => root.add_location(&location),
        1 | 2 => root.place(&location, &sku, quantity),
        3 => root.pick(&location, &sku, quantity),
        _ => root.remove_location(&location),
    };
    if tried.is_err() {
        let capacity = root.state().capacity + 1;
        root.change_capacity(capacity).unwrap();
    }
}

/// Commit sizes: mostly one event, often a few, sometimes up to [`MAX_COMMIT`].
fn commit_size(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0..=5 => 1,
        6..=8 => 2 + rng.below(3),
        _ => 5 + rng.below(MAX_COMMIT - 4),
    }
}

/// Loads until the repository answers (faults may fail single attempts).
async fn load_settled<A: Aggregate>(repo: &Repo, id: &str) -> Result<AggregateRoot<A>, String> {
    for _ in 0..50 {
        match repo.load::<A>(id).await {
            Ok((root, _)) => return Ok(root),
            Err(RepositoryError::Store(e)) if e.is_retryable() => continue,
            Err(RepositoryError::NotFound { .. }) => return Ok(AggregateRoot::new(id)),
            Err(e) => return Err(format!("{id}: load failed: {e}")),
        }
    }
    Err(format!("{id}: load failed 50 times"))
}

struct Writer<'a> {
    repo: &'a Repo,
    ledger: &'a Ledger,
    versions: &'a [AtomicU64],
    chaos: &'a Chaos,
}

impl Writer<'_> {
    /// Appends `chaos.events` events to aggregate `index` through the repository, as a caller
    /// would: a save whose outcome is unknown is retried with the same events (same ids), a
    /// conflict reloads and runs new commands. Now and then a load is compared with the
    /// writer's own state, which is the truth (it is the aggregate's only writer).
    async fn write<A: Aggregate>(
        &self,
        index: usize,
        command: fn(&mut AggregateRoot<A>, &mut Rng),
    ) -> Result<(), String> {
        let id = aggregate_id(index);
        let mut rng =
            Rng::new(self.chaos.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut root = AggregateRoot::<A>::new(&id);
        while root.version() < self.chaos.events {
            let size = commit_size(&mut rng).min(self.chaos.events - root.version());
            for _ in 0..size {
                command(&mut root, &mut rng);
            }
            let first = root.version() + 1;
            let ids = root.uncommitted_ids().to_vec();
            let mut tries = 0;
            loop {
                tries += 1;
                match self.repo.save(&mut root, None).await {
                    Ok(version) => {
                        let mut saved = self.ledger.saved.lock().unwrap();
                        for (offset, event_id) in ids.iter().enumerate() {
                            saved.insert(event_id.clone(), (id.clone(), first + offset as u64));
                        }
                        self.versions[index].store(version, Ordering::Relaxed);
                        break;
                    }
                    Err(e) if e.is_conflict() => {
                        // Its events were not stored (the table says so at the end): reload
                        // and carry on with new commands.
                        self.ledger.conflicts.fetch_add(1, Ordering::Relaxed);
                        root = load_settled::<A>(self.repo, &id).await?;
                        break;
                    }
                    Err(RepositoryError::Store(e)) if e.is_retryable() && tries < 50 => {
                        self.ledger.save_retries.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(format!("{id}: save failed for good: {e}")),
                }
            }
            if rng.chance(100) {
                self.verify_load(&id, &root).await;
            }
        }
        Ok(())
    }

    async fn verify_load<A: Aggregate>(&self, id: &str, root: &AggregateRoot<A>) {
        match self.repo.load::<A>(id).await {
            Ok((loaded, _)) => {
                self.ledger.loads_verified.fetch_add(1, Ordering::Relaxed);
                if loaded.version() != root.version() || loaded.state() != root.state() {
                    self.ledger.wrong_loads.fetch_add(1, Ordering::Relaxed);
                    self.ledger.fail(format!(
                        "{id}: load gave version {} {:?}, the writer holds {} {:?}",
                        loaded.version(),
                        loaded.state(),
                        root.version(),
                        root.state()
                    ));
                }
            }
            // Storage trouble under faults: nothing was served, nothing to check.
            Err(RepositoryError::Store(e)) if e.is_retryable() => {}
            Err(e) => self.ledger.fail(format!("{id}: load failed: {e}")),
        }
    }
}

/// The pruner's snapshot store, remembering every key it was asked to delete: a snapshot key
/// created twice is a duplicate unless the pruner deleted it in between (a snapshot the API
/// built at a version the stream had snapshotted and pruning had since removed).
struct DeletesRecorded<'a> {
    inner: DynamoSnapshotStore,
    deleted: &'a Mutex<HashSet<(String, u64)>>,
}

impl DeletesRecorded<'_> {
    fn record<'k>(&self, keys: impl IntoIterator<Item = &'k SnapshotKey>) {
        let mut deleted = self.deleted.lock().unwrap();
        for key in keys {
            deleted.insert((key.aggregate_id.clone(), key.version));
        }
    }
}

#[async_trait]
impl SnapshotStoreDecorator for DeletesRecorded<'_> {
    type Inner = DynamoSnapshotStore;

    fn delegate(&self) -> &DynamoSnapshotStore {
        &self.inner
    }

    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError> {
        self.record(&[SnapshotKey {
            aggregate_id: aggregate_id.to_owned(),
            version,
        }]);
        self.inner.delete(aggregate_id, version).await
    }

    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        self.record(keys);
        self.inner.delete_many(keys).await
    }
}

/// Unmarked snapshots per chaos aggregate, through one full scan (no faults).
async fn valid_counts(store: &DynamoSnapshotStore) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = store.scan_summaries(0, 1, cursor, 1000).await.unwrap();
        for summary in page.items {
            if summary.key.aggregate_id.starts_with("chaos-") && !summary.invalid {
                *counts.entry(summary.key.aggregate_id).or_default() += 1;
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return counts,
        }
    }
}

fn prune_request(keep: usize, budget: Option<usize>) -> PruneRequest {
    let mut request = PruneRequest::new(keep);
    request.segments = 2;
    request.page_size = 50;
    request.buffer_keys = 50;
    if let Some(checks) = budget {
        // A few page reads per run: runs stop part way and resume from the saved position.
        let seen = Arc::new(AtomicU64::new(0));
        request.deadline =
            Deadline::when(move || seen.fetch_add(1, Ordering::SeqCst) >= checks as u64);
    }
    request
}

/// One pruning run under faults, checked: no aggregate ends it with fewer valid snapshots
/// than keep-N or than it had before (only the pruner deletes).
async fn prune_checked(
    faulty: &DeletesRecorded<'_>,
    positions: &DynamoScanPositions,
    clean: &DynamoSnapshotStore,
    ledger: &Ledger,
    keep: usize,
) {
    let before = valid_counts(clean).await;
    let registry = Registry::builtin();
    let result = prune_resuming(faulty, positions, &registry, &prune_request(keep, Some(6))).await;
    ledger.prune_runs.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(summary) => {
            ledger.pruned.fetch_add(summary.deleted, Ordering::Relaxed);
        }
        Err(PruneError::Store { partial, .. }) => {
            ledger.prune_failed_runs.fetch_add(1, Ordering::Relaxed);
            ledger.pruned.fetch_add(partial.deleted, Ordering::Relaxed);
        }
        Err(e) => ledger.fail(format!("pruning refused its request: {e}")),
    }
    let after = valid_counts(clean).await;
    for (id, had) in before {
        let left = after.get(&id).copied().unwrap_or(0);
        if left < had.min(keep) {
            ledger.fail(format!(
                "pruning left {id} with {left} valid snapshots (had {had}, keep {keep})"
            ));
        }
    }
}

/// Creates snapshots of random aggregates through the admin API over HTTP while they are
/// written and snapshotted by the stream.
async fn admin_racer(
    base: &str,
    versions: &[AtomicU64],
    ledger: &Ledger,
    seed: u64,
    done: &AtomicBool,
) {
    let http = reqwest::Client::new();
    let mut rng = Rng::new(seed ^ 0xAD31_u64);
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let index = rng.below(versions.len() as u64) as usize;
        if versions[index].load(Ordering::Relaxed) == 0 {
            continue;
        }
        let id = aggregate_id(index);
        let url = format!(
            "{base}/admin/snapshots/create/{}/{id}",
            aggregate_type(index)
        );
        let response = match http.post(&url).bearer_auth(TOKEN).send().await {
            Ok(response) => response,
            Err(e) => {
                ledger.fail(format!("admin API unreachable: {e}"));
                continue;
            }
        };
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        match status {
            201 => match body["snapshot"]["version"].as_u64() {
                Some(version) => {
                    ledger.admin_created.fetch_add(1, Ordering::Relaxed);
                    ledger.created(&id, version);
                }
                None => ledger.fail(format!("{id}: 201 without a version: {body}")),
            },
            200 => {
                ledger.admin_existing.fetch_add(1, Ordering::Relaxed);
            }
            // Storage trouble the SDK's retries did not absorb: said so, with Retry-After.
            503 => {
                ledger.admin_unavailable.fetch_add(1, Ordering::Relaxed);
            }
            other => ledger.fail(format!("{id}: create answered {other}: {body}")),
        }
    }
}

/// Every check of the end state; returns (events in the table, snapshots verified, lost,
/// duplicated, wrong).
struct Verdict {
    events: u64,
    snapshots_verified: u64,
    lost: u64,
    duplicated: u64,
    wrong: u64,
}

async fn verify(
    chaos: &Chaos,
    tables: &TestTables,
    ledger: &Ledger,
    repo: &Repo,
    valid_before_final: &BTreeMap<String, usize>,
) -> Verdict {
    let events_store = tables.event_store();
    let snapshots = tables.snapshot_store();
    let codec = snapshot_core::codec::SnapshotCodec::default();
    let registry = Registry::builtin();
    let saved = ledger.saved.lock().unwrap().clone();
    let mut verdict = Verdict {
        events: 0,
        snapshots_verified: 0,
        lost: 0,
        duplicated: 0,
        wrong: ledger.wrong_loads.load(Ordering::Relaxed),
    };
    let mut stored_ids: HashSet<String> = HashSet::new();
    for index in 0..chaos.aggregates {
        let id = aggregate_id(index);
        let kind = registry.get(aggregate_type(index)).unwrap();
        let events = events_store.read(&id, 1, None).await.unwrap();
        verdict.events += events.len() as u64;
        for (position, event) in events.iter().enumerate() {
            if event.sequence != position as u64 + 1 {
                ledger.fail(format!("{id}: gap before sequence {}", event.sequence));
            }
            if !stored_ids.insert(event.event_id.clone()) {
                verdict.duplicated += 1;
                ledger.fail(format!("{id}: event {} stored twice", event.event_id));
            }
            match saved.get(&event.event_id) {
                Some((saved_id, sequence)) if *saved_id == id && *sequence == event.sequence => {}
                Some(other) => {
                    verdict.duplicated += 1;
                    ledger.fail(format!(
                        "{id}#{}: event {} was saved as {other:?}",
                        event.sequence, event.event_id
                    ));
                }
                None => {
                    verdict.duplicated += 1;
                    ledger.fail(format!(
                        "{id}#{}: event {} stored but never reported saved",
                        event.sequence, event.event_id
                    ));
                }
            }
        }
        if (events.len() as u64) < chaos.events {
            ledger.fail(format!(
                "{id}: {} events, expected {}",
                events.len(),
                chaos.events
            ));
        }

        // Every snapshot: authentic, unmarked, its boundary event, equal to a replay.
        let mut valid = 0;
        let mut before = None;
        loop {
            let page = snapshots.records(&id, before, 100).await.unwrap();
            for stored in page.items {
                let record = match stored {
                    Ok(record) => record,
                    Err(unreadable) => {
                        verdict.wrong += 1;
                        ledger.fail(format!("{id}: unreadable snapshot: {unreadable}"));
                        continue;
                    }
                };
                let version = record.header.version;
                let state = match open_snapshot(
                    &codec,
                    &record,
                    &id,
                    kind.type_name(),
                    kind.schema_version(),
                ) {
                    Ok(state) => state,
                    Err(invalid) => {
                        verdict.wrong += 1;
                        ledger.fail(format!("{id}@{version}: snapshot does not open: {invalid}"));
                        continue;
                    }
                };
                let Some(boundary) = version.checked_sub(1).and_then(|i| events.get(i as usize))
                else {
                    verdict.wrong += 1;
                    ledger.fail(format!("{id}@{version}: beyond the stream"));
                    continue;
                };
                if record.header.last_event_id.as_deref() != Some(boundary.event_id.as_str()) {
                    verdict.wrong += 1;
                    ledger.fail(format!("{id}@{version}: lastEventId is not the boundary's"));
                    continue;
                }
                let replay = kind
                    .fold_json(&id, 0, None, &events[..version as usize])
                    .unwrap();
                let as_json =
                    |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
                if as_json(&state) != as_json(&replay) {
                    verdict.wrong += 1;
                    ledger.fail(format!("{id}@{version}: state differs from the replay"));
                    continue;
                }
                verdict.snapshots_verified += 1;
                valid += 1;
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        if events.len() as u64 >= chaos.threshold && valid == 0 {
            ledger.fail(format!(
                "{id}: {} events (threshold {}) and no valid snapshot",
                events.len(),
                chaos.threshold
            ));
        }
        let had = valid_before_final.get(&id).copied().unwrap_or(0);
        if valid != had.min(chaos.keep) {
            ledger.fail(format!(
                "{id}: pruning converged to {valid} snapshots (had {had}, keep {})",
                chaos.keep
            ));
        }

        // A load (no faults now) equals the full replay.
        let loaded = repo.load_kind(kind.as_ref(), &id).await.unwrap();
        let replayed = repo.replay_kind(kind.as_ref(), &id).await.unwrap();
        if loaded.version != replayed.version || loaded.state_json != replayed.state_json {
            verdict.wrong += 1;
            ledger.fail(format!("{id}: final load differs from the replay"));
        }
    }
    verdict.lost = saved
        .keys()
        .filter(|event_id| !stored_ids.contains(*event_id))
        .count() as u64;
    if verdict.lost > 0 {
        ledger.fail(format!(
            "{} saved events are not in the table",
            verdict.lost
        ));
    }
    let deleted = ledger.deleted.lock().unwrap().clone();
    for ((id, version), times) in ledger.created.lock().unwrap().iter() {
        if *times > 1 && !deleted.contains(&(id.clone(), *version)) {
            verdict.duplicated += 1;
            ledger.fail(format!("{id}@{version}: snapshot created {times} times"));
        }
    }
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_under_faults_redeliveries_racing_snapshots_and_pruning() {
    let chaos = Chaos::from_env();
    let started = Instant::now();
    let tables = TestTables::create("chaos").await;
    let threshold = chaos.threshold.to_string();
    let keep = chaos.keep.to_string();
    let lookup = |name: &str| match name {
        "EVENTS_TABLE" => Some(tables.events_table.clone()),
        "SNAPSHOTS_TABLE" => Some(tables.snapshots_table.clone()),
        "SNAPSHOT_STRATEGY" => Some("count".to_owned()),
        "SNAPSHOT_THRESHOLD" => Some(threshold.clone()),
        "MAX_SNAPSHOTS_PER_AGGREGATE" => Some(keep.clone()),
        // Some snapshots are checked against a full replay by the snapshotter itself.
        "SNAPSHOT_DRIFT_SAMPLE" => Some("5".to_owned()),
        _ => None,
    };
    let config = Config::from_lookup(lookup).unwrap();

    // One fault plan per component, each seeded from the run's seed.
    let rate = chaos.fault_per_mille;
    let writes_plan = FaultPlan::new(chaos.seed, rate);
    let snapshotter_plan = FaultPlan::new(chaos.seed.wrapping_add(1), rate);
    let admin_plan = FaultPlan::new(chaos.seed.wrapping_add(2), rate);
    let pruner_plan = FaultPlan::new(chaos.seed.wrapping_add(3), rate).kinds(&[
        Fault::Throttle,
        Fault::ServerError,
        Fault::Timeout,
        Fault::ReplyLost,
        Fault::Unprocessed,
    ]);
    let stream_plan = FaultPlan::new(chaos.seed.wrapping_add(4), rate / 2);
    let plans = [
        &writes_plan,
        &snapshotter_plan,
        &admin_plan,
        &pruner_plan,
        &stream_plan,
    ];

    let writes_sdk = faulty_sdk_config(&writes_plan, ATTEMPTS).await;
    let writes_client = aws_sdk_dynamodb::Client::new(&writes_sdk);
    let repo: Repo = AggregateRepository::new(
        DynamoEventStore::new(writes_client.clone(), &tables.events_table),
        DynamoSnapshotStore::new(writes_client, &tables.snapshots_table),
        config.codec.clone(),
    )
    .with_policies(config.policies.clone());

    let snapshotter_client =
        aws_sdk_dynamodb::Client::new(&faulty_sdk_config(&snapshotter_plan, ATTEMPTS).await);
    let settings = Settings::from_lookup(lookup).unwrap();
    let snapshotter = Snapshotter::new(
        DynamoEventStore::new(snapshotter_client.clone(), &tables.events_table),
        DynamoSnapshotStore::new(snapshotter_client, &tables.snapshots_table),
        settings,
    );

    // The admin API on 127.0.0.1, its SDK clients faulty too.
    let admin_sdk = faulty_sdk_config(&admin_plan, ATTEMPTS).await;
    let authenticator =
        Authenticator::local(AccessPolicy::default()).with_dev_token(DevToken::new(TOKEN).unwrap());
    let listener = bind(0).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(
        listener,
        router(dynamo_state(&admin_sdk, config.clone()), authenticator),
    ));

    let ledger = Ledger::default();
    let pruner_settings = PrunerSettings::from_lookup(lookup).unwrap();
    assert_eq!(pruner_settings.max_snapshots, chaos.keep);
    let pruner_client =
        aws_sdk_dynamodb::Client::new(&faulty_sdk_config(&pruner_plan, ATTEMPTS).await);
    let pruner_store = DeletesRecorded {
        inner: DynamoSnapshotStore::new(pruner_client.clone(), &tables.snapshots_table),
        deleted: &ledger.deleted,
    };
    let positions = DynamoScanPositions::new(pruner_client, &tables.snapshots_table);
    let clean_snapshots = tables.snapshot_store();

    let stream_sdk = faulty_sdk_config(&stream_plan, ATTEMPTS).await;
    let mut runner = StreamRunner::connect(
        &tables.client,
        aws_sdk_dynamodbstreams::Client::new(&stream_sdk),
        &tables.events_table,
        "us-east-1",
        RunnerSettings {
            // Small batches: more invocations, more redeliveries.
            batch_size: 25,
            max_attempts: Some(100),
            ..RunnerSettings::default()
        },
    )
    .await
    .unwrap();

    let versions: Vec<AtomicU64> = (0..chaos.aggregates).map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    let redeliver = AtomicBool::new(true);
    let redelivery_rng = Mutex::new(Rng::new(chaos.seed ^ 0x5EED));

    // The snapshotter as the event source mapping invokes it, with random redeliveries: a
    // failure reported at a random record makes the runner deliver it and all after it again.
    let ledger_ref = &ledger;
    let snapshotter_ref = &snapshotter;
    let redeliver_ref = &redeliver;
    let rng_ref = &redelivery_rng;
    let handler = move |event: Event| async move {
        let numbers: Vec<String> = event
            .records
            .iter()
            .filter_map(|r| r.change.sequence_number.clone())
            .collect();
        let report = snapshotter_ref.process(event, None).await;
        for outcome in &report.outcomes {
            if let Ok(Action::Created { version, .. }) = outcome.result() {
                ledger_ref.created(outcome.aggregate_id(), *version);
            }
        }
        let mut response = report.response;
        let pick = {
            let mut rng = rng_ref.lock().unwrap();
            let first = ledger_ref.forced_redeliveries.load(Ordering::Relaxed) == 0;
            (redeliver_ref.load(Ordering::Relaxed) && (first || rng.chance(REDELIVERY_PER_MILLE)))
                .then(|| rng.below(numbers.len() as u64) as usize)
        };
        if let Some(at) = pick.and_then(|i| numbers.get(i)) {
            ledger_ref
                .forced_redeliveries
                .fetch_add(1, Ordering::Relaxed);
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(at.clone());
            response.batch_item_failures.push(failure);
        }
        Ok::<_, Infallible>(response)
    };

    let mut redeliveries = 0;
    let mut discarded = 0;
    let mut poll_errors = 0;
    {
        let writer = Writer {
            repo: &repo,
            ledger: &ledger,
            versions: &versions,
            chaos: &chaos,
        };
        let writers = async {
            let results: Vec<Result<(), String>> = stream::iter(0..chaos.aggregates)
                .map(|index| {
                    let writer = &writer;
                    async move {
                        if aggregate_type(index) == Warehouse::TYPE {
                            writer.write::<Warehouse>(index, warehouse_command).await
                        } else {
                            writer.write::<InventoryItem>(index, item_command).await
                        }
                    }
                })
                .buffer_unordered(chaos.concurrency)
                .collect()
                .await;
            done.store(true, Ordering::Relaxed);
            for result in results {
                if let Err(problem) = result {
                    ledger.fail(problem);
                }
            }
        };
        let streaming = async {
            while !done.load(Ordering::Relaxed) {
                match runner.poll_once(&handler).await {
                    Ok(round) => {
                        redeliveries += round.failed_batches;
                        discarded += round.discarded;
                        if !round.progressed() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    Err(_) => poll_errors += 1,
                }
            }
        };
        let pruning = async {
            while !done.load(Ordering::Relaxed) {
                prune_checked(
                    &pruner_store,
                    &positions,
                    &clean_snapshots,
                    &ledger,
                    chaos.keep,
                )
                .await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        };
        let racing = admin_racer(&base, &versions, &ledger, chaos.seed, &done);
        tokio::join!(writers, streaming, pruning, racing);
    }

    // Faults off: drain the stream, then prune to convergence.
    for plan in plans {
        plan.set_enabled(false);
    }
    redeliver.store(false, Ordering::Relaxed);
    let mut drained = false;
    for _ in 0..20 {
        match runner.run_until_idle(&handler).await {
            Ok(drain) => {
                redeliveries += drain.total.failed_batches;
                discarded += drain.total.discarded;
                if drain.pending == 0 {
                    drained = true;
                    break;
                }
            }
            Err(_) => poll_errors += 1,
        }
    }
    if !drained || runner.pending() > 0 {
        ledger.fail(format!(
            "the stream did not drain: {} pending",
            runner.pending()
        ));
    }
    if discarded > 0 {
        ledger.fail(format!("{discarded} stream records discarded"));
    }
    server.abort();

    let valid_before_final = valid_counts(&clean_snapshots).await;
    // Resumed runs until one finds nothing to delete, confirmed by a run over the whole table.
    let mut converged = false;
    let registry = Registry::builtin();
    for _ in 0..20 {
        let request = prune_request(chaos.keep, None);
        let summary = prune_resuming(&clean_snapshots, &positions, &registry, &request)
            .await
            .unwrap();
        if summary.complete
            && summary.deleted == 0
            && prune(&clean_snapshots, &registry, &request)
                .await
                .unwrap()
                .deleted
                == 0
        {
            converged = true;
            break;
        }
    }
    if !converged {
        ledger.fail("pruning did not converge in 20 runs".to_owned());
    }

    let verdict = verify(&chaos, &tables, &ledger, &repo, &valid_before_final).await;
    let faults: u64 = plans.iter().map(|p| p.injected()).sum();
    let line = format!(
        "chaos: aggregates={} events={} faults_injected={faults} redeliveries={redeliveries} snapshots_verified={} lost={} duplicated={} wrong={}",
        chaos.aggregates, verdict.events, verdict.snapshots_verified, verdict.lost, verdict.duplicated, verdict.wrong
    );
    // Straight to the process's stderr (not the test harness's capture): the line shows in
    // every `cargo test` run.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    let details = format!(
        "seed={} fault_rate={}‰ took={:?} save_retries={} conflicts={} loads_verified={} forced_redeliveries={} admin_created={} admin_existing={} admin_unavailable={} prune_runs={} prune_failed_runs={} pruned={} poll_errors={poll_errors}",
        chaos.seed,
        chaos.fault_per_mille,
        started.elapsed(),
        ledger.save_retries.load(Ordering::Relaxed),
        ledger.conflicts.load(Ordering::Relaxed),
        ledger.loads_verified.load(Ordering::Relaxed),
        ledger.forced_redeliveries.load(Ordering::Relaxed),
        ledger.admin_created.load(Ordering::Relaxed),
        ledger.admin_existing.load(Ordering::Relaxed),
        ledger.admin_unavailable.load(Ordering::Relaxed),
        ledger.prune_runs.load(Ordering::Relaxed),
        ledger.prune_failed_runs.load(Ordering::Relaxed),
        ledger.pruned.load(Ordering::Relaxed),
    );
    println!("{details}");
    let failures = ledger.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{line}\n{details}\n{failures:#?}");
    assert_eq!(verdict.lost, 0, "{line}");
    assert_eq!(verdict.duplicated, 0, "{line}");
    assert_eq!(verdict.wrong, 0, "{line}");
    assert_eq!(
        verdict.events,
        chaos.aggregates as u64 * chaos.events,
        "{line}"
    );
    if rate > 0 {
        assert!(faults > 0, "{line}");
    }
    assert!(redeliveries > 0, "{line}");
    assert!(
        ledger.prune_runs.load(Ordering::Relaxed) > 0,
        "pruning ran alongside: {details}"
    );
}
