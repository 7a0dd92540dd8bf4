//! A warm container's cache of aggregate states (opt-in,
//! [`AggregateRepository::with_state_cache`](crate::AggregateRepository::with_state_cache)):
//! the state of every aggregate the repository loaded or saved, with its version and the
//! `eventId` of its last event (the boundary event), bounded in bytes, least recently used
//! first out.
//!
//! A load of a cached aggregate is one strongly consistent read of the events from the cached
//! version *inclusive*: the first one must be the boundary event with the cached `eventId`,
//! which proves the stored history is the one the state was folded from (event ids are unique
//! and events are never rewritten; a table restored, recreated or rewritten fails the check),
//! and only the newer events are folded. No snapshot is read. Anything unexpected (the
//! boundary event missing or another one, an event that does not follow or does not fold, a
//! type or schema revision the entry was not built for) evicts the entry and the load falls
//! back to the snapshot walk, which answers as it always did.
//!
//! The cache is only as good as what was put in it: states folded by a load, and the state of a
//! saved [`AggregateRoot`](crate::AggregateRoot) after its events, which a root built by
//! [`AggregateRepository::load`](crate::AggregateRepository::load) or
//! [`AggregateRoot::new`](crate::AggregateRoot::new) always is.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use tracing::debug;

use crate::domain::{Aggregate, ReadEvent};
use crate::error::StoreError;
use crate::ports::EventStore;
use crate::registry::{decode_state, fold_decoded_onto, AggregateKind};
use crate::repository::LoadReport;

/// Bytes an entry costs beyond its state, key and `eventId`: the entry's own fields and the
/// LRU list's node and hash slot, rounded up. Keeps many tiny states from being counted as
/// nearly free.
pub const ENTRY_OVERHEAD: usize = 128;

/// A typed state, type-erased (see [`CachedState::Typed`]).
type AnyState = dyn Any + Send + Sync;

/// What the cache holds for one aggregate, in the form the load that put it there uses: the
/// typed state for [`AggregateRepository::load`](crate::AggregateRepository::load) and saves
/// (a hit decodes and encodes no JSON), JSON bytes for
/// [`AggregateRepository::load_kind`](crate::AggregateRepository::load_kind). A load in the
/// other form converts it (decodes the JSON, or encodes the typed state).
#[derive(Clone)]
enum CachedState {
    Json(Arc<[u8]>),
    Typed {
        state: Arc<AnyState>,
        /// The state as JSON (`A`'s serialisation, for a JSON load of a typed entry).
        to_json: fn(&AnyState) -> Option<Vec<u8>>,
    },
}

#[derive(Clone)]
struct Entry {
    aggregate_type: &'static str,
    schema_version: u32,
    version: u64,
    last_event_id: Arc<str>,
    state: CachedState,
    /// Bytes it counts for (see [`StateCache::new`]).
    weight: usize,
}

/// Counters since the cache was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from the cache.
    pub hits: u64,
    /// Loads of an aggregate the cache did not hold (in the form asked).
    pub misses: u64,
    /// Entries dropped because they were found wrong or unknown: a boundary event that is not
    /// the cached one, an event that does not follow, a type or schema mismatch, a failed save.
    pub invalidated: u64,
    /// Entries dropped, least recently used first, to stay within the byte bound.
    pub displaced: u64,
}

struct Inner {
    lru: LruCache<String, Entry>,
    bytes: usize,
    stats: CacheStats,
}

/// The cache itself: shared by reference (an `Arc`) between the repositories of one process,
/// safe to use from concurrent tasks (one short lock per lookup or update, never held across
/// a request).
pub struct StateCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("StateCache")
            .field("capacity", &self.capacity)
            .field("bytes", &inner.bytes)
            .field("entries", &inner.lru.len())
            .field("stats", &inner.stats)
            .finish()
    }
}

/// A state read from the cache, checked against its type.
struct Warm<T> {
    version: u64,
    last_event_id: Arc<str>,
    state: T,
}

/// A load answered from the cache.
#[derive(Debug)]
pub(crate) struct WarmLoad<T> {
    pub(crate) state: T,
    pub(crate) version: u64,
    pub(crate) last_event_id: String,
    pub(crate) report: LoadReport,
}

/// The outcome of trying the cache.
pub(crate) enum Cached<T> {
    /// Answered from the cache.
    Hit(WarmLoad<T>),
    /// Not answered; `requests` were spent finding out (a read whose boundary event was not
    /// the cached one), for the fallback load's report.
    Miss { requests: u32 },
}

impl<T> Cached<T> {
    const fn miss() -> Self {
        Self::Miss { requests: 0 }
    }
}

impl StateCache {
    /// An empty cache that keeps at most `capacity_bytes`: each entry counts its state's JSON
    /// size (a typed state is measured by serialising it into a counter, nothing allocated),
    /// its aggregate id and `eventId`, and [`ENTRY_OVERHEAD`]. A state larger than the whole
    /// bound is never kept.
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                stats: CacheStats::default(),
            }),
            capacity: capacity_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every update is applied in
        // full before any call that could panic), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The byte bound.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity
    }

    /// Bytes the entries count for now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Aggregates held.
    pub fn len(&self) -> usize {
        self.lock().lru.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters since the cache was made.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    /// The version held for an aggregate, without making it more recently used.
    pub fn cached_version(&self, aggregate_id: &str) -> Option<u64> {
        self.lock().lru.peek(aggregate_id).map(|e| e.version)
    }

    /// Aggregates held, most recently used first.
    pub fn aggregate_ids(&self) -> Vec<String> {
        self.lock().lru.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Drops an aggregate's entry (e.g. after one of its snapshots was deleted or marked
    /// invalid, whose state the entry may derive from); `true` when there was one. Counted
    /// as invalidated.
    pub fn evict(&self, aggregate_id: &str) -> bool {
        let mut inner = self.lock();
        let Some(entry) = inner.lru.pop(aggregate_id) else {
            return false;
        };
        inner.bytes -= entry.weight;
        inner.stats.invalidated += 1;
        true
    }

    /// Drops every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.lru.clear();
        inner.bytes = 0;
    }

    /// The entry, made most recently used; a miss when there is none.
    fn get(&self, aggregate_id: &str) -> Option<Entry> {
        let mut inner = self.lock();
        let found = inner.lru.get(aggregate_id).cloned();
        if found.is_none() {
            inner.stats.misses += 1;
        }
        found
    }

    /// Keeps `entry`, unless the entry held is at a higher version (a concurrent load or save
    /// of this process got further: moving back would only cost more events to fold), then
    /// drops the least recently used entries until the bound holds.
    fn put(&self, aggregate_id: &str, entry: Entry) {
        let mut inner = self.lock();
        if let Some(held) = inner.lru.peek(aggregate_id) {
            if held.version > entry.version {
                return;
            }
        }
        if let Some(old) = inner.lru.pop(aggregate_id) {
            inner.bytes -= old.weight;
        }
        if entry.weight > self.capacity {
            debug!(
                aggregate_id,
                bytes = entry.weight,
                capacity = self.capacity,
                "state larger than the whole cache: not kept"
            );
            return;
        }
        inner.bytes += entry.weight;
        inner.lru.put(aggregate_id.to_owned(), entry);
        while inner.bytes > self.capacity {
            let Some((_, displaced)) = inner.lru.pop_lru() else {
                break;
            };
            inner.bytes -= displaced.weight;
            inner.stats.displaced += 1;
        }
    }

    /// Drops an entry found wrong, saying why.
    fn invalidate(&self, aggregate_id: &str, reason: &str) {
        if self.evict(aggregate_id) {
            debug!(aggregate_id, reason, "cached state evicted");
        }
    }

    fn hit(&self) {
        self.lock().stats.hits += 1;
    }

    /// The typed state of `A` held for `aggregate_id`; an entry of another type or schema
    /// revision, or that does not decode as `A`, is dropped.
    fn typed<A: Aggregate>(&self, aggregate_id: &str) -> Option<Warm<Arc<A>>> {
        let entry = self.get(aggregate_id)?;
        let state = match &entry.state {
            _ if !fits::<A>(&entry) => None,
            CachedState::Typed { state, .. } => Arc::clone(state).downcast::<A>().ok(),
            CachedState::Json(json) => decode_state::<A>(aggregate_id, json).ok().map(Arc::new),
        };
        let Some(state) = state else {
            self.invalidate(
                aggregate_id,
                "not a state of this aggregate type and schema",
            );
            self.lock().stats.misses += 1;
            return None;
        };
        Some(Warm {
            version: entry.version,
            last_event_id: entry.last_event_id,
            state,
        })
    }

    /// The JSON state of `kind` held for `aggregate_id`; an entry of another type or schema
    /// revision is dropped.
    fn json(&self, kind: &dyn AggregateKind, aggregate_id: &str) -> Option<Warm<Arc<[u8]>>> {
        let entry = self.get(aggregate_id)?;
        let fits = entry.aggregate_type == kind.type_name()
            && entry.schema_version == kind.schema_version();
        let state = match &entry.state {
            _ if !fits => None,
            CachedState::Json(json) => Some(Arc::clone(json)),
            CachedState::Typed { state, to_json } => to_json(&**state).map(Arc::from),
        };
        let Some(state) = state else {
            self.invalidate(
                aggregate_id,
                "not a state of this aggregate type and schema",
            );
            self.lock().stats.misses += 1;
            return None;
        };
        Some(Warm {
            version: entry.version,
            last_event_id: entry.last_event_id,
            state,
        })
    }

    /// Keeps the typed state of `A` at `version`, whose last event is `last_event_id`.
    pub(crate) fn put_typed<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: u64,
        last_event_id: &str,
        state: A,
    ) {
        // The JSON size stands for the state's size; a state that does not serialise (never,
        // for a state a snapshot can be made of) is not kept.
        let mut size = ByteCounter(0);
        if serde_json::to_writer(&mut size, &state).is_err() {
            return;
        }
        self.put(
            aggregate_id,
            Entry {
                aggregate_type: A::TYPE,
                schema_version: A::SCHEMA_VERSION,
                version,
                weight: weight(aggregate_id, last_event_id, size.0),
                last_event_id: last_event_id.into(),
                state: CachedState::Typed {
                    state: Arc::new(state),
                    to_json: typed_to_json::<A>,
                },
            },
        );
    }

    /// Keeps the JSON state of `kind` at `version`, whose last event is `last_event_id`.
    pub(crate) fn put_json(
        &self,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
        version: u64,
        last_event_id: &str,
        state_json: &[u8],
    ) {
        self.put(
            aggregate_id,
            Entry {
                aggregate_type: kind.type_name(),
                schema_version: kind.schema_version(),
                version,
                weight: weight(aggregate_id, last_event_id, state_json.len()),
                last_event_id: last_event_id.into(),
                state: CachedState::Json(state_json.into()),
            },
        );
    }

    /// Loads a typed aggregate from the cache: one read of the events from the cached version
    /// on (see the module's documentation).
    pub(crate) async fn load<A: Aggregate, E: EventStore + ?Sized>(
        &self,
        events: &E,
        aggregate_id: &str,
    ) -> Result<Cached<A>, StoreError> {
        let Some(warm) = self.typed::<A>(aggregate_id) else {
            return Ok(Cached::miss());
        };
        let (read, pages) = events
            .read_decoded::<A>(aggregate_id, warm.version, None)
            .await?;
        let Some(newer) = self.newer(aggregate_id, &warm, &read) else {
            return Ok(Cached::Miss { requests: pages });
        };
        let state = A::clone(&warm.state);
        let state = if newer.is_empty() {
            state
        } else {
            match fold_decoded_onto(aggregate_id, warm.version, state, newer) {
                Ok(state) => state,
                Err(e) => {
                    self.invalidate(aggregate_id, &e.to_string());
                    return Ok(Cached::Miss { requests: pages });
                }
            }
        };
        let (version, last_event_id) = head(&warm, newer);
        if !newer.is_empty() {
            self.put_typed(aggregate_id, version, &last_event_id, state.clone());
        }
        self.hit();
        Ok(Cached::Hit(WarmLoad {
            state,
            version,
            last_event_id,
            report: warm_report(newer.len(), pages),
        }))
    }

    /// Loads any registered type from the cache, as JSON: one read of the events from the
    /// cached version on (see the module's documentation).
    pub(crate) async fn load_kind<E: EventStore + ?Sized>(
        &self,
        events: &E,
        kind: &dyn AggregateKind,
        aggregate_id: &str,
    ) -> Result<Cached<Vec<u8>>, StoreError> {
        let Some(warm) = self.json(kind, aggregate_id) else {
            return Ok(Cached::miss());
        };
        let (read, pages) = events
            .read_counted(aggregate_id, warm.version, None)
            .await?;
        let Some(newer) = self.newer(aggregate_id, &warm, &read) else {
            return Ok(Cached::Miss { requests: pages });
        };
        let state_json = if newer.is_empty() {
            warm.state.to_vec()
        } else {
            match kind.fold_json(aggregate_id, warm.version, Some(&warm.state), newer) {
                Ok(state) => state,
                Err(e) => {
                    self.invalidate(aggregate_id, &e.to_string());
                    return Ok(Cached::Miss { requests: pages });
                }
            }
        };
        let (version, last_event_id) = head(&warm, newer);
        if !newer.is_empty() {
            self.put_json(kind, aggregate_id, version, &last_event_id, &state_json);
        }
        self.hit();
        Ok(Cached::Hit(WarmLoad {
            state: state_json,
            version,
            last_event_id,
            report: warm_report(newer.len(), pages),
        }))
    }

    /// The events after the cached version, when the first event read is the cached boundary
    /// event; else the entry is dropped.
    fn newer<'r, T, V: ReadEvent>(
        &self,
        aggregate_id: &str,
        warm: &Warm<T>,
        read: &'r [V],
    ) -> Option<&'r [V]> {
        match read.split_first() {
            Some((boundary, newer))
                if boundary.sequence() == warm.version
                    && boundary.event_id() == &*warm.last_event_id =>
            {
                Some(newer)
            }
            Some((boundary, _)) => {
                self.invalidate(
                    aggregate_id,
                    &format!(
                        "event {} is {}, the cached state was built on {}",
                        warm.version,
                        boundary.event_id(),
                        warm.last_event_id
                    ),
                );
                None
            }
            None => {
                self.invalidate(
                    aggregate_id,
                    "the cached version is beyond the stored events",
                );
                None
            }
        }
    }
}

/// `A`'s JSON of a typed entry's state.
fn typed_to_json<A: Aggregate>(state: &AnyState) -> Option<Vec<u8>> {
    serde_json::to_vec(state.downcast_ref::<A>()?).ok()
}

/// Whether an entry was built for `A` (type name and schema revision; the downcast checks the
/// Rust type).
fn fits<A: Aggregate>(entry: &Entry) -> bool {
    entry.aggregate_type == A::TYPE && entry.schema_version == A::SCHEMA_VERSION
}

fn weight(aggregate_id: &str, last_event_id: &str, state_bytes: usize) -> usize {
    ENTRY_OVERHEAD
        .saturating_add(aggregate_id.len())
        .saturating_add(last_event_id.len())
        .saturating_add(state_bytes)
}

/// Version and `eventId` after the newer events.
fn head<T, V: ReadEvent>(warm: &Warm<T>, newer: &[V]) -> (u64, String) {
    match newer.last() {
        Some(last) => (last.sequence(), last.event_id().to_owned()),
        None => (warm.version, warm.last_event_id.to_string()),
    }
}

fn warm_report(replayed: usize, pages: u32) -> LoadReport {
    LoadReport {
        snapshot_version: None,
        events_replayed: replayed as u64,
        snapshots_skipped: 0,
        round_trips: pages,
        requests: pages,
        from_cache: true,
    }
}

/// Counts the bytes written to it (a state's JSON size without building the JSON).
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InventoryItem, Warehouse};
    use crate::registry::Registry;

    fn item(id: &str) -> InventoryItem {
        InventoryItem::initial(id)
    }

    /// The bytes an entry of `InventoryItem::initial(id)` counts for.
    fn item_weight(id: &str, event_id: &str) -> usize {
        weight(id, event_id, serde_json::to_vec(&item(id)).unwrap().len())
    }

    #[test]
    fn entries_count_their_state_key_and_event_id() {
        let cache = StateCache::new(1 << 20);
        cache.put_typed("a", 1, "e1", item("a"));
        assert_eq!(cache.bytes(), item_weight("a", "e1"));
        let registry = Registry::builtin();
        let kind = registry.get("INVENTORY_ITEM").unwrap();
        cache.put_json(kind.as_ref(), "b", 1, "e1", &[b'x'; 1000]);
        assert_eq!(
            cache.bytes(),
            item_weight("a", "e1") + ENTRY_OVERHEAD + 1 + 2 + 1000
        );
        assert!(cache.evict("a"));
        assert!(!cache.evict("a"));
        assert_eq!(cache.bytes(), ENTRY_OVERHEAD + 1 + 2 + 1000);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_least_recently_used_entries_go_first_to_keep_the_byte_bound() {
        let one = item_weight("a", "e1");
        let cache = StateCache::new(3 * one);
        for id in ["a", "b", "c"] {
            cache.put_typed(id, 1, "e1", item(id));
        }
        assert_eq!(cache.len(), 3);
        // A lookup makes `a` the most recently used: `b` is now the least.
        assert!(cache.typed::<InventoryItem>("a").is_some());
        cache.put_typed("d", 1, "e1", item("d"));
        assert_eq!(cache.aggregate_ids(), ["d", "a", "c"]);
        assert!(cache.bytes() <= cache.capacity_bytes());
        assert_eq!(cache.stats().displaced, 1);
        // A peek does not reorder.
        assert_eq!(cache.cached_version("c"), Some(1));
        cache.put_typed("e", 1, "e1", item("e"));
        assert_eq!(cache.aggregate_ids(), ["e", "d", "a"]);
    }

    #[test]
    fn a_state_larger_than_the_bound_is_not_kept_and_drops_its_older_entry() {
        let cache = StateCache::new(item_weight("a", "e1"));
        cache.put_typed("a", 1, "e1", item("a"));
        assert_eq!(cache.len(), 1);
        let registry = Registry::builtin();
        let kind = registry.get("INVENTORY_ITEM").unwrap();
        cache.put_json(kind.as_ref(), "a", 2, "e2", &[b' '; 4096]);
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn an_entry_never_moves_back_to_an_older_version() {
        let cache = StateCache::new(1 << 20);
        cache.put_typed("a", 5, "e5", item("a"));
        cache.put_typed("a", 3, "e3", item("a"));
        assert_eq!(cache.cached_version("a"), Some(5));
        cache.put_typed("a", 6, "e6", item("a"));
        assert_eq!(cache.cached_version("a"), Some(6));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), item_weight("a", "e6"));
    }

    #[test]
    fn a_lookup_for_another_type_evicts_the_entry() {
        let cache = StateCache::new(1 << 20);
        cache.put_typed("a", 1, "e1", item("a"));
        assert!(cache.typed::<Warehouse>("a").is_none());
        assert_eq!(cache.len(), 0, "another type");
        let registry = Registry::builtin();
        let kind = registry.get("INVENTORY_ITEM").unwrap();
        cache.put_json(kind.as_ref(), "a", 1, "e1", b"{}");
        let warehouse = registry.get("WAREHOUSE").unwrap();
        assert!(cache.json(warehouse.as_ref(), "a").is_none());
        assert_eq!(cache.len(), 0, "JSON of another type");
        cache.put_json(kind.as_ref(), "a", 1, "e1", b"{\"not\": \"an item\"}");
        assert!(cache.typed::<InventoryItem>("a").is_none());
        assert_eq!(cache.len(), 0, "JSON that does not decode");
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.invalidated, stats.hits), (3, 3, 0));
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn either_form_serves_a_load_of_the_other() {
        let cache = StateCache::new(1 << 20);
        let registry = Registry::builtin();
        let kind = registry.get("INVENTORY_ITEM").unwrap();
        let state = item("a");
        cache.put_typed("a", 1, "e1", state.clone());
        let json = cache.json(kind.as_ref(), "a").unwrap();
        assert_eq!(&*json.state, serde_json::to_vec(&state).unwrap().as_slice());
        cache.put_json(kind.as_ref(), "a", 2, "e2", &json.state);
        let typed = cache.typed::<InventoryItem>("a").unwrap();
        assert_eq!((*typed.state).clone(), state);
        assert_eq!((typed.version, &*typed.last_event_id), (2, "e2"));
    }
}
