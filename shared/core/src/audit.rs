//! Audit trail: one structured record per snapshot operation or admin call, logged under the
//! `audit` target so a subscription filter can route them (docs/security.md#audit-trail).

use serde::Serialize;

/// How an audited operation ended, serialised lowercase (`"success"`, …) as the record's
/// `outcome`: what an alarm or a query over the trail filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did what was asked: a snapshot written, deleted or marked, a 2xx answer.
    Success,
    /// Nothing needed doing and nothing changed: the snapshot was already there, already gone,
    /// or a dry run only counted what it would delete.
    Noop,
    /// The caller was not allowed (the admin API's 401 and 403): nothing was read or changed.
    Denied,
    /// The request was refused as it stands (another 4xx, a snapshot over the item limit, an
    /// event type this version does not know); retrying it unchanged fails the same way.
    Rejected,
    /// It failed on the way (a store error, a bug, a drift found); what was meant may not have
    /// happened, and retrying later may help.
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
    /// A record of `actor` doing `action` that ended as `outcome`, with no subject, identity or
    /// detail yet (the builder methods below add them) and a duration of 0 ms until
    /// [`AuditRecord::took`].
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

    /// The aggregate acted on, and the version concerned when there is one (the snapshot
    /// created, deleted or marked; `None` for an aggregate-wide action).
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

    /// The id of the request that caused it (API Gateway's or Lambda's), so a record can be
    /// joined with that invocation's logs; `None` leaves it out.
    pub fn request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// What happened, in words an operator reads (a reason, an error's text); never a secret
    /// or a state.
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
