//! Deny-by-default access control. Behind API Gateway the caller comes from the HTTP API
//! request context (JWT claims or IAM); on the local dev server a bearer token configured at
//! start-up maps to an admin. Everything else is refused: no identity → 401, an identity
//! without admin rights → 403.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizerIamDescription, ApiGatewayRequestAuthorizerJwtDescription,
};
use lambda_http::request::RequestContext;
use sha2::{Digest, Sha256};
use snapshot_core::config::{ConfigError, Env};
use subtle::ConstantTimeEq;
use tracing::warn;

use crate::problem::Problem;

/// Default of `ADMIN_GROUP`.
pub const DEFAULT_ADMIN_GROUP: &str = "snapshot-admins";

/// Who counts as an admin behind API Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// A JWT whose `cognito:groups` claim contains this group is an admin (`ADMIN_GROUP`).
    pub admin_group: String,
    /// A JWT carrying this OAuth scope is an admin (`ADMIN_SCOPE`; unset: scopes grant nothing).
    pub admin_scope: Option<String>,
    /// IAM caller ARNs that are admins (`ADMIN_PRINCIPALS`, comma-separated). An entry ending
    /// in `*` matches every ARN it prefixes, e.g. all sessions of an assumed role.
    pub admin_principals: Vec<String>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            admin_group: DEFAULT_ADMIN_GROUP.to_owned(),
            admin_scope: None,
            admin_principals: Vec::new(),
        }
    }
}

impl AccessPolicy {
    /// Reads the policy from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads `ADMIN_GROUP`, `ADMIN_SCOPE` and `ADMIN_PRINCIPALS` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let admin_group = env.string("ADMIN_GROUP", DEFAULT_ADMIN_GROUP)?;
        let admin_scope = env.optional("ADMIN_SCOPE").map(|s| s.trim().to_owned());
        let mut admin_principals = Vec::new();
        if let Some(raw) = env.optional("ADMIN_PRINCIPALS") {
            for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if !is_principal_pattern(entry) {
                    return Err(ConfigError {
                        variable: "ADMIN_PRINCIPALS",
                        value: raw.clone(),
                        reason: format!(
                            "`{entry}` is not an IAM principal ARN with a 12-digit account \
                             (a `*` is allowed only at the end, after the account)"
                        ),
                    });
                }
                admin_principals.push(entry.to_owned());
            }
        }
        Ok(Self {
            admin_group: admin_group.trim().to_owned(),
            admin_scope,
            admin_principals,
        })
    }

    fn is_admin_principal(&self, arn: &str) -> bool {
        self.admin_principals
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => arn.starts_with(prefix),
                None => entry == arn,
            })
    }
}

/// The local dev server's bearer token; only its SHA-256 is kept, and presented tokens are
/// hashed too so the comparison takes the same time whatever their length or content.
#[derive(Clone)]
pub struct DevToken([u8; 32]);

impl DevToken {
    /// `None` for a blank token: a blank token must never grant anything.
    pub fn new(token: &str) -> Option<Self> {
        if token.trim().is_empty() {
            return None;
        }
        Some(Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// True when `presented` is the token (constant time).
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for DevToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevToken(<redacted>)")
    }
}

/// How an admin was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthMethod {
    /// JWT authorizer: admin group claim.
    JwtGroup,
    /// JWT authorizer: admin scope.
    JwtScope,
    /// IAM authorization: listed principal.
    Iam,
    /// Local dev server token.
    DevToken,
}

/// An authenticated admin. Handlers take it as an extractor, so none runs without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Username, subject or ARN; recorded as `createdBy` and in the audit trail.
    pub id: String,
    /// How the caller was recognised as an admin.
    pub method: AuthMethod,
}

/// A caller that was identified but refused; kept on the response for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedCaller(pub String);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No identity at all (401).
    Unauthenticated(String),
    /// An identity without admin rights (403).
    Forbidden {
        /// Who the caller is (username, subject or ARN).
        caller: String,
        /// Why they are refused.
        reason: String,
    },
}

impl Denial {
    /// 401 or 403.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(reason) => {
                let mut response = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "Unauthorized",
                    reason,
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::Forbidden { caller, reason } => {
                let mut response =
                    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", reason)
                        .into_response();
                response.extensions_mut().insert(RefusedCaller(caller));
                response
            }
        }
    }
}

/// Decides who the caller is and whether they are an admin.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    policy: AccessPolicy,
    dev_token: Option<Arc<DevToken>>,
}

impl Authenticator {
    /// For Lambda: only the API Gateway request context can identify a caller.
    pub fn gateway(policy: AccessPolicy) -> Self {
        Self {
            policy,
            dev_token: None,
        }
    }

    /// For the local dev server: also accept `Authorization: Bearer <token>`.
    pub fn with_dev_token(mut self, token: DevToken) -> Self {
        self.dev_token = Some(Arc::new(token));
        self
    }

    /// The admin making this request, or why it is refused.
    pub fn authenticate(
        &self,
        context: Option<&RequestContext>,
        headers: &HeaderMap,
    ) -> Result<Actor, Denial> {
        if let Some(authorizer) = context.and_then(RequestContext::authorizer) {
            if let Some(jwt) = &authorizer.jwt {
                return self.check_jwt(jwt);
            }
            if let Some(iam) = &authorizer.iam {
                return self.check_iam(iam);
            }
            if !authorizer.fields.is_empty() {
                return Err(Denial::Forbidden {
                    caller: "lambda-authorizer".to_owned(),
                    reason: "a Lambda authorizer identity carries no admin rights".to_owned(),
                });
            }
        }
        match &self.dev_token {
            Some(token) => from_bearer(token, headers),
            None => Err(Denial::Unauthenticated(
                "no caller identity in the request".to_owned(),
            )),
        }
    }

    fn check_jwt(&self, jwt: &ApiGatewayRequestAuthorizerJwtDescription) -> Result<Actor, Denial> {
        let claim = |name: &str| jwt.claims.get(name).map(String::as_str);
        let id = ["cognito:username", "username", "sub", "client_id"]
            .iter()
            .find_map(|name| claim(name).filter(|v| !v.trim().is_empty()))
            .unwrap_or("jwt-caller")
            .to_owned();
        let in_group = claim("cognito:groups")
            .map(claim_list)
            .is_some_and(|groups| groups.iter().any(|g| *g == self.policy.admin_group));
        if in_group {
            return Ok(Actor {
                id,
                method: AuthMethod::JwtGroup,
            });
        }
        if let Some(scope) = &self.policy.admin_scope {
            let in_claim = claim("scope")
                .or_else(|| claim("scp"))
                .map(claim_list)
                .is_some_and(|scopes| scopes.iter().any(|s| s == scope));
            let in_scopes = jwt
                .scopes
                .as_ref()
                .is_some_and(|scopes| scopes.iter().any(|s| s == scope));
            if in_claim || in_scopes {
                return Ok(Actor {
                    id,
                    method: AuthMethod::JwtScope,
                });
            }
        }
        Err(Denial::Forbidden {
            caller: id,
            reason: "the token's groups and scopes grant no admin rights".to_owned(),
        })
    }

    fn check_iam(&self, iam: &ApiGatewayRequestAuthorizerIamDescription) -> Result<Actor, Denial> {
        let Some(arn) = iam.user_arn.as_deref().filter(|a| !a.trim().is_empty()) else {
            let caller = iam
                .caller_id
                .clone()
                .unwrap_or_else(|| "iam-caller".to_owned());
            return Err(Denial::Forbidden {
                caller,
                reason: "the IAM caller has no ARN to check".to_owned(),
            });
        };
        if self.policy.is_admin_principal(arn) {
            Ok(Actor {
                id: arn.to_owned(),
                method: AuthMethod::Iam,
            })
        } else {
            Err(Denial::Forbidden {
                caller: arn.to_owned(),
                reason: "the IAM principal is not an admin".to_owned(),
            })
        }
    }
}

fn from_bearer(token: &DevToken, headers: &HeaderMap) -> Result<Actor, Denial> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Denial::Unauthenticated(
            "missing Authorization: Bearer token".to_owned(),
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(presented) if token.matches(presented) => Ok(Actor {
            id: "local-admin".to_owned(),
            method: AuthMethod::DevToken,
        }),
        Some(_) => Err(Denial::Unauthenticated("invalid bearer token".to_owned())),
        None => Err(Denial::Unauthenticated(
            "the Authorization header is not a Bearer token".to_owned(),
        )),
    }
}

/// Splits a claim that lists values. API Gateway flattens JWT arrays into strings, as
/// `[a b]`, or passes them as JSON (`["a","b"]`); scopes are space-separated.
pub fn claim_list(raw: &str) -> Vec<&str> {
    let trimmed = raw.trim();
    let inner = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|item| item.trim_matches(|c| c == '"' || c == '\''))
        .filter(|item| !item.is_empty())
        .collect()
}

/// Middleware: authenticates every request it wraps, attaching the [`Actor`] to the request
/// and response; refuses with 401/403 problem+json otherwise.
pub async fn require_admin(
    State(authenticator): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = authenticator.authenticate(
        request.extensions().get::<RequestContext>(),
        request.headers(),
    );
    match outcome {
        Ok(actor) => {
            request.extensions_mut().insert(actor.clone());
            let mut response = next.run(request).await;
            response.extensions_mut().insert(actor);
            response
        }
        Err(denial) => {
            warn!(status = denial.status().as_u16(), path = %request.uri().path(), "admin request refused");
            denial.into_response()
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Denial;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| Denial::Unauthenticated("no authenticated caller".to_owned()))
    }
}

/// `arn:partition:service::account:resource[*]`: the account must be spelled out, so a
/// wildcard can never widen admin rights beyond one account's principals.
fn is_principal_pattern(entry: &str) -> bool {
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    let [arn, partition, service, _region, account, resource] = parts.as_slice() else {
        return false;
    };
    let wildcard_only_at_end = !entry.trim_end_matches('*').contains('*');
    *arn == "arn"
        && !partition.is_empty()
        && (*service == "iam" || *service == "sts")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !resource.trim_end_matches('*').is_empty()
        && wildcard_only_at_end
}

#[cfg(test)]
mod principal_pattern_tests {
    use super::is_principal_pattern;

    #[test]
    fn principal_patterns_must_name_an_account() {
        assert!(is_principal_pattern(
            "arn:aws:iam::123456789012:user/ops-admin"
        ));
        assert!(is_principal_pattern(
            "arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/*"
        ));
        for bad in [
            "*",
            "arn:*",
            "arn:aws:iam::*",
            "arn:aws:iam::12345:user/x",
            "arn:aws:iam::123456789012:*",
            "arn:aws:s3::123456789012:b",
            "arn:aws:iam::123456789012:user/*/x",
        ] {
            assert!(!is_principal_pattern(bad), "{bad}");
        }
    }
}
