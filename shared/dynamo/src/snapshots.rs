//! The snapshot table: conditional puts, newest-first queries by key (cursor = last version),
//! parallel-segment scans of its keys-only index (`schema::RETENTION_INDEX`), and batched deletes with retry of unprocessed items.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::heads;
use crate::items::{
    header_from_item, key_from_item, key_item, record_from_item, snapshot_to_item, stored,
    summary_from_item, Item, HEADER_ATTRIBUTES,
};
use crate::jobs::JOB_AGGREGATE_ID;
use crate::positions::POSITIONS_AGGREGATE_ID;
use crate::schema::{RETENTION_INDEX, RETENTION_INDEX_SORT_KEY};
use snapshot_core::error::{BackendFailure, StoreError};
use snapshot_core::head::SnapshotHead;
use snapshot_core::ports::{Page, PutOutcome, SnapshotStore, TrackedPut};
use snapshot_core::snapshot::{
    InvalidMark, SnapshotHeader, SnapshotKey, SnapshotRecord, SnapshotSummary, Stored,
};

/// Most deletes one BatchWriteItem carries (DynamoDB's limit).
const BATCH: usize = 25;
const MAX_BATCH_ATTEMPTS: u32 = 8;
/// Backoff before resending unprocessed items: doubling from this …
const UNPROCESSED_BACKOFF_BASE: Duration = Duration::from_millis(50);
/// … up to this.
const UNPROCESSED_BACKOFF_CAP: Duration = Duration::from_millis(1_600);

/// "Full jitter" backoff before retry `attempt` (1-based) of unprocessed items: uniform in
/// `0..=min(cap, base·2^(attempt-1))`, so concurrent pruners and segments that were throttled
/// together do not retry in lockstep.
fn unprocessed_backoff(attempt: u32) -> Duration {
    let ceiling = UNPROCESSED_BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(UNPROCESSED_BACKOFF_CAP);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=ceiling_ms))
}

#[derive(Debug, Clone)]
pub struct DynamoSnapshotStore {
    client: Client,
    table: String,
}

impl DynamoSnapshotStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Newest-first items of one aggregate below `before`, following pages until `limit` items.
    async fn newest_first(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
        headers_only: bool,
    ) -> Result<(Vec<Item>, Option<u64>), StoreError> {
        let condition = if before.is_some() {
            "#id = :id AND #v < :before"
        } else {
            "#id = :id"
        };
        let mut items = Vec::new();
        if limit == 0 {
            return Ok((items, None));
        }
        let mut start_key: Option<Item> = None;
        loop {
            // Exactly what is still wanted: an extra item would transfer a whole state for
            // nothing (a cursor may then lead to an empty last page).
            let wanted = limit.saturating_sub(items.len()).max(1);
            let page_limit = i32::try_from(wanted).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(page_limit)
                .expression_attribute_names("#id", "aggregateId")
                .expression_attribute_values(":id", AttributeValue::S(aggregate_id.to_owned()))
                .set_exclusive_start_key(start_key.take());
            if let Some(before) = before {
                query = query
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_values(":before", AttributeValue::N(before.to_string()));
            }
            if headers_only {
                let mut names = Vec::with_capacity(HEADER_ATTRIBUTES.len());
                for (i, attribute) in HEADER_ATTRIBUTES.iter().enumerate() {
                    let placeholder = format!("#h{i}");
                    query = query.expression_attribute_names(&placeholder, *attribute);
                    names.push(placeholder);
                }
                query = query.projection_expression(names.join(", "));
            }
            let page = query.send().await.map_err(|e| super::backend("Query", e))?;
            items.extend(page.items.unwrap_or_default());
            let more = page.last_evaluated_key.filter(|key| !key.is_empty());
            match more {
                // The cursor is the key where the page stopped, readable even when the last
                // item itself is not.
                Some(key) if items.len() >= limit => {
                    return Ok((items, Some(key_from_item(&key)?.version)))
                }
                Some(key) => start_key = Some(key),
                _ => return Ok((items, None)),
            }
        }
    }
}

#[async_trait]
impl SnapshotStore for DynamoSnapshotStore {
    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        Ok(self.put_tracked(snapshot, 0).await?.outcome)
    }

    async fn put_tracked(
        &self,
        snapshot: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(snapshot_to_item(snapshot)?))
            // Same key = same content, unless the stored one was found invalid.
            .condition_expression("attribute_not_exists(#v) OR attribute_exists(#invalid)")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#invalid", "invalid")
            .send()
            .await;
        let outcome = match result {
            Ok(_) => PutOutcome::Created,
            Err(e) if super::is_condition_failed(&e) => PutOutcome::AlreadyExists,
            Err(e) => return Err(super::backend("PutItem", e)),
        };
        // Either way a valid snapshot is at this key now: its head may move forward (a failure
        // here fails the put, whose retry finds the snapshot there and writes the head again).
        let tracked_before = if snapshot.header.invalid.is_none() {
            heads::advance(
                &self.client,
                &self.table,
                &SnapshotHead::of(&snapshot.header),
                track,
            )
            .await?
        } else {
            None
        };
        Ok(TrackedPut {
            outcome,
            tracked_before,
        })
    }

    async fn headers(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError> {
        let (items, next) = self.newest_first(aggregate_id, before, limit, true).await?;
        let headers = items
            .into_iter()
            .map(|item| stored(item, header_from_item))
            .collect();
        Ok(Page {
            items: headers,
            next,
        })
    }

    async fn records(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        let (items, next) = self
            .newest_first(aggregate_id, before, limit, false)
            .await?;
        let records = items
            .into_iter()
            .map(|item| stored(item, record_from_item))
            .collect();
        Ok(Page {
            items: records,
            next,
        })
    }

    async fn mark_invalid(
        &self,
        aggregate_id: &str,
        version: u64,
        mark: &InvalidMark,
    ) -> Result<bool, StoreError> {
        let key = SnapshotKey {
            aggregate_id: aggregate_id.to_owned(),
            version,
        };
        let value =
            serde_dynamo::to_attribute_value(mark).map_err(|e| StoreError::InvalidRequest {
                aggregate_id: aggregate_id.to_owned(),
                reason: format!("invalid mark does not serialise: {e}"),
            })?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression("SET #invalid = :mark")
            .condition_expression("attribute_exists(#v)")
            .expression_attribute_names("#invalid", "invalid")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":mark", value)
            .send()
            .await;
        let marked = match result {
            Ok(_) => true,
            Err(e) if super::is_condition_failed(&e) => false,
            Err(e) => return Err(super::backend("UpdateItem", e)),
        };
        heads::remove(&self.client, &self.table, aggregate_id).await?;
        Ok(marked)
    }

    async fn get(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        let key = SnapshotKey {
            aggregate_id: aggregate_id.to_owned(),
            version,
        };
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::backend("GetItem", e))?;
        output.item.map(record_from_item).transpose()
    }

    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError> {
        let key = SnapshotKey {
            aggregate_id: aggregate_id.to_owned(),
            version,
        };
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| super::backend("DeleteItem", e))?;
        heads::remove(&self.client, &self.table, aggregate_id).await?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn scan_summaries(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<SnapshotKey>,
        limit: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        let to_i32 = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        // The index's start key also names its sort key, equal to the version.
        let start = cursor.as_ref().map(|key| {
            let mut item = key_item(key);
            item.insert(
                RETENTION_INDEX_SORT_KEY.to_owned(),
                AttributeValue::N(key.version.to_string()),
            );
            item
        });
        // The keys-only index, never the table: a page costs what its small index items
        // weigh, whatever the size of the states (shared/dynamo/src/schema.rs).
        let page = self
            .client
            .scan()
            .table_name(&self.table)
            .index_name(RETENTION_INDEX)
            .segment(to_i32(u64::from(segment)))
            .total_segments(to_i32(u64::from(total_segments)))
            .limit(to_i32(limit as u64))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| super::backend("Scan", e))?;
        let items = page
            .items
            .unwrap_or_default()
            .iter()
            .filter(|item| !is_reserved(item))
            .map(summary_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match page.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(key_from_item(&key)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        for chunk in keys.chunks(BATCH) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key_item(key)))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| StoreError::backend("BatchWriteItem", e))
                })
                .collect::<Result<_, _>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt >= MAX_BATCH_ATTEMPTS {
                    // DynamoDB leaves items unprocessed when it sheds load: throttling.
                    return Err(StoreError::backend_failure_of(
                        "BatchWriteItem",
                        BackendFailure::Throttled,
                        format!(
                            "{} deletes still unprocessed after {attempt} attempts",
                            pending.len()
                        ),
                    ));
                }
                if attempt > 0 {
                    tokio::time::sleep(unprocessed_backoff(attempt)).await;
                }
                attempt += 1;
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| super::backend("BatchWriteItem", e))?;
                let mut unprocessed: HashMap<String, Vec<WriteRequest>> =
                    output.unprocessed_items.unwrap_or_default();
                pending = unprocessed.remove(&self.table).unwrap_or_default();
            }
        }
        Ok(keys.len())
    }

    async fn head(&self, aggregate_id: &str) -> Result<Option<SnapshotHead>, StoreError> {
        heads::read(&self.client, &self.table, aggregate_id).await
    }

    async fn record_head(&self, head: &SnapshotHead) -> Result<(), StoreError> {
        heads::advance(&self.client, &self.table, head, 0)
            .await
            .map(|_| ())
    }
}

/// The records this crate keeps in the snapshot table beside the snapshots (the backfill job,
/// `crate::jobs`; the pruner's scan positions, `crate::positions`): not snapshots, so a scan
/// passes over them instead of reporting them as snapshots of an unknown type.
fn is_reserved(item: &HashMap<String, AttributeValue>) -> bool {
    heads::is_head(item)
        || matches!(
            item.get("aggregateId"),
            Some(AttributeValue::S(id)) if id == JOB_AGGREGATE_ID || id == POSITIONS_AGGREGATE_ID
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprocessed_backoff_is_jittered_and_capped() {
        for attempt in 1..=12 {
            let ceiling = UNPROCESSED_BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(UNPROCESSED_BACKOFF_CAP);
            let draws: Vec<Duration> = (0..200).map(|_| unprocessed_backoff(attempt)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
            assert!(
                distinct.len() > 10,
                "attempt {attempt}: not jittered: {distinct:?}"
            );
        }
    }
}
