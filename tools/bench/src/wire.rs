//! What a load costs on the wire, counted by an SDK interceptor: requests per operation, items
//! and bytes returned, the read and write capacity units DynamoDB Local reports (asked of every
//! operation that can report them) and the sequential round trips (the longest chain of
//! requests each sent after the previous one answered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Which exchange an operation's response belongs to (kept in the operation's config bag).
#[derive(Debug, Clone, Copy)]
struct ExchangeId(usize);

impl Storable for ExchangeId {
    type Storer = StoreReplace<Self>;
}

/// One request as seen on the wire.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub operation: String,
    pub sent: Instant,
    /// The response's head arrived.
    pub received: Option<Instant>,
    /// The response was deserialised by the SDK.
    pub answered: Option<Instant>,
    pub bytes: u64,
    pub items: u64,
    pub units: Units,
    /// A read of a secondary index (the request named `IndexName`).
    pub index: bool,
    /// For an index read: the read units DynamoDB bills for it, by the size of the index
    /// entries returned (summed, rounded up to 4 KB, half a unit each: eventually consistent).
    /// DynamoDB Local reports the base items' sizes for an index read instead.
    pub index_read: f64,
}

/// Consumed capacity, read and write units apart.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, other: Self) {
        self.read += other.read;
        self.write += other.write;
    }
}

/// Totals of the requests since the last [`Wire::take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    pub requests: u64,
    pub by_operation: BTreeMap<String, u64>,
    pub round_trips: u64,
    pub items: u64,
    pub bytes: u64,
    /// Consumed capacity as the engine reports it; nothing for a request that failed (an
    /// error's body carries no ConsumedCapacity, though DynamoDB bills a failed conditional
    /// write).
    pub units: Units,
    /// Read units of the index reads as the service bills them (see [`Exchange::index_read`]).
    pub index_read: f64,
    /// Read units as DynamoDB bills them: the engine's figure, except for index reads, which
    /// count [`Exchange::index_read`] (DynamoDB Local reports the base items' sizes for them).
    pub billed_read: f64,
    /// Milliseconds with at least one request in flight (sent, not yet deserialised).
    pub in_flight_ms: f64,
    /// Milliseconds of the requests' spans summed: more than `in_flight_ms` when requests
    /// overlapped (the engine served them side by side).
    pub requests_ms: f64,
    /// Milliseconds the SDK spent reading and deserialising responses (summed).
    pub deserialize_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Wire(Arc<Mutex<Vec<Exchange>>>);

impl Wire {
    fn lock(&self) -> MutexGuard<'_, Vec<Exchange>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn reset(&self) {
        self.lock().clear();
    }

    /// The cost of everything sent since the last reset, and a reset.
    pub fn take(&self) -> Cost {
        let exchanges = std::mem::take(&mut *self.lock());
        let mut cost = Cost {
            requests: exchanges.len() as u64,
            round_trips: round_trips(&exchanges),
            in_flight_ms: in_flight_ms(&exchanges),
            ..Cost::default()
        };
        for e in &exchanges {
            if let (Some(received), Some(answered)) = (e.received, e.answered) {
                cost.deserialize_ms += answered.duration_since(received).as_secs_f64() * 1000.0;
            }
            if let Some(answered) = e.answered {
                cost.requests_ms += answered.duration_since(e.sent).as_secs_f64() * 1000.0;
            }
            *cost.by_operation.entry(e.operation.clone()).or_default() += 1;
            cost.items += e.items;
            cost.bytes += e.bytes;
            cost.units += e.units;
            cost.index_read += e.index_read;
            cost.billed_read += if e.index { e.index_read } else { e.units.read };
        }
        cost
    }
}

/// Longest chain of requests in which each was sent after the previous one was answered.
fn round_trips(exchanges: &[Exchange]) -> u64 {
    let mut sorted: Vec<&Exchange> = exchanges.iter().collect();
    sorted.sort_by_key(|e| e.sent);
    let mut chain = vec![1_u64; sorted.len()];
    for i in 0..sorted.len() {
        for j in 0..i {
            if sorted[j]
                .answered
                .is_some_and(|done| done <= sorted[i].sent)
            {
                chain[i] = chain[i].max(chain[j] + 1);
            }
        }
    }
    chain.into_iter().max().unwrap_or(0)
}

/// Length of the union of the requests' spans (sent to deserialised), in milliseconds: the
/// rest of a load's wall time is work outside the SDK's calls (conversion, fold, checks).
fn in_flight_ms(exchanges: &[Exchange]) -> f64 {
    let mut spans: Vec<(Instant, Instant)> = exchanges
        .iter()
        .filter_map(|e| e.answered.map(|done| (e.sent, done)))
        .collect();
    spans.sort_by_key(|span| span.0);
    let mut total = 0.0;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e.duration_since(s).as_secs_f64();
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e.duration_since(s).as_secs_f64();
    }
    total * 1000.0
}

fn operation(target: Option<&str>) -> String {
    let target = target.unwrap_or("?");
    target.rsplit('.').next().unwrap_or(target).to_owned()
}

/// The operations that accept ReturnConsumedCapacity, and which kind of units each consumes.
const READS: [&str; 5] = [
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
];
const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

/// The units of one ConsumedCapacity entry. DynamoDB may split them into ReadCapacityUnits and
/// WriteCapacityUnits; DynamoDB Local 3.3.1 gives only CapacityUnits for every operation with
/// TOTAL, so then the operation says which kind they are (reads read, writes write: a
/// TransactWriteItems' condition checks are billed as writes).
fn entry_units(operation: &str, entry: &serde_json::Value) -> Units {
    let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_f64);
    let (read, write) = (field("ReadCapacityUnits"), field("WriteCapacityUnits"));
    if read.is_some() || write.is_some() {
        return Units {
            read: read.unwrap_or(0.0),
            write: write.unwrap_or(0.0),
        };
    }
    let total = field("CapacityUnits").unwrap_or(0.0);
    if WRITES.contains(&operation) {
        Units {
            read: 0.0,
            write: total,
        }
    } else {
        Units {
            read: total,
            write: 0.0,
        }
    }
}

/// The consumed capacity of a response body: one entry (single-table operations) or one per
/// table (batches and transactions), summed.
fn consumed_units(operation: &str, body: &serde_json::Value) -> Units {
    let mut units = Units::default();
    match body.get("ConsumedCapacity") {
        Some(serde_json::Value::Array(all)) => {
            for entry in all {
                units += entry_units(operation, entry);
            }
        }
        Some(one) => units += entry_units(operation, one),
        None => {}
    }
    units
}

/// The request body asking for the total consumed capacity, or `None` for an operation that
/// cannot report it (table management and the like).
fn asking_total(operation: &str, body: &[u8]) -> Result<Option<Vec<u8>>, serde_json::Error> {
    if !READS.contains(&operation) && !WRITES.contains(&operation) {
        return Ok(None);
    }
    let mut body: serde_json::Value = serde_json::from_slice(body)?;
    if let Some(map) = body.as_object_mut() {
        map.insert("ReturnConsumedCapacity".to_owned(), "TOTAL".into());
    }
    serde_json::to_vec(&body).map(Some)
}

/// Items a response returned: a Query's or Scan's Count, GetItem's Item, or the items of a
/// BatchGetItem's (per table) or a TransactGetItems' (per get) Responses.
fn returned_items(body: &serde_json::Value) -> u64 {
    if let Some(count) = body.get("Count").and_then(serde_json::Value::as_u64) {
        return count;
    }
    if body.get("Item").is_some() {
        return 1;
    }
    match body.get("Responses") {
        Some(serde_json::Value::Object(tables)) => tables
            .values()
            .map(|items| items.as_array().map_or(0, Vec::len) as u64)
            .sum(),
        Some(serde_json::Value::Array(gets)) => {
            gets.iter().filter(|get| get.get("Item").is_some()).count() as u64
        }
        _ => 0,
    }
}

/// DynamoDB's size of an attribute value in its JSON wire form (UTF-8 bytes of strings and
/// names, about one byte per two digits of a number plus one, containers 3 bytes plus one per
/// element).
fn value_size(value: &serde_json::Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", serde_json::Value::String(text)) => text.len() as u64,
        ("N", serde_json::Value::String(number)) => {
            number.chars().filter(char::is_ascii_digit).count() as u64 / 2 + 1
        }
        ("B", serde_json::Value::String(base64)) => base64.len() as u64 * 3 / 4,
        ("L", serde_json::Value::Array(items)) => {
            3 + items.iter().map(|v| value_size(v) + 1).sum::<u64>()
        }
        ("M", serde_json::Value::Object(map)) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() as u64 + value_size(v) + 1)
                .sum::<u64>()
        }
        _ => 1,
    }
}

/// The size DynamoDB gives an item (or an index entry).
fn item_size(item: &serde_json::Value) -> u64 {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| name.len() as u64 + value_size(value))
            .sum()
    })
}

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "Wire"
    }

    /// Asks every operation that can report ConsumedCapacity for its total (the adapters do
    /// not, to keep responses small).
    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let op = operation(request.headers().get("x-amz-target"));
        let Some(bytes) = request
            .body()
            .bytes()
            .map(|body| asking_total(&op, body))
            .transpose()?
            .flatten()
        else {
            return Ok(());
        };
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(context.request().headers().get("x-amz-target"));
        let index = context
            .request()
            .body()
            .bytes()
            .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
            .is_some_and(|body| body.get("IndexName").is_some());
        let mut exchanges = self.lock();
        cfg.interceptor_state()
            .store_put(ExchangeId(exchanges.len()));
        exchanges.push(Exchange {
            operation: op,
            sent: Instant::now(),
            received: None,
            answered: None,
            bytes: 0,
            items: 0,
            units: Units::default(),
            index,
            index_read: 0.0,
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let now = Instant::now();
        if let Some(ExchangeId(index)) = cfg.load::<ExchangeId>().copied() {
            if let Some(e) = self.lock().get_mut(index) {
                e.received = Some(now);
            }
        }
        Ok(())
    }

    /// The body is read into memory by now (before deserialisation it may still be streaming).
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let now = Instant::now();
        let body = context.response().body().bytes().unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let items = returned_items(&parsed);
        let Some(ExchangeId(index)) = cfg.load::<ExchangeId>().copied() else {
            return Ok(());
        };
        if let Some(e) = self.lock().get_mut(index) {
            e.answered = Some(now);
            e.bytes = body.len() as u64;
            e.items = items;
            e.units = consumed_units(&e.operation, &parsed);
            if e.index {
                let bytes: u64 = parsed
                    .get("Items")
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, |items| items.iter().map(item_size).sum());
                e.index_read = bytes.div_ceil(4096).max(1) as f64 * 0.5;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn exchange(start: Instant, sent_ms: u64, answered_ms: u64) -> Exchange {
        Exchange {
            operation: "Query".to_owned(),
            sent: start + Duration::from_millis(sent_ms),
            received: None,
            answered: Some(start + Duration::from_millis(answered_ms)),
            bytes: 0,
            items: 0,
            units: Units::default(),
            index: false,
            index_read: 0.0,
        }
    }

    #[test]
    fn requests_in_flight_together_are_one_round_trip() {
        let t = Instant::now();
        assert_eq!(round_trips(&[exchange(t, 0, 10), exchange(t, 1, 12)]), 1);
    }

    #[test]
    fn a_request_sent_after_an_answer_is_another_round_trip() {
        let t = Instant::now();
        let chain = [exchange(t, 0, 10), exchange(t, 11, 20), exchange(t, 21, 30)];
        assert_eq!(round_trips(&chain), 3);
        // A fourth request overlapping the second adds no round trip.
        let mut with_parallel = chain.to_vec();
        with_parallel.push(exchange(t, 12, 15));
        assert_eq!(round_trips(&with_parallel), 3);
        assert_eq!(round_trips(&[]), 0);
    }

    #[test]
    fn time_in_flight_counts_overlapping_requests_once() {
        let t = Instant::now();
        let spans = [exchange(t, 0, 10), exchange(t, 5, 12), exchange(t, 20, 30)];
        assert!((in_flight_ms(&spans) - 22.0).abs() < 1e-6);
        assert!(in_flight_ms(&[]).abs() < f64::EPSILON);
    }

    fn parsed(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("sample body: {e}"))
    }

    fn units(operation: &str, body: &str) -> Units {
        consumed_units(operation, &parsed(body))
    }

    // Unless said otherwise, the response bodies below are DynamoDB Local 3.3.1's answers to
    // each operation with ReturnConsumedCapacity=TOTAL: CapacityUnits only, never the read and
    // write split, in one entry or one per table.

    #[test]
    fn reads_report_read_units() {
        let get = r#"{"Item":{"sk":{"N":"1"},"pk":{"S":"a"}},"ConsumedCapacity":{"TableName":"ttt","CapacityUnits":0.5}}"#;
        assert_eq!(
            units("GetItem", get),
            Units {
                read: 0.5,
                write: 0.0
            }
        );
        assert_eq!(returned_items(&parsed(get)), 1);
        // A strongly consistent Query (one unit per 4 KB; half for an eventually consistent one).
        let query = r#"{"Count":4,"ScannedCount":4,"ConsumedCapacity":{"TableName":"ttt","CapacityUnits":1.0}}"#;
        assert_eq!(
            units("Query", query),
            Units {
                read: 1.0,
                write: 0.0
            }
        );
        assert_eq!(returned_items(&parsed(query)), 4);
        let scan = r#"{"Items":[{"sk":{"N":"1"},"pk":{"S":"b"}},{"sk":{"N":"2"},"pk":{"S":"b"}}],"Count":2,"ScannedCount":2,"LastEvaluatedKey":{"sk":{"N":"2"},"pk":{"S":"b"}},"ConsumedCapacity":{"TableName":"ttt","CapacityUnits":0.5}}"#;
        assert_eq!(
            units("Scan", scan),
            Units {
                read: 0.5,
                write: 0.0
            }
        );
        assert_eq!(returned_items(&parsed(scan)), 2);
    }

    #[test]
    fn batch_and_transaction_reads_sum_their_tables() {
        let batch = r#"{"Responses":{"uuu":[{"pk":{"S":"b"}}],"ttt":[{"pk":{"S":"b"}},{"pk":{"S":"c"}}]},"UnprocessedKeys":{},"ConsumedCapacity":[{"TableName":"uuu","CapacityUnits":1.0},{"TableName":"ttt","CapacityUnits":1.0}]}"#;
        assert_eq!(
            units("BatchGetItem", batch),
            Units {
                read: 2.0,
                write: 0.0
            }
        );
        assert_eq!(returned_items(&parsed(batch)), 3);
        let transaction = r#"{"ConsumedCapacity":[{"TableName":"uuu","CapacityUnits":2.0},{"TableName":"ttt","CapacityUnits":2.0}],"Responses":[{"Item":{"sk":{"N":"1"},"pk":{"S":"c"}}},{"Item":{"pk":{"S":"c"}}}]}"#;
        assert_eq!(
            units("TransactGetItems", transaction),
            Units {
                read: 4.0,
                write: 0.0
            }
        );
        assert_eq!(returned_items(&parsed(transaction)), 2);
        // A missing item is an empty response of its own.
        let missing = r#"{"ConsumedCapacity":[{"TableName":"ttt","CapacityUnits":4.0}],"Responses":[{"Item":{"sk":{"N":"1"},"pk":{"S":"c"}}},{}]}"#;
        assert_eq!(returned_items(&parsed(missing)), 1);
    }

    #[test]
    fn writes_report_write_units() {
        let put = r#"{"ConsumedCapacity":{"TableName":"ttt","CapacityUnits":1.0}}"#;
        for operation in ["PutItem", "UpdateItem", "DeleteItem"] {
            assert_eq!(
                units(operation, put),
                Units {
                    read: 0.0,
                    write: 1.0
                }
            );
        }
        assert_eq!(returned_items(&parsed(put)), 0);
        let batch = r#"{"UnprocessedItems":{},"ConsumedCapacity":[{"TableName":"uuu","CapacityUnits":1.0},{"TableName":"ttt","CapacityUnits":3.0}]}"#;
        assert_eq!(
            units("BatchWriteItem", batch),
            Units {
                read: 0.0,
                write: 4.0
            }
        );
        // Two puts and a condition check, all counted as writes.
        let transaction = r#"{"ConsumedCapacity":[{"TableName":"uuu","CapacityUnits":2.0},{"TableName":"ttt","CapacityUnits":2.0}]}"#;
        assert_eq!(
            units("TransactWriteItems", transaction),
            Units {
                read: 0.0,
                write: 4.0
            }
        );
        let update = r#"{"Attributes":{"sk":{"N":"1"},"y":{"S":"z"},"pk":{"S":"a"}},"ConsumedCapacity":{"TableName":"ttt","CapacityUnits":1.0}}"#;
        assert_eq!(
            units("UpdateItem", update),
            Units {
                read: 0.0,
                write: 1.0
            }
        );
    }

    #[test]
    fn read_and_write_units_win_over_the_operation() {
        // DynamoDB's split, where it gives one: taken as it is, whatever the operation.
        let split = r#"{"ConsumedCapacity":{"TableName":"ttt","CapacityUnits":3.0,"ReadCapacityUnits":1.0,"WriteCapacityUnits":2.0}}"#;
        assert_eq!(
            units("TransactWriteItems", split),
            Units {
                read: 1.0,
                write: 2.0
            }
        );
        let read_only = r#"{"ConsumedCapacity":[{"TableName":"ttt","CapacityUnits":0.5,"ReadCapacityUnits":0.5}]}"#;
        assert_eq!(
            units("PutItem", read_only),
            Units {
                read: 0.5,
                write: 0.0
            }
        );
    }

    #[test]
    fn errors_and_unasked_responses_consume_nothing() {
        let failed = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","Message":"The conditional request failed"}"#;
        assert_eq!(units("PutItem", failed), Units::default());
        assert_eq!(returned_items(&parsed(failed)), 0);
        assert_eq!(units("Query", "{}"), Units::default());
    }

    #[test]
    fn every_operation_that_reports_capacity_is_asked_for_it() {
        for operation in READS.into_iter().chain(WRITES) {
            let body = asking_total(operation, br#"{"TableName":"ttt"}"#)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("{operation} not asked"));
            assert_eq!(
                parsed(std::str::from_utf8(&body).unwrap_or_default()),
                serde_json::json!({"TableName": "ttt", "ReturnConsumedCapacity": "TOTAL"})
            );
        }
        for operation in ["CreateTable", "DescribeTable", "DeleteTable", "ListTables"] {
            assert!(matches!(asking_total(operation, b"{}"), Ok(None)));
        }
        assert_eq!(
            operation(Some("DynamoDB_20120810.TransactGetItems")),
            "TransactGetItems"
        );
    }
}
