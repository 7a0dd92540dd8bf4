//! Snapshot heads in the snapshot table (snapshot_core::head): one small item per aggregate,
//! at aggregate id [`HEAD_PREFIX`] + the aggregate's id and version 0, so no query of the
//! aggregate's own snapshots ever meets it and the pruner's scan passes it over as reserved.
//! About 100 bytes: reading it costs half a read unit (eventually consistent), writing it one
//! write unit, whatever the size of the state it describes.
//!
//! Kept by [`crate::DynamoSnapshotStore`]: written after each snapshot put (only ever moved to a
//! higher version, by a condition), deleted when the snapshot it names is marked invalid or
//! deleted, and given the snapshot's TTL. A write lost between a snapshot and its head leaves
//! an older head, which only makes the next snapshot look due sooner.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use snapshot_core::head::SnapshotHead;
use snapshot_core::StoreError;

use crate::items::{number_attr, string_attr};
use crate::sdk::is_condition_failed;

/// Aggregate ids of head items start with this (reserved, like `__backfill__`).
pub const HEAD_PREFIX: &str = "__head__#";

type Item = HashMap<String, AttributeValue>;

fn key(aggregate_id: &str) -> Item {
    HashMap::from([
        (
            "aggregateId".to_owned(),
            AttributeValue::S(format!("{HEAD_PREFIX}{aggregate_id}")),
        ),
        ("version".to_owned(), AttributeValue::N("0".to_owned())),
    ])
}

/// The head item's fields as a head; `None` for an item missing any of them (a head written
/// by another version is simply not used: the snapshotter reads the snapshot instead).
fn head_from_item(aggregate_id: &str, item: &Item) -> Option<SnapshotHead> {
    Some(SnapshotHead {
        aggregate_id: aggregate_id.to_owned(),
        version: number_attr(item, "headVersion")?,
        timestamp: number_attr(item, "timestamp")?,
        aggregate_type: string_attr(item, "aggregateType")?,
        schema_version: number_attr(item, "schemaVersion")?,
        expires_at: number_attr(item, "expiresAt"),
    })
}

/// Reads `aggregate_id`'s head, eventually consistent (half a read unit): a stale answer is an
/// older head, which the snapshotter tolerates.
pub(crate) async fn read(
    client: &Client,
    table: &str,
    aggregate_id: &str,
) -> Result<Option<SnapshotHead>, StoreError> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(aggregate_id)))
        .send()
        .await
        .map_err(|e| crate::backend("GetItem", e))?;
    Ok(output
        .item
        .as_ref()
        .and_then(|item| head_from_item(aggregate_id, item)))
}

/// Writes `head` unless the stored head is at its version or newer.
pub(crate) async fn advance(
    client: &Client,
    table: &str,
    head: &SnapshotHead,
) -> Result<(), StoreError> {
    let mut item = key(&head.aggregate_id);
    item.insert(
        "headVersion".to_owned(),
        AttributeValue::N(head.version.to_string()),
    );
    item.insert(
        "timestamp".to_owned(),
        AttributeValue::N(head.timestamp.to_string()),
    );
    item.insert(
        "aggregateType".to_owned(),
        AttributeValue::S(head.aggregate_type.clone()),
    );
    item.insert(
        "schemaVersion".to_owned(),
        AttributeValue::N(head.schema_version.to_string()),
    );
    if let Some(expires_at) = head.expires_at {
        item.insert(
            "expiresAt".to_owned(),
            AttributeValue::N(expires_at.to_string()),
        );
    }
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#hv) OR #hv < :v")
        .expression_attribute_names("#hv", "headVersion")
        .expression_attribute_values(":v", AttributeValue::N(head.version.to_string()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // A head at this version or a newer one is there already.
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(crate::backend("PutItem", e)),
    }
}

/// Deletes `aggregate_id`'s head if it names `version` (that snapshot was marked invalid or
/// deleted): the snapshotter then reads the newest snapshot again before it decides.
pub(crate) async fn drop_if_at(
    client: &Client,
    table: &str,
    aggregate_id: &str,
    version: u64,
) -> Result<(), StoreError> {
    let result = client
        .delete_item()
        .table_name(table)
        .set_key(Some(key(aggregate_id)))
        .condition_expression("#hv = :v")
        .expression_attribute_names("#hv", "headVersion")
        .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // No head, or one naming another snapshot: nothing to drop.
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(crate::backend("DeleteItem", e)),
    }
}

/// Whether `item` (of a scan) is a head.
pub(crate) fn is_head(item: &Item) -> bool {
    matches!(item.get("aggregateId"), Some(AttributeValue::S(id)) if id.starts_with(HEAD_PREFIX))
}
