//! The snapshotter's configuration: the shared settings plus its own, validated at start-up.

use snapshot_core::config::{Config, ConfigError, Env};

/// Aggregates of one batch processed at the same time, by default.
pub const DEFAULT_MAX_CONCURRENCY: u64 = 16;
/// Upper bound: each aggregate in flight holds a state and a few open requests.
pub const MAX_MAX_CONCURRENCY: u64 = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub config: Config,
    /// `SNAPSHOT_MAX_CONCURRENCY`: aggregates of one batch processed concurrently.
    pub max_concurrency: usize,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let config = Config::from_lookup(&lookup)?;
        let max_concurrency = Env(&lookup).number(
            "SNAPSHOT_MAX_CONCURRENCY",
            DEFAULT_MAX_CONCURRENCY,
            1,
            MAX_MAX_CONCURRENCY,
        )?;
        Ok(Self {
            config,
            max_concurrency: usize::try_from(max_concurrency).unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn max_concurrency_defaults_to_16() {
        assert_eq!(settings(&[]).unwrap().max_concurrency, 16);
    }

    #[test]
    fn max_concurrency_is_read_from_the_environment() {
        let s = settings(&[("SNAPSHOT_MAX_CONCURRENCY", "4")]).unwrap();
        assert_eq!(s.max_concurrency, 4);
    }

    #[test]
    fn invalid_max_concurrency_names_the_variable() {
        for bad in ["0", "257", "many"] {
            let err = settings(&[("SNAPSHOT_MAX_CONCURRENCY", bad)]).unwrap_err();
            assert_eq!(err.variable, "SNAPSHOT_MAX_CONCURRENCY", "value {bad}");
        }
    }

    #[test]
    fn shared_settings_are_validated_too() {
        let err = settings(&[("SNAPSHOT_THRESHOLD", "0")]).unwrap_err();
        assert_eq!(err.variable, "SNAPSHOT_THRESHOLD");
    }
}
