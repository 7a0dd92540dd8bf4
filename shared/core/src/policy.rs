//! When to snapshot (docs/policies.md): by event count, by time, or either (hybrid), with per-type
//! overrides; and, under any of them, when the stored bytes of the events since the last
//! snapshot reach a budget ([`SnapshotPolicy::bytes_threshold`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// Which rule trips a snapshot (`SNAPSHOT_STRATEGY`, or an override's `strategy`); see
/// [`SnapshotPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// `count`: [`SnapshotPolicy::threshold`] events since the last snapshot.
    Count,
    /// By time since the last snapshot.
    Time,
    /// `hybrid` (the default): the count rule, or the time rule for an aggregate that has a
    /// snapshot, whichever trips first.
    Hybrid,
}

impl Strategy {
    /// Parses `count`, `time` or `hybrid`, in any case and with surrounding blanks; `None`
    /// for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "count" => Some(Self::Count),
            "time" => Some(Self::Time),
            "hybrid" => Some(Self::Hybrid),
            _ => None,
        }
    }
}

/// Why a policy tripped; stored as the snapshot's `metadata.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripReason {
    /// The count rule: at least `threshold` events since the last snapshot.
    Count,
    /// By time since the last snapshot.
    Time,
    /// The bytes budget: the events since the last snapshot weigh at least
    /// [`SnapshotPolicy::bytes_threshold`] stored bytes.
    Bytes,
}

impl TripReason {
    /// The snapshot's `metadata.reason`: `threshold:count`, `threshold:time` or
    /// `threshold:bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "threshold:count",
            Self::Time => "threshold:time",
            Self::Bytes => "threshold:bytes",
        }
    }
}

impl fmt::Display for TripReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When one aggregate type gets a snapshot: the rule and its two bounds
/// ([`SnapshotPolicy::decide`]), and the bytes budget that trips it under any rule
/// ([`SnapshotPolicy::decide_with_bytes`]). The default is hybrid, 100 events or 24 hours, no
/// budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Which rule decides.
    pub strategy: Strategy,
    /// Events since the last snapshot that trip the count policy (>= 1).
    pub threshold: u64,
    /// Interval after which the time policy trips (> 0).
    pub interval_millis: i64,
    /// Stored bytes of the events since the last snapshot that trip a snapshot whatever the
    /// strategy (`None`: no budget). Not a strategy of its own: the count stays in force with
    /// it, so the events after a snapshot stay within the `threshold + 1` a load reads in its
    /// one request, and a budget bounds their bytes too (crate::stored_size).
    pub bytes_threshold: Option<u64>,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            strategy: Strategy::Hybrid,
            threshold: 100,
            interval_millis: 24 * 3_600_000,
            bytes_threshold: None,
        }
    }
}

/// The newest snapshot as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastSnapshot {
    /// The aggregate version (sequence of the last event folded in).
    pub version: u64,
    /// Epoch milliseconds.
    pub timestamp: i64,
}

impl SnapshotPolicy {
    /// Decides whether an aggregate at `current_version` needs a snapshot now.
    ///
    /// Count trips when `current - last >= threshold` (not on exact multiples, which misses).
    /// Time trips when at least one event is new and the interval has passed since the last
    /// snapshot. An aggregate that has none has no reference point: under `time` alone it is
    /// overdue (nothing else would ever snapshot it); under `hybrid` the count rule decides, so
    /// new aggregates do not get a snapshot at version 1.
    pub fn decide(
        &self,
        last: Option<LastSnapshot>,
        current_version: u64,
        now_millis: i64,
    ) -> Option<TripReason> {
        let last_version = last.map_or(0, |s| s.version);
        if current_version <= last_version {
            return None;
        }
        let since = current_version - last_version;
        let count = since >= self.threshold;
        let interval_passed =
            |s: LastSnapshot| now_millis.saturating_sub(s.timestamp) >= self.interval_millis;
        match self.strategy {
            Strategy::Count if count => Some(TripReason::Count),
            Strategy::Time if last.is_none_or(interval_passed) => Some(TripReason::Time),
            Strategy::Hybrid if count => Some(TripReason::Count),
            Strategy::Hybrid if last.is_some_and(interval_passed) => Some(TripReason::Time),
            _ => None,
        }
    }

    /// [`SnapshotPolicy::decide`] with the bytes budget: `tail_bytes` are the stored bytes of
    /// the events after the last snapshot through `current_version` (all of them when there
    /// is none). The count and time rules come first (their reason is kept when both trip);
    /// the budget trips when at least one event is new and `tail_bytes >= bytes_threshold`.
    /// A caller that has not measured the bytes asks [`SnapshotPolicy::decide`] first, and
    /// measures only when it says no and a budget is set.
    pub fn decide_with_bytes(
        &self,
        last: Option<LastSnapshot>,
        current_version: u64,
        now_millis: i64,
        tail_bytes: u64,
    ) -> Option<TripReason> {
        self.decide(last, current_version, now_millis).or_else(|| {
            let budget = self.bytes_threshold?;
            let new_events = current_version > last.map_or(0, |s| s.version);
            (new_events && tail_bytes >= budget).then_some(TripReason::Bytes)
        })
    }
}

/// A per-type override: any field left out keeps the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyOverride {
    /// Which rule decides.
    pub strategy: Option<Strategy>,
    /// Events since the last snapshot that trip the count rule.
    pub threshold: Option<u64>,
    /// Hours since the last snapshot that trip the time rule.
    pub interval_hours: Option<u64>,
    /// Stored bytes since the last snapshot that trip a snapshot (`0`: no budget for this
    /// type, whatever the default).
    pub bytes_threshold: Option<u64>,
}

/// The default policy plus overrides by `aggregateType`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySet {
    /// The policy of types without an override.
    pub default: SnapshotPolicy,
    /// Policies by aggregate type.
    pub overrides: BTreeMap<String, SnapshotPolicy>,
}

impl PolicySet {
    /// The policy of `aggregate_type`: its override, else the default (an unknown type gets
    /// the default too).
    pub fn for_type(&self, aggregate_type: &str) -> &SnapshotPolicy {
        self.overrides.get(aggregate_type).unwrap_or(&self.default)
    }
}
