//! KMS adapter of the snapshot MAC keys (docs/security.md#snapshot-authentication).
//!
//! The MAC key is a KMS data key: set-up calls `GenerateDataKey` once and stores only the
//! encrypted key (`CiphertextBlob`); each function gets the ciphertexts through
//! `SNAPSHOT_MAC_KEYS` and calls `Decrypt` once per key at cold start, never per load. The
//! plaintext lives only in the container's memory, in the core's
//! [`SnapshotAuthenticator`](snapshot_core::mac::SnapshotAuthenticator).
//!
//! `SNAPSHOT_MAC_KEYS` is a comma-separated list of `keyId=base64(CiphertextBlob)`: the first
//! entry signs, the others are previous keys still accepted (rotation). Every data key is
//! bound to the encryption context `purpose=snapshot-mac`, so no other ciphertext of the same
//! KMS key decrypts as a MAC key, and IAM can require that context.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use snapshot_core::mac::{KeyError, SnapshotKey, SnapshotKeys};

/// The variable holding the encrypted keys, current first.
pub const KEYS_VARIABLE: &str = "SNAPSHOT_MAC_KEYS";
/// Optional: the KMS key the data keys must have been made with (ARN or id); `Decrypt`
/// then refuses a ciphertext of any other key.
pub const KMS_KEY_VARIABLE: &str = "SNAPSHOT_MAC_KMS_KEY";
/// Encryption context every MAC data key is generated and decrypted with.
pub const CONTEXT_KEY: &str = "purpose";
/// The value of [`CONTEXT_KEY`] in that context: a ciphertext made for any other purpose (or
/// none) does not decrypt as a MAC key, and the key policy can require it.
pub const CONTEXT_VALUE: &str = "snapshot-mac";

/// Why the MAC keys cannot be loaded (the function then fails its cold start).
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    /// The variable is not set.
    #[error("{0} is not set: snapshots cannot be signed or verified without their MAC key")]
    Missing(&'static str),
    /// The variable does not parse.
    #[error("invalid configuration {variable}: {reason}")]
    Malformed {
        /// The variable at fault ([`KEYS_VARIABLE`] or [`KMS_KEY_VARIABLE`]).
        variable: &'static str,
        /// What is wrong (never the value: it holds key material, if encrypted).
        reason: String,
    },
    /// KMS refused or failed.
    #[error("KMS {operation} of snapshot MAC key {key_id} failed")]
    Kms {
        /// `Decrypt` or `GenerateDataKey`.
        operation: &'static str,
        /// The id of the MAC key concerned (the `keyId` of its `SNAPSHOT_MAC_KEYS` entry),
        /// not the KMS key's.
        key_id: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The decrypted key or the ring is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// One `keyId=ciphertext` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedKey {
    /// Our key id (stored with every MAC).
    pub id: String,
    /// The data key's `CiphertextBlob`.
    pub ciphertext: Vec<u8>,
}

impl EncryptedKey {
    /// The `keyId=base64` form `SNAPSHOT_MAC_KEYS` lists.
    pub fn to_entry(&self) -> String {
        format!("{}={}", self.id, STANDARD.encode(&self.ciphertext))
    }
}

/// Parses `SNAPSHOT_MAC_KEYS`.
pub fn parse_keys(raw: &str) -> Result<Vec<EncryptedKey>, KeyLoadError> {
    let malformed = |reason: String| KeyLoadError::Malformed {
        variable: KEYS_VARIABLE,
        reason,
    };
    let entries: Vec<EncryptedKey> = raw
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
        .map(|(i, entry)| {
            let (id, ciphertext) = entry.split_once('=').ok_or_else(|| {
                malformed(format!("entry {} is not keyId=base64-ciphertext", i + 1))
            })?;
            let ciphertext = STANDARD
                .decode(ciphertext.trim())
                .map_err(|_| malformed(format!("ciphertext of key {} is not base64", id.trim())))?;
            Ok(EncryptedKey {
                id: id.trim().to_owned(),
                ciphertext,
            })
        })
        .collect::<Result<_, KeyLoadError>>()?;
    if entries.is_empty() {
        return Err(malformed("lists no key".to_owned()));
    }
    Ok(entries)
}

/// Decrypts every key once (one `Decrypt` each) into a ring: the first signs.
pub async fn load_keys(
    client: &aws_sdk_kms::Client,
    keys: &[EncryptedKey],
    kms_key: Option<&str>,
) -> Result<SnapshotKeys, KeyLoadError> {
    let mut decrypted = Vec::with_capacity(keys.len());
    for key in keys {
        let out = client
            .decrypt()
            .ciphertext_blob(Blob::new(key.ciphertext.clone()))
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .set_key_id(kms_key.map(str::to_owned))
            .send()
            .await
            .map_err(|e| KeyLoadError::Kms {
                operation: "Decrypt",
                key_id: key.id.clone(),
                source: Box::new(e),
            })?;
        let secret = out
            .plaintext
            .map(Blob::into_inner)
            .ok_or_else(|| KeyLoadError::Kms {
                operation: "Decrypt",
                key_id: key.id.clone(),
                source: "no plaintext in the reply".into(),
            })?;
        decrypted.push(SnapshotKey::new(key.id.clone(), secret)?);
    }
    let mut ring = decrypted.into_iter();
    let current = ring.next().ok_or(KeyLoadError::Missing(KEYS_VARIABLE))?;
    let keys = SnapshotKeys::new(current, ring.collect())?;
    tracing::info!(current = keys.current_id(), accepted = ?keys.accepted_ids(), "snapshot MAC keys loaded");
    Ok(keys)
}

/// The ring named by `SNAPSHOT_MAC_KEYS` (and `SNAPSHOT_MAC_KMS_KEY`, when set).
pub async fn keys_from_values(
    client: &aws_sdk_kms::Client,
    keys: Option<String>,
    kms_key: Option<String>,
) -> Result<SnapshotKeys, KeyLoadError> {
    let raw = keys
        .filter(|v| !v.trim().is_empty())
        .ok_or(KeyLoadError::Missing(KEYS_VARIABLE))?;
    let kms_key = kms_key.filter(|v| !v.trim().is_empty());
    load_keys(client, &parse_keys(&raw)?, kms_key.as_deref()).await
}

/// The ring named by the process environment (a function's cold start).
pub async fn keys_from_env(client: &aws_sdk_kms::Client) -> Result<SnapshotKeys, KeyLoadError> {
    keys_from_values(
        client,
        std::env::var(KEYS_VARIABLE).ok(),
        std::env::var(KMS_KEY_VARIABLE).ok(),
    )
    .await
}

/// Set-up and rotation: a new 256-bit data key under `kms_key`, returned encrypted only (the
/// plaintext is discarded here; functions decrypt it at cold start).
pub async fn generate_key(
    client: &aws_sdk_kms::Client,
    kms_key: &str,
    id: &str,
) -> Result<EncryptedKey, KeyLoadError> {
    let kms_error = |source: Box<dyn std::error::Error + Send + Sync>| KeyLoadError::Kms {
        operation: "GenerateDataKey",
        key_id: id.to_owned(),
        source,
    };
    let out = client
        .generate_data_key()
        .key_id(kms_key)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
        .send()
        .await
        .map_err(|e| kms_error(Box::new(e)))?;
    let ciphertext = out
        .ciphertext_blob
        .map(Blob::into_inner)
        .ok_or_else(|| kms_error("no CiphertextBlob in the reply".into()))?;
    Ok(EncryptedKey {
        id: id.to_owned(),
        ciphertext,
    })
}

/// A key ring made afresh in a KMS (the local emulator, a test): one symmetric KMS key, one data
/// key generated under it and decrypted back through [`load_keys`], the same path a function
/// takes at cold start. Returns the KMS key's ARN, the encrypted entry and the ring.
pub async fn set_up_keys(
    client: &aws_sdk_kms::Client,
    id: &str,
) -> Result<(String, EncryptedKey, SnapshotKeys), KeyLoadError> {
    let created = client
        .create_key()
        .description("snapshot MAC data keys")
        .send()
        .await
        .map_err(|e| KeyLoadError::Kms {
            operation: "CreateKey",
            key_id: id.to_owned(),
            source: Box::new(e),
        })?;
    let arn = created
        .key_metadata
        .and_then(|m| m.arn)
        .ok_or_else(|| KeyLoadError::Kms {
            operation: "CreateKey",
            key_id: id.to_owned(),
            source: "no key ARN in the reply".into(),
        })?;
    let encrypted = generate_key(client, &arn, id).await?;
    let keys = load_keys(client, std::slice::from_ref(&encrypted), Some(&arn)).await?;
    Ok((arn, encrypted, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_current_then_previous() {
        let keys = parse_keys(" k2=AQID , k1=BAUG ").unwrap();
        assert_eq!(keys[0].id, "k2");
        assert_eq!(keys[0].ciphertext, vec![1, 2, 3]);
        assert_eq!(keys[1].id, "k1");
        assert_eq!(keys[1].to_entry(), "k1=BAUG");
    }

    #[test]
    fn malformed_values_are_refused_without_echoing_them() {
        for raw in ["", " , ", "k1", "k1=***secret***"] {
            let err = parse_keys(raw).unwrap_err().to_string();
            assert!(err.contains(KEYS_VARIABLE), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
