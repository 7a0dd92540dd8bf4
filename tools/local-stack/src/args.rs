//! Command-line flags. Each maps onto the variable of the same setting, so flags and
//! environment are validated in one place ([`crate::StackSettings`]).

use std::collections::BTreeMap;

pub const USAGE: &str = "\
local-stack: the whole snapshot service in one local process, against AWS_ENDPOINT_URL

usage: local-stack [--port N] [--no-demo] [--demo-rate N] [--threshold N]
                   [--prune-every SECS] [--env-file PATH]

  --port N            admin API port on 127.0.0.1 (ADMIN_API_PORT; default 3000, a free
                      one if 3000 is taken; 0 = any free port)
  --no-demo           no demo traffic (LOCAL_DEMO=0)
  --demo-rate N       demo commands per second (LOCAL_DEMO_RATE, default 5)
  --threshold N       events between snapshots (SNAPSHOT_THRESHOLD, default 10 locally)
  --prune-every SECS  time between pruning runs (LOCAL_PRUNE_INTERVAL_SECS, default 30)
  --env-file PATH     where the URL and dev token are written (LOCAL_ENV_FILE,
                      default .local/admin-api.env)
  -h, --help          this text

Every function setting (EVENTS_TABLE, SNAPSHOT_*, MAX_SNAPSHOTS_PER_AGGREGATE, STREAM_*,
PRUNE_*, ADMIN_*) is read from the environment as in AWS. Ctrl-C stops everything.";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run, with these variables overriding the environment.
    Run(BTreeMap<&'static str, String>),
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}\n\n{USAGE}")]
pub struct ArgsError(String);

const VALUED: &[(&str, &str)] = &[
    ("--port", "ADMIN_API_PORT"),
    ("--demo-rate", "LOCAL_DEMO_RATE"),
    ("--threshold", "SNAPSHOT_THRESHOLD"),
    ("--prune-every", "LOCAL_PRUNE_INTERVAL_SECS"),
    ("--env-file", "LOCAL_ENV_FILE"),
];

/// Parses the arguments after the program name (`--flag value` or `--flag=value`).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, ArgsError> {
    let mut overrides = BTreeMap::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--no-demo" if inline.is_none() => {
                overrides.insert("LOCAL_DEMO", "0".to_owned());
            }
            _ => {
                let Some((_, variable)) = VALUED.iter().find(|(flag, _)| *flag == name) else {
                    return Err(ArgsError(format!("unknown argument `{arg}`")));
                };
                let value = match inline {
                    Some(value) => value,
                    None => args
                        .next()
                        .ok_or_else(|| ArgsError(format!("{name} needs a value")))?,
                };
                overrides.insert(*variable, value);
            }
        }
    }
    Ok(Command::Run(overrides))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, ArgsError> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_map_onto_their_variables() {
        let Command::Run(overrides) = args(&[
            "--port",
            "0",
            "--no-demo",
            "--threshold=5",
            "--prune-every",
            "2",
        ])
        .unwrap() else {
            panic!("expected a run");
        };
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
        assert_eq!(args(&["--help"]).unwrap(), Command::Help);
        assert!(args(&["--demo"])
            .unwrap_err()
            .to_string()
            .contains("unknown argument `--demo`"));
        assert!(args(&["--port"])
            .unwrap_err()
            .to_string()
            .contains("--port needs a value"));
        assert!(args(&["--no-demo=1"]).is_err());
    }
}
