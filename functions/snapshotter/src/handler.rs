//! The Lambda handler: a DynamoDB Stream batch in, partial batch failures out.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};
use snapshot_core::clock::now_millis;
use snapshot_core::config::Config;
use snapshot_core::head::HeadCache;
use snapshot_core::metrics::MetricSet;
use snapshot_core::ports::{EventStore, SnapshotStore};
use snapshot_core::Registry;
use tracing::{info, warn};

use crate::batch::coalesce;
use crate::evaluate::Evaluator;
use crate::metrics::Tally;
use crate::outcome::{Action, AggregateOutcome};
use crate::records::compare_sequence_numbers;
use crate::settings::Settings;

/// Source of "now" in epoch milliseconds (replaceable for tests of the time policy).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The snapshotter, generic over its stores so tests run it on in-memory ones.
pub struct Snapshotter<E, S> {
    events: E,
    snapshots: S,
    /// Heads of the aggregates this container has seen: a record that trips no policy on an
    /// aggregate met before costs no request (snapshot_core::head).
    heads: HeadCache,
    registry: Registry,
    config: Config,
    clock: Clock,
    max_concurrency: usize,
}

/// What one batch did: the response for Lambda, its metrics and each aggregate's outcome.
#[derive(Debug)]
pub struct BatchReport {
    pub response: DynamoDbEventResponse,
    pub metrics: MetricSet,
    pub tally: Tally,
    pub outcomes: Vec<AggregateOutcome>,
}

impl<E: EventStore, S: SnapshotStore> Snapshotter<E, S> {
    /// A snapshotter of the built-in aggregate types.
    pub fn new(events: E, snapshots: S, settings: Settings) -> Self {
        Self {
            events,
            snapshots,
            heads: HeadCache::default(),
            registry: Registry::builtin(),
            config: settings.config,
            clock: Arc::new(now_millis),
            max_concurrency: settings.max_concurrency.max(1),
        }
    }

    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The heads this container remembers (for tests of the warm path).
    pub fn heads(&self) -> &HeadCache {
        &self.heads
    }

    pub fn events(&self) -> &E {
        &self.events
    }

    pub fn snapshots(&self) -> &S {
        &self.snapshots
    }

    /// Handles one batch as the Lambda function does: EMF metrics on stdout, a summary log
    /// line, and the partial batch failures for the event source mapping.
    pub async fn handle(&self, event: Event, request_id: Option<&str>) -> DynamoDbEventResponse {
        let report = self.process(event, request_id).await;
        report.metrics.flush();
        let t = &report.tally;
        info!(
            aggregates = t.aggregates_evaluated,
            created = t.snapshots_created,
            already_present = t.snapshots_already_present,
            failures = t.failures,
            ignored = t.records_ignored,
            poison = t.poison_records,
            unknown_event_types = t.unknown_event_types,
            "batch processed"
        );
        report.response
    }

    /// Processes one batch: every aggregate independently, at most `max_concurrency` at a time.
    pub async fn process(&self, event: Event, request_id: Option<&str>) -> BatchReport {
        let started = Instant::now();
        let batch = coalesce(event, &self.registry);
        let mut tally = Tally {
            records_ignored: batch.ignored,
            poison_records: batch.poison_records(),
            ..Tally::default()
        };
        let evaluator = Evaluator::new(
            &self.events,
            &self.snapshots,
            &self.heads,
            &self.registry,
            &self.config,
            self.clock.as_ref(),
        );
        let outcomes: Vec<AggregateOutcome> = stream::iter(&batch.aggregates)
            .map(|aggregate| evaluator.evaluate(aggregate, request_id))
            .buffer_unordered(self.max_concurrency)
            .collect()
            .await;

        let mut failures: Vec<String> = Vec::new();
        for orphan in &batch.orphans {
            tally.failures += 1;
            failures.push(orphan.stream_sequence.clone().unwrap_or_default());
        }
        for outcome in &outcomes {
            let counts = outcome.counts();
            tally.events_folded += counts.events_folded();
            tally.events_fetched += counts.events_fetched();
            tally.snapshots_invalid += counts.snapshots_invalid();
            tally.snapshots_marked += counts.snapshots_marked();
            tally.drift_checks += counts.drift_checks();
            tally.snapshot_drift += counts.drift();
            if counts.evaluated() {
                tally.aggregates_evaluated += 1;
            }
            match outcome.result() {
                Ok(Action::Created { stored_bytes, .. }) => {
                    tally.snapshots_created += 1;
                    tally.snapshot_bytes += stored_bytes;
                }
                Ok(Action::AlreadyPresent { .. }) => tally.snapshots_already_present += 1,
                Ok(Action::TooLarge { .. }) => tally.snapshots_too_large += 1,
                Ok(Action::UnknownEventType { .. }) => tally.unknown_event_types += 1,
                Ok(Action::NotDue | Action::UpToDate { .. }) => {}
                Err(e) => {
                    tally.failures += 1;
                    warn!(aggregate_id = %outcome.aggregate_id(), error = %e, "aggregate failed; reported for redelivery");
                    failures.push(outcome.failure_identifier().to_owned());
                }
            }
        }
        failures.sort_by(|a, b| compare_sequence_numbers(a, b));
        failures.dedup_by(|a, b| compare_sequence_numbers(a, b) == Ordering::Equal);

        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failures
            .into_iter()
            .map(|id| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(id);
                failure
            })
            .collect();
        BatchReport {
            response,
            metrics: tally.metric_set(started.elapsed()),
            tally,
            outcomes,
        }
    }
}
