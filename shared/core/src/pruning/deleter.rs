//! Batched deletes of decided snapshots: one `delete_many` call and one audit record per batch
//! of [`DELETE_BATCH`]; the deadline is checked before each batch.

use std::fmt::Write as _;
use std::time::Instant;

use tracing::{info, warn};

use super::{PruneRequest, AUDIT_ACTION, DELETE_BATCH, DRY_RUN_REPORT_LIMIT};
use crate::audit::{AuditRecord, Outcome};
use crate::error::StoreError;
use crate::ports::SnapshotStore;
use crate::snapshot::SnapshotKey;

pub(super) struct Deleter<'a, S: ?Sized> {
    store: &'a S,
    request: &'a PruneRequest,
    pending: Vec<SnapshotKey>,
    /// Deleted (dry run: would have been deleted).
    pub deleted: u64,
    /// Dry run only, capped.
    pub would_delete: Vec<SnapshotKey>,
    /// The deadline came before a batch: nothing more is deleted in this run.
    pub stopped: bool,
}

impl<'a, S: SnapshotStore + ?Sized> Deleter<'a, S> {
    pub fn new(store: &'a S, request: &'a PruneRequest) -> Self {
        Self {
            store,
            request,
            pending: Vec::new(),
            deleted: 0,
            would_delete: Vec::new(),
            stopped: false,
        }
    }

    /// Queues deletions; full batches go out at once.
    pub async fn add(&mut self, keys: Vec<SnapshotKey>) -> Result<(), StoreError> {
        self.pending.extend(keys);
        while self.pending.len() >= DELETE_BATCH {
            let batch: Vec<SnapshotKey> = self.pending.drain(..DELETE_BATCH).collect();
            self.send(batch).await?;
        }
        Ok(())
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.send(batch).await
    }

    async fn send(&mut self, batch: Vec<SnapshotKey>) -> Result<(), StoreError> {
        if self.stopped {
            return Ok(());
        }
        if self.request.dry_run {
            self.deleted += batch.len() as u64;
            audit(
                self.request,
                Outcome::Noop,
                "dry run, would delete",
                &batch,
                None,
            );
            let room = DRY_RUN_REPORT_LIMIT.saturating_sub(self.would_delete.len());
            self.would_delete.extend(batch.into_iter().take(room));
            return Ok(());
        }
        if self.request.deadline.reached() {
            info!(
                undeleted = batch.len(),
                "deadline reached: no more deletes in this run"
            );
            self.stopped = true;
            return Ok(());
        }
        let started = Instant::now();
        match self.store.delete_many(&batch).await {
            Ok(_) => {
                self.deleted += batch.len() as u64;
                audit(
                    self.request,
                    Outcome::Success,
                    "deleted",
                    &batch,
                    Some(started),
                );
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, batch = batch.len(), "snapshot delete batch failed");
                audit(
                    self.request,
                    Outcome::Failure,
                    "failed to delete",
                    &batch,
                    Some(started),
                );
                Err(e)
            }
        }
    }
}

fn audit(
    request: &PruneRequest,
    outcome: Outcome,
    verb: &str,
    batch: &[SnapshotKey],
    started: Option<Instant>,
) {
    let mut record = AuditRecord::new(&request.actor, AUDIT_ACTION, outcome)
        .request(request.request_id.clone())
        .detail(describe(verb, batch));
    if let Some(first) = batch.first() {
        if batch.iter().all(|k| k.aggregate_id == first.aggregate_id) {
            record = record.aggregate(&first.aggregate_id, None);
        }
    }
    if let Some(started) = started {
        record = record.took(started.elapsed());
    }
    record.emit();
}

/// `"deleted 4 snapshots: A@1,2 B@7,9"`, keys grouped by aggregate in batch order.
fn describe(verb: &str, batch: &[SnapshotKey]) -> String {
    let mut text = format!("{verb} {} snapshots:", batch.len());
    let mut current: Option<&str> = None;
    for key in batch {
        if current == Some(key.aggregate_id.as_str()) {
            let _ = write!(text, ",{}", key.version);
        } else {
            let _ = write!(text, " {}@{}", key.aggregate_id, key.version);
            current = Some(&key.aggregate_id);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, version: u64) -> SnapshotKey {
        SnapshotKey {
            aggregate_id: id.to_owned(),
            version,
        }
    }

    #[test]
    fn describes_a_batch_grouped_by_aggregate() {
        let batch = [key("A", 1), key("A", 2), key("B", 7), key("B", 9)];
        assert_eq!(
            describe("deleted", &batch),
            "deleted 4 snapshots: A@1,2 B@7,9"
        );
    }
}
