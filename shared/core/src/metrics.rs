//! CloudWatch Embedded Metric Format: one JSON document per invocation on stdout, which
//! CloudWatch turns into metrics without any API call.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Value};

use crate::clock::now_millis;

/// CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "InventorySnapshots";

/// Unit of a metric value, as CloudWatch names it in the EMF document (it decides how the
/// console labels and converts the statistic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (events, snapshots, requests); sums across invocations.
    Count,
    /// A size in bytes (a snapshot's stored state).
    Bytes,
    /// A duration in milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Metrics of one invocation, all under one `Function` dimension.
#[derive(Debug, Clone)]
pub struct MetricSet {
    function: String,
    values: BTreeMap<&'static str, (f64, Unit)>,
}

impl MetricSet {
    /// No metrics yet, reported under the `Function` dimension `function` (`snapshotter`,
    /// `pruner`, `admin-api` or an application's name).
    pub fn new(function: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            values: BTreeMap::new(),
        }
    }

    /// Adds to a metric (created at 0).
    pub fn add(&mut self, name: &'static str, value: f64, unit: Unit) {
        self.values.entry(name).or_insert((0.0, unit)).0 += value;
    }

    /// Adds `value` to the count metric `name` (created at 0; [`Unit::Count`]).
    pub fn count(&mut self, name: &'static str, value: u64) {
        self.add(name, value as f64, Unit::Count);
    }

    /// The value of metric `name` so far; `None` when nothing was added to it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).map(|(v, _)| *v)
    }

    /// The metrics as one Embedded Metric Format document, timestamped now: the line
    /// [`MetricSet::flush`] prints, which CloudWatch Logs turns into metrics.
    pub fn to_emf(&self) -> Value {
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, (_, unit))| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut doc = json!({
            "_aws": {
                "Timestamp": now_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            },
            "Function": self.function,
        });
        if let Some(map) = doc.as_object_mut() {
            for (name, (value, _)) in &self.values {
                map.insert((*name).to_owned(), json!(value));
            }
        }
        doc
    }

    /// Writes the EMF document as one line on stdout.
    pub fn flush(&self) {
        let line = self.to_emf().to_string();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}
