//! Per-shard checkpoints (the last acknowledged sequence number), optionally kept in a JSON
//! file so a restarted runner continues where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoints {
    pub stream_arn: String,
    /// Shard id → last acknowledged `SequenceNumber`.
    pub shards: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("checkpoint file {path}: {reason}")]
pub struct CheckpointError {
    pub path: PathBuf,
    pub reason: String,
}

impl Checkpoints {
    /// The file's checkpoints for `stream_arn`; none when the file is missing or belongs to an
    /// older stream (the table was recreated).
    pub fn load(path: &Path, stream_arn: &str) -> Result<Self, CheckpointError> {
        let fresh = Self {
            stream_arn: stream_arn.to_owned(),
            shards: BTreeMap::new(),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(e) => return Err(error(path, e)),
        };
        let stored: Self = serde_json::from_str(&text).map_err(|e| error(path, e))?;
        Ok(if stored.stream_arn == stream_arn {
            stored
        } else {
            fresh
        })
    }

    /// Writes atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| error(path, e))?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text).map_err(|e| error(path, e))?;
        std::fs::rename(&temporary, path).map_err(|e| error(path, e))
    }
}

fn error(path: &Path, reason: impl ToString) -> CheckpointError {
    CheckpointError {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_belong_to_one_stream() {
        let dir = std::env::temp_dir().join(format!("stream-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoints.json");
        let mut checkpoints = Checkpoints::load(&path, "arn:1").unwrap();
        assert!(checkpoints.shards.is_empty());
        checkpoints
            .shards
            .insert("shard-1".to_owned(), "42".to_owned());
        checkpoints.save(&path).unwrap();
        assert_eq!(Checkpoints::load(&path, "arn:1").unwrap(), checkpoints);
        assert!(Checkpoints::load(&path, "arn:2").unwrap().shards.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
