//! Turns a stream batch into per-aggregate work: INSERT images decoded into events, other
//! records and unregistered types set aside, poison records attributed to their aggregate,
//! events of a type this version does not know yet noted for their aggregate.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use snapshot_core::{EventEnvelope, EventError, Registry};
use tracing::{error, info, warn};

use crate::records::{compare_sequence_numbers, number_attr, string_attr, INSERT};

/// A record that cannot be used: an image that does not decode as an event, or an event this
/// aggregate type does not know. It is reported, never skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonRecord {
    pub aggregate_id: Option<String>,
    pub sequence: Option<u64>,
    /// The record's stream `SequenceNumber`.
    pub stream_sequence: Option<String>,
    pub reason: String,
}

/// An event whose `eventType` this version does not know (the writing service deployed a new
/// type first). Not a poison record: the aggregate is skipped, and snapshotted again once the
/// code knows the type (`crate::evaluate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvent {
    pub sequence: u64,
    pub event_type: String,
}

/// The records of one aggregate in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateBatch {
    pub aggregate_id: String,
    pub aggregate_type: String,
    /// Decoded events, ascending by sequence, without duplicates.
    pub events: Vec<EventEnvelope>,
    pub poison: Vec<PoisonRecord>,
    /// Events of a type this version does not know, ascending by sequence.
    pub unknown: Vec<UnknownEvent>,
    /// Stored bytes of each event's item by sequence (its NEW_IMAGE measured as DynamoDB
    /// sizes items, snapshot_dynamo::item_size): what the bytes policy adds up.
    pub stored_bytes: BTreeMap<u64, u64>,
    /// Lowest stream sequence number among its records (`None`: a record had none).
    first_stream_sequence: Option<String>,
    unsequenced: bool,
}

impl AggregateBatch {
    fn new(aggregate_id: String, aggregate_type: String) -> Self {
        Self {
            aggregate_id,
            aggregate_type,
            events: Vec::new(),
            poison: Vec::new(),
            unknown: Vec::new(),
            stored_bytes: BTreeMap::new(),
            first_stream_sequence: None,
            unsequenced: false,
        }
    }

    fn saw(&mut self, stream_sequence: Option<&str>) {
        match stream_sequence {
            None => self.unsequenced = true,
            Some(seq) => {
                let lower = self
                    .first_stream_sequence
                    .as_deref()
                    .is_none_or(|first| compare_sequence_numbers(seq, first) == Ordering::Less);
                if lower {
                    self.first_stream_sequence = Some(seq.to_owned());
                }
            }
        }
    }

    /// What to report when this aggregate fails: its lowest stream sequence number, so the
    /// event source mapping redelivers from there. Empty when one of its records had no
    /// sequence number, which makes Lambda retry the whole batch: nothing is lost.
    pub fn failure_identifier(&self) -> String {
        match (&self.first_stream_sequence, self.unsequenced) {
            (Some(first), false) => first.clone(),
            _ => String::new(),
        }
    }
}

/// A batch sorted out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// In order of first appearance in the batch.
    pub aggregates: Vec<AggregateBatch>,
    /// Non-INSERT records and records of unregistered aggregate types.
    pub ignored: u64,
    /// Poison records whose aggregate could not be read: each fails on its own.
    pub orphans: Vec<PoisonRecord>,
}

impl Batch {
    pub fn poison_records(&self) -> u64 {
        let attributed: usize = self.aggregates.iter().map(|a| a.poison.len()).sum();
        (attributed + self.orphans.len()) as u64
    }
}

enum Classified {
    Ignored,
    /// An event and the stored bytes of its item.
    Event(EventEnvelope, u64),
    /// A well-formed event of an `eventType` this version does not know.
    UnknownType(EventEnvelope),
    Poison(PoisonRecord),
}

/// A decoded event, or one of a type this version does not know.
enum Decoded {
    Known(EventEnvelope, u64),
    Unknown(EventEnvelope),
}

impl Decoded {
    fn envelope(&self) -> &EventEnvelope {
        match self {
            Self::Known(event, _) | Self::Unknown(event) => event,
        }
    }
}

/// Sorts the records of a batch by aggregate.
pub fn coalesce(event: Event, registry: &Registry) -> Batch {
    let mut batch = Batch::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for record in event.records {
        let stream_sequence = record.change.sequence_number.clone();
        let (aggregate_id, aggregate_type, classified) = match classify(record, registry) {
            Classified::Ignored => {
                batch.ignored += 1;
                continue;
            }
            Classified::Event(event, bytes) => (
                event.aggregate_id.clone(),
                event.aggregate_type.clone(),
                Ok(Decoded::Known(event, bytes)),
            ),
            Classified::UnknownType(event) => (
                event.aggregate_id.clone(),
                event.aggregate_type.clone(),
                Ok(Decoded::Unknown(event)),
            ),
            Classified::Poison(poison) => match poison.aggregate_id.clone() {
                Some(id) => (id, String::new(), Err(poison)),
                None => {
                    batch.orphans.push(poison);
                    continue;
                }
            },
        };
        let position = *index.entry(aggregate_id.clone()).or_insert_with(|| {
            batch
                .aggregates
                .push(AggregateBatch::new(aggregate_id.clone(), String::new()));
            batch.aggregates.len() - 1
        });
        let Some(aggregate) = batch.aggregates.get_mut(position) else {
            continue;
        };
        aggregate.saw(stream_sequence.as_deref());
        match classified {
            Ok(decoded)
                if aggregate.aggregate_type.is_empty()
                    || aggregate.aggregate_type == aggregate_type =>
            {
                aggregate.aggregate_type = aggregate_type;
                match decoded {
                    Decoded::Known(event, bytes) => {
                        // Of two images of one event the later is kept, as for the events.
                        aggregate.stored_bytes.insert(event.sequence, bytes);
                        aggregate.events.push(event);
                    }
                    Decoded::Unknown(event) => aggregate.unknown.push(UnknownEvent {
                        sequence: event.sequence,
                        event_type: event.event_type,
                    }),
                }
            }
            Ok(decoded) => {
                let event = decoded.envelope();
                let poison = PoisonRecord {
                    aggregate_id: Some(event.aggregate_id.clone()),
                    sequence: Some(event.sequence),
                    stream_sequence,
                    reason: format!(
                        "aggregateType {} differs from {} of the same aggregate",
                        event.aggregate_type, aggregate.aggregate_type
                    ),
                };
                log_poison(&poison);
                aggregate.poison.push(poison);
            }
            Err(poison) => aggregate.poison.push(poison),
        }
    }
    for aggregate in &mut batch.aggregates {
        sort_and_dedupe(&mut aggregate.events);
        aggregate.unknown.sort_by_key(|u| u.sequence);
        aggregate.unknown.dedup_by_key(|u| u.sequence);
    }
    batch
}

fn classify(record: EventRecord, registry: &Registry) -> Classified {
    let stream_sequence = record.change.sequence_number;
    if record.event_name != INSERT {
        info!(
            event_name = %record.event_name,
            stream_sequence = stream_sequence.as_deref().unwrap_or_default(),
            "non-INSERT record ignored"
        );
        return Classified::Ignored;
    }
    let image = record.change.new_image;
    let aggregate_id = string_attr(&image, "aggregateId")
        .or_else(|| string_attr(&record.change.keys, "aggregateId"))
        .map(str::to_owned);
    let sequence =
        number_attr(&image, "sequence").or_else(|| number_attr(&record.change.keys, "sequence"));
    let poison = |reason: String| {
        let poison = PoisonRecord {
            aggregate_id: aggregate_id.clone(),
            sequence,
            stream_sequence: stream_sequence.clone(),
            reason,
        };
        log_poison(&poison);
        Classified::Poison(poison)
    };
    let Some(aggregate_type) = string_attr(&image, "aggregateType").map(str::to_owned) else {
        return poison("image has no aggregateType string".to_owned());
    };
    let Some(kind) = registry.get(&aggregate_type) else {
        info!(
            aggregate_id = aggregate_id.as_deref().unwrap_or_default(),
            aggregate_type = %aggregate_type,
            "record of an unregistered aggregate type ignored"
        );
        return Classified::Ignored;
    };
    let bytes = snapshot_dynamo::item_size::image_bytes(&image);
    let event: EventEnvelope = match serde_dynamo::from_item(image) {
        Ok(event) => event,
        Err(e) => return poison(format!("image does not decode as an event: {e}")),
    };
    if !event.payload.is_object() {
        return poison("payload must be a map".to_owned());
    }
    if event.sequence == 0 {
        return poison("sequence must be >= 1".to_owned());
    }
    match kind.check_event(&event) {
        Ok(()) => Classified::Event(event, bytes),
        Err(EventError::UnknownEventType { .. }) => {
            warn!(
                aggregate_id = %event.aggregate_id,
                sequence = event.sequence,
                event_type = %event.event_type,
                "event type not known to this version; its aggregate is skipped"
            );
            Classified::UnknownType(event)
        }
        Err(e) => poison(e.to_string()),
    }
}

fn log_poison(poison: &PoisonRecord) {
    error!(
        aggregate_id = poison.aggregate_id.as_deref().unwrap_or("<unreadable>"),
        sequence = ?poison.sequence,
        stream_sequence = poison.stream_sequence.as_deref().unwrap_or_default(),
        reason = %poison.reason,
        "poison record"
    );
}

/// Ascending by sequence; of two images of the same event the later one is kept (the stream
/// delivers the newest last).
fn sort_and_dedupe(events: &mut Vec<EventEnvelope>) {
    events.sort_by_key(|e| e.sequence);
    let mut unique: Vec<EventEnvelope> = Vec::with_capacity(events.len());
    for event in events.drain(..) {
        match unique.last_mut() {
            Some(last) if last.sequence == event.sequence => {
                if last.event_id != event.event_id {
                    warn!(
                        aggregate_id = %event.aggregate_id,
                        sequence = event.sequence,
                        "two different events with one sequence in a batch; the later is used"
                    );
                }
                *last = event;
            }
            _ => unique.push(event),
        }
    }
    *events = unique;
}
