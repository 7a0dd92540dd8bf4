//! Converts core errors into problems (`From`, so handlers just use `?`): what the caller can
//! act on is a 4xx naming the aggregate; storage trouble is a 503 and corrupt stored data a
//! 500, both logged.

use axum::http::StatusCode;
use snapshot_core::snapshot::SnapshotBuildError;
use snapshot_core::{BackendFailure, EventError, RepositoryError, StoreError};
use tracing::error;

use crate::problem::Problem;

/// `Retry-After` of a throttled storage call, in seconds: DynamoDB's adaptive capacity and
/// on-demand scaling react within seconds.
pub const THROTTLED_RETRY_AFTER_SECS: u16 = 2;
/// `Retry-After` of any other transient storage failure (timeout, 5xx, connection).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u16 = 1;

/// Problem for a failed repository call.
impl From<RepositoryError> for Problem {
    fn from(err: RepositoryError) -> Self {
        repository_problem(err)
    }
}

/// Problem for a failed store call.
impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        store_problem(err)
    }
}

/// Problem for an unusable stored event.
impl From<EventError> for Problem {
    fn from(err: EventError) -> Self {
        event_problem(err)
    }
}

/// A response body that cannot be serialised is our fault (500).
impl From<serde_json::Error> for Problem {
    fn from(err: serde_json::Error) -> Self {
        Problem::internal("serialization", err.to_string())
    }
}

fn repository_problem(err: RepositoryError) -> Problem {
    match err {
        RepositoryError::NotFound { aggregate_id } => Problem::not_found(
            "aggregate-not-found",
            format!("aggregate `{aggregate_id}` has no events"),
        ),
        RepositoryError::Store(e) => store_problem(e),
        RepositoryError::Event(e) => event_problem(e),
        RepositoryError::Domain(e) => Problem::conflict("domain-rule", e.to_string()),
        RepositoryError::Snapshot(e @ SnapshotBuildError::TooLarge { .. }) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "snapshot-too-large",
            "Snapshot cannot be stored",
            e.to_string(),
        ),
        RepositoryError::Snapshot(e) => {
            error!(error = %e, "snapshot encoding failed");
            Problem::internal("snapshot-encoding", e.to_string())
        }
    }
}

fn store_problem(err: StoreError) -> Problem {
    match err {
        StoreError::Backend {
            operation,
            failure,
            source,
        } => {
            error!(operation, %failure, error = %source, "storage request failed");
            match failure {
                // The SDK already retried with backoff: the caller waits a little longer.
                BackendFailure::Throttled => Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-throttled",
                    "Storage busy",
                    format!(
                        "{operation} was throttled; retry after {THROTTLED_RETRY_AFTER_SECS} s"
                    ),
                )
                .with_retry_after(THROTTLED_RETRY_AFTER_SECS),
                BackendFailure::Timeout | BackendFailure::Unavailable => Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Storage unavailable",
                    format!("{operation} failed; retry later"),
                )
                .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS),
                // Refused for a reason repeating cannot fix (access, missing table): ours.
                BackendFailure::Rejected => {
                    Problem::internal("storage-rejected", format!("{operation} failed"))
                }
            }
        }
        StoreError::Conflict { .. } => Problem::conflict("concurrent-change", err.to_string()),
        StoreError::Event(e) => event_problem(e),
        StoreError::InvalidRequest { .. } => {
            Problem::bad_request("invalid-store-request", err.to_string())
        }
        StoreError::MalformedSnapshot { .. } => {
            error!(error = %err, "malformed snapshot item");
            Problem::internal("malformed-snapshot", err.to_string())
        }
    }
}

/// A stored event of another type means the caller named the wrong type (409); any other
/// unusable event is corrupt data (500). Either way the detail names aggregate and sequence.
fn event_problem(err: EventError) -> Problem {
    match err {
        EventError::WrongAggregate { .. } => {
            Problem::conflict("aggregate-type-mismatch", err.to_string())
        }
        other => {
            error!(aggregate_id = %other.aggregate_id(), error = %other, "unusable stored event");
            Problem::internal("unusable-event", other.to_string())
        }
    }
}
