//! Audit trail: one structured record per snapshot operation or admin call, logged under the
//! `audit` target so a subscription filter can route them (docs/security.md#audit-trail).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
/// Outcome.
pub enum Outcome {
    /// Success.
    Success,
    /// Noop.
    Noop,
    /// Denied.
    Denied,
    /// Rejected.
    Rejected,
    /// Failure.
    Failure,
}

/// Who did what to which snapshot, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Who acted (user, role or function).
    pub actor: String,
    /// Issuer (`iss`) of the caller's verified token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Subject (`sub`) of the caller's verified token, or the IAM caller's ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// How the caller was authenticated (e.g. `jwtGroup`, `jwtScope`, `iam`, `devToken`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// The HTTP method of an admin API call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// e.g. `snapshot.create`, `snapshot.delete`, `snapshot.prune`, `admin.list`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The aggregate the item belongs to.
    pub aggregate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The aggregate version (sequence of the last event folded in).
    pub version: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Request id, when there was one.
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// What happened, in a few words.
    pub detail: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

impl AuditRecord {
    /// A new value.
    pub fn new(actor: impl Into<String>, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            actor: actor.into(),
            issuer: None,
            subject: None,
            auth_method: None,
            http_method: None,
            action: action.into(),
            aggregate_id: None,
            version: None,
            outcome,
            request_id: None,
            detail: None,
            duration_ms: 0,
        }
    }

    /// Aggregate.
    pub fn aggregate(mut self, aggregate_id: impl Into<String>, version: Option<u64>) -> Self {
        self.aggregate_id = Some(aggregate_id.into());
        self.version = version;
        self
    }

    /// Who the caller is, as authenticated: token issuer and subject, and how.
    pub fn identity(
        mut self,
        issuer: Option<String>,
        subject: Option<String>,
        auth_method: Option<&str>,
    ) -> Self {
        self.issuer = issuer;
        self.subject = subject;
        self.auth_method = auth_method.map(str::to_owned);
        self
    }

    /// The HTTP method of the call.
    pub fn http_method(mut self, method: impl Into<String>) -> Self {
        self.http_method = Some(method.into());
        self
    }

    /// Request.
    pub fn request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// Detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Records how long the operation took.
    pub fn took(mut self, duration: std::time::Duration) -> Self {
        self.duration_ms = crate::clock::millis(duration);
        self
    }

    /// Emits the record as one JSON line on the `audit` target.
    pub fn emit(&self) {
        let json = serde_json::to_string(self).unwrap_or_default();
        tracing::info!(target: "audit", audit = %json, action = %self.action, outcome = ?self.outcome, "audit");
    }
}
