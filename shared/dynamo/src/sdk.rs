//! Timeouts and retries of every AWS SDK client the functions and tools build
//! (docs/operations.md#sdk-timeouts-and-retries).
//!
//! Without them a stalled connection can hold a call until the function's own deadline: the
//! SDK's defaults set no operation or attempt timeout. Each attempt is bounded, the whole
//! operation too (below the shortest function timeout in `template.yaml`), and retries use the
//! SDK's standard mode: exponential backoff with full jitter, throttling and transient errors
//! retried, a client-side rate limiter. A call that still fails becomes a
//! [`StoreError::Backend`](snapshot_core::StoreError) saying whether retrying later can help.

use std::time::Duration;

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use snapshot_core::config::{ConfigError, Env};
use snapshot_core::error::{BackendFailure, StoreError};

use crate::endpoints::Endpoints;

/// Connect timeout, in milliseconds.
pub const CONNECT_TIMEOUT_MS: &str = "SDK_CONNECT_TIMEOUT_MS";
/// Timeout of one attempt (one HTTP request), in milliseconds.
pub const ATTEMPT_TIMEOUT_MS: &str = "SDK_ATTEMPT_TIMEOUT_MS";
/// Timeout of a whole operation, all attempts and backoff included, in milliseconds.
pub const OPERATION_TIMEOUT_MS: &str = "SDK_OPERATION_TIMEOUT_MS";
/// Attempts per operation, the first included.
pub const MAX_ATTEMPTS: &str = "SDK_MAX_ATTEMPTS";
/// Backoff before the first retry (doubling, jittered), in milliseconds.
pub const INITIAL_BACKOFF_MS: &str = "SDK_INITIAL_BACKOFF_MS";
/// Longest backoff between two attempts, in milliseconds.
pub const MAX_BACKOFF_MS: &str = "SDK_MAX_BACKOFF_MS";

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Timeouts and retry policy of an SDK client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkSettings {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time one attempt may take.
    pub attempt_timeout: Duration,
    /// Time the whole operation may take, retries included.
    pub operation_timeout: Duration,
    /// Attempts per operation (1: no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for SdkSettings {
    /// Bounded well inside the shortest function timeout (the admin API's 29 s).
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(3_000),
            attempt_timeout: Duration::from_millis(5_000),
            operation_timeout: Duration::from_millis(20_000),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(5_000),
        }
    }
}

impl SdkSettings {
    /// From the process environment (variables above; each optional).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `lookup`, falling back to [`SdkSettings::default`] for each unset variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let d = Self::default();
        // One literal constant per read (tests/src/env_reads.rs finds the names).
        let connect = env.number(CONNECT_TIMEOUT_MS, ms(d.connect_timeout), 10, 60_000)?;
        let attempt = env.number(ATTEMPT_TIMEOUT_MS, ms(d.attempt_timeout), 10, 600_000)?;
        let operation = env.number(OPERATION_TIMEOUT_MS, ms(d.operation_timeout), 10, 900_000)?;
        let attempts = env.number(MAX_ATTEMPTS, u64::from(d.max_attempts), 1, 20)?;
        let initial = env.number(INITIAL_BACKOFF_MS, ms(d.initial_backoff), 1, 60_000)?;
        let max_backoff = env.number(MAX_BACKOFF_MS, ms(d.max_backoff), 1, 300_000)?;
        let settings = Self {
            connect_timeout: Duration::from_millis(connect),
            attempt_timeout: Duration::from_millis(attempt),
            operation_timeout: Duration::from_millis(operation),
            max_attempts: u32::try_from(attempts).unwrap_or(d.max_attempts),
            initial_backoff: Duration::from_millis(initial),
            max_backoff: Duration::from_millis(max_backoff),
        };
        if settings.operation_timeout < settings.attempt_timeout {
            return Err(ConfigError {
                variable: OPERATION_TIMEOUT_MS,
                value: settings.operation_timeout.as_millis().to_string(),
                reason: format!(
                    "must be at least {ATTEMPT_TIMEOUT_MS} ({} ms): an operation is one or more attempts",
                    settings.attempt_timeout.as_millis()
                ),
            });
        }
        if settings.max_backoff < settings.initial_backoff {
            return Err(ConfigError {
                variable: MAX_BACKOFF_MS,
                value: settings.max_backoff.as_millis().to_string(),
                reason: format!("must be at least {INITIAL_BACKOFF_MS}"),
            });
        }
        Ok(settings)
    }

    /// The timeouts as the SDK takes them.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    /// The SDK's standard retry mode (exponential backoff with jitter) with these bounds.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }

    /// The shared SDK configuration (region, credentials and endpoints from the environment
    /// as aws-config reads them) with these timeouts and retries: every client built from it
    /// has them. The endpoint variables are checked first (see [`Endpoints`]): a malformed one
    /// is an error naming it.
    pub async fn load(&self) -> Result<SdkConfig, ConfigError> {
        Endpoints::from_env()?;
        Ok(self
            .apply(aws_config::defaults(BehaviorVersion::latest()))
            .load()
            .await)
    }

    /// The SDK configuration of a Lambda function, from the variables Lambda sets: region
    /// (`AWS_REGION`, else `AWS_DEFAULT_REGION`), credentials (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, read when a request is signed) and
    /// the endpoint variables when set (the local engines: a service's own
    /// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, see [`Endpoints`]), with these
    /// timeouts and retries.
    ///
    /// Unlike [`SdkSettings::load`] there is no provider chain: no profile files read, no
    /// instance-metadata probe, no STS or web-identity client. That is a shorter cold start,
    /// and code a function never runs stays out of its binary. A missing region fails the
    /// cold start naming the variable, and so does a malformed endpoint URL.
    pub fn function_config(&self) -> Result<SdkConfig, ConfigError> {
        self.function_config_from(|k| std::env::var(k).ok())
    }

    /// [`SdkSettings::function_config`] with the variables read through `lookup`.
    pub fn function_config_from(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SdkConfig, ConfigError> {
        let env = Env(&lookup);
        let region = env
            .optional("AWS_REGION")
            .or_else(|| env.optional("AWS_DEFAULT_REGION"))
            .ok_or_else(|| ConfigError {
                variable: "AWS_REGION",
                value: String::new(),
                reason: "must be set (Lambda sets it): the region of the tables".to_owned(),
            })?;
        let endpoints = Endpoints::from_lookup(&lookup)?;
        let credentials =
            SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new());
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .timeout_config(self.timeout_config())
            .retry_config(self.retry_config());
        if let Some(url) = endpoints.fallback() {
            builder = builder.endpoint_url(url);
        }
        // Each client asks this for its service's own variable before taking the fallback.
        Ok(builder.service_config(endpoints).build())
    }

    /// `loader` with these timeouts and retries (for callers that set more, e.g. local
    /// credentials).
    pub fn apply(&self, loader: ConfigLoader) -> ConfigLoader {
        loader
            .timeout_config(self.timeout_config())
            .retry_config(self.retry_config())
    }
}

/// Maps any AWS SDK failure (DynamoDB, S3, …) to a backend error that keeps the SDK's error as its source and says
/// what kind of failure it was (so callers know whether, and when, to retry).
pub fn store_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let failure = classify(&err);
    // The service's own code and message say what went wrong; otherwise the whole chain.
    let detail = match (err.code(), err.message()) {
        (Some(code), message) => format!("{code}: {}", message.unwrap_or("")),
        (None, _) => DisplayErrorContext(&err).to_string(),
    };
    StoreError::backend_failure_of(
        operation,
        failure,
        SdkFailure {
            detail,
            source: err,
        },
    )
}

/// An SDK error with a readable summary; the SDK's error stays reachable as its source.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
struct SdkFailure<E: std::error::Error + 'static, R: std::fmt::Debug> {
    detail: String,
    #[source]
    source: SdkError<E, R>,
}

/// Error codes DynamoDB answers when it sheds load (the SDK already retried them).
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "TooManyRequestsException",
    "SlowDown",
];

/// Error codes of a service-side fault worth retrying later.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> BackendFailure {
    match err {
        SdkError::TimeoutError(_) => BackendFailure::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => BackendFailure::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => BackendFailure::Unavailable,
        SdkError::ServiceError(_) => match err.code() {
            Some(code) if THROTTLING_CODES.contains(&code) => BackendFailure::Throttled,
            Some(code) if TRANSIENT_CODES.contains(&code) => BackendFailure::Unavailable,
            _ => BackendFailure::Rejected,
        },
        // ConstructionFailure and anything newer: the request itself could not be made.
        _ => BackendFailure::Rejected,
    }
}

/// True when DynamoDB refused a conditional write because its condition did not hold
/// (`ConditionalCheckFailedException`, of PutItem, UpdateItem or DeleteItem). Not a failure:
/// the caller turns it into its own answer (a conflict, a snapshot already there, nothing to
/// mark); any other error goes through [`store_error`].
pub(crate) fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<SdkSettings, ConfigError> {
        SdkSettings::from_lookup(|k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        assert_eq!(from(&[]).unwrap(), SdkSettings::default());
    }

    #[test]
    fn each_variable_sets_its_bound() {
        let s = from(&[
            (CONNECT_TIMEOUT_MS, "250"),
            (ATTEMPT_TIMEOUT_MS, "900"),
            (OPERATION_TIMEOUT_MS, "4000"),
            (MAX_ATTEMPTS, "2"),
            (INITIAL_BACKOFF_MS, "20"),
            (MAX_BACKOFF_MS, "400"),
        ])
        .unwrap();
        assert_eq!(s.connect_timeout, Duration::from_millis(250));
        assert_eq!(s.attempt_timeout, Duration::from_millis(900));
        assert_eq!(s.operation_timeout, Duration::from_millis(4000));
        assert_eq!(s.max_attempts, 2);
        assert_eq!(s.initial_backoff, Duration::from_millis(20));
        assert_eq!(s.max_backoff, Duration::from_millis(400));
        let timeouts = s.timeout_config();
        assert_eq!(
            timeouts.operation_timeout(),
            Some(Duration::from_millis(4000))
        );
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_millis(900))
        );
        assert_eq!(s.retry_config().max_attempts(), 2);
    }

    #[test]
    fn a_function_config_comes_from_lambda_variables_alone() {
        let settings = from(&[(ATTEMPT_TIMEOUT_MS, "900")]).unwrap();
        let vars = [
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ];
        let lookup = |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let config = settings.function_config_from(lookup).unwrap();
        assert_eq!(config.region().map(AsRef::as_ref), Some("eu-west-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(config.credentials_provider().is_some());
        assert_eq!(
            config
                .timeout_config()
                .and_then(TimeoutConfig::operation_attempt_timeout),
            Some(Duration::from_millis(900))
        );
        assert_eq!(
            config.retry_config().map(RetryConfig::max_attempts),
            Some(4)
        );

        let config = settings
            .function_config_from(|k| (k == "AWS_REGION").then(|| "us-east-2".to_owned()))
            .unwrap();
        assert_eq!(config.region().map(AsRef::as_ref), Some("us-east-2"));
        assert_eq!(config.endpoint_url(), None);

        let err = settings.function_config_from(|_| None).unwrap_err();
        assert_eq!(err.variable, "AWS_REGION");

        let err = settings
            .function_config_from(|k| match k {
                "AWS_REGION" => Some("eu-west-1".to_owned()),
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS" => Some("localhost:8000".to_owned()),
                _ => None,
            })
            .unwrap_err();
        assert_eq!(err.variable, "AWS_ENDPOINT_URL_DYNAMODB_STREAMS");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = from(&[(MAX_ATTEMPTS, "0")]).unwrap_err();
        assert_eq!(err.variable, MAX_ATTEMPTS);
        let err = from(&[(ATTEMPT_TIMEOUT_MS, "soon")]).unwrap_err();
        assert_eq!(err.variable, ATTEMPT_TIMEOUT_MS);
    }

    #[test]
    fn an_operation_shorter_than_one_attempt_is_refused() {
        let err =
            from(&[(ATTEMPT_TIMEOUT_MS, "5000"), (OPERATION_TIMEOUT_MS, "1000")]).unwrap_err();
        assert_eq!(err.variable, OPERATION_TIMEOUT_MS);
        let err = from(&[(INITIAL_BACKOFF_MS, "500"), (MAX_BACKOFF_MS, "100")]).unwrap_err();
        assert_eq!(err.variable, MAX_BACKOFF_MS);
    }
}
