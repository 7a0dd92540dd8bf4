//! Command-line flags of the `stream-runner` binary (clap, with `--help`). Each flag falls back
//! to, and maps onto, the variable of the same setting, so flags and environment are validated
//! in one place ([`crate::RunnerSettings`], whose errors name the variable).

use std::collections::BTreeMap;

use clap::Parser;

/// Feeds the event table's stream to the snapshotter until Ctrl-C.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "stream-runner",
    about = "stream-runner: feeds the local event table's DynamoDB Stream to the snapshotter, as \
             Lambda's event source mapping does, against AWS_ENDPOINT_URL",
    after_help = "The snapshotter's settings (EVENTS_TABLE, SNAPSHOTS_TABLE, SNAPSHOT_*) are read \
                  from the environment as in AWS. Ctrl-C stops it."
)]
pub struct Args {
    /// Most records per invocation, 1-1000 (default 100)
    #[arg(long, value_name = "N", env = "STREAM_BATCH_SIZE")]
    batch_size: Option<String>,
    /// Wait between polls of an idle stream, in milliseconds (default 1000)
    #[arg(long, value_name = "MS", env = "STREAM_POLL_INTERVAL_MS")]
    poll_interval_ms: Option<String>,
    /// TRIM_HORIZON (default) or LATEST
    #[arg(long, value_name = "POSITION", env = "STREAM_STARTING_POSITION")]
    starting_position: Option<String>,
    /// Deliveries of a failing record before it is discarded (default 10, 0 = forever)
    #[arg(long, value_name = "N", env = "STREAM_MAX_ATTEMPTS")]
    max_attempts: Option<String>,
    /// File keeping per-shard checkpoints across restarts (default: none)
    #[arg(long, value_name = "PATH", env = "STREAM_CHECKPOINT_FILE")]
    checkpoint_file: Option<String>,
}

impl Args {
    /// The variables the flags set, overriding the environment.
    pub fn overrides(&self) -> BTreeMap<&'static str, String> {
        [
            ("STREAM_BATCH_SIZE", &self.batch_size),
            ("STREAM_POLL_INTERVAL_MS", &self.poll_interval_ms),
            ("STREAM_STARTING_POSITION", &self.starting_position),
            ("STREAM_MAX_ATTEMPTS", &self.max_attempts),
            ("STREAM_CHECKPOINT_FILE", &self.checkpoint_file),
        ]
        .into_iter()
        .filter_map(|(variable, value)| value.clone().map(|v| (variable, v)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RunnerSettings, StartingPosition};
    use clap::error::ErrorKind;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("stream-runner").chain(list.iter().copied()))
    }

    #[test]
    fn flags_become_the_runner_settings() {
        let overrides = args(&[
            "--batch-size",
            "7",
            "--starting-position=LATEST",
            "--max-attempts",
            "0",
        ])
        .unwrap()
        .overrides();
        let settings = RunnerSettings::from_lookup(|k| overrides.get(k).cloned()).unwrap();
        assert_eq!(settings.batch_size, 7);
        assert_eq!(settings.starting_position, StartingPosition::Latest);
        assert_eq!(settings.max_attempts, None);
    }

    #[test]
    fn bad_values_are_refused_naming_the_variable() {
        let overrides = args(&["--batch-size", "0"]).unwrap().overrides();
        let err = RunnerSettings::from_lookup(|k| overrides.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("STREAM_BATCH_SIZE"), "{err}");
    }

    #[test]
    fn help_and_unknown_flags() {
        assert_eq!(
            args(&["--help"]).unwrap_err().kind(),
            ErrorKind::DisplayHelp
        );
        assert_eq!(
            args(&["--batch"]).unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
    }
}
