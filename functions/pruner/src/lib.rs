//! The pruner Lambda (docs/functions.md#pruner): on an EventBridge schedule, prunes the snapshot table with
//! [`snapshot_core::pruning::prune`] and reports a summary.
//!
//! Input: the scheduled EventBridge event, whose `detail` may carry
//! `{dryRun, aggregateId, maxSnapshots}`, or those options alone (a schedule with a custom
//! input delivers it as the whole payload). See [`input`].
//!
//! After pruning, a running backfill job is resumed for one budgeted slice ([`backfill`]).

pub mod backfill;
pub mod handler;
pub mod input;
pub mod settings;

pub use handler::{handler, Invocation, PrunerError};
pub use input::{parse_input, PruneInput};
pub use settings::PrunerSettings;
