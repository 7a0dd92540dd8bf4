//! One aggregate of a batch: decide from the newest snapshot, rebuild from the latest valid
//! snapshot plus only the missing events and the batch's own images, store it conditionally.
//!
//! Requests per aggregate: none when this container remembers the aggregate's head and the
//! policy does not trip; else one read of the store's head (a small item: half a read unit
//! whatever the state's size), which decides whenever the policy does not trip (no head: decided
//! as no snapshot, which only errs early). When it trips, one newest-snapshot read (the whole record: it is the base), one
//! read of the base's boundary event with the gap between base and batch, one conditional put
//! and its head. See snapshot_core::head for why a head may be trusted this far.
//!
//! With a bytes budget, a head that the count and time leave not due is also checked against
//! the stored bytes since it ([`crate::tail`]): no request when the batch's images and what
//! this container counted cover them, else one eventually consistent read of the events in
//! between.

use std::time::Instant;

use snapshot_core::audit::{AuditRecord, Outcome};
use snapshot_core::codec::sha256_hex;
use snapshot_core::policy::{LastSnapshot, SnapshotPolicy, TripReason};
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::registry::AggregateKind;
use snapshot_core::snapshot::{
    build_snapshot, SnapshotBuildError, SnapshotMetadata, SnapshotRecord, SnapshotSubject,
};
use snapshot_core::walk::mark_invalid;
use tracing::{info, warn};

use snapshot_core::config::Config;
use snapshot_core::head::{HeadCache, Seen, SnapshotHead};
use snapshot_core::{EventError, Registry};

use crate::audit::{ACTION, ACTOR, DRIFT_ACTION};
use crate::batch::AggregateBatch;
use crate::error::SnapshotterError;
use crate::outcome::{Action, AggregateOutcome, Counts};
use crate::rebuild::{header_usable, Newest, Rebuilder};
use crate::tail::TailMeter;

/// Whether the snapshot of `aggregate_id` at `version` is in the 1-in-`sample` drift sample:
/// a hash, so a redelivered batch decides the same way.
pub fn sampled(sample: u64, aggregate_id: &str, version: u64) -> bool {
    sample > 0
        && snapshot_core::memory::segment_of(
            &format!("{aggregate_id}#{version}"),
            u32::try_from(sample).unwrap_or(u32::MAX),
        ) == 0
}

/// What an aggregate's head decided.
enum FromHead {
    /// Not due, or snapshotted already: nothing more to read.
    Decided(Action),
    /// The full record decides; `head_kept`: the store has a head (none is recorded again).
    Undecided { head_kept: bool },
}

/// Evaluates the aggregates of a batch against the stores, registry and configuration it
/// borrows from the handler.
pub(crate) struct Evaluator<'a, E, S> {
    events: &'a E,
    snapshots: &'a S,
    heads: &'a HeadCache,
    registry: &'a Registry,
    config: &'a Config,
    clock: &'a (dyn Fn() -> i64 + Send + Sync),
}

impl<'a, E: EventStore, S: SnapshotStore> Evaluator<'a, E, S> {
    pub(crate) fn new(
        events: &'a E,
        snapshots: &'a S,
        heads: &'a HeadCache,
        registry: &'a Registry,
        config: &'a Config,
        clock: &'a (dyn Fn() -> i64 + Send + Sync),
    ) -> Self {
        Self {
            events,
            snapshots,
            heads,
            registry,
            config,
            clock,
        }
    }

    pub(crate) async fn evaluate(
        &self,
        batch: &AggregateBatch,
        request_id: Option<&str>,
    ) -> AggregateOutcome {
        let started = Instant::now();
        let mut counts = Counts::default();
        let result = self.evaluate_inner(batch, request_id, &mut counts).await;
        let version = batch.events.last().map(|e| e.sequence);
        let audit = |outcome: Outcome, detail: String| {
            AuditRecord::new(ACTOR, ACTION, outcome)
                .aggregate(batch.aggregate_id.clone(), version)
                .request(request_id.map(str::to_owned))
                .detail(detail)
                .took(started.elapsed())
                .emit();
        };
        match &result {
            Ok(Action::Created {
                version,
                stored_bytes,
                reason,
            }) => {
                info!(aggregate_id = %batch.aggregate_id, version, stored_bytes, reason = %reason, "snapshot stored");
                audit(Outcome::Success, reason.to_string());
            }
            Ok(Action::AlreadyPresent { version }) => {
                info!(aggregate_id = %batch.aggregate_id, version, "snapshot already present");
                audit(Outcome::Noop, "already present".to_owned());
            }
            Ok(Action::TooLarge {
                version,
                item_bytes,
            }) => {
                tracing::error!(aggregate_id = %batch.aggregate_id, version, item_bytes, "snapshot too large for one item; skipped");
                audit(
                    Outcome::Rejected,
                    format!("state is {item_bytes} bytes compressed, over the item limit"),
                );
            }
            Ok(Action::UnknownEventType {
                sequence,
                event_type,
            }) => {
                warn!(aggregate_id = %batch.aggregate_id, sequence = ?sequence, event_type = %event_type, "aggregate skipped: event type not known to this version");
                audit(
                    Outcome::Rejected,
                    format!(
                        "eventType `{event_type}` at sequence {} is not known to this version; aggregate skipped until it is",
                        sequence.map_or_else(|| "?".to_owned(), |s| s.to_string())
                    ),
                );
            }
            Ok(Action::NotDue | Action::UpToDate { .. }) => {}
            Err(e) => audit(Outcome::Failure, e.to_string()),
        }
        AggregateOutcome::new(
            batch.aggregate_id.clone(),
            batch.failure_identifier(),
            result,
            counts,
        )
    }

    async fn evaluate_inner(
        &self,
        batch: &AggregateBatch,
        request_id: Option<&str>,
        counts: &mut Counts,
    ) -> Result<Action, SnapshotterError> {
        let id = batch.aggregate_id.as_str();
        if let Some(first) = batch.poison.first() {
            return Err(SnapshotterError::Poison {
                aggregate_id: id.to_owned(),
                count: batch.poison.len(),
                first: first.reason.clone(),
            });
        }
        if let Some(unknown) = batch.unknown.first() {
            return Ok(Action::UnknownEventType {
                sequence: Some(unknown.sequence),
                event_type: unknown.event_type.clone(),
            });
        }
        let kind = self.registry.get(&batch.aggregate_type).ok_or_else(|| {
            SnapshotterError::UnknownType {
                aggregate_id: id.to_owned(),
                aggregate_type: batch.aggregate_type.clone(),
            }
        })?;
        let Some(last) = batch.events.last().map(|e| e.sequence) else {
            return Ok(Action::NotDue);
        };
        counts.evaluated = true;
        let policy = self.config.policies.for_type(&batch.aggregate_type);
        let now = (self.clock)();
        let mut tail = TailMeter::new(self.events, self.heads, batch);

        let from_head = self
            .decide_from_head(id, kind.as_ref(), last, now, &mut tail)
            .await;
        counts.events_sized = tail.events_read;
        let head_kept = match from_head? {
            FromHead::Decided(action) => return Ok(action),
            FromHead::Undecided { head_kept } => head_kept,
        };
        let newest = self.newest(id).await?;
        // A marked or unreadable newest snapshot stands for nothing: it may be replaced.
        if let Some(snapshot_version) = newest.standing_version().filter(|v| *v >= last) {
            return Ok(Action::UpToDate { snapshot_version });
        }
        if matches!(newest, Newest::None) {
            self.heads.remember_none(id);
        }
        let usable = newest
            .header()
            .filter(|h| header_usable(h, kind.as_ref(), id));
        if let Some(header) = usable.filter(|_| !head_kept) {
            // Read whole because no head was there (a snapshot written before heads existed,
            // or its head dropped): keep one from now on.
            let head = SnapshotHead::of(header);
            self.snapshots
                .record_head(&head)
                .await
                .map_err(SnapshotterError::store(id))?;
            self.heads.remember(head);
        }
        let last_snapshot = usable.map(|h| LastSnapshot {
            version: h.version,
            timestamp: h.timestamp,
        });
        let due = due(policy, last_snapshot, last, now, &mut tail).await;
        counts.events_sized = tail.events_read;
        let Some(reason) = due.map_err(SnapshotterError::store(id))? else {
            return Ok(Action::NotDue);
        };

        let rebuilt = match Rebuilder::new(
            self.events,
            self.snapshots,
            self.config.codec.clone(),
            batch,
            kind.as_ref(),
        )
        .rebuild(newest, counts)
        .await
        {
            Ok(rebuilt) => rebuilt,
            // A skipped event of the event table, still unknown to this version.
            Err(SnapshotterError::Event(EventError::UnknownEventType {
                at, event_type, ..
            })) => {
                return Ok(Action::UnknownEventType {
                    sequence: at.sequence,
                    event_type,
                })
            }
            Err(e) => return Err(e),
        };
        let metadata = SnapshotMetadata {
            created_by: ACTOR.to_owned(),
            reason: reason.as_str().to_owned(),
            request_id: request_id.map(str::to_owned),
        };
        let subject = SnapshotSubject {
            aggregate_id: id,
            aggregate_type: kind.type_name(),
            schema_version: kind.schema_version(),
            version: last,
            last_event_id: batch.events.last().map(|e| e.event_id.as_str()),
        };
        let record = match build_snapshot(
            &self.config.codec,
            subject,
            rebuilt.state_json,
            metadata,
            now,
            self.config.expires_at(now),
        ) {
            Ok(record) => record,
            Err(SnapshotBuildError::TooLarge { item_bytes, .. }) => {
                return Ok(Action::TooLarge {
                    version: last,
                    item_bytes,
                })
            }
            Err(e) => return Err(e.into()),
        };
        // What falls out of keep-N is deleted with this write (no read: the head's list).
        let outcome = snapshot_core::pruning::put_retaining(
            self.snapshots,
            &record,
            self.config.max_snapshots_per_aggregate,
            ACTOR,
        )
        .await
        .map_err(SnapshotterError::store(id))?
        .outcome;
        tracing::debug!(
            aggregate_id = id,
            base_version = rebuilt.base_version,
            version = last,
            "rebuilt"
        );
        self.heads.remember(SnapshotHead::of(&record.header));
        if outcome == PutOutcome::Created && sampled(self.config.drift_sample, id, last) {
            self.check_drift(kind.as_ref(), &record, request_id, counts)
                .await?;
        }
        Ok(match outcome {
            PutOutcome::Created => Action::Created {
                version: last,
                stored_bytes: record.header.stored_bytes,
                reason,
            },
            PutOutcome::AlreadyExists => Action::AlreadyPresent { version: last },
        })
    }

    /// Compares a snapshot just written with a full replay of its events; a difference is
    /// counted (`SnapshotDrift`), audited (`snapshot.drift`) and the snapshot taken out of use.
    async fn check_drift(
        &self,
        kind: &dyn AggregateKind,
        record: &SnapshotRecord,
        request_id: Option<&str>,
        counts: &mut Counts,
    ) -> Result<(), SnapshotterError> {
        let started = Instant::now();
        let id = record.header.aggregate_id.as_str();
        let version = record.header.version;
        let events = self
            .events
            .read(id, 1, Some(version))
            .await
            .map_err(SnapshotterError::store(id))?;
        let replayed = kind
            .fold_json(id, 0, None, &events)
            .map_err(|e| SnapshotterError::from_fold(id, e))?;
        counts.drift_checks += 1;
        let computed = sha256_hex(&replayed);
        if computed == record.header.checksum {
            return Ok(());
        }
        counts.drift += 1;
        tracing::error!(aggregate_id = id, version, stored = %record.header.checksum, replayed = %computed, "snapshot drift: the state differs from a full replay");
        // Out of use: marked invalid (audited), so no load starts from it.
        let reason = format!(
            "drift: state checksum {} differs from the full replay's {computed}",
            record.header.checksum
        );
        self.heads.forget(id);
        let marked = mark_invalid(self.snapshots, ACTOR, id, version, &reason)
            .await
            .map_err(SnapshotterError::store(id))?;
        AuditRecord::new(ACTOR, DRIFT_ACTION, Outcome::Failure)
            .aggregate(id.to_owned(), Some(version))
            .request(request_id.map(str::to_owned))
            .detail(format!("{reason}; marked invalid: {marked}"))
            .took(started.elapsed())
            .emit();
        Ok(())
    }

    /// Decides from the aggregate's head when it can: one this container remembers (no
    /// request), else the store's (a small read). `None`: no head, or one that leaves the
    /// policy due; the full record decides then. A head older than the newest snapshot only
    /// makes a snapshot look due sooner, and one at or past the batch's last event means the
    /// batch is snapshotted already. A remembered head is used only to say "not due": whether
    /// the batch is snapshotted already is asked of the store, which drops a head whose
    /// snapshot was marked invalid (a redelivery may then replace it).
    async fn decide_from_head(
        &self,
        id: &str,
        kind: &dyn AggregateKind,
        last: u64,
        now: i64,
        tail: &mut TailMeter<'_, E>,
    ) -> Result<FromHead, SnapshotterError> {
        let policy = self.config.policies.for_type(kind.type_name());
        let usable = |head: &SnapshotHead| {
            head.aggregate_type == kind.type_name() && head.schema_version == kind.schema_version()
        };
        let since = |head: &SnapshotHead| LastSnapshot {
            version: head.version,
            timestamp: head.timestamp,
        };
        match self.heads.get(id) {
            Some(Seen::Head(remembered)) => {
                if usable(&remembered)
                    && remembered.version < last
                    && due(policy, Some(since(&remembered)), last, now, tail)
                        .await
                        .map_err(SnapshotterError::store(id))?
                        .is_none()
                {
                    return Ok(FromHead::Decided(Action::NotDue));
                }
                if remembered.version < last {
                    // Due by what this container saw last (a put here wrote the store's head
                    // too): the full record decides, with no head read first.
                    return Ok(FromHead::Undecided { head_kept: true });
                }
            }
            // No snapshot when last read: decided as if there still were none (see Seen).
            Some(Seen::NoSnapshot) => {
                let due = due(policy, None, last, now, tail)
                    .await
                    .map_err(SnapshotterError::store(id))?;
                if due.is_none() {
                    return Ok(FromHead::Decided(Action::NotDue));
                }
                return Ok(FromHead::Undecided { head_kept: false });
            }
            None => {}
        }
        let Some(head) = self
            .snapshots
            .head(id)
            .await
            .map_err(SnapshotterError::store(id))?
        else {
            // No head: no snapshot yet (a new aggregate), or one whose head is gone (marked,
            // deleted, written before heads). Decided as if there were none, which errs toward
            // snapshotting early by count, never late (see Seen::NoSnapshot): a new
            // aggregate's record costs the head read alone, and a due one is decided again on
            // the full record, which records the head of a snapshot found there. A warm
            // container remembers the same: no snapshot.
            self.heads.remember_none(id);
            let due = due(policy, None, last, now, tail)
                .await
                .map_err(SnapshotterError::store(id))?;
            if due.is_none() {
                return Ok(FromHead::Decided(Action::NotDue));
            }
            return Ok(FromHead::Undecided { head_kept: false });
        };
        self.heads.remember(head.clone());
        if head.version >= last {
            return Ok(FromHead::Decided(Action::UpToDate {
                snapshot_version: head.version,
            }));
        }
        if usable(&head)
            && due(policy, Some(since(&head)), last, now, tail)
                .await
                .map_err(SnapshotterError::store(id))?
                .is_none()
        {
            return Ok(FromHead::Decided(Action::NotDue));
        }
        Ok(FromHead::Undecided { head_kept: true })
    }

    /// The one read the policy decides on: the newest snapshot with its state when the state
    /// is in the item, which is the base when a snapshot is due (no second snapshot read,
    /// whether the count was reached in this batch or across batches). It costs the capacity
    /// a header-only read would: DynamoDB bills a Query by the size of the items it reads,
    /// whatever the projection. A state kept as an object is fetched only when needed.
    async fn newest(&self, id: &str) -> Result<Newest, SnapshotterError> {
        let read = self
            .snapshots
            .newest_unfetched(id)
            .await
            .map(|newest| newest.map(|r| r.map(|r| Newest::Record(Box::new(r)))));
        match read.map_err(SnapshotterError::store(id))? {
            None => Ok(Newest::None),
            Some(Ok(newest)) => Ok(newest),
            Some(Err(unreadable)) => {
                // The walk passes it over (and marks it) if a snapshot is needed.
                warn!(aggregate_id = id, version = ?unreadable.version, reason = %unreadable.reason, "newest snapshot is unreadable");
                Ok(Newest::Malformed)
            }
        }
    }
}

/// Why a snapshot is due at `last` since `since`: the count and time rules first (no bytes
/// needed), then, with a budget, the stored bytes since it, measured only then.
async fn due<E: EventStore>(
    policy: &SnapshotPolicy,
    since: Option<LastSnapshot>,
    last: u64,
    now: i64,
    tail: &mut TailMeter<'_, E>,
) -> Result<Option<TripReason>, snapshot_core::StoreError> {
    if let Some(reason) = policy.decide(since, last, now) {
        return Ok(Some(reason));
    }
    let after = since.map_or(0, |s| s.version);
    let Some(budget) = policy.bytes_threshold.filter(|_| after < last) else {
        return Ok(None);
    };
    let bytes = tail.bytes_after(after, budget).await?;
    Ok(policy.decide_with_bytes(since, last, now, bytes))
}
