//! The stored size of an event: what reading its item costs, by the rules DynamoDB documents
//! for item sizes ("Item sizes and formats"). The bytes snapshot policy
//! ([`crate::policy::SnapshotPolicy::bytes_threshold`]) counts the events after a snapshot in
//! these bytes, because a Query bills the sum of the sizes of the items it reads (4 KB per
//! read unit, strongly consistent).
//!
//! The rules, per attribute: the name's UTF-8 bytes plus the value's size. A string is its
//! UTF-8 bytes; a number one byte per two significant digits plus one; a binary its bytes; a
//! boolean or null one byte; a list or map three bytes plus, per element, one byte and the
//! element's size (a map element's name counts too); a set the sizes of its elements. The
//! DynamoDB adapter applies the same rules to the items it reads (any attribute a writer
//! stored); here they apply to an [`EventEnvelope`] as this service stores it (its serde form,
//! which is the item: `shared/dynamo` writes events with `serde_dynamo::to_item`), so the
//! in-memory store measures what DynamoDB would bill.

use crate::domain::EventEnvelope;

/// Overhead of a list or map attribute, whatever its contents.
pub const CONTAINER_BYTES: u64 = 3;
/// Overhead of each element of a list or map.
pub const ELEMENT_BYTES: u64 = 1;
/// Size of a boolean or null value.
pub const SCALAR_BYTES: u64 = 1;

/// Size of a number given as its decimal text (`"-12.50"`, `"1e3"`): one byte per two
/// significant digits (leading and trailing zeros trimmed), plus one.
pub fn number_bytes(text: &str) -> u64 {
    let mantissa = text
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .trim_start_matches(['-', '+']);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

/// Size of a JSON value stored as DynamoDB stores it through serde (object: map, array:
/// list, number: number, string: string, boolean, null).
pub fn json_value_bytes(value: &serde_json::Value) -> u64 {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => SCALAR_BYTES,
        Value::Number(n) => number_bytes(&n.to_string()),
        Value::String(s) => s.len() as u64,
        Value::Array(items) => {
            CONTAINER_BYTES
                + items
                    .iter()
                    .map(|v| ELEMENT_BYTES + json_value_bytes(v))
                    .sum::<u64>()
        }
        Value::Object(map) => {
            CONTAINER_BYTES
                + map
                    .iter()
                    .map(|(k, v)| ELEMENT_BYTES + k.len() as u64 + json_value_bytes(v))
                    .sum::<u64>()
        }
    }
}

/// The stored size of `event`'s item: every attribute's name and value.
pub fn event_bytes(event: &EventEnvelope) -> u64 {
    match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(attributes)) => attributes
            .iter()
            .map(|(name, value)| name.len() as u64 + json_value_bytes(value))
            .sum(),
        // An envelope always serialises as an object; nothing else is an item.
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_count_significant_digits() {
        assert_eq!(number_bytes("0"), 1);
        assert_eq!(number_bytes("7"), 2);
        assert_eq!(number_bytes("12"), 2);
        assert_eq!(number_bytes("123"), 3);
        assert_eq!(
            number_bytes("-123.4500"),
            4,
            "12345: sign and trailing zeros trimmed"
        );
        assert_eq!(number_bytes("1000000"), 2, "one significant digit");
        assert_eq!(number_bytes("1700000000123"), 8, "13 digits");
        assert_eq!(number_bytes("1.5e3"), 2);
    }

    #[test]
    fn containers_pay_three_bytes_and_one_per_element() {
        assert_eq!(json_value_bytes(&json!({})), 3);
        assert_eq!(json_value_bytes(&json!([])), 3);
        // "qty" (3) + number 5 (2) + element (1) + map (3).
        assert_eq!(json_value_bytes(&json!({"qty": 5})), 9);
        // two strings of 2 bytes, one byte each, three for the list.
        assert_eq!(json_value_bytes(&json!(["ab", "cd"])), 9);
        assert_eq!(json_value_bytes(&json!([true, null])), 3 + 2 + 2);
        assert_eq!(json_value_bytes(&json!("é")), 2, "UTF-8 bytes");
    }

    #[test]
    fn an_event_counts_every_attribute_name_and_value() {
        let event = EventEnvelope {
            aggregate_id: "item-1".to_owned(),
            sequence: 12,
            aggregate_type: "INVENTORY_ITEM".to_owned(),
            event_type: "ItemCreated".to_owned(),
            payload: json!({"sku": "S"}),
            event_id: "e".to_owned(),
            timestamp: 1,
            metadata: None,
        };
        let expected = ("aggregateId".len() + 6)
            + ("sequence".len() + 2)
            + ("aggregateType".len() + 14)
            + ("eventType".len() + 11)
            + ("payload".len() + 3 + 1 + 3 + 1)
            + ("eventId".len() + 1)
            + ("timestamp".len() + 2);
        assert_eq!(event_bytes(&event), expected as u64);
    }
}
