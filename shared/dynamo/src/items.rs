//! Item (de)serialisation with serde_dynamo. A malformed item becomes a typed error naming
//! what could be read of its key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

pub(crate) use crate::stored::Item;
use crate::stored::ItemEvent;
use snapshot_core::codec::StateBody;
use snapshot_core::domain::EventEnvelope;
use snapshot_core::error::{EventError, StoreError};
use snapshot_core::mac::SnapshotMac;
use snapshot_core::snapshot::{
    InvalidMark, SnapshotHeader, SnapshotKey, SnapshotMetadata, SnapshotRecord, SnapshotSummary,
    StateRef, Stored, UnreadableSnapshot,
};

/// A string attribute; `None` when missing or of another type.
pub(crate) fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A number attribute as `T`; `None` when missing, of another type or out of `T`'s range.
pub(crate) fn number_attr<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

pub(crate) fn event_to_item(event: &EventEnvelope) -> Result<Item, StoreError> {
    serde_dynamo::to_item(event).map_err(|e| StoreError::InvalidRequest {
        aggregate_id: event.aggregate_id.clone(),
        reason: format!("event {} does not serialise: {e}", event.sequence),
    })
}

/// An event item as the ports carry it ([`ItemEvent::read`]'s checks, then the payload as a
/// JSON value).
pub(crate) fn event_from_item(
    item: &Item,
    aggregate_id: &str,
) -> Result<EventEnvelope, EventError> {
    ItemEvent::read(item, aggregate_id)?.to_envelope()
}

/// The snapshot item as stored (docs/data-model.md#snapshot-table).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SnapshotItem {
    aggregate_id: String,
    version: u64,
    aggregate_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<StateBody>,
    encoding: String,
    schema_version: u32,
    checksum: String,
    last_event_sequence: u64,
    timestamp: i64,
    size_bytes: u64,
    stored_bytes: u64,
    #[serde(default)]
    metadata: SnapshotMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invalid: Option<InvalidMark>,
    /// Offloaded states only: where the object is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state_ref: Option<StateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<SnapshotMac>,
}

/// Every attribute but `state`, for header-only reads.
pub(crate) const HEADER_ATTRIBUTES: [&str; 16] = [
    "aggregateId",
    "version",
    "aggregateType",
    "encoding",
    "schemaVersion",
    "checksum",
    "lastEventSequence",
    "timestamp",
    "sizeBytes",
    "storedBytes",
    "metadata",
    "expiresAt",
    "lastEventId",
    "invalid",
    "stateRef",
    "mac",
];

pub(crate) fn snapshot_to_item(record: &SnapshotRecord) -> Result<Item, StoreError> {
    let h = record.header.clone();
    let offloaded = h.is_offloaded();
    let item = SnapshotItem {
        aggregate_id: h.aggregate_id,
        version: h.version,
        aggregate_type: h.aggregate_type,
        // An offloaded state is in its object; the item keeps the pointer only.
        state: (!offloaded).then(|| record.state.clone()),
        encoding: h.encoding,
        schema_version: h.schema_version,
        checksum: h.checksum,
        last_event_sequence: h.last_event_sequence,
        timestamp: h.timestamp,
        size_bytes: h.size_bytes,
        stored_bytes: h.stored_bytes,
        metadata: h.metadata,
        expires_at: h.expires_at,
        last_event_id: h.last_event_id,
        invalid: h.invalid,
        state_ref: h.state_ref,
        mac: h.mac,
    };
    serde_dynamo::to_item(item).map_err(|e| StoreError::InvalidRequest {
        aggregate_id: record.header.aggregate_id.clone(),
        reason: format!("snapshot does not serialise: {e}"),
    })
}

fn malformed(item: &Item, reason: impl ToString) -> StoreError {
    StoreError::MalformedSnapshot {
        aggregate_id: string_attr(item, "aggregateId").unwrap_or_else(|| "<unreadable>".to_owned()),
        version: item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .cloned()
            .unwrap_or_else(|| "<unreadable>".to_owned()),
        reason: reason.to_string(),
    }
}

fn split(item: Item) -> Result<(SnapshotHeader, Option<StateBody>), StoreError> {
    // Keep the key for the error message before the item is consumed (no copy of the state).
    let key_only: Item = ["aggregateId", "version"]
        .iter()
        .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let parsed: SnapshotItem =
        serde_dynamo::from_item(item).map_err(|e| malformed(&key_only, e))?;
    let header = SnapshotHeader {
        aggregate_id: parsed.aggregate_id,
        version: parsed.version,
        aggregate_type: parsed.aggregate_type,
        encoding: parsed.encoding,
        schema_version: parsed.schema_version,
        checksum: parsed.checksum,
        last_event_sequence: parsed.last_event_sequence,
        timestamp: parsed.timestamp,
        size_bytes: parsed.size_bytes,
        stored_bytes: parsed.stored_bytes,
        metadata: parsed.metadata,
        expires_at: parsed.expires_at,
        last_event_id: parsed.last_event_id,
        invalid: parsed.invalid,
        state_ref: parsed.state_ref,
        mac: parsed.mac,
    };
    Ok((header, parsed.state))
}

pub(crate) fn header_from_item(item: Item) -> Result<SnapshotHeader, StoreError> {
    split(item).map(|(header, _)| header)
}

pub(crate) fn record_from_item(item: Item) -> Result<SnapshotRecord, StoreError> {
    let (header, state) = split(item)?;
    if header.is_offloaded() {
        // The offloading store reads the object into `state`.
        return Ok(SnapshotRecord {
            header,
            state: state.unwrap_or(StateBody::Binary(Vec::new())),
        });
    }
    let state = state.ok_or_else(|| StoreError::MalformedSnapshot {
        aggregate_id: header.aggregate_id.clone(),
        version: header.version.to_string(),
        reason: "missing attribute `state`".to_owned(),
    })?;
    Ok(SnapshotRecord { header, state })
}

/// A listed item: the snapshot, or why it does not read as one (never an error for the page).
pub(crate) fn stored<T>(item: Item, read: impl FnOnce(Item) -> Result<T, StoreError>) -> Stored<T> {
    let aggregate_id = string_attr(&item, "aggregateId").unwrap_or_else(|| "<unreadable>".into());
    let version = number_attr::<u64>(&item, "version");
    let marked = item.contains_key("invalid");
    read(item).map_err(|e| UnreadableSnapshot {
        aggregate_id,
        version,
        marked,
        reason: match e {
            StoreError::MalformedSnapshot { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

pub(crate) fn key_item(key: &SnapshotKey) -> Item {
    HashMap::from([
        (
            "aggregateId".to_owned(),
            AttributeValue::S(key.aggregate_id.clone()),
        ),
        (
            "version".to_owned(),
            AttributeValue::N(key.version.to_string()),
        ),
    ])
}

pub(crate) fn key_from_item(item: &Item) -> Result<SnapshotKey, StoreError> {
    match (
        string_attr(item, "aggregateId"),
        number_attr::<u64>(item, "version"),
    ) {
        (Some(aggregate_id), Some(version)) => Ok(SnapshotKey {
            aggregate_id,
            version,
        }),
        _ => Err(malformed(item, "key attributes missing or mistyped")),
    }
}

pub(crate) fn summary_from_item(item: &Item) -> Result<SnapshotSummary, StoreError> {
    let key = key_from_item(item)?;
    // A missing or mistyped schemaVersion reads as 0, a revision no aggregate has: the pruner
    // then treats the item as obsolete (never the newest) instead of stalling its segment.
    let schema_version = number_attr::<u64>(item, "schemaVersion")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    Ok(SnapshotSummary {
        key,
        aggregate_type: string_attr(item, "aggregateType").unwrap_or_default(),
        schema_version,
        invalid: item.contains_key("invalid"),
    })
}
