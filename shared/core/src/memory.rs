//! In-memory adapters with the same semantics as the DynamoDB ones, for fast unit tests and
//! benchmarks. Each counts the requests it serves, as DynamoDB would bill them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::EventEnvelope;
use crate::error::StoreError;
use crate::head::SnapshotHead;
use crate::ports::{
    already_appended, validate_append, EventStore, Page, PutOutcome, SnapshotStore, TrackedPut,
};
use crate::pruning::SeenSnapshot;
use crate::snapshot::{
    InvalidMark, SnapshotHeader, SnapshotKey, SnapshotRecord, SnapshotSummary, Stored,
    UnreadableSnapshot,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is still consistent
    // because every critical section below is a single insert/remove.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An [`EventStore`] in process memory: appends are checked and atomic as DynamoDB's
/// conditional writes are, reads are strongly consistent, and the requests DynamoDB would
/// serve are counted ([`InMemoryEventStore::requests`]). Lost when dropped.
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    streams: Mutex<HashMap<String, Vec<EventEnvelope>>>,
    requests: AtomicU64,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests served so far (one per append or read page).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Drops an aggregate's events after `version`, as a restore from an older backup does:
    /// for tests of a restored table.
    pub fn truncate_after(&self, aggregate_id: &str, version: u64) {
        if let Some(stream) = lock(&self.streams).get_mut(aggregate_id) {
            stream.retain(|e| e.sequence <= version);
        }
    }

    /// Stores events as they are, bypassing every check: for tests of bad stored data.
    pub fn insert_raw(&self, event: EventEnvelope) {
        let mut streams = lock(&self.streams);
        let stream = streams.entry(event.aggregate_id.clone()).or_default();
        stream.push(event);
        stream.sort_by_key(|e| e.sequence);
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        validate_append(expected_version, events)?;
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut streams = lock(&self.streams);
        let stream = streams.entry(first.aggregate_id.clone()).or_default();
        let current = stream.last().map_or(0, |e| e.sequence);
        let at: Vec<EventEnvelope> = stream
            .iter()
            .filter(|e| e.sequence > expected_version)
            .take(events.len())
            .cloned()
            .collect();
        if already_appended(events, &at) {
            return Ok(());
        }
        if current != expected_version {
            return Err(StoreError::Conflict {
                aggregate_id: first.aggregate_id.clone(),
                expected_version,
            });
        }
        stream.extend_from_slice(events);
        Ok(())
    }

    async fn read(
        &self,
        aggregate_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let streams = lock(&self.streams);
        Ok(streams
            .get(aggregate_id)
            .map(|stream| {
                stream
                    .iter()
                    .filter(|e| e.sequence >= from && to.is_none_or(|to| e.sequence <= to))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn read_newest(
        &self,
        aggregate_id: &str,
        limit: usize,
    ) -> Result<Page<EventEnvelope, u64>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let streams = lock(&self.streams);
        let stream = streams
            .get(aggregate_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let items: Vec<EventEnvelope> = stream.iter().rev().take(limit).cloned().collect();
        let next = if items.len() < stream.len() {
            items.last().map(|e| e.sequence)
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

/// A [`SnapshotStore`] in process memory with the DynamoDB adapter's semantics (conditional
/// puts, newest-first pages, segmented scans); it can also hold unreadable items
/// ([`InMemorySnapshotStore::insert_unreadable`]) to test how readers skip them. Requests are
/// counted as DynamoDB would serve them (a batch delete per 25 keys). Lost when dropped.
#[derive(Debug, Default)]
pub struct InMemorySnapshotStore {
    items: Mutex<BTreeMap<(String, u64), Stored<SnapshotRecord>>>,
    /// One head per aggregate, kept as the DynamoDB store keeps its head items
    /// (shared/dynamo/src/heads.rs): advanced on each put with the snapshots it tracks (newest
    /// first), dropped when any snapshot of the aggregate is marked invalid or deleted.
    heads: Mutex<HashMap<String, (SnapshotHead, Vec<SeenSnapshot>)>>,
    requests: AtomicU64,
}

impl InMemorySnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests served so far (for request-budget tests).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Replaces a stored record unconditionally: for tests that corrupt snapshots.
    pub fn overwrite(&self, record: SnapshotRecord) {
        let key = (record.header.aggregate_id.clone(), record.header.version);
        lock(&self.items).insert(key, Ok(record));
    }

    /// Stores an item that does not read as a snapshot at `version`: for tests of bad data.
    pub fn insert_unreadable(&self, aggregate_id: &str, version: u64, reason: &str) {
        let unreadable = UnreadableSnapshot {
            aggregate_id: aggregate_id.to_owned(),
            version: Some(version),
            reason: reason.to_owned(),
            marked: false,
        };
        lock(&self.items).insert((aggregate_id.to_owned(), version), Err(unreadable));
    }

    /// Removes an aggregate's head, as a store written before heads existed has none: for
    /// tests of the path that reads the snapshot instead.
    pub fn forget_head(&self, aggregate_id: &str) {
        lock(&self.heads).remove(aggregate_id);
    }

    /// The snapshots `aggregate_id`'s head tracks, newest first (tests).
    pub fn tracked(&self, aggregate_id: &str) -> Vec<SeenSnapshot> {
        lock(&self.heads)
            .get(aggregate_id)
            .map(|(_, tracked)| tracked.clone())
            .unwrap_or_default()
    }

    /// Moves `head` forward (never back); one request, like the DynamoDB store's conditional
    /// update. With `track` > 0 the new snapshot goes first in the head's list, whose first
    /// `track` places shift down by one (the last of them falls out); the places tracked before
    /// are returned. `None`: the head did not move.
    fn advance_head(&self, head: SnapshotHead, track: usize) -> Option<Vec<SeenSnapshot>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut heads = lock(&self.heads);
        let known = heads.get(&head.aggregate_id);
        if known.is_some_and(|(known, _)| known.version >= head.version) {
            return None;
        }
        let before = known
            .map(|(_, tracked)| tracked.clone())
            .unwrap_or_default();
        let tracked = if track == 0 {
            before.clone()
        } else {
            let new = SeenSnapshot {
                version: head.version,
                schema_version: head.schema_version,
                invalid: false,
            };
            let shifted = before.iter().take(track - 1).copied();
            std::iter::once(new)
                .chain(shifted)
                .chain(before.iter().skip(track).copied())
                .collect()
        };
        heads.insert(head.aggregate_id.clone(), (head, tracked));
        Some(before.into_iter().take(track).collect())
    }

    /// Drops the aggregate's head and its list: one of its snapshots was marked invalid or
    /// deleted, so the list may name a snapshot that no longer counts.
    fn drop_head(&self, aggregate_id: &str) {
        lock(&self.heads).remove(aggregate_id);
    }

    /// Every stored key, in key order.
    pub fn keys(&self) -> Vec<SnapshotKey> {
        lock(&self.items)
            .keys()
            .map(|(aggregate_id, version)| SnapshotKey {
                aggregate_id: aggregate_id.clone(),
                version: *version,
            })
            .collect()
    }

    fn newest_first(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Page<Stored<SnapshotRecord>, u64> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let items = lock(&self.items);
        let upper = before.unwrap_or(u64::MAX);
        let mut found: Vec<(u64, Stored<SnapshotRecord>)> = items
            .range((aggregate_id.to_owned(), 0)..(aggregate_id.to_owned(), upper))
            .rev()
            .take(limit.saturating_add(1))
            .map(|((_, version), record)| (*version, record.clone()))
            .collect();
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(version, _)| *version)
        } else {
            None
        };
        Page {
            items: found.into_iter().map(|(_, record)| record).collect(),
            next,
        }
    }
}

/// Stable segment of an aggregate id for parallel scans (FNV-1a).
pub fn segment_of(aggregate_id: &str, total_segments: u32) -> u32 {
    let hash = aggregate_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (hash % u64::from(total_segments.max(1))) as u32
}

#[async_trait]
impl SnapshotStore for InMemorySnapshotStore {
    async fn put_if_absent(&self, snapshot: &SnapshotRecord) -> Result<PutOutcome, StoreError> {
        Ok(self.put_tracked(snapshot, 0).await?.outcome)
    }

    async fn put_tracked(
        &self,
        snapshot: &SnapshotRecord,
        track: usize,
    ) -> Result<TrackedPut, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let key = (
            snapshot.header.aggregate_id.clone(),
            snapshot.header.version,
        );
        let outcome = {
            let mut items = lock(&self.items);
            let replaceable = match items.get(&key) {
                None => true,
                Some(Ok(stored)) => stored.header.invalid.is_some(),
                Some(Err(unreadable)) => unreadable.marked,
            };
            if replaceable {
                items.insert(key, Ok(snapshot.clone()));
                PutOutcome::Created
            } else {
                PutOutcome::AlreadyExists
            }
        };
        // Either way a valid snapshot is at this key now: its head may move forward.
        let tracked_before = if snapshot.header.invalid.is_none() {
            self.advance_head(SnapshotHead::of(&snapshot.header), track)
        } else {
            None
        };
        Ok(TrackedPut {
            outcome,
            tracked_before: tracked_before.filter(|_| track > 0),
        })
    }

    async fn headers(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotHeader>, u64>, StoreError> {
        let page = self.newest_first(aggregate_id, before, limit);
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|r| r.map(|r| r.header))
                .collect(),
            next: page.next,
        })
    }

    async fn records(
        &self,
        aggregate_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Stored<SnapshotRecord>, u64>, StoreError> {
        Ok(self.newest_first(aggregate_id, before, limit))
    }

    async fn mark_invalid(
        &self,
        aggregate_id: &str,
        version: u64,
        mark: &InvalidMark,
    ) -> Result<bool, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let marked = {
            let mut items = lock(&self.items);
            match items.get_mut(&(aggregate_id.to_owned(), version)) {
                Some(Ok(record)) => {
                    record.header.invalid = Some(mark.clone());
                    true
                }
                Some(Err(unreadable)) => {
                    unreadable.marked = true;
                    true
                }
                None => false,
            }
        };
        self.drop_head(aggregate_id);
        Ok(marked)
    }

    async fn get(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match lock(&self.items).get(&(aggregate_id.to_owned(), version)) {
            None => Ok(None),
            Some(Ok(record)) => Ok(Some(record.clone())),
            Some(Err(unreadable)) => Err(StoreError::MalformedSnapshot {
                aggregate_id: unreadable.aggregate_id.clone(),
                version: version.to_string(),
                reason: unreadable.reason.clone(),
            }),
        }
    }

    async fn delete(&self, aggregate_id: &str, version: u64) -> Result<bool, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let deleted = lock(&self.items)
            .remove(&(aggregate_id.to_owned(), version))
            .is_some();
        self.drop_head(aggregate_id);
        Ok(deleted)
    }

    async fn scan_summaries(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<SnapshotKey>,
        limit: usize,
    ) -> Result<Page<SnapshotSummary, SnapshotKey>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let items = lock(&self.items);
        let after = cursor.map(|c| (c.aggregate_id, c.version));
        let mut found: Vec<SnapshotSummary> = items
            .iter()
            .filter(|(key, _)| after.as_ref().is_none_or(|after| *key > after))
            .filter(|((id, _), _)| segment_of(id, total_segments) == segment)
            .take(limit.saturating_add(1))
            .map(|((id, version), record)| SnapshotSummary {
                key: SnapshotKey {
                    aggregate_id: id.clone(),
                    version: *version,
                },
                aggregate_type: record
                    .as_ref()
                    .map(|r| r.header.aggregate_type.clone())
                    .unwrap_or_default(),
                schema_version: record.as_ref().map_or(0, |r| r.header.schema_version),
                invalid: match record {
                    Ok(r) => r.header.invalid.is_some(),
                    Err(unreadable) => unreadable.marked,
                },
            })
            .collect();
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|s| s.key.clone())
        } else {
            None
        };
        Ok(Page { items: found, next })
    }

    async fn delete_many(&self, keys: &[SnapshotKey]) -> Result<usize, StoreError> {
        self.requests
            .fetch_add(keys.len().div_ceil(25) as u64, Ordering::Relaxed);
        let mut items = lock(&self.items);
        for key in keys {
            items.remove(&(key.aggregate_id.clone(), key.version));
        }
        // Heads stay, as in the DynamoDB store: the pruner never deletes an aggregate's newest
        // valid snapshot, the one a head names, and what it deletes from a head's list has
        // keep-N counted snapshots newer than it (see pruning/retain.rs).
        Ok(keys.len())
    }

    async fn head(&self, aggregate_id: &str) -> Result<Option<SnapshotHead>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.heads)
            .get(aggregate_id)
            .map(|(head, _)| head.clone()))
    }

    async fn record_head(&self, head: &SnapshotHead) -> Result<(), StoreError> {
        self.advance_head(head.clone(), 0);
        Ok(())
    }
}

/// In-memory state objects (the S3 bucket of offloaded states), with the pending/committed
/// mark the lifecycle rule keys on.
#[derive(Debug, Default)]
pub struct InMemoryStateObjects {
    objects: Mutex<BTreeMap<String, (Vec<u8>, bool)>>,
    requests: AtomicU64,
}

impl InMemoryStateObjects {
    /// Bucket name in the refs it writes.
    pub const BUCKET: &'static str = "memory";

    /// An empty object store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Every object key with its committed mark.
    pub fn objects(&self) -> Vec<(String, bool)> {
        lock(&self.objects)
            .iter()
            .map(|(key, (_, committed))| (key.clone(), *committed))
            .collect()
    }

    /// Replaces an object's bytes: for tests of corrupted objects.
    pub fn overwrite(&self, key: &str, bytes: Vec<u8>) {
        lock(&self.objects).insert(key.to_owned(), (bytes, true));
    }

    /// Removes an object behind the store's back: for tests of lost objects.
    pub fn remove(&self, key: &str) {
        lock(&self.objects).remove(key);
    }
}

#[async_trait]
impl crate::offload::StateObjectStore for InMemoryStateObjects {
    async fn put_pending(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<crate::snapshot::StateRef, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        lock(&self.objects).insert(key.to_owned(), (bytes, false));
        Ok(crate::snapshot::StateRef {
            bucket: Self::BUCKET.to_owned(),
            key: key.to_owned(),
        })
    }

    async fn commit(&self, state: &crate::snapshot::StateRef) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match lock(&self.objects).get_mut(&state.key) {
            Some(object) => {
                object.1 = true;
                Ok(())
            }
            None => Err(StoreError::backend(
                "PutObjectTagging",
                format!("no object {state}"),
            )),
        }
    }

    async fn get(&self, state: &crate::snapshot::StateRef) -> Result<Option<Vec<u8>>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.objects)
            .get(&state.key)
            .map(|(bytes, _)| bytes.clone()))
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        self.requests
            .fetch_add(keys.len().div_ceil(1000) as u64, Ordering::Relaxed);
        let mut objects = lock(&self.objects);
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }
}
