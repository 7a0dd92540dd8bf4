use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, LambdaEvent};
use pruner::{handler, Invocation, PrunerSettings};
use serde_json::Value;
use snapshot_core::{telemetry, Registry};
use snapshot_dynamo::DynamoSnapshotStore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let settings = PrunerSettings::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // Offloaded states are deleted with their items (SNAPSHOT_BUCKET).
    let config = snapshot_core::config::Config::from_env()?;
    let store = snapshot_s3::with_state_objects(
        DynamoSnapshotStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &settings.snapshots_table,
        ),
        &sdk,
        &config,
    );
    let (registry, settings, store) = (&Registry::builtin(), &settings, &store);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_context(&event.context, settings);
        handler(store, registry, settings, event.payload, invocation).await
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
