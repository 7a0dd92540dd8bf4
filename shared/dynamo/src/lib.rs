//! DynamoDB adapters of the ports (aws-sdk-dynamodb + serde_dynamo) and the table definitions.

mod events;
mod items;
mod jobs;
pub mod schema;
pub mod sdk;
mod snapshots;

pub use events::DynamoEventStore;
pub use jobs::{DynamoJobStore, JOB_AGGREGATE_ID};
pub use sdk::SdkSettings;
pub use snapshots::DynamoSnapshotStore;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use snapshot_core::error::{BackendFailure, StoreError};

/// Maps an SDK failure to a backend error that keeps the SDK's error as its source and says
/// what kind of failure it was (so callers know whether, and when, to retry).
pub(crate) fn backend<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
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
];

/// Error codes of a service-side fault worth retrying later.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
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
