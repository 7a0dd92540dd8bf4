//! The event table: conditional, idempotent appends (one event: a check that the previous
//! event exists, then PutItem; several: TransactWriteItems with that check inside) and fully
//! paginated, strongly consistent reads.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnConsumedCapacity, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::items::{event_from_item, event_to_item};
use crate::stored::{Item, ItemEvent};
use snapshot_core::domain::{Aggregate, DecodedEvent, EventEnvelope, ReadEvent};
use snapshot_core::error::{BackendFailure, EventError, StoreError};
use snapshot_core::ports::{already_appended, validate_append, EventStore, Page, StoredBytes};

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

    /// Whether the event at `sequence` exists (strongly consistent, key only). Events are
    /// never removed, so what exists before a put still exists when it lands: for one event
    /// this check is as good as a transaction's, at a read's cost.
    async fn exists(&self, aggregate_id: &str, sequence: u64) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("aggregateId", AttributeValue::S(aggregate_id.to_owned()))
            .key("sequence", AttributeValue::N(sequence.to_string()))
            .consistent_read(true)
            .projection_expression("#seq")
            .expression_attribute_names("#seq", "sequence")
            .send()
            .await
            .map_err(|e| super::backend("GetItem", e))?;
        Ok(output.item.is_some_and(|item| !item.is_empty()))
    }

    /// One event where none is: a conditional PutItem.
    async fn put_one(&self, event: &EventEnvelope) -> Result<Attempt, StoreError> {
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
            Ok(_) => Ok(Attempt::Done),
            Err(e) if super::is_condition_failed(&e) => Ok(Attempt::ConditionFailed),
            Err(e) => Ok(Attempt::Unknown(super::backend("PutItem", e))),
        }
    }

    /// Several events: one transaction that checks the event at `expected_version` exists (so
    /// a stale or invented expected version can never leave a gap) and puts each event where
    /// no event is. The request token makes DynamoDB itself recognise a retry.
    async fn transact(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<Attempt, StoreError> {
        let Some(first) = events.first() else {
            return Ok(Attempt::Done);
        };
        let mut request = self
            .client
            .transact_write_items()
            .client_request_token(request_token(&self.table, events));
        if expected_version > 0 {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("aggregateId", AttributeValue::S(first.aggregate_id.clone()))
                .key("sequence", AttributeValue::N(expected_version.to_string()))
                .condition_expression("attribute_exists(#seq)")
                .expression_attribute_names("#seq", "sequence")
                .build()
                .map_err(|e| StoreError::backend("TransactWriteItems", e))?;
            request =
                request.transact_items(TransactWriteItem::builder().condition_check(check).build());
        }
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
            Ok(_) => Ok(Attempt::Done),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let reasons: Vec<String> = cancel
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect();
                    if reasons.iter().any(|code| code == "ConditionalCheckFailed") {
                        Ok(Attempt::ConditionFailed)
                    } else {
                        // Cancelled for another reason (a conflicting transaction, throttling):
                        // nothing was written, and trying again can succeed.
                        Ok(Attempt::Unknown(cancelled(reasons, e)))
                    }
                }
                // The same token with other parameters: never ours to retry blindly.
                Some(TransactWriteItemsError::IdempotentParameterMismatchException(_)) => {
                    Ok(Attempt::ConditionFailed)
                }
                _ => Ok(Attempt::Unknown(super::backend("TransactWriteItems", e))),
            },
        }
    }

    /// Whether the events at `events`' sequences are these very events (our earlier attempt
    /// committed and its reply was lost).
    async fn stored_already(&self, events: &[EventEnvelope]) -> Result<bool, StoreError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(true);
        };
        let stored = self
            .read(&first.aggregate_id, first.sequence, Some(last.sequence))
            .await?;
        Ok(already_appended(events, &stored))
    }
}

/// How one write attempt ended.
enum Attempt {
    Done,
    /// A condition failed: taken by another writer, an expected version that is not the
    /// last, or our own earlier attempt.
    ConditionFailed,
    /// No verdict (timeout, connection lost, throttled past the retries): it may have
    /// committed.
    Unknown(StoreError),
}

/// A transaction cancelled for no failed condition of ours, with its reasons.
#[derive(Debug, thiserror::Error)]
#[error("TransactionCanceledException: cancellation reasons [{}]", .reasons.join(", "))]
struct Cancelled<E: std::error::Error + 'static> {
    reasons: Vec<String>,
    #[source]
    source: E,
}

/// How a cancellation without a failed condition failed: DynamoDB cancels for capacity
/// (throttled: retry after a pause) or for a concurrent transaction on the same items (retry);
/// only a cancellation for the request itself (validation, item collection size) is final.
fn cancelled<E: std::error::Error + Send + Sync + 'static>(
    reasons: Vec<String>,
    source: E,
) -> StoreError {
    let has = |codes: &[&str]| reasons.iter().any(|r| codes.contains(&r.as_str()));
    let failure = if has(&[
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ]) {
        BackendFailure::Throttled
    } else if has(&["TransactionConflict"]) {
        BackendFailure::Unavailable
    } else {
        BackendFailure::Rejected
    };
    StoreError::backend_failure_of("TransactWriteItems", failure, Cancelled { reasons, source })
}

/// A ClientRequestToken (at most 36 characters) naming these events in this table: the same
/// append retried carries the same token. DynamoDB keeps a token for ten minutes per account and
/// region, not per table, so the table is part of it: the same events appended to another table
/// (a copy, a test's own table) must not be taken for a retry. Derived from the table, the first
/// event's id and sequence, and the count.
fn request_token(table: &str, events: &[EventEnvelope]) -> String {
    let first = events.first().map_or("", |e| e.event_id.as_str());
    let sequence = events.first().map_or(0, |e| e.sequence);
    let digest = Sha256::digest(format!("{table}#{first}#{sequence}#{}", events.len()));
    hex::encode(&digest[..18])
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
        let Some(first) = events.first() else {
            return Ok(());
        };
        let attempt = match events {
            [one] if expected_version == 0 => self.put_one(one).await?,
            [one] => {
                if self.exists(&one.aggregate_id, expected_version).await? {
                    self.put_one(one).await?
                } else {
                    Attempt::ConditionFailed
                }
            }
            many => self.transact(expected_version, many).await?,
        };
        match attempt {
            Attempt::Done => Ok(()),
            Attempt::ConditionFailed => match self.stored_already(events).await {
                Ok(true) => {
                    debug!(aggregate_id = %first.aggregate_id, sequence = first.sequence, "append recognised as already stored");
                    Ok(())
                }
                Ok(false) => Err(conflict(first, expected_version)),
                Err(e) => Err(e),
            },
            // The write may have landed: only the table can tell. If it did not, the error
            // stands (retryable: the same events carry the same ids).
            Attempt::Unknown(error) => match self.stored_already(events).await {
                Ok(true) => {
                    warn!(aggregate_id = %first.aggregate_id, sequence = first.sequence, error = %error, "append committed although its reply was lost");
                    Ok(())
                }
                _ => Err(error),
            },
        }
    }

    async fn read(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        Ok(self.read_counted(aggregate_id, from, to).await?.0)
    }

    async fn read_counted(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.query_range(aggregate_id, from, to, Consistency::Strong, |item| {
            event_from_item(item, aggregate_id)
        })
        .await
    }

    async fn read_newest(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<EventEnvelope, u64>, StoreError> {
        self.query_newest(aggregate_id, limit, |item| {
            event_from_item(item, aggregate_id)
        })
        .await
    }

    /// An eventually consistent Query of the range (half the read units of a strongly
    /// consistent one: the bytes read / 8 KB), page by page until the sum reaches `enough`.
    /// The events asked for are older than events already on the stream, so they are all but
    /// always there; if one is missing (the read lagged), the range is read again strongly
    /// consistent, so none is ever missed.
    async fn stored_bytes(
        &self,
        aggregate_id: &str,
        from: u64,
        to: u64,
        enough: u64,
    ) -> Result<StoredBytes, StoreError> {
        let measured = self
            .measure_range(aggregate_id, from, to, enough, false)
            .await?;
        let expected = to.saturating_sub(from) + 1;
        if measured.bytes >= enough || measured.events >= expected || from > to {
            return Ok(measured);
        }
        warn!(
            aggregate_id,
            from,
            to,
            found = measured.events,
            "an eventually consistent read missed events; read again strongly consistent"
        );
        let again = self
            .measure_range(aggregate_id, from, to, enough, true)
            .await?;
        Ok(StoredBytes {
            read_units: again
                .read_units
                .zip(measured.read_units)
                .map(|(a, b)| a + b),
            ..again
        })
    }

    async fn read_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.query_range(aggregate_id, from, to, Consistency::Strong, |item| {
            decoded_from_item::<A>(item, aggregate_id)
        })
        .await
    }

    async fn read_newest_decoded<A: Aggregate>(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<DecodedEvent<A::Event>, u64>, StoreError> {
        self.query_newest(aggregate_id, limit, |item| {
            decoded_from_item::<A>(item, aggregate_id)
        })
        .await
    }

    async fn read_counted_relaxed(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<EventEnvelope>, u32), StoreError> {
        self.query_range(aggregate_id, from, to, Consistency::Eventual, |item| {
            event_from_item(item, aggregate_id)
        })
        .await
    }

    async fn read_decoded_relaxed<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(Vec<DecodedEvent<A::Event>>, u32), StoreError> {
        self.query_range(aggregate_id, from, to, Consistency::Eventual, |item| {
            decoded_from_item::<A>(item, aggregate_id)
        })
        .await
    }
}

/// How a range Query reads: strongly consistent (one read unit per 4 KB), or eventually
/// consistent (half of that; a stale answer is a prefix of the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consistency {
    Strong,
    Eventual,
}

/// An event item read for `A`'s typed fold: [`ItemEvent::read`]'s checks (a malformed item
/// fails the read, as it does for an envelope), then the payload decoded in place.
fn decoded_from_item<A: Aggregate>(
    item: &Item,
    aggregate_id: &str,
) -> Result<DecodedEvent<A::Event>, EventError> {
    Ok(DecodedEvent::read::<A>(
        aggregate_id,
        &ItemEvent::read(item, aggregate_id)?,
    ))
}

impl DynamoEventStore {
    /// The stored bytes of the items `from <= sequence <= to`, page by page until they reach
    /// `enough`, with the read units DynamoDB reports for the pages read.
    async fn measure_range(
        &self,
        aggregate_id: &str,
        from: u64,
        to: u64,
        enough: u64,
        consistent: bool,
    ) -> Result<StoredBytes, StoreError> {
        let mut measured = StoredBytes {
            read_units: Some(0.0),
            ..StoredBytes::default()
        };
        if from > to {
            return Ok(measured);
        }
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(consistent)
                .key_condition_expression("#id = :id AND #seq BETWEEN :from AND :to")
                .expression_attribute_names("#id", "aggregateId")
                .expression_attribute_names("#seq", "sequence")
                .expression_attribute_values(":id", AttributeValue::S(aggregate_id.to_owned()))
                .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
                .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| super::backend("Query", e))?;
            let units = page
                .consumed_capacity()
                .and_then(aws_sdk_dynamodb::types::ConsumedCapacity::capacity_units);
            measured.read_units = measured.read_units.zip(units).map(|(a, b)| a + b);
            for item in page.items() {
                measured.events += 1;
                measured.bytes += crate::item_size::item_bytes(item);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() && measured.bytes < enough => start_key = Some(key),
                _ => return Ok(measured),
            }
        }
    }

    /// Events with `from <= sequence <= to` (`to = None`: to the end), ascending, every page,
    /// read with `consistency`, each item read by `read`; and how many pages that took.
    async fn query_range<V>(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
        consistency: Consistency,
        read: impl Fn(&Item) -> Result<V, EventError>,
    ) -> Result<(Vec<V>, u32), StoreError> {
        let condition = if to.is_some() {
            "#id = :id AND #seq BETWEEN :from AND :to"
        } else {
            "#id = :id AND #seq >= :from"
        };
        let mut events = Vec::new();
        let mut start_key = None;
        let mut pages = 0;
        loop {
            pages += 1;
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(consistency == Consistency::Strong)
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
                events.push(read(&item)?);
            }
            // Every page is followed: a silently truncated stream would give a wrong state.
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok((events, pages)),
            }
        }
    }

    /// The newest events, newest first, at most `limit`, in one strongly consistent Query,
    /// each item read by `read` (see [`EventStore::read_newest`]).
    async fn query_newest<V: ReadEvent>(
        &self,
        aggregate_id: &str,
        limit: usize,
        read: impl Fn(&Item) -> Result<V, EventError>,
    ) -> Result<Page<V, u64>, StoreError> {
        if limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", "aggregateId")
            .expression_attribute_values(":id", AttributeValue::S(aggregate_id.to_owned()))
            .send()
            .await
            .map_err(|e| super::backend("Query", e))?;
        let items = page
            .items
            .unwrap_or_default()
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        // A last-evaluated key means older events may exist (DynamoDB sets it when the limit
        // or the 1 MB page ends the read, even if nothing older is left).
        let more = page.last_evaluated_key.is_some_and(|key| !key.is_empty());
        let next = if more {
            items.last().map(ReadEvent::sequence)
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
