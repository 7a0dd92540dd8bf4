//! The retention rule for one aggregate, as a pure function.
//!
//! Ranked newest first, a snapshot is deleted when it is beyond the newest `keep`, or when its
//! schema version is older than the registered type's current one (obsolete). Two snapshots are
//! never deleted: the newest of the aggregate (so no aggregate loses every snapshot, even when
//! none is usable) and the newest *usable* one (current schema version), even when more than
//! `keep` newer ones exist.
//!
//! A snapshot of a *newer* schema version than this code knows is not called obsolete: it was
//! written by a newer deployment (mid-rollout or after a rollback), so it only falls under the
//! `keep` rule.
//!
//! A snapshot marked invalid is never counted: it takes no place among the newest `keep` and is
//! never the newest usable one. It stays while fewer than `keep` counted snapshots are newer
//! (so a snapshot replaced at its version by a concurrent writer is never the one deleted from
//! the newest `keep`), and goes once `keep` newer ones exist.
//!
//! The rule is monotone: applied to any subset of an aggregate's snapshots, it deletes only
//! snapshots it would also delete given all of them (a snapshot beyond `keep` in the subset has
//! at least `keep` newer ones overall; one that is not the newest of the subset is not the
//! newest overall). So a view cut short by a page boundary or a deadline may delete too little,
//! never too much.

/// What the pruner knows of one stored snapshot of an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenSnapshot {
    /// The aggregate version (sequence of the last event folded in).
    pub version: u64,
    /// Revision of the state shape.
    pub schema_version: u32,
    /// Marked invalid: never counted toward `keep`.
    pub invalid: bool,
}

/// Retention settings for one aggregate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How many of the newest snapshots to keep (at least 1).
    pub keep: usize,
    /// The registered type's current state schema version.
    pub current_schema: u32,
}

impl Retention {
    /// Versions to delete, newest first. `snapshots` may come in any order; duplicates count once.
    pub fn deletions(&self, snapshots: &[SeenSnapshot]) -> Vec<u64> {
        let mut ranked = snapshots.to_vec();
        ranked.sort_unstable_by_key(|s| std::cmp::Reverse(s.version));
        ranked.dedup_by_key(|s| s.version);
        let keep = self.keep.max(1);
        let mut usable_kept = false;
        let mut doomed = Vec::new();
        // Rank among the snapshots that count (not marked invalid).
        let mut counted = 0usize;
        for (position, snapshot) in ranked.iter().enumerate() {
            let stays = if snapshot.invalid {
                position == 0 || counted < keep
            } else {
                let rank = counted;
                counted += 1;
                let usable = snapshot.schema_version == self.current_schema;
                let newest_usable = usable && !usable_kept;
                usable_kept |= usable;
                let obsolete = snapshot.schema_version < self.current_schema;
                position == 0 || newest_usable || (rank < keep && !obsolete)
            };
            if !stays {
                doomed.push(snapshot.version);
            }
        }
        doomed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(list: &[(u64, u32)]) -> Vec<SeenSnapshot> {
        list.iter()
            .map(|&(version, schema_version)| SeenSnapshot {
                version,
                schema_version,
                invalid: false,
            })
            .collect()
    }

    fn marked(mut all: Vec<SeenSnapshot>, versions: &[u64]) -> Vec<SeenSnapshot> {
        for s in &mut all {
            s.invalid = versions.contains(&s.version);
        }
        all
    }

    const KEEP_3: Retention = Retention {
        keep: 3,
        current_schema: 2,
    };

    #[test]
    fn keeps_the_newest_n_of_the_current_schema() {
        let all = seen(&[(1, 2), (5, 2), (3, 2), (2, 2), (4, 2)]);
        assert_eq!(KEEP_3.deletions(&all), vec![2, 1]);
    }

    #[test]
    fn drops_obsolete_schema_snapshots_inside_the_newest_n() {
        let all = seen(&[(5, 2), (4, 1), (3, 2), (2, 1)]);
        assert_eq!(KEEP_3.deletions(&all), vec![4, 2]);
    }

    #[test]
    fn keeps_the_newest_usable_snapshot_beyond_n() {
        // The three newest are obsolete; the only usable snapshot is the oldest.
        let all = seen(&[(9, 1), (8, 1), (7, 1), (3, 2), (2, 2)]);
        assert_eq!(KEEP_3.deletions(&all), vec![8, 7, 2]);
    }

    #[test]
    fn keeps_the_newest_when_nothing_is_usable() {
        let all = seen(&[(9, 1), (8, 1), (7, 1)]);
        assert_eq!(KEEP_3.deletions(&all), vec![8, 7]);
    }

    #[test]
    fn newer_schema_snapshots_only_fall_under_the_keep_rule() {
        let all = seen(&[(9, 3), (8, 3), (7, 2), (6, 2)]);
        assert_eq!(KEEP_3.deletions(&all), vec![6]);
    }

    #[test]
    fn a_marked_snapshot_does_not_count_toward_keep() {
        let rule = Retention {
            keep: 2,
            current_schema: 2,
        };
        // 5 is marked invalid: 4 and 3 are the two kept; 5 stays while fewer than two
        // counted snapshots are newer than it, 2 goes.
        let all = marked(seen(&[(5, 2), (4, 2), (3, 2), (2, 2)]), &[5]);
        assert_eq!(rule.deletions(&all), vec![2]);
        // Without the mark, 3 would go too.
        assert_eq!(
            rule.deletions(&seen(&[(5, 2), (4, 2), (3, 2), (2, 2)])),
            vec![3, 2]
        );
    }

    #[test]
    fn a_marked_snapshot_goes_once_keep_newer_ones_exist() {
        let rule = Retention {
            keep: 2,
            current_schema: 2,
        };
        let all = marked(seen(&[(9, 2), (8, 2), (7, 2), (6, 2)]), &[7]);
        assert_eq!(rule.deletions(&all), vec![7, 6]);
    }

    #[test]
    fn a_marked_snapshot_is_never_the_newest_usable() {
        // The only unmarked current-schema snapshot is the oldest: it is the one protected.
        let all = marked(seen(&[(9, 2), (8, 1), (3, 2)]), &[9]);
        assert_eq!(KEEP_3.deletions(&all), vec![8]);
    }

    #[test]
    fn a_zero_keep_still_keeps_the_newest() {
        let rule = Retention {
            keep: 0,
            current_schema: 2,
        };
        assert_eq!(rule.deletions(&seen(&[(2, 2), (1, 2)])), vec![1]);
    }

    #[test]
    fn duplicates_count_once() {
        let all = seen(&[(3, 2), (3, 2), (2, 2), (1, 2)]);
        assert_eq!(
            Retention {
                keep: 2,
                current_schema: 2
            }
            .deletions(&all),
            vec![1]
        );
    }
}
