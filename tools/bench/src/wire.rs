//! What a load costs on the wire, counted by an SDK interceptor: requests per operation, items
//! and bytes returned, consumed capacity (requested on every read, as the emulator reports it)
//! and the sequential round trips (the longest chain of requests each sent after the previous
//! one answered).

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
    /// The response's head arrived (the emulator writes a response once it is complete).
    pub received: Option<Instant>,
    /// The response was deserialised by the SDK.
    pub answered: Option<Instant>,
    pub bytes: u64,
    pub items: u64,
    pub capacity: f64,
}

/// Totals of the requests since the last [`Wire::take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    pub requests: u64,
    pub by_operation: BTreeMap<String, u64>,
    pub round_trips: u64,
    pub items: u64,
    pub bytes: u64,
    pub capacity: f64,
    /// Milliseconds with at least one request in flight (sent, not yet deserialised).
    pub in_flight_ms: f64,
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
            *cost.by_operation.entry(e.operation.clone()).or_default() += 1;
            cost.items += e.items;
            cost.bytes += e.bytes;
            cost.capacity += e.capacity;
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

const READS: [&str; 4] = ["Query", "GetItem", "BatchGetItem", "Scan"];

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "Wire"
    }

    /// Asks for ConsumedCapacity on every read (the adapters do not, to keep responses small).
    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let op = operation(request.headers().get("x-amz-target"));
        if !READS.contains(&op.as_str()) {
            return Ok(());
        }
        let Some(bytes) = request.body().bytes() else {
            return Ok(());
        };
        let mut body: serde_json::Value = serde_json::from_slice(bytes)?;
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

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(context.request().headers().get("x-amz-target"));
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
            capacity: 0.0,
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
        let items = parsed
            .get("Count")
            .and_then(serde_json::Value::as_u64)
            .or_else(|| parsed.get("Item").map(|_| 1))
            .or_else(|| {
                parsed
                    .get("Responses")
                    .and_then(|r| r.as_object())
                    .map(|tables| {
                        tables
                            .values()
                            .map(|items| items.as_array().map_or(0, Vec::len) as u64)
                            .sum()
                    })
            })
            .unwrap_or(0);
        let capacity = match parsed.get("ConsumedCapacity") {
            Some(serde_json::Value::Array(all)) => all
                .iter()
                .filter_map(|c| c.get("CapacityUnits").and_then(serde_json::Value::as_f64))
                .sum(),
            Some(one) => one
                .get("CapacityUnits")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0),
            None => 0.0,
        };
        let Some(ExchangeId(index)) = cfg.load::<ExchangeId>().copied() else {
            return Ok(());
        };
        if let Some(e) = self.lock().get_mut(index) {
            e.answered = Some(now);
            e.bytes = body.len() as u64;
            e.items = items;
            e.capacity = capacity;
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
            capacity: 0.0,
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
}
