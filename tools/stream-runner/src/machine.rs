//! The event source mapping's decisions, without I/O: which records a handler response
//! acknowledges, when a failing record is redelivered or discarded, where the checkpoint
//! moves and where a (re)started reader resumes. [`crate::runner`] does the reading and the
//! invoking around it; everything here is tested without an emulator.

use std::collections::VecDeque;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;

/// Where a shard's reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Right after this sequence number.
    After(String),
    /// At the configured starting position (nothing read or acknowledged yet).
    StartingPosition,
}

/// What to do after one delivery of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Leading records of the batch acknowledged (removed from the buffer).
    pub acknowledged: usize,
    /// Some record was not accepted: the batch is redelivered from it.
    pub failed: bool,
    /// The first unaccepted record had its last attempt: it is given up.
    pub discard_head: bool,
    /// Consecutive failed deliveries of the buffer's first record after this delivery.
    pub attempts: u32,
    /// The new checkpoint, when it moves: the last acknowledged (or discarded) record's
    /// sequence number.
    pub checkpoint: Option<String>,
}

/// How many leading records of a batch the handler accepted: those before the earliest
/// reported failure; none when the invocation failed as a whole. A failure naming no record
/// of the batch fails the whole batch, as in Lambda.
pub fn accepted_prefix(
    sequence_numbers: &[Option<String>],
    response: Option<&DynamoDbEventResponse>,
) -> usize {
    let Some(response) = response else {
        return 0;
    };
    let mut accepted = sequence_numbers.len();
    for failure in &response.batch_item_failures {
        let position = failure.item_identifier.as_deref().and_then(|id| {
            sequence_numbers
                .iter()
                .position(|s| s.as_deref() == Some(id))
        });
        accepted = accepted.min(position.unwrap_or(0));
    }
    accepted
}

/// The decision for one delivery: `batch` holds the delivered records' sequence numbers,
/// `accepted` how many of them the handler accepted, `attempts` the failed deliveries of the
/// first record so far; `max_attempts` `None` retries forever.
pub fn decide(
    batch: &[Option<String>],
    accepted: usize,
    attempts: u32,
    max_attempts: Option<u32>,
) -> Decision {
    let accepted = accepted.min(batch.len());
    let mut checkpoint = batch[..accepted].iter().rev().find_map(Clone::clone);
    // Progress resets the count: it is about the record now at the head.
    let mut attempts = if accepted > 0 { 0 } else { attempts };
    let failed = accepted < batch.len();
    let mut discard_head = false;
    if failed {
        attempts += 1;
        if max_attempts.is_some_and(|max| attempts >= max) {
            discard_head = true;
            attempts = 0;
            checkpoint = batch[accepted].clone().or(checkpoint);
        }
    }
    Decision {
        acknowledged: accepted,
        failed,
        discard_head,
        attempts,
        checkpoint,
    }
}

/// Where to resume reading: after the last record fetched (buffered records are kept), else
/// after the checkpoint, else at the starting position.
pub fn resume(last_fetched: Option<&str>, checkpoint: Option<&str>) -> Resume {
    last_fetched
        .or(checkpoint)
        .map_or(Resume::StartingPosition, |s| Resume::After(s.to_owned()))
}

/// One shard's records between reading and acknowledging: the buffer in stream order, the
/// last sequence number read and the failed deliveries of the buffer's head.
#[derive(Debug, Default)]
pub struct ShardState {
    buffer: VecDeque<EventRecord>,
    last_fetched: Option<String>,
    attempts: u32,
}

/// What applying a decision removed.
#[derive(Debug, Default)]
pub struct Applied {
    /// The discarded record, when the decision gave one up.
    pub discarded: Option<EventRecord>,
}

impl ShardState {
    /// Records fetched, not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Failed deliveries of the buffer's first record.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Records the reader may still fetch before the buffer holds a batch.
    pub fn room(&self, batch_size: usize) -> usize {
        batch_size.saturating_sub(self.buffer.len())
    }

    /// Where to resume reading, given the shard's checkpoint.
    pub fn resume(&self, checkpoint: Option<&str>) -> Resume {
        resume(self.last_fetched.as_deref(), checkpoint)
    }

    /// Appends records read from the stream.
    pub fn fetched(&mut self, records: impl IntoIterator<Item = EventRecord>) {
        for record in records {
            if let Some(sequence) = &record.change.sequence_number {
                self.last_fetched = Some(sequence.clone());
            }
            self.buffer.push_back(record);
        }
    }

    /// The next batch to deliver (the buffer's first `batch_size` records), `None` when the
    /// buffer is empty.
    pub fn next_batch(&self, batch_size: usize) -> Option<Event> {
        if self.buffer.is_empty() {
            return None;
        }
        let mut event = Event::default();
        event.records = self.buffer.iter().take(batch_size).cloned().collect();
        Some(event)
    }

    /// Decides on one delivery of the buffer's first `delivered` records (the batch from
    /// [`Self::next_batch`]): `response` is the handler's, `None` when the invocation failed.
    pub fn decide(
        &self,
        delivered: usize,
        response: Option<&DynamoDbEventResponse>,
        max_attempts: Option<u32>,
    ) -> Decision {
        let sequence_numbers: Vec<Option<String>> = self
            .buffer
            .iter()
            .take(delivered)
            .map(|r| r.change.sequence_number.clone())
            .collect();
        let accepted = accepted_prefix(&sequence_numbers, response);
        decide(&sequence_numbers, accepted, self.attempts, max_attempts)
    }

    /// Removes what the decision acknowledged or discarded.
    pub fn apply(&mut self, decision: &Decision) -> Applied {
        let acknowledged = decision.acknowledged.min(self.buffer.len());
        self.buffer.drain(..acknowledged);
        self.attempts = decision.attempts;
        Applied {
            discarded: if decision.discard_head {
                self.buffer.pop_front()
            } else {
                None
            },
        }
    }

    /// The sequence number at the head of the buffer (where a redelivery starts).
    pub fn head(&self) -> Option<&str> {
        self.buffer
            .front()
            .and_then(|r| r.change.sequence_number.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

    fn response(ids: &[Option<&str>]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = ids
            .iter()
            .map(|id| {
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = id.map(str::to_owned);
                f
            })
            .collect();
        response
    }

    fn sequences(ids: &[&str]) -> Vec<Option<String>> {
        ids.iter().map(|s| Some((*s).to_owned())).collect()
    }

    fn record(sequence: &str) -> EventRecord {
        let mut record = EventRecord::default();
        record.change.sequence_number = Some(sequence.to_owned());
        record
    }

    /// A shard's stream: every record ever written, as `GetRecords` would return them.
    fn stream(from: u32, to: u32) -> Vec<EventRecord> {
        (from..=to).map(|n| record(&n.to_string())).collect()
    }

    /// What a reader resuming at `resume` reads from `stream`.
    fn read(stream: &[EventRecord], resume: &Resume) -> Vec<EventRecord> {
        match resume {
            Resume::StartingPosition => stream.to_vec(),
            Resume::After(after) => stream
                .iter()
                .skip_while(|r| r.change.sequence_number.as_deref() != Some(after.as_str()))
                .skip(1)
                .cloned()
                .collect(),
        }
    }

    fn delivered(event: &Event) -> Vec<&str> {
        event
            .records
            .iter()
            .filter_map(|r| r.change.sequence_number.as_deref())
            .collect()
    }

    #[test]
    fn no_failures_accept_the_whole_batch() {
        let batch = sequences(&["10", "11", "12", "13"]);
        assert_eq!(accepted_prefix(&batch, Some(&response(&[]))), 4);
    }

    #[test]
    fn records_before_the_earliest_failure_are_accepted() {
        let batch = sequences(&["10", "11", "12", "13"]);
        assert_eq!(
            accepted_prefix(&batch, Some(&response(&[Some("13"), Some("12")]))),
            2
        );
    }

    #[test]
    fn an_empty_missing_or_unknown_identifier_or_a_failed_invocation_fails_the_whole_batch() {
        let batch = sequences(&["10", "11", "12", "13"]);
        for ids in [[Some("")], [None], [Some("99")]] {
            assert_eq!(accepted_prefix(&batch, Some(&response(&ids))), 0, "{ids:?}");
        }
        assert_eq!(accepted_prefix(&batch, None), 0);
    }

    #[test]
    fn a_partial_failure_acknowledges_the_prefix_and_redelivers_from_the_failed_record() {
        let mut shard = ShardState::default();
        shard.fetched(stream(1, 5));
        let batch = shard.next_batch(10).unwrap();
        let decision = shard.decide(batch.records.len(), Some(&response(&[Some("3")])), Some(3));
        assert_eq!(
            decision,
            Decision {
                acknowledged: 2,
                failed: true,
                discard_head: false,
                attempts: 1,
                checkpoint: Some("2".to_owned()),
            }
        );
        assert!(shard.apply(&decision).discarded.is_none());

        // Redelivery starts at the reported record and keeps everything after it.
        let again = shard.next_batch(10).unwrap();
        assert_eq!(delivered(&again), ["3", "4", "5"]);
        let failing_again =
            shard.decide(again.records.len(), Some(&response(&[Some("3")])), Some(3));
        assert_eq!(failing_again.acknowledged, 0);
        assert_eq!(
            failing_again.attempts, 2,
            "a second failure of the same head"
        );
        assert_eq!(failing_again.checkpoint, None, "the checkpoint stays put");
        shard.apply(&failing_again);

        // Once it succeeds, the rest is acknowledged and the attempt count resets.
        let third = shard.next_batch(10).unwrap();
        let success = shard.decide(third.records.len(), Some(&response(&[])), Some(3));
        assert_eq!(success.acknowledged, 3);
        assert_eq!(success.attempts, 0);
        assert_eq!(success.checkpoint.as_deref(), Some("5"));
        shard.apply(&success);
        assert_eq!(shard.pending(), 0);
    }

    #[test]
    fn a_failed_invocation_redelivers_the_whole_batch() {
        let mut shard = ShardState::default();
        shard.fetched(stream(1, 3));
        let batch = shard.next_batch(10).unwrap();
        let decision = shard.decide(batch.records.len(), None, None);
        assert_eq!((decision.acknowledged, decision.failed), (0, true));
        shard.apply(&decision);
        assert_eq!(delivered(&shard.next_batch(10).unwrap()), ["1", "2", "3"]);
    }

    #[test]
    fn a_record_is_discarded_after_its_last_attempt_and_the_checkpoint_moves_past_it() {
        let mut shard = ShardState::default();
        shard.fetched(stream(1, 4));
        let poison = Some(&response(&[Some("2")]));
        let mut decisions = Vec::new();
        for _ in 0..3 {
            let batch = shard.next_batch(10).unwrap();
            let decision = shard.decide(batch.records.len(), poison, Some(3));
            let applied = shard.apply(&decision);
            decisions.push((decision, applied.discarded.is_some()));
        }
        let attempts: Vec<u32> = decisions.iter().map(|(d, _)| d.attempts).collect();
        // First delivery acknowledges "1" (resetting the count) then fails "2": 1, 2, then the
        // third failure is the last attempt: discarded, count reset.
        assert_eq!(attempts, [1, 2, 0]);
        let discards: Vec<bool> = decisions.iter().map(|(d, _)| d.discard_head).collect();
        assert_eq!(discards, [false, false, true]);
        assert!(decisions[2].1, "the record itself is removed");
        assert_eq!(decisions[2].0.checkpoint.as_deref(), Some("2"));
        // Delivery continues after the discarded record.
        assert_eq!(delivered(&shard.next_batch(10).unwrap()), ["3", "4"]);
    }

    #[test]
    fn without_a_limit_a_failing_record_is_never_discarded() {
        let decision = decide(&sequences(&["7"]), 0, 1_000, None);
        assert!(!decision.discard_head);
        assert_eq!(decision.attempts, 1_001);
        assert_eq!(decision.checkpoint, None);
    }

    #[test]
    fn a_restarted_reader_resumes_after_the_checkpoint_and_redelivers_what_was_not_acknowledged() {
        let written = stream(1, 6);
        let mut first = ShardState::default();
        assert_eq!(first.resume(None), Resume::StartingPosition);
        first.fetched(read(&written, &first.resume(None)));
        let batch = first.next_batch(4).unwrap();
        assert_eq!(delivered(&batch), ["1", "2", "3", "4"]);
        let decision = first.decide(batch.records.len(), Some(&response(&[Some("4")])), Some(10));
        first.apply(&decision);
        let checkpoint = decision.checkpoint.expect("records 1-3 acknowledged");
        assert_eq!(checkpoint, "3");
        // Still running, the reader continues after what it fetched, not the checkpoint.
        assert_eq!(
            first.resume(Some(&checkpoint)),
            Resume::After("6".to_owned())
        );

        // Restart: the buffer is gone, only the checkpoint survives.
        let mut restarted = ShardState::default();
        let resume = restarted.resume(Some(&checkpoint));
        assert_eq!(resume, Resume::After("3".to_owned()));
        restarted.fetched(read(&written, &resume));
        let batch = restarted.next_batch(10).unwrap();
        assert_eq!(
            delivered(&batch),
            ["4", "5", "6"],
            "nothing acknowledged is redelivered, nothing unacknowledged is lost"
        );
        assert_eq!(restarted.attempts(), 0);
    }

    #[test]
    fn the_buffer_is_topped_up_to_one_batch() {
        let mut shard = ShardState::default();
        assert_eq!(shard.room(4), 4);
        shard.fetched(stream(1, 3));
        assert_eq!(shard.room(4), 1);
        shard.fetched(stream(4, 6));
        assert_eq!(shard.room(4), 0);
        assert_eq!(
            delivered(&shard.next_batch(4).unwrap()),
            ["1", "2", "3", "4"]
        );
        assert_eq!(shard.head(), Some("1"));
    }
}
