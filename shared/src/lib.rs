//! Core of the aggregate-snapshot service.
//!
//! The domain ([`domain`]), the snapshot logic ([`codec`], [`policy`], [`snapshot`],
//! [`repository`]) and the ports ([`ports`]) know nothing about AWS; [`dynamo`] and [`memory`]
//! are the adapters. Functions and application code depend on this crate only.

pub mod audit;
pub mod clock;
pub mod codec;
pub mod config;
pub mod domain;
pub mod dynamo;
pub mod error;
pub mod memory;
pub mod metrics;
pub mod policy;
pub mod ports;
pub mod pruning;
pub mod registry;
pub mod repository;
pub mod snapshot;
pub mod telemetry;

pub use domain::{Aggregate, AggregateRoot, DomainError, DomainEvent, EventEnvelope};
pub use error::{EventError, StoreError};
pub use registry::{AggregateKind, Registry};
pub use repository::{AggregateRepository, LoadReport, RepositoryError};
