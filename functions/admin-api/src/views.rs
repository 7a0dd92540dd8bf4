//! JSON shapes of the responses (camelCase, like the stored items). Each derives its schema
//! in the OpenAPI document (`ToSchema`); the names there are the `as = …` ones.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;
use snapshot_core::backfill::BackfillPlan;
use snapshot_core::codec::SnapshotCodec;
use snapshot_core::repository::LoadReport;
use snapshot_core::snapshot::{
    open_snapshot, InvalidMark, SnapshotHeader, SnapshotMetadata, SnapshotRecord, StateRef, Stored,
    UnreadableSnapshot,
};
use snapshot_core::Registry;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Most bytes of decoded state one response carries: a Lambda response is limited to 6 MB,
/// and warehouse states can grow to megabytes. Larger states are omitted with a reason.
pub const STATE_RESPONSE_BUDGET: usize = 5 * 1024 * 1024;

/// Lambda's limit on a function's response payload (6 MB). Through API Gateway the payload is
/// the proxy envelope, whose `body` is the response JSON *escaped as a JSON string* (every `"`
/// becomes `\"`), so a body can cost nearly twice its length.
pub const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;
/// Room left in the payload for the envelope: status, headers, `isBase64Encoded`.
const ENVELOPE_HEADROOM: usize = 64 * 1024;

/// The bytes `body` takes inside the Lambda response payload: its length once escaped as a
/// JSON string (quotes and backslashes double, control characters become escapes).
pub fn lambda_payload_bytes(body: &[u8]) -> usize {
    2 + body
        .iter()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Whether a body of `payload` bytes (as [`lambda_payload_bytes`] counts them) fits a Lambda
/// response with room left for the envelope.
pub fn fits_lambda_response(payload: usize) -> bool {
    payload.saturating_add(ENVELOPE_HEADROOM) <= LAMBDA_RESPONSE_LIMIT
}

/// The JSON of `view` when its escaped size fits a Lambda response; otherwise why not (the
/// measured size), so the caller can leave the state out.
pub fn encode_within_limit<T: Serialize>(
    view: &T,
) -> Result<Result<Vec<u8>, String>, serde_json::Error> {
    let body = serde_json::to_vec(view)?;
    let payload = lambda_payload_bytes(&body);
    if !fits_lambda_response(payload) {
        return Ok(Err(format!(
            "the response would be {payload} bytes once encoded, over the {LAMBDA_RESPONSE_LIMIT} byte Lambda response limit"
        )));
    }
    Ok(Ok(body))
}

/// A `200 application/json` response of already encoded bytes.
pub fn json_response(body: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Why a state is left out of a response, if it is.
pub fn omitted_state(bytes: usize) -> Option<String> {
    (bytes > STATE_RESPONSE_BUDGET).then(|| {
        format!("the state is {bytes} bytes, over the {STATE_RESPONSE_BUDGET} byte response budget")
    })
}

/// A snapshot's metadata, as listed and returned on creation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Snapshot)]
pub struct SnapshotView {
    /// The aggregate.
    pub aggregate_id: String,
    /// Its registered type.
    pub aggregate_type: String,
    /// The aggregate version (of the snapshot, or loaded).
    pub version: u64,
    /// Equals `version`.
    pub last_event_sequence: u64,
    /// Revision of the state shape.
    pub schema_version: u32,
    /// `json`, `json+zstd`, or offloaded: `s3+json`, `s3+json+zstd` (as stored: an item that
    /// says otherwise is listed as it is, and fails the checks).
    pub encoding: String,
    /// SHA-256 of the uncompressed state.
    pub checksum: String,
    /// Creation, epoch milliseconds.
    pub timestamp: i64,
    /// Uncompressed state size.
    pub size_bytes: u64,
    /// Stored state size.
    pub stored_bytes: u64,
    /// Who made it and why.
    pub metadata: SnapshotMetadata,
    /// TTL, epoch seconds (DynamoDB TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// `eventId` of the event at `version`: a load uses the snapshot only when that event
    /// carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<String>,
    /// Set once a reader found the snapshot invalid: never used, never counted toward keep-N,
    /// replaceable at its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<InvalidMark>,
    /// Offloaded states only (encoding `s3+…`): the S3 object holding the stored state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_ref: Option<StateRef>,
}

/// A stored item that does not read as a snapshot, listed as such.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UnreadableSnapshot)]
pub struct UnreadableView {
    /// The aggregate.
    pub aggregate_id: String,
    /// The item's version, when even that does not read: absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Always true.
    #[schema(schema_with = always_true)]
    pub unreadable: bool,
    /// Always false.
    #[schema(schema_with = always_false)]
    pub valid: bool,
    /// What does not read.
    pub invalid_reason: String,
}

impl From<&UnreadableSnapshot> for UnreadableView {
    fn from(u: &UnreadableSnapshot) -> Self {
        Self {
            aggregate_id: u.aggregate_id.clone(),
            version: u.version,
            unreadable: true,
            valid: false,
            invalid_reason: u.reason.clone(),
        }
    }
}

/// One listed item: a snapshot (metadata, or with state) or an unreadable item.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Listed<T> {
    /// A snapshot.
    Snapshot(T),
    /// An item that does not read as a snapshot.
    Unreadable(UnreadableView),
}

impl<T> Listed<T> {
    /// `f` applied to a readable item.
    pub fn of<R>(stored: &Stored<R>, f: impl FnOnce(&R) -> T) -> Self {
        match stored {
            Ok(item) => Self::Snapshot(f(item)),
            Err(unreadable) => Self::Unreadable(UnreadableView::from(unreadable)),
        }
    }
}

impl From<&SnapshotHeader> for SnapshotView {
    fn from(h: &SnapshotHeader) -> Self {
        Self {
            aggregate_id: h.aggregate_id.clone(),
            aggregate_type: h.aggregate_type.clone(),
            version: h.version,
            last_event_sequence: h.last_event_sequence,
            schema_version: h.schema_version,
            encoding: h.encoding.clone(),
            checksum: h.checksum.clone(),
            timestamp: h.timestamp,
            size_bytes: h.size_bytes,
            stored_bytes: h.stored_bytes,
            metadata: h.metadata.clone(),
            expires_at: h.expires_at,
            last_event_id: h.last_event_id.clone(),
            invalid: h.invalid.clone(),
            state_ref: h.state_ref.clone(),
        }
    }
}

/// A snapshot with its decoded state, or why it cannot be used.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotWithState {
    /// The snapshot's metadata.
    #[serde(flatten)]
    pub snapshot: SnapshotView,
    /// False when the checksum, schema version, identity or state does not check out.
    pub valid: bool,
    /// The decoded state, verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub state: Option<Value>,
    /// Why the snapshot is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Why a valid state is left out: over the 5 MiB state budget, or the response would pass
    /// Lambda's 6 MB limit once encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_omitted: Option<String>,
}

/// Result of `GET /admin/snapshots/{aggregateId}/latest`: the newest valid snapshot with its
/// state, and the newer ones the walk passed over.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LatestSnapshot)]
pub struct LatestView {
    /// The snapshot and its state.
    #[serde(flatten)]
    pub snapshot: SnapshotWithState,
    /// Versions of newer snapshots that failed a check (null: an item whose version does not
    /// read), newest first.
    pub skipped_invalid: Vec<Option<u64>>,
}

impl SnapshotWithState {
    /// A snapshot the walk found valid, with its verified state.
    pub fn valid(header: &SnapshotHeader, state: Value, bytes: usize) -> Self {
        let omitted = omitted_state(bytes);
        Self {
            snapshot: SnapshotView::from(header),
            valid: true,
            state: if omitted.is_none() { Some(state) } else { None },
            invalid_reason: None,
            state_omitted: omitted,
        }
    }

    /// Verifies and decodes `record` as a snapshot of `aggregate_id`; never fails, an unusable
    /// snapshot is flagged.
    pub fn open(
        registry: &Registry,
        codec: &SnapshotCodec,
        aggregate_id: &str,
        record: &SnapshotRecord,
    ) -> Self {
        let snapshot = SnapshotView::from(&record.header);
        match decode_state(registry, codec, aggregate_id, record) {
            Ok((state, bytes)) => {
                let omitted = omitted_state(bytes);
                Self {
                    snapshot,
                    valid: true,
                    state: if omitted.is_none() { Some(state) } else { None },
                    invalid_reason: None,
                    state_omitted: omitted,
                }
            }
            Err(reason) => Self {
                snapshot,
                valid: false,
                state: None,
                invalid_reason: Some(reason),
                state_omitted: None,
            },
        }
    }
}

/// The checks the repository makes before applying a snapshot: registered type, identity,
/// schema version, checksum, and a state that decodes as that aggregate. Returns the state
/// and its size in bytes.
pub fn decode_state(
    registry: &Registry,
    codec: &SnapshotCodec,
    aggregate_id: &str,
    record: &SnapshotRecord,
) -> Result<(Value, usize), String> {
    let h = &record.header;
    let kind = registry
        .get(&h.aggregate_type)
        .ok_or_else(|| format!("aggregateType `{}` is not registered", h.aggregate_type))?;
    let json = open_snapshot(
        codec,
        record,
        aggregate_id,
        kind.type_name(),
        kind.schema_version(),
    )
    .map_err(|e| e.to_string())?;
    kind.fold_json(aggregate_id, h.version, Some(&json), &[])
        .map_err(|e| e.to_string())?;
    let state = serde_json::from_slice(&json).map_err(|e| format!("state is not JSON: {e}"))?;
    Ok((state, json.len()))
}

/// Result of `POST /admin/snapshots/create/…`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateResult)]
pub struct CreateView {
    /// `created`, or `alreadyExists` when a snapshot at this version was already stored.
    pub outcome: CreateOutcome,
    /// The snapshot's metadata.
    pub snapshot: SnapshotView,
}

/// What a manual snapshot request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CreateOutcome {
    /// A new snapshot was stored.
    Created,
    /// A snapshot at this version was already stored; it is returned unchanged.
    AlreadyExists,
}

/// One page of snapshots, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPage<T> {
    /// The aggregate.
    pub aggregate_id: String,
    /// Newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The body of a listing: a page of snapshots' metadata, or with `includeState=true` a page of
/// snapshots with their states. Its schema is either page (`anyOf`: an empty page, or one of
/// unreadable items only, is both).
#[derive(Debug)]
pub enum ListPage {}

/// The two pages a listing answers with, whose derived schema (a `oneOf`) [`ListPage`] turns
/// into an `anyOf`. Never built: it only describes.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read by the schema derive only
enum ListPageArms {
    /// Metadata only.
    Metadata(SnapshotPage<Listed<SnapshotView>>),
    /// With `includeState=true`.
    WithState(SnapshotPage<Listed<SnapshotWithState>>),
}

impl PartialSchema for ListPage {
    fn schema() -> RefOr<Schema> {
        match ListPageArms::schema() {
            RefOr::T(Schema::OneOf(arms)) => {
                let mut any_of = AnyOfBuilder::new().description(Some(
                    "A page of snapshots' metadata, or with includeState=true a page of snapshots with their states",
                ));
                for arm in arms.items {
                    any_of = any_of.item(arm);
                }
                any_of.into()
            }
            other => other,
        }
    }
}

impl ToSchema for ListPage {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SnapshotListing")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        ListPageArms::schemas(schemas);
    }
}

/// A boolean that is always `true` (`unreadable` of an unreadable item).
fn always_true() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
        .into()
}

/// A boolean that is always `false` (`valid` of an unreadable item).
fn always_false() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([false]))
        .into()
}

/// Current state of an aggregate and how it was loaded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Aggregate)]
pub struct AggregateView {
    /// The aggregate.
    pub aggregate_id: String,
    /// Its registered type.
    pub aggregate_type: String,
    /// The aggregate version (of the snapshot, or loaded).
    pub version: u64,
    /// The decoded state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub state: Option<Value>,
    /// Why the state is left out: over the 5 MiB response budget, or the response would pass
    /// Lambda's 6 MB limit once encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_omitted: Option<String>,
    /// How the load was served.
    pub load: LoadReport,
}

/// Result of a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = VerifyResult)]
pub struct VerifyView {
    /// The aggregate.
    pub aggregate_id: String,
    /// Its registered type.
    pub aggregate_type: String,
    /// `match` or `mismatch`.
    pub result: VerifyOutcome,
    /// JSON Pointers (RFC 6901) of the values that differ; `""` is the whole state. At most
    /// 100 (`differencesOmitted` counts the rest).
    pub differences: Vec<String>,
    /// Differences found but not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub differences_omitted: usize,
    /// The aggregate version (of the snapshot, or loaded).
    pub version: u64,
    /// How the snapshot-based load was served (which snapshot, how many tail events).
    pub snapshot_load: LoadReport,
    /// Events folded by the full replay.
    pub events_replayed: u64,
    /// On a mismatch (and within the response budget): the state loaded through the
    /// snapshot, for showing the differences.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub loaded_state: Option<Value>,
    /// On a mismatch: the state of the full replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub replayed_state: Option<Value>,
    /// Set when the states were left out to keep the response within its limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub states_omitted: Option<String>,
}

/// What a drift check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum VerifyOutcome {
    /// The state loaded through the snapshot equals the full replay's.
    Match,
    /// They differ (see `differences`).
    Mismatch,
}

impl VerifyOutcome {
    /// The word the body says (`match`, `mismatch`), for logs and the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Mismatch => "mismatch",
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Result of a delete.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Deleted)]
pub struct DeletedView {
    /// The aggregate.
    pub aggregate_id: String,
    /// The aggregate version (of the snapshot, or loaded).
    pub version: u64,
    /// Always true on success.
    pub deleted: bool,
    /// True when it was the aggregate's only snapshot (allowed by `force=true`).
    pub was_only_snapshot: bool,
}

/// Result of a backfill dry run (`POST /admin/backfill`, the default).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackfillDryRun)]
pub struct BackfillPlanView {
    /// Always true: nothing was started.
    pub dry_run: bool,
    /// What a backfill would do.
    #[serde(flatten)]
    pub plan: BackfillPlan,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bytes_count_the_escaping_of_the_body() {
        assert_eq!(lambda_payload_bytes(b"abc"), 5);
        // `{"a":"\n"}`: 10 bytes, of which 4 quotes and 1 backslash double.
        assert_eq!(lambda_payload_bytes(br#"{"a":"\n"}"#), 2 + 10 + 5);
        assert_eq!(lambda_payload_bytes(&[0x01]), 2 + 6);
    }

    #[test]
    fn a_body_under_the_raw_budget_can_be_over_the_encoded_limit() {
        // 3.5 MB of quotes: under the 5 MB raw budget, but each `"` is `\"` in the response
        // JSON and `\\\"` once the envelope escapes it again.
        let quotes = serde_json::json!({ "state": "\"".repeat(3_500_000) });
        assert!(serde_json::to_vec(&quotes).unwrap().len() < 8_000_000);
        assert!(omitted_state(3_500_000).is_none());
        let refused = encode_within_limit(&quotes).unwrap().unwrap_err();
        assert!(refused.contains("Lambda response limit"), "{refused}");
        let plain = serde_json::json!({ "state": "a".repeat(3_500_000) });
        assert!(encode_within_limit(&plain).unwrap().is_ok());
    }
}
