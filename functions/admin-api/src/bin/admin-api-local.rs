//! Local dev server: `admin-api-local [PORT]` serves the admin router on 127.0.0.1 against the
//! tables at `AWS_ENDPOINT_URL`; `ADMIN_DEV_TOKEN` is the bearer token that makes an admin.

use admin_api::local::{bind, port_from, serve};
use admin_api::{dynamo_state, router, AccessPolicy, Authenticator, DevToken};
use anyhow::Context;
use snapshot_core::config::Config;
use snapshot_dynamo::SdkSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    snapshot_core::telemetry::init();
    let mut config = Config::from_env()?;
    // No token verifier locally: JWT contexts are refused and the dev token stands in.
    let mut authenticator = Authenticator::local(AccessPolicy::from_env()?);
    match std::env::var("ADMIN_DEV_TOKEN")
        .ok()
        .as_deref()
        .and_then(DevToken::new)
    {
        Some(token) => authenticator = authenticator.with_dev_token(token),
        None => tracing::warn!("ADMIN_DEV_TOKEN is not set: every admin request will be refused"),
    }
    let port = port_from(
        std::env::args().nth(1),
        std::env::var("ADMIN_API_PORT").ok(),
    )?;
    let sdk = SdkSettings::from_env()?.load().await?;
    // The snapshot MAC key from the emulator's KMS (local-stack writes SNAPSHOT_MAC_KEYS).
    let keys = snapshot_kms::keys_from_env(&aws_sdk_kms::Client::new(&sdk))
        .await
        .context("loading the snapshot MAC keys")?;
    config.codec = config.codec.with_keys(keys);
    let state = dynamo_state(&sdk, config);
    let listener = bind(port)
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    println!("admin API listening on http://{}", listener.local_addr()?);
    serve(listener, router(state, authenticator)).await?;
    Ok(())
}
