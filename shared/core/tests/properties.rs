//! Property tests: snapshot at k + events after k = full replay for every k (with multi-event
//! commits crossing snapshot thresholds), codec round trip, and corruption is always rejected.

use proptest::prelude::*;
use snapshot_core::codec::{Encoding, SnapshotCodec, StateBody};
use snapshot_core::domain::{Aggregate, AggregateRoot, EventEnvelope, InventoryItem, Warehouse};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::snapshot::{build_snapshot, open_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateRepository, LoadMode, Registry};

/// One attempted command; invalid ones are rejected by the domain and simply skipped.
#[derive(Debug, Clone)]
enum ItemOp {
    Receive(i64),
    Reserve(u8, i64),
    Release(u8, i64),
    Ship(u8, i64),
    Adjust(i64),
    Discontinue,
}

fn item_op() -> impl Strategy<Value = ItemOp> {
    prop_oneof![
        4 => (1..50i64).prop_map(ItemOp::Receive),
        3 => (0..4u8, 1..20i64).prop_map(|(o, q)| ItemOp::Reserve(o, q)),
        2 => (0..4u8, 1..20i64).prop_map(|(o, q)| ItemOp::Release(o, q)),
        2 => (0..4u8, 1..20i64).prop_map(|(o, q)| ItemOp::Ship(o, q)),
        1 => (-20..20i64).prop_map(ItemOp::Adjust),
        1 => Just(ItemOp::Discontinue),
    ]
}

fn run_item_op(root: &mut AggregateRoot<InventoryItem>, op: &ItemOp) {
    let order = |o: &u8| format!("order-{o}");
    let _ = match op {
        ItemOp::Receive(q) => root.receive(*q, None),
        ItemOp::Reserve(o, q) => root.reserve(&order(o), *q),
        ItemOp::Release(o, q) => root.release(&order(o), *q),
        ItemOp::Ship(o, q) => root.ship(&order(o), *q),
        ItemOp::Adjust(d) => root.adjust(*d, "count"),
        ItemOp::Discontinue => root.discontinue("eol"),
    };
}

#[derive(Debug, Clone)]
enum WarehouseOp {
    AddLocation(u8),
    RemoveLocation(u8),
    Place(u8, u8, i64),
    Pick(u8, u8, i64),
    Capacity(i64),
}

fn warehouse_op() -> impl Strategy<Value = WarehouseOp> {
    prop_oneof![
        2 => (0..6u8).prop_map(WarehouseOp::AddLocation),
        1 => (0..6u8).prop_map(WarehouseOp::RemoveLocation),
        4 => (0..6u8, 0..4u8, 1..30i64).prop_map(|(l, s, q)| WarehouseOp::Place(l, s, q)),
        3 => (0..6u8, 0..4u8, 1..30i64).prop_map(|(l, s, q)| WarehouseOp::Pick(l, s, q)),
        1 => (1..400i64).prop_map(WarehouseOp::Capacity),
    ]
}

fn run_warehouse_op(root: &mut AggregateRoot<Warehouse>, op: &WarehouseOp) {
    let loc = |l: &u8| format!("L{l}");
    let sku = |s: &u8| format!("SKU-{s}");
    let _ = match op {
        WarehouseOp::AddLocation(l) => root.add_location(&loc(l)),
        WarehouseOp::RemoveLocation(l) => root.remove_location(&loc(l)),
        WarehouseOp::Place(l, s, q) => root.place(&loc(l), &sku(s), *q),
        WarehouseOp::Pick(l, s, q) => root.pick(&loc(l), &sku(s), *q),
        WarehouseOp::Capacity(c) => root.change_capacity(*c),
    };
}

/// A command to run against an aggregate root (boxed so both aggregates share `commit_all`).
type Op<A> = Box<dyn Fn(&mut AggregateRoot<A>)>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Commits ops in groups of `commit_sizes` (multi-event commits), saving each through the
/// repository; returns the repository and the stored events.
async fn commit_all<A: Aggregate>(
    id: &str,
    create: impl FnOnce(&mut AggregateRoot<A>),
    ops: Vec<Op<A>>,
    commit_sizes: &[usize],
) -> (
    AggregateRepository<InMemoryEventStore, InMemorySnapshotStore>,
    Vec<EventEnvelope>,
) {
    let repo = AggregateRepository::new(
        InMemoryEventStore::new(),
        InMemorySnapshotStore::new(),
        SnapshotCodec::new(256),
    );
    let mut root = AggregateRoot::<A>::new(id);
    create(&mut root);
    repo.save(&mut root, None).await.unwrap();
    let mut ops = ops.into_iter();
    for size in commit_sizes.iter().cycle() {
        let batch: Vec<_> = ops.by_ref().take(*size).collect();
        if batch.is_empty() {
            break;
        }
        for op in batch {
            op(&mut root);
        }
        repo.save(&mut root, None).await.unwrap();
    }
    let events = repo.events().read(id, 1, None).await.unwrap();
    (repo, events)
}

/// For every k: a snapshot at k plus the events after k loads to exactly the full replay, and
/// the load reports that it used that snapshot and only the tail.
async fn assert_snapshot_at_every_k_equals_replay(
    repo: &AggregateRepository<InMemoryEventStore, InMemorySnapshotStore>,
    type_name: &str,
    id: &str,
    events: &[EventEnvelope],
) {
    let registry = Registry::builtin();
    let kind = registry.get(type_name).unwrap().as_ref();
    let replay = repo.replay_kind(kind, id).await.unwrap();
    let n = events.len() as u64;
    assert_eq!(replay.version, n);
    for k in 1..=n {
        let prefix_state = kind.fold_json(id, 0, None, &events[..k as usize]).unwrap();
        let subject = SnapshotSubject {
            aggregate_id: id,
            aggregate_type: type_name,
            schema_version: kind.schema_version(),
            version: k,
            last_event_id: Some(&events[k as usize - 1].event_id),
        };
        let record = build_snapshot(
            repo.codec(),
            subject,
            prefix_state,
            SnapshotMetadata::default(),
            0,
            None,
        )
        .unwrap();
        assert_eq!(
            record.header.version, k,
            "a snapshot is labelled with the last event it folded"
        );
        repo.snapshots().put_if_absent(&record).await.unwrap();
        let loaded = repo.load_kind(kind, id).await.unwrap();
        assert_eq!(loaded.report.snapshot_version, Some(k));
        assert_eq!(loaded.report.events_replayed, n - k);
        assert_eq!(loaded.version, n);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&loaded.state_json).unwrap(),
            serde_json::from_slice::<serde_json::Value>(&replay.state_json).unwrap(),
            "snapshot at {k} + tail differs from full replay"
        );
        repo.snapshots().delete(id, k).await.unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn inventory_item_snapshot_plus_tail_equals_replay(
        ops in prop::collection::vec(item_op(), 1..60),
        commit_sizes in prop::collection::vec(1usize..6, 1..5),
    ) {
        runtime().block_on(async {
            let ops: Vec<Op<InventoryItem>> = ops
                .into_iter()
                .map(|op| Box::new(move |root: &mut AggregateRoot<InventoryItem>| run_item_op(root, &op)) as Op<_>)
                .collect();
            let (repo, events) = commit_all::<InventoryItem>("item-p", |r| r.create("SKU", "Thing", 3).unwrap(), ops, &commit_sizes).await;
            assert_snapshot_at_every_k_equals_replay(&repo, "INVENTORY_ITEM", "item-p", &events).await;
        });
    }

    #[test]
    fn warehouse_snapshot_plus_tail_equals_replay(
        ops in prop::collection::vec(warehouse_op(), 1..60),
        commit_sizes in prop::collection::vec(1usize..6, 1..5),
    ) {
        runtime().block_on(async {
            let ops: Vec<Op<Warehouse>> = ops
                .into_iter()
                .map(|op| Box::new(move |root: &mut AggregateRoot<Warehouse>| run_warehouse_op(root, &op)) as Op<_>)
                .collect();
            let (repo, events) = commit_all::<Warehouse>("wh-p", |r| r.create("Main", 200).unwrap(), ops, &commit_sizes).await;
            assert_snapshot_at_every_k_equals_replay(&repo, "WAREHOUSE", "wh-p", &events).await;
        });
    }

    /// Snapshots taken by a count policy after multi-event commits that cross the threshold:
    /// each is labelled with the version it folded and a later load equals full replay.
    #[test]
    fn snapshots_taken_across_multi_event_commits_load_like_replay(
        ops in prop::collection::vec(item_op(), 1..80),
        commit_sizes in prop::collection::vec(1usize..8, 1..5),
        threshold in 1u64..10,
    ) {
        runtime().block_on(async {
            let registry = Registry::builtin();
            let kind = registry.get("INVENTORY_ITEM").unwrap().as_ref();
            let repo = AggregateRepository::new(InMemoryEventStore::new(), InMemorySnapshotStore::new(), SnapshotCodec::default());
            let mut root = AggregateRoot::<InventoryItem>::new("item-t");
            root.create("SKU", "Thing", 0).unwrap();
            let mut last_snapshot = 0;
            let mut ops = ops.into_iter();
            for size in commit_sizes.iter().cycle() {
                let batch: Vec<_> = ops.by_ref().take(*size).collect();
                for op in &batch {
                    run_item_op(&mut root, op);
                }
                let version = repo.save(&mut root, None).await.unwrap();
                if version - last_snapshot >= threshold {
                    let (record, _) = repo.snapshot_now(kind, "item-t", SnapshotMetadata::default(), None).await.unwrap();
                    prop_assert_eq!(record.header.version, version);
                    last_snapshot = version;
                }
                if batch.is_empty() {
                    break;
                }
            }
            let (loaded, _) = repo.load::<InventoryItem>("item-t").await.unwrap();
            let replay = repo.replay_kind(kind, "item-t").await.unwrap();
            let replayed: InventoryItem = serde_json::from_slice(&replay.state_json).unwrap();
            prop_assert_eq!(loaded.state(), &replayed);
            prop_assert_eq!(loaded.state(), root.state());
            Ok(())
        })?;
    }

    #[test]
    fn codec_round_trip_is_identity(
        text in "\\PC{0,3000}",
        compress_above in 0usize..4096,
    ) {
        let json = serde_json::to_vec(&serde_json::json!({ "id": "x", "text": text })).unwrap();
        let codec = SnapshotCodec::new(compress_above);
        let encoded = codec.encode(json.clone()).unwrap();
        let expected_encoding = if json.len() > compress_above { Encoding::JsonZstd } else { Encoding::Json };
        prop_assert_eq!(encoded.encoding, expected_encoding);
        prop_assert_eq!(encoded.size_bytes, json.len() as u64);
        let decoded = codec.decode(encoded.encoding, &encoded.body, encoded.size_bytes, &encoded.checksum).unwrap();
        prop_assert_eq!(decoded, json);
    }

    #[test]
    fn any_corrupted_stored_byte_is_rejected(
        locations in prop::collection::vec(0u8..20, 1..40),
        compress in any::<bool>(),
        position in any::<prop::sample::Index>(),
        mask in 1u8..0x80,
    ) {
        let mut state = Warehouse::initial("wh-c");
        state.name = "Main".into();
        for (i, l) in locations.iter().enumerate() {
            state.locations.entry(format!("L{l}")).or_default().insert(format!("SKU-{i}"), i as i64 + 1);
        }
        let json = serde_json::to_vec(&state).unwrap();
        let codec = SnapshotCodec::new(if compress { 0 } else { usize::MAX });
        let encoded = codec.encode(json.clone()).unwrap();
        let corrupted = match &encoded.body {
            StateBody::Binary(bytes) => {
                let mut bytes = bytes.clone();
                let i = position.index(bytes.len());
                bytes[i] ^= mask;
                StateBody::Binary(bytes)
            }
            StateBody::Text(text) => {
                let mut bytes = text.clone().into_bytes();
                let i = position.index(bytes.len());
                bytes[i] ^= mask; // the JSON is ASCII and the mask keeps it ASCII
                StateBody::Text(String::from_utf8(bytes).unwrap())
            }
        };
        // A few bits of a zstd frame do not affect what it decodes to (the header's unused
        // bit, entries of an entropy table no symbol uses): such a flip yields the very same
        // state. Any flip that changes the state is refused.
        if let Ok(decoded) = codec.decode(encoded.encoding, &corrupted, encoded.size_bytes, &encoded.checksum) {
            prop_assert!(compress, "a flipped JSON text byte was not detected");
            prop_assert_eq!(decoded, json);
            return Ok(());
        }

        // Through the repository: the corrupted snapshot is skipped, never applied.
        runtime().block_on(async {
            let repo = AggregateRepository::new(InMemoryEventStore::new(), InMemorySnapshotStore::new(), codec.clone());
            let mut root = AggregateRoot::<Warehouse>::new("wh-c");
            root.create("Main", 10).unwrap();
            repo.save(&mut root, None).await.unwrap();
            let subject = SnapshotSubject { aggregate_id: "wh-c", aggregate_type: "WAREHOUSE", schema_version: 1, version: 1, last_event_id: None };
            let mut record = build_snapshot(&codec, subject, serde_json::to_vec(&state).unwrap(), SnapshotMetadata::default(), 0, None).unwrap();
            record.state = corrupted.clone();
            prop_assert!(open_snapshot(&codec, &record, "wh-c", "WAREHOUSE", 1).is_err());
            repo.snapshots().put_if_absent(&record).await.unwrap();
            let (loaded, report) = repo.load::<Warehouse>("wh-c").await.unwrap();
            prop_assert_eq!(report.snapshots_skipped, 1);
            prop_assert_eq!(report.snapshot_version, None);
            prop_assert_eq!(loaded.state(), root.state());
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Both load paths: the newest snapshot and the newest `threshold + 1` events are read
    /// together; the load takes one round trip when they reach back to the snapshot (or to the
    /// first event without one), one more for the missing events otherwise, and for an invalid
    /// newest snapshot (bad checksum, or a `lastEventId` the boundary event does not carry,
    /// checked against the events read with it) one for its mark and one for the next page
    /// of snapshots. The state always equals the full replay, on the typed path (`load`,
    /// events decoded as the aggregate's) and on the type-agnostic one (`load_kind`).
    #[test]
    fn load_reads_snapshot_and_tail_together_and_equals_replay(
        ops in prop::collection::vec(item_op(), 0..90),
        snapshot_at in any::<prop::sample::Index>(),
        with_snapshot in any::<bool>(),
        corruption in 0u8..3,
        threshold in 1u64..40,
    ) {
        use std::sync::Arc;
        use snapshot_core::policy::{PolicySet, SnapshotPolicy};
        runtime().block_on(async {
            let events = Arc::new(InMemoryEventStore::new());
            let snapshots = Arc::new(InMemorySnapshotStore::new());
            let codec = SnapshotCodec::default();
            let policies = PolicySet {
                default: SnapshotPolicy { threshold, ..SnapshotPolicy::default() },
                ..PolicySet::default()
            };
            let repo = AggregateRepository::new(Arc::clone(&events), Arc::clone(&snapshots), codec.clone())
                .with_policies(policies);
            let mut root = AggregateRoot::<InventoryItem>::new("item-rt");
            root.create("SKU", "Thing", 0).unwrap();
            repo.save(&mut root, None).await.unwrap();
            for op in &ops {
                run_item_op(&mut root, op);
                repo.save(&mut root, None).await.unwrap();
            }
            let stored = events.read("item-rt", 1, None).await.unwrap();
            let n = stored.len() as u64;
            let kind = Registry::builtin();
            let kind = kind.get("INVENTORY_ITEM").unwrap();
            let snapshot_of = |version: u64, last_event_id: &str| {
                let json = kind.fold_json("item-rt", 0, None, &stored[..version as usize]).unwrap();
                let subject = SnapshotSubject {
                    aggregate_id: "item-rt",
                    aggregate_type: "INVENTORY_ITEM",
                    schema_version: 1,
                    version,
                    last_event_id: Some(last_event_id),
                };
                build_snapshot(&codec, subject, json, SnapshotMetadata::default(), 0, None).unwrap()
            };
            let k = 1 + snapshot_at.index(n as usize) as u64;
            if with_snapshot {
                snapshots.put_if_absent(&snapshot_of(k, &stored[k as usize - 1].event_id)).await.unwrap();
            }
            let corrupt = corruption > 0 && (!with_snapshot || k < n);
            if corrupt {
                let last_id = &stored[n as usize - 1].event_id;
                let mut record = if corruption == 1 {
                    snapshot_of(n, last_id)
                } else {
                    snapshot_of(n, "not-the-boundary-event")
                };
                if corruption == 1 {
                    record.header.checksum = "0".repeat(64);
                }
                snapshots.put_if_absent(&record).await.unwrap();
            }
            let requests_before = events.requests() + snapshots.requests();

            let (loaded, report) = repo.load::<InventoryItem>("item-rt").await.unwrap();
            prop_assert_eq!(loaded.state(), root.state());
            prop_assert_eq!(loaded.version(), n);
            prop_assert_eq!(report.snapshot_version, with_snapshot.then_some(k));
            prop_assert_eq!(report.snapshots_skipped, u64::from(corrupt));
            let base = if with_snapshot { k } else { 1 };
            let reaches = n - base <= threshold;
            // An invalid newest snapshot: its mark, then the next page of snapshots (the
            // in-memory store says when there is none).
            let after_invalid = u32::from(corrupt) + u32::from(corrupt && with_snapshot);
            let expected = 1 + after_invalid + u32::from(!reaches);
            prop_assert_eq!(report.round_trips, expected, "n={} k={} threshold={}", n, k, threshold);
            prop_assert_eq!(report.requests, expected + 1);
            let sent = events.requests() + snapshots.requests() - requests_before;
            prop_assert_eq!(sent, u64::from(report.requests));
            let replay = repo.replay_kind(kind.as_ref(), "item-rt").await.unwrap();
            let replayed: InventoryItem = serde_json::from_slice(&replay.state_json).unwrap();
            prop_assert_eq!(loaded.state(), &replayed);
            // The type-agnostic load (envelopes, JSON state) walks the same way to the same
            // state (the invalid snapshot is already marked: no mark this time).
            let as_json = repo.load_kind(kind.as_ref(), "item-rt").await.unwrap();
            let from_json: InventoryItem = serde_json::from_slice(&as_json.state_json).unwrap();
            prop_assert_eq!(&from_json, loaded.state());
            prop_assert_eq!(as_json.version, n);
            prop_assert_eq!(as_json.report.snapshot_version, report.snapshot_version);
            prop_assert_eq!(as_json.report.events_replayed, report.events_replayed);
            // The fewest-read-units mode: the newest snapshot, then only the events from its
            // version on (every event without one), sequentially, to the same state.
            let sequential = AggregateRepository::new(Arc::clone(&events), Arc::clone(&snapshots), codec.clone())
                .with_policies(PolicySet {
                    default: SnapshotPolicy { threshold, ..SnapshotPolicy::default() },
                    ..PolicySet::default()
                })
                .with_load_mode(LoadMode::FewestReadUnits);
            let requests_before = events.requests() + snapshots.requests();
            let (by_units, units_report) = sequential.load::<InventoryItem>("item-rt").await.unwrap();
            prop_assert_eq!(by_units.state(), root.state());
            prop_assert_eq!(by_units.version(), n);
            prop_assert_eq!(units_report.snapshot_version, report.snapshot_version);
            prop_assert_eq!(units_report.events_replayed, report.events_replayed);
            // The snapshot page, the page below a marked newest snapshot, then one read of
            // the tail; nothing is sent together.
            let expected = 2 + u32::from(corrupt && with_snapshot);
            prop_assert_eq!(units_report.round_trips, expected, "n={} k={}", n, k);
            prop_assert_eq!(units_report.requests, expected);
            let sent = events.requests() + snapshots.requests() - requests_before;
            prop_assert_eq!(sent, u64::from(expected));
            let kind_by_units = sequential.load_kind(kind.as_ref(), "item-rt").await.unwrap();
            prop_assert_eq!(&kind_by_units.state_json, &as_json.state_json);
            Ok(())
        })?;
    }
}
