//! Trust documents for tests: deterministic Ed25519 keys by seed, documents naming them, and
//! envelopes signed by any of them (including too few, or the wrong ones, on purpose).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fleet_protocol::sign::{SigningKey, sign_payload_as};
use fleet_protocol::trust::{Role, Roles, TRUST_PAYLOAD_TYPE, TRUST_SCHEMA, TrustDocument, TrustKey, TrustKind};
use fleet_protocol::{Envelope, KeyId, PublicKey};
use time::{Duration, OffsetDateTime};

/// A TEST-ONLY key made from a seed byte (seeds 100 and up: apart from other tests' keys).
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from_verifying_key(key.verifying_key())
}

pub fn keyid(key: &SigningKey) -> KeyId {
    public(key).keyid().clone()
}

fn role(keys: &[&SigningKey], threshold: usize, all: &mut BTreeMap<KeyId, TrustKey>) -> Role {
    for k in keys {
        all.insert(keyid(k), TrustKey { public_key_pem: public(k).to_pem() });
    }
    Role { keyids: keys.iter().map(|k| keyid(k)).collect(), threshold }
}

/// Version `version`: `root` with `threshold`, and `release` signing firmware and configs
/// (threshold 1); expires in 30 days.
pub fn document(version: u64, root: &[&SigningKey], threshold: usize, release: &[&SigningKey]) -> TrustDocument {
    let mut keys = BTreeMap::new();
    let roles = Roles {
        root: role(root, threshold, &mut keys),
        firmware: role(release, 1, &mut keys),
        config: role(release, 1, &mut keys),
    };
    let expires_at = OffsetDateTime::now_utc().replace_nanosecond(0).expect("time") + Duration::days(30);
    TrustDocument { schema: TRUST_SCHEMA, kind: TrustKind::Trust, version, expires_at, keys, roles }
}

/// The document signed by `keys`.
pub fn signed(doc: &TrustDocument, keys: &[&SigningKey]) -> Envelope {
    sign_payload_as(TRUST_PAYLOAD_TYPE, &doc.to_bytes(), keys)
}

/// Writes an envelope (a pinned trust root) to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, envelope: &Envelope) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, envelope.to_json_pretty()).expect("write");
    path
}
