//! The two tables, defined once: local set-up creates them from here and a test checks the
//! SAM template declares the same keys and stream settings.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use snapshot_core::error::StoreError;

pub const EVENTS_PARTITION_KEY: &str = "aggregateId";
pub const EVENTS_SORT_KEY: &str = "sequence";
pub const SNAPSHOTS_PARTITION_KEY: &str = "aggregateId";
pub const SNAPSHOTS_SORT_KEY: &str = "version";
pub const SNAPSHOTS_TTL_ATTRIBUTE: &str = "expiresAt";
/// The event table's stream carries new images only: the snapshotter folds them.
pub const EVENTS_STREAM_VIEW: StreamViewType = StreamViewType::NewImage;

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| StoreError::backend("CreateTable", e))
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| StoreError::backend("CreateTable", e))
}

/// Creates the event table (with its NEW_IMAGE stream) unless it exists.
pub async fn create_events_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(EVENTS_STREAM_VIEW)
        .build()
        .map_err(|e| StoreError::backend("CreateTable", e))?;
    let result = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(EVENTS_PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(EVENTS_SORT_KEY, KeyType::Range)?)
        .attribute_definitions(attribute(EVENTS_PARTITION_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(EVENTS_SORT_KEY, ScalarAttributeType::N)?)
        .stream_specification(stream)
        .send()
        .await;
    ignore_existing(result.map(|_| ()))
}

/// Creates the snapshot table (TTL on `expiresAt`) unless it exists.
pub async fn create_snapshots_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let result = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(SNAPSHOTS_PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SNAPSHOTS_SORT_KEY, KeyType::Range)?)
        .attribute_definitions(attribute(SNAPSHOTS_PARTITION_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SNAPSHOTS_SORT_KEY, ScalarAttributeType::N)?)
        .send()
        .await;
    ignore_existing(result.map(|_| ()))?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(SNAPSHOTS_TTL_ATTRIBUTE)
        .build()
        .map_err(|e| StoreError::backend("UpdateTimeToLive", e))?;
    let result = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Enabling TTL twice is rejected; the table is already as we want it.
        Err(e)
            if format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
                .contains("already enabled") =>
        {
            Ok(())
        }
        Err(e) => Err(super::backend("UpdateTimeToLive", e)),
    }
}

fn ignore_existing<E, R>(
    result: Result<(), aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<(), StoreError>
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ResourceInUseException") => {
            Ok(())
        }
        Err(e) => Err(super::backend("CreateTable", e)),
    }
}
