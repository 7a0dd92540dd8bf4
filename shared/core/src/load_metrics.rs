//! Load telemetry: what application loads through the repository cost, as CloudWatch metrics
//! (EMF): loads, events folded, snapshot age in events, invalid snapshots skipped, full
//! replays and store requests.
//!
//! Requests are counted by wrapping the repository's stores in [`Metered`]; every call of a
//! port is one request (an event read that follows pages counts once). Totals are kept per
//! flush, so concurrent loads need no per-load bookkeeping.
//!
//! ```no_run
//! # async fn demo() -> Result<(), snapshot_core::RepositoryError> {
//! use snapshot_core::codec::SnapshotCodec;
//! use snapshot_core::domain::Warehouse;
//! use snapshot_core::load_metrics::LoadTelemetry;
//! use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
//! use snapshot_core::AggregateRepository;
//!
//! let telemetry = LoadTelemetry::new("inventory-service");
//! let repository = AggregateRepository::new(
//!     telemetry.meter(InMemoryEventStore::new()),
//!     telemetry.meter(InMemorySnapshotStore::new()),
//!     SnapshotCodec::default(),
//! );
//! let (_warehouse, report) = repository.load::<Warehouse>("wh-1").await?;
//! telemetry.record(&report);
//! telemetry.flush(); // once per invocation: one EMF line on stdout
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::metrics::MetricSet;
use crate::ports::{EventStore, EventStoreDecorator, SnapshotStore, SnapshotStoreDecorator};
use crate::repository::LoadReport;
use crate::snapshot::SnapshotRecord;

/// Metric: repository loads.
pub const LOADS: &str = "Loads";
/// Metric: events folded by loads, summed.
pub const LOAD_EVENTS_FOLDED: &str = "LoadEventsFolded";
/// Events folded on top of the snapshot used (all of them for a full replay), summed; with
/// `Loads` it gives the average age, and [`LOAD_SNAPSHOT_AGE_MAX`] the worst.
pub const LOAD_SNAPSHOT_AGE: &str = "LoadSnapshotAgeEvents";
/// Metric: the largest snapshot age (events folded on top) of one load.
pub const LOAD_SNAPSHOT_AGE_MAX: &str = "LoadSnapshotAgeEventsMax";
/// Metric: snapshots skipped as invalid or unusable by loads.
pub const LOAD_INVALID_SKIPPED: &str = "LoadInvalidSnapshotsSkipped";
/// Metric: loads that used no snapshot.
pub const LOAD_FULL_REPLAYS: &str = "LoadFullReplays";
/// Metric: store requests made by loads.
pub const LOAD_REQUESTS: &str = "LoadRequests";

#[derive(Debug, Default)]
struct Counters {
    loads: AtomicU64,
    events_folded: AtomicU64,
    age_sum: AtomicU64,
    age_max: AtomicU64,
    invalid_skipped: AtomicU64,
    full_replays: AtomicU64,
    requests: Arc<AtomicU64>,
}

/// Totals of the loads since the last flush.
#[derive(Debug, Clone)]
pub struct LoadTelemetry {
    name: String,
    counters: Arc<Counters>,
}

/// What [`LoadTelemetry`] has counted, as numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadTotals {
    /// Loads recorded with [`LoadTelemetry::record`] (one per load report it was given).
    pub loads: u64,
    /// Events folded on top of a snapshot or from the first event, over all loads.
    pub events_folded: u64,
    /// Snapshot ages in events, summed.
    pub snapshot_age_events_sum: u64,
    /// The largest snapshot age in events.
    pub snapshot_age_events_max: u64,
    /// Invalid or unusable snapshots the loads passed over (their reports'
    /// `snapshots_skipped`, summed).
    pub invalid_skipped: u64,
    /// Loads without a snapshot.
    pub full_replays: u64,
    /// Requests the metered stores served ([`Metered`]: one per port call, `fetch_state`
    /// excepted), loads or not.
    pub requests: u64,
}

impl LoadTelemetry {
    /// Telemetry reported under the `Function` dimension `name` (the application).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            counters: Arc::default(),
        }
    }

    /// Wraps a store so its requests are counted.
    pub fn meter<T>(&self, inner: T) -> Metered<T> {
        Metered {
            inner,
            requests: Arc::clone(&self.counters.requests),
        }
    }

    /// Adds one load.
    pub fn record(&self, report: &LoadReport) {
        let c = &self.counters;
        c.loads.fetch_add(1, Ordering::Relaxed);
        c.events_folded
            .fetch_add(report.events_replayed, Ordering::Relaxed);
        c.age_sum
            .fetch_add(report.events_replayed, Ordering::Relaxed);
        c.age_max
            .fetch_max(report.events_replayed, Ordering::Relaxed);
        c.invalid_skipped
            .fetch_add(report.snapshots_skipped, Ordering::Relaxed);
        if report.snapshot_version.is_none() {
            c.full_replays.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What has been counted since the last flush.
    pub fn totals(&self) -> LoadTotals {
        let c = &self.counters;
        LoadTotals {
            loads: c.loads.load(Ordering::Relaxed),
            events_folded: c.events_folded.load(Ordering::Relaxed),
            snapshot_age_events_sum: c.age_sum.load(Ordering::Relaxed),
            snapshot_age_events_max: c.age_max.load(Ordering::Relaxed),
            invalid_skipped: c.invalid_skipped.load(Ordering::Relaxed),
            full_replays: c.full_replays.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
        }
    }

    /// The totals as metrics, and the counters back at zero.
    pub fn take(&self) -> MetricSet {
        let c = &self.counters;
        let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        let mut set = MetricSet::new(self.name.clone());
        set.count(LOADS, take(&c.loads));
        set.count(LOAD_EVENTS_FOLDED, take(&c.events_folded));
        set.count(LOAD_SNAPSHOT_AGE, take(&c.age_sum));
        set.count(LOAD_SNAPSHOT_AGE_MAX, take(&c.age_max));
        set.count(LOAD_INVALID_SKIPPED, take(&c.invalid_skipped));
        set.count(LOAD_FULL_REPLAYS, take(&c.full_replays));
        set.count(LOAD_REQUESTS, take(&c.requests));
        set
    }

    /// Writes the totals as one EMF line on stdout and starts over.
    pub fn flush(&self) {
        self.take().flush();
    }
}

/// A store whose every call is counted as one request.
#[derive(Debug, Clone)]
pub struct Metered<T> {
    inner: T,
    requests: Arc<AtomicU64>,
}

impl<T> Metered<T> {
    /// The store being metered.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every call is one request, counted as it is forwarded.
impl<E: EventStore> EventStoreDecorator for Metered<E> {
    type Inner = E;

    fn delegate(&self) -> &E {
        self.count();
        &self.inner
    }
}

/// Every call is one request, counted as it is forwarded, except `fetch_state`: it makes a
/// request only for an offloaded state, and the read that returned the record was counted.
#[async_trait]
impl<S: SnapshotStore> SnapshotStoreDecorator for Metered<S> {
    type Inner = S;

    fn delegate(&self) -> &S {
        self.count();
        &self.inner
    }

    async fn fetch_state(&self, record: SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.inner.fetch_state(record).await
    }
}
