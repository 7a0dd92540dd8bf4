//! S3 adapter of the [`StateObjectStore`] port: offloaded snapshot states (claim check).
//!
//! Objects are written with server-side encryption under the configured KMS key (the bucket
//! default in the template uses the same key), tagged `snapshot-state=pending` until the item
//! that points to them is stored, then `committed`. The bucket's lifecycle rule expires pending
//! objects, so a crash between the two writes leaves nothing behind for long.

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption, Tag, Tagging};
use aws_sdk_s3::Client;

use snapshot_core::config::Config;
use snapshot_core::error::StoreError;
use snapshot_core::offload::{OffloadingSnapshotStore, StateObjectStore};
use snapshot_core::snapshot::StateRef;

/// The tag the bucket's lifecycle rule keys on.
pub const STATE_TAG: &str = "snapshot-state";
pub const PENDING: &str = "pending";
pub const COMMITTED: &str = "committed";
/// DeleteObjects' limit.
const DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct S3StateObjects {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
}

/// An S3 client for `sdk`; path-style addressing when an endpoint is set (local emulator),
/// since `bucket.127.0.0.1` does not resolve.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

impl S3StateObjects {
    /// Objects in `bucket`, encrypted with `kms_key_id` (`None`: the bucket's default key).
    pub fn new(client: Client, bucket: impl Into<String>, kms_key_id: Option<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            kms_key_id,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn tagging(value: &str) -> Result<Tagging, StoreError> {
        let tag = Tag::builder()
            .key(STATE_TAG)
            .value(value)
            .build()
            .map_err(|e| StoreError::backend("PutObjectTagging", e))?;
        Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| StoreError::backend("PutObjectTagging", e))
    }
}

use snapshot_dynamo::sdk::store_error as backend;

#[async_trait]
impl StateObjectStore for S3StateObjects {
    async fn put_pending(&self, key: &str, bytes: Vec<u8>) -> Result<StateRef, StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            .tagging(format!("{STATE_TAG}={PENDING}"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .bucket_key_enabled(true)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| backend("PutObject", e))?;
        Ok(StateRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        })
    }

    async fn commit(&self, state: &StateRef) -> Result<(), StoreError> {
        self.client
            .put_object_tagging()
            .bucket(&state.bucket)
            .key(&state.key)
            .tagging(Self::tagging(COMMITTED)?)
            .send()
            .await
            .map_err(|e| backend("PutObjectTagging", e))?;
        Ok(())
    }

    async fn get(&self, state: &StateRef) -> Result<Option<Vec<u8>>, StoreError> {
        let output = match self
            .client
            .get_object()
            .bucket(&state.bucket)
            .key(&state.key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None)
            }
            Err(e) => return Err(backend("GetObject", e)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError::backend("GetObject", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(DELETE_BATCH) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::backend("DeleteObjects", e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::backend("DeleteObjects", e))?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| backend("DeleteObjects", e))?;
            if let Some(first) = output.errors().first() {
                return Err(StoreError::backend(
                    "DeleteObjects",
                    format!(
                        "{} of {} objects not deleted, first {}: {} {}",
                        output.errors().len(),
                        chunk.len(),
                        first.key().unwrap_or_default(),
                        first.code().unwrap_or_default(),
                        first.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Creates the bucket unless it exists (local runs and tests; the template creates it in AWS).
pub async fn create_bucket(client: &Client, bucket: &str) -> Result<(), StoreError> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.as_service_error().and_then(|s| s.code()),
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(backend("CreateBucket", e)),
    }
}

/// The snapshot store the functions use: `inner` with offload to the bucket `config` names
/// (`SNAPSHOT_BUCKET`), or pass-through when none is set.
pub type SnapshotStoreWithObjects<S> = OffloadingSnapshotStore<S, S3StateObjects>;

/// Wraps `inner` for the bucket of `config` (if any).
pub fn with_state_objects<S>(
    inner: S,
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> SnapshotStoreWithObjects<S> {
    let objects = config
        .state_bucket
        .as_ref()
        .map(|bucket| S3StateObjects::new(client(sdk), bucket, config.state_kms_key_id.clone()));
    OffloadingSnapshotStore::new(inner, objects)
}
