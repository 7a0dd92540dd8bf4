//! A DynamoDB client whose every request waits a fixed time before it is sent: the network
//! and service latency a Lambda function meets on DynamoDB (single-digit milliseconds per
//! request), which DynamoDB Local on the loopback does not have. Requests sent together wait
//! together, as on a real network.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::wire::Wire;

/// `sdk`'s DynamoDB client, counted on `wire`, each request delayed by `delay`.
pub fn delayed_client(sdk: &aws_config::SdkConfig, wire: &Wire, delay: Duration) -> Client {
    // DynamoDB Local speaks plain HTTP: the SDK's own client, built the default way.
    let inner = sdk
        .http_client()
        .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .http_client(SharedHttpClient::new(Delayed { inner, delay }))
            .interceptor(wire.clone())
            .build(),
    )
}

#[derive(Debug)]
struct Delayed {
    inner: SharedHttpClient,
    delay: Duration,
}

impl HttpClient for Delayed {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(DelayedConnector {
            inner: self.inner.http_connector(settings, components),
            delay: self.delay,
        })
    }
}

#[derive(Debug)]
struct DelayedConnector {
    inner: SharedHttpConnector,
    delay: Duration,
}

impl HttpConnector for DelayedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let delay = self.delay;
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(delay).await;
            inner.call(request).await
        })
    }
}
