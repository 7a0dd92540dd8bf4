//! Core of the aggregate-snapshot service.
//!
//! The domain ([`domain`]), the snapshot logic ([`codec`], [`policy`], [`snapshot`],
//! [`repository`]), the pruning rules ([`pruning`]) and the ports ([`ports`]) know nothing about
//! AWS: this crate has no `aws-*` dependency (a test in `tests/` checks it). [`memory`] holds the
//! in-memory adapters; the DynamoDB adapters live in the `snapshot-dynamo` crate
//! (`shared/dynamo`). Application code that brings its own store depends on this crate alone.

#![warn(missing_docs)]

pub mod audit;
pub mod backfill;
pub mod clock;
pub mod codec;
pub mod config;
pub mod domain;
pub mod error;
pub mod head;
pub mod load_metrics;
pub mod mac;
pub mod memory;
pub mod metrics;
pub mod offload;
pub mod policy;
pub mod ports;
pub mod pruning;
pub mod registry;
pub mod repository;
pub mod snapshot;
pub mod state_cache;
pub mod stored_size;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod walk;

pub use domain::{Aggregate, AggregateRoot, DomainError, DomainEvent, EventEnvelope};
pub use error::{BackendFailure, EventError, StoreError};
pub use registry::{AggregateKind, Registry};
pub use repository::{AggregateRepository, LoadMode, LoadReport, RepositoryError};
pub use state_cache::StateCache;

/// What the exported macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
}
