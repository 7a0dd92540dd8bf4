//! Settings of the local stack: those of each function and of the stream runner (same
//! variables as in AWS), local defaults that make activity visible quickly, and the stack's
//! own `LOCAL_*` variables. Command-line flags map onto the same variables (see [`crate::args`]).

use std::path::PathBuf;
use std::time::Duration;

use admin_api::AccessPolicy;
use pruner::PrunerSettings;
use snapshot_core::config::{ConfigError, Env};
use stream_runner::RunnerSettings;

use crate::demo::DemoSettings;

/// Defaults that differ from AWS's: a low threshold so snapshots appear while you watch, and
/// a quicker stream poll.
pub const LOCAL_DEFAULTS: &[(&str, &str)] = &[
    ("SNAPSHOT_THRESHOLD", "10"),
    ("STREAM_POLL_INTERVAL_MS", "500"),
    // Large states go to the emulator's S3, as they would in AWS.
    ("SNAPSHOT_BUCKET", "inventory-snapshot-states"),
    // Check 1 in 10 new snapshots against a full replay.
    ("SNAPSHOT_DRIFT_SAMPLE", "10"),
];

/// Where the URL and the token are written for scripts (relative to the working directory).
pub const DEFAULT_ENV_FILE: &str = ".local/admin-api.env";

#[derive(Debug, Clone)]
pub struct StackSettings {
    /// The snapshotter's (and the shared) settings: tables, policies, codec.
    pub snapshotter: snapshotter::Settings,
    /// The local event source mapping.
    pub runner: RunnerSettings,
    pub pruner: PrunerSettings,
    /// Who else counts as an admin (the dev token always does).
    pub access: AccessPolicy,
    /// `ADMIN_API_PORT` (default 3000; 0 picks a free one).
    pub port: u16,
    /// The port was set explicitly: fail if taken instead of picking a free one.
    pub port_required: bool,
    /// `ADMIN_DEV_TOKEN`; generated afresh when unset.
    pub dev_token: Option<String>,
    /// `LOCAL_PRUNE_INTERVAL_SECS` (default 30): time between pruning runs.
    pub prune_interval: Duration,
    /// `LOCAL_TOTALS_INTERVAL_SECS` (default 10): time between totals lines.
    pub totals_interval: Duration,
    /// `LOCAL_DEMO` (default on) with `LOCAL_DEMO_*`; `None` when off.
    pub demo: Option<DemoSettings>,
    /// `LOCAL_ENV_FILE` (default `.local/admin-api.env`).
    pub env_file: PathBuf,
}

impl StackSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |name: &str| {
            lookup(name).or_else(|| {
                LOCAL_DEFAULTS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let env = Env(&lookup);
        let port = env.number("ADMIN_API_PORT", 3000, 0, u64::from(u16::MAX))?;
        let demo_on = flag(&env, "LOCAL_DEMO", true)?;
        let demo = if demo_on {
            Some(DemoSettings {
                rate_per_sec: whole(env.number("LOCAL_DEMO_RATE", 5, 1, 200)?),
                items: whole(env.number("LOCAL_DEMO_ITEMS", 4, 1, 100)?),
                warehouses: whole(env.number("LOCAL_DEMO_WAREHOUSES", 2, 0, 100)?),
            })
        } else {
            None
        };
        Ok(Self {
            snapshotter: snapshotter::Settings::from_lookup(lookup)?,
            runner: RunnerSettings::from_lookup(lookup)?,
            pruner: PrunerSettings::from_lookup(lookup)?,
            access: AccessPolicy::from_lookup(lookup)?,
            port: u16::try_from(port).unwrap_or(3000),
            port_required: env.optional("ADMIN_API_PORT").is_some(),
            dev_token: env.optional("ADMIN_DEV_TOKEN"),
            prune_interval: Duration::from_secs(env.number(
                "LOCAL_PRUNE_INTERVAL_SECS",
                30,
                1,
                86_400,
            )?),
            totals_interval: Duration::from_secs(env.number(
                "LOCAL_TOTALS_INTERVAL_SECS",
                10,
                1,
                3_600,
            )?),
            demo,
            env_file: env
                .optional("LOCAL_ENV_FILE")
                .map_or_else(|| PathBuf::from(DEFAULT_ENV_FILE), PathBuf::from),
        })
    }
}

fn whole(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn flag<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(raw) = env.optional(variable) else {
        return Ok(default);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            variable,
            value: raw,
            reason: "must be 1 or 0 (true/false, on/off)".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<StackSettings, ConfigError> {
        StackSettings::from_lookup(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn local_defaults_make_snapshots_appear_quickly() {
        let s = from(&[]).unwrap();
        assert_eq!(s.snapshotter.config.policies.default.threshold, 10);
        assert_eq!(s.runner.poll_interval, Duration::from_millis(500));
        assert_eq!(s.snapshotter.config.events_table, "inventory_events");
        assert_eq!(s.snapshotter.config.snapshots_table, "inventory_snapshots");
        assert_eq!(s.port, 3000);
        assert!(!s.port_required);
        assert_eq!(s.dev_token, None);
        assert_eq!(s.prune_interval, Duration::from_secs(30));
        let demo = s.demo.unwrap();
        assert_eq!((demo.rate_per_sec, demo.items, demo.warehouses), (5, 4, 2));
        assert_eq!(s.env_file, PathBuf::from(DEFAULT_ENV_FILE));
    }

    #[test]
    fn the_environment_overrides_the_local_defaults() {
        let s = from(&[
            ("SNAPSHOT_THRESHOLD", "100"),
            ("ADMIN_API_PORT", "8080"),
            ("LOCAL_DEMO", "off"),
            ("PRUNE_SCAN_SEGMENTS", "2"),
        ])
        .unwrap();
        assert_eq!(s.snapshotter.config.policies.default.threshold, 100);
        assert_eq!((s.port, s.port_required), (8080, true));
        assert!(s.demo.is_none());
        assert_eq!(s.pruner.segments, 2);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, bad) in [
            ("LOCAL_DEMO", "maybe"),
            ("LOCAL_DEMO_RATE", "0"),
            ("LOCAL_PRUNE_INTERVAL_SECS", "soon"),
            ("ADMIN_API_PORT", "70000"),
            ("SNAPSHOT_THRESHOLD", "0"),
            ("STREAM_BATCH_SIZE", "0"),
        ] {
            let err = from(&[(variable, bad)]).unwrap_err();
            assert_eq!(err.variable, variable, "{bad}");
        }
    }
}
