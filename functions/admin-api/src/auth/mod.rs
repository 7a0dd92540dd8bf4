//! Deny-by-default access control. Behind API Gateway the caller comes from the HTTP API
//! request context (JWT claims or IAM), and a JWT context counts only when the bearer token
//! itself verifies ([`jwt`]) and says the same; on the local dev server a bearer token
//! configured at start-up maps to an admin. Everything else is refused: no identity → 401, an
//! identity without admin rights → 403.

pub mod claims;
pub mod jwks;
pub mod jwt;
pub mod policy;

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
use subtle::ConstantTimeEq;
use tracing::{error, warn};

use crate::problem::Problem;
pub use jwt::{IssuerSettings, TokenError, TokenVerifier, VerifiedToken};
pub use policy::{AccessPolicy, DEFAULT_ADMIN_GROUP};

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
    /// Verified JWT: admin group claim.
    JwtGroup,
    /// Verified JWT: admin scope.
    JwtScope,
    /// IAM authorization: listed principal.
    Iam,
    /// Local dev server token.
    DevToken,
}

impl AuthMethod {
    /// The name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JwtGroup => "jwtGroup",
            Self::JwtScope => "jwtScope",
            Self::Iam => "iam",
            Self::DevToken => "devToken",
        }
    }
}

/// An authenticated admin. Handlers take it as an extractor, so none runs without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Username, subject or ARN; recorded as `createdBy` and in the audit trail.
    pub id: String,
    /// How the caller was recognised as an admin.
    pub method: AuthMethod,
    /// The token's `iss` (JWT callers).
    pub issuer: Option<String>,
    /// The token's `sub`, or the IAM caller ARN.
    pub subject: Option<String>,
}

/// A caller that was identified but refused; kept on the response for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedCaller(pub String);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No (verifiable) identity (401).
    Unauthenticated(String),
    /// An identity without admin rights (403).
    Forbidden {
        /// Who the caller is (username, subject or ARN).
        caller: String,
        /// Why they are refused.
        reason: String,
    },
    /// The issuer's keys could not be fetched, so no token can be checked now (503).
    Unavailable,
}

impl Denial {
    /// 401, 403 or 503.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::Unavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "token-verification-unavailable",
                "Service unavailable",
                "tokens cannot be verified right now; retry later",
            )
            .into_response(),
        }
    }
}

/// Decides who the caller is and whether they are an admin.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    policy: AccessPolicy,
    verifier: Option<Arc<TokenVerifier>>,
    dev_token: Option<Arc<DevToken>>,
}

impl Authenticator {
    /// For Lambda: the API Gateway request context identifies the caller, and a JWT context
    /// counts only with a bearer token that `verifier` accepts and that says the same.
    pub fn gateway(policy: AccessPolicy, verifier: TokenVerifier) -> Self {
        Self {
            policy,
            verifier: Some(Arc::new(verifier)),
            dev_token: None,
        }
    }

    /// For the local dev server: no token verifier, so any JWT context is refused; admins
    /// come through [`with_dev_token`](Self::with_dev_token) (or a listed IAM principal).
    pub fn local(policy: AccessPolicy) -> Self {
        Self {
            policy,
            verifier: None,
            dev_token: None,
        }
    }

    /// For the local dev server: also accept `Authorization: Bearer <token>` when the request
    /// has no authorizer context. Never configured in Lambda.
    pub fn with_dev_token(mut self, token: DevToken) -> Self {
        self.dev_token = Some(Arc::new(token));
        self
    }

    /// The admin making this request, or why it is refused.
    pub async fn authenticate(
        &self,
        context: Option<&RequestContext>,
        headers: &HeaderMap,
    ) -> Result<Actor, Denial> {
        if let Some(authorizer) = context.and_then(RequestContext::authorizer) {
            if let Some(jwt) = &authorizer.jwt {
                return self.check_jwt(jwt, headers).await;
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
            Some(token) => from_dev_bearer(token, headers),
            None => Err(Denial::Unauthenticated(
                "no caller identity in the request".to_owned(),
            )),
        }
    }

    async fn check_jwt(
        &self,
        context: &ApiGatewayRequestAuthorizerJwtDescription,
        headers: &HeaderMap,
    ) -> Result<Actor, Denial> {
        let Some(verifier) = &self.verifier else {
            return Err(Denial::Unauthenticated(
                "JWT callers are not accepted here".to_owned(),
            ));
        };
        let token = bearer(headers)?;
        let verified = match verifier.verify(token).await {
            Ok(verified) => verified,
            Err(TokenError::Keys(e)) => {
                error!(error = %e, "the issuer's signing keys could not be fetched");
                return Err(Denial::Unavailable);
            }
            Err(e) => return Err(Denial::Unauthenticated(e.to_string())),
        };
        verified
            .agrees_with(&context.claims)
            .map_err(Denial::Unauthenticated)?;
        // From here on only the verified claims count.
        let id = ["cognito:username", "username", "sub", "client_id"]
            .iter()
            .find_map(|name| verified.claim(name).filter(|v| !v.trim().is_empty()))
            .unwrap_or("jwt-caller")
            .to_owned();
        let actor = |method| Actor {
            id: id.clone(),
            method,
            issuer: verified.claim("iss").map(str::to_owned),
            subject: verified.claim("sub").map(str::to_owned),
        };
        if verified.groups().contains(&self.policy.admin_group) {
            return Ok(actor(AuthMethod::JwtGroup));
        }
        if let Some(scope) = &self.policy.admin_scope {
            if verified.scopes().iter().any(|s| s == scope) {
                return Ok(actor(AuthMethod::JwtScope));
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
                issuer: None,
                subject: Some(arn.to_owned()),
            })
        } else {
            Err(Denial::Forbidden {
                caller: arn.to_owned(),
                reason: "the IAM principal is not an admin".to_owned(),
            })
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<&str, Denial> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Denial::Unauthenticated(
            "missing Authorization: Bearer token".to_owned(),
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Denial::Unauthenticated("the Authorization header is not a Bearer token".to_owned())
        })
}

fn from_dev_bearer(token: &DevToken, headers: &HeaderMap) -> Result<Actor, Denial> {
    let presented = bearer(headers)?;
    if token.matches(presented) {
        Ok(Actor {
            id: "local-admin".to_owned(),
            method: AuthMethod::DevToken,
            issuer: None,
            subject: None,
        })
    } else {
        Err(Denial::Unauthenticated("invalid bearer token".to_owned()))
    }
}

/// Middleware: authenticates every request it wraps, attaching the [`Actor`] to the request
/// and response; refuses with 401/403 problem+json otherwise.
pub async fn require_admin(
    State(authenticator): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = authenticator
        .authenticate(
            request.extensions().get::<RequestContext>(),
            request.headers(),
        )
        .await;
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
