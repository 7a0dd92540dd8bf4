//! The runner's settings, as the event source mapping's: batch size, polling, starting
//! position, retries, and where checkpoints are kept.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use snapshot_core::config::{ConfigError, Env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record still in the stream.
    TrimHorizon,
    /// Only records written after the runner starts.
    Latest,
}

impl StartingPosition {
    pub fn iterator_type(self) -> ShardIteratorType {
        match self {
            Self::TrimHorizon => ShardIteratorType::TrimHorizon,
            Self::Latest => ShardIteratorType::Latest,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSettings {
    /// `STREAM_BATCH_SIZE` (1..=1000, default 100): most records per invocation.
    pub batch_size: usize,
    /// `STREAM_POLL_INTERVAL_MS` (default 1000): wait between polls of an idle stream.
    pub poll_interval: Duration,
    /// `STREAM_STARTING_POSITION` (`TRIM_HORIZON` default, or `LATEST`).
    pub starting_position: StartingPosition,
    /// `STREAM_MAX_ATTEMPTS` (default 10, 0 = forever): deliveries of a failing record before
    /// it is discarded (logged), as Lambda's `MaximumRetryAttempts` does.
    pub max_attempts: Option<u32>,
    /// `STREAM_CHECKPOINT_FILE` (optional): per-shard checkpoints survive restarts.
    pub checkpoint_file: Option<PathBuf>,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_millis(1000),
            starting_position: StartingPosition::TrimHorizon,
            max_attempts: Some(10),
            checkpoint_file: None,
        }
    }
}

impl RunnerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let batch_size = env.number("STREAM_BATCH_SIZE", 100, 1, 1000)?;
        let poll_ms = env.number("STREAM_POLL_INTERVAL_MS", 1000, 10, 60_000)?;
        let position = env.string("STREAM_STARTING_POSITION", "TRIM_HORIZON")?;
        let starting_position = match position.trim().to_ascii_uppercase().as_str() {
            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
            "LATEST" => StartingPosition::Latest,
            _ => {
                return Err(ConfigError {
                    variable: "STREAM_STARTING_POSITION",
                    value: position,
                    reason: "must be TRIM_HORIZON or LATEST".to_owned(),
                })
            }
        };
        let attempts = env.number("STREAM_MAX_ATTEMPTS", 10, 0, 10_000)?;
        Ok(Self {
            batch_size: usize::try_from(batch_size).unwrap_or(100),
            poll_interval: Duration::from_millis(poll_ms),
            starting_position,
            max_attempts: u32::try_from(attempts).ok().filter(|a| *a > 0),
            checkpoint_file: env.optional("STREAM_CHECKPOINT_FILE").map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<RunnerSettings, ConfigError> {
        RunnerSettings::from_lookup(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_match_the_event_source_mapping_defaults() {
        assert_eq!(from(&[]).unwrap(), RunnerSettings::default());
    }

    #[test]
    fn values_are_read_and_validated() {
        let s = from(&[
            ("STREAM_BATCH_SIZE", "10"),
            ("STREAM_POLL_INTERVAL_MS", "50"),
            ("STREAM_STARTING_POSITION", "latest"),
            ("STREAM_MAX_ATTEMPTS", "0"),
            ("STREAM_CHECKPOINT_FILE", "cp.json"),
        ])
        .unwrap();
        assert_eq!(s.batch_size, 10);
        assert_eq!(s.poll_interval, Duration::from_millis(50));
        assert_eq!(s.starting_position, StartingPosition::Latest);
        assert_eq!(s.max_attempts, None);
        assert_eq!(s.checkpoint_file, Some(PathBuf::from("cp.json")));
        for (variable, bad) in [
            ("STREAM_BATCH_SIZE", "0"),
            ("STREAM_BATCH_SIZE", "1001"),
            ("STREAM_POLL_INTERVAL_MS", "soon"),
            ("STREAM_STARTING_POSITION", "AT_TIMESTAMP"),
        ] {
            assert_eq!(from(&[(variable, bad)]).unwrap_err().variable, variable);
        }
    }
}
