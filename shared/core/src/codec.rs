//! Snapshot state encoding: `json`, or `json+zstd` above a size threshold; SHA-256 of the
//! uncompressed bytes, verified before any state is used. A state too large for one item even
//! compressed is offloaded to an object store (claim check): `s3+json` / `s3+json+zstd` name the
//! same bytes as `json` / `json+zstd`, kept in an object the item points to.
//!
//! The codec also carries the
//! [`SnapshotAuthenticator`] that signs what it builds and verifies what it opens
//! (docs/security.md#snapshot-authentication).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::mac::{SnapshotAuthenticator, SnapshotKeys};

/// DynamoDB's item size limit (attribute names and values together).
pub const DYNAMODB_ITEM_LIMIT: usize = 400 * 1024;
/// Default upper bound for a decoded state (`SNAPSHOT_MAX_STATE_BYTES`): what a 512 MB
/// function can hold next to the parsed state. A larger declared `sizeBytes` is refused before
/// anything is allocated, and decompression never writes past the declared size.
pub const MAX_STATE_BYTES: usize = 64 * 1024 * 1024;

/// How a snapshot's state bytes are stored: the item's `encoding` attribute, which decides how
/// its `state` attribute is read back ([`Encoding::as_str`] gives the stored form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `json`: the state's JSON as a string attribute, uncompressed (at most
    /// [`SnapshotCodec::compress_above`] bytes).
    Json,
    /// `json+zstd`: the state's JSON compressed into one zstd frame, a binary attribute.
    JsonZstd,
    /// `json` bytes in an object (see [`crate::offload`]).
    S3Json,
    /// `json+zstd` bytes in an object.
    S3JsonZstd,
}

impl Encoding {
    /// The `encoding` attribute's value (`json`, `json+zstd`, `s3+json`, `s3+json+zstd`);
    /// [`Encoding::parse`] reads it back.
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
    /// JSON text, as `json` stores it (a DynamoDB string).
    Text(String),
    /// Bytes, as `json+zstd` stores them (a DynamoDB binary); also the bytes read from an
    /// offloaded state's object, whatever its encoding.
    Binary(Vec<u8>),
}

impl StateBody {
    /// The stored size in bytes (UTF-8 bytes of the text): what counts against the item limit
    /// and is recorded as `storedBytes`.
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
    /// The bytes to store as the item's `state` attribute: text for `json`, the zstd frame for
    /// `json+zstd`.
    pub body: StateBody,
    /// Lower-case hex SHA-256 of the uncompressed JSON.
    pub checksum: String,
    /// Uncompressed state size in bytes.
    pub size_bytes: u64,
    /// Stored (possibly compressed) state size in bytes.
    pub stored_bytes: u64,
}

/// Why a state could not be encoded or a stored one could not be read back. Reading, every
/// variant means the snapshot is unusable (a load skips it and replays from an older one or the
/// events); none is retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown snapshot encoding `{0}`")]
    /// The `encoding` attribute names no encoding this version reads (written by a newer one,
    /// or damaged).
    UnknownEncoding(String),
    #[error("encoding {encoding} does not match a {found} state attribute")]
    /// The `state` attribute's type contradicts the encoding (bytes for `json`, a string for
    /// `json+zstd`).
    BodyMismatch {
        /// How the state is stored (`json`, `json+zstd`, …).
        encoding: Encoding,
        /// What was found.
        found: &'static str,
    },
    #[error("state is not valid UTF-8 JSON text")]
    /// A state to store uncompressed is not UTF-8, so it cannot be kept as JSON text (an
    /// encoding error: the aggregate's state did not serialise to JSON).
    NotUtf8,
    #[error("zstd: {0}")]
    /// Compressing failed, or the stored bytes are not exactly one complete zstd frame
    /// (truncated, corrupt, bytes after it); zstd's message says which.
    Zstd(String),
    #[error("declared size {declared} bytes is beyond the {limit} byte limit")]
    /// The item declares a state larger than [`SnapshotCodec::max_state_bytes`]: refused
    /// before anything is allocated or decompressed.
    DeclaredSizeTooLarge {
        /// The size the item declares.
        declared: u64,
        /// How much the state allows.
        limit: usize,
    },
    #[error("declared size {declared} bytes, decoded {actual} bytes")]
    /// The decoded state is not as long as the item's `sizeBytes` says.
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
    /// The decoded state's SHA-256 differs from the item's `checksum`: the bytes changed after
    /// they were written.
    ChecksumMismatch {
        /// The value stored with the item.
        stored: String,
        /// The value computed from the bytes.
        computed: String,
    },
}

/// States at least this large are decompressed and checksummed at once, on two threads, where
/// the process may run two at a time (on Lambda, a function gets more than one vCPU's worth
/// above 1,769 MB of memory): SHA-256 and zstd cost about the same per byte, so each of the two
/// steps hides the other (docs/bench, codec table). With less CPU the two threads share it and
/// the decode takes about as long as decoding alone.
pub const HASH_ALONGSIDE_ABOVE: usize = 256 * 1024;
/// The hashing thread is handed the decompressed state in pieces of this size (a zstd block).
const HASH_PIECE: usize = 128 * 1024;

/// Decompresses a zstd body into `declared` bytes and returns them with their SHA-256 (hex).
/// The frame must state its content size and agree with the item before anything is
/// allocated, so neither a lying `sizeBytes` nor a lying frame header makes us reserve more
/// than the declared (already capped) size; the body must be exactly one frame (nothing after
/// it), and decoding refuses to write past the declared size.
fn decompress_and_hash(bytes: &[u8], declared: usize) -> Result<(Vec<u8>, String), CodecError> {
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
    match zstd::zstd_safe::find_frame_compressed_size(bytes) {
        Ok(frame) if frame == bytes.len() => {}
        Ok(_) => return Err(CodecError::Zstd("bytes after the frame".to_owned())),
        Err(_) => return Err(CodecError::Zstd("truncated or corrupt frame".to_owned())),
    }
    if declared >= HASH_ALONGSIDE_ABOVE && two_cores() {
        if let Some(opened) = decompress_hashing_alongside(bytes, declared) {
            return opened;
        }
    }
    let json = zstd::bulk::decompress(bytes, declared).map_err(zstd_error)?;
    let checksum = sha256_hex(&json);
    Ok((json, checksum))
}

fn zstd_error(error: std::io::Error) -> CodecError {
    CodecError::Zstd(error.to_string())
}

/// True when this process may run two threads at once.
fn two_cores() -> bool {
    static TWO: OnceLock<bool> = OnceLock::new();
    *TWO.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Streams the frame into `declared` bytes while a second thread hashes each piece as soon as
/// it is written. `None` when the thread could not be started (the caller decodes on its own).
/// The pieces are handed over through one `OnceLock` each and `park`/`unpark`, not a channel:
/// a channel's code cost every function's bootstrap about 14 KB more (docs/binaries.md).
fn decompress_hashing_alongside(
    bytes: &[u8],
    declared: usize,
) -> Option<Result<(Vec<u8>, String), CodecError>> {
    let mut json = vec![0_u8; declared];
    let pieces: Vec<OnceLock<&[u8]>> = (0..declared.div_ceil(HASH_PIECE))
        .map(|_| OnceLock::new())
        .collect();
    let stopped = AtomicBool::new(false);
    let digest = std::thread::scope(|scope| {
        let hasher = std::thread::Builder::new()
            .name("snapshot-checksum".to_owned())
            .spawn_scoped(scope, || hash_pieces(&pieces, &stopped))
            .ok()?;
        let mut next = pieces.iter();
        let decoded = decompress_into(bytes, &mut json, |piece| {
            if let Some(slot) = next.next() {
                let _ = slot.set(piece);
            }
            hasher.thread().unpark();
        });
        stopped.store(true, Ordering::Release);
        hasher.thread().unpark();
        let digest = hasher
            .join()
            .ok()
            .flatten()
            .ok_or_else(|| CodecError::Zstd("checksum thread stopped".to_owned()));
        Some(decoded.and(digest))
    })?;
    drop(pieces);
    Some(digest.map(|digest| (json, hex::encode(digest))))
}

/// The SHA-256 of `pieces` in order, each taken once it is set; `None` when the decoder
/// `stopped` before handing over every piece.
fn hash_pieces(pieces: &[OnceLock<&[u8]>], stopped: &AtomicBool) -> Option<[u8; 32]> {
    let mut sha = Sha256::new();
    for slot in pieces {
        loop {
            if let Some(piece) = slot.get() {
                sha.update(piece);
                break;
            }
            if stopped.load(Ordering::Acquire) {
                return None;
            }
            std::thread::park();
        }
    }
    Some(sha.finalize().into())
}

/// Decodes one zstd frame into exactly `out.len()` bytes, handing each filled piece to `written`.
fn decompress_into<'out>(
    bytes: &[u8],
    out: &'out mut [u8],
    mut written: impl FnMut(&'out [u8]),
) -> Result<(), CodecError> {
    use zstd::stream::raw::{Decoder, Operation};

    let declared = out.len();
    let mut decoder = Decoder::new().map_err(zstd_error)?;
    let mut input = bytes;
    let mut frame_ended = false;
    let mut filled_total = 0;
    for piece in out.chunks_mut(HASH_PIECE) {
        let mut filled = 0;
        while filled < piece.len() {
            if frame_ended {
                return Err(CodecError::SizeMismatch {
                    declared: declared as u64,
                    actual: filled_total + filled,
                });
            }
            let status = decoder
                .run_on_buffers(input, &mut piece[filled..])
                .map_err(zstd_error)?;
            input = input.get(status.bytes_read..).unwrap_or_default();
            filled += status.bytes_written;
            frame_ended = status.remaining == 0;
            if status.bytes_read == 0 && status.bytes_written == 0 && !frame_ended {
                return Err(CodecError::Zstd("truncated frame".to_owned()));
            }
        }
        filled_total += filled;
        written(piece);
    }
    // The frame may still hold its end (or more content than declared, which is refused).
    let mut beyond = [0_u8; 1];
    while !frame_ended {
        let status = decoder
            .run_on_buffers(input, &mut beyond)
            .map_err(zstd_error)?;
        input = input.get(status.bytes_read..).unwrap_or_default();
        if status.bytes_written > 0 {
            return Err(CodecError::SizeMismatch {
                declared: declared as u64,
                actual: declared + status.bytes_written,
            });
        }
        frame_ended = status.remaining == 0;
        if status.bytes_read == 0 && !frame_ended {
            return Err(CodecError::Zstd("truncated frame".to_owned()));
        }
    }
    Ok(())
}

/// SHA-256 of `bytes` as 64 lower-case hex digits: the form of a snapshot's `checksum` (of
/// the uncompressed state) and of the snapshotter's drift comparison.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Bytes with their SHA-256 (hex).
fn hashed(bytes: Vec<u8>) -> (Vec<u8>, String) {
    let checksum = sha256_hex(&bytes);
    (bytes, checksum)
}

/// Encodes and decodes snapshot states; signs and verifies snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCodec {
    /// States larger than this many bytes are compressed.
    pub compress_above: usize,
    /// zstd compression level of `json+zstd` states (1 fastest … 22 smallest; default 3).
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
    /// The default codec (zstd level 3, no offload, [`MAX_STATE_BYTES`], the process-local
    /// authenticator) compressing states larger than `compress_above` bytes.
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
        let (json, computed) = match (encoding, body) {
            (Encoding::Json, StateBody::Text(text)) => hashed(text.as_bytes().to_vec()),
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
                hashed(bytes.clone())
            }
            (Encoding::JsonZstd | Encoding::S3JsonZstd, StateBody::Binary(bytes)) => {
                let declared = usize::try_from(size_bytes)
                    .ok()
                    .filter(|n| *n <= self.max_state_bytes)
                    .ok_or(CodecError::DeclaredSizeTooLarge {
                        declared: size_bytes,
                        limit: self.max_state_bytes,
                    })?;
                decompress_and_hash(bytes, declared)?
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

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON-like bytes that compress about as well as a real state, with no long runs.
    fn state_bytes(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut i = 0_u64;
        while out.len() < len {
            out.extend_from_slice(
                format!("\"SKU-{:07}\":{},", i * 7919 % 1_000_003, i % 500).as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn frame(json: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(json, 3).unwrap()
    }

    #[test]
    fn hashing_alongside_gives_the_bytes_and_checksum_of_decoding_alone() {
        for len in [
            HASH_PIECE - 1,
            HASH_PIECE,
            HASH_PIECE + 1,
            3 * HASH_PIECE + 17,
            1024 * 1024,
        ] {
            let json = state_bytes(len);
            let (decoded, checksum) = decompress_hashing_alongside(&frame(&json), len)
                .expect("thread started")
                .unwrap();
            assert_eq!(decoded, json, "len {len}");
            assert_eq!(checksum, sha256_hex(&json), "len {len}");
        }
    }

    #[test]
    fn a_large_state_round_trips_through_the_codec() {
        let codec = SnapshotCodec::default();
        let json = state_bytes(2 * HASH_ALONGSIDE_ABOVE + 3);
        let encoded = codec.encode(json.clone()).unwrap();
        assert_eq!(encoded.encoding, Encoding::JsonZstd);
        let decoded = codec
            .decode(
                encoded.encoding,
                &encoded.body,
                encoded.size_bytes,
                &encoded.checksum,
            )
            .unwrap();
        assert_eq!(decoded, json);
    }

    #[test]
    fn a_truncated_frame_is_refused_on_either_path() {
        let json = state_bytes(HASH_ALONGSIDE_ABOVE + 5);
        let mut bytes = frame(&json);
        bytes.truncate(bytes.len() - 10);
        assert!(matches!(
            decompress_and_hash(&bytes, json.len()),
            Err(CodecError::Zstd(_))
        ));
        let mut out = vec![0; json.len()];
        assert!(decompress_into(&bytes, &mut out, |_| {}).is_err());
    }

    #[test]
    fn bytes_after_the_frame_are_refused_whatever_the_size() {
        for len in [1000, HASH_ALONGSIDE_ABOVE + 5] {
            let json = state_bytes(len);
            let mut bytes = frame(&json);
            bytes.extend_from_slice(&frame(b"{}"));
            assert_eq!(
                decompress_and_hash(&bytes, len),
                Err(CodecError::Zstd("bytes after the frame".to_owned())),
                "len {len}"
            );
        }
    }

    #[test]
    fn more_content_than_the_buffer_is_refused_not_written() {
        let json = state_bytes(3 * HASH_PIECE);
        let bytes = frame(&json);
        let mut out = vec![0; 2 * HASH_PIECE + 1];
        let mut handed = 0;
        let result = decompress_into(&bytes, &mut out, |piece| handed += piece.len());
        assert!(
            matches!(result, Err(CodecError::SizeMismatch { .. })),
            "{result:?}"
        );
        assert!(handed <= out.len());
    }

    #[test]
    fn a_corrupted_frame_never_opens_on_either_path() {
        let codec = SnapshotCodec::default();
        let json = state_bytes(HASH_ALONGSIDE_ABOVE * 2);
        let encoded = codec.encode(json).unwrap();
        let StateBody::Binary(bytes) = &encoded.body else {
            panic!("compressed")
        };
        for at in [20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 20] {
            let mut corrupted = bytes.clone();
            corrupted[at] ^= 0x5a;
            let body = StateBody::Binary(corrupted.clone());
            assert!(
                codec
                    .decode(
                        encoded.encoding,
                        &body,
                        encoded.size_bytes,
                        &encoded.checksum
                    )
                    .is_err(),
                "corruption at {at} opened"
            );
            let alongside = decompress_hashing_alongside(&corrupted, json_len(&encoded));
            assert!(
                alongside.is_some_and(|r| r.map_or(true, |(_, sum)| sum != encoded.checksum)),
                "corruption at {at} gave the stored checksum"
            );
        }
    }

    fn json_len(encoded: &EncodedState) -> usize {
        usize::try_from(encoded.size_bytes).unwrap()
    }
}
