//! The backfill job record, kept in the snapshot table under a reserved key (aggregate id
//! [`JOB_AGGREGATE_ID`], version 0, aggregate type [`JOB_TYPE`]): no extra table, and the
//! pruner and the backfill itself pass over it (the snapshot scan leaves it out).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use snapshot_core::backfill::{BackfillJob, BackfillJobStore};
use snapshot_core::error::StoreError;

pub const JOB_AGGREGATE_ID: &str = "__backfill__";
pub const JOB_TYPE: &str = "BACKFILL_JOB";

#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn malformed(reason: impl ToString) -> StoreError {
    StoreError::MalformedSnapshot {
        aggregate_id: JOB_AGGREGATE_ID.to_owned(),
        version: "0".to_owned(),
        reason: reason.to_string(),
    }
}

#[async_trait]
impl BackfillJobStore for DynamoJobStore {
    async fn load(&self) -> Result<Option<BackfillJob>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                "aggregateId",
                AttributeValue::S(JOB_AGGREGATE_ID.to_owned()),
            )
            .key("version", AttributeValue::N("0".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::backend("GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let json = item
            .get("job")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| malformed("backfill job item has no `job` string"))?;
        serde_json::from_str(json).map(Some).map_err(malformed)
    }

    async fn save(&self, job: &BackfillJob) -> Result<(), StoreError> {
        let json = serde_json::to_string(job).map_err(malformed)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                "aggregateId",
                AttributeValue::S(JOB_AGGREGATE_ID.to_owned()),
            )
            .item("version", AttributeValue::N("0".to_owned()))
            .item("aggregateType", AttributeValue::S(JOB_TYPE.to_owned()))
            .item("job", AttributeValue::S(json))
            .send()
            .await
            .map_err(|e| super::backend("PutItem", e))?;
        Ok(())
    }
}
