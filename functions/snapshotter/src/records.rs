//! Stream records: what identifies an event in an image, the order of stream sequence numbers,
//! and the record DynamoDB Streams delivers for an appended event.

use std::cmp::Ordering;

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use serde_dynamo::{AttributeValue, Item};
use snapshot_core::EventEnvelope;

/// The only stream records that carry new events.
pub const INSERT: &str = "INSERT";

/// Orders stream sequence numbers, which are decimal strings of up to 40 digits (too long for
/// an integer type): numerically when both are decimal, else as text.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if decimal(a) && decimal(b) {
        let a = a.trim_start_matches('0');
        let b = b.trim_start_matches('0');
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

pub(crate) fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

pub(crate) fn number_attr(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// The INSERT record DynamoDB Streams (NEW_IMAGE) delivers for `event`, as Lambda passes it:
/// for tests, benchmarks and local tools.
pub fn insert_record(
    event: &EventEnvelope,
    sequence_number: &str,
) -> Result<EventRecord, serde_dynamo::Error> {
    let image: Item = serde_dynamo::to_item(event)?;
    let mut keys = Item::from(std::collections::HashMap::<String, AttributeValue>::new());
    for key in ["aggregateId", "sequence"] {
        if let Some(value) = image.get(key) {
            keys.insert(key.to_owned(), value.clone());
        }
    }
    let mut change = StreamRecord::default();
    change.keys = keys;
    change.new_image = image;
    change.sequence_number = Some(sequence_number.to_owned());
    change.size_bytes = 0;
    change.stream_view_type = Some(StreamViewType::NewImage);
    let mut record = EventRecord::default();
    record.aws_region = "us-east-1".to_owned();
    record.change = change;
    record.event_id = format!("{}-{}", event.aggregate_id, event.sequence);
    record.event_name = INSERT.to_owned();
    record.event_source = Some("aws:dynamodb".to_owned());
    record.event_version = Some("1.1".to_owned());
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_numerically_beyond_u128() {
        let long = "1100000000017454423009000000000000000010";
        let longer_by_digit = "11000000000174544230090000000000000000100";
        assert_eq!(
            compare_sequence_numbers(long, longer_by_digit),
            Ordering::Less
        );
        assert_eq!(compare_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("010", "10"), Ordering::Equal);
        assert_eq!(compare_sequence_numbers("11", "10"), Ordering::Greater);
    }

    #[test]
    fn non_decimal_sequence_numbers_order_as_text() {
        assert_eq!(compare_sequence_numbers("", "1"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("b", "a"), Ordering::Greater);
    }
}
