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
}

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
        let config = Config::from_lookup(&lookup)?;
        Ok(Self {
            snapshots_table: config.snapshots_table,
            max_snapshots: config.max_snapshots_per_aggregate,
            segments: u32::try_from(segments).unwrap_or(DEFAULT_SEGMENTS),
            deadline_margin: Duration::from_millis(margin_ms),
        })
    }
}
