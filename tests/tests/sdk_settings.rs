//! Every SDK client takes its timeouts and retries from `SdkSettings`
//! (shared/dynamo/src/sdk.rs): a stalled endpoint costs a bounded time, throttling is retried
//! as configured and then reported as throttled, and a refused request is reported as such.

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;
use integration_tests::faults::{with_faults, Fault, FaultPlan};
use snapshot_core::ports::EventStore;
use snapshot_core::{BackendFailure, StoreError};
use snapshot_dynamo::{DynamoEventStore, SdkSettings};
use tokio::net::TcpListener;

fn tight() -> SdkSettings {
    SdkSettings {
        connect_timeout: Duration::from_millis(300),
        attempt_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_millis(1_000),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

async fn client(settings: &SdkSettings, endpoint: &str, plan: Option<&FaultPlan>) -> Client {
    let loader = settings
        .apply(aws_config::defaults(BehaviorVersion::latest()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .region(Region::new("us-east-1"));
    let sdk = loader.load().await;
    match plan {
        Some(plan) => Client::new(&with_faults(&sdk, plan)),
        None => Client::new(&sdk),
    }
}

fn failure(err: &StoreError) -> BackendFailure {
    err.backend_failure()
        .unwrap_or_else(|| panic!("expected a backend failure, got {err:?}"))
}

#[tokio::test]
async fn a_stalled_endpoint_costs_the_operation_timeout_not_the_functions_deadline() {
    // Accepts connections and never answers: what a black-holed network looks like.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let store = DynamoEventStore::new(client(&tight(), &endpoint, None).await, "events");
    let started = Instant::now();
    let err = store.read("item-1", 1, None).await.unwrap_err();
    let elapsed = started.elapsed();
    held.abort();
    assert_eq!(failure(&err), BackendFailure::Timeout, "{err}");
    assert!(err.is_retryable());
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(2_500),
        "bounded by the 1 s operation timeout, took {elapsed:?}"
    );
    // The SDK's error stays reachable as the source.
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn throttling_is_retried_max_attempts_times_then_reported_as_throttled() {
    let plan = FaultPlan::new(11, 1000).kinds(&[Fault::Throttle]);
    let endpoint = integration_tests::endpoint();
    let store = DynamoEventStore::new(client(&tight(), &endpoint, Some(&plan)).await, "events");
    let err = store.read("item-1", 1, None).await.unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Throttled, "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        plan.injected(),
        3,
        "SDK_MAX_ATTEMPTS=3: three attempts, all throttled"
    );
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
}

#[tokio::test]
async fn a_request_the_service_refuses_is_not_retryable() {
    let endpoint = integration_tests::endpoint();
    let store = DynamoEventStore::new(
        client(&tight(), &endpoint, None).await,
        "no-such-table-for-sdk-settings",
    );
    let err = store.read("item-1", 1, None).await.unwrap_err();
    assert_eq!(failure(&err), BackendFailure::Rejected, "{err}");
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
}

/// A function's configuration (`SdkSettings::function_config_from`, no aws-config loader)
/// sends each service to its own `AWS_ENDPOINT_URL_<SERVICE>`, and the others to
/// `AWS_ENDPOINT_URL`, as aws-config does for the local tools.
#[tokio::test]
async fn each_service_of_a_functions_config_reaches_its_own_endpoint() {
    let tables = integration_tests::TestTables::create("endpoints").await;
    let dynamodb_local = integration_tests::endpoint();
    // Nothing listens on the fallback: a client sent there fails to connect.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = |vars: Vec<(&'static str, String)>| {
        let lookup = move |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.clone())
        };
        tight().function_config_from(lookup).unwrap()
    };

    let own = config(vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", nowhere.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb_local.clone()),
    ]);
    Client::new(&own)
        .describe_table()
        .table_name(&tables.events_table)
        .send()
        .await
        .expect("DynamoDB reached at AWS_ENDPOINT_URL_DYNAMODB");
    let streams = aws_sdk_dynamodbstreams::Client::new(&own)
        .list_streams()
        .table_name(&tables.events_table)
        .send()
        .await
        .expect("DynamoDB Streams reached at AWS_ENDPOINT_URL_DYNAMODB_STREAMS");
    assert_eq!(streams.streams().len(), 1, "the event table's stream");
    let kms = aws_sdk_kms::Client::new(&own).list_keys().send().await;
    let err = kms.expect_err("KMS has no variable of its own: sent to AWS_ENDPOINT_URL");
    assert!(
        matches!(
            err,
            aws_sdk_kms::error::SdkError::DispatchFailure(_)
                | aws_sdk_kms::error::SdkError::TimeoutError(_)
        ),
        "{err:?}"
    );

    // Without a variable of its own, DynamoDB falls back to AWS_ENDPOINT_URL.
    let fallback = config(vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", dynamodb_local),
    ]);
    Client::new(&fallback)
        .describe_table()
        .table_name(&tables.events_table)
        .send()
        .await
        .expect("DynamoDB reached at AWS_ENDPOINT_URL");
}
