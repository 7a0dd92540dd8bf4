//! One invocation: read the options, prune, emit metrics, return the summary.

use lambda_runtime::{Context, Diagnostic};
use serde_json::Value;
use snapshot_core::ports::SnapshotStore;
use snapshot_core::pruning::{
    prune, prune_resuming, Deadline, PruneError, PruneRequest, PruneSummary, ScanPositions,
};
use snapshot_core::Registry;
use tracing::{error, info};

use crate::input::{parse_input, InputError};
use crate::settings::PrunerSettings;

/// Metric dimension and audit actor.
pub const FUNCTION: &str = "pruner";

/// What the runtime tells an invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub deadline: Deadline,
    pub request_id: Option<String>,
}

impl Invocation {
    /// Stops `margin` before the Lambda deadline.
    pub fn from_context(context: &Context, settings: &PrunerSettings) -> Self {
        Self {
            deadline: Deadline::before(context.deadline(), settings.deadline_margin),
            request_id: Some(context.request_id.clone()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrunerError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Prune(#[from] PruneError),
}

impl From<PrunerError> for Diagnostic {
    fn from(error: PrunerError) -> Self {
        let error_type = match &error {
            PrunerError::Input(_) | PrunerError::Prune(PruneError::InvalidRequest { .. }) => {
                "InvalidInput"
            }
            PrunerError::Prune(PruneError::Store { .. }) => "PruneFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Handles one scheduled (or manual) invocation. A run continues each scan segment from where
/// the last one stopped (`positions`); a dry run reads from the beginning and moves nothing.
pub async fn handler<S: SnapshotStore + ?Sized, P: ScanPositions + ?Sized>(
    store: &S,
    positions: &P,
    registry: &Registry,
    settings: &PrunerSettings,
    payload: Value,
    invocation: Invocation,
) -> Result<PruneSummary, PrunerError> {
    let input = parse_input(payload)?;
    let mut request = PruneRequest::new(input.max_snapshots.unwrap_or(settings.max_snapshots));
    request.dry_run = input.dry_run;
    request.aggregate_id = input.aggregate_id;
    request.segments = settings.segments;
    request.deadline = invocation.deadline;
    request.request_id = invocation.request_id;
    info!(
        dry_run = request.dry_run,
        aggregate_id = request.aggregate_id.as_deref().unwrap_or("*"),
        max_snapshots = request.max_snapshots,
        segments = request.segments,
        keys_per_run = settings.keys_per_run,
        "pruning"
    );
    let result = if request.dry_run {
        prune(store, registry, &request).await
    } else {
        // A scheduled run reads at most its budget of index keys and resumes there next time.
        request.key_budget = Some(settings.keys_per_run);
        prune_resuming(store, positions, registry, &request).await
    };
    match result {
        Ok(summary) => {
            summary.metrics(FUNCTION).flush();
            Ok(summary)
        }
        Err(e) => {
            if let PruneError::Store { partial, .. } = &e {
                let mut metrics = partial.metrics(FUNCTION);
                metrics.count("PruneFailures", 1);
                metrics.flush();
            }
            error!(error = %e, "pruning failed");
            Err(e.into())
        }
    }
}
