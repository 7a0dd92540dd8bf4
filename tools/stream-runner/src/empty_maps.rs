//! DynamoDB Local 3.3.1 writes an empty map attribute (`{"M":{}}`) as `{}` in GetRecords
//! answers: an attribute value with no type, which the SDK refuses, failing the whole
//! GetRecords call (every record of the shard would be stuck behind it). Its GetItem and Query
//! answers are right, and so are DynamoDB Streams' in AWS.
//!
//! [`EmptyMapRepair`] puts the type back before the SDK parses the answer: in each record's
//! `Keys`, `NewImage` and `OldImage`, at any depth of `M` and `L` values, an attribute value
//! that is an empty object becomes `{"M":{}}`. An answer with no such value is left byte for
//! byte as it came, so against AWS the interceptor changes nothing. An event whose payload is
//! `{}` then reaches the snapshotter as DynamoDB stored it (tests/tests/snapshotter_e2e.rs).

use aws_sdk_dynamodbstreams::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_dynamodbstreams::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodbstreams::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use futures::TryFutureExt as _;
use http_body::Frame;
use http_body_util::{BodyExt as _, StreamBody};
use serde_json::{Map, Value};

/// The interceptor [`crate::StreamRunner::connect`] adds to its DynamoDB Streams client.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyMapRepair;

impl Intercept for EmptyMapRepair {
    fn name(&self) -> &'static str {
        "EmptyMapRepair"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The body is still arriving here (the SDK reads it whole just after this hook), so
        // it is replaced by one that reads it whole, then hands over the repaired bytes.
        let arriving = context.response_mut().take_body();
        let repaired = async move {
            let bytes = arriving.collect().await?.to_bytes();
            Ok::<_, BoxError>(repair(&bytes).map_or(bytes, Bytes::from))
        };
        let frames = futures::stream::once(repaired.map_ok(Frame::data));
        *context.response_mut().body_mut() = SdkBody::from_body_1_x(StreamBody::new(frames));
        Ok(())
    }
}

/// The answer with every typeless empty attribute value typed as an empty map, or `None` when
/// it has none (or is not a JSON object: the SDK reports that itself).
pub fn repair(body: &[u8]) -> Option<Vec<u8>> {
    // Every typeless value contains `{}`; most answers have none and are not parsed twice.
    if !body.windows(2).any(|w| w == b"{}") {
        return None;
    }
    let mut answer: Value = serde_json::from_slice(body).ok()?;
    let mut repaired = 0usize;
    let records = answer.get_mut("Records").and_then(Value::as_array_mut)?;
    for record in records {
        let Some(stream_record) = record.get_mut("dynamodb") else {
            continue;
        };
        for image in ["Keys", "NewImage", "OldImage"] {
            if let Some(Value::Object(attributes)) = stream_record.get_mut(image) {
                repaired += repair_attributes(attributes);
            }
        }
    }
    if repaired == 0 {
        return None;
    }
    serde_json::to_vec(&answer).ok()
}

/// Repairs the attribute values of one map (an image or an `M` value); returns how many.
fn repair_attributes(attributes: &mut Map<String, Value>) -> usize {
    attributes.values_mut().map(repair_value).sum()
}

fn repair_value(value: &mut Value) -> usize {
    let Value::Object(typed) = value else {
        return 0;
    };
    if typed.is_empty() {
        typed.insert("M".to_owned(), Value::Object(Map::new()));
        return 1;
    }
    // One key per attribute value: its type.
    typed
        .iter_mut()
        .map(|(kind, inner)| match (kind.as_str(), inner) {
            ("M", Value::Object(map)) => repair_attributes(map),
            ("L", Value::Array(list)) => list.iter_mut().map(repair_value).sum(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(new_image: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "Records": [{
                "eventName": "INSERT",
                "dynamodb": {
                    "Keys": {"aggregateId": {"S": "item-1"}, "sequence": {"N": "2"}},
                    "NewImage": new_image,
                    "SequenceNumber": "000000000000000005341"
                }
            }],
            "NextShardIterator": "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/x|001|e30="
        }))
        .unwrap()
    }

    #[test]
    fn an_empty_map_at_any_depth_gets_its_type_back() {
        let body = answer(json!({
            "payload": {},
            "nested": {"M": {"inner": {}, "kept": {"S": "{}"}}},
            "list": {"L": [{}, {"N": "1"}, {"L": [{}]}]}
        }));
        let repaired: Value = serde_json::from_slice(&repair(&body).unwrap()).unwrap();
        let image = &repaired["Records"][0]["dynamodb"]["NewImage"];
        assert_eq!(image["payload"], json!({"M": {}}));
        assert_eq!(image["nested"]["M"]["inner"], json!({"M": {}}));
        assert_eq!(image["nested"]["M"]["kept"], json!({"S": "{}"}));
        assert_eq!(
            image["list"],
            json!({"L": [{"M": {}}, {"N": "1"}, {"L": [{"M": {}}]}]})
        );
        // Everything else is as it came.
        assert_eq!(
            repaired["Records"][0]["dynamodb"]["Keys"],
            json!({"aggregateId": {"S": "item-1"}, "sequence": {"N": "2"}})
        );
        assert_eq!(
            repaired["NextShardIterator"],
            "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/x|001|e30="
        );
    }

    #[test]
    fn an_answer_without_typeless_values_is_left_as_it_came() {
        let body = answer(json!({"payload": {"M": {}}, "note": {"S": "{}"}}));
        assert_eq!(repair(&body), None);
        let body = answer(json!({"payload": {"M": {"sku": {"S": "A"}}}}));
        assert_eq!(repair(&body), None);
        assert_eq!(repair(br#"{"Records":[],"NextShardIterator":null}"#), None);
        assert_eq!(repair(b"not json {}"), None);
    }
}
