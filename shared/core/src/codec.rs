//! Snapshot state encoding: `json`, or `json+zstd` above a size threshold; SHA-256 of the
//! uncompressed bytes, verified before any state is used. A state too large for one item even
//! compressed is offloaded to an object store (claim check): `s3+json` / `s3+json+zstd` name the
//! same bytes as `json` / `json+zstd`, kept in an object the item points to.
//!
//! The codec also carries the
//! [`SnapshotAuthenticator`] that signs what it builds and verifies what it opens
//! (docs/security.md#snapshot-authentication).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::mac::{SnapshotAuthenticator, SnapshotKeys};

/// DynamoDB's item size limit (attribute names and values together).
pub const DYNAMODB_ITEM_LIMIT: usize = 400 * 1024;
/// Default upper bound for a decoded state (`SNAPSHOT_MAX_STATE_BYTES`): what a 512 MB
/// function can hold next to the parsed state. A larger declared `sizeBytes` is refused before
/// anything is allocated, and decompression never writes past the declared size.
pub const MAX_STATE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// Encoding.
pub enum Encoding {
    /// Json.
    Json,
    /// Json zstd.
    JsonZstd,
    /// `json` bytes in an object (see [`crate::offload`]).
    S3Json,
    /// `json+zstd` bytes in an object.
    S3JsonZstd,
}

impl Encoding {
    /// The value as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::JsonZstd => "json+zstd",
            Self::S3Json => "s3+json",
            Self::S3JsonZstd => "s3+json+zstd",
        }
    }

    /// True when the bytes live in an object, not in the item.
    pub fn is_offloaded(self) -> bool {
        matches!(self, Self::S3Json | Self::S3JsonZstd)
    }

    /// The same bytes kept in an object.
    pub fn offloaded(self) -> Self {
        match self {
            Self::Json | Self::S3Json => Self::S3Json,
            Self::JsonZstd | Self::S3JsonZstd => Self::S3JsonZstd,
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Result<Self, CodecError> {
        match value {
            "json" => Ok(Self::Json),
            "json+zstd" => Ok(Self::JsonZstd),
            "s3+json" => Ok(Self::S3Json),
            "s3+json+zstd" => Ok(Self::S3JsonZstd),
            other => Err(CodecError::UnknownEncoding(other.to_owned())),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored `state` attribute: a string (`json`) or bytes (`json+zstd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateBody {
    /// JSON text.
    Text(String),
    /// Binary.
    Binary(Vec<u8>),
}

impl StateBody {
    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(s) => s.len(),
            Self::Binary(b) => b.len(),
        }
    }

    /// True when there is nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored bytes (UTF-8 text for `json`).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Text(s) => s.into_bytes(),
            Self::Binary(b) => b,
        }
    }
}

impl Serialize for StateBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(s) => serializer.serialize_str(s),
            Self::Binary(b) => serializer.serialize_bytes(b),
        }
    }
}

impl<'de> Deserialize<'de> for StateBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> serde::de::Visitor<'de> for BodyVisitor {
            type Value = StateBody;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string (json) or bytes (json+zstd)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StateBody, E> {
                Ok(StateBody::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<StateBody, E> {
                Ok(StateBody::Text(v))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<StateBody, E> {
                Ok(StateBody::Binary(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<StateBody, E> {
                Ok(StateBody::Binary(v))
            }
        }
        deserializer.deserialize_any(BodyVisitor)
    }
}

/// A state ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedState {
    /// How the state is stored (`json`, `json+zstd`, …).
    pub encoding: Encoding,
    /// Body.
    pub body: StateBody,
    /// Lower-case hex SHA-256 of the uncompressed JSON.
    pub checksum: String,
    /// Uncompressed state size in bytes.
    pub size_bytes: u64,
    /// Stored (possibly compressed) state size in bytes.
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Codec error.
pub enum CodecError {
    #[error("unknown snapshot encoding `{0}`")]
    /// Unknown encoding.
    UnknownEncoding(String),
    #[error("encoding {encoding} does not match a {found} state attribute")]
    /// Body mismatch.
    BodyMismatch {
        /// How the state is stored (`json`, `json+zstd`, …).
        encoding: Encoding,
        /// What was found.
        found: &'static str,
    },
    #[error("state is not valid UTF-8 JSON text")]
    /// Not utf8.
    NotUtf8,
    #[error("zstd: {0}")]
    /// Zstd.
    Zstd(String),
    #[error("declared size {declared} bytes is beyond the {limit} byte limit")]
    /// Declared size too large.
    DeclaredSizeTooLarge {
        /// The size the item declares.
        declared: u64,
        /// How much the state allows.
        limit: usize,
    },
    #[error("declared size {declared} bytes, decoded {actual} bytes")]
    /// Size mismatch.
    SizeMismatch {
        /// The size the item declares.
        declared: u64,
        /// The size found.
        actual: usize,
    },
    /// The state is offloaded but its object was not read.
    #[error("state is offloaded ({0}) but its object was not read")]
    ObjectNotRead(Encoding),
    #[error("checksum mismatch: stored {stored}, computed {computed}")]
    /// Checksum mismatch.
    ChecksumMismatch {
        /// The value stored with the item.
        stored: String,
        /// The value computed from the bytes.
        computed: String,
    },
}

/// Decompresses a zstd body into `declared` bytes. The frame must state its content size and
/// agree with the item before anything is allocated, so neither a lying `sizeBytes` nor a
/// lying frame header makes us reserve more than the declared (already capped) size; the
/// decoder then refuses to write past it.
fn decompress_bounded(bytes: &[u8], declared: usize) -> Result<Vec<u8>, CodecError> {
    let framed = zstd::zstd_safe::get_frame_content_size(bytes)
        .map_err(|_| CodecError::Zstd("not a zstd frame".to_owned()))?;
    match framed {
        Some(size) if size == declared as u64 => {}
        Some(size) => {
            return Err(CodecError::SizeMismatch {
                declared: declared as u64,
                actual: usize::try_from(size).unwrap_or(usize::MAX),
            })
        }
        None => {
            return Err(CodecError::Zstd(
                "frame does not state its content size".to_owned(),
            ))
        }
    }
    zstd::bulk::decompress(bytes, declared).map_err(|e| CodecError::Zstd(e.to_string()))
}

/// Sha256 hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Encodes and decodes snapshot states; signs and verifies snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCodec {
    /// States larger than this many bytes are compressed.
    pub compress_above: usize,
    /// Zstd level.
    pub zstd_level: i32,
    /// States that do not fit one item even compressed go to the state object store
    /// (`SNAPSHOT_BUCKET` set); without one they cannot be snapshotted.
    pub offload: bool,
    /// Largest decoded state accepted (declared or real).
    pub max_state_bytes: usize,
    /// Signs built snapshots, verifies opened ones. The default is
    /// [`SnapshotAuthenticator::process_local`]: functions wire their KMS data key instead.
    pub authenticator: SnapshotAuthenticator,
}

impl Default for SnapshotCodec {
    fn default() -> Self {
        Self {
            compress_above: 8 * 1024,
            zstd_level: 3,
            offload: false,
            max_state_bytes: MAX_STATE_BYTES,
            authenticator: SnapshotAuthenticator::process_local(),
        }
    }
}

impl SnapshotCodec {
    /// A new value.
    pub fn new(compress_above: usize) -> Self {
        Self {
            compress_above,
            ..Self::default()
        }
    }

    /// The same codec signing and verifying with `authenticator`.
    #[must_use]
    pub fn with_authenticator(mut self, authenticator: SnapshotAuthenticator) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// The same codec signing and verifying with `keys`, keeping its policy for unsigned
    /// snapshots (`SNAPSHOT_MAC_GRACE_UNTIL`).
    #[must_use]
    pub fn with_keys(self, keys: SnapshotKeys) -> Self {
        let unsigned = self.authenticator.unsigned_policy();
        self.with_authenticator(SnapshotAuthenticator::new(keys).with_unsigned(unsigned))
    }

    /// Encodes a JSON state; compresses it when it is above the threshold.
    pub fn encode(&self, json: Vec<u8>) -> Result<EncodedState, CodecError> {
        let checksum = sha256_hex(&json);
        let size_bytes = json.len() as u64;
        if json.len() > self.compress_above {
            let compressed = zstd::bulk::compress(&json, self.zstd_level)
                .map_err(|e| CodecError::Zstd(e.to_string()))?;
            return Ok(EncodedState {
                encoding: Encoding::JsonZstd,
                stored_bytes: compressed.len() as u64,
                body: StateBody::Binary(compressed),
                checksum,
                size_bytes,
            });
        }
        let text = String::from_utf8(json).map_err(|_| CodecError::NotUtf8)?;
        Ok(EncodedState {
            encoding: Encoding::Json,
            stored_bytes: size_bytes,
            body: StateBody::Text(text),
            checksum,
            size_bytes,
        })
    }

    /// Decodes a stored state and verifies its checksum; returns the uncompressed JSON bytes.
    pub fn decode(
        &self,
        encoding: Encoding,
        body: &StateBody,
        size_bytes: u64,
        checksum: &str,
    ) -> Result<Vec<u8>, CodecError> {
        let json = match (encoding, body) {
            (Encoding::Json, StateBody::Text(text)) => text.as_bytes().to_vec(),
            // An offloaded state reads back as the object's bytes; none means nobody read it.
            (Encoding::S3Json | Encoding::S3JsonZstd, body) if body.is_empty() => {
                return Err(CodecError::ObjectNotRead(encoding))
            }
            (Encoding::S3Json, StateBody::Binary(bytes)) => {
                if bytes.len() > self.max_state_bytes {
                    return Err(CodecError::DeclaredSizeTooLarge {
                        declared: bytes.len() as u64,
                        limit: self.max_state_bytes,
                    });
                }
                bytes.clone()
            }
            (Encoding::JsonZstd | Encoding::S3JsonZstd, StateBody::Binary(bytes)) => {
                let declared = usize::try_from(size_bytes)
                    .ok()
                    .filter(|n| *n <= self.max_state_bytes)
                    .ok_or(CodecError::DeclaredSizeTooLarge {
                        declared: size_bytes,
                        limit: self.max_state_bytes,
                    })?;
                decompress_bounded(bytes, declared)?
            }
            (encoding, StateBody::Text(_)) => {
                return Err(CodecError::BodyMismatch {
                    encoding,
                    found: "string",
                })
            }
            (encoding, StateBody::Binary(_)) => {
                return Err(CodecError::BodyMismatch {
                    encoding,
                    found: "binary",
                })
            }
        };
        let computed = sha256_hex(&json);
        if !computed.eq_ignore_ascii_case(checksum) {
            return Err(CodecError::ChecksumMismatch {
                stored: checksum.to_owned(),
                computed,
            });
        }
        if json.len() as u64 != size_bytes {
            return Err(CodecError::SizeMismatch {
                declared: size_bytes,
                actual: json.len(),
            });
        }
        Ok(json)
    }
}
