//! The invocation payload: a scheduled EventBridge event (options in `detail`) or the options
//! object itself. Every field is checked; an unknown one is an error, so a misspelt `dryRun`
//! can never turn into a real deletion run.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};
use snapshot_core::pruning::{validate_aggregate_id, PruneError};

/// Largest `maxSnapshots` an invocation may ask for (as `MAX_SNAPSHOTS_PER_AGGREGATE`).
pub const MAX_KEEP: u64 = 1000;

/// What one invocation asks for; absent fields take the configured defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneInput {
    pub dry_run: bool,
    pub aggregate_id: Option<String>,
    pub max_snapshots: Option<usize>,
}

/// Why the payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pruner input: {0}")]
pub struct InputError(pub String);

fn refuse(reason: impl Into<String>) -> InputError {
    InputError(reason.into())
}

/// Reads the options of an invocation payload.
pub fn parse_input(payload: Value) -> Result<PruneInput, InputError> {
    let options = match payload {
        Value::Object(ref map) if map.contains_key("detail-type") => {
            let event: EventBridgeEvent<Value> = serde_json::from_value(payload)
                .map_err(|e| refuse(format!("not a valid EventBridge event: {e}")))?;
            event.detail
        }
        other => other,
    };
    match options {
        Value::Null => Ok(PruneInput::default()),
        Value::Object(map) => parse_options(map),
        other => Err(refuse(format!(
            "options must be a JSON object {{dryRun, aggregateId, maxSnapshots}}, got {}",
            kind(&other)
        ))),
    }
}

fn parse_options(map: Map<String, Value>) -> Result<PruneInput, InputError> {
    let mut input = PruneInput::default();
    for (field, value) in map {
        match field.as_str() {
            "dryRun" => {
                input.dry_run = value
                    .as_bool()
                    .ok_or_else(|| refuse(format!("dryRun must be true or false, got {value}")))?;
            }
            "aggregateId" => {
                let id = value.as_str().ok_or_else(|| {
                    refuse(format!(
                        "aggregateId must be a string, got {}",
                        kind(&value)
                    ))
                })?;
                validate_aggregate_id(id).map_err(|e| match e {
                    PruneError::InvalidRequest { field, reason } => {
                        refuse(format!("{field} {reason}"))
                    }
                    other @ PruneError::Store { .. } => refuse(other.to_string()),
                })?;
                input.aggregate_id = Some(id.to_owned());
            }
            "maxSnapshots" => {
                let keep = value
                    .as_u64()
                    .filter(|n| (1..=MAX_KEEP).contains(n))
                    .ok_or_else(|| {
                        refuse(format!(
                            "maxSnapshots must be a whole number from 1 to {MAX_KEEP}, got {value}"
                        ))
                    })?;
                input.max_snapshots = usize::try_from(keep).ok();
            }
            other => {
                return Err(refuse(format!(
                    "unknown field `{other}`; expected dryRun, aggregateId, maxSnapshots"
                )))
            }
        }
    }
    Ok(input)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
