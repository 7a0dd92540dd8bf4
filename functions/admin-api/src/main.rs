//! Lambda entry point: API Gateway HTTP API → lambda_http → the admin router.

use admin_api::auth::{IssuerSettings, TokenVerifier};
use admin_api::{dynamo_state, router, AccessPolicy, Authenticator};
use snapshot_core::config::Config;
use snapshot_dynamo::SdkSettings;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    snapshot_core::telemetry::init();
    let mut config = Config::from_env()?;
    let policy = AccessPolicy::from_env()?;
    // Bearer tokens are verified here too (the issuer's keys are fetched on first use).
    let verifier = TokenVerifier::new(IssuerSettings::from_env()?)?;
    let sdk = SdkSettings::from_env()?.function_config()?;
    // The snapshot MAC key: one KMS Decrypt per container, here, never per request.
    let keys = snapshot_kms::keys_from_env(&aws_sdk_kms::Client::new(&sdk)).await?;
    config.codec = config.codec.with_keys(keys);
    let state = dynamo_state(&sdk, config);
    lambda_http::run(router(state, Authenticator::gateway(policy, verifier))).await
}
