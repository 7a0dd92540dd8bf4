//! Snapshot records (docs/data-model.md#snapshot-table), how one is built from a state and validated before use.

use serde::{Deserialize, Serialize};

use crate::clock::now_millis;
use crate::codec::{CodecError, Encoding, SnapshotCodec, StateBody, DYNAMODB_ITEM_LIMIT};
use crate::mac::{MacError, MacFields, SnapshotMac};

/// Who made a snapshot and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMetadata {
    /// Who created it: `snapshotter`, the admin caller's identity, `backfill`, or the
    /// application's own name for a snapshot it built itself.
    pub created_by: String,
    /// `threshold:count`, `threshold:time`, `manual`, …
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Request id, when there was one.
    pub request_id: Option<String>,
}

/// Where an offloaded state lives (`stateRef`): the object holds the stored bytes exactly as
/// the `state` attribute would, so `checksum` and the sizes cover it the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateRef {
    /// The state bucket (`SNAPSHOT_BUCKET` when the snapshot was written).
    pub bucket: String,
    /// The object's key in that bucket: [`crate::offload::object_key`] of the aggregate and
    /// version, so one item has exactly one object.
    pub key: String,
}

impl std::fmt::Display for StateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Everything about a snapshot but its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// The aggregate version captured (= sequence of the last event folded in).
    pub version: u64,
    /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
    pub aggregate_type: String,
    /// How the state is stored (`json`, `json+zstd`, …).
    pub encoding: String,
    /// Revision of the state shape.
    pub schema_version: u32,
    /// SHA-256 (hex) of the uncompressed state.
    pub checksum: String,
    /// Sequence of the last event folded in; equals `version`.
    pub last_event_sequence: u64,
    /// Epoch milliseconds of creation.
    pub timestamp: i64,
    /// Uncompressed state size in bytes.
    pub size_bytes: u64,
    /// Stored (possibly compressed) state size in bytes.
    pub stored_bytes: u64,
    /// Who created it, why, and for which request.
    pub metadata: SnapshotMetadata,
    /// TTL attribute (epoch seconds), if set.
    pub expires_at: Option<i64>,
    /// `eventId` of the event at `version` (`None`: written before the field existed, accepted
    /// on sequence alone).
    pub last_event_id: Option<String>,
    /// Set once a reader found the snapshot invalid: never used again, never counted toward
    /// keep-N, replaceable at the same version.
    pub invalid: Option<InvalidMark>,
    /// Set for offloaded states (`encoding` `s3+…`) once the object is written.
    pub state_ref: Option<StateRef>,
    /// HMAC over the fields of [`SnapshotHeader::mac_fields`] (docs/security.md#snapshot-authentication);
    /// `None`: written before snapshots were signed (or planted).
    pub mac: Option<SnapshotMac>,
}

impl SnapshotHeader {
    /// True when the state lives in an object (`s3+json`, `s3+json+zstd`).
    pub fn is_offloaded(&self) -> bool {
        Encoding::parse(&self.encoding).is_ok_and(Encoding::is_offloaded)
    }

    /// What the MAC covers.
    pub fn mac_fields(&self) -> MacFields<'_> {
        MacFields {
            aggregate_id: &self.aggregate_id,
            aggregate_type: &self.aggregate_type,
            version: self.version,
            schema_version: self.schema_version,
            checksum: &self.checksum,
            last_event_id: self.last_event_id.as_deref(),
        }
    }
}

/// Why, when and by whom a snapshot was found invalid (stored as the `invalid` map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InvalidMark {
    /// Why, in words that name what is wrong.
    pub reason: String,
    /// When it was marked, in epoch milliseconds.
    pub at: i64,
    /// Who marked it: the actor of the reader that found it invalid (`snapshotter`,
    /// `repository`, or the name an application gave its repository).
    pub by: String,
}

/// A stored item that does not read as a snapshot at all. Listed as such, skipped by loads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable snapshot item aggregateId={aggregate_id} version={}: {reason}", .version.map_or_else(|| "<unreadable>".to_owned(), |v| v.to_string()))]
pub struct UnreadableSnapshot {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// The item's sort key, when even that could not be read: `None`.
    pub version: Option<u64>,
    /// Why, in words that name what is wrong.
    pub reason: String,
    /// It carries an invalid mark (it may then be replaced at its version).
    pub marked: bool,
}

/// One stored item of a listing: a snapshot, or an item that does not read as one.
pub type Stored<T> = Result<T, UnreadableSnapshot>;

/// A full snapshot: header and stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Everything but the state.
    pub header: SnapshotHeader,
    /// The stored state body.
    pub state: StateBody,
}

/// Key of a snapshot item plus what the pruner needs to decide about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotKey {
    /// The aggregate the item belongs to.
    pub aggregate_id: String,
    /// The aggregate version (sequence of the last event folded in).
    pub version: u64,
}

/// What a scan of the snapshot table returns per item
/// ([`crate::ports::SnapshotStore::scan_summaries`]): the key and the attributes the pruner's
/// retention rule decides on, never the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Which snapshot (aggregate and version).
    pub key: SnapshotKey,
    /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
    pub aggregate_type: String,
    /// Revision of the state shape.
    pub schema_version: u32,
    /// Marked invalid (see [`InvalidMark`]): never counted toward keep-N.
    pub invalid: bool,
}

/// Why a snapshot cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotBuildError {
    #[error("snapshot of aggregateId={aggregate_id} version={version} is {item_bytes} bytes after compression, over the {limit} byte DynamoDB item limit")]
    /// The item would be over DynamoDB's item limit even with its state compressed, and the
    /// codec may not offload it (no state bucket): nothing is written. Not retryable; the
    /// snapshotter counts it (`SnapshotsTooLarge`) and skips the aggregate.
    TooLarge {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The aggregate version (sequence of the last event folded in).
        version: u64,
        /// The item's estimated size in bytes, attribute names included.
        item_bytes: usize,
        /// DynamoDB's item limit in bytes ([`DYNAMODB_ITEM_LIMIT`]).
        limit: usize,
    },
    #[error("cannot encode snapshot of aggregateId={aggregate_id} version={version}: {source}")]
    /// The state could not be encoded (not UTF-8, or compression failed): nothing is written.
    Codec {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The aggregate version (sequence of the last event folded in).
        version: u64,
        /// The underlying error.
        source: CodecError,
    },
}

/// What a snapshot is of: the aggregate, its type and state revision, and the version (with
/// that event's id) the state was folded to. [`build_snapshot`] copies it into the header.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotSubject<'a> {
    /// The aggregate the item belongs to.
    pub aggregate_id: &'a str,
    /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
    pub aggregate_type: &'a str,
    /// Revision of the state shape.
    pub schema_version: u32,
    /// The aggregate version (sequence of the last event folded in).
    pub version: u64,
    /// `eventId` of the event at `version`; every writer that knows it must give it (`None`
    /// only for snapshots of stores without event ids).
    pub last_event_id: Option<&'a str>,
}

/// Encodes `state_json` into a record. A state that cannot fit one item even compressed is
/// marked for offload (`s3+…` encoding, the bytes still in `state`) when the codec allows it
/// (the offloading store then writes the object); otherwise it fails before any write.
pub fn build_snapshot(
    codec: &SnapshotCodec,
    subject: SnapshotSubject<'_>,
    state_json: Vec<u8>,
    metadata: SnapshotMetadata,
    timestamp: i64,
    expires_at: Option<i64>,
) -> Result<SnapshotRecord, SnapshotBuildError> {
    let encoded = codec
        .encode(state_json)
        .map_err(|source| SnapshotBuildError::Codec {
            aggregate_id: subject.aggregate_id.to_owned(),
            version: subject.version,
            source,
        })?;
    let mut record = SnapshotRecord {
        header: SnapshotHeader {
            aggregate_id: subject.aggregate_id.to_owned(),
            version: subject.version,
            aggregate_type: subject.aggregate_type.to_owned(),
            encoding: encoded.encoding.as_str().to_owned(),
            schema_version: subject.schema_version,
            checksum: encoded.checksum,
            last_event_sequence: subject.version,
            timestamp,
            size_bytes: encoded.size_bytes,
            stored_bytes: encoded.stored_bytes,
            metadata,
            expires_at,
            last_event_id: subject.last_event_id.map(str::to_owned),
            invalid: None,
            state_ref: None,
            mac: None,
        },
        state: encoded.body,
    };
    record.header.mac = Some(codec.authenticator.sign(&record.header.mac_fields()));
    let item_bytes = record.estimated_item_bytes();
    if item_bytes > DYNAMODB_ITEM_LIMIT && codec.offload {
        let mut record = record;
        record.header.encoding = encoded.encoding.offloaded().as_str().to_owned();
        record.state = StateBody::Binary(
            std::mem::replace(&mut record.state, StateBody::Binary(Vec::new())).into_bytes(),
        );
        return Ok(record);
    }
    if item_bytes > DYNAMODB_ITEM_LIMIT {
        return Err(SnapshotBuildError::TooLarge {
            aggregate_id: subject.aggregate_id.to_owned(),
            version: subject.version,
            item_bytes,
            limit: DYNAMODB_ITEM_LIMIT,
        });
    }
    Ok(record)
}

impl SnapshotRecord {
    /// An upper bound of the DynamoDB item size: attribute names + values, numbers at their
    /// 21-byte maximum, plus a margin for the map overhead.
    pub fn estimated_item_bytes(&self) -> usize {
        const NUMBER: usize = 21;
        let h = &self.header;
        let strings = [
            ("aggregateId", h.aggregate_id.len()),
            ("aggregateType", h.aggregate_type.len()),
            ("encoding", h.encoding.len()),
            ("checksum", h.checksum.len()),
            // An offloaded state is not in the item.
            (
                "state",
                if self.header.is_offloaded() {
                    0
                } else {
                    self.state.len()
                },
            ),
            // The pointer of an offloaded state: bucket names are at most 63 bytes.
            (
                "stateRef",
                if self.header.is_offloaded() {
                    64 + 256 + 32
                } else {
                    0
                },
            ),
            ("createdBy", h.metadata.created_by.len()),
            ("reason", h.metadata.reason.len()),
            (
                "requestId",
                h.metadata.request_id.as_ref().map_or(0, String::len),
            ),
            ("metadata", 0),
            (
                "lastEventId",
                h.last_event_id.as_ref().map_or(0, String::len),
            ),
            // keyId, value (64 hex digits) and the map's own name.
            (
                "mac",
                h.mac.as_ref().map_or(0, |m| {
                    "keyId".len() + m.key_id.len() + "value".len() + m.value.len()
                }),
            ),
        ];
        let numbers = [
            "version",
            "schemaVersion",
            "lastEventSequence",
            "timestamp",
            "sizeBytes",
            "storedBytes",
            "expiresAt",
        ];
        let string_bytes: usize = strings.iter().map(|(name, len)| name.len() + len).sum();
        let number_bytes: usize = numbers.iter().map(|name| name.len() + NUMBER).sum();
        string_bytes + number_bytes + 64
    }
}

/// Why a stored snapshot must not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSnapshot {
    #[error("belongs to {found_type}/{found_id}")]
    /// The item names another aggregate or type than the one being loaded (a misplaced or
    /// forged item).
    WrongAggregate {
        /// The `aggregateId` the item names.
        found_id: String,
        /// The `aggregateType` the item names.
        found_type: String,
    },
    #[error("schemaVersion {found}, current is {current}")]
    /// The state has another shape revision than this code's: unusable here, not wrong (a
    /// newer deployment may have written it), so it is skipped and never marked.
    SchemaVersion {
        /// The item's `schemaVersion`.
        found: u32,
        /// The revision this code folds ([`crate::registry::AggregateKind::schema_version`]).
        current: u32,
    },
    #[error("lastEventSequence {last_event_sequence} differs from version {version}")]
    /// The item's `lastEventSequence` and `version` disagree: it was not written by
    /// [`build_snapshot`] as it stands.
    SequenceMismatch {
        /// The aggregate version (sequence of the last event folded in).
        version: u64,
        /// Sequence of the last event folded in; equals `version`.
        last_event_sequence: u64,
    },
    #[error("{0}")]
    /// The stored state does not read back (see [`CodecError`]: unknown encoding, corrupt
    /// frame, size or checksum mismatch).
    Codec(#[from] CodecError),
    #[error("state does not decode: {0}")]
    /// The state does not decode.
    State(String),
    #[error("version {version} is beyond the event stream")]
    /// The snapshot claims a version the event stream has not reached: it cannot have been
    /// built from these events.
    BeyondStream {
        /// The aggregate version (sequence of the last event folded in).
        version: u64,
    },
    /// The event at the snapshot's version is not the one it was built from (the event table
    /// was restored and rewritten, for instance).
    #[error(
        "lastEventId {expected} differs from eventId {found} of the event at version {version}"
    )]
    BoundaryMismatch {
        /// The aggregate version (sequence of the last event folded in).
        version: u64,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    #[error("marked invalid by {by} at {at}: {reason}")]
    /// The item carries an invalid mark (see [`InvalidMark`]): skipped, and not marked a
    /// second time.
    Marked {
        /// Why, in words that name what is wrong.
        reason: String,
        /// When it was marked, in epoch milliseconds.
        at: i64,
        /// Who marked it.
        by: String,
    },
    #[error("{0}")]
    /// The item does not read as a snapshot at all (see [`UnreadableSnapshot`]); the text
    /// says why.
    Unreadable(String),
    /// The MAC is missing, wrong or made with a key this reader does not accept.
    #[error("{0}")]
    Mac(#[from] MacError),
}

impl InvalidSnapshot {
    /// True when the snapshot itself is proven wrong, so it may be marked invalid. A snapshot
    /// of another schema revision or encoding may come from a newer deployment (mid-rollout):
    /// this code cannot use it, but it is not wrong. An existing mark is not marked again.
    pub fn is_definitive(&self) -> bool {
        match self {
            Self::SchemaVersion { .. } | Self::Marked { .. } => false,
            Self::Codec(CodecError::UnknownEncoding(_)) => false,
            // A key this reader does not know may be a newer deployment's (mid-rotation).
            Self::Mac(MacError::UnknownKey(_)) => false,
            Self::Mac(MacError::Missing | MacError::Mismatch(_)) => true,
            Self::WrongAggregate { .. }
            | Self::SequenceMismatch { .. }
            | Self::Codec(_)
            | Self::State(_)
            | Self::BeyondStream { .. }
            | Self::BoundaryMismatch { .. }
            | Self::Unreadable(_) => true,
        }
    }
}

/// Checks a record's MAC, identity, schema and checksum; returns the uncompressed JSON state.
/// The MAC comes first: nothing of a planted item (not even its compressed body) is decoded.
pub fn open_snapshot(
    codec: &SnapshotCodec,
    record: &SnapshotRecord,
    aggregate_id: &str,
    aggregate_type: &str,
    schema_version: u32,
) -> Result<Vec<u8>, InvalidSnapshot> {
    let h = &record.header;
    if let Some(mark) = &h.invalid {
        return Err(InvalidSnapshot::Marked {
            reason: mark.reason.clone(),
            at: mark.at,
            by: mark.by.clone(),
        });
    }
    codec
        .authenticator
        .verify(&h.mac_fields(), h.mac.as_ref(), now_millis())?;
    if h.aggregate_id != aggregate_id || h.aggregate_type != aggregate_type {
        return Err(InvalidSnapshot::WrongAggregate {
            found_id: h.aggregate_id.clone(),
            found_type: h.aggregate_type.clone(),
        });
    }
    if h.schema_version != schema_version {
        return Err(InvalidSnapshot::SchemaVersion {
            found: h.schema_version,
            current: schema_version,
        });
    }
    if h.last_event_sequence != h.version {
        return Err(InvalidSnapshot::SequenceMismatch {
            version: h.version,
            last_event_sequence: h.last_event_sequence,
        });
    }
    let encoding = Encoding::parse(&h.encoding)?;
    Ok(codec.decode(encoding, &record.state, h.size_bytes, &h.checksum)?)
}
