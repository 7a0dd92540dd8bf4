//! Snapshot heads in the snapshot table (snapshot_core::head): one small item per aggregate,
//! at aggregate id [`HEAD_PREFIX`] + the aggregate's id and version 0, so no query of the
//! aggregate's own snapshots ever meets it and the pruner's scan passes it over as reserved.
//! About 100 bytes: reading it costs half a read unit (eventually consistent), writing it one
//! write unit, whatever the size of the state it describes.
//!
//! Kept by [`crate::DynamoSnapshotStore`]: written after each snapshot put (only ever moved to a
//! higher version, by a condition), deleted when any snapshot of the aggregate is marked
//! invalid or deleted, and given the snapshot's TTL. A write lost between a snapshot and its
//! head leaves an older head, which only makes the next snapshot look due sooner.
//!
//! A head also tracks the newest valid snapshots written through it (`tracked0`, `tracked1`, …:
//! `[version, schemaVersion]`, newest first), for retention on the write path
//! (snapshot_core::pruning::put_retaining).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use snapshot_core::head::SnapshotHead;
use snapshot_core::pruning::SeenSnapshot;
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

/// Name of the head's `place`-th tracked snapshot (0: the newest), an attribute of its own so
/// that one update shifts the list without reading it: `tracked1 = tracked0` takes the value
/// `tracked0` had before the update.
fn tracked_attribute(place: usize) -> String {
    format!("tracked{place}")
}

/// A tracked snapshot as the head keeps it: `[version, schemaVersion]`.
fn tracked_value(version: u64, schema_version: u32) -> AttributeValue {
    AttributeValue::L(vec![
        AttributeValue::N(version.to_string()),
        AttributeValue::N(schema_version.to_string()),
    ])
}

/// A tracked place of an old head item; `None` for an empty place (`NULL`) or one that does not
/// read (never decided on).
fn tracked_from(value: &AttributeValue) -> Option<SeenSnapshot> {
    let AttributeValue::L(pair) = value else {
        return None;
    };
    match pair.as_slice() {
        [AttributeValue::N(version), AttributeValue::N(schema)] => Some(SeenSnapshot {
            version: version.parse().ok()?,
            schema_version: schema.parse().ok()?,
            invalid: false,
        }),
        _ => None,
    }
}

/// Moves the head forward to `head` unless the stored head is at its version or newer. With
/// `track` > 0 the head's first `track` tracked places shift down by one and the new snapshot
/// takes the first (one UpdateItem, one write unit: the head stays far below 1 KB); the old
/// item comes back with the write (`ALL_OLD`, no read unit) and its tracked places are
/// returned, newest first. `None`: the head did not move (this write is not tracked).
pub(crate) async fn advance(
    client: &Client,
    table: &str,
    head: &SnapshotHead,
    track: usize,
) -> Result<Option<Vec<SeenSnapshot>>, StoreError> {
    let mut sets = vec![
        "#hv = :v".to_owned(),
        "#ts = :ts".to_owned(),
        "#at = :at".to_owned(),
        "#sv = :sv".to_owned(),
    ];
    let mut update = client
        .update_item()
        .table_name(table)
        .set_key(Some(key(&head.aggregate_id)))
        .condition_expression("attribute_not_exists(#hv) OR #hv < :v")
        .expression_attribute_names("#hv", "headVersion")
        .expression_attribute_names("#ts", "timestamp")
        .expression_attribute_names("#at", "aggregateType")
        .expression_attribute_names("#sv", "schemaVersion")
        .expression_attribute_names("#exp", "expiresAt")
        .expression_attribute_values(":v", AttributeValue::N(head.version.to_string()))
        .expression_attribute_values(":ts", AttributeValue::N(head.timestamp.to_string()))
        .expression_attribute_values(":at", AttributeValue::S(head.aggregate_type.clone()))
        .expression_attribute_values(":sv", AttributeValue::N(head.schema_version.to_string()));
    let mut remove = String::new();
    match head.expires_at {
        Some(expires_at) => {
            sets.push("#exp = :exp".to_owned());
            update = update
                .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()));
        }
        None => remove.push_str(" REMOVE #exp"),
    }
    if track > 0 {
        update = update
            .expression_attribute_values(":t0", tracked_value(head.version, head.schema_version));
        sets.push("#t0 = :t0".to_owned());
        update = update.expression_attribute_names("#t0", tracked_attribute(0));
        if track > 1 {
            update = update.expression_attribute_values(":none", AttributeValue::Null(true));
        }
        for place in 1..track {
            update =
                update.expression_attribute_names(format!("#t{place}"), tracked_attribute(place));
            sets.push(format!("#t{place} = if_not_exists(#t{}, :none)", place - 1));
        }
        update = update.return_values(ReturnValue::AllOld);
    }
    let result = update
        .update_expression(format!("SET {}{remove}", sets.join(", ")))
        .send()
        .await;
    match result {
        Ok(output) => {
            if track == 0 {
                return Ok(None);
            }
            let old = output.attributes.unwrap_or_default();
            Ok(Some(
                (0..track)
                    .filter_map(|place| old.get(&tracked_attribute(place)).and_then(tracked_from))
                    .collect(),
            ))
        }
        // A head at this version or a newer one is there already.
        Err(e) if is_condition_failed(&e) => Ok(None),
        Err(e) => Err(crate::backend("UpdateItem", e)),
    }
}

/// Deletes `aggregate_id`'s head and the snapshots it tracks (one of the aggregate's snapshots
/// was marked invalid or deleted, and may be on the list): the snapshotter then reads the
/// newest snapshot again before it decides, and tracking starts over with the next write.
pub(crate) async fn remove(
    client: &Client,
    table: &str,
    aggregate_id: &str,
) -> Result<(), StoreError> {
    client
        .delete_item()
        .table_name(table)
        .set_key(Some(key(aggregate_id)))
        .send()
        .await
        .map_err(|e| crate::backend("DeleteItem", e))?;
    Ok(())
}

/// Whether `item` (of a scan) is a head.
pub(crate) fn is_head(item: &Item) -> bool {
    matches!(item.get("aggregateId"), Some(AttributeValue::S(id)) if id.starts_with(HEAD_PREFIX))
}
