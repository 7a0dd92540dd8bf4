//! The snapshotter Lambda: consumes the event table's DynamoDB Stream and writes a snapshot
//! when an aggregate's policy trips (docs/functions.md#snapshotter).
//!
//! [`batch`] sorts a stream batch by aggregate, [`evaluate`] handles one aggregate (decide,
//! rebuild from the latest valid snapshot plus only what is missing, store conditionally),
//! [`handler`] runs the aggregates concurrently and reports partial batch failures; `tail`
//! measures the bytes since the last snapshot for the bytes budget.
//!
//! Imports run one way: [`handler`] → [`evaluate`] → [`rebuild`] → [`outcome`] (with
//! [`audit`], [`batch`], [`error`], [`records`] and `tail` as leaves beside them).

pub mod audit;
pub mod batch;
pub mod error;
pub mod evaluate;
pub mod handler;
pub mod metrics;
pub mod outcome;
pub mod rebuild;
pub mod records;
pub mod settings;
mod tail;

pub use error::SnapshotterError;
pub use handler::{BatchReport, Snapshotter};
pub use outcome::{Action, AggregateOutcome, Counts};
pub use settings::Settings;
