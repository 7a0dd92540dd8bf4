//! A snapshot's head: the few fields the snapshot policy decides on (version, time, type,
//! schema), kept apart from the state so that a stream record that trips no policy costs the
//! read of a few dozen bytes, not of a whole snapshot item (one read unit per 4 KB of it).
//!
//! A store keeps one head per aggregate, for its newest valid snapshot
//! ([`crate::ports::SnapshotStore::head`]); a warm snapshotter also remembers the heads it has
//! seen ([`HeadCache`]). Neither is ever trusted for a state: a head only lets the snapshotter
//! say "not due" or "already snapshotted" without reading. A head may be older than the
//! newest snapshot (a write lost between the snapshot and its head, another writer's newer
//! snapshot): an older head only makes a snapshot look due sooner, and a due snapshot is
//! decided again on the full record (functions/snapshotter/src/evaluate.rs). A head naming a
//! snapshot that has since been marked invalid or deleted is removed by the store with it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::snapshot::SnapshotHeader;

/// The policy's view of an aggregate's newest valid snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The aggregate the head belongs to.
    pub aggregate_id: String,
    /// The snapshot's version (the sequence of the last event folded in).
    pub version: u64,
    /// When the snapshot was created, epoch milliseconds (the time policy's reference).
    pub timestamp: i64,
    /// The snapshot's `aggregateType`: a head of another type is not used.
    pub aggregate_type: String,
    /// Revision of the state shape: a head of an obsolete revision is not used.
    pub schema_version: u32,
    /// TTL of the snapshot it describes (epoch seconds): the head goes with it.
    pub expires_at: Option<i64>,
}

impl SnapshotHead {
    /// The head of a stored snapshot.
    pub fn of(header: &SnapshotHeader) -> Self {
        Self {
            aggregate_id: header.aggregate_id.clone(),
            version: header.version,
            timestamp: header.timestamp,
            aggregate_type: header.aggregate_type.clone(),
            schema_version: header.schema_version,
            expires_at: header.expires_at,
        }
    }
}

/// What a warm container knows of an aggregate's snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The head of its newest valid snapshot, as last seen.
    Head(SnapshotHead),
    /// It had no snapshot when last read. A snapshot written since (an operator's, a
    /// backfill's) only makes the next one due later, so deciding as if there were none errs
    /// toward snapshotting early, never late, by count; the time policy of `hybrid` waits for
    /// the count then (`time` alone is due at once without a snapshot, so it always reads).
    NoSnapshot,
}

/// The stored bytes of an aggregate's events `after < sequence <= through`, as counted by a
/// warm container (the bytes policy, crate::policy::SnapshotPolicy::bytes_threshold): with it
/// the next batch that starts at `through + 1` knows the bytes since the snapshot at `after`
/// without reading the events in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailBytes {
    /// The version the count starts after: the head's (`0`: no snapshot).
    pub after: u64,
    /// The last sequence counted.
    pub through: u64,
    /// Stored bytes of the events counted (crate::stored_size).
    pub bytes: u64,
}

/// One aggregate in a [`HeadCache`]: its head, and the bytes counted since it.
#[derive(Debug, Clone)]
struct Entry {
    seen: Seen,
    tail: Option<TailBytes>,
}

/// Heads a warm container has seen, by aggregate: at most `capacity` of them (an arbitrary one
/// goes when a new one would exceed it; about 130 bytes each with the bytes counted since it).
/// Only ever moved forward, so a late or redelivered batch cannot turn it back.
#[derive(Debug)]
pub struct HeadCache {
    heads: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

impl Default for HeadCache {
    /// Room for 100,000 aggregates (about 10 MB).
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl HeadCache {
    /// A cache of at most `capacity` heads (`0`: remembers nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            heads: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What is remembered of `aggregate_id`.
    pub fn get(&self, aggregate_id: &str) -> Option<Seen> {
        self.lock().get(aggregate_id).map(|e| e.seen.clone())
    }

    /// The bytes counted since the remembered head, if any were (see [`TailBytes`]).
    pub fn tail(&self, aggregate_id: &str) -> Option<TailBytes> {
        self.lock().get(aggregate_id).and_then(|e| e.tail)
    }

    /// Remembers the bytes counted since the head at `tail.after`, for an aggregate whose
    /// head (or absence of one) is remembered; a count from an older head, or one that
    /// reaches less far from the same head, never replaces a newer one.
    pub fn remember_tail(&self, aggregate_id: &str, tail: TailBytes) {
        let mut heads = self.lock();
        let Some(entry) = heads.get_mut(aggregate_id) else {
            return;
        };
        let newer = entry
            .tail
            .is_none_or(|known| (tail.after, tail.through) >= (known.after, known.through));
        if newer && tail.through >= tail.after {
            entry.tail = Some(tail);
        }
    }

    /// Remembers `head` unless a newer one is remembered already.
    pub fn remember(&self, head: SnapshotHead) {
        let id = head.aggregate_id.clone();
        self.put(&id, Seen::Head(head));
    }

    /// Remembers that `aggregate_id` had no snapshot, unless a head is remembered.
    pub fn remember_none(&self, aggregate_id: &str) {
        self.put(aggregate_id, Seen::NoSnapshot);
    }

    fn put(&self, aggregate_id: &str, seen: Seen) {
        if self.capacity == 0 {
            return;
        }
        let mut heads = self.lock();
        let known = heads.get(aggregate_id).map(|e| &e.seen);
        match (known, &seen) {
            (Some(Seen::Head(known)), Seen::Head(new)) if known.version >= new.version => return,
            (Some(Seen::Head(_) | Seen::NoSnapshot), Seen::NoSnapshot) => return,
            (Some(_), _) => {}
            (None, _) => {
                if heads.len() >= self.capacity {
                    if let Some(any) = heads.keys().next().cloned() {
                        heads.remove(&any);
                    }
                }
            }
        }
        // A new head starts a new count: bytes counted since an older one no longer apply.
        heads.insert(aggregate_id.to_owned(), Entry { seen, tail: None });
    }

    /// Forgets `aggregate_id` (its newest snapshot was found unusable).
    pub fn forget(&self, aggregate_id: &str) {
        self.lock().remove(aggregate_id);
    }

    /// How many heads are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(id: &str, version: u64) -> SnapshotHead {
        SnapshotHead {
            aggregate_id: id.to_owned(),
            version,
            timestamp: 1_700_000_000_000,
            aggregate_type: "INVENTORY_ITEM".to_owned(),
            schema_version: 1,
            expires_at: None,
        }
    }

    #[test]
    fn a_head_only_moves_forward() {
        let cache = HeadCache::new(10);
        cache.remember_none("a");
        assert_eq!(cache.get("a"), Some(Seen::NoSnapshot));
        cache.remember(head("a", 20));
        cache.remember(head("a", 10));
        cache.remember_none("a");
        assert_eq!(cache.get("a"), Some(Seen::Head(head("a", 20))));
        cache.remember(head("a", 30));
        assert_eq!(cache.get("a"), Some(Seen::Head(head("a", 30))));
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn bytes_are_counted_since_the_remembered_head_and_a_new_head_drops_them() {
        let cache = HeadCache::new(10);
        let tail = |after, through, bytes| TailBytes {
            after,
            through,
            bytes,
        };
        cache.remember_tail("a", tail(0, 5, 500));
        assert_eq!(
            cache.tail("a"),
            None,
            "no head remembered: nothing to count from"
        );
        cache.remember_none("a");
        cache.remember_tail("a", tail(0, 5, 500));
        assert_eq!(cache.tail("a"), Some(tail(0, 5, 500)));
        cache.remember_none("a");
        assert_eq!(
            cache.tail("a"),
            Some(tail(0, 5, 500)),
            "still no snapshot: kept"
        );
        cache.remember(head("a", 10));
        assert_eq!(cache.tail("a"), None, "a snapshot starts a new count");
        cache.remember_tail("a", tail(10, 14, 400));
        cache.remember_tail("a", tail(10, 12, 200));
        cache.remember_tail("a", tail(0, 20, 2000));
        assert_eq!(
            cache.tail("a"),
            Some(tail(10, 14, 400)),
            "only moved forward"
        );
        cache.remember(head("a", 10));
        assert_eq!(
            cache.tail("a"),
            Some(tail(10, 14, 400)),
            "the same head keeps it"
        );
        cache.remember(head("a", 14));
        assert_eq!(cache.tail("a"), None);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = HeadCache::new(3);
        for n in 0..10 {
            cache.remember(head(&format!("agg-{n}"), n));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get("agg-9").is_some(), "the newest one is kept");
        let off = HeadCache::new(0);
        off.remember(head("a", 1));
        assert!(off.is_empty());
    }
}
