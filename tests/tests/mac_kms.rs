//! Snapshot authentication against DynamoDB Local and moto's KMS (docs/security.md#snapshot-authentication):
//! the MAC key is a KMS data key made and decrypted through moto's KMS, exactly as a
//! function does at cold start; snapshots planted in the DynamoDB table with a valid checksum
//! but no MAC or a wrong one are never used by a load, a correctly signed one is; rotation
//! keeps old MACs valid until the old key is retired.

use integration_tests::TestTables;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::mac::{SnapshotAuthenticator, SnapshotKey, SnapshotKeys, UnsignedPolicy};
use snapshot_core::ports::{PutOutcome, SnapshotStore};
use snapshot_core::snapshot::{build_snapshot, SnapshotMetadata, SnapshotRecord, SnapshotSubject};
use snapshot_core::{AggregateRepository, Registry};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

type Repo = AggregateRepository<DynamoEventStore, DynamoSnapshotStore>;

async fn kms() -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&integration_tests::sdk_config().await)
}

fn repo(tables: &TestTables, codec: SnapshotCodec) -> Repo {
    AggregateRepository::new(tables.event_store(), tables.snapshot_store(), codec)
}

/// An item at version 3 (on hand 5 + 7 = 12).
async fn seed(repo: &Repo, id: &str) -> AggregateRoot<InventoryItem> {
    let mut root = AggregateRoot::<InventoryItem>::new(id);
    root.create("SKU-1", "Widget", 2).unwrap();
    root.receive(5, None).unwrap();
    root.receive(7, None).unwrap();
    repo.save(&mut root, None).await.unwrap();
    root
}

/// A snapshot of `id` at `version` whose state claims 1 000 000 on hand: if a load ever used
/// it, the loaded state would show it. Its checksum is valid; its MAC is whatever `codec`
/// makes (the caller may strip or replace it).
async fn forged(repo: &Repo, codec: &SnapshotCodec, id: &str, version: u64) -> SnapshotRecord {
    let boundary =
        snapshot_core::ports::EventStore::read(repo.events(), id, version, Some(version))
            .await
            .unwrap();
    let mut state =
        serde_json::to_value(repo.load::<InventoryItem>(id).await.unwrap().0.state()).unwrap();
    state["onHand"] = serde_json::json!(1_000_000);
    let subject = SnapshotSubject {
        aggregate_id: id,
        aggregate_type: "INVENTORY_ITEM",
        schema_version: 1,
        version,
        last_event_id: Some(&boundary[0].event_id),
    };
    build_snapshot(
        codec,
        subject,
        serde_json::to_vec(&state).unwrap(),
        SnapshotMetadata::default(),
        1,
        None,
    )
    .unwrap()
}

async fn on_hand(repo: &Repo, id: &str) -> (i64, Option<u64>) {
    let (root, report) = repo.load::<InventoryItem>(id).await.unwrap();
    let state = serde_json::to_value(root.state()).unwrap();
    (state["onHand"].as_i64().unwrap(), report.snapshot_version)
}

#[tokio::test]
async fn planted_snapshots_are_never_used_and_signed_ones_are() {
    let tables = TestTables::create("macplant").await;
    let kms = kms().await;
    let (_, _, keys) = snapshot_kms::set_up_keys(&kms, "k1").await.unwrap();
    let codec = SnapshotCodec::default().with_keys(keys);
    let repo = repo(&tables, codec.clone());
    seed(&repo, "item-m1").await;

    // No MAC at version 2; a MAC under the right key id but another secret at version 3.
    let mut unsigned = forged(&repo, &codec, "item-m1", 2).await;
    unsigned.header.mac = None;
    let attacker = SnapshotCodec::default().with_keys(
        SnapshotKeys::new(SnapshotKey::new("k1", vec![7; 32]).unwrap(), vec![]).unwrap(),
    );
    let bad_mac = forged(&repo, &attacker, "item-m1", 3).await;
    assert_eq!(bad_mac.header.mac.as_ref().unwrap().key_id, "k1");
    for planted in [&unsigned, &bad_mac] {
        assert_eq!(
            tables
                .snapshot_store()
                .put_if_absent(planted)
                .await
                .unwrap(),
            PutOutcome::Created
        );
    }

    let (on_hand_now, used) = on_hand(&repo, "item-m1").await;
    assert_eq!(on_hand_now, 12, "the forged states were not applied");
    assert_eq!(used, None, "neither planted snapshot was used");
    for version in [2, 3] {
        let stored = tables
            .snapshot_store()
            .get("item-m1", version)
            .await
            .unwrap()
            .unwrap();
        let mark = stored
            .header
            .invalid
            .expect("the planted snapshot is marked invalid");
        assert!(mark.reason.contains("MAC"), "{}", mark.reason);
    }
    // The admin API's reader refuses them too (it opens snapshots through the same codec).
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    let loaded = repo.load_kind(kind, "item-m1").await.unwrap();
    assert_eq!(loaded.report.snapshot_version, None);

    // A correctly signed snapshot replaces the marked one at version 3 and is used.
    let (record, outcome) = repo
        .snapshot_now(kind, "item-m1", SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(record.header.mac.as_ref().unwrap().key_id, "k1");
    assert_eq!(on_hand(&repo, "item-m1").await, (12, Some(3)));
}

#[tokio::test]
async fn rotation_keeps_old_macs_until_the_old_key_is_retired() {
    let tables = TestTables::create("macrotate").await;
    let kms = kms().await;
    let (kms_key, k1, keys_k1) = snapshot_kms::set_up_keys(&kms, "k1").await.unwrap();
    let before = repo(&tables, SnapshotCodec::default().with_keys(keys_k1));
    seed(&before, "item-r1").await;
    let registry = Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
    before
        .snapshot_now(kind, "item-r1", SnapshotMetadata::default(), None)
        .await
        .unwrap();

    // Rotate: a second data key under the same KMS key signs; k1 is still accepted.
    let k2 = snapshot_kms::generate_key(&kms, &kms_key, "k2")
        .await
        .unwrap();
    let entries = format!("{},{}", k2.to_entry(), k1.to_entry());
    let rotated_keys = snapshot_kms::keys_from_values(&kms, Some(entries), Some(kms_key.clone()))
        .await
        .unwrap();
    assert_eq!(rotated_keys.accepted_ids(), vec!["k2", "k1"]);
    let rotated = repo(&tables, SnapshotCodec::default().with_keys(rotated_keys));
    assert_eq!(on_hand(&rotated, "item-r1").await, (12, Some(3)));

    // Retire k1: the snapshot it signed is refused (skipped, not marked: a key this reader
    // does not hold is no proof of forgery).
    let retired_keys = snapshot_kms::keys_from_values(&kms, Some(k2.to_entry()), Some(kms_key))
        .await
        .unwrap();
    let retired = repo(&tables, SnapshotCodec::default().with_keys(retired_keys));
    assert_eq!(on_hand(&retired, "item-r1").await, (12, None));
    let stored = tables
        .snapshot_store()
        .get("item-r1", 3)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.header.invalid.is_none());
}

#[tokio::test]
async fn unsigned_snapshots_are_used_only_inside_the_grace_window() {
    let tables = TestTables::create("macgrace").await;
    let kms = kms().await;
    let (_, _, keys) = snapshot_kms::set_up_keys(&kms, "k1").await.unwrap();
    let now = snapshot_core::clock::now_millis();
    let codec = |unsigned| {
        SnapshotCodec::default()
            .with_authenticator(SnapshotAuthenticator::new(keys.clone()).with_unsigned(unsigned))
    };
    let graced = repo(&tables, codec(UnsignedPolicy::AcceptUntil(now + 3_600_000)));
    let root = seed(&graced, "item-g1").await;
    // An honest snapshot written before MACs existed: the real state, no MAC.
    let subject = SnapshotSubject {
        aggregate_id: "item-g1",
        aggregate_type: "INVENTORY_ITEM",
        schema_version: 1,
        version: 3,
        last_event_id: None,
    };
    let mut legacy = build_snapshot(
        graced.codec(),
        subject,
        serde_json::to_vec(root.state()).unwrap(),
        SnapshotMetadata::default(),
        1,
        None,
    )
    .unwrap();
    legacy.header.mac = None;
    tables
        .snapshot_store()
        .put_if_absent(&legacy)
        .await
        .unwrap();

    assert_eq!(on_hand(&graced, "item-g1").await, (12, Some(3)));
    let expired = repo(&tables, codec(UnsignedPolicy::AcceptUntil(now - 1)));
    assert_eq!(on_hand(&expired, "item-g1").await, (12, None));
}

#[tokio::test]
async fn a_data_key_decrypts_only_with_its_purpose() {
    let kms = kms().await;
    let (kms_key, key, _) = snapshot_kms::set_up_keys(&kms, "k1").await.unwrap();
    // The same ciphertext under the same KMS key, asked for without the MAC purpose, is
    // refused by KMS: the purpose binds it.
    let refused = kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(key.ciphertext.clone()))
        .key_id(&kms_key)
        .send()
        .await;
    assert!(refused.is_err(), "decrypted without its encryption context");
    // And a missing variable fails the cold start naming it.
    let missing = snapshot_kms::keys_from_values(&kms, None, None)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("SNAPSHOT_MAC_KEYS"),
        "{missing}"
    );
}
