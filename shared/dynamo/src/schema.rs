//! The two tables, defined once: local set-up creates them from here and a test checks the
//! SAM template declares the same keys and stream settings.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use snapshot_core::error::StoreError;

pub const EVENTS_PARTITION_KEY: &str = "aggregateId";
pub const EVENTS_SORT_KEY: &str = "sequence";
pub const SNAPSHOTS_PARTITION_KEY: &str = "aggregateId";
pub const SNAPSHOTS_SORT_KEY: &str = "version";
pub const SNAPSHOTS_TTL_ATTRIBUTE: &str = "expiresAt";
/// The snapshot table's keys-only index, read by the pruner's sweep instead of the table: its
/// items hold the keys and what the retention rule decides on, never a state, so reading one
/// costs what a hundred bytes cost whatever the size of the snapshot.
pub const RETENTION_INDEX: &str = "retention";
/// The index's sort key: `lastEventSequence`, equal to `version` on every snapshot, and absent
/// from the items kept beside the snapshots (heads, the pruner's scan positions, the backfill
/// job), so the index is sparse: snapshots only.
pub const RETENTION_INDEX_SORT_KEY: &str = "lastEventSequence";
/// Attributes the index carries besides the keys: what [`snapshot_core::pruning::Retention`]
/// needs.
pub const RETENTION_INDEX_ATTRIBUTES: [&str; 3] = ["aggregateType", "schemaVersion", "invalid"];
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

fn retention_projection() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(
            RETENTION_INDEX_ATTRIBUTES
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
        ))
        .build()
}

fn retention_key_schema() -> Result<Vec<KeySchemaElement>, StoreError> {
    Ok(vec![
        key(SNAPSHOTS_PARTITION_KEY, KeyType::Hash)?,
        key(RETENTION_INDEX_SORT_KEY, KeyType::Range)?,
    ])
}

/// Creates the snapshot table (TTL on `expiresAt`, the [`RETENTION_INDEX`]) unless it exists;
/// an existing table without the index gets it.
pub async fn create_snapshots_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(RETENTION_INDEX)
        .set_key_schema(Some(retention_key_schema()?))
        .projection(retention_projection())
        .build()
        .map_err(|e| StoreError::backend("CreateTable", e))?;
    let result = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(SNAPSHOTS_PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SNAPSHOTS_SORT_KEY, KeyType::Range)?)
        .attribute_definitions(attribute(SNAPSHOTS_PARTITION_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SNAPSHOTS_SORT_KEY, ScalarAttributeType::N)?)
        .attribute_definitions(attribute(RETENTION_INDEX_SORT_KEY, ScalarAttributeType::N)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    let existed = matches!(&result, Err(e) if is_in_use(e));
    ignore_existing(result.map(|_| ()))?;
    if existed {
        add_retention_index(client, name).await?;
    }
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

/// Adds the [`RETENTION_INDEX`] to a table created before it existed (`make run` on an old
/// local table); a table that has it already is left as it is.
async fn add_retention_index(client: &Client, name: &str) -> Result<(), StoreError> {
    let described = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| super::backend("DescribeTable", e))?;
    let has_index = described
        .table
        .and_then(|t| t.global_secondary_indexes)
        .unwrap_or_default()
        .iter()
        .any(|i| i.index_name() == Some(RETENTION_INDEX));
    if has_index {
        return Ok(());
    }
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(RETENTION_INDEX)
        .set_key_schema(Some(retention_key_schema()?))
        .projection(retention_projection())
        .build()
        .map_err(|e| StoreError::backend("UpdateTable", e))?;
    client
        .update_table()
        .table_name(name)
        .attribute_definitions(attribute(RETENTION_INDEX_SORT_KEY, ScalarAttributeType::N)?)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .map_err(|e| super::backend("UpdateTable", e))?;
    Ok(())
}

fn is_in_use<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(|s| s.code()) == Some("ResourceInUseException")
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
