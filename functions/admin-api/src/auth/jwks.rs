//! The issuer's signing keys (JWKS): fetched once, cached for the life of the container, and
//! fetched again only when a token names a key id the cache does not know (the issuer rotated
//! its keys), at most once per [`MIN_REFRESH_INTERVAL`] so random key ids cannot turn every
//! request into a fetch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::DecodingKey;
use tokio::sync::Mutex;

/// Shortest time between two fetches triggered by unknown key ids.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why the keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The JWKS endpoint could not be reached or answered with an error.
    #[error("fetching the JWKS from {url} failed: {reason}")]
    Fetch {
        /// Where the keys were fetched from.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The document is not a JWK set.
    #[error("the JWKS from {url} is not a JWK set: {source}")]
    Parse {
        /// Where the keys were fetched from.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Where the key set comes from (HTTPS in Lambda; a local server in tests).
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The current key set document.
    async fn fetch(&self) -> Result<JwkSet, JwksError>;
}

struct Cached {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

/// The cache of decoding keys by `kid`.
pub struct JwksCache {
    source: Box<dyn JwksSource>,
    state: Mutex<Cached>,
    min_refresh: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").finish_non_exhaustive()
    }
}

impl JwksCache {
    /// An empty cache over `source`; the first token fetches the keys.
    pub fn new(source: impl JwksSource + 'static) -> Self {
        Self {
            source: Box::new(source),
            state: Mutex::new(Cached {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            min_refresh: MIN_REFRESH_INTERVAL,
        }
    }

    /// Overrides [`MIN_REFRESH_INTERVAL`] (tests).
    pub fn with_min_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// The key `kid`: from the cache, else after one fetch (first use, or a rotation).
    /// `Ok(None)`: the issuer has no such key.
    pub async fn key(&self, kid: &str) -> Result<Option<Arc<DecodingKey>>, JwksError> {
        let mut state = self.state.lock().await;
        if let Some(key) = state.keys.get(kid) {
            return Ok(Some(Arc::clone(key)));
        }
        let may_fetch = state
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.min_refresh);
        if !may_fetch {
            return Ok(None);
        }
        let set = self.source.fetch().await?;
        state.fetched_at = Some(Instant::now());
        state.keys = usable_keys(&set);
        Ok(state.keys.get(kid).cloned())
    }
}

/// Signing keys with a `kid` that decode as RSA keys; anything else in the set is ignored.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| is_rsa_signing_key(jwk))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect()
}

fn is_rsa_signing_key(jwk: &Jwk) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
    matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
        && !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
}

/// Fetches the JWKS over HTTPS (plain HTTP only for a loopback address, i.e. tests and the
/// local stack) with the same rustls stack the AWS SDK uses.
pub struct HttpJwks {
    url: hyper::Uri,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Empty<axum::body::Bytes>,
    >,
    timeout: Duration,
}

impl HttpJwks {
    /// A fetcher for `url` (https, or http on `127.0.0.1`, `localhost` or `[::1]`).
    pub fn new(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let host = uri.host().unwrap_or_default();
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err(format!("`{url}` must be an https URL")),
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no TLS root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self {
            url: uri,
            client,
            timeout: Duration::from_secs(5),
        })
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        use http_body_util::BodyExt;
        let url = self.url.to_string();
        let fail = |reason: String| JwksError::Fetch {
            url: url.clone(),
            reason,
        };
        let request = hyper::Request::get(self.url.clone())
            .header(hyper::header::ACCEPT, "application/json")
            .body(http_body_util::Empty::new())
            .map_err(|e| fail(e.to_string()))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("status {}", response.status())));
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES);
        let bytes = tokio::time::timeout(self.timeout, body.collect())
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|source| JwksError::Parse { url, source })
    }
}
