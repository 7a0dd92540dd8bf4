//! Capacity units as DynamoDB Local reports them, counted by an SDK interceptor that asks every
//! read and write for its total consumed capacity (the adapters do not ask, to keep responses
//! small): what a test of "what does this path cost" measures, per operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// The operation a response belongs to (kept in the operation's config bag).
#[derive(Debug, Clone)]
struct Operation(String);

impl Storable for Operation {
    type Storer = StoreReplace<Self>;
}

const READS: [&str; 3] = ["GetItem", "Query", "Scan"];
const WRITES: [&str; 4] = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"];

/// What one operation consumed since the last [`Capacity::take`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub requests: u64,
    /// Read units as DynamoDB Local reports them.
    pub read: f64,
    /// Write units as DynamoDB Local reports them.
    pub write: f64,
    /// Reads of a secondary index: the bytes of the index entries returned, and the read units
    /// DynamoDB bills for them (their sizes summed per request, rounded up to 4 KB, half a unit
    /// per 4 KB: eventually consistent). DynamoDB Local reports the base items' sizes for an
    /// index read instead (and ends its pages at 1 MB of them), so `read` overstates an index
    /// read over large items; this is what the service charges.
    pub index_bytes: u64,
    pub index_read: f64,
}

/// Per operation (`Scan`, `PutItem`, …; an index read is `Scan(index)` / `Query(index)`).
pub type ByOperation = BTreeMap<String, Spent>;

/// Read units of the index reads in `spent`, as the service bills them.
pub fn index_units(spent: &ByOperation) -> f64 {
    spent.values().map(|s| s.index_read).sum()
}

/// DynamoDB's size of an attribute value in its JSON wire form (names and strings in UTF-8
/// bytes, numbers about one byte per two digits plus one, containers 3 bytes plus one per
/// element).
fn value_size(value: &serde_json::Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", serde_json::Value::String(text)) => text.len() as u64,
        ("N", serde_json::Value::String(number)) => {
            let digits = number.chars().filter(char::is_ascii_digit).count() as u64;
            digits.div_ceil(2) + 1
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

fn item_size(item: &serde_json::Value) -> u64 {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| name.len() as u64 + value_size(value))
            .sum()
    })
}

/// The interceptor; clone it into a client's config and read it from the test.
#[derive(Debug, Clone, Default)]
pub struct Capacity(Arc<Mutex<ByOperation>>);

impl Capacity {
    fn lock(&self) -> MutexGuard<'_, ByOperation> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was consumed since the last call, and a reset.
    pub fn take(&self) -> ByOperation {
        std::mem::take(&mut *self.lock())
    }

    /// A DynamoDB client on the local engine whose requests this counts.
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        let sdk = crate::sdk_config().await;
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

/// Read and write units summed over every operation.
pub fn units(by_operation: &ByOperation) -> (f64, f64) {
    by_operation.values().fold((0.0, 0.0), |(r, w), spent| {
        (r + spent.read, w + spent.write)
    })
}

fn operation(target: Option<&str>) -> String {
    let target = target.unwrap_or("?");
    target.rsplit('.').next().unwrap_or(target).to_owned()
}

impl Intercept for Capacity {
    fn name(&self) -> &'static str {
        "Capacity"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let op = operation(request.headers().get("x-amz-target"));
        cfg.interceptor_state().store_put(Operation(op.clone()));
        if !READS.contains(&op.as_str()) && !WRITES.contains(&op.as_str()) {
            return Ok(());
        }
        let Some(body) = request.body().bytes() else {
            return Ok(());
        };
        let mut body: serde_json::Value = serde_json::from_slice(body)?;
        if body.get("IndexName").is_some() {
            cfg.interceptor_state()
                .store_put(Operation(format!("{op}(index)")));
        }
        if let Some(map) = body.as_object_mut() {
            map.insert("ReturnConsumedCapacity".to_owned(), "TOTAL".into());
        }
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Operation(op)) = cfg.load::<Operation>().cloned() else {
            return Ok(());
        };
        let body = context.response().body().bytes().unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let total = |entry: &serde_json::Value| {
            entry
                .get("CapacityUnits")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0)
        };
        let consumed = match parsed.get("ConsumedCapacity") {
            Some(serde_json::Value::Array(all)) => all.iter().map(total).sum(),
            Some(one) => total(one),
            None => 0.0,
        };
        let mut all = self.lock();
        let entry = all.entry(op.clone()).or_default();
        entry.requests += 1;
        if WRITES.contains(&op.as_str()) {
            entry.write += consumed;
        } else {
            entry.read += consumed;
        }
        if op.ends_with("(index)") {
            let bytes: u64 = parsed
                .get("Items")
                .and_then(serde_json::Value::as_array)
                .map_or(0, |items| items.iter().map(item_size).sum());
            entry.index_bytes += bytes;
            entry.index_read += (bytes.div_ceil(4096).max(1)) as f64 * 0.5;
        }
        Ok(())
    }
}
