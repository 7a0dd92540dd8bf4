//! Every SDK client takes its timeouts and retries from `SdkSettings`
//! (shared/dynamo/src/sdk.rs): a stalled endpoint costs a bounded time, throttling is retried
//! as configured and then reported as throttled, and a refused request is reported as such.

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;
use integration_tests::faults::{Fault, FaultPlan};
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
    let Some(plan) = plan else {
        return Client::new(&sdk);
    };
    let inner = sdk
        .http_client()
        .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .http_client(plan.wrap(inner))
        .build();
    Client::from_conf(config)
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
