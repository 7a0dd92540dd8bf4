//! The local event source mapping's I/O: polls every shard of the event table's stream,
//! invokes the handler with the event Lambda would pass and keeps the checkpoints. What to
//! acknowledge, redeliver, discard or checkpoint is decided by [`crate::machine`].

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tracing::{debug, error, info, warn};

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::convert::lambda_record;
use crate::empty_maps::EmptyMapRepair;
use crate::machine::{Resume, ShardState};
use crate::settings::RunnerSettings;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("table {table} has no stream; it needs StreamSpecification NEW_IMAGE")]
    NoStream { table: String },
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

fn aws(operation: &'static str, e: impl std::error::Error) -> RunnerError {
    RunnerError::Aws {
        operation,
        message: DisplayErrorContext(e).to_string(),
    }
}

/// What one poll round (or a drain) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Records read from the stream.
    pub fetched: u64,
    /// Handler invocations.
    pub batches: u64,
    /// Records acknowledged (checkpointed) by the handler's responses.
    pub acknowledged: u64,
    /// Invocations that reported failures (or failed as a whole).
    pub failed_batches: u64,
    /// Records given up after `max_attempts` deliveries.
    pub discarded: u64,
}

impl PollReport {
    pub fn progressed(&self) -> bool {
        self.fetched + self.acknowledged + self.discarded > 0
    }

    fn add(&mut self, other: PollReport) {
        self.fetched += other.fetched;
        self.batches += other.batches;
        self.acknowledged += other.acknowledged;
        self.failed_batches += other.failed_batches;
        self.discarded += other.discarded;
    }
}

/// What [`StreamRunner::run_until_idle`] did, and what is left unacknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub total: PollReport,
    pub rounds: u64,
    /// Records fetched but not acknowledged (a failing record blocks its shard).
    pub pending: usize,
}

#[derive(Debug)]
struct Shard {
    id: String,
    parent: Option<String>,
    iterator: Option<String>,
    /// An iterator has been requested at least once.
    opened: bool,
    /// GetRecords returned no next iterator: nothing more will come.
    closed: bool,
    /// Records between reading and acknowledging.
    state: ShardState,
}

impl Shard {
    fn new(id: String, parent: Option<String>) -> Self {
        Self {
            id,
            parent,
            iterator: None,
            opened: false,
            closed: false,
            state: ShardState::default(),
        }
    }

    fn finished(&self) -> bool {
        self.closed && self.state.pending() == 0
    }
}

pub struct StreamRunner {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
    settings: RunnerSettings,
    shards: Vec<Shard>,
    checkpoints: Checkpoints,
}

impl StreamRunner {
    /// Finds the table's latest stream (DescribeTable) and loads checkpoints if configured.
    /// `streams` is used with [`EmptyMapRepair`] added.
    pub async fn connect(
        dynamodb: &aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: &str,
        region: &str,
        settings: RunnerSettings,
    ) -> Result<Self, RunnerError> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws("DescribeTable", e))?;
        let stream_arn = described
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| RunnerError::NoStream {
                table: table.to_owned(),
            })?;
        let checkpoints = match &settings.checkpoint_file {
            Some(path) => Checkpoints::load(path, &stream_arn)?,
            None => Checkpoints {
                stream_arn: stream_arn.clone(),
                ..Checkpoints::default()
            },
        };
        // DynamoDB Local's Streams drop the type of empty maps (crate::empty_maps).
        let client = aws_sdk_dynamodbstreams::Client::from_conf(
            streams
                .config()
                .to_builder()
                .interceptor(EmptyMapRepair)
                .build(),
        );
        Ok(Self {
            client,
            stream_arn,
            region: region.to_owned(),
            settings,
            shards: Vec::new(),
            checkpoints,
        })
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Shard id → last acknowledged sequence number.
    pub fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    /// Records fetched but not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.shards.iter().map(|s| s.state.pending()).sum()
    }

    /// One round: discover shards, then per shard (children after their parents) top the
    /// buffer up to a batch and deliver it.
    pub async fn poll_once<H, Fut, E>(&mut self, handler: &H) -> Result<PollReport, RunnerError>
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, E>>,
        E: Display,
    {
        self.discover_shards().await?;
        let mut report = PollReport::default();
        for index in 0..self.shards.len() {
            if !self.parent_done(index) {
                continue;
            }
            report.fetched += self.fetch(index).await?;
            report.add(self.deliver(index, handler).await);
        }
        Ok(report)
    }

    /// Polls until a round makes no progress: every record written so far has been delivered
    /// and acknowledged, or a failing record blocks its shard (then `pending > 0`). For tests.
    pub async fn run_until_idle<H, Fut, E>(
        &mut self,
        handler: &H,
    ) -> Result<DrainReport, RunnerError>
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, E>>,
        E: Display,
    {
        let mut drain = DrainReport::default();
        loop {
            let round = self.poll_once(handler).await?;
            drain.rounds += 1;
            drain.total.add(round);
            if !round.progressed() {
                drain.pending = self.pending();
                return Ok(drain);
            }
        }
    }

    /// Polls until `shutdown` completes, waiting `poll_interval` whenever the stream is idle.
    /// Poll failures are logged and retried.
    pub async fn run<H, Fut, E>(&mut self, handler: H, shutdown: impl Future<Output = ()>)
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, E>>,
        E: Display,
    {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.poll_once(&handler).await {
                Ok(report) if report.progressed() => {
                    info!(
                        fetched = report.fetched,
                        batches = report.batches,
                        acknowledged = report.acknowledged,
                        failed_batches = report.failed_batches,
                        discarded = report.discarded,
                        pending = self.pending(),
                        "stream polled"
                    );
                    // A full batch means more may be waiting: poll again at once.
                    if report.fetched >= self.settings.batch_size as u64 {
                        Duration::ZERO
                    } else {
                        self.settings.poll_interval
                    }
                }
                Ok(_) => self.settings.poll_interval,
                Err(e) => {
                    warn!(error = %e, "stream poll failed; retrying");
                    self.settings.poll_interval
                }
            };
            tokio::select! {
                () = &mut shutdown => {
                    info!(pending = self.pending(), "stream runner stopped");
                    return;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn discover_shards(&mut self) -> Result<(), RunnerError> {
        let mut start: Option<String> = None;
        loop {
            let described = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| aws("DescribeStream", e))?;
            let Some(description) = described.stream_description else {
                return Ok(());
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                if !self.shards.iter().any(|s| s.id == id) {
                    debug!(shard_id = %id, "shard discovered");
                    self.shards.push(Shard::new(id, shard.parent_shard_id));
                }
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// Lambda reads a child shard only once its parent is done.
    fn parent_done(&self, index: usize) -> bool {
        let Some(parent) = self.shards.get(index).and_then(|s| s.parent.as_deref()) else {
            return true;
        };
        self.shards
            .iter()
            .find(|s| s.id == parent)
            .is_none_or(Shard::finished)
    }

    async fn open_iterator(&mut self, index: usize) -> Result<(), RunnerError> {
        let Some(shard) = self.shards.get(index) else {
            return Ok(());
        };
        let resume = shard
            .state
            .resume(self.checkpoints.shards.get(&shard.id).map(String::as_str));
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&shard.id);
        let request = match resume {
            Resume::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            Resume::StartingPosition => {
                request.shard_iterator_type(self.settings.starting_position.iterator_type())
            }
        };
        let output = request
            .send()
            .await
            .map_err(|e| aws("GetShardIterator", e))?;
        if let Some(shard) = self.shards.get_mut(index) {
            shard.opened = true;
            shard.iterator = output.shard_iterator;
            shard.closed = shard.iterator.is_none();
        }
        Ok(())
    }

    /// Reads records until the buffer holds a batch; returns how many were read.
    async fn fetch(&mut self, index: usize) -> Result<u64, RunnerError> {
        let batch_size = self.settings.batch_size;
        let needs_open = self
            .shards
            .get(index)
            .is_some_and(|s| !s.opened && !s.closed);
        if needs_open {
            self.open_iterator(index).await?;
        }
        let Some(shard) = self.shards.get(index) else {
            return Ok(0);
        };
        let room = shard.state.room(batch_size);
        let (Some(iterator), true) = (shard.iterator.clone(), room > 0) else {
            return Ok(0);
        };
        let limit = i32::try_from(room).unwrap_or(1000);
        let output = match self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetRecordsError::ExpiredIteratorException(_))
                ) =>
            {
                // Iterators expire after 15 minutes; the next round reopens one.
                if let Some(shard) = self.shards.get_mut(index) {
                    shard.opened = false;
                    shard.iterator = None;
                }
                return Ok(0);
            }
            Err(e) => return Err(aws("GetRecords", e)),
        };
        let records = output.records.unwrap_or_default();
        let fetched = records.len() as u64;
        let (arn, region) = (self.stream_arn.clone(), self.region.clone());
        if let Some(shard) = self.shards.get_mut(index) {
            shard.state.fetched(
                records
                    .into_iter()
                    .map(|record| lambda_record(record, &arn, &region)),
            );
            shard.iterator = output.next_shard_iterator;
            shard.closed = shard.iterator.is_none();
        }
        Ok(fetched)
    }

    /// Invokes the handler with up to a batch of buffered records and acknowledges what it
    /// accepted: everything before the first reported failure (all of them when none).
    async fn deliver<H, Fut, E>(&mut self, index: usize, handler: &H) -> PollReport
    where
        H: Fn(Event) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, E>>,
        E: Display,
    {
        let mut report = PollReport::default();
        let batch_size = self.settings.batch_size;
        let Some(shard) = self.shards.get(index) else {
            return report;
        };
        let Some(event) = shard.state.next_batch(batch_size) else {
            return report;
        };
        report.batches = 1;
        let delivered = event.records.len();
        let response = match handler(event).await {
            Ok(response) => Some(response),
            Err(e) => {
                warn!(shard_id = %shard.id, error = %e, "handler failed; the whole batch will be redelivered");
                None
            }
        };
        let decision = shard
            .state
            .decide(delivered, response.as_ref(), self.settings.max_attempts);

        let Some(shard) = self.shards.get_mut(index) else {
            return report;
        };
        let applied = shard.state.apply(&decision);
        report.acknowledged = decision.acknowledged as u64;
        if decision.failed {
            report.failed_batches = 1;
            debug!(shard_id = %shard.id, retry_from = shard.state.head().unwrap_or_default(), attempts = shard.state.attempts(), "partial batch failure; redelivering from the reported record");
        }
        if let Some(dropped) = applied.discarded {
            error!(
                shard_id = %shard.id,
                stream_sequence = dropped.change.sequence_number.as_deref().unwrap_or_default(),
                event_id = %dropped.event_id,
                attempts = self.settings.max_attempts.unwrap_or_default(),
                "record discarded after its last attempt (Lambda would send it to the on-failure destination)"
            );
            report.discarded = 1;
        }
        if let Some(sequence) = decision.checkpoint {
            let shard_id = shard.id.clone();
            self.checkpoints.shards.insert(shard_id, sequence);
            if let Some(path) = &self.settings.checkpoint_file {
                if let Err(e) = self.checkpoints.save(path) {
                    warn!(error = %e, "checkpoint not saved");
                }
            }
        }
        report
    }
}
