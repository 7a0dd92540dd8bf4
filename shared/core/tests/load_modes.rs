//! The fewest-read-units load mode over an event store whose eventually consistent reads lag
//! behind: a stale tail gives an older state (a prefix of the stream), never a wrong one, and a
//! snapshot newer than what the lagging read shows is confirmed strongly, not marked invalid.

use std::sync::Arc;

use async_trait::async_trait;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{Aggregate, AggregateRoot, DecodedEvent, EventEnvelope, InventoryItem};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::{EventStore, EventStoreDecorator};
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::{AggregateRepository, LoadMode, Registry, StoreError};

/// An event store whose relaxed (eventually consistent) reads see only the events up to
/// `visible`, like a replica that has not caught up; strong reads see everything.
struct Lagging {
    inner: InMemoryEventStore,
    visible: u64,
}

#[async_trait]
impl EventStoreDecorator for Lagging {
    type Inner = InMemoryEventStore;

    fn delegate(&self) -> &InMemoryEventStore {
        &self.inner
    }

    async fn read_counted_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        let to = Some(to.unwrap_or(u64::MAX).min(self.visible));
        self.inner.read_counted(aggregate_id, from, to).await
    }

    async fn read_decoded_relaxed<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        let to = Some(to.unwrap_or(u64::MAX).min(self.visible));
        self.inner.read_decoded::<A>(aggregate_id, from, to).await
    }
}

type Repo = AggregateRepository<Arc<Lagging>, Arc<InMemorySnapshotStore>>;

/// `InventoryItem` `item-lag` with `events` events (a create and receipts), a snapshot at
/// `snapshot_at`, loaded through a repository whose relaxed reads see `visible` events.
async fn history(events: u64, snapshot_at: u64, visible: u64) -> Repo {
    let store = Arc::new(Lagging {
        inner: InMemoryEventStore::new(),
        visible,
    });
    let snapshots = Arc::new(InMemorySnapshotStore::new());
    // Written through the default mode, whose reads are all strong.
    let writer = AggregateRepository::new(
        Arc::clone(&store),
        Arc::clone(&snapshots),
        SnapshotCodec::default(),
    );
    let mut root = AggregateRoot::<InventoryItem>::new("item-lag");
    root.create("SKU", "Thing", 1).unwrap();
    for _ in 1..snapshot_at {
        root.receive(1, None).unwrap();
    }
    writer.save(&mut root, None).await.unwrap();
    let registry = Registry::builtin();
    let kind = registry.get(InventoryItem::TYPE).unwrap();
    writer
        .snapshot_now(kind.as_ref(), "item-lag", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    for _ in snapshot_at..events {
        root.receive(1, None).unwrap();
    }
    writer.save(&mut root, None).await.unwrap();
    AggregateRepository::new(store, snapshots, SnapshotCodec::default())
        .with_load_mode(LoadMode::FewestReadUnits)
}

#[tokio::test]
async fn a_lagging_tail_gives_an_older_state_that_is_a_prefix_of_the_stream() {
    let repo = history(20, 10, 15).await;
    let (root, report) = repo.load::<InventoryItem>("item-lag").await.unwrap();
    assert_eq!(report.snapshot_version, Some(10));
    assert_eq!(
        root.version(),
        15,
        "the state as of the newest event the read saw"
    );
    assert_eq!(
        root.state().on_hand,
        14,
        "one unit received by each event after the create"
    );
    assert_eq!(report.round_trips, 2);
    assert_eq!(repo.snapshots_marked_invalid(), 0);
}

#[tokio::test]
async fn a_snapshot_beyond_a_lagging_read_is_confirmed_strongly_and_not_marked() {
    // The replica shows 8 events; the snapshot is at 10 and the stream at 12.
    let repo = history(12, 10, 8).await;
    let (root, report) = repo.load::<InventoryItem>("item-lag").await.unwrap();
    assert_eq!(report.snapshot_version, Some(10), "the snapshot is used");
    assert_eq!(report.snapshots_skipped, 0);
    assert_eq!(repo.snapshots_marked_invalid(), 0);
    assert_eq!(root.version(), 12, "the strong read brought the whole tail");
    assert_eq!(root.state().on_hand, 11);
    // Snapshot page, the relaxed tail (empty), the strong one.
    assert_eq!(report.round_trips, 3);
    let kind = Registry::builtin();
    let loaded = repo
        .load_kind(kind.get(InventoryItem::TYPE).unwrap().as_ref(), "item-lag")
        .await
        .unwrap();
    assert_eq!(loaded.version, 12);
    assert_eq!(repo.snapshots_marked_invalid(), 0);
}
