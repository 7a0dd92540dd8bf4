//! Helpers of the integration tests: clients for the local engines (DynamoDB and its Streams on
//! AWS's DynamoDB Local, KMS and S3 on moto; each found through the SDK's own variables,
//! `AWS_ENDPOINT_URL_<SERVICE>` then `AWS_ENDPOINT_URL`, as in production code) and per-test
//! tables, so tests run in parallel against one engine without seeing each other's data. Plus what
//! `tests/template.rs` reads: the SAM template ([`template`]), the workspace's crates
//! ([`workspace`]) and the environment variables their code reads ([`env_reads`]).

pub mod capacity;
pub mod contract;
pub mod env_reads;
pub mod faults;
pub mod mock_dynamo;
pub mod template;
pub mod workspace;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;
use snapshot_dynamo::{schema, DynamoEventStore, DynamoSnapshotStore, Endpoints};

/// The DynamoDB endpoint the tests run against (DynamoDB Local); `make test` starts it and sets
/// `AWS_ENDPOINT_URL_DYNAMODB`. Panics without one: a test must never reach AWS's own endpoint.
pub fn endpoint() -> String {
    let endpoints = Endpoints::from_env().unwrap_or_else(|e| panic!("{e}"));
    match endpoints.for_service("DynamoDB") {
        Some(url) => url.to_owned(),
        None => panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: integration tests need DynamoDB Local; run them with `make test`"
        ),
    }
}

/// An SDK config for the local engines, with dummy credentials unless some are set. Every
/// client built from it resolves its own service's endpoint from the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    endpoint();
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(Credentials::new("test", "test", None, None, "local"));
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new("us-east-1"));
    }
    loader.load().await
}

pub async fn dynamodb() -> Client {
    Client::new(&sdk_config().await)
}

/// A fresh pair of tables named after the test, created from the shared definitions.
pub struct TestTables {
    pub client: Client,
    pub events_table: String,
    pub snapshots_table: String,
}

impl TestTables {
    pub async fn create(test_name: &str) -> Self {
        let client = dynamodb().await;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let events_table = format!("events_{test_name}_{}", &suffix[..8]);
        let snapshots_table = format!("snapshots_{test_name}_{}", &suffix[..8]);
        schema::create_events_table(&client, &events_table)
            .await
            .unwrap_or_else(|e| panic!("creating {events_table}: {e}"));
        schema::create_snapshots_table(&client, &snapshots_table)
            .await
            .unwrap_or_else(|e| panic!("creating {snapshots_table}: {e}"));
        Self {
            client,
            events_table,
            snapshots_table,
        }
    }

    pub fn event_store(&self) -> DynamoEventStore {
        DynamoEventStore::new(self.client.clone(), &self.events_table)
    }

    pub fn snapshot_store(&self) -> DynamoSnapshotStore {
        DynamoSnapshotStore::new(self.client.clone(), &self.snapshots_table)
    }
}
