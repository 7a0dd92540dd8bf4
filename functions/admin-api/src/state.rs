//! What every handler shares: the repository over the two stores, the registered aggregate
//! types and the configuration.

use std::sync::Arc;

use snapshot_core::backfill::{BackfillJobStore, InMemoryJobStore};
use snapshot_core::config::Config;
use snapshot_core::{AggregateRepository, Registry, StateCache};
use snapshot_dynamo::{DynamoEventStore, DynamoJobStore, DynamoSnapshotStore};
use snapshot_s3::{with_state_objects, SnapshotStoreWithObjects};

/// Who marks the snapshots the API finds invalid (audit actor, metric dimension).
pub const ACTOR: &str = "admin-api";

/// Bytes of aggregate states a warm container keeps between invocations for plain state
/// reads (`GET /admin/aggregates/..`; see `snapshot_core::state_cache`): 32 MiB of the
/// function's 512 MB, room for thousands of typical states and a few of the largest.
pub const STATE_CACHE_BYTES: usize = 32 << 20;

/// The cache of warm states the API's repository keeps ([`STATE_CACHE_BYTES`]). Only plain
/// state reads use it; verification reads the stores, manual snapshots are built from them.
pub fn state_cache() -> Arc<StateCache> {
    Arc::new(StateCache::new(STATE_CACHE_BYTES))
}

/// Handler state, generic over the stores so tests run on the in-memory adapters.
pub struct AppState<E, S> {
    /// Loads, replays and snapshots aggregates; gives access to both stores.
    pub repository: Arc<AggregateRepository<E, S>>,
    /// The aggregate types the API accepts.
    pub registry: Arc<Registry>,
    /// Snapshot settings (retention, TTL, codec).
    pub config: Arc<Config>,
    /// Where the current backfill job is kept.
    pub jobs: Arc<dyn BackfillJobStore>,
}

impl<E, S> Clone for AppState<E, S> {
    fn clone(&self) -> Self {
        Self {
            repository: Arc::clone(&self.repository),
            registry: Arc::clone(&self.registry),
            config: Arc::clone(&self.config),
            jobs: Arc::clone(&self.jobs),
        }
    }
}

impl<E, S> AppState<E, S> {
    /// State over `repository`; snapshots it finds invalid are marked by [`ACTOR`], and a
    /// snapshot it creates deletes the one it pushes out of `MAX_SNAPSHOTS_PER_AGGREGATE`.
    pub fn new(repository: AggregateRepository<E, S>, registry: Registry, config: Config) -> Self {
        let keep = config.max_snapshots_per_aggregate;
        Self {
            repository: Arc::new(repository.with_actor(ACTOR).with_retention(keep)),
            registry: Arc::new(registry),
            config: Arc::new(config),
            jobs: Arc::new(InMemoryJobStore::default()),
        }
    }

    /// Keeps backfill jobs in `jobs` (in memory by default).
    pub fn with_jobs(mut self, jobs: impl BackfillJobStore + 'static) -> Self {
        self.jobs = Arc::new(jobs);
        self
    }
}

/// State on the DynamoDB tables named by `config` (and its state bucket, if any), with the
/// built-in aggregate types.
pub fn dynamo_state(
    sdk: &aws_config::SdkConfig,
    config: Config,
) -> AppState<DynamoEventStore, SnapshotStoreWithObjects<DynamoSnapshotStore>> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let events = DynamoEventStore::new(client.clone(), &config.events_table);
    let jobs = DynamoJobStore::new(client.clone(), &config.snapshots_table);
    let snapshots = with_state_objects(
        DynamoSnapshotStore::new(client, &config.snapshots_table),
        sdk,
        &config,
    );
    let repository = AggregateRepository::new(events, snapshots, config.codec.clone())
        .with_policies(config.policies.clone())
        .with_state_cache(state_cache());
    AppState::new(repository, Registry::builtin(), config).with_jobs(jobs)
}
