//! What one invocation did, as CloudWatch Embedded Metric Format on stdout.

use std::time::Duration;

use snapshot_core::metrics::{MetricSet, Unit};

pub const FUNCTION: &str = "snapshotter";

pub const SNAPSHOTS_CREATED: &str = "SnapshotsCreated";
pub const SNAPSHOTS_ALREADY_PRESENT: &str = "SnapshotsAlreadyPresent";
pub const AGGREGATES_EVALUATED: &str = "AggregatesEvaluated";
pub const EVENTS_FOLDED: &str = "EventsFolded";
pub const EVENTS_FETCHED: &str = "EventsFetched";
pub const SNAPSHOT_BYTES: &str = "SnapshotBytes";
pub const FAILURES: &str = "Failures";
pub const DURATION: &str = "Duration";
pub const RECORDS_IGNORED: &str = "RecordsIgnored";
pub const POISON_RECORDS: &str = "PoisonRecords";
pub const SNAPSHOTS_INVALID: &str = "SnapshotsInvalid";
pub const DRIFT_CHECKS: &str = "DriftChecks";
/// Sampled snapshots that differed from a full replay (the template alarms on it).
pub const SNAPSHOT_DRIFT: &str = "SnapshotDrift";
pub const SNAPSHOTS_TOO_LARGE: &str = "SnapshotsTooLarge";
/// Aggregates skipped because one of their events has a type this version does not know (the
/// template alarms on it: deploy the code that knows it).
pub const UNKNOWN_EVENT_TYPES: &str = "UnknownEventTypes";

/// Counters of one batch; every one is emitted, zeros included, so dashboards see no gaps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub snapshots_created: u64,
    pub snapshots_already_present: u64,
    pub snapshots_too_large: u64,
    pub aggregates_evaluated: u64,
    pub events_folded: u64,
    pub events_fetched: u64,
    /// Stored bytes of the snapshots created.
    pub snapshot_bytes: u64,
    /// Aggregates that failed (poison records included) plus unattributable poison records.
    pub failures: u64,
    pub records_ignored: u64,
    pub poison_records: u64,
    pub snapshots_invalid: u64,
    /// Snapshots found wrong and marked invalid (their metric, `SnapshotsMarkedInvalid`, is
    /// emitted by each mark).
    pub snapshots_marked: u64,
    /// Written snapshots checked against a full replay.
    pub drift_checks: u64,
    /// Checked snapshots that differed (each marked invalid and audited).
    pub snapshot_drift: u64,
    /// Aggregates skipped for an event type this version does not know.
    pub unknown_event_types: u64,
}

impl Tally {
    pub fn metric_set(&self, duration: Duration) -> MetricSet {
        let mut set = MetricSet::new(FUNCTION);
        set.count(SNAPSHOTS_CREATED, self.snapshots_created);
        set.count(SNAPSHOTS_ALREADY_PRESENT, self.snapshots_already_present);
        set.count(SNAPSHOTS_TOO_LARGE, self.snapshots_too_large);
        set.count(AGGREGATES_EVALUATED, self.aggregates_evaluated);
        set.count(EVENTS_FOLDED, self.events_folded);
        set.count(EVENTS_FETCHED, self.events_fetched);
        set.add(SNAPSHOT_BYTES, self.snapshot_bytes as f64, Unit::Bytes);
        set.count(FAILURES, self.failures);
        set.count(RECORDS_IGNORED, self.records_ignored);
        set.count(POISON_RECORDS, self.poison_records);
        set.count(SNAPSHOTS_INVALID, self.snapshots_invalid);
        set.count(DRIFT_CHECKS, self.drift_checks);
        set.count(SNAPSHOT_DRIFT, self.snapshot_drift);
        set.count(UNKNOWN_EVENT_TYPES, self.unknown_event_types);
        set.add(
            DURATION,
            duration.as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_emitted_with_its_unit() {
        let tally = Tally {
            snapshots_created: 2,
            snapshot_bytes: 300,
            ..Tally::default()
        };
        let emf = tally.metric_set(Duration::from_millis(12)).to_emf();
        let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in [
            SNAPSHOTS_CREATED,
            SNAPSHOTS_ALREADY_PRESENT,
            AGGREGATES_EVALUATED,
            EVENTS_FOLDED,
            EVENTS_FETCHED,
            SNAPSHOT_BYTES,
            FAILURES,
            DURATION,
            RECORDS_IGNORED,
            POISON_RECORDS,
            SNAPSHOTS_INVALID,
            SNAPSHOT_DRIFT,
            UNKNOWN_EVENT_TYPES,
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert_eq!(emf["Function"], "snapshotter");
        assert_eq!(emf[SNAPSHOTS_CREATED], 2.0);
        assert_eq!(emf[SNAPSHOT_BYTES], 300.0);
        assert_eq!(emf[DURATION], 12.0);
    }
}
