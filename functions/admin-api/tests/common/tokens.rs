//! A local token issuer for the tests: RSA keys generated in the test process, a JWKS
//! document built from them, and tokens signed with aws-lc-rs directly (not through the
//! library the API verifies with), including deliberately broken ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use admin_api::auth::jwks::{JwksCache, JwksError, JwksSource};
use admin_api::auth::{IssuerSettings, TokenVerifier};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use serde_json::{json, Map, Value};

/// The issuer of the sample events in `events/admin-api/`.
pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE";
/// The app client whose tokens the API accepts.
pub const CLIENT_ID: &str = "admin-console-client";

/// One signing key with its id.
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key's bytes (what an attacker would use as an HMAC secret).
    pub fn public_bytes(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// `header.claims.signature` signed RS256 with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// HS256 over `header.claims` keyed with `secret`.
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// The keys of the shared test issuer (generated once per test binary: RSA generation is the
/// slow part).
pub fn issuer_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate("test-key-1"))
}

/// A key the issuer never published.
pub fn stranger_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate("stranger-key"))
}

/// A JWKS served from memory, counting fetches; its keys can change (rotation).
#[derive(Clone)]
pub struct LocalJwks {
    pub document: Arc<Mutex<Value>>,
    pub fetches: Arc<AtomicUsize>,
}

impl LocalJwks {
    pub fn of(keys: &[&SigningKey]) -> Self {
        Self {
            document: Arc::new(Mutex::new(jwks(keys))),
            fetches: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.document.lock().unwrap() = jwks(keys);
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

#[async_trait::async_trait]
impl JwksSource for LocalJwks {
    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let document = self.document.lock().unwrap().clone();
        serde_json::from_value(document).map_err(|source| JwksError::Parse {
            url: "memory".into(),
            source,
        })
    }
}

pub fn settings() -> IssuerSettings {
    IssuerSettings::from_lookup(|name| match name {
        "JWT_ISSUER" => Some(ISSUER.to_owned()),
        "JWT_AUDIENCE" => Some(CLIENT_ID.to_owned()),
        _ => None,
    })
    .unwrap()
}

/// A verifier trusting the shared issuer key through `jwks`.
pub fn verifier_with(jwks: LocalJwks) -> TokenVerifier {
    TokenVerifier::with_keys(
        settings(),
        JwksCache::new(jwks).with_min_refresh(Duration::ZERO),
    )
}

pub fn verifier() -> TokenVerifier {
    verifier_with(LocalJwks::of(&[issuer_key()]))
}

pub fn rs256_header(kid: &str) -> Value {
    json!({ "alg": "RS256", "typ": "JWT", "kid": kid })
}

/// Valid access-token claims for `username`, plus `extra`.
pub fn access_claims(username: &str, extra: Value) -> Value {
    let now = now();
    let mut claims = json!({
        "iss": ISSUER, "sub": format!("sub-{username}"), "cognito:username": username,
        "client_id": CLIENT_ID, "token_use": "access", "scope": "openid",
        "iat": now, "exp": now + 600,
    });
    merge(&mut claims, extra);
    claims
}

pub fn merge(claims: &mut Value, extra: Value) {
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        for (k, v) in extra {
            if v.is_null() {
                claims.remove(&k);
            } else {
                claims.insert(k, v);
            }
        }
    }
}

/// A token signed by the issuer.
pub fn token(claims: &Value) -> String {
    issuer_key().sign(&rs256_header(&issuer_key().kid), claims)
}

/// Token claims matching an API Gateway authorizer context (lists in `[a b]` form become
/// arrays), completed with what a valid access token carries.
pub fn claims_for_context(context: &Map<String, Value>) -> Value {
    let mut claims = access_claims("context-user", json!({}));
    for key in ["cognito:username", "sub", "scope"] {
        claims.as_object_mut().unwrap().remove(key);
    }
    for (name, value) in context {
        let value = match value.as_str() {
            Some(raw) if raw.starts_with('[') => {
                serde_json::from_str::<Value>(raw).unwrap_or_else(|_| {
                    let inner = raw.trim_start_matches('[').trim_end_matches(']');
                    Value::from(inner.split_whitespace().collect::<Vec<_>>())
                })
            }
            _ => value.clone(),
        };
        claims[name] = value;
    }
    if claims.get("sub").is_none() {
        claims["sub"] = json!("context-subject");
    }
    claims
}

/// Adds `Authorization: Bearer <token matching the context>` to an API Gateway v2 event.
pub fn authorize_event(event: &mut Value) {
    let Some(context) = event["requestContext"]["authorizer"]["jwt"]["claims"].as_object() else {
        return;
    };
    let bearer = format!("Bearer {}", token(&claims_for_context(context)));
    event["headers"]["authorization"] = Value::from(bearer);
}
