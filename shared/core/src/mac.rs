//! Snapshot authentication (docs/security.md#snapshot-authentication): an HMAC-SHA256 over
//! what identifies a snapshot and its state, so a snapshot item planted or altered by anyone
//! who can write the table but cannot obtain the key is never used.
//!
//! The checksum detects corruption; the MAC detects forgery. It covers `aggregateId`,
//! `aggregateType`, `version`, `schemaVersion`, `checksum` (the SHA-256 of the uncompressed
//! state, so the state itself is covered) and `lastEventId`, each length-prefixed so no two
//! different field lists encode alike, plus the key id it was made with.
//!
//! Keys are raw bytes here: where they come from (a KMS data key decrypted once per
//! container) is an adapter's business. A [`SnapshotKeys`] ring signs with its current key and
//! verifies with the current and any previous key, which is how a key is rotated.

use std::fmt;
use std::sync::{Arc, OnceLock};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: a MAC of this scheme never verifies as anything else, nor the reverse.
const SCHEME: &[u8] = b"aggregate-snapshot-mac/v1";
/// Shortest key accepted (HMAC-SHA256 keys below the hash size weaken it).
pub const MIN_KEY_BYTES: usize = 32;

/// The `mac` attribute of a snapshot item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMac {
    /// Which key made it (see [`SnapshotKeys`]).
    pub key_id: String,
    /// Lower-case hex HMAC-SHA256.
    pub value: String,
}

/// The fields a snapshot's MAC covers: who it is of, at which version and revision, and the
/// checksum of its state (so the state itself is covered without hashing it twice). Anything
/// else in the item (metadata, sizes, marks) can change without breaking the MAC.
#[derive(Debug, Clone, Copy)]
pub struct MacFields<'a> {
    /// The aggregate the snapshot belongs to.
    pub aggregate_id: &'a str,
    /// Its `aggregateType`, e.g. `INVENTORY_ITEM`: a state cannot be moved to another type.
    pub aggregate_type: &'a str,
    /// The aggregate version captured.
    pub version: u64,
    /// Revision of the state shape.
    pub schema_version: u32,
    /// SHA-256 (hex) of the uncompressed state, exactly as stored.
    pub checksum: &'a str,
    /// `eventId` of the event at `version`, when known.
    pub last_event_id: Option<&'a str>,
}

impl MacFields<'_> {
    /// The unambiguous byte string the MAC is computed over: every variable-length field is
    /// preceded by its length (u64, big endian), numbers are fixed width, the optional
    /// `lastEventId` carries a presence byte.
    pub fn encode(&self, key_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        field(SCHEME);
        field(key_id.as_bytes());
        field(self.aggregate_id.as_bytes());
        field(self.aggregate_type.as_bytes());
        field(&self.version.to_be_bytes());
        field(&self.schema_version.to_be_bytes());
        field(self.checksum.as_bytes());
        match self.last_event_id {
            Some(id) => {
                field(&[1]);
                field(id.as_bytes());
            }
            None => field(&[0]),
        }
        out
    }
}

/// One key of the ring.
#[derive(Clone)]
pub struct SnapshotKey {
    id: String,
    secret: Vec<u8>,
}

impl SnapshotKey {
    /// A key named `id` (stored with every MAC it makes) with `secret` bytes (at least
    /// [`MIN_KEY_BYTES`]).
    pub fn new(id: impl Into<String>, secret: Vec<u8>) -> Result<Self, KeyError> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 || !id.bytes().all(is_id_byte) {
            return Err(KeyError::BadId(id));
        }
        if secret.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                id,
                len: secret.len(),
            });
        }
        Ok(Self { id, secret })
    }

    /// The key's id, recorded in every MAC it makes (`mac.keyId`) so a reader picks the right
    /// key of its ring; not secret.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; `new` checked the minimum.
        HmacSha256::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!())
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

impl fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("SnapshotKey").field("id", &self.id).finish()
    }
}

/// Why a key or key ring cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Key ids are 1 to 128 characters of letters, digits, `-`, `_` and `.`.
    #[error("snapshot key id {0:?} must be 1 to 128 characters of letters, digits, '-', '_', '.'")]
    BadId(String),
    /// Too short to be a key.
    #[error("snapshot key {id} has {len} bytes, at least 32 are needed")]
    TooShort {
        /// The id of the key refused.
        id: String,
        /// Its secret's length in bytes (below 32).
        len: usize,
    },
    /// Two keys of the ring share an id.
    #[error("snapshot key id {0} appears twice")]
    DuplicateId(String),
}

/// The current key (signs and verifies) and the previous ones (verify only, until retired).
#[derive(Debug, Clone)]
pub struct SnapshotKeys {
    current: SnapshotKey,
    previous: Vec<SnapshotKey>,
}

impl SnapshotKeys {
    /// A ring signing with `current` and also accepting MACs of `previous`.
    pub fn new(current: SnapshotKey, previous: Vec<SnapshotKey>) -> Result<Self, KeyError> {
        let mut seen = vec![current.id.as_str()];
        for key in &previous {
            if seen.contains(&key.id.as_str()) {
                return Err(KeyError::DuplicateId(key.id.clone()));
            }
            seen.push(&key.id);
        }
        Ok(Self { current, previous })
    }

    /// The id new MACs are made with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Every id a MAC is accepted under, current first.
    pub fn accepted_ids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.id.as_str())
            .collect()
    }

    fn find(&self, id: &str) -> Option<&SnapshotKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// What to do with a snapshot that carries no MAC (written before snapshots were signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnsignedPolicy {
    /// Refused, like a bad MAC (the default).
    #[default]
    Refuse,
    /// Accepted while the clock is before this instant (epoch milliseconds), then refused:
    /// the migration window `SNAPSHOT_MAC_GRACE_UNTIL` opens. A timestamp stored in the item
    /// is NOT trusted for this (it is not covered by anything).
    AcceptUntil(i64),
}

/// Why a snapshot's MAC does not prove it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// No MAC, outside any grace window.
    #[error("snapshot carries no MAC")]
    Missing,
    /// Made with a key this reader does not hold: a newer deployment's key (mid-rollout) or a
    /// retired one. Not proof of forgery, so the snapshot is skipped but not marked.
    #[error("snapshot MAC key {0} is not an accepted key")]
    UnknownKey(String),
    /// The MAC does not match: the item was altered or planted.
    #[error("snapshot MAC does not match (key {0})")]
    Mismatch(String),
}

/// Signs and verifies snapshots: the core's port to whatever holds the key material.
#[derive(Clone)]
pub struct SnapshotAuthenticator {
    keys: Arc<SnapshotKeys>,
    unsigned: UnsignedPolicy,
}

impl SnapshotAuthenticator {
    /// An authenticator over `keys`, refusing unsigned snapshots.
    pub fn new(keys: SnapshotKeys) -> Self {
        Self {
            keys: Arc::new(keys),
            unsigned: UnsignedPolicy::Refuse,
        }
    }

    /// With another policy for unsigned snapshots.
    #[must_use]
    pub fn with_unsigned(mut self, unsigned: UnsignedPolicy) -> Self {
        self.unsigned = unsigned;
        self
    }

    /// A key ring of one random key, shared by every default codec of this process. Snapshots
    /// it signs verify nowhere else: functions wire their real key (`SNAPSHOT_MAC_KEYS`), and
    /// a function that forgot to would only ever refuse its peers' snapshots, never accept a
    /// forged one. Tests and single-process tools use it.
    pub fn process_local() -> Self {
        static KEYS: OnceLock<Arc<SnapshotKeys>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            let mut secret = Vec::with_capacity(MIN_KEY_BYTES);
            while secret.len() < MIN_KEY_BYTES {
                secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            }
            let id = format!("process-{}", uuid::Uuid::new_v4().simple());
            let key = SnapshotKey::new(id, secret).unwrap_or_else(|_| unreachable!());
            Arc::new(SnapshotKeys {
                current: key,
                previous: Vec::new(),
            })
        });
        Self {
            keys: Arc::clone(keys),
            unsigned: UnsignedPolicy::Refuse,
        }
    }

    /// The key ring.
    pub fn keys(&self) -> &SnapshotKeys {
        &self.keys
    }

    /// How this authenticator treats a snapshot without a MAC (refused, or accepted until the
    /// `SNAPSHOT_MAC_GRACE_UNTIL` grace ends).
    pub fn unsigned_policy(&self) -> UnsignedPolicy {
        self.unsigned
    }

    /// The MAC of `fields` under the current key.
    pub fn sign(&self, fields: &MacFields<'_>) -> SnapshotMac {
        let key = &self.keys.current;
        let mut mac = key.mac();
        mac.update(&fields.encode(&key.id));
        SnapshotMac {
            key_id: key.id.clone(),
            value: hex::encode(mac.finalize().into_bytes()),
        }
    }

    /// Checks `mac` against `fields` (constant-time compare); `now_millis` decides the grace
    /// window for a missing MAC.
    pub fn verify(
        &self,
        fields: &MacFields<'_>,
        mac: Option<&SnapshotMac>,
        now_millis: i64,
    ) -> Result<(), MacError> {
        let Some(mac) = mac else {
            return match self.unsigned {
                UnsignedPolicy::AcceptUntil(until) if now_millis < until => Ok(()),
                _ => Err(MacError::Missing),
            };
        };
        let key = self
            .keys
            .find(&mac.key_id)
            .ok_or_else(|| MacError::UnknownKey(mac.key_id.clone()))?;
        let tag = hex::decode(&mac.value).map_err(|_| MacError::Mismatch(key.id.clone()))?;
        let mut computed = key.mac();
        computed.update(&fields.encode(&key.id));
        computed
            .verify_slice(&tag)
            .map_err(|_| MacError::Mismatch(key.id.clone()))
    }
}

impl fmt::Debug for SnapshotAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotAuthenticator")
            .field("keys", &self.keys.accepted_ids())
            .field("unsigned", &self.unsigned)
            .finish()
    }
}

/// Equal when they sign with the same key id, accept the same ids and treat unsigned
/// snapshots alike (secrets are not compared).
impl PartialEq for SnapshotAuthenticator {
    fn eq(&self, other: &Self) -> bool {
        self.keys.accepted_ids() == other.keys.accepted_ids() && self.unsigned == other.unsigned
    }
}

impl Eq for SnapshotAuthenticator {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> SnapshotKey {
        SnapshotKey::new(id, vec![byte; 32]).unwrap()
    }

    fn fields() -> MacFields<'static> {
        MacFields {
            aggregate_id: "wh-1",
            aggregate_type: "WAREHOUSE",
            version: 7,
            schema_version: 1,
            checksum: "ab",
            last_event_id: Some("e-7"),
        }
    }

    #[test]
    fn encoding_is_length_prefixed_so_shifted_fields_differ() {
        let a = MacFields {
            aggregate_id: "ab",
            aggregate_type: "c",
            ..fields()
        };
        let b = MacFields {
            aggregate_id: "a",
            aggregate_type: "bc",
            ..fields()
        };
        assert_ne!(a.encode("k"), b.encode("k"));
        let none = MacFields {
            last_event_id: None,
            ..fields()
        };
        let empty = MacFields {
            last_event_id: Some(""),
            ..fields()
        };
        assert_ne!(none.encode("k"), empty.encode("k"));
    }

    #[test]
    fn every_covered_field_changes_the_mac() {
        let auth = SnapshotAuthenticator::new(SnapshotKeys::new(key("k1", 1), vec![]).unwrap());
        let mac = auth.sign(&fields());
        assert_eq!(auth.verify(&fields(), Some(&mac), 0), Ok(()));
        let altered = [
            MacFields {
                aggregate_id: "wh-2",
                ..fields()
            },
            MacFields {
                aggregate_type: "INVENTORY_ITEM",
                ..fields()
            },
            MacFields {
                version: 8,
                ..fields()
            },
            MacFields {
                schema_version: 2,
                ..fields()
            },
            MacFields {
                checksum: "AB",
                ..fields()
            },
            MacFields {
                last_event_id: None,
                ..fields()
            },
        ];
        for f in altered {
            assert_eq!(
                auth.verify(&f, Some(&mac), 0),
                Err(MacError::Mismatch("k1".into())),
                "{f:?}"
            );
        }
    }

    #[test]
    fn key_id_substitution_fails() {
        // Two keys with the same secret: a MAC relabelled with the other id does not verify,
        // because the id is part of what is signed.
        let auth = SnapshotAuthenticator::new(
            SnapshotKeys::new(key("k1", 1), vec![key("k0", 1)]).unwrap(),
        );
        let mut mac = auth.sign(&fields());
        mac.key_id = "k0".into();
        assert_eq!(
            auth.verify(&fields(), Some(&mac), 0),
            Err(MacError::Mismatch("k0".into()))
        );
    }

    #[test]
    fn unsigned_refused_by_default_and_accepted_only_inside_the_grace_window() {
        let auth = SnapshotAuthenticator::new(SnapshotKeys::new(key("k1", 1), vec![]).unwrap());
        assert_eq!(auth.verify(&fields(), None, 0), Err(MacError::Missing));
        let graced = auth.with_unsigned(UnsignedPolicy::AcceptUntil(1_000));
        assert_eq!(graced.verify(&fields(), None, 999), Ok(()));
        assert_eq!(
            graced.verify(&fields(), None, 1_000),
            Err(MacError::Missing)
        );
    }

    #[test]
    fn rotation_keeps_old_macs_until_the_old_key_is_retired() {
        let old = SnapshotAuthenticator::new(SnapshotKeys::new(key("k1", 1), vec![]).unwrap());
        let signed_with_old = old.sign(&fields());
        // Rotate: k2 signs, k1 still verifies.
        let rotated = SnapshotAuthenticator::new(
            SnapshotKeys::new(key("k2", 2), vec![key("k1", 1)]).unwrap(),
        );
        assert_eq!(rotated.verify(&fields(), Some(&signed_with_old), 0), Ok(()));
        let signed_with_new = rotated.sign(&fields());
        assert_eq!(signed_with_new.key_id, "k2");
        // Retire k1.
        let retired = SnapshotAuthenticator::new(SnapshotKeys::new(key("k2", 2), vec![]).unwrap());
        assert_eq!(
            retired.verify(&fields(), Some(&signed_with_old), 0),
            Err(MacError::UnknownKey("k1".into()))
        );
        assert_eq!(retired.verify(&fields(), Some(&signed_with_new), 0), Ok(()));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            SnapshotKey::new("k", vec![0; 31]),
            Err(KeyError::TooShort { .. })
        ));
        assert!(matches!(
            SnapshotKey::new("k:1", vec![0; 32]),
            Err(KeyError::BadId(_))
        ));
        assert_eq!(
            SnapshotKeys::new(key("k", 1), vec![key("k", 2)]).unwrap_err(),
            KeyError::DuplicateId("k".into())
        );
        assert!(!format!("{:?}", key("k", 7)).contains('7'));
    }

    #[test]
    fn garbage_mac_values_are_mismatches() {
        let auth = SnapshotAuthenticator::new(SnapshotKeys::new(key("k1", 1), vec![]).unwrap());
        for value in ["", "zz", "00"] {
            let mac = SnapshotMac {
                key_id: "k1".into(),
                value: value.into(),
            };
            assert_eq!(
                auth.verify(&fields(), Some(&mac), 0),
                Err(MacError::Mismatch("k1".into()))
            );
        }
    }
}
