//! What the snapshotter's audit records name (docs/security.md#audit-trail): a leaf that
//! [`crate::evaluate`] (the records of a snapshot and of a drift) and [`crate::rebuild`] (the
//! mark on a snapshot found invalid while rebuilding) both read.

/// The actor of every record and invalid mark the snapshotter writes, and the `createdBy` of
/// its snapshots (the admin API's records name the caller instead).
pub const ACTOR: &str = "snapshotter";
/// The action of the record of an evaluation that stored, found or refused a snapshot
/// (created, already present, too large, an event type this version does not know, failed);
/// an aggregate whose policy did not trip gets no record.
pub const ACTION: &str = "snapshot.create";
/// The action of the record of a drift: a sampled snapshot whose state differs from a full
/// replay of its events (it is marked invalid and kept as evidence).
pub const DRIFT_ACTION: &str = "snapshot.drift";
