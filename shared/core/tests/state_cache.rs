//! The repository's cache of warm states with the in-memory adapters: a warm load reads only the
//! newer events in one request, a save keeps what it wrote, and whatever the cache cannot prove
//! (a conflict, a boundary event that is not the cached one, an event that does not follow)
//! evicts the entry and the load answers as it does without a cache. The property test runs
//! random commands, loads and saves, with a second writer the cache never sees, against a full
//! replay.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::error::EventError;
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::EventStore;
use snapshot_core::registry::fold_envelopes;
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::testing::stored_event;
use snapshot_core::{AggregateRepository, Registry, RepositoryError, StateCache};

type Repo = AggregateRepository<Arc<InMemoryEventStore>, Arc<InMemorySnapshotStore>>;

/// Two repositories over the same stores: `warm` with a cache of `capacity` bytes, `other`
/// without (a writer in another process, which the cache never hears of).
struct Stores {
    events: Arc<InMemoryEventStore>,
    snapshots: Arc<InMemorySnapshotStore>,
    warm: Repo,
    other: Repo,
}

impl Stores {
    fn new(capacity: usize) -> Self {
        let events = Arc::new(InMemoryEventStore::new());
        let snapshots = Arc::new(InMemorySnapshotStore::new());
        let repo = || {
            AggregateRepository::new(
                Arc::clone(&events),
                Arc::clone(&snapshots),
                SnapshotCodec::default(),
            )
        };
        let warm = repo().with_state_cache(Arc::new(StateCache::new(capacity)));
        let other = repo();
        Self {
            events,
            snapshots,
            warm,
            other,
        }
    }

    fn cache(&self) -> &StateCache {
        self.warm.state_cache().unwrap()
    }

    fn requests(&self) -> (u64, u64) {
        (self.events.requests(), self.snapshots.requests())
    }

    /// The state and version of a full replay of the stored events.
    async fn replay(&self, id: &str) -> (InventoryItem, u64) {
        let stored = self.events.read(id, 1, None).await.unwrap();
        let state = fold_envelopes::<InventoryItem>(id, 0, None, &stored).unwrap();
        (state, stored.len() as u64)
    }

    /// Appends `receipts` receipts through the other writer.
    async fn other_receives(&self, id: &str, receipts: usize) {
        let (mut root, _) = self.other.load::<InventoryItem>(id).await.unwrap();
        for _ in 0..receipts {
            root.receive(1, None).unwrap();
        }
        self.other.save(&mut root, None).await.unwrap();
    }
}

async fn created(repo: &Repo, id: &str, receipts: usize) -> AggregateRoot<InventoryItem> {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU", "Thing", 1).unwrap();
    for _ in 0..receipts {
        root.receive(1, None).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    root
}

#[tokio::test]
async fn a_saved_aggregate_loads_from_the_cache_in_one_request() {
    let stores = Stores::new(1 << 20);
    let root = created(&stores.warm, "i1", 20).await;
    assert_eq!(stores.cache().cached_version("i1"), Some(21));
    let before = stores.requests();

    let (loaded, report) = stores.warm.load::<InventoryItem>("i1").await.unwrap();

    let after = stores.requests();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "one event read, no snapshot read"
    );
    assert!(report.from_cache);
    assert_eq!((report.requests, report.round_trips), (1, 1));
    assert_eq!(report.events_replayed, 0);
    assert_eq!(report.snapshot_version, None);
    assert_eq!(loaded.version(), 21);
    assert_eq!(loaded.state(), root.state());
    assert_eq!(stores.cache().stats().hits, 1);
}

#[tokio::test]
async fn a_warm_load_folds_only_the_events_another_writer_added() {
    let stores = Stores::new(1 << 20);
    created(&stores.warm, "i2", 5).await;
    stores.other_receives("i2", 3).await;
    let before = stores.requests();

    let (loaded, report) = stores.warm.load::<InventoryItem>("i2").await.unwrap();

    assert_eq!(stores.requests().0 - before.0, 1);
    assert_eq!(stores.requests().1, before.1);
    assert!(report.from_cache);
    assert_eq!(report.events_replayed, 3);
    let (replayed, version) = stores.replay("i2").await;
    assert_eq!((loaded.state(), loaded.version()), (&replayed, version));
    assert_eq!(stores.cache().cached_version("i2"), Some(9));
}

#[tokio::test]
async fn a_conflict_evicts_the_entry_and_the_next_load_reads_the_stores() {
    let stores = Stores::new(1 << 20);
    let mut stale = created(&stores.warm, "i3", 2).await;
    stores.other_receives("i3", 1).await;
    stale.receive(5, None).unwrap();

    let err = stores.warm.save(&mut stale, None).await.unwrap_err();

    assert!(err.is_conflict(), "{err}");
    assert_eq!(stores.cache().cached_version("i3"), None);
    assert_eq!(stores.cache().stats().invalidated, 1);
    let (loaded, report) = stores.warm.load::<InventoryItem>("i3").await.unwrap();
    assert!(!report.from_cache);
    assert_eq!(loaded.state(), &stores.replay("i3").await.0);
    assert_eq!(stores.cache().cached_version("i3"), Some(4));
}

/// The events from the cached version on, replaced: as after a table restored from a backup
/// and written again, or recreated.
#[tokio::test]
async fn a_boundary_event_that_is_not_the_cached_one_evicts_and_the_load_falls_back() {
    let stores = Stores::new(1 << 20);
    created(&stores.warm, "i4", 4).await;
    assert_eq!(stores.cache().cached_version("i4"), Some(5));
    stores.events.truncate_after("i4", 4);
    let receipt = |sequence: u64| {
        stored_event(
            "i4",
            sequence,
            "INVENTORY_ITEM",
            "StockReceived",
            json!({"quantity": 100}),
        )
    };
    stores.events.insert_raw(receipt(5));
    stores.events.insert_raw(receipt(6));
    let before = stores.requests();

    let (loaded, report) = stores.warm.load::<InventoryItem>("i4").await.unwrap();

    let after = stores.requests();
    assert!(!report.from_cache);
    let (replayed, version) = stores.replay("i4").await;
    assert_eq!((loaded.state(), loaded.version()), (&replayed, version));
    assert_eq!(loaded.state().on_hand, 3 + 200);
    // The cache's read, then the load's own two (newest snapshot and newest events).
    assert_eq!(after.0 + after.1 - before.0 - before.1, 3);
    assert_eq!((report.requests, report.round_trips), (3, 2));
    assert_eq!(stores.cache().stats().invalidated, 1);
    assert_eq!(stores.cache().cached_version("i4"), Some(6), "refreshed");
    let (_, report) = stores.warm.load::<InventoryItem>("i4").await.unwrap();
    assert!(report.from_cache);
}

#[tokio::test]
async fn a_stream_restored_to_before_the_cached_version_evicts_and_the_load_falls_back() {
    let stores = Stores::new(1 << 20);
    created(&stores.warm, "i5", 6).await;
    stores.events.truncate_after("i5", 3);

    let (loaded, report) = stores.warm.load::<InventoryItem>("i5").await.unwrap();

    assert!(!report.from_cache);
    assert_eq!(loaded.version(), 3);
    assert_eq!(loaded.state(), &stores.replay("i5").await.0);
    assert_eq!(stores.cache().cached_version("i5"), Some(3));
}

#[tokio::test]
async fn an_event_that_does_not_follow_evicts_and_the_load_fails_as_without_a_cache() {
    let stores = Stores::new(1 << 20);
    created(&stores.warm, "i6", 2).await;
    // A gap: no event 4.
    stores.events.insert_raw(stored_event(
        "i6",
        5,
        "INVENTORY_ITEM",
        "StockReceived",
        json!({"quantity": 1}),
    ));

    let err = stores.warm.load::<InventoryItem>("i6").await.unwrap_err();

    assert!(
        matches!(
            err,
            RepositoryError::Event(EventError::SequenceGap {
                expected: 4,
                found: 5,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(stores.cache().cached_version("i6"), None);
    assert!(stores.cache().stats().invalidated >= 1);
    let uncached = stores.other.load::<InventoryItem>("i6").await.unwrap_err();
    assert_eq!(uncached.to_string(), err.to_string());
}

#[tokio::test]
async fn load_kind_uses_the_cache_and_reads_from_the_stores_when_asked() {
    let stores = Stores::new(1 << 20);
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    created(&stores.other, "i7", 3).await;

    let cold = stores.warm.load_kind(kind, "i7").await.unwrap();
    stores.other_receives("i7", 2).await;
    let before = stores.requests();
    let warm = stores.warm.load_kind(kind, "i7").await.unwrap();

    assert!(!cold.report.from_cache);
    assert!(warm.report.from_cache);
    assert_eq!(stores.requests().0 - before.0, 1);
    assert_eq!(stores.requests().1, before.1);
    assert_eq!(warm.report.events_replayed, 2);
    let replay = stores.warm.replay_kind(kind, "i7").await.unwrap();
    assert_eq!(warm.state_json, replay.state_json);
    assert_eq!(
        (warm.version, &warm.last_event_id),
        (replay.version, &replay.last_event_id)
    );

    let before = stores.requests();
    let fresh = stores.warm.load_kind_from_stores(kind, "i7").await.unwrap();
    assert!(!fresh.report.from_cache);
    assert_eq!(stores.requests().1 - before.1, 1, "the snapshot read");
    assert_eq!(fresh.state_json, replay.state_json);
}

#[tokio::test]
async fn a_manual_snapshot_is_built_from_the_stores_not_the_cache() {
    let stores = Stores::new(1 << 20);
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    created(&stores.warm, "i8", 3).await;
    let before = stores.requests();

    let (record, _) = stores
        .warm
        .snapshot_now(kind, "i8", SnapshotMetadata::default(), None)
        .await
        .unwrap();

    // The newest snapshot read with the newest events, then the put and the head.
    assert!(stores.requests().1 - before.1 >= 2);
    assert_eq!(stores.cache().stats().hits, 0);
    assert_eq!(record.header.version, 4);
}

#[tokio::test]
async fn a_cache_too_small_for_a_state_keeps_nothing_and_loads_as_before() {
    let stores = Stores::new(64);
    created(&stores.warm, "i9", 2).await;
    assert!(stores.cache().is_empty());
    let (_, report) = stores.warm.load::<InventoryItem>("i9").await.unwrap();
    assert!(!report.from_cache);
    assert_eq!((report.requests, report.round_trips), (2, 1));
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    /// Receive through the warm repository's root (a conflict reloads it and retries).
    Receive(usize, i64),
    /// Ship through the warm repository's root, as many as allowed.
    Adjust(usize, i64),
    /// The other writer receives.
    OtherReceives(usize, i64),
    /// A warm typed load, checked against a full replay, becomes the root.
    Load(usize),
    /// A warm JSON load, checked against a full replay.
    LoadKind(usize),
    /// A manual snapshot (so cold loads start from snapshots too).
    Snapshot(usize),
    /// The entry dropped (as after a snapshot deleted by the admin API).
    Evict(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0..3usize;
    prop_oneof![
        4 => (id.clone(), 1..30i64).prop_map(|(i, q)| Step::Receive(i, q)),
        1 => (id.clone(), -10..10i64).prop_map(|(i, d)| Step::Adjust(i, d)),
        3 => (id.clone(), 1..30i64).prop_map(|(i, q)| Step::OtherReceives(i, q)),
        4 => id.clone().prop_map(Step::Load),
        2 => id.clone().prop_map(Step::LoadKind),
        1 => id.clone().prop_map(Step::Snapshot),
        1 => id.prop_map(Step::Evict),
    ]
}

const IDS: [&str; 3] = ["p-0", "p-1", "p-2"];

impl Stores {
    /// Runs `command` on `root` and saves; on a conflict (the other writer got there first)
    /// loads again through the cache and retries once.
    async fn command(
        &self,
        root: &mut AggregateRoot<InventoryItem>,
        command: impl Fn(&mut AggregateRoot<InventoryItem>),
    ) -> Result<(), TestCaseError> {
        command(root);
        match self.warm.save(root, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => {
                prop_assert_eq!(self.cache().cached_version(root.id()), None);
                *root = self.warm.load::<InventoryItem>(root.id()).await.unwrap().0;
                command(root);
                self.warm.save(root, None).await.unwrap();
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e.to_string())),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the interleaving of commands, saves, warm loads, a writer the cache never
    /// sees, snapshots and evictions, and whatever the byte bound (from one entry to all),
    /// every load answers the state and version of a full replay, and a warm load is one
    /// request.
    #[test]
    fn warm_loads_equal_a_full_replay(
        steps in prop::collection::vec(step(), 1..60),
        capacity in prop_oneof![Just(700usize), Just(1500), Just(1 << 20)],
    ) {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            let stores = Stores::new(capacity);
            let registry = Registry::builtin();
            let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
            let mut roots = Vec::new();
            for id in IDS {
                roots.push(created(&stores.warm, id, 0).await);
            }
            for step in steps {
                match step {
                    Step::Receive(i, q) => {
                        stores.command(&mut roots[i], |r| { let _ = r.receive(q, None); }).await?;
                    }
                    Step::Adjust(i, d) => {
                        stores.command(&mut roots[i], |r| { let _ = r.adjust(d, "count"); }).await?;
                    }
                    Step::OtherReceives(i, q) => {
                        let (mut root, _) = stores.other.load::<InventoryItem>(IDS[i]).await.unwrap();
                        root.receive(q, None).unwrap();
                        stores.other.save(&mut root, None).await.unwrap();
                    }
                    Step::Load(i) => {
                        let cached = stores.cache().cached_version(IDS[i]).is_some();
                        let before = stores.requests();
                        let (loaded, report) = stores.warm.load::<InventoryItem>(IDS[i]).await.unwrap();
                        let after = stores.requests();
                        let (replayed, version) = stores.replay(IDS[i]).await;
                        prop_assert_eq!(loaded.state(), &replayed);
                        prop_assert_eq!(loaded.version(), version);
                        prop_assert_eq!(report.from_cache, cached);
                        if cached {
                            prop_assert_eq!((after.0 - before.0, after.1 - before.1), (1, 0));
                            prop_assert_eq!((report.requests, report.round_trips), (1, 1));
                        }
                        roots[i] = loaded;
                    }
                    Step::LoadKind(i) => {
                        let loaded = stores.warm.load_kind(kind, IDS[i]).await.unwrap();
                        let replayed = stores.warm.replay_kind(kind, IDS[i]).await.unwrap();
                        prop_assert_eq!(&loaded.state_json, &replayed.state_json);
                        prop_assert_eq!(loaded.version, replayed.version);
                        prop_assert_eq!(&loaded.last_event_id, &replayed.last_event_id);
                    }
                    Step::Snapshot(i) => {
                        stores.other.snapshot_now(kind, IDS[i], SnapshotMetadata::default(), None).await.unwrap();
                    }
                    Step::Evict(i) => {
                        stores.cache().evict(IDS[i]);
                    }
                }
                prop_assert!(stores.cache().bytes() <= capacity);
            }
            for id in IDS {
                let (loaded, _) = stores.warm.load::<InventoryItem>(id).await.unwrap();
                let (replayed, version) = stores.replay(id).await;
                prop_assert_eq!(loaded.state(), &replayed);
                prop_assert_eq!(loaded.version(), version);
            }
            Ok(())
        })?;
    }
}
