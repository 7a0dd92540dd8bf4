//! A seeded fault injector on the SDK's HTTP client: it wraps the real client (so requests
//! still reach DynamoDB Local) and, at a configurable rate, answers a request itself with
//! throttling or a 500, fails it with a timeout, or lets it through and then loses the reply
//! ("committed but reply lost"). A BatchWriteItem can also be served halfway: the first half
//! of its requests reaches DynamoDB Local, the rest comes back as `UnprocessedItems`, as DynamoDB
//! does when it sheds load. The SDK sees exactly what a flaky network and a busy DynamoDB
//! produce, and its own retries run as in production.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use snapshot_dynamo::SdkSettings;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `ThrottlingException` (400), nothing sent.
    Throttle,
    /// `InternalServerError` (500), nothing sent.
    ServerError,
    /// The connection times out, nothing sent.
    Timeout,
    /// The request is sent and served; its reply is lost on the way back.
    ReplyLost,
    /// BatchWriteItem only: the first half of the requests is served, the rest is returned
    /// as `UnprocessedItems` (any other operation gets [`Fault::ServerError`] instead).
    Unprocessed,
    /// GetRecords only: `ExpiredIteratorException` (400), as DynamoDB Streams answers an
    /// iterator older than 15 minutes; no engine produces one within a test's time (any other
    /// operation gets [`Fault::ServerError`] instead). Never among the default kinds.
    ExpiredIterator,
}

/// The faults every request can meet ([`Fault::Unprocessed`] is opted into with
/// [`FaultPlan::kinds`]).
const ALL: [Fault; 4] = [
    Fault::Throttle,
    Fault::ServerError,
    Fault::Timeout,
    Fault::ReplyLost,
];

const BATCH_WRITE: &str = "DynamoDB_20120810.BatchWriteItem";

/// Which requests get a fault and which: a seeded generator (SplitMix64), a rate in
/// per-mille, the fault kinds in play, and an optional filter on the operation (the
/// `X-Amz-Target` header, e.g. `DynamoDB_20120810.PutItem`).
#[derive(Clone)]
pub struct FaultPlan {
    state: Arc<Mutex<u64>>,
    rate_per_mille: u64,
    kinds: Vec<Fault>,
    only: Option<Vec<&'static str>>,
    /// Injects no more than this many faults (`None`: no limit).
    at_most: Option<u64>,
    injected: Arc<AtomicU64>,
    /// Requests seen, by operation (the `X-Amz-Target` after its last `.`).
    seen: Arc<Mutex<HashMap<String, u64>>>,
    by_kind: Arc<Mutex<HashMap<Fault, u64>>>,
    enabled: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultPlan")
            .field("rate_per_mille", &self.rate_per_mille)
            .field("kinds", &self.kinds)
            .field("injected", &self.injected())
            .finish()
    }
}

impl FaultPlan {
    /// Every kind of fault at `rate_per_mille` of the requests.
    pub fn new(seed: u64, rate_per_mille: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(seed)),
            rate_per_mille: rate_per_mille.min(1000),
            kinds: ALL.to_vec(),
            only: None,
            at_most: None,
            injected: Arc::default(),
            seen: Arc::default(),
            by_kind: Arc::default(),
            enabled: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Only these kinds.
    pub fn kinds(mut self, kinds: &[Fault]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Only requests of these operations (e.g. `PutItem`, `TransactWriteItems`).
    pub fn only(mut self, operations: &[&'static str]) -> Self {
        self.only = Some(operations.to_vec());
        self
    }

    /// No more than `faults` faults in all (e.g. `1` with a rate of 1000: only the first
    /// matching request meets one, and the SDK's retry of it gets through).
    pub fn at_most(mut self, faults: u64) -> Self {
        self.at_most = Some(faults);
        self
    }

    /// Requests of `operation` (e.g. `Query`) that reached the fault layer, SDK retries
    /// included, faulted or not.
    pub fn requests_of(&self, operation: &str) -> u64 {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Faults of this kind injected so far.
    pub fn injected_of(&self, kind: Fault) -> u64 {
        self.by_kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kind)
            .copied()
            .unwrap_or(0)
    }

    /// Turns injection on or off (e.g. off for the final checks of a test).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    fn next(&self) -> u64 {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn decide(&self, request: &HttpRequest) -> Option<Fault> {
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(operation)
            .or_default() += 1;
        if !self.enabled.load(Ordering::Relaxed) || self.kinds.is_empty() {
            return None;
        }
        if self.at_most.is_some_and(|limit| self.injected() >= limit) {
            return None;
        }
        if let Some(only) = &self.only {
            if !only.iter().any(|op| target.ends_with(&format!(".{op}"))) {
                return None;
            }
        }
        let roll = self.next();
        if roll % 1000 >= self.rate_per_mille {
            return None;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        let fault = match self.kinds[((roll / 1000) % self.kinds.len() as u64) as usize] {
            Fault::Unprocessed if target != BATCH_WRITE => Fault::ServerError,
            Fault::ExpiredIterator if !target.ends_with(".GetRecords") => Fault::ServerError,
            fault => fault,
        };
        *self
            .by_kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(fault)
            .or_default() += 1;
        Some(fault)
    }

    /// Wraps an SDK HTTP client.
    pub fn wrap(&self, inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(FaultyClient {
            inner,
            plan: self.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    plan: FaultPlan,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: FaultPlan,
}

fn dynamodb_error(status: u16, kind: &str) -> HttpResponse {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected fault"}}"#
    );
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).unwrap_or_else(|_| StatusCode::try_from(500).unwrap()),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
        .headers_mut()
        .insert("x-amzn-errortype", kind.to_owned());
    response
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match self.plan.decide(&request) {
            None => self.inner.call(request),
            Some(Fault::Throttle) => {
                HttpConnectorFuture::ready(Ok(dynamodb_error(400, "ThrottlingException")))
            }
            Some(Fault::ServerError) => {
                HttpConnectorFuture::ready(Ok(dynamodb_error(500, "InternalServerError")))
            }
            Some(Fault::Timeout) => {
                HttpConnectorFuture::ready(Err(ConnectorError::timeout("injected timeout".into())))
            }
            Some(Fault::ReplyLost) => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    // Served by the engine (and committed, for a write), then lost.
                    let _ = sent.await;
                    Err(ConnectorError::io(
                        "injected: connection reset after the request was served".into(),
                    ))
                })
            }
            Some(Fault::Unprocessed) => self.serve_halfway(request),
            Some(Fault::ExpiredIterator) => {
                HttpConnectorFuture::ready(Ok(dynamodb_error(400, "ExpiredIteratorException")))
            }
        }
    }
}

impl FaultyConnector {
    /// Sends the first half of a BatchWriteItem's requests (per table) and answers with the
    /// rest as `UnprocessedItems`. A body it cannot read passes through untouched.
    fn serve_halfway(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let parsed: Option<serde_json::Value> = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok());
        let Some(mut body) = parsed else {
            return self.inner.call(request);
        };
        let Some(tables) = body
            .get_mut("RequestItems")
            .and_then(serde_json::Value::as_object_mut)
        else {
            return self.inner.call(request);
        };
        let mut unprocessed = serde_json::Map::new();
        for (table, writes) in tables.iter_mut() {
            if let Some(list) = writes.as_array_mut() {
                let rest = list.split_off(list.len() / 2);
                unprocessed.insert(table.clone(), serde_json::Value::Array(rest));
            }
        }
        tables.retain(|_, writes| writes.as_array().is_some_and(|w| !w.is_empty()));
        let sent = if tables.is_empty() {
            None
        } else {
            let bytes = body.to_string().into_bytes();
            request
                .headers_mut()
                .insert("content-length", bytes.len().to_string());
            *request.body_mut() = SdkBody::from(bytes);
            Some(self.inner.call(request))
        };
        HttpConnectorFuture::new(async move {
            if let Some(sent) = sent {
                let response = sent.await?;
                if !response.status().is_success() {
                    return Ok(response);
                }
            }
            let answer = serde_json::json!({ "UnprocessedItems": unprocessed });
            let mut response = HttpResponse::new(
                StatusCode::try_from(200).unwrap_or_else(|_| unreachable!()),
                SdkBody::from(answer.to_string()),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            Ok(response)
        })
    }
}

/// `sdk` with its HTTP client wrapped in `plan`'s faults, everything else (endpoint,
/// credentials, timeouts, retries) as it was: every client built from it (DynamoDB, DynamoDB
/// Streams, …) meets the faults, and the SDK's own retries run on them as configured.
pub fn with_faults(sdk: &SdkConfig, plan: &FaultPlan) -> SdkConfig {
    // The local engines speak plain HTTP; without a client of its own, the SDK's default one.
    let inner = sdk
        .http_client()
        .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    sdk.to_builder().http_client(plan.wrap(inner)).build()
}

/// An SDK config for the local endpoint whose HTTP client injects `plan`'s faults, with the
/// SDK's standard retries (`attempts` in total per call, 5 to 50 ms of backoff) and its
/// default timeouts.
pub async fn faulty_sdk_config(plan: &FaultPlan, attempts: u32) -> SdkConfig {
    let retries = SdkSettings {
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..SdkSettings::default()
    };
    with_faults(&crate::sdk_config().await, plan)
        .to_builder()
        .retry_config(retries.retry_config())
        .build()
}

/// A DynamoDB client for the local endpoint whose HTTP client injects `plan`'s faults, with
/// the SDK's standard retries (`attempts` in total per call).
pub async fn faulty_dynamodb(plan: &FaultPlan, attempts: u32) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&faulty_sdk_config(plan, attempts).await)
}
