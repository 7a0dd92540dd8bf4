//! Decode fuzz: arbitrary bytes as a stored snapshot's state give an error, never a panic and
//! never a state. The header around them is a genuine, signed one (so the bytes reach the
//! decoder, past the MAC); in half the cases the checksum, size and MAC are even made to match
//! the bytes, as if our own writer had stored garbage. The codec refuses them or, when they
//! decode, folding refuses the state; a load through the repository passes the snapshot over
//! and equals the full replay. (Arbitrary attribute maps as a stored item:
//! tests/tests/item_decode_fuzz.rs.)

use proptest::prelude::*;
use snapshot_core::codec::{sha256_hex, Encoding, SnapshotCodec, StateBody};
use snapshot_core::domain::{AggregateRoot, InventoryItem};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::snapshot::{build_snapshot, open_snapshot, SnapshotMetadata, SnapshotSubject};
use snapshot_core::{AggregateRepository, Registry};

const ID: &str = "item-fuzz";
const ENCODINGS: [Encoding; 4] = [
    Encoding::Json,
    Encoding::JsonZstd,
    Encoding::S3Json,
    Encoding::S3JsonZstd,
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// What the bytes are made into.
#[derive(Debug, Clone)]
enum Body {
    /// The bytes as they are (text when they are UTF-8 and `text` is set).
    Raw { text: bool },
    /// A well-formed zstd frame of the bytes (declaring its size).
    Compressed,
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        any::<bool>().prop_map(|text| Body::Raw { text }),
        Just(Body::Compressed),
    ]
}

/// Bytes: random ones, and JSON-looking ones (objects with random keys and values) that get
/// further into the decoders.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        prop::collection::btree_map("[a-zA-Z]{1,12}", any::<i64>(), 0..8)
            .prop_map(|map| { serde_json::to_vec(&map).unwrap_or_default() }),
        "\\PC{0,200}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_as_a_stored_state_are_an_error_never_a_state(
        bytes in bytes(),
        body in body(),
        encoding in 0usize..4,
        declared in prop_oneof![Just(None), any::<u64>().prop_map(Some), (0u64..4096).prop_map(Some)],
        consistent in any::<bool>(),
    ) {
        runtime().block_on(async {
            let codec = SnapshotCodec::default();
            let repo = AggregateRepository::new(
                InMemoryEventStore::new(),
                InMemorySnapshotStore::new(),
                codec.clone(),
            );
            let mut root = AggregateRoot::<InventoryItem>::new(ID);
            root.create("SKU-F", "Fuzzed", 2).unwrap();
            root.receive(7, None).unwrap();
            root.reserve("order-1", 3).unwrap();
            repo.save(&mut root, None).await.unwrap();
            let events = repo.events().read(ID, 1, None).await.unwrap();
            let genuine_state = serde_json::to_vec(root.state()).unwrap();
            let subject = SnapshotSubject {
                aggregate_id: ID,
                aggregate_type: "INVENTORY_ITEM",
                schema_version: 1,
                version: 3,
                last_event_id: Some(&events[2].event_id),
            };
            let mut forged = build_snapshot(
                &codec,
                subject,
                genuine_state.clone(),
                SnapshotMetadata::default(),
                0,
                None,
            )
            .unwrap();

            let encoding = ENCODINGS[encoding];
            forged.header.encoding = encoding.as_str().to_owned();
            forged.state = match &body {
                Body::Raw { text: true } => match String::from_utf8(bytes.clone()) {
                    Ok(text) => StateBody::Text(text),
                    Err(_) => StateBody::Binary(bytes.clone()),
                },
                Body::Raw { text: false } => StateBody::Binary(bytes.clone()),
                Body::Compressed => StateBody::Binary(zstd::bulk::compress(&bytes, 3).unwrap()),
            };
            if let Some(size) = declared {
                forged.header.size_bytes = size;
            }
            if consistent {
                // As if written by our own writer: checksum, size and MAC all match the bytes.
                forged.header.checksum = sha256_hex(&bytes);
                forged.header.size_bytes = bytes.len() as u64;
                forged.header.mac = Some(codec.authenticator.sign(&forged.header.mac_fields()));
            }
            let kind = Registry::builtin();
            let kind = kind.get("INVENTORY_ITEM").unwrap();

            // The decoders: an error, or bytes that do not fold into a state.
            match open_snapshot(&codec, &forged, ID, "INVENTORY_ITEM", 1) {
                Err(_) => {}
                Ok(json) => {
                    prop_assert_eq!(&json, &bytes, "decoded to bytes it was not given");
                    if json != genuine_state {
                        prop_assert!(
                            kind.fold_json(ID, 3, Some(&json), &[]).is_err(),
                            "arbitrary bytes folded into a state"
                        );
                    }
                }
            }

            // Through a load: the forged snapshot is passed over, the state is the replay.
            repo.snapshots().put_if_absent(&forged).await.unwrap();
            let (loaded, report) = repo.load::<InventoryItem>(ID).await.unwrap();
            prop_assert_eq!(loaded.state(), root.state());
            prop_assert_eq!(loaded.version(), 3);
            if bytes != genuine_state {
                prop_assert_eq!(report.snapshot_version, None, "{:?}", report);
            }
            Ok(())
        })?;
    }

    /// The codec alone, on anything: bytes, encoding, declared size and checksum all arbitrary.
    #[test]
    fn the_codec_never_panics_and_decodes_only_what_the_checksum_names(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        text in any::<bool>(),
        encoding in 0usize..4,
        size in prop_oneof![any::<u64>(), (0u64..4096)],
        checksum in prop_oneof!["[0-9a-f]{64}", ".{0,70}"],
    ) {
        let codec = SnapshotCodec::default();
        let body = match (text, String::from_utf8(bytes.clone())) {
            (true, Ok(text)) => StateBody::Text(text),
            _ => StateBody::Binary(bytes),
        };
        if let Ok(json) = codec.decode(ENCODINGS[encoding], &body, size, &checksum) {
            prop_assert_eq!(sha256_hex(&json), checksum.to_ascii_lowercase());
            prop_assert_eq!(json.len() as u64, size);
        }
    }
}
