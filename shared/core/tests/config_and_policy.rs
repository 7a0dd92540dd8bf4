//! Configuration from env (defaults, errors naming the variable) and snapshot policy decisions.

use std::collections::HashMap;

use snapshot_core::config::Config;
use snapshot_core::policy::{LastSnapshot, SnapshotPolicy, Strategy, TripReason};

fn config(vars: &[(&str, &str)]) -> Result<Config, snapshot_core::config::ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

const HOUR: i64 = 3_600_000;

#[test]
fn defaults_follow_the_spec() {
    let c = config(&[]).unwrap();
    assert_eq!(c.events_table, "inventory_events");
    assert_eq!(c.snapshots_table, "inventory_snapshots");
    assert_eq!(c.policies.default.strategy, Strategy::Hybrid);
    assert_eq!(c.policies.default.threshold, 100);
    assert_eq!(c.policies.default.interval_millis, 24 * HOUR);
    assert_eq!(c.max_snapshots_per_aggregate, 3);
    assert_eq!(c.snapshot_ttl_days, None);
    assert_eq!(c.policies.default.bytes_threshold, None, "no bytes budget");
}

#[test]
fn the_bytes_budget_is_read_from_env_and_per_type_overrides() {
    let c = config(&[
        ("SNAPSHOT_BYTES_THRESHOLD", "65536"),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"bytesThreshold":8192},"INVENTORY_ITEM":{"threshold":7}}"#,
        ),
    ])
    .unwrap();
    assert_eq!(c.policies.default.bytes_threshold, Some(65_536));
    assert_eq!(c.policies.for_type("WAREHOUSE").bytes_threshold, Some(8192));
    let item = c.policies.for_type("INVENTORY_ITEM");
    assert_eq!(
        (item.threshold, item.bytes_threshold),
        (7, Some(65_536)),
        "an override without the key keeps the default's budget"
    );

    // 0 turns it off, by default or for one type.
    let off = config(&[
        ("SNAPSHOT_BYTES_THRESHOLD", "0"),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"bytesThreshold":4096}}"#,
        ),
    ])
    .unwrap();
    assert_eq!(off.policies.default.bytes_threshold, None);
    assert_eq!(
        off.policies.for_type("WAREHOUSE").bytes_threshold,
        Some(4096)
    );
    let type_off = config(&[
        ("SNAPSHOT_BYTES_THRESHOLD", "4096"),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"bytesThreshold":0}}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        type_off.policies.for_type("WAREHOUSE").bytes_threshold,
        None
    );
    // The bounds themselves are accepted.
    for ok in ["1024", "104857600", " 2048 "] {
        assert!(config(&[("SNAPSHOT_BYTES_THRESHOLD", ok)]).is_ok(), "{ok}");
    }
}

#[test]
fn an_invalid_bytes_budget_fails_naming_the_variable_and_the_bounds() {
    for bad in ["1", "1023", "104857601", "-5", "64KB", "1.5"] {
        let err = config(&[("SNAPSHOT_BYTES_THRESHOLD", bad)]).expect_err(bad);
        assert_eq!(err.variable, "SNAPSHOT_BYTES_THRESHOLD", "{bad}");
        assert!(
            err.to_string().contains("SNAPSHOT_BYTES_THRESHOLD"),
            "{err}"
        );
    }
    let err = config(&[("SNAPSHOT_BYTES_THRESHOLD", "100")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("0 (no budget) or between 1024 and 104857600"),
        "{err}"
    );
    for bad in [
        r#"{"WAREHOUSE":{"bytesThreshold":10}}"#,
        r#"{"WAREHOUSE":{"bytesThreshold":104857601}}"#,
        r#"{"WAREHOUSE":{"bytesThreshold":-1}}"#,
        r#"{"WAREHOUSE":{"bytes_threshold":4096}}"#,
    ] {
        let err = config(&[("SNAPSHOT_POLICY_OVERRIDES", bad)]).expect_err(bad);
        assert_eq!(err.variable, "SNAPSHOT_POLICY_OVERRIDES", "{bad}");
    }
    let err = config(&[(
        "SNAPSHOT_POLICY_OVERRIDES",
        r#"{"WAREHOUSE":{"bytesThreshold":10}}"#,
    )])
    .unwrap_err();
    assert!(
        err.to_string().contains("WAREHOUSE.bytesThreshold"),
        "{err}"
    );
}

#[test]
fn variables_override_defaults_and_per_type_overrides_apply() {
    let c = config(&[
        ("EVENTS_TABLE", "ev"),
        ("SNAPSHOTS_TABLE", "sn"),
        ("SNAPSHOT_STRATEGY", "count"),
        ("SNAPSHOT_THRESHOLD", "25"),
        ("SNAPSHOT_INTERVAL_HOURS", "2"),
        ("MAX_SNAPSHOTS_PER_AGGREGATE", "5"),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"threshold":50,"strategy":"hybrid"}}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        (c.events_table.as_str(), c.snapshots_table.as_str()),
        ("ev", "sn")
    );
    assert_eq!(c.max_snapshots_per_aggregate, 5);
    let item = c.policies.for_type("INVENTORY_ITEM");
    assert_eq!(
        (item.strategy, item.threshold, item.interval_millis),
        (Strategy::Count, 25, 2 * HOUR)
    );
    let warehouse = c.policies.for_type("WAREHOUSE");
    assert_eq!(
        (
            warehouse.strategy,
            warehouse.threshold,
            warehouse.interval_millis
        ),
        (Strategy::Hybrid, 50, 2 * HOUR)
    );
}

#[test]
fn invalid_values_fail_naming_the_variable() {
    let cases = [
        ("SNAPSHOT_STRATEGY", "sometimes"),
        ("SNAPSHOT_THRESHOLD", "0"),
        ("SNAPSHOT_THRESHOLD", "ten"),
        ("SNAPSHOT_INTERVAL_HOURS", "-1"),
        ("MAX_SNAPSHOTS_PER_AGGREGATE", "0"),
        ("SNAPSHOT_POLICY_OVERRIDES", "{not json"),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"threshold":0}}"#,
        ),
        (
            "SNAPSHOT_POLICY_OVERRIDES",
            r#"{"WAREHOUSE":{"treshold":5}}"#,
        ),
        ("EVENTS_TABLE", " "),
    ];
    for (variable, value) in cases {
        let err = config(&[(variable, value)]).expect_err(variable);
        assert_eq!(err.variable, variable);
        assert!(err.to_string().contains(variable), "{err}");
    }
}

fn policy(strategy: Strategy) -> SnapshotPolicy {
    SnapshotPolicy {
        strategy,
        threshold: 10,
        interval_millis: HOUR,
        bytes_threshold: None,
    }
}

fn last(version: u64, timestamp: i64) -> Option<LastSnapshot> {
    Some(LastSnapshot { version, timestamp })
}

#[test]
fn count_trips_at_threshold_and_beyond_not_only_on_exact_multiples() {
    let p = policy(Strategy::Count);
    assert_eq!(p.decide(last(20, 0), 29, 0), None, "N-1 events since");
    assert_eq!(
        p.decide(last(20, 0), 30, 0),
        Some(TripReason::Count),
        "exactly N"
    );
    assert_eq!(
        p.decide(last(20, 0), 31, 0),
        Some(TripReason::Count),
        "N+1: a multi-event commit jumped over the multiple"
    );
    assert_eq!(p.decide(None, 9, 0), None);
    assert_eq!(p.decide(None, 10, 0), Some(TripReason::Count));
}

#[test]
fn time_trips_after_interval_only_with_new_events() {
    let p = policy(Strategy::Time);
    assert_eq!(p.decide(last(5, 0), 6, HOUR - 1), None);
    assert_eq!(p.decide(last(5, 0), 6, HOUR), Some(TripReason::Time));
    assert_eq!(p.decide(last(5, 0), 5, 10 * HOUR), None, "no new event");
    assert_eq!(
        p.decide(None, 1, 0),
        Some(TripReason::Time),
        "never snapshotted is overdue"
    );
}

#[test]
fn hybrid_trips_on_either_count_first() {
    let p = policy(Strategy::Hybrid);
    assert_eq!(p.decide(last(0, 0), 10, 0), Some(TripReason::Count));
    assert_eq!(p.decide(last(1, 0), 2, HOUR), Some(TripReason::Time));
    assert_eq!(p.decide(last(1, 0), 2, HOUR - 1), None);
    assert_eq!(
        p.decide(None, 1, 10 * HOUR),
        None,
        "a new aggregate waits for the count"
    );
    assert_eq!(p.decide(None, 10, 0), Some(TripReason::Count));
}

mod decode_limits {
    use snapshot_core::codec::{CodecError, Encoding, SnapshotCodec, StateBody};

    fn compressed(json: &[u8]) -> (SnapshotCodec, Vec<u8>, String) {
        let codec = SnapshotCodec::new(0);
        let encoded = codec.encode(json.to_vec()).unwrap();
        let StateBody::Binary(bytes) = encoded.body else {
            panic!("compressed")
        };
        (codec, bytes, encoded.checksum)
    }

    #[test]
    fn a_declared_size_over_the_cap_is_refused_before_decoding() {
        let (codec, bytes, checksum) = compressed(br#"{"a":1}"#);
        let body = StateBody::Binary(bytes);
        let huge = 200 * 1024 * 1024 * 1024_u64;
        assert_eq!(
            codec.decode(Encoding::JsonZstd, &body, huge, &checksum),
            Err(CodecError::DeclaredSizeTooLarge {
                declared: huge,
                limit: codec.max_state_bytes
            })
        );
    }

    #[test]
    fn a_frame_whose_size_disagrees_with_the_item_is_refused() {
        // The item claims 60 MB (under the cap); the frame says 7 bytes: refused before any
        // buffer of the claimed size exists.
        let (codec, bytes, checksum) = compressed(br#"{"a":1}"#);
        let claimed = 60 * 1024 * 1024;
        assert_eq!(
            codec.decode(
                Encoding::JsonZstd,
                &StateBody::Binary(bytes),
                claimed,
                &checksum
            ),
            Err(CodecError::SizeMismatch {
                declared: claimed,
                actual: 7
            })
        );
    }

    #[test]
    fn a_bomb_expanding_past_its_declared_size_is_refused() {
        // 64 MB of zeros compress to a few KB; declared as 1 KB, decoding stops at the bound.
        let zeros = vec![b' '; 64 * 1024 * 1024];
        let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
        let codec = SnapshotCodec::new(0);
        let result = codec.decode(Encoding::JsonZstd, &StateBody::Binary(bomb), 1024, "00");
        assert!(
            matches!(result, Err(CodecError::SizeMismatch { declared: 1024, .. })),
            "{result:?}"
        );
    }
}

fn with_budget(strategy: Strategy, budget: u64) -> SnapshotPolicy {
    SnapshotPolicy {
        bytes_threshold: Some(budget),
        ..policy(strategy)
    }
}

#[test]
fn the_bytes_budget_trips_exactly_at_the_budget_not_a_byte_under() {
    for strategy in [Strategy::Count, Strategy::Hybrid, Strategy::Time] {
        let p = with_budget(strategy, 4096);
        assert_eq!(
            p.decide_with_bytes(last(20, 0), 22, 0, 4095),
            None,
            "{strategy:?}: one byte under"
        );
        assert_eq!(
            p.decide_with_bytes(last(20, 0), 22, 0, 4096),
            Some(TripReason::Bytes),
            "{strategy:?}: exactly the budget"
        );
        assert_eq!(
            p.decide_with_bytes(last(20, 0), 22, 0, 1 << 20),
            Some(TripReason::Bytes),
            "{strategy:?}: past it"
        );
        assert_eq!(
            p.decide_with_bytes(last(22, 0), 22, 0, 1 << 20),
            None,
            "{strategy:?}: no new event, nothing to snapshot"
        );
    }
}

#[test]
fn the_bytes_budget_adds_to_the_strategy_and_the_count_keeps_its_reason() {
    let p = with_budget(Strategy::Count, 4096);
    assert_eq!(
        p.decide_with_bytes(last(20, 0), 30, 0, 10_000),
        Some(TripReason::Count),
        "both trip: the count's reason"
    );
    assert_eq!(p.decide_with_bytes(last(20, 0), 29, 0, 4095), None);
    // A never-snapshotted aggregate: the bytes of every event count.
    assert_eq!(
        p.decide_with_bytes(None, 3, 0, 4096),
        Some(TripReason::Bytes)
    );
    assert_eq!(
        with_budget(Strategy::Hybrid, 4096).decide_with_bytes(None, 3, 10 * HOUR, 4095),
        None,
        "hybrid: a new aggregate waits for the count or the budget"
    );
    assert_eq!(
        with_budget(Strategy::Hybrid, 4096).decide_with_bytes(last(1, 0), 2, HOUR, 4096),
        Some(TripReason::Time),
        "time before bytes"
    );
    // Without a budget the bytes never trip.
    assert_eq!(
        policy(Strategy::Count).decide_with_bytes(last(0, 0), 1, 0, u64::MAX),
        None
    );
    assert_eq!(TripReason::Bytes.as_str(), "threshold:bytes");
}
