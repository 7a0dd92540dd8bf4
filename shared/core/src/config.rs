//! Configuration from environment variables (docs/policies.md#configuration), validated at
//! start-up: a bad value fails the cold start with an error naming the variable.

use std::collections::BTreeMap;

use crate::codec::{SnapshotCodec, MAX_STATE_BYTES};
use crate::mac::UnsignedPolicy;
use crate::policy::{PolicyOverride, PolicySet, SnapshotPolicy, Strategy};

const MAX_THRESHOLD: u64 = 1_000_000;
const MAX_INTERVAL_HOURS: u64 = 24 * 366;
/// The smallest bytes budget: below one 1 KB event, every event would trip it (a count
/// threshold of 1 says that plainly).
pub const MIN_BYTES_THRESHOLD: u64 = 1024;
/// The largest bytes budget, 100 MiB: a tail a load reads in 1 MB pages, a hundred of them.
pub const MAX_BYTES_THRESHOLD: u64 = 100 * 1024 * 1024;

/// A setting that is missing or out of range: the function's cold start fails with it, naming
/// the variable, rather than run with a guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration {variable}={value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault (`SNAPSHOT_THRESHOLD`, …).
    pub variable: &'static str,
    /// Its value as set (empty when it is missing).
    pub value: String,
    /// Why, in words that name what is wrong.
    pub reason: String,
}

/// Settings every function shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name of the event table.
    pub events_table: String,
    /// Name of the snapshot table.
    pub snapshots_table: String,
    /// The snapshot policies, by aggregate type.
    pub policies: PolicySet,
    /// Snapshots kept per aggregate by the pruner.
    pub max_snapshots_per_aggregate: usize,
    /// How states are encoded.
    pub codec: SnapshotCodec,
    /// Days after which snapshots expire through the table's TTL (`None`: never).
    pub snapshot_ttl_days: Option<u64>,
    /// `SNAPSHOT_BUCKET`: where states too large for one item go (`None`: they are skipped).
    pub state_bucket: Option<String>,
    /// `SNAPSHOT_BUCKET_KMS_KEY_ID`: the KMS key of offloaded states (`None`: the bucket's
    /// default encryption key).
    pub state_kms_key_id: Option<String>,
    /// `SNAPSHOT_DRIFT_SAMPLE`: the snapshotter checks 1 in N snapshots it writes against a
    /// full replay (`0`: never).
    pub drift_sample: u64,
    /// `BACKFILL_READ_BUDGET`: events one backfill run reads at most.
    pub backfill_read_budget: u64,
}

/// Reads variables through `lookup`, so tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The variable's value, `default` when it is unset; set but blank is an error (a template
    /// that sets an empty value means to set something).
    pub fn string(&self, variable: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.0(variable).unwrap_or_else(|| default.to_owned());
        if value.trim().is_empty() {
            return Err(error(variable, &value, "must not be empty"));
        }
        Ok(value)
    }

    /// The variable's value; `None` when it is unset or blank (a template's empty default
    /// means "not configured").
    pub fn optional(&self, variable: &'static str) -> Option<String> {
        self.0(variable).filter(|v| !v.trim().is_empty())
    }

    /// An integer in `min..=max`.
    pub fn number(
        &self,
        variable: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.optional(variable) else {
            return Ok(default);
        };
        let value: u64 = raw
            .trim()
            .parse()
            .map_err(|_| error(variable, &raw, "must be a whole number"))?;
        if value < min || value > max {
            return Err(error(
                variable,
                &raw,
                &format!("must be between {min} and {max}"),
            ));
        }
        Ok(value)
    }
}

fn error(variable: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Config {
    /// The settings of this process's environment (docs/policies.md#configuration); the
    /// first variable out of range fails it.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Config::from_env`] with the variables read through `lookup` (tests, and the local
    /// stack's settings), each unset one at its default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let strategy_raw = env.string("SNAPSHOT_STRATEGY", "hybrid")?;
        let strategy = Strategy::parse(&strategy_raw).ok_or_else(|| {
            error(
                "SNAPSHOT_STRATEGY",
                &strategy_raw,
                "must be one of count, time, hybrid",
            )
        })?;
        let threshold = env.number("SNAPSHOT_THRESHOLD", 100, 1, MAX_THRESHOLD)?;
        let interval_hours = env.number("SNAPSHOT_INTERVAL_HOURS", 24, 1, MAX_INTERVAL_HOURS)?;
        let bytes_threshold = bytes_budget(&env)?;
        let default = SnapshotPolicy {
            strategy,
            threshold,
            interval_millis: hours_to_millis(interval_hours),
            bytes_threshold,
        };
        let overrides = match env.optional("SNAPSHOT_POLICY_OVERRIDES") {
            Some(raw) => parse_overrides(&raw, default)?,
            None => BTreeMap::new(),
        };
        let max_snapshots = env.number("MAX_SNAPSHOTS_PER_AGGREGATE", 3, 1, 1000)?;
        let compress_above =
            env.number("SNAPSHOT_COMPRESSION_THRESHOLD_BYTES", 8192, 0, 400 * 1024)?;
        let ttl_days = env.number("SNAPSHOT_TTL_DAYS", 0, 0, 36_500)?;
        let state_bucket = env.optional("SNAPSHOT_BUCKET").map(|b| b.trim().to_owned());
        if let Some(bucket) = &state_bucket {
            check_bucket_name(bucket)?;
        }
        let max_state_bytes = env.number(
            "SNAPSHOT_MAX_STATE_BYTES",
            MAX_STATE_BYTES as u64,
            1024 * 1024,
            1024 * 1024 * 1024,
        )?;
        let mut codec = SnapshotCodec::new(compress_above as usize);
        codec.offload = state_bucket.is_some();
        codec.max_state_bytes = usize::try_from(max_state_bytes).unwrap_or(MAX_STATE_BYTES);
        let unsigned = unsigned_policy(&env)?;
        codec.authenticator = codec.authenticator.with_unsigned(unsigned);
        Ok(Self {
            events_table: env.string("EVENTS_TABLE", "inventory_events")?,
            snapshots_table: env.string("SNAPSHOTS_TABLE", "inventory_snapshots")?,
            policies: PolicySet { default, overrides },
            max_snapshots_per_aggregate: max_snapshots as usize,
            codec,
            snapshot_ttl_days: (ttl_days > 0).then_some(ttl_days),
            state_bucket,
            state_kms_key_id: env
                .optional("SNAPSHOT_BUCKET_KMS_KEY_ID")
                .map(|k| k.trim().to_owned()),
            drift_sample: env.number("SNAPSHOT_DRIFT_SAMPLE", 0, 0, 1_000_000)?,
            backfill_read_budget: env.number("BACKFILL_READ_BUDGET", 100_000, 1, 1_000_000_000)?,
        })
    }

    /// `expiresAt` for a snapshot created at `now_millis` (epoch seconds, as DynamoDB TTL wants).
    pub fn expires_at(&self, now_millis: i64) -> Option<i64> {
        self.snapshot_ttl_days
            .map(|days| now_millis / 1000 + i64::try_from(days * 86_400).unwrap_or(i64::MAX))
    }
}

/// S3 bucket naming rules (3-63 characters of lower-case letters, digits, `.` and `-`,
/// starting and ending with a letter or digit), checked at start-up rather than at the first
/// large snapshot.
fn check_bucket_name(bucket: &str) -> Result<(), ConfigError> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (3..=63).contains(&bucket.len())
        && ok_chars
        && ends(bucket.bytes().next())
        && ends(bucket.bytes().last())
    {
        Ok(())
    } else {
        Err(error(
            "SNAPSHOT_BUCKET",
            bucket,
            "must be an S3 bucket name: 3-63 lower-case letters, digits, dots or hyphens",
        ))
    }
}

/// `SNAPSHOT_MAC_GRACE_UNTIL` (RFC 3339): until then, snapshots without a MAC (written before
/// snapshots were signed) are still used; unset, they never are.
fn unsigned_policy<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<UnsignedPolicy, ConfigError> {
    let Some(raw) = env.optional("SNAPSHOT_MAC_GRACE_UNTIL") else {
        return Ok(UnsignedPolicy::Refuse);
    };
    let until = chrono::DateTime::parse_from_rfc3339(raw.trim()).map_err(|e| {
        error(
            "SNAPSHOT_MAC_GRACE_UNTIL",
            &raw,
            &format!("must be an RFC 3339 time such as 2027-01-31T00:00:00Z: {e}"),
        )
    })?;
    Ok(UnsignedPolicy::AcceptUntil(until.timestamp_millis()))
}

/// `SNAPSHOT_BYTES_THRESHOLD`: `0` or unset is no budget, else a budget in
/// [`MIN_BYTES_THRESHOLD`]`..=`[`MAX_BYTES_THRESHOLD`].
fn bytes_budget<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<u64>, ConfigError> {
    // The literal name in the read, so the template check (tests/src/env_reads.rs) sees it.
    let budget = env.number("SNAPSHOT_BYTES_THRESHOLD", 0, 0, MAX_BYTES_THRESHOLD)?;
    match budget {
        0 => Ok(None),
        b if b < MIN_BYTES_THRESHOLD => Err(error(
            "SNAPSHOT_BYTES_THRESHOLD",
            &b.to_string(),
            &format!(
                "must be 0 (no budget) or between {MIN_BYTES_THRESHOLD} and {MAX_BYTES_THRESHOLD}"
            ),
        )),
        b => Ok(Some(b)),
    }
}

fn hours_to_millis(hours: u64) -> i64 {
    i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX)
}

fn parse_overrides(
    raw: &str,
    default: SnapshotPolicy,
) -> Result<BTreeMap<String, SnapshotPolicy>, ConfigError> {
    const VAR: &str = "SNAPSHOT_POLICY_OVERRIDES";
    let parsed: BTreeMap<String, PolicyOverride> = serde_json::from_str(raw).map_err(|e| {
        error(
            VAR,
            raw,
            &format!("must be a JSON object of per-type policies: {e}"),
        )
    })?;
    parsed
        .into_iter()
        .map(|(aggregate_type, o)| {
            let supported = crate::registry::Registry::builtin().type_names();
            if !supported.contains(&aggregate_type.as_str()) {
                return Err(error(
                    VAR,
                    raw,
                    &format!(
                        "`{aggregate_type}` is not a registered aggregateType (supported: {})",
                        supported.join(", ")
                    ),
                ));
            }
            if o.threshold
                .is_some_and(|t| !(1..=MAX_THRESHOLD).contains(&t))
            {
                return Err(error(
                    VAR,
                    raw,
                    &format!("{aggregate_type}.threshold must be between 1 and {MAX_THRESHOLD}"),
                ));
            }
            if o.interval_hours
                .is_some_and(|h| !(1..=MAX_INTERVAL_HOURS).contains(&h))
            {
                return Err(error(
                    VAR,
                    raw,
                    &format!(
                        "{aggregate_type}.intervalHours must be between 1 and {MAX_INTERVAL_HOURS}"
                    ),
                ));
            }
            if o.bytes_threshold.is_some_and(|b| {
                b != 0 && !(MIN_BYTES_THRESHOLD..=MAX_BYTES_THRESHOLD).contains(&b)
            }) {
                return Err(error(
                    VAR,
                    raw,
                    &format!(
                        "{aggregate_type}.bytesThreshold must be 0 (no budget) or between \
                         {MIN_BYTES_THRESHOLD} and {MAX_BYTES_THRESHOLD}"
                    ),
                ));
            }
            let policy = SnapshotPolicy {
                strategy: o.strategy.unwrap_or(default.strategy),
                threshold: o.threshold.unwrap_or(default.threshold),
                interval_millis: o
                    .interval_hours
                    .map_or(default.interval_millis, hours_to_millis),
                bytes_threshold: o
                    .bytes_threshold
                    .map_or(default.bytes_threshold, |b| (b > 0).then_some(b)),
            };
            Ok((aggregate_type, policy))
        })
        .collect()
}
