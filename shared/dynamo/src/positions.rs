//! The pruner's scan positions ([`ScanPositions`]), kept in the snapshot table under a reserved
//! key (aggregate id [`POSITIONS_AGGREGATE_ID`], version = segment, aggregate type
//! [`POSITION_TYPE`]): no extra table, and the snapshot scan (`crate::snapshots`) leaves these
//! items out.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use snapshot_core::error::StoreError;
use snapshot_core::pruning::ScanPositions;
use snapshot_core::snapshot::SnapshotKey;

/// Aggregate id of the position items.
pub const POSITIONS_AGGREGATE_ID: &str = "__prune_scan__";
/// Their `aggregateType` (never registered, so never pruned).
pub const POSITION_TYPE: &str = "PRUNE_SCAN_POSITION";

/// Scan positions in the snapshot table.
#[derive(Debug, Clone)]
pub struct DynamoScanPositions {
    client: Client,
    table: String,
}

impl DynamoScanPositions {
    /// Positions kept in `table` (the snapshot table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn key(segment: u32) -> [(&'static str, AttributeValue); 2] {
    [
        (
            "aggregateId",
            AttributeValue::S(POSITIONS_AGGREGATE_ID.to_owned()),
        ),
        ("version", AttributeValue::N(segment.to_string())),
    ]
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl ScanPositions for DynamoScanPositions {
    async fn load(
        &self,
        segment: u32,
        total_segments: u32,
    ) -> Result<Option<SnapshotKey>, StoreError> {
        let [(k1, v1), (k2, v2)] = key(segment);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(k1, v1)
            .key(k2, v2)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::backend("GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        // Another segment count, or an unreadable item: start over (always safe).
        if number(&item, "totalSegments") != Some(u64::from(total_segments)) {
            return Ok(None);
        }
        let aggregate_id = item.get("positionAggregateId").and_then(|v| v.as_s().ok());
        let version = number(&item, "positionVersion");
        Ok(aggregate_id.zip(version).map(|(id, version)| SnapshotKey {
            aggregate_id: id.clone(),
            version,
        }))
    }

    async fn save(
        &self,
        segment: u32,
        total_segments: u32,
        position: Option<&SnapshotKey>,
    ) -> Result<(), StoreError> {
        let [(k1, v1), (k2, v2)] = key(segment);
        // "From the beginning" is an item without a position (a PutItem like any other save:
        // the pruner's role has no DeleteItem).
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(k1, v1)
            .item(k2, v2)
            .item("aggregateType", AttributeValue::S(POSITION_TYPE.to_owned()))
            .item(
                "totalSegments",
                AttributeValue::N(total_segments.to_string()),
            );
        if let Some(position) = position {
            put = put
                .item(
                    "positionAggregateId",
                    AttributeValue::S(position.aggregate_id.clone()),
                )
                .item(
                    "positionVersion",
                    AttributeValue::N(position.version.to_string()),
                );
        }
        put.send().await.map_err(|e| super::backend("PutItem", e))?;
        Ok(())
    }
}
