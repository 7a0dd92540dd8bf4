//! The event table: conditional appends (one event: PutItem; several: TransactWriteItems) and
//! fully paginated, strongly consistent reads.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use crate::items::{event_from_item, event_to_item};
use snapshot_core::domain::EventEnvelope;
use snapshot_core::error::StoreError;
use snapshot_core::ports::{validate_append, EventStore};

/// Appends are conditional on the sequence being free, so two writers at the same expected
/// version cannot both succeed.
const NOT_EXISTS: &str = "attribute_not_exists(#seq)";

#[derive(Debug, Clone)]
pub struct DynamoEventStore {
    client: Client,
    table: String,
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn put_one(
        &self,
        expected_version: u64,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_to_item(event)?))
            .condition_expression(NOT_EXISTS)
            .expression_attribute_names("#seq", "sequence")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(conflict(event, expected_version))
            }
            Err(e) => Err(super::backend("PutItem", e)),
        }
    }

    async fn put_many(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        let mut request = self.client.transact_write_items();
        for event in events {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(event_to_item(event)?))
                .condition_expression(NOT_EXISTS)
                .expression_attribute_names("#seq", "sequence")
                .build()
                .map_err(|e| StoreError::backend("TransactWriteItems", e))?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel))
                    if cancel
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Err(conflict(&events[0], expected_version))
                }
                _ => Err(super::backend("TransactWriteItems", e)),
            },
        }
    }
}

fn conflict(event: &EventEnvelope, expected_version: u64) -> StoreError {
    StoreError::Conflict {
        aggregate_id: event.aggregate_id.clone(),
        expected_version,
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn append(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        validate_append(expected_version, events)?;
        match events {
            [] => Ok(()),
            [one] => self.put_one(expected_version, one).await,
            many => self.put_many(expected_version, many).await,
        }
    }

    async fn read(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let condition = if to.is_some() {
            "#id = :id AND #seq BETWEEN :from AND :to"
        } else {
            "#id = :id AND #seq >= :from"
        };
        let mut events = Vec::new();
        let mut start_key = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression(condition)
                .expression_attribute_names("#id", "aggregateId")
                .expression_attribute_names("#seq", "sequence")
                .expression_attribute_values(":id", AttributeValue::S(aggregate_id.to_owned()))
                .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
                .set_exclusive_start_key(start_key.take());
            if let Some(to) = to {
                query = query.expression_attribute_values(":to", AttributeValue::N(to.to_string()));
            }
            let page = query.send().await.map_err(|e| super::backend("Query", e))?;
            for item in page.items.unwrap_or_default() {
                events.push(event_from_item(item, aggregate_id)?);
            }
            // Every page is followed: a silently truncated stream would give a wrong state.
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(events),
            }
        }
    }
}
