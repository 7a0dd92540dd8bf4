//! Maps an `aggregateType` string to its implementation, so functions handle every registered
//! type generically. Adding a type = an [`Aggregate`] implementation (in `domain`, or in the
//! application's own crate: see the `examples/` crate) + one `.with::<T>()` on the registry the
//! functions are given ([`Registry::builtin`] for the built-in ones).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::domain::{
    Aggregate, DecodedEvent, EventEnvelope, InventoryItem, StoredEvent, Warehouse,
};
use crate::error::EventError;

/// Why a fold failed: the base state (from a snapshot) or one of the events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("snapshot state of {aggregate_id} does not decode as {aggregate_type}: {reason}")]
    /// The snapshot's state does not deserialise into the aggregate's state type: the
    /// snapshot is invalid (a load passes over it), the events are not at fault.
    BaseState {
        /// The aggregate the item belongs to.
        aggregate_id: String,
        /// The `aggregateType`, e.g. `INVENTORY_ITEM`.
        aggregate_type: String,
        /// Why, in words that name what is wrong.
        reason: String,
    },
    #[error(transparent)]
    /// One of the events does not fold (see [`EventError`]): no snapshot makes that go away.
    Event(#[from] EventError),
}

/// The type-erased face of an [`Aggregate`]: states travel as JSON bytes.
pub trait AggregateKind: Send + Sync {
    /// The `aggregateType` it is registered under.
    fn type_name(&self) -> &'static str;
    /// The revision of the state's shape ([`Aggregate::SCHEMA_VERSION`]): a snapshot of
    /// another revision is not applied, and the pruner deletes those first.
    fn schema_version(&self) -> u32;

    /// Folds `events` (which must continue `base_version` without gaps and belong to this
    /// aggregate) onto `base` (a JSON state, `None` for a new aggregate); returns the JSON state.
    fn fold_json(
        &self,
        aggregate_id: &str,
        base_version: u64,
        base: Option<&[u8]>,
        events: &[EventEnvelope],
    ) -> Result<Vec<u8>, FoldError>;

    /// Checks that an event decodes for this type (poison-record detection without folding).
    fn check_event(&self, event: &EventEnvelope) -> Result<(), EventError>;
}

struct Kind<A>(PhantomData<fn() -> A>);

impl<A: Aggregate> AggregateKind for Kind<A> {
    fn type_name(&self) -> &'static str {
        A::TYPE
    }

    fn schema_version(&self) -> u32 {
        A::SCHEMA_VERSION
    }

    fn fold_json(
        &self,
        aggregate_id: &str,
        base_version: u64,
        base: Option<&[u8]>,
        events: &[EventEnvelope],
    ) -> Result<Vec<u8>, FoldError> {
        let state = fold_envelopes::<A>(aggregate_id, base_version, base, events)?;
        serde_json::to_vec(&state).map_err(|e| FoldError::BaseState {
            aggregate_id: aggregate_id.to_owned(),
            aggregate_type: A::TYPE.to_owned(),
            reason: e.to_string(),
        })
    }

    fn check_event(&self, event: &EventEnvelope) -> Result<(), EventError> {
        event.decode::<A>().map(|_| ())
    }
}

/// Decodes a JSON snapshot state of `A`, checking that it is the state of `aggregate_id`.
pub fn decode_state<A: Aggregate>(aggregate_id: &str, bytes: &[u8]) -> Result<A, FoldError> {
    let base_error = |reason: String| FoldError::BaseState {
        aggregate_id: aggregate_id.to_owned(),
        aggregate_type: A::TYPE.to_owned(),
        reason,
    };
    let state: A = serde_json::from_slice(bytes).map_err(|e| base_error(e.to_string()))?;
    // Every state carries its id; a snapshot of another aggregate must never be applied.
    if state.aggregate_id() != aggregate_id {
        return Err(base_error(format!(
            "state belongs to `{}`",
            state.aggregate_id()
        )));
    }
    Ok(state)
}

/// The state a fold starts from: `base` (a JSON snapshot state of `aggregate_id`) decoded, or
/// the initial state of a new aggregate when there is none.
pub fn base_state<A: Aggregate>(aggregate_id: &str, base: Option<&[u8]>) -> Result<A, FoldError> {
    match base {
        Some(bytes) => decode_state::<A>(aggregate_id, bytes),
        None => Ok(A::initial(aggregate_id)),
    }
}

/// Typed fold of stored events onto an optional JSON base state, with sequence checks.
pub fn fold_envelopes<A: Aggregate>(
    aggregate_id: &str,
    base_version: u64,
    base: Option<&[u8]>,
    events: &[EventEnvelope],
) -> Result<A, FoldError> {
    let state = base_state::<A>(aggregate_id, base)?;
    Ok(fold_stored(
        aggregate_id,
        base_version,
        state,
        events.iter().map(Ok),
    )?)
}

/// Folds stored events of any representation ([`StoredEvent`]) onto `state`, the state at
/// `base_version`: each must belong to `aggregate_id` and `A`, carry the next sequence (no
/// gap, no repeat) and decode as a known event of `A`. `events` yields a store's own reading
/// errors too (e.g. a malformed item), which end the fold.
pub fn fold_stored<A, S, I>(
    aggregate_id: &str,
    base_version: u64,
    mut state: A,
    events: I,
) -> Result<A, EventError>
where
    A: Aggregate,
    S: StoredEvent,
    I: IntoIterator<Item = Result<S, EventError>>,
{
    for (expected, stored) in (base_version + 1..).zip(events) {
        let stored = stored?;
        stored.belongs_to::<A>(aggregate_id)?;
        check_sequence(aggregate_id, expected, stored.sequence())?;
        state.apply(&stored.decode::<A>()?);
    }
    Ok(state)
}

fn check_sequence(aggregate_id: &str, expected: u64, found: u64) -> Result<(), EventError> {
    if found != expected {
        return Err(EventError::SequenceGap {
            aggregate_id: aggregate_id.to_owned(),
            expected,
            found,
        });
    }
    Ok(())
}

/// Folds events read already decoded ([`DecodedEvent`], a repository's typed load) onto
/// `base`, the JSON state at `base_version` (`None`: a new aggregate); see
/// [`fold_decoded_onto`].
pub fn fold_decoded<A: Aggregate>(
    aggregate_id: &str,
    base_version: u64,
    base: Option<&[u8]>,
    events: &[DecodedEvent<A::Event>],
) -> Result<A, FoldError> {
    let state = base_state::<A>(aggregate_id, base)?;
    Ok(fold_decoded_onto(
        aggregate_id,
        base_version,
        state,
        events,
    )?)
}

/// Folds decoded events onto `state`, the state at `base_version`: each must carry the next
/// sequence and have decoded as an event of `A` belonging to `aggregate_id` (checked when it
/// was read); the first that does not ends the fold with its error.
pub fn fold_decoded_onto<A: Aggregate>(
    aggregate_id: &str,
    base_version: u64,
    mut state: A,
    events: &[DecodedEvent<A::Event>],
) -> Result<A, EventError> {
    for (expected, read) in (base_version + 1..).zip(events) {
        check_sequence(aggregate_id, expected, read.sequence)?;
        match &read.event {
            Ok(event) => state.apply(event),
            Err(e) => return Err(e.clone()),
        }
    }
    Ok(state)
}

/// The registered aggregate types.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn AggregateKind>>,
}

impl Registry {
    /// An empty registry; add types with [`Registry::with`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The aggregates of the Inventory Service.
    pub fn builtin() -> Self {
        Self::new().with::<InventoryItem>().with::<Warehouse>()
    }

    /// Registers `A` under [`Aggregate::TYPE`] (replacing a type of the same name), so
    /// snapshots, loads and the admin API handle it like the built-in ones:
    /// `Registry::builtin().with::<MyAggregate>()`.
    #[must_use]
    pub fn with<A: Aggregate>(mut self) -> Self {
        self.kinds.insert(A::TYPE, Arc::new(Kind::<A>(PhantomData)));
        self
    }

    /// The implementation registered under `aggregate_type`.
    pub fn get(&self, aggregate_type: &str) -> Option<&Arc<dyn AggregateKind>> {
        self.kinds.get(aggregate_type)
    }

    /// Registered type names, sorted (for error messages listing what is supported).
    pub fn type_names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}
