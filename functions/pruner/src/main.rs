use lambda_runtime::{run, service_fn, LambdaEvent};
use pruner::backfill::resume_backfill;
use pruner::{handler, Invocation, PrunerSettings};
use serde_json::Value;
use snapshot_core::AggregateRepository;
use snapshot_core::{telemetry, Registry};
use snapshot_dynamo::{
    DynamoEventStore, DynamoJobStore, DynamoScanPositions, DynamoSnapshotStore, SdkSettings,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let settings = PrunerSettings::from_env()?;
    let sdk = SdkSettings::from_env()?.function_config()?;
    // Offloaded states are deleted with their items (SNAPSHOT_BUCKET).
    let config = snapshot_core::config::Config::from_env()?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let store = snapshot_s3::with_state_objects(
        DynamoSnapshotStore::new(client.clone(), &settings.snapshots_table),
        &sdk,
        &config,
    );
    // A running backfill is resumed after each pruning run.
    let repository = AggregateRepository::new(
        DynamoEventStore::new(client.clone(), &config.events_table),
        snapshot_s3::with_state_objects(
            DynamoSnapshotStore::new(client.clone(), &settings.snapshots_table),
            &sdk,
            &config,
        ),
        config.codec,
    );
    let positions = DynamoScanPositions::new(client.clone(), &settings.snapshots_table);
    let jobs = DynamoJobStore::new(client, &settings.snapshots_table);
    let budget = config.backfill_read_budget;
    let (registry, settings, store) = (&Registry::builtin(), &settings, &store);
    let (repository, jobs, positions) = (&repository, &jobs, &positions);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_context(&event.context, settings);
        let request_id = invocation.request_id.clone();
        let summary = handler(
            store,
            positions,
            registry,
            settings,
            event.payload,
            invocation,
        )
        .await?;
        let deadline = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .ok()
            .and_then(|left| left.checked_sub(settings.deadline_margin))
            .map(|left| std::time::Instant::now() + left);
        if let Err(e) =
            resume_backfill(repository, jobs, registry, budget, deadline, request_id).await
        {
            // The pruning is done; the job resumes on the next run.
            tracing::error!(error = %e, "backfill run failed");
        }
        Ok::<_, pruner::PrunerError>(summary)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
