//! DynamoDB adapters of the ports (aws-sdk-dynamodb + serde_dynamo) and the table definitions.

mod events;
mod items;
pub mod schema;
mod snapshots;

pub use events::DynamoEventStore;
pub use snapshots::DynamoSnapshotStore;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

use crate::error::StoreError;

/// Maps an SDK failure to a backend error that keeps the service's own message.
pub(crate) fn backend<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::backend(operation, DisplayErrorContext(err))
}
