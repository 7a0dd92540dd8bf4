//! Claim check of states larger than one item, on the in-memory adapters: offload on write,
//! transparent reads, deletes of the object with the item, and every way an object can be
//! lost or damaged leading to a skipped snapshot, never an applied one.

use async_trait::async_trait;
use snapshot_core::codec::{sha256_hex, SnapshotCodec, DYNAMODB_ITEM_LIMIT};
use snapshot_core::domain::{AggregateRoot, Warehouse};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore, InMemoryStateObjects};
use snapshot_core::offload::{object_key, OffloadingSnapshotStore, StateObjectStore};
use snapshot_core::ports::{PutOutcome, SnapshotStore, MAX_EVENTS_PER_APPEND};
use snapshot_core::snapshot::{SnapshotKey, SnapshotMetadata, StateRef};
use snapshot_core::{AggregateRepository, Registry, RepositoryError, StoreError};

type Offloading<O> = OffloadingSnapshotStore<InMemorySnapshotStore, O>;

fn codec(offload: bool) -> SnapshotCodec {
    SnapshotCodec {
        offload,
        ..SnapshotCodec::default()
    }
}

/// A warehouse whose state is about `placements` × 2 KB of JSON that compresses poorly
/// (hex of hashes), so it exceeds one item even compressed.
async fn large_warehouse<S: SnapshotStore>(
    repo: &AggregateRepository<InMemoryEventStore, S>,
    id: &str,
    placements: usize,
) -> u64 {
    let mut root = AggregateRoot::<Warehouse>::new(id);
    root.create("Big", i64::MAX / 2).unwrap();
    for l in 0..20 {
        root.add_location(&format!("L{l:02}")).unwrap();
    }
    repo.save(&mut root, None).await.unwrap();
    for p in 0..placements {
        let sku: String = (0..32)
            .map(|i| sha256_hex(format!("{id}/{p}/{i}").as_bytes()))
            .collect();
        root.place(&format!("L{:02}", p % 20), &sku, 1).unwrap();
        if root.uncommitted().len() == MAX_EVENTS_PER_APPEND {
            repo.save(&mut root, None).await.unwrap();
        }
    }
    repo.save(&mut root, None).await.unwrap();
    root.version()
}

fn kind() -> std::sync::Arc<dyn snapshot_core::AggregateKind> {
    Registry::builtin().get("WAREHOUSE").unwrap().clone()
}

#[tokio::test]
async fn a_state_larger_than_one_item_is_offloaded_and_loads_back() {
    let objects = InMemoryStateObjects::new();
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        Offloading::new(InMemorySnapshotStore::new(), Some(objects)),
        codec(true),
    );
    let version = large_warehouse(&repo, "wh-big", 400).await;
    let (record, outcome) = repo
        .snapshot_now(kind().as_ref(), "wh-big", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(record.header.encoding, "s3+json+zstd");
    assert!(record.header.stored_bytes as usize > DYNAMODB_ITEM_LIMIT);

    // The item keeps the pointer and no state; the object is committed.
    let store = repo.snapshots();
    let item = store.inner().get("wh-big", version).await.unwrap().unwrap();
    assert!(item.state.is_empty(), "the item must not carry the state");
    let state_ref = item.header.state_ref.clone().expect("stateRef");
    assert_eq!(state_ref.key, object_key("wh-big", version));
    let objects = store.objects().unwrap();
    assert_eq!(objects.objects(), vec![(state_ref.key.clone(), true)]);

    // Loads read the object, verify it and start from the snapshot.
    let (root, report) = repo.load::<Warehouse>("wh-big").await.unwrap();
    assert_eq!(report.snapshot_version, Some(version));
    assert_eq!(report.events_replayed, 0);
    let replayed = repo.replay_kind(kind().as_ref(), "wh-big").await.unwrap();
    assert_eq!(
        serde_json::to_vec(root.state()).unwrap(),
        replayed.state_json
    );

    // A second snapshot at the same version writes nothing.
    let before = objects.requests();
    let (_, again) = repo
        .snapshot_now(kind().as_ref(), "wh-big", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(again, PutOutcome::AlreadyExists);
    assert_eq!(
        objects.requests() - before,
        1,
        "only the load's object read"
    );

    // Deleting the snapshot deletes its object.
    assert!(store.delete("wh-big", version).await.unwrap());
    assert!(objects.objects().is_empty());
}

#[tokio::test]
async fn without_a_state_bucket_an_oversized_snapshot_is_refused_naming_the_setting() {
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        Offloading::<InMemoryStateObjects>::new(InMemorySnapshotStore::new(), None),
        codec(true),
    );
    large_warehouse(&repo, "wh-nobucket", 400).await;
    let err = repo
        .snapshot_now(
            kind().as_ref(),
            "wh-nobucket",
            SnapshotMetadata::default(),
            None,
        )
        .await
        .unwrap_err();
    match err {
        RepositoryError::Store(StoreError::InvalidRequest {
            aggregate_id,
            reason,
        }) => {
            assert_eq!(aggregate_id, "wh-nobucket");
            assert!(reason.contains("SNAPSHOT_BUCKET"), "{reason}");
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert!(repo.snapshots().inner().keys().is_empty());
}

#[tokio::test]
async fn without_offload_the_codec_refuses_as_before() {
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        InMemorySnapshotStore::new(),
        codec(false),
    );
    large_warehouse(&repo, "wh-inline", 400).await;
    let err = repo
        .snapshot_now(
            kind().as_ref(),
            "wh-inline",
            SnapshotMetadata::default(),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RepositoryError::Snapshot(_)), "{err:?}");
}

async fn offloaded_then(
    damage: impl FnOnce(&InMemoryStateObjects, &str),
) -> (snapshot_core::LoadReport, bool) {
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        Offloading::new(
            InMemorySnapshotStore::new(),
            Some(InMemoryStateObjects::new()),
        ),
        codec(true),
    );
    let version = large_warehouse(&repo, "wh-dmg", 400).await;
    repo.snapshot_now(kind().as_ref(), "wh-dmg", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    damage(
        repo.snapshots().objects().unwrap(),
        &object_key("wh-dmg", version),
    );
    let (root, report) = repo.load::<Warehouse>("wh-dmg").await.unwrap();
    let replayed = repo.replay_kind(kind().as_ref(), "wh-dmg").await.unwrap();
    let same = serde_json::to_vec(root.state()).unwrap() == replayed.state_json;
    (report, same)
}

#[tokio::test]
async fn a_missing_object_makes_the_snapshot_skipped_and_the_load_replays() {
    let (report, same) = offloaded_then(InMemoryStateObjects::remove).await;
    assert_eq!(report.snapshot_version, None);
    assert_eq!(report.snapshots_skipped, 1);
    assert!(same);
}

#[tokio::test]
async fn a_damaged_object_fails_its_checksum_and_is_skipped() {
    let (report, same) =
        offloaded_then(|objects, key| objects.overwrite(key, b"not the state".to_vec())).await;
    assert_eq!(report.snapshot_version, None);
    assert_eq!(report.snapshots_skipped, 1);
    assert!(same);
}

#[tokio::test]
async fn pruning_deletes_objects_with_their_items() {
    let store = Offloading::new(
        InMemorySnapshotStore::new(),
        Some(InMemoryStateObjects::new()),
    );
    let repo = AggregateRepository::new(InMemoryEventStore::new(), store, codec(true));
    let version = large_warehouse(&repo, "wh-prune", 400).await;
    repo.snapshot_now(
        kind().as_ref(),
        "wh-prune",
        SnapshotMetadata::default(),
        None,
    )
    .await
    .unwrap();
    let keys = [SnapshotKey {
        aggregate_id: "wh-prune".to_owned(),
        version,
    }];
    assert_eq!(repo.snapshots().delete_many(&keys).await.unwrap(), 1);
    assert!(repo.snapshots().objects().unwrap().objects().is_empty());
    assert!(repo.snapshots().inner().keys().is_empty());
}

/// Object store whose commit fails: S3 refusing the tag update cannot be produced by the
/// emulator on demand.
#[derive(Default)]
struct CommitFails(InMemoryStateObjects);

#[async_trait]
impl StateObjectStore for CommitFails {
    async fn put_pending(&self, key: &str, bytes: Vec<u8>) -> Result<StateRef, StoreError> {
        self.0.put_pending(key, bytes).await
    }
    async fn commit(&self, _: &StateRef) -> Result<(), StoreError> {
        Err(StoreError::backend("PutObjectTagging", "throttled"))
    }
    async fn get(&self, state: &StateRef) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(state).await
    }
    async fn delete_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        self.0.delete_keys(keys).await
    }
}

#[tokio::test]
async fn a_failed_commit_removes_the_item_so_a_retry_starts_over() {
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        Offloading::new(InMemorySnapshotStore::new(), Some(CommitFails::default())),
        codec(true),
    );
    large_warehouse(&repo, "wh-commit", 400).await;
    let err = repo
        .snapshot_now(
            kind().as_ref(),
            "wh-commit",
            SnapshotMetadata::default(),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PutObjectTagging"), "{err}");
    assert!(
        repo.snapshots().inner().keys().is_empty(),
        "no item without a committed object"
    );
    // The object stays pending: the bucket's lifecycle rule removes it.
    let objects = repo.snapshots().objects().unwrap().0.objects();
    assert_eq!(objects.len(), 1);
    assert!(!objects[0].1);
}

#[tokio::test]
async fn the_newest_snapshot_is_read_without_its_object_until_its_state_is_needed() {
    let objects = InMemoryStateObjects::new();
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        Offloading::new(InMemorySnapshotStore::new(), Some(objects)),
        codec(true),
    );
    let version = large_warehouse(&repo, "wh-lazy", 400).await;
    repo.snapshot_now(
        kind().as_ref(),
        "wh-lazy",
        SnapshotMetadata::default(),
        None,
    )
    .await
    .unwrap();
    let store = repo.snapshots();
    let objects = store.objects().unwrap();

    // The policy read: the item only, no object request.
    let before = objects.requests();
    let newest = store
        .newest_unfetched("wh-lazy")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(objects.requests(), before, "no object read for the header");
    assert_eq!(newest.header.version, version);
    assert!(newest.header.state_ref.is_some());
    assert!(newest.state.is_empty());

    // When it is the base: one object read completes it to what a full read returns.
    let fetched = store.fetch_state(newest).await.unwrap();
    assert_eq!(objects.requests() - before, 1);
    let read = store.records("wh-lazy", None, 1).await.unwrap().items;
    assert_eq!(Some(&fetched), read.first().and_then(|r| r.as_ref().ok()));
    assert!(snapshot_core::snapshot::open_snapshot(
        repo.codec(),
        &fetched,
        "wh-lazy",
        "WAREHOUSE",
        1
    )
    .is_ok());

    // A lost object: the completed read says the snapshot is malformed.
    let unfetched = store
        .newest_unfetched("wh-lazy")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    objects.remove(&object_key("wh-lazy", version));
    assert!(matches!(
        store.fetch_state(unfetched).await,
        Err(StoreError::MalformedSnapshot { .. })
    ));
}
