//! The pruner's configuration from env, validated at cold start (errors name the variable).

use std::time::Duration;

use snapshot_core::config::{Config, ConfigError, Env};
use snapshot_core::pruning::{DEFAULT_SEGMENTS, MAX_SEGMENTS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunerSettings {
    pub snapshots_table: String,
    /// `MAX_SNAPSHOTS_PER_AGGREGATE` (at least 1).
    pub max_snapshots: usize,
    /// `PRUNE_SCAN_SEGMENTS`: parallel scan segments.
    pub segments: u32,
    /// `PRUNE_DEADLINE_MARGIN_MS`: stop this long before the Lambda deadline.
    pub deadline_margin: Duration,
    /// `PRUNE_KEYS_PER_RUN`: most index keys a scheduled run reads (it resumes there next
    /// time), so a run costs the same whatever the table's size.
    pub keys_per_run: usize,
}

/// `PRUNE_KEYS_PER_RUN` when unset: about 1,100 read units a run (index entries of ~90 bytes),
/// and a table of 3 million snapshots covered in 30 runs.
pub const DEFAULT_KEYS_PER_RUN: u64 = 100_000;

impl PrunerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let segments = env.number(
            "PRUNE_SCAN_SEGMENTS",
            u64::from(DEFAULT_SEGMENTS),
            1,
            u64::from(MAX_SEGMENTS),
        )?;
        let margin_ms = env.number("PRUNE_DEADLINE_MARGIN_MS", 10_000, 0, 600_000)?;
        let keys_per_run =
            env.number("PRUNE_KEYS_PER_RUN", DEFAULT_KEYS_PER_RUN, 1, 1_000_000_000)?;
        let config = Config::from_lookup(&lookup)?;
        Ok(Self {
            snapshots_table: config.snapshots_table,
            max_snapshots: config.max_snapshots_per_aggregate,
            segments: u32::try_from(segments).unwrap_or(DEFAULT_SEGMENTS),
            deadline_margin: Duration::from_millis(margin_ms),
            keys_per_run: usize::try_from(keys_per_run).unwrap_or(usize::MAX),
        })
    }
}
