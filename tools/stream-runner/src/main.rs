//! Feeds the local event table's stream to the snapshotter until Ctrl-C, as Lambda's event
//! source mapping does in AWS. Settings: the snapshotter's (EVENTS_TABLE, SNAPSHOTS_TABLE,
//! SNAPSHOT_*) and the runner's (STREAM_*, or the flags of `stream-runner --help`), endpoint
//! from AWS_ENDPOINT_URL.

use std::convert::Infallible;

use anyhow::Context;
use clap::Parser;
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore, SdkSettings};
use snapshotter::{Settings, Snapshotter};
use stream_runner::args::Args;
use stream_runner::{RunnerSettings, StreamRunner};
use tracing::{info, warn};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let overrides = Args::parse().overrides();
    snapshot_core::telemetry::init();
    let settings = Settings::from_env()?;
    let runner_settings = RunnerSettings::from_lookup(|name| {
        overrides
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })?;
    let sdk = SdkSettings::from_env()?.load().await?;
    let region = sdk
        .region()
        .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let table = settings.config.events_table.clone();
    let poll_interval = runner_settings.poll_interval;
    let events = DynamoEventStore::new(dynamodb.clone(), &settings.config.events_table);
    let snapshots = snapshot_s3::with_state_objects(
        DynamoSnapshotStore::new(dynamodb.clone(), &settings.config.snapshots_table),
        &sdk,
        &settings.config,
    );
    let snapshotter = &Snapshotter::new(events, snapshots, settings);

    // The tables may still be being created by the local set-up: wait for the stream.
    let mut runner = loop {
        match StreamRunner::connect(
            &dynamodb,
            streams.clone(),
            &table,
            &region,
            runner_settings.clone(),
        )
        .await
        {
            Ok(runner) => break runner,
            Err(e) => {
                warn!(table = %table, error = %e, "event table stream not available yet; retrying");
                tokio::select! {
                    signal = tokio::signal::ctrl_c() => return signal.context("waiting for Ctrl-C"),
                    () = tokio::time::sleep(poll_interval.max(std::time::Duration::from_secs(1))) => {}
                }
            }
        }
    };
    info!(table = %table, stream_arn = runner.stream_arn(), "stream runner started; Ctrl-C stops it");
    // Each invocation gets a request id, as Lambda's do (it lands in the audit records).
    let handler = move |event| async move {
        let request_id = format!("local-{}", uuid::Uuid::new_v4());
        Ok::<_, Infallible>(snapshotter.handle(event, Some(&request_id)).await)
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    runner.run(handler, shutdown).await;
    Ok(())
}
