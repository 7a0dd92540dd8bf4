use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore, SdkSettings};
use snapshotter::{Settings, Snapshotter};

#[tokio::main]
async fn main() -> Result<(), Error> {
    snapshot_core::telemetry::init();
    let mut settings = Settings::from_env()?;
    let sdk = SdkSettings::from_env()?.function_config()?;
    // The snapshot MAC key: one KMS Decrypt per container, here, never per snapshot.
    let keys = snapshot_kms::keys_from_env(&aws_sdk_kms::Client::new(&sdk)).await?;
    settings.config.codec = settings.config.codec.with_keys(keys);
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let events = DynamoEventStore::new(client.clone(), &settings.config.events_table);
    let snapshots = snapshot_s3::with_state_objects(
        DynamoSnapshotStore::new(client, &settings.config.snapshots_table),
        &sdk,
        &settings.config,
    );
    let snapshotter = &Snapshotter::new(events, snapshots, settings);
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        let response = snapshotter.handle(event.payload, Some(&event.context.request_id));
        Ok::<_, Error>(response.await)
    }))
    .await
}
