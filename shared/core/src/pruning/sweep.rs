//! Reading what to decide on: every segment of a parallel scan, or one aggregate's headers.
//! Keys are grouped per aggregate and handed to [`Retention`] once the aggregate is seen.

use std::collections::HashMap;

use futures::future::join_all;
use tracing::{debug, info, warn};

use super::deleter::Deleter;
use super::positions::ScanPositions;
use super::{PruneRequest, PruneSummary, Retention, SeenSnapshot, SnapshotRef};
use crate::error::StoreError;
use crate::ports::SnapshotStore;
use crate::registry::Registry;
use crate::snapshot::SnapshotKey;

/// Counts of one segment (or of a whole run, merged).
#[derive(Debug, Default)]
pub(super) struct Tally {
    scanned: u64,
    aggregates: u64,
    deleted: u64,
    kept: u64,
    skipped: u64,
    would_delete: Vec<SnapshotKey>,
    incomplete: bool,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.scanned += other.scanned;
        self.aggregates += other.aggregates;
        self.deleted += other.deleted;
        self.kept += other.kept;
        self.skipped += other.skipped;
        self.would_delete.extend(other.would_delete);
        self.incomplete |= other.incomplete;
    }

    pub(super) fn into_summary(self, dry_run: bool) -> PruneSummary {
        let mut would_delete: Vec<SnapshotRef> = self
            .would_delete
            .into_iter()
            .map(SnapshotRef::from)
            .collect();
        would_delete.sort();
        would_delete.truncate(super::DRY_RUN_REPORT_LIMIT);
        PruneSummary {
            scanned: self.scanned,
            aggregates: self.aggregates,
            deleted: self.deleted,
            kept: self.kept,
            skipped: self.skipped,
            dry_run,
            complete: !self.incomplete,
            duration_ms: 0,
            would_delete,
        }
    }
}

/// A store failure, with what was done before it.
pub(super) struct Failed {
    pub tally: Tally,
    pub source: StoreError,
}

/// The snapshots of one aggregate seen so far.
#[derive(Debug)]
struct Group {
    aggregate_type: String,
    /// False when its snapshots disagree on `aggregateType`: something is wrong, hands off.
    consistent: bool,
    snapshots: Vec<SeenSnapshot>,
}

impl Group {
    fn new(aggregate_type: String) -> Self {
        Self {
            aggregate_type,
            consistent: true,
            snapshots: Vec::new(),
        }
    }

    fn add(&mut self, aggregate_type: &str, snapshot: SeenSnapshot) {
        self.consistent &= self.aggregate_type == aggregate_type;
        self.snapshots.push(snapshot);
    }
}

/// One segment's (or one aggregate's) run: decides groups and deletes through its own deleter.
struct Sweep<'a, S: ?Sized> {
    registry: &'a Registry,
    request: &'a PruneRequest,
    deleter: Deleter<'a, S>,
    tally: Tally,
}

impl<'a, S: SnapshotStore + ?Sized> Sweep<'a, S> {
    fn new(store: &'a S, registry: &'a Registry, request: &'a PruneRequest) -> Self {
        Self {
            registry,
            request,
            deleter: Deleter::new(store, request),
            tally: Tally::default(),
        }
    }

    /// Applies the retention rule to one aggregate and queues its deletions.
    async fn settle(&mut self, aggregate_id: String, mut group: Group) -> Result<(), StoreError> {
        group.snapshots.sort_unstable_by_key(|s| s.version);
        group.snapshots.dedup_by_key(|s| s.version);
        let count = group.snapshots.len() as u64;
        let Some(kind) = self.registry.get(&group.aggregate_type) else {
            warn!(aggregate_id = %aggregate_id, aggregate_type = %group.aggregate_type, snapshots = count,
                "unknown aggregateType: snapshots left alone");
            self.tally.skipped += count;
            return Ok(());
        };
        if !group.consistent {
            warn!(aggregate_id = %aggregate_id, snapshots = count,
                "snapshots of one aggregate disagree on aggregateType: left alone");
            self.tally.skipped += count;
            return Ok(());
        }
        let retention = Retention {
            keep: self.request.max_snapshots,
            current_schema: kind.schema_version(),
        };
        let doomed = retention.deletions(&group.snapshots);
        debug!(aggregate_id = %aggregate_id, snapshots = count, deleting = doomed.len(), "aggregate decided");
        self.tally.aggregates += 1;
        self.tally.kept += count - doomed.len() as u64;
        let keys = doomed
            .into_iter()
            .map(|version| SnapshotKey {
                aggregate_id: aggregate_id.clone(),
                version,
            })
            .collect();
        self.deleter.add(keys).await
    }

    async fn settle_all(&mut self, groups: HashMap<String, Group>) -> Result<(), StoreError> {
        for (aggregate_id, group) in groups {
            self.settle(aggregate_id, group).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Tally, Failed> {
        let flushed = self.deleter.flush().await;
        self.tally.deleted = self.deleter.deleted;
        self.tally.would_delete = std::mem::take(&mut self.deleter.would_delete);
        self.tally.incomplete |= self.deleter.stopped;
        match flushed {
            Ok(()) => Ok(self.tally),
            Err(source) => Err(self.fail(source)),
        }
    }

    fn fail(mut self, source: StoreError) -> Failed {
        self.tally.deleted = self.deleter.deleted;
        self.tally.would_delete = std::mem::take(&mut self.deleter.would_delete);
        self.tally.incomplete = true;
        Failed {
            tally: self.tally,
            source,
        }
    }
}

/// Every segment concurrently, each from its saved position; their tallies merged.
pub(super) async fn all_segments<S: SnapshotStore + ?Sized, P: ScanPositions + ?Sized>(
    store: &S,
    positions: &P,
    registry: &Registry,
    request: &PruneRequest,
) -> Result<Tally, Failed> {
    let segments = (0..request.segments)
        .map(|segment| scan_segment(store, positions, registry, request, segment));
    let mut total = Tally::default();
    let mut first_failure = None;
    for result in join_all(segments).await {
        match result {
            Ok(tally) => total.merge(tally),
            Err(failed) => {
                total.merge(failed.tally);
                first_failure.get_or_insert(failed.source);
            }
        }
    }
    match first_failure {
        None => Ok(total),
        Some(source) => {
            total.incomplete = true;
            Err(Failed {
                tally: total,
                source,
            })
        }
    }
}

async fn scan_segment<S: SnapshotStore + ?Sized, P: ScanPositions + ?Sized>(
    store: &S,
    positions: &P,
    registry: &Registry,
    request: &PruneRequest,
    segment: u32,
) -> Result<Tally, Failed> {
    let mut sweep = Sweep::new(store, registry, request);
    let start = match positions.load(segment, request.segments).await {
        Ok(start) => start,
        Err(source) => return Err(sweep.fail(source)),
    };
    if let Some(key) = &start {
        info!(segment, aggregate_id = %key.aggregate_id, version = key.version,
            "resuming the scan where the last run stopped");
    }
    let resume = match scan_segment_into(&mut sweep, store, segment, start).await {
        Ok(resume) => resume,
        Err(source) => return Err(sweep.fail(source)),
    };
    let tally = sweep.finish().await?;
    // Saved only once this run's decided deletes are all sent: a run that fails starts again
    // from the last saved position (deleting is idempotent).
    let next = if tally.incomplete { resume } else { None };
    let saved = positions
        .save(segment, request.segments, next.as_ref())
        .await;
    match saved {
        Ok(()) => Ok(tally),
        Err(source) => Err(Failed { tally, source }),
    }
}

/// Reads a segment from `start`; returns where the next run must start to see every
/// aggregate this one left undecided (meaningful when the run stopped early).
async fn scan_segment_into<S: SnapshotStore + ?Sized>(
    sweep: &mut Sweep<'_, S>,
    store: &S,
    segment: u32,
    start: Option<SnapshotKey>,
) -> Result<Option<SnapshotKey>, StoreError> {
    let request = sweep.request;
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut buffered = 0usize;
    // The aggregate of the last item read (open: its snapshots may continue on the next page),
    // and the key read just before its first item (an exclusive start key, `None` at the
    // segment's start): the next run resumes there, so an aggregate cut off by a deadline is
    // read whole again, and everything before it is not read again. A scan returns one
    // aggregate's snapshots together (one partition), so only the open one needs its start.
    let mut current: Option<String> = None;
    let mut current_start: Option<SnapshotKey> = None;
    // Everything before this position is decided and its deletes sent.
    let mut resume = start.clone();
    let run_start = start.clone();
    let mut cursor = start;
    // This segment's share of the run's key budget.
    let budget = request
        .key_budget
        .map(|keys| keys.div_ceil(request.segments.max(1) as usize).max(1));
    loop {
        if request.deadline.reached() {
            // Nothing new starts: what is undecided stays for the next run.
            info!(
                segment,
                undecided = groups.values().map(|g| g.snapshots.len()).sum::<usize>(),
                "deadline reached: stopping"
            );
            sweep.tally.incomplete = true;
            return Ok(resume);
        }
        let page_start = cursor.take();
        // Within the budget, no page reads past it (an aggregate left open at the budget is
        // read on, in full pages).
        let limit = match budget {
            Some(budget) if sweep.tally.scanned < budget as u64 => {
                request.page_size.min(budget - sweep.tally.scanned as usize)
            }
            _ => request.page_size,
        };
        let page = store
            .scan_summaries(segment, request.segments, page_start.clone(), limit)
            .await?;
        let mut previous = page_start;
        sweep.tally.scanned += page.items.len() as u64;
        buffered += page.items.len();
        for summary in page.items {
            let snapshot = SeenSnapshot {
                version: summary.key.version,
                schema_version: summary.schema_version,
                invalid: summary.invalid,
            };
            let before = previous.replace(summary.key.clone());
            let id = summary.key.aggregate_id;
            if current.as_deref() != Some(id.as_str()) {
                current = Some(id.clone());
                current_start = before;
            }
            match groups.get_mut(&id) {
                Some(group) => group.add(&summary.aggregate_type, snapshot),
                None => {
                    let mut group = Group::new(summary.aggregate_type);
                    group.snapshots.push(snapshot);
                    groups.insert(id, group);
                }
            }
        }
        let Some(next) = page.next else {
            sweep.settle_all(groups).await?;
            sweep.deleter.flush().await?;
            // The segment's end: the next run starts over, unless the deadline stopped these
            // last deletes; then it resumes where everything before them was decided and sent
            // (found on DynamoDB Local, whose scan order put a deadline exactly there).
            return Ok(if sweep.deleter.stopped { resume } else { None });
        };
        cursor = Some(next);
        let spent = budget.is_some_and(|budget| sweep.tally.scanned >= budget as u64);
        if buffered >= request.buffer_keys || spent {
            // Decide every aggregate the scan has moved past; keep the one it is in.
            let open = current.as_ref().and_then(|id| groups.remove_entry(id));
            let settled = std::mem::take(&mut groups);
            buffered = 0;
            let still_open = open.is_some();
            if let Some((id, group)) = open {
                buffered = group.snapshots.len();
                groups.insert(id, group);
            }
            sweep.settle_all(settled).await?;
            // Send the decided deletes now rather than let a deadline strand a partial batch.
            sweep.deleter.flush().await?;
            if !sweep.deleter.stopped {
                // All decided and sent up to the aggregate still open (or the next page).
                resume = if still_open {
                    current_start.clone()
                } else {
                    cursor.clone()
                };
            }
            if spent && !sweep.deleter.stopped && resume != run_start {
                // The budget is read and something was decided: the next run goes on from
                // here. (Nothing decided yet: one aggregate holds the whole share; read on.)
                info!(
                    segment,
                    scanned = sweep.tally.scanned,
                    "key budget read: stopping"
                );
                sweep.tally.incomplete = true;
                return Ok(resume);
            }
        }
    }
}

/// One aggregate, newest first, page by page, decided once all its pages are read.
pub(super) async fn one_aggregate<S: SnapshotStore + ?Sized>(
    store: &S,
    registry: &Registry,
    request: &PruneRequest,
    aggregate_id: &str,
) -> Result<Tally, Failed> {
    let mut sweep = Sweep::new(store, registry, request);
    let mut group: Option<Group> = None;
    let mut before = None;
    loop {
        if request.deadline.reached() {
            info!(aggregate_id, "deadline reached: stopping before deciding");
            sweep.tally.incomplete = true;
            return sweep.finish().await;
        }
        let page = match store.headers(aggregate_id, before, request.page_size).await {
            Ok(page) => page,
            Err(source) => return Err(sweep.fail(source)),
        };
        sweep.tally.scanned += page.items.len() as u64;
        for item in page.items {
            let (aggregate_type, snapshot) = match item {
                Ok(header) => (
                    header.aggregate_type,
                    SeenSnapshot {
                        version: header.version,
                        schema_version: header.schema_version,
                        invalid: header.invalid.is_some(),
                    },
                ),
                // Unreadable: left alone. Deciding on the others is safe (the rule is
                // monotone) and a load never uses it.
                Err(_) => continue,
            };
            group
                .get_or_insert_with(|| Group::new(aggregate_type.clone()))
                .add(&aggregate_type, snapshot);
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    if let Some(group) = group {
        if let Err(source) = sweep.settle(aggregate_id.to_owned(), group).await {
            return Err(sweep.fail(source));
        }
    }
    sweep.finish().await
}
