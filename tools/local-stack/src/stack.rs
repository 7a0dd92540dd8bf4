//! Starts and stops the stack's tasks; see the crate documentation.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use pruner::PrunerSettings;
use snapshot_core::pruning::{prune, Deadline, PruneRequest};
use snapshot_core::{AggregateRepository, Registry};
use snapshot_dynamo::{schema, DynamoEventStore, DynamoSnapshotStore};
use snapshot_s3::{with_state_objects, SnapshotStoreWithObjects};

/// The snapshot store of every local component: the table plus the state bucket.
type Snapshots = SnapshotStoreWithObjects<DynamoSnapshotStore>;
use snapshotter::{Action, Snapshotter};
use stream_runner::StreamRunner;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::warn;

use crate::admin::{self, EnvFile};
use crate::demo::DemoTraffic;
use crate::progress::{Progress, Reporter, Totals, TotalsView};
use crate::{until_stopped, StackError, StackSettings};

/// Audit actor of the scheduled pruning runs.
pub const PRUNE_ACTOR: &str = "local-pruner";
/// Id of the snapshot MAC key the local stack creates.
pub const MAC_KEY_ID: &str = "local-1";
/// How long shutdown waits for each task before aborting it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The started stack; [`LocalStack::run_until`] runs it.
pub struct LocalStack {
    /// Base URL of the admin API, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    /// Bearer token of the admin API.
    pub token: String,
    pub events_table: String,
    pub snapshots_table: String,
    /// Ids of the demo aggregates (empty with the demo off).
    pub demo_aggregates: Vec<String>,
    env_file: EnvFile,
    runner: StreamRunner,
    snapshotter: Snapshotter<DynamoEventStore, Snapshots>,
    totals: Arc<Totals>,
    reporter: Reporter,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl LocalStack {
    /// Creates the tables, connects to the event table's stream, then starts the admin API,
    /// the pruning timer, the totals and (unless off) the demo traffic as tasks.
    pub async fn start(
        sdk: &aws_config::SdkConfig,
        mut settings: StackSettings,
        reporter: Reporter,
    ) -> Result<Self, StackError> {
        // As at set-up in AWS: a KMS key and a data key under it (in the emulator's KMS); the
        // ring every component signs and verifies snapshots with is decrypted from it.
        let kms = aws_sdk_kms::Client::new(sdk);
        let (mac_kms_key, mac_key, mac_keys) = snapshot_kms::set_up_keys(&kms, MAC_KEY_ID).await?;
        let codec = &mut settings.snapshotter.config.codec;
        *codec = codec.clone().with_keys(mac_keys);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
        let region = sdk
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        let config = settings.snapshotter.config.clone();
        let (events_table, snapshots_table) =
            (config.events_table.clone(), config.snapshots_table.clone());
        schema::create_events_table(&dynamodb, &events_table)
            .await
            .map_err(|source| StackError::Table {
                table: events_table.clone(),
                source,
            })?;
        schema::create_snapshots_table(&dynamodb, &snapshots_table)
            .await
            .map_err(|source| StackError::Table {
                table: snapshots_table.clone(),
                source,
            })?;
        if let Some(bucket) = &config.state_bucket {
            snapshot_s3::create_bucket(&snapshot_s3::client(sdk), bucket)
                .await
                .map_err(|source| StackError::Table {
                    table: format!("bucket {bucket}"),
                    source,
                })?;
        }
        let runner = StreamRunner::connect(
            &dynamodb,
            streams,
            &events_table,
            &region,
            settings.runner.clone(),
        )
        .await?;

        let totals = Arc::new(Totals::default());
        let token = settings
            .dev_token
            .clone()
            .unwrap_or_else(admin::generate_token);
        // The dev token stands in for API Gateway + token verification (never in Lambda).
        let authenticator = admin_api::Authenticator::local(settings.access.clone());
        let app = admin::app(
            sdk,
            config.clone(),
            authenticator,
            &token,
            reporter.clone(),
            totals.clone(),
        )?;
        let listener = admin::listen(settings.port, settings.port_required).await?;
        let address = listener.local_addr().map_err(|source| StackError::Bind {
            port: settings.port,
            source,
        })?;
        let url = format!("http://{address}");
        let demo_aggregates = settings
            .demo
            .as_ref()
            .map(DemoTraffic::<DynamoEventStore, Snapshots>::aggregate_ids)
            .unwrap_or_default();
        let mut entries = vec![
            ("ADMIN_API_URL", url.clone()),
            ("ADMIN_DEV_TOKEN", token.clone()),
            ("EVENTS_TABLE", events_table.clone()),
            ("SNAPSHOTS_TABLE", snapshots_table.clone()),
            // What a function gets from the template: the encrypted data key and its KMS key.
            (snapshot_kms::KEYS_VARIABLE, mac_key.to_entry()),
            (snapshot_kms::KMS_KEY_VARIABLE, mac_kms_key),
        ];
        if let Some(item) = demo_aggregates.first() {
            entries.push(("DEMO_ITEM", item.clone()));
        }
        if let Some(warehouse) = demo_aggregates.iter().find(|id| id.contains("warehouse")) {
            entries.push(("DEMO_WAREHOUSE", warehouse.clone()));
        }
        let env_file = EnvFile::write(&settings.env_file, &entries)?;

        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();

        let shutdown = until_stopped(stopped.clone());
        tasks.push((
            "admin API",
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    warn!(error = %e, "admin API server failed");
                }
            }),
        ));

        let snapshotter = Snapshotter::new(
            DynamoEventStore::new(dynamodb.clone(), &events_table),
            with_state_objects(
                DynamoSnapshotStore::new(dynamodb.clone(), &snapshots_table),
                sdk,
                &config,
            ),
            settings.snapshotter.clone(),
        );

        let store = with_state_objects(
            DynamoSnapshotStore::new(dynamodb.clone(), &snapshots_table),
            sdk,
            &config,
        );
        tasks.push((
            "pruner",
            tokio::spawn(prune_on_timer(
                store,
                settings.pruner.clone(),
                settings.prune_interval,
                totals.clone(),
                reporter.clone(),
                stopped.clone(),
            )),
        ));

        tasks.push((
            "totals",
            tokio::spawn(totals_on_timer(
                settings.totals_interval,
                totals.clone(),
                reporter.clone(),
                stopped.clone(),
            )),
        ));

        if let Some(demo) = settings.demo {
            let repository = AggregateRepository::new(
                DynamoEventStore::new(dynamodb.clone(), &events_table),
                with_state_objects(
                    DynamoSnapshotStore::new(dynamodb, &snapshots_table),
                    sdk,
                    &config,
                ),
                config.codec.clone(),
            )
            .with_policies(config.policies.clone());
            let traffic = DemoTraffic::new(repository, demo, totals.clone(), reporter.clone());
            tasks.push(("demo traffic", tokio::spawn(traffic.run(stopped))));
        }

        Ok(Self {
            url,
            token,
            events_table,
            snapshots_table,
            demo_aggregates,
            env_file,
            runner,
            snapshotter,
            totals,
            reporter,
            stop,
            tasks,
        })
    }

    /// The env file holding the URL and token.
    pub fn env_file(&self) -> &std::path::Path {
        self.env_file.path()
    }

    /// The counters so far.
    pub fn totals(&self) -> TotalsView {
        self.totals.view()
    }

    /// Feeds the stream to the snapshotter until `signal` completes, then stops every task
    /// (each finishes what it is doing: the runner its batch, the demo its command, the server
    /// its requests, the pruner its current page), removes the env file and reports the final
    /// totals.
    ///
    /// The stream runner runs in the caller's task rather than a spawned one: the
    /// snapshotter's batch future borrows across its concurrent per-aggregate work, which the
    /// compiler cannot prove `Send`.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> TotalsView {
        let Self {
            mut runner,
            snapshotter,
            env_file,
            totals,
            reporter,
            stop,
            tasks,
            ..
        } = self;
        let (snapshotter, batch_totals, batch_reporter) = (&snapshotter, &*totals, &reporter);
        let handler = move |event: Event| async move {
            let request_id = format!("local-{}", uuid::Uuid::new_v4());
            Ok::<_, Infallible>(
                process_batch(
                    snapshotter,
                    batch_totals,
                    batch_reporter,
                    event,
                    &request_id,
                )
                .await,
            )
        };
        // Everything stops at once: the runner after its batch, the tasks after their step.
        let signal = async {
            signal.await;
            let _ = stop.send(true);
        };
        runner.run(handler, signal).await;
        let _ = stop.send(true);
        for (name, task) in tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout(STOP_TIMEOUT, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(task = name, error = %e, "task ended abnormally"),
                Err(_) => {
                    warn!(task = name, "task did not stop in time; aborted");
                    abort.abort();
                }
            }
        }
        env_file.remove();
        let view = totals.view();
        reporter(&Progress::Totals(view));
        view
    }
}

/// The Lambda handler's processing of one batch (without the EMF line on stdout, which would
/// drown the console), with a line per snapshot created or failed.
async fn process_batch(
    snapshotter: &Snapshotter<DynamoEventStore, Snapshots>,
    totals: &Totals,
    reporter: &Reporter,
    event: Event,
    request_id: &str,
) -> DynamoDbEventResponse {
    let report = snapshotter.process(event, Some(request_id)).await;
    Totals::add(&totals.stream_batches, 1);
    for outcome in &report.outcomes {
        match outcome.result() {
            Ok(Action::Created {
                version,
                stored_bytes,
                reason,
            }) => {
                Totals::add(&totals.snapshots_created, 1);
                reporter(&Progress::SnapshotCreated {
                    aggregate_id: outcome.aggregate_id().to_owned(),
                    version: *version,
                    stored_bytes: *stored_bytes,
                    reason: reason.to_string(),
                });
            }
            Err(e) => {
                Totals::add(&totals.snapshot_failures, 1);
                reporter(&Progress::SnapshotFailed {
                    aggregate_id: outcome.aggregate_id().to_owned(),
                    error: e.to_string(),
                });
            }
            Ok(_) => {}
        }
    }
    report.response
}

/// Runs the shared pruning (as the pruner Lambda and the cleanup route do) every `interval`.
async fn prune_on_timer(
    store: Snapshots,
    settings: PrunerSettings,
    interval: Duration,
    totals: Arc<Totals>,
    reporter: Reporter,
    stopped: watch::Receiver<bool>,
) {
    let registry = Registry::builtin();
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stop = until_stopped(stopped.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => {}
        }
        let mut request = PruneRequest::new(settings.max_snapshots);
        request.segments = settings.segments;
        request.actor = PRUNE_ACTOR.to_owned();
        request.request_id = Some(format!("local-{}", uuid::Uuid::new_v4()));
        // Ctrl-C ends a run at its next page or batch; the next run continues.
        let watching = stopped.clone();
        request.deadline = Deadline::when(move || *watching.borrow());
        let result = prune(&store, &registry, &request).await;
        Totals::add(&totals.prune_runs, 1);
        match result {
            Ok(summary) => {
                Totals::add(&totals.snapshots_pruned, summary.deleted);
                reporter(&Progress::Pruned {
                    deleted: summary.deleted,
                    kept: summary.kept,
                    scanned: summary.scanned,
                    aggregates: summary.aggregates,
                    complete: summary.complete,
                    duration_ms: summary.duration_ms,
                });
            }
            Err(e) => reporter(&Progress::PruneFailed {
                error: e.to_string(),
            }),
        }
    }
}

/// A totals line every `interval`.
async fn totals_on_timer(
    interval: Duration,
    totals: Arc<Totals>,
    reporter: Reporter,
    stopped: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stop = until_stopped(stopped);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => reporter(&Progress::Totals(totals.view())),
        }
    }
}
