//! Where each segment of the pruner's scan stopped, kept between runs
//! (docs/functions.md#pruner): a table whose scan takes longer than one run's budget is pruned
//! part by part, each run continuing where the last one stopped, and starting over once a
//! segment has been read to its end.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::snapshot::SnapshotKey;

/// The saved scan position of each segment.
#[async_trait]
pub trait ScanPositions: Send + Sync {
    /// Where segment `segment` of a `total_segments` scan should start (`None`: from the
    /// beginning). A position saved for another number of segments does not apply: segments
    /// partition the table differently.
    async fn load(
        &self,
        segment: u32,
        total_segments: u32,
    ) -> Result<Option<SnapshotKey>, StoreError>;

    /// Records where the segment's next run starts (`None`: from the beginning).
    async fn save(
        &self,
        segment: u32,
        total_segments: u32,
        position: Option<&SnapshotKey>,
    ) -> Result<(), StoreError>;
}

/// No saved positions: every run starts from the beginning (the admin API's cleanup route,
/// and a single aggregate's run).
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOver;

#[async_trait]
impl ScanPositions for StartOver {
    async fn load(&self, _: u32, _: u32) -> Result<Option<SnapshotKey>, StoreError> {
        Ok(None)
    }

    async fn save(&self, _: u32, _: u32, _: Option<&SnapshotKey>) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Positions held in memory (tests, local runs).
#[derive(Debug, Default)]
pub struct MemoryScanPositions(Mutex<HashMap<u32, (u32, SnapshotKey)>>);

impl MemoryScanPositions {
    /// No positions saved yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (u32, SnapshotKey)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ScanPositions for MemoryScanPositions {
    async fn load(
        &self,
        segment: u32,
        total_segments: u32,
    ) -> Result<Option<SnapshotKey>, StoreError> {
        Ok(self
            .positions()
            .get(&segment)
            .filter(|(total, _)| *total == total_segments)
            .map(|(_, key)| key.clone()))
    }

    async fn save(
        &self,
        segment: u32,
        total_segments: u32,
        position: Option<&SnapshotKey>,
    ) -> Result<(), StoreError> {
        let mut positions = self.positions();
        match position {
            Some(key) => positions.insert(segment, (total_segments, key.clone())),
            None => positions.remove(&segment),
        };
        Ok(())
    }
}
