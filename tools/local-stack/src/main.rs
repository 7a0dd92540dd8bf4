//! `local-stack` (what `make run` starts): the whole service in one process against the local
//! emulator at AWS_ENDPOINT_URL. See `local-stack --help`.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use clap::Parser;
use local_stack::args::Args;
use local_stack::{LocalStack, Reporter, StackSettings};
use snapshot_core::telemetry::env_log_filter;
use snapshot_dynamo::{Endpoints, SdkSettings};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{fmt, Layer as _};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let overrides = Args::parse().overrides();
    // The functions log every batch and request at info, and every refused call as a warning;
    // the console shows one line per event instead. RUST_LOG=info brings the logs back (stderr).
    // RUST_LOG is read as the functions read it (snapshot_core::telemetry).
    let filter = env_log_filter(
        Targets::new()
            .with_default(Level::WARN)
            .with_target("admin_api::auth", Level::ERROR),
    );
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .compact()
                .with_filter(filter),
        )
        .init();

    let settings = StackSettings::from_lookup(|name| {
        overrides
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })?;
    // Never AWS's own endpoint: the stack creates tables and writes demo traffic.
    let Some(endpoint) = Endpoints::from_env()?
        .for_service("DynamoDB")
        .map(str::to_owned)
    else {
        bail!("neither AWS_ENDPOINT_URL_DYNAMODB nor AWS_ENDPOINT_URL is set: local-stack runs against a local DynamoDB (DynamoDB Local); use `make run`, or `eval \"$(scripts/dynamodb-local.sh start)\"` first");
    };
    let mut loader =
        SdkSettings::from_env()?.apply(aws_config::defaults(BehaviorVersion::latest()));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(Credentials::new("test", "test", None, None, "local"));
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new("us-east-1"));
    }
    let sdk = loader.load().await;

    let started = Instant::now();
    // A closed stdout (e.g. a pager quit) must not stop the stack: write errors are ignored.
    let reporter: Reporter = Arc::new(move |progress| {
        let _ = writeln!(
            std::io::stdout().lock(),
            "[{:>7.1}s] {progress}",
            started.elapsed().as_secs_f64()
        );
    });
    let stack = LocalStack::start(&sdk, settings.clone(), reporter)
        .await
        .with_context(|| format!("starting the local stack against {endpoint}"))?;
    say(&local_stack::banner::banner(&stack, &settings, &endpoint));

    stack
        .run_until(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("cannot wait for Ctrl-C ({e}); stopping");
            }
            say("stopping (Ctrl-C again quits at once) ...");
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            });
        })
        .await;
    say("stopped");
    Ok(())
}

/// Prints a line; a closed stdout is ignored.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
