//! Command-line flags (clap, with `--help`). Each flag falls back to, and maps onto, the
//! variable of the same setting, so flags and environment are validated in one place
//! ([`crate::StackSettings`], whose errors name the variable).

use std::collections::BTreeMap;

use clap::Parser;

/// The whole snapshot service in one local process, against `AWS_ENDPOINT_URL`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "local-stack",
    about = "local-stack: the whole snapshot service in one local process, against AWS_ENDPOINT_URL",
    after_help = "Every function setting (EVENTS_TABLE, SNAPSHOT_*, MAX_SNAPSHOTS_PER_AGGREGATE, \
                  STREAM_*, PRUNE_*, ADMIN_*) is read from the environment as in AWS. Ctrl-C \
                  stops everything."
)]
pub struct Args {
    /// Admin API port on 127.0.0.1 (default 3000, a free one if 3000 is taken; 0 = any free
    /// port)
    #[arg(long, value_name = "N", env = "ADMIN_API_PORT")]
    port: Option<String>,
    /// No demo traffic (as LOCAL_DEMO=0)
    #[arg(long)]
    no_demo: bool,
    /// Demo commands per second (default 5)
    #[arg(long, value_name = "N", env = "LOCAL_DEMO_RATE")]
    demo_rate: Option<String>,
    /// Events between snapshots (default 10 locally)
    #[arg(long, value_name = "N", env = "SNAPSHOT_THRESHOLD")]
    threshold: Option<String>,
    /// Time between pruning runs (default 30)
    #[arg(long, value_name = "SECS", env = "LOCAL_PRUNE_INTERVAL_SECS")]
    prune_every: Option<String>,
    /// Where the URL and dev token are written (default .local/admin-api.env)
    #[arg(long, value_name = "PATH", env = "LOCAL_ENV_FILE")]
    env_file: Option<String>,
}

impl Args {
    /// The variables the flags set, overriding the environment.
    pub fn overrides(&self) -> BTreeMap<&'static str, String> {
        let mut overrides = BTreeMap::new();
        let valued = [
            ("ADMIN_API_PORT", &self.port),
            ("LOCAL_DEMO_RATE", &self.demo_rate),
            ("SNAPSHOT_THRESHOLD", &self.threshold),
            ("LOCAL_PRUNE_INTERVAL_SECS", &self.prune_every),
            ("LOCAL_ENV_FILE", &self.env_file),
        ];
        for (variable, value) in valued {
            if let Some(value) = value {
                overrides.insert(variable, value.clone());
            }
        }
        if self.no_demo {
            overrides.insert("LOCAL_DEMO", "0".to_owned());
        }
        overrides
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("local-stack").chain(list.iter().copied()))
    }

    #[test]
    fn flags_map_onto_their_variables() {
        let overrides = args(&[
            "--port",
            "0",
            "--no-demo",
            "--threshold=5",
            "--prune-every",
            "2",
        ])
        .unwrap()
        .overrides();
        assert_eq!(
            overrides.get("ADMIN_API_PORT").map(String::as_str),
            Some("0")
        );
        assert_eq!(overrides.get("LOCAL_DEMO").map(String::as_str), Some("0"));
        assert_eq!(
            overrides.get("SNAPSHOT_THRESHOLD").map(String::as_str),
            Some("5")
        );
        assert_eq!(
            overrides
                .get("LOCAL_PRUNE_INTERVAL_SECS")
                .map(String::as_str),
            Some("2")
        );
    }

    #[test]
    fn help_unknown_and_missing_values() {
        assert_eq!(
            args(&["--help"]).unwrap_err().kind(),
            ErrorKind::DisplayHelp
        );
        let unknown = args(&["--demo"]).unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::UnknownArgument);
        assert!(unknown.to_string().contains("--demo"), "{unknown}");
        let missing = args(&["--port"]).unwrap_err();
        assert!(missing.to_string().contains("--port"), "{missing}");
        assert!(args(&["--no-demo=1"]).is_err());
    }

    #[test]
    fn help_names_every_flag_and_its_variable() {
        let help = Args::command().render_long_help().to_string();
        for text in [
            "--port",
            "ADMIN_API_PORT",
            "--no-demo",
            "--demo-rate",
            "LOCAL_DEMO_RATE",
            "--threshold",
            "SNAPSHOT_THRESHOLD",
            "--prune-every",
            "LOCAL_PRUNE_INTERVAL_SECS",
            "--env-file",
            "LOCAL_ENV_FILE",
        ] {
            assert!(help.contains(text), "{text} missing from:\n{help}");
        }
    }
}
