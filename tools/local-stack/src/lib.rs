//! `make run`: the whole snapshot service in one local process, against the local DynamoDB
//! emulator at `AWS_ENDPOINT_URL`, with the code that runs in Lambda:
//!
//! - creates the event and snapshot tables from `snapshot_dynamo::schema`;
//! - serves the admin API's router on 127.0.0.1 with a freshly generated dev token, and writes
//!   the URL and token to an env file (`.local/admin-api.env`) for scripts;
//! - runs the stream runner (the local event source mapping) feeding the snapshotter;
//! - prunes on a timer with the shared pruning implementation;
//! - generates demo inventory traffic through `AggregateRepository` (optional).
//!
//! Progress goes to a [`Reporter`]: a line per snapshot created, pruning run and admin request,
//! and periodic totals. [`LocalStack::run_until`] stops everything gracefully on its signal.

pub mod admin;
pub mod args;
pub mod banner;
pub mod demo;
pub mod progress;
pub mod settings;
pub mod stack;

use std::path::PathBuf;

pub use demo::DemoSettings;
pub use progress::{Progress, Reporter, Totals, TotalsView};
pub use settings::StackSettings;
pub use stack::LocalStack;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("creating table {table}: {source}")]
    Table {
        table: String,
        source: snapshot_core::StoreError,
    },
    #[error("connecting to the event table's stream: {0}")]
    Stream(#[from] stream_runner::RunnerError),
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("writing {}: {source}", .path.display())]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ADMIN_DEV_TOKEN must not be blank")]
    BlankToken,
    #[error("setting up the snapshot MAC key in the emulator's KMS: {0}")]
    MacKey(#[from] snapshot_kms::KeyLoadError),
}

/// Seed of the demo's dice: varies between runs.
pub(crate) fn seed() -> u64 {
    u64::try_from(snapshot_core::clock::now_millis()).unwrap_or(1)
}

/// Completes once the stack's stop signal is sent (or its sender is gone).
pub(crate) async fn until_stopped(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
