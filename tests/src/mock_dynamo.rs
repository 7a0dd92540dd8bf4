//! A mocked DynamoDB for the failure paths DynamoDB Local does not produce (UnprocessedItems,
//! cancellation reasons, throttling) and for feeding arbitrary items to the adapters: an SDK
//! HTTP client that answers every request itself, from a handler given the operation and the
//! request's JSON body. The SDK's own serializers, error parsing and retries run on DynamoDB's
//! wire format, as against the real service.
//!
//! Not `aws-smithy-mocks`: its `test-util` features switch on serde_json's `preserve_order`
//! for every crate of the workspace's test build, so the tests would run other JSON maps than
//! the functions do in production (and the admin API's errors would grow past clippy's limit).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{json, Value};

/// What the mocked service answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// 200 with this body.
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// An error response of DynamoDB's JSON protocol (`__type` names the error).
    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            body: json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
                "message": message,
            }),
        }
    }

    /// `ThrottlingException` (400).
    pub fn throttling() -> Self {
        Self::error(
            400,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        )
    }

    /// `TransactionCanceledException` with one reason per item of the transaction (`"None"`
    /// for an item that did not fail).
    pub fn cancelled(reasons: &[&str]) -> Self {
        let reasons: Vec<Value> = reasons
            .iter()
            .map(|code| match *code {
                "None" => json!({"Code": "None"}),
                code => json!({"Code": code, "Message": format!("{code} (mocked)")}),
            })
            .collect();
        Self {
            status: 400,
            body: json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                "CancellationReasons": reasons,
            }),
        }
    }
}

type Handler = dyn Fn(&str, &Value) -> Reply + Send + Sync;

/// The mocked service: every request goes to the handler and is recorded.
#[derive(Clone)]
pub struct MockDynamo {
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl fmt::Debug for MockDynamo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockDynamo")
            .field("requests", &self.requests().len())
            .finish()
    }
}

impl MockDynamo {
    /// Answers each request with `handler(operation, body)`, e.g. `("Query", {...})`.
    pub fn new(handler: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Self {
        Self {
            handler: Arc::new(handler),
            requests: Arc::default(),
        }
    }

    /// Every request so far: operation and JSON body, in order.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The bodies of the requests of `operation`, in order (retries included).
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body)
            .collect()
    }

    /// A DynamoDB client talking to this mock, with the SDK's standard retries (`attempts` in
    /// total per call, millisecond backoff).
    pub fn client(&self, attempts: u32) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://dynamodb.mock")
            .credentials_provider(Credentials::new("test", "test", None, None, "mock"))
            .http_client(self.clone())
            .retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(1))
                    .with_max_backoff(Duration::from_millis(5)),
            )
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

impl HttpClient for MockDynamo {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for MockDynamo {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((operation.clone(), body.clone()));
        let reply = (self.handler)(&operation, &body);
        let status = StatusCode::try_from(reply.status)
            .unwrap_or_else(|_| StatusCode::try_from(500).unwrap_or_else(|_| unreachable!()));
        let mut response = HttpResponse::new(status, SdkBody::from(reply.body.to_string()));
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}
