//! What the console shows: one [`Progress`] per thing that happened, and running [`Totals`].
//! The stack reports through a [`Reporter`] so the binary prints and tests collect.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Receives every progress event (from several tasks at once).
pub type Reporter = Arc<dyn Fn(&Progress) + Send + Sync>;

/// One thing worth a console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The snapshotter stored a snapshot.
    SnapshotCreated {
        aggregate_id: String,
        version: u64,
        stored_bytes: u64,
        reason: String,
    },
    /// The snapshotter failed on an aggregate; the runner redelivers it.
    SnapshotFailed { aggregate_id: String, error: String },
    /// A scheduled pruning run finished.
    Pruned {
        deleted: u64,
        kept: u64,
        scanned: u64,
        aggregates: u64,
        complete: bool,
        duration_ms: u64,
    },
    /// A scheduled pruning run failed (what it deleted before stands).
    PruneFailed { error: String },
    /// The admin API answered a request.
    Request {
        method: String,
        path: String,
        status: u16,
        duration_ms: u64,
    },
    /// A demo command could not be stored (the next tick tries again).
    DemoFailed { aggregate_id: String, error: String },
    /// The running totals, printed every few seconds so a quiet stack still shows it is alive.
    Totals(TotalsView),
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SnapshotCreated {
                aggregate_id,
                version,
                stored_bytes,
                reason,
            } => write!(
                f,
                "snapshot  {aggregate_id} v{version} ({stored_bytes} B, {reason})"
            ),
            Self::SnapshotFailed {
                aggregate_id,
                error,
            } => write!(f, "snapshot  {aggregate_id} FAILED: {}", brief(error)),
            Self::Pruned {
                deleted,
                kept,
                scanned,
                aggregates,
                complete,
                duration_ms,
            } => write!(
                f,
                "prune     deleted {deleted}, kept {kept} ({scanned} scanned, {aggregates} aggregates, {duration_ms} ms{})",
                if *complete { "" } else { ", incomplete" }
            ),
            Self::PruneFailed { error } => write!(f, "prune     FAILED: {}", brief(error)),
            Self::Request {
                method,
                path,
                status,
                duration_ms,
            } => write!(f, "request   {method} {path} -> {status} ({duration_ms} ms)"),
            Self::DemoFailed {
                aggregate_id,
                error,
            } => write!(f, "demo      {aggregate_id} FAILED: {}", brief(error)),
            Self::Totals(totals) => write!(f, "totals    {totals}"),
        }
    }
}

/// Counters shared by the stack's tasks.
#[derive(Debug, Default)]
pub struct Totals {
    pub commands: AtomicU64,
    pub commands_rejected: AtomicU64,
    pub events_appended: AtomicU64,
    pub loads_from_snapshot: AtomicU64,
    pub loads_full_replay: AtomicU64,
    pub events_replayed: AtomicU64,
    pub stream_batches: AtomicU64,
    pub snapshots_created: AtomicU64,
    pub snapshot_failures: AtomicU64,
    pub prune_runs: AtomicU64,
    pub snapshots_pruned: AtomicU64,
    pub requests: AtomicU64,
}

impl Totals {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as they are now.
    pub fn view(&self) -> TotalsView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TotalsView {
            commands: get(&self.commands),
            commands_rejected: get(&self.commands_rejected),
            events_appended: get(&self.events_appended),
            loads_from_snapshot: get(&self.loads_from_snapshot),
            loads_full_replay: get(&self.loads_full_replay),
            events_replayed: get(&self.events_replayed),
            stream_batches: get(&self.stream_batches),
            snapshots_created: get(&self.snapshots_created),
            snapshot_failures: get(&self.snapshot_failures),
            prune_runs: get(&self.prune_runs),
            snapshots_pruned: get(&self.snapshots_pruned),
            requests: get(&self.requests),
        }
    }
}

/// The values of [`Totals`] at one moment, taken without a lock (each counter read once), for
/// printing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalsView {
    pub commands: u64,
    pub commands_rejected: u64,
    pub events_appended: u64,
    pub loads_from_snapshot: u64,
    pub loads_full_replay: u64,
    pub events_replayed: u64,
    pub stream_batches: u64,
    pub snapshots_created: u64,
    pub snapshot_failures: u64,
    pub prune_runs: u64,
    pub snapshots_pruned: u64,
    pub requests: u64,
}

impl fmt::Display for TotalsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loads = self.loads_from_snapshot + self.loads_full_replay;
        // Tenths, in integers: how many events a load folded on average.
        let folded_tenths = (self.events_replayed * 10).checked_div(loads).unwrap_or(0);
        write!(
            f,
            "events {} (commands {}, rejected {}) | loads {} from a snapshot, {} full, {}.{} events folded each | snapshots {} (failed {}) | prune runs {}, deleted {} | requests {}",
            self.events_appended,
            self.commands,
            self.commands_rejected,
            self.loads_from_snapshot,
            self.loads_full_replay,
            folded_tenths / 10,
            folded_tenths % 10,
            self.snapshots_created,
            self.snapshot_failures,
            self.prune_runs,
            self.snapshots_pruned,
            self.requests,
        )
    }
}

/// Longest error text on a console line; the full error is in the logs (RUST_LOG).
const MAX_ERROR_CHARS: usize = 160;

/// An error's text cut to one readable line.
pub fn brief(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}...", line.get(..cut).unwrap_or(line)),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_concise_and_name_what_happened() {
        let created = Progress::SnapshotCreated {
            aggregate_id: "demo-item-1".into(),
            version: 20,
            stored_bytes: 312,
            reason: "threshold:count".into(),
        };
        assert_eq!(
            created.to_string(),
            "snapshot  demo-item-1 v20 (312 B, threshold:count)"
        );
        let request = Progress::Request {
            method: "GET".into(),
            path: "/health".into(),
            status: 200,
            duration_ms: 3,
        };
        assert_eq!(request.to_string(), "request   GET /health -> 200 (3 ms)");
        let pruned = Progress::Pruned {
            deleted: 4,
            kept: 9,
            scanned: 13,
            aggregates: 3,
            complete: true,
            duration_ms: 20,
        };
        assert_eq!(
            pruned.to_string(),
            "prune     deleted 4, kept 9 (13 scanned, 3 aggregates, 20 ms)"
        );
    }

    #[test]
    fn long_errors_are_cut_to_one_line() {
        let failed = Progress::DemoFailed {
            aggregate_id: "demo-item-1".into(),
            error: format!("{}\nsecond line", "x".repeat(500)),
        };
        let line = failed.to_string();
        assert!(line.ends_with("..."), "{line}");
        assert!(!line.contains('\n') && line.len() < 200, "{line}");
    }

    #[test]
    fn totals_average_the_events_folded_per_load() {
        let totals = Totals::default();
        Totals::add(&totals.loads_from_snapshot, 3);
        Totals::add(&totals.loads_full_replay, 1);
        Totals::add(&totals.events_replayed, 10);
        let line = totals.view().to_string();
        assert!(
            line.contains("loads 3 from a snapshot, 1 full, 2.5 events folded each"),
            "{line}"
        );
    }
}
