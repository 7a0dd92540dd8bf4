//! Claim check for states larger than one item: the stored bytes go to an object store (S3 in
//! AWS, through the [`StateObjectStore`] port), the item keeps the pointer (`stateRef`), the
//! sizes, the checksum and its own `encoding` (`s3+json`, `s3+json+zstd`).
//!
//! [`OffloadingSnapshotStore`] wraps any [`SnapshotStore`] so that every reader (repository,
//! snapshotter, admin API, pruner) handles offloaded states without knowing about them:
//! - a put of a record marked for offload (see [`crate::snapshot::build_snapshot`]) writes the
//!   object first, tagged pending, then the item conditionally, then marks the object
//!   committed. Objects left pending (a crash between the two writes, or a lost race) are
//!   removed by the bucket's lifecycle rule; a committed object always has its item.
//! - reads of full records fetch the object into `state`; a missing object makes the item
//!   malformed (skipped like any invalid snapshot, never applied);
//! - deletes remove the object with the item (a delete of an absent object succeeds, so a
//!   delete of an inline snapshot costs one object request and nothing else).
//!
//! Objects are keyed by aggregate and version ([`object_key`]): one snapshot item, one object.

use std::fmt::Write as _;

use async_trait::async_trait;
use tracing::{info, warn};

use crate::codec::StateBody;
use crate::error::StoreError;
use crate::ports::{Page, PutOutcome, SnapshotStore, SnapshotStoreDecorator, TrackedPut};
use crate::snapshot::{
    SnapshotHeader, SnapshotKey, SnapshotRecord, StateRef, Stored, UnreadableSnapshot,
};

/// Object prefix of offloaded states.
pub const KEY_PREFIX: &str = "states/";

/// Where offloaded states are kept.
#[async_trait]
pub trait StateObjectStore: Send + Sync {
    /// Writes `bytes` at `key`, marked pending (the lifecycle rule removes it unless
    /// [`StateObjectStore::commit`] follows); returns the pointer the item keeps.
    async fn put_pending(&self, key: &str, bytes: Vec<u8>) -> Result<StateRef, StoreError>;

    /// Marks an object as belonging to a stored item (exempt from the orphan lifecycle rule).
    async fn commit(&self, state: &StateRef) -> Result<(), StoreError>;

    /// The object's bytes; `None` when it does not exist.
    async fn get(&self, state: &StateRef) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes objects by key (absent ones are not an error).
    async fn delete_keys(&self, keys: &[String]) -> Result<(), StoreError>;
}

/// The object key of the state of `aggregate_id` at `version`: the id percent-encoded (ids
/// may hold `/` or any printable character), the version zero-padded so keys sort by version.
pub fn object_key(aggregate_id: &str, version: u64) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + aggregate_id.len() + 24);
    key.push_str(KEY_PREFIX);
    for byte in aggregate_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            key.push(char::from(byte));
        } else {
            let _ = write!(key, "%{byte:02X}");
        }
    }
    let _ = write!(key, "/{version:020}");
    key
}

/// A [`SnapshotStore`] that offloads large states to a [`StateObjectStore`]. Without one
/// (`objects: None`) it passes everything through, and a record marked for offload is refused.
pub struct OffloadingSnapshotStore<S, O> {
    inner: S,
    objects: Option<O>,
}

impl<S, O> OffloadingSnapshotStore<S, O> {
    /// Offloads through `objects` when there is one.
    pub fn new(inner: S, objects: Option<O>) -> Self {
        Self { inner, objects }
    }

    /// The item store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The state object store, if any.
    pub fn objects(&self) -> Option<&O> {
        self.objects.as_ref()
    }
}

impl<S: SnapshotStore, O: StateObjectStore> OffloadingSnapshotStore<S, O> {
    fn objects_for(&self, header: &SnapshotHeader) -> Result<&O, StoreError> {
        self.objects
            .as_ref()
            .ok_or_else(|| StoreError::InvalidRequest {
                aggregate_id: header.aggregate_id.clone(),
                reason: format!(
                    "snapshot at version {} is too large for one item and no state bucket is configured (SNAPSHOT_BUCKET)",
                    header.version
                ),
            })
    }

    async fn put_offloaded(
        &self,
        record: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        let header = &record.header;
        let objects = self.objects_for(header)?;
        // A valid snapshot at this version exists: writing the object would overwrite the one
        // it points to for nothing (same key = same content). An invalid one is replaced.
        let existing = self
            .inner
            .headers(&header.aggregate_id, Some(header.version + 1), 1)
            .await?;
        if existing.items.first().is_some_and(
            |h| matches!(h, Ok(h) if h.version == header.version && h.invalid.is_none()),
        ) {
            return Ok(TrackedPut {
                outcome: PutOutcome::AlreadyExists,
                tracked_before: None,
            });
        }
        let key = object_key(&header.aggregate_id, header.version);
        let state_ref = objects
            .put_pending(&key, record.state.clone().into_bytes())
            .await?;
        let mut item = SnapshotRecord {
            header: header.clone(),
            state: StateBody::Binary(Vec::new()),
        };
        item.header.state_ref = Some(state_ref.clone());
        let put = self.inner.put_tracked(&item, track).await?;
        match put.outcome {
            PutOutcome::Created => {
                if let Err(e) = objects.commit(&state_ref).await {
                    // The item must not outlive its object: undo it so a retry starts over.
                    // Should that fail too, the object expires and the item reads as invalid.
                    warn!(aggregate_id = %header.aggregate_id, version = header.version, error = %e, "state object not committed; removing its item");
                    self.inner
                        .delete(&header.aggregate_id, header.version)
                        .await?;
                    return Err(e);
                }
                info!(aggregate_id = %header.aggregate_id, version = header.version, object = %state_ref, stored_bytes = header.stored_bytes, "state offloaded");
                Ok(put)
            }
            // Lost a race with another writer of the same snapshot: our pending object is the
            // same bytes at the same key, so the winner's commit keeps it (or the lifecycle
            // rule removes it if the winner has not committed yet and then crashes).
            PutOutcome::AlreadyExists => Ok(put),
        }
    }

    /// Reads the object of an offloaded record into its `state`.
    async fn fetch(&self, mut record: SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        if !record.header.is_offloaded() {
            return Ok(record);
        }
        let malformed = |reason: String| StoreError::MalformedSnapshot {
            aggregate_id: record.header.aggregate_id.clone(),
            version: record.header.version.to_string(),
            reason,
        };
        let Some(state_ref) = record.header.state_ref.clone() else {
            return Err(malformed("offloaded state without stateRef".to_owned()));
        };
        let Some(objects) = self.objects.as_ref() else {
            return Err(malformed(format!(
                "state is in {state_ref} but no state bucket is configured (SNAPSHOT_BUCKET)"
            )));
        };
        match objects.get(&state_ref).await? {
            Some(bytes) => {
                record.state = StateBody::Binary(bytes);
                Ok(record)
            }
            None => Err(malformed(format!("state object {state_ref} is missing"))),
        }
    }

    async fn delete_objects(&self, keys: &[SnapshotKey]) -> Result<(), StoreError> {
        if let Some(objects) = &self.objects {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| object_key(&k.aggregate_id, k.version))
                .collect();
            objects.delete_keys(&keys).await?;
        }
        Ok(())
    }
}

/// Writes, full-record reads and deletes handle the state object; header reads, marks, scans
/// and the snapshotter's policy read (`newest_unfetched`: the item only, its object fetched by
/// `fetch_state` when the state is needed) go to the item store unchanged.
#[async_trait]
impl<S: SnapshotStore, O: StateObjectStore> SnapshotStoreDecorator
    for OffloadingSnapshotStore<S, O>
{
    type Inner = S;

    fn delegate(&self) -> &S {
        &self.inner
    }

    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        if snapshot.header.is_offloaded() && snapshot.header.state_ref.is_none() {
            Ok(self.put_offloaded(snapshot, 0).await?.outcome)
        } else {
            self.inner.put_if_absent(snapshot).await
        }
    }

    async fn put_tracked(
        &self,
        snapshot: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        if snapshot.header.is_offloaded() && snapshot.header.state_ref.is_none() {
            self.put_offloaded(snapshot, track).await
        } else {
            self.inner.put_tracked(snapshot, track).await
        }
    }

    async fn records(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        let page = self.inner.records(aggregate_id, before, limit).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for stored in page.items {
            let Ok(record) = stored else {
                items.push(stored);
                continue;
            };
            let (version, marked) = (record.header.version, record.header.invalid.is_some());
            // A missing object makes this one item unreadable, not the page.
            items.push(match self.fetch(record).await {
                Ok(record) => Ok(record),
                Err(StoreError::MalformedSnapshot { reason, .. }) => Err(UnreadableSnapshot {
                    aggregate_id: aggregate_id.to_owned(),
                    version: Some(version),
                    reason,
                    marked,
                }),
                Err(e) => return Err(e),
            });
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    async fn fetch_state(&self, record: SnapshotRecord) -> Result<SnapshotRecord, StoreError> {
        self.fetch(record).await
    }

    async fn get(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        match self.inner.get(aggregate_id, version).await? {
            Some(record) => self.fetch(record).await.map(Some),
            None => Ok(None),
        }
    }

    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError> {
        let deleted = self.inner.delete(aggregate_id, version).await?;
        // After the item: an object without its item is harmless, the reverse is not.
        self.delete_objects(&[SnapshotKey {
            aggregate_id: aggregate_id.to_owned(),
            version,
        }])
        .await?;
        Ok(deleted)
    }

    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        let deleted = self.inner.delete_many(keys).await?;
        self.delete_objects(keys).await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_escape_the_id_and_sort_by_version() {
        assert_eq!(object_key("wh-1", 7), "states/wh-1/00000000000000000007");
        assert_eq!(
            object_key("a/b c", 12),
            "states/a%2Fb%20c/00000000000000000012"
        );
        assert!(object_key("x", 9) < object_key("x", 10));
        assert_ne!(object_key("a/1", 1), object_key("a", 1));
    }
}
