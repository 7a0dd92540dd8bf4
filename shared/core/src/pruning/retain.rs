//! Retention on the write path (docs/functions.md#retention): when a snapshot write moves its
//! aggregate's head forward, the snapshot that falls out of keep-N is deleted there and then,
//! so retention costs what it removes and the scheduled pruner is only a safety net.
//!
//! The head tracks the versions and schema versions of the newest valid snapshots written
//! through it ([`SnapshotStore::put_tracked`]); the write returns what it tracked before, and
//! the same rule as the pruner's ([`Retention`]) is applied to the new snapshot plus that
//! list. Nothing is read for it: the list comes back with the head write.
//!
//! Order, so that a crash anywhere leaves at worst an untracked snapshot, never a wrongly
//! deleted one: the snapshot is written, then the head (which drops the fallen-out snapshot
//! from its list), then the fallen-out snapshot is deleted. A crash before the delete leaves
//! it untracked, for the pruner's sweep. A write that loses the head to another writer's newer
//! snapshot is not tracked (the sweep covers it too).
//!
//! Why the list is safe to decide on: it only ever holds snapshots that were valid when they
//! were written through the head, and marking or deleting a snapshot drops the head with its
//! list (tracking restarts from the next write). An entry may name a snapshot the pruner has
//! deleted since: the rule deleted it because keep-N counted snapshots newer than it exist, so
//! anything older is beyond keep-N as well, and deleting again is idempotent. The rule is
//! monotone (see `plan.rs`): applied to a subset it deletes only what it would delete given
//! all of an aggregate's snapshots. The one window left is a snapshot marked invalid between
//! the head write and the delete: it still counts, so the aggregate may keep N - 1 valid
//! snapshots until its next one is written (the pruner's own read has the same window); the
//! new snapshot, the newest valid one, is never deleted.

use tracing::{info, warn};

use super::{Retention, SeenSnapshot, AUDIT_ACTION};
use crate::audit::{AuditRecord, Outcome};
use crate::error::StoreError;
use crate::ports::{PutOutcome, SnapshotStore};
use crate::snapshot::{SnapshotKey, SnapshotRecord};

/// Most snapshots a head tracks: a `MAX_SNAPSHOTS_PER_AGGREGATE` above it leaves retention to
/// the scheduled pruner alone (the head write's expression grows with the list).
pub const MAX_TRACKED: usize = 16;

/// What a retaining write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// The write's outcome.
    pub outcome: PutOutcome,
    /// Versions deleted because they fell out of keep-N (newest first).
    pub deleted: Vec<u64>,
    /// The write was tracked by the head (false: another writer's newer head, retention off,
    /// or a store that tracks nothing; the pruner's sweep covers it).
    pub tracked: bool,
}

/// The versions that fall out of keep-N when `new` is written over the snapshots the head
/// tracked before (`tracked_before`, any order): [`Retention::deletions`] over both, the
/// current schema being the new snapshot's (a writer writes its deployment's current one).
/// Never the new snapshot, which is the newest of the list and the newest usable one.
pub fn fallen_out(keep: usize, new: SeenSnapshot, tracked_before: &[SeenSnapshot]) -> Vec<u64> {
    let rule = Retention {
        keep,
        current_schema: new.schema_version,
    };
    let mut all = Vec::with_capacity(tracked_before.len() + 1);
    all.push(new);
    // Only what is older than the new snapshot: the head only moves forward, so anything else
    // is a stale entry (never counted, never deleted here).
    all.extend(
        tracked_before
            .iter()
            .filter(|s| s.version < new.version && !s.invalid),
    );
    rule.deletions(&all)
        .into_iter()
        .filter(|v| *v != new.version)
        .collect()
}

/// Writes `record` ([`SnapshotStore::put_if_absent`]) keeping at most `keep` tracked snapshots
/// of its aggregate: what falls out of keep-N is deleted (one BatchWriteItem on DynamoDB, paid
/// by the size of what it deletes; no read). `keep` 0, or above [`MAX_TRACKED`], writes without
/// tracking. A failed delete is logged and audited, not returned: the snapshot is written and
/// the pruner's sweep deletes what this left.
pub async fn put_retaining<S: SnapshotStore + ?Sized>(
    store: &S,
    record: &SnapshotRecord,
    keep: usize,
    actor: &str,
) -> Result<Retained, StoreError> {
    if keep == 0 || keep > MAX_TRACKED || record.header.invalid.is_some() {
        return Ok(Retained {
            outcome: store.put_if_absent(record).await?,
            deleted: Vec::new(),
            tracked: false,
        });
    }
    let put = store.put_tracked(record, keep).await?;
    let Some(before) = put.tracked_before else {
        return Ok(Retained {
            outcome: put.outcome,
            deleted: Vec::new(),
            tracked: false,
        });
    };
    let header = &record.header;
    let new = SeenSnapshot {
        version: header.version,
        schema_version: header.schema_version,
        invalid: false,
    };
    let doomed = fallen_out(keep, new, &before);
    if doomed.is_empty() {
        return Ok(Retained {
            outcome: put.outcome,
            deleted: doomed,
            tracked: true,
        });
    }
    let keys: Vec<SnapshotKey> = doomed
        .iter()
        .map(|&version| SnapshotKey {
            aggregate_id: header.aggregate_id.clone(),
            version,
        })
        .collect();
    let detail = format!(
        "fell out of keep-{keep} when version {} was written: {:?}",
        header.version, doomed
    );
    match store.delete_many(&keys).await {
        Ok(_) => {
            info!(aggregate_id = %header.aggregate_id, version = header.version, deleted = ?doomed, keep, "snapshots retired on write");
            AuditRecord::new(actor, AUDIT_ACTION, Outcome::Success)
                .aggregate(&header.aggregate_id, None)
                .detail(detail)
                .emit();
            Ok(Retained {
                outcome: put.outcome,
                deleted: doomed,
                tracked: true,
            })
        }
        Err(e) => {
            warn!(aggregate_id = %header.aggregate_id, version = header.version, error = %e,
                "snapshots that fell out of keep-N not deleted; the pruner's sweep will");
            AuditRecord::new(actor, AUDIT_ACTION, Outcome::Failure)
                .aggregate(&header.aggregate_id, None)
                .detail(detail)
                .emit();
            Ok(Retained {
                outcome: put.outcome,
                deleted: Vec::new(),
                tracked: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(version: u64, schema_version: u32) -> SeenSnapshot {
        SeenSnapshot {
            version,
            schema_version,
            invalid: false,
        }
    }

    #[test]
    fn the_one_past_keep_falls_out() {
        let before = [seen(30, 1), seen(20, 1), seen(10, 1)];
        assert_eq!(fallen_out(3, seen(40, 1), &before), vec![10]);
        assert_eq!(fallen_out(3, seen(40, 1), &before[..2]), Vec::<u64>::new());
        assert_eq!(fallen_out(1, seen(40, 1), &before), vec![30, 20, 10]);
    }

    #[test]
    fn obsolete_schemas_fall_out_and_newer_ones_only_by_rank() {
        // The writer's schema is 2: the schema-1 snapshot goes although within keep.
        let before = [seen(30, 1), seen(20, 2)];
        assert_eq!(fallen_out(3, seen(40, 2), &before), vec![30]);
        // An older deployment writes schema 1: the newer deployment's schema-2 snapshots are
        // not obsolete to it, only ranked.
        let before = [seen(30, 2), seen(20, 2), seen(10, 2)];
        assert_eq!(fallen_out(3, seen(40, 1), &before), vec![10]);
    }

    #[test]
    fn the_new_snapshot_is_never_deleted_and_stale_entries_never_count() {
        // Entries at or above the new version (a stale list) and marked ones are ignored.
        let before = [
            seen(50, 1),
            seen(40, 1),
            SeenSnapshot {
                invalid: true,
                ..seen(35, 1)
            },
            seen(30, 1),
            seen(20, 1),
        ];
        assert_eq!(fallen_out(2, seen(40, 1), &before), vec![20]);
        assert_eq!(fallen_out(1, seen(40, 1), &[]), Vec::<u64>::new());
    }
}
