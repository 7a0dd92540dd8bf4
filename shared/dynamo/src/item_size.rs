//! Item sizes as DynamoDB bills them (snapshot_core::stored_size has the rules), measured on
//! the items themselves: an event item read by a Query ([`item_bytes`]) and the NEW_IMAGE of a
//! stream record ([`image_bytes`]), which is the whole item. Measuring the item rather than
//! its decoded envelope counts every attribute a writer stored, of any type.
//!
//! A stream record's `SizeBytes` is not used: it measures the record (its `Keys` and images),
//! so with NEW_IMAGE it is the item's size plus its key attributes a second time, and records
//! built by tools and tests do not set it.

use aws_sdk_dynamodb::types::AttributeValue;
use snapshot_core::stored_size::{number_bytes, CONTAINER_BYTES, ELEMENT_BYTES, SCALAR_BYTES};

use crate::stored::Item;

/// The size of an item as the SDK gives it.
pub fn item_bytes(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_bytes(value))
        .sum()
}

fn value_bytes(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => number_bytes(n),
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => SCALAR_BYTES,
        AttributeValue::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_bytes(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len() as u64).sum(),
        AttributeValue::L(list) => {
            CONTAINER_BYTES
                + list
                    .iter()
                    .map(|v| ELEMENT_BYTES + value_bytes(v))
                    .sum::<u64>()
        }
        AttributeValue::M(map) => {
            CONTAINER_BYTES
                + map
                    .iter()
                    .map(|(k, v)| ELEMENT_BYTES + k.len() as u64 + value_bytes(v))
                    .sum::<u64>()
        }
        // A type newer than this SDK: nothing to measure it by; counted as a scalar.
        _ => SCALAR_BYTES,
    }
}

/// The size of a stream record's image (`serde_dynamo`'s form, as Lambda delivers it).
pub fn image_bytes(image: &serde_dynamo::Item) -> u64 {
    image
        .iter()
        .map(|(name, value)| name.len() as u64 + image_value_bytes(value))
        .sum()
}

fn image_value_bytes(value: &serde_dynamo::AttributeValue) -> u64 {
    use serde_dynamo::AttributeValue as V;
    match value {
        V::S(s) => s.len() as u64,
        V::N(n) => number_bytes(n),
        V::B(b) => b.len() as u64,
        V::Bool(_) | V::Null(_) => SCALAR_BYTES,
        V::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        V::Ns(set) => set.iter().map(|n| number_bytes(n)).sum(),
        V::Bs(set) => set.iter().map(|b| b.len() as u64).sum(),
        V::L(list) => {
            CONTAINER_BYTES
                + list
                    .iter()
                    .map(|v| ELEMENT_BYTES + image_value_bytes(v))
                    .sum::<u64>()
        }
        V::M(map) => {
            CONTAINER_BYTES
                + map
                    .iter()
                    .map(|(k, v)| ELEMENT_BYTES + k.len() as u64 + image_value_bytes(v))
                    .sum::<u64>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use snapshot_core::stored_size::event_bytes;
    use snapshot_core::EventEnvelope;

    fn envelope(payload: serde_json::Value, metadata: Option<serde_json::Value>) -> EventEnvelope {
        EventEnvelope {
            aggregate_id: "item-1".to_owned(),
            sequence: 42,
            aggregate_type: "INVENTORY_ITEM".to_owned(),
            event_type: "ItemCreated".to_owned(),
            payload,
            event_id: "8a3c".to_owned(),
            timestamp: 1_700_000_000_123,
            metadata: metadata.and_then(|m| m.as_object().cloned()),
        }
    }

    /// The three measures agree on an event as this service stores it.
    fn agree(event: &EventEnvelope) {
        let item: Item = serde_dynamo::to_item(event).unwrap();
        let image: serde_dynamo::Item = serde_dynamo::to_item(event).unwrap();
        assert_eq!(item_bytes(&item), event_bytes(event));
        assert_eq!(image_bytes(&image), event_bytes(event));
    }

    #[test]
    fn an_item_an_image_and_an_envelope_measure_alike() {
        agree(&envelope(json!({"sku": "S-1", "qty": 5}), None));
        agree(&envelope(
            json!({"lines": [{"sku": "é", "qty": -1.25}, null, true], "empty": {}}),
            Some(json!({"by": "ops", "n": 1e3})),
        ));
    }

    #[test]
    fn sets_and_binaries_count_their_elements() {
        let item: Item = [
            ("b".to_owned(), AttributeValue::B(vec![0_u8; 10].into())),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["ab".to_owned(), "c".to_owned()]),
            ),
            (
                "ns".to_owned(),
                AttributeValue::Ns(vec!["1".to_owned(), "123".to_owned()]),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(item_bytes(&item), (1 + 10) + (2 + 3) + (2 + 2 + 3));
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1.0e6..1.0e6_f64).prop_map(|n| json!(n)),
            ".{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_payload_measures_alike(payload in json_value()) {
            let event = envelope(json!({"p": payload}), None);
            let item: Item = serde_dynamo::to_item(&event).unwrap();
            prop_assert_eq!(item_bytes(&item), event_bytes(&event));
        }
    }
}
