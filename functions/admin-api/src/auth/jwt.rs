//! Bearer tokens verified inside the function. API Gateway's JWT authorizer already checked
//! the token, but anyone allowed to invoke the function directly can write any authorizer
//! context; so the function checks the signature against the issuer's keys, `iss`,
//! `aud`/`client_id`, `exp`, `nbf` and `token_use` itself, and refuses a context whose claims
//! differ from the token's.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde_json::{Map, Value};
use snapshot_core::config::{ConfigError, Env};

use super::claims::{context_list, groups_from_json, scopes_from_json};
use super::jwks::{HttpJwks, JwksCache, JwksError};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// Longest bearer token accepted (Cognito's are ~1-4 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Default of `JWT_TOKEN_USE`: Cognito access and ID tokens, as the HTTP API authorizer
/// accepts both.
pub const DEFAULT_TOKEN_USES: &[&str] = &["access", "id"];

/// Who issues the tokens the API accepts (`JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_JWKS_URL`,
/// `JWT_TOKEN_USE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// Exact `iss` of accepted tokens.
    pub issuer: String,
    /// Accepted `aud` (ID tokens, other issuers) or `client_id` (Cognito access tokens).
    pub audiences: Vec<String>,
    /// Accepted `token_use` values when the token has one.
    pub token_uses: Vec<String>,
    /// Where the signing keys are published (default `{issuer}/.well-known/jwks.json`).
    pub jwks_url: String,
}

impl IssuerSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `lookup`; `JWT_ISSUER` and `JWT_AUDIENCE` are required.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let missing = |variable: &'static str, reason: &str| ConfigError {
            variable,
            value: String::new(),
            reason: reason.to_owned(),
        };
        let issuer = env
            .optional("JWT_ISSUER")
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .ok_or_else(|| missing("JWT_ISSUER", "the issuer URL of admin tokens is required"))?;
        if !issuer.starts_with("https://") && !issuer.starts_with("http://127.0.0.1") {
            return Err(ConfigError {
                variable: "JWT_ISSUER",
                value: issuer,
                reason: "must be an https URL".to_owned(),
            });
        }
        let list = |raw: String| -> Vec<String> {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let audiences = env.optional("JWT_AUDIENCE").map(list).unwrap_or_default();
        if audiences.is_empty() {
            return Err(missing(
                "JWT_AUDIENCE",
                "at least one accepted audience (app client id) is required",
            ));
        }
        let token_uses = env.optional("JWT_TOKEN_USE").map_or_else(
            || DEFAULT_TOKEN_USES.iter().map(|s| (*s).to_owned()).collect(),
            list,
        );
        let jwks_url = env.optional("JWT_JWKS_URL").map_or_else(
            || format!("{issuer}/.well-known/jwks.json"),
            |s| s.trim().to_owned(),
        );
        Ok(Self {
            issuer,
            audiences,
            token_uses,
            jwks_url,
        })
    }
}

/// Why a token is refused. The messages name the failed check, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with a JSON header, or too long.
    #[error("the token is malformed")]
    Malformed,
    /// Anything but RS256 (e.g. `none`, or HS256 keyed with the public key).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// No `kid`, or a `kid` the issuer does not publish.
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// Signature, `iss`, `exp`, `nbf` or a required claim failed.
    #[error("the token is invalid: {0}")]
    Invalid(String),
    /// `aud`/`client_id` names no accepted audience.
    #[error("the token is for another audience")]
    Audience,
    /// `token_use` is not accepted.
    #[error("the token's use is not accepted")]
    TokenUse,
    /// The issuer's keys could not be fetched.
    #[error(transparent)]
    Keys(#[from] JwksError),
}

/// Verifies bearer tokens of one issuer.
#[derive(Debug)]
pub struct TokenVerifier {
    settings: IssuerSettings,
    keys: JwksCache,
}

impl TokenVerifier {
    /// A verifier fetching the issuer's keys over HTTPS.
    pub fn new(settings: IssuerSettings) -> Result<Self, ConfigError> {
        let source = HttpJwks::new(&settings.jwks_url).map_err(|reason| ConfigError {
            variable: "JWT_JWKS_URL",
            value: settings.jwks_url.clone(),
            reason,
        })?;
        Ok(Self::with_keys(settings, JwksCache::new(source)))
    }

    /// A verifier over a given key cache (tests, other sources).
    pub fn with_keys(settings: IssuerSettings, keys: JwksCache) -> Self {
        Self { settings, keys }
    }

    /// The token's claims, once every check passed.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let header = decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
            _ => TokenError::Malformed,
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = self.keys.key(kid).await?.ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.validate_aud = false; // checked below: Cognito access tokens carry client_id
        validation.leeway = LEEWAY_SECS;
        let data = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(invalid_reason(&e)))?;
        let claims = data.claims;
        let token_use = claims.get("token_use").and_then(Value::as_str);
        if let Some(token_use) = token_use {
            if !self.settings.token_uses.iter().any(|u| u == token_use) {
                return Err(TokenError::TokenUse);
            }
        }
        let audiences: Vec<&str> = match token_use {
            Some("access") => claims
                .get("client_id")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
            _ => match claims.get("aud") {
                Some(Value::String(aud)) => vec![aud.as_str()],
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            },
        };
        if !audiences
            .iter()
            .any(|a| self.settings.audiences.iter().any(|accepted| accepted == a))
        {
            return Err(TokenError::Audience);
        }
        Ok(VerifiedToken { claims })
    }
}

fn invalid_reason(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::ExpiredSignature => "expired".into(),
        ErrorKind::ImmatureSignature => "not yet valid (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim `{claim}`"),
        ErrorKind::InvalidAlgorithm => "algorithm mismatch".into(),
        _ => "unreadable".into(),
    }
}

/// A token whose signature and claims passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    claims: Map<String, Value>,
}

impl VerifiedToken {
    /// A string claim.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// `cognito:groups`, exactly as the token lists them.
    pub fn groups(&self) -> Vec<String> {
        groups_from_json(self.claims.get("cognito:groups"))
    }

    /// `scope` (space-separated) or `scp` (array).
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes = scopes_from_json(self.claims.get("scope"));
        scopes.extend(scopes_from_json(self.claims.get("scp")));
        scopes
    }

    /// Whether API Gateway's authorizer context says what the token says: every claim in the
    /// context must be in the token with the same value (as the gateway flattens it).
    pub fn agrees_with(&self, context: &HashMap<String, String>) -> Result<(), String> {
        for (name, raw) in context {
            let agrees = match self.claims.get(name) {
                None => false,
                Some(Value::String(s)) => s == raw,
                Some(Value::Array(items)) => {
                    let listed: Vec<String> = items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect();
                    context_list(raw, false) == listed
                }
                Some(Value::Object(_)) => true,
                Some(other) => raw.as_str() == other.to_string().as_str(),
            };
            if !agrees {
                return Err(format!(
                    "the authorizer context's `{name}` claim differs from the token's"
                ));
            }
        }
        Ok(())
    }
}

/// One verifier shared by every request of a container, and with it its cache of the issuer's
/// keys (fetched once, not per request).
pub type SharedVerifier = Arc<TokenVerifier>;
