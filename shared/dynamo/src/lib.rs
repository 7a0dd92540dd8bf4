//! DynamoDB adapters of the ports (aws-sdk-dynamodb + serde_dynamo) and the table definitions.

mod events;
mod items;
mod jobs;
pub mod schema;
mod snapshots;

pub use events::DynamoEventStore;
pub use jobs::{DynamoJobStore, JOB_AGGREGATE_ID};
pub use snapshots::DynamoSnapshotStore;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use snapshot_core::error::StoreError;

/// Maps an SDK failure to a backend error that keeps the service's own message.
pub(crate) fn backend<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    // The service's own code and message say what went wrong; the raw response adds noise.
    if let Some(service) = err.as_service_error() {
        if let Some(code) = service.code() {
            return StoreError::backend(
                operation,
                format!("{code}: {}", service.message().unwrap_or("")),
            );
        }
    }
    StoreError::backend(operation, DisplayErrorContext(err))
}
