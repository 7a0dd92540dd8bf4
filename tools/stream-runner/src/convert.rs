//! DynamoDB Streams records (aws-sdk-dynamodbstreams) into the event Lambda delivers
//! (aws_lambda_events), field by field as the event source mapping does.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType, UserIdentity};
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, Record, StreamViewType as SdkViewType,
};
use serde_dynamo::{AttributeValue, Item};

/// An attribute of a type this SDK version does not know; the record cannot be converted
/// faithfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute `{attribute}` has a type unknown to this SDK version")]
pub struct UnknownAttributeType {
    pub attribute: String,
}

/// Converts one attribute value; `path` names it in the error.
pub fn attribute_value(
    path: &str,
    value: StreamValue,
) -> Result<AttributeValue, UnknownAttributeType> {
    Ok(match value {
        StreamValue::S(s) => AttributeValue::S(s),
        StreamValue::N(n) => AttributeValue::N(n),
        StreamValue::B(b) => AttributeValue::B(b.into_inner()),
        StreamValue::Bool(b) => AttributeValue::Bool(b),
        StreamValue::Null(n) => AttributeValue::Null(n),
        StreamValue::Ss(ss) => AttributeValue::Ss(ss),
        StreamValue::Ns(ns) => AttributeValue::Ns(ns),
        StreamValue::Bs(bs) => AttributeValue::Bs(
            bs.into_iter()
                .map(aws_sdk_dynamodb::primitives::Blob::into_inner)
                .collect(),
        ),
        StreamValue::L(list) => AttributeValue::L(
            list.into_iter()
                .enumerate()
                .map(|(i, v)| attribute_value(&format!("{path}[{i}]"), v))
                .collect::<Result<_, _>>()?,
        ),
        StreamValue::M(map) => AttributeValue::M(map_of(path, map)?),
        // The SDK's catch-all for types added after it was generated: never guessed at.
        _ => {
            return Err(UnknownAttributeType {
                attribute: path.to_owned(),
            })
        }
    })
}

fn map_of(
    path: &str,
    map: HashMap<String, StreamValue>,
) -> Result<HashMap<String, AttributeValue>, UnknownAttributeType> {
    map.into_iter()
        .map(|(name, value)| {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            attribute_value(&child, value).map(|v| (name, v))
        })
        .collect()
}

/// Converts an item (keys or image).
pub fn item(map: HashMap<String, StreamValue>) -> Result<Item, UnknownAttributeType> {
    map_of("", map).map(Item::from)
}

fn view_type(view: &SdkViewType) -> Option<StreamViewType> {
    match view {
        SdkViewType::NewImage => Some(StreamViewType::NewImage),
        SdkViewType::OldImage => Some(StreamViewType::OldImage),
        SdkViewType::NewAndOldImages => Some(StreamViewType::NewAndOldImages),
        SdkViewType::KeysOnly => Some(StreamViewType::KeysOnly),
        _ => None,
    }
}

/// The Lambda record for a stream record. `stream_arn` fills `eventSourceARN` (the local
/// emulator's records carry none; Lambda always sets it). An image that cannot be converted
/// is delivered empty, so the handler reports the record as poison instead of it vanishing.
pub fn lambda_record(record: Record, stream_arn: &str, region: &str) -> EventRecord {
    let mut change = StreamRecord::default();
    let sequence_number = record
        .dynamodb
        .as_ref()
        .and_then(|d| d.sequence_number.clone());
    if let Some(stream) = record.dynamodb {
        if let Some(at) = stream.approximate_creation_date_time {
            let nanos = at.subsec_nanos();
            if let Some(time) = chrono::DateTime::from_timestamp(at.secs(), nanos) {
                change.approximate_creation_date_time = time;
            }
        }
        let convert = |part: &str, map: Option<HashMap<String, StreamValue>>| {
            item(map.unwrap_or_default()).unwrap_or_else(|e| {
                tracing::error!(
                    stream_sequence = sequence_number.as_deref().unwrap_or_default(),
                    part,
                    error = %e,
                    "stream record image not convertible; delivered empty"
                );
                Item::from(HashMap::<String, AttributeValue>::new())
            })
        };
        change.keys = convert("Keys", stream.keys);
        change.new_image = convert("NewImage", stream.new_image);
        change.old_image = convert("OldImage", stream.old_image);
        change.sequence_number = stream.sequence_number;
        change.size_bytes = stream.size_bytes.unwrap_or_default();
        change.stream_view_type = stream.stream_view_type.as_ref().and_then(view_type);
    }
    let mut out = EventRecord::default();
    out.aws_region = record.aws_region.unwrap_or_else(|| region.to_owned());
    out.change = change;
    out.event_id = record.event_id.unwrap_or_default();
    out.event_name = record
        .event_name
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    out.event_source = Some(
        record
            .event_source
            .unwrap_or_else(|| "aws:dynamodb".to_owned()),
    );
    out.event_version = record.event_version;
    out.event_source_arn = Some(stream_arn.to_owned());
    out.user_identity = record.user_identity.map(|identity| {
        let mut user = UserIdentity::default();
        user.type_ = identity.r#type.unwrap_or_default();
        user.principal_id = identity.principal_id.unwrap_or_default();
        user
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord as SdkStreamRecord};
    use snapshot_core::EventEnvelope;

    fn event_image() -> HashMap<String, StreamValue> {
        let s = |v: &str| StreamValue::S(v.to_owned());
        HashMap::from([
            ("aggregateId".to_owned(), s("item-1")),
            ("sequence".to_owned(), StreamValue::N("7".to_owned())),
            ("aggregateType".to_owned(), s("INVENTORY_ITEM")),
            ("eventType".to_owned(), s("StockReceived")),
            (
                "payload".to_owned(),
                StreamValue::M(HashMap::from([
                    ("quantity".to_owned(), StreamValue::N("4".to_owned())),
                    ("reference".to_owned(), s("PO-1")),
                ])),
            ),
            ("eventId".to_owned(), s("e-7")),
            (
                "timestamp".to_owned(),
                StreamValue::N("1717200000000".to_owned()),
            ),
        ])
    }

    fn stream_record(image: HashMap<String, StreamValue>) -> Record {
        Record::builder()
            .event_id("abc")
            .event_name(OperationType::Insert)
            .event_version("1.0")
            .aws_region("eu-west-1")
            .dynamodb(
                SdkStreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_717_200_000))
                    .set_keys(Some(HashMap::from([(
                        "aggregateId".to_owned(),
                        StreamValue::S("item-1".to_owned()),
                    )])))
                    .set_new_image(Some(image))
                    .sequence_number("1100000000017454423009")
                    .size_bytes(120)
                    .stream_view_type(SdkViewType::NewImage)
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_stream_record_becomes_the_lambda_record_with_a_decodable_image() {
        let record = lambda_record(stream_record(event_image()), "arn:stream", "us-east-1");
        assert_eq!(record.event_name, "INSERT");
        assert_eq!(record.event_source_arn.as_deref(), Some("arn:stream"));
        assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(record.aws_region, "eu-west-1");
        assert_eq!(
            record.change.sequence_number.as_deref(),
            Some("1100000000017454423009")
        );
        assert_eq!(record.change.size_bytes, 120);
        assert_eq!(
            record.change.stream_view_type,
            Some(StreamViewType::NewImage)
        );
        assert_eq!(
            record.change.approximate_creation_date_time.timestamp(),
            1_717_200_000
        );
        let event: EventEnvelope = serde_dynamo::from_item(record.change.new_image).unwrap();
        assert_eq!(event.aggregate_id, "item-1");
        assert_eq!(event.sequence, 7);
        assert_eq!(event.payload["quantity"], 4);
        assert_eq!(event.payload["reference"], "PO-1");
    }

    #[test]
    fn every_attribute_type_converts() {
        let value = StreamValue::M(HashMap::from([
            ("b".to_owned(), StreamValue::B(Blob::new(vec![1, 2]))),
            ("bs".to_owned(), StreamValue::Bs(vec![Blob::new(vec![3])])),
            ("ss".to_owned(), StreamValue::Ss(vec!["x".to_owned()])),
            ("ns".to_owned(), StreamValue::Ns(vec!["1".to_owned()])),
            (
                "l".to_owned(),
                StreamValue::L(vec![StreamValue::Bool(true), StreamValue::Null(true)]),
            ),
        ]));
        let converted = attribute_value("root", value).unwrap();
        let AttributeValue::M(map) = converted else {
            panic!("not a map")
        };
        assert_eq!(map["b"], AttributeValue::B(vec![1, 2]));
        assert_eq!(map["bs"], AttributeValue::Bs(vec![vec![3]]));
        assert_eq!(map["ss"], AttributeValue::Ss(vec!["x".to_owned()]));
        assert_eq!(map["ns"], AttributeValue::Ns(vec!["1".to_owned()]));
        assert_eq!(
            map["l"],
            AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)])
        );
    }
}
