//! Trust documents: the root of trust that can change (CONTRACT §11).
//!
//! A trust document is a DSSE envelope of type [`TRUST_PAYLOAD_TYPE`] whose payload names
//! the keys and thresholds of three roles: `root` (signs trust documents), `firmware` and
//! `config` (sign artifacts). Version N+1 is accepted only when it is signed by the root
//! threshold of version N **and** by its own root threshold (TUF's rule), and it has not
//! expired. The server ([`accept_next`] before storing) and the agent (before applying)
//! use the same rule, here, once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::envelope::{Envelope, decode_base64};
use crate::{ArtifactKind, KeyId, PublicKey, Verifier, VerifyError};

/// The payload type of every trust document envelope.
pub const TRUST_PAYLOAD_TYPE: &str = "application/vnd.fleet.trust.v1+json";

/// The one trust schema this build understands.
pub const TRUST_SCHEMA: u32 = 1;

/// The only `kind` a trust document has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustKind {
    Trust,
}

/// One key of the document, by its keyid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKey {
    pub public_key_pem: String,
}

/// The keys of a role and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub keyids: Vec<KeyId>,
    pub threshold: usize,
}

/// The three roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub root: Role,
    pub firmware: Role,
    pub config: Role,
}

/// A trust document's payload, schema 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustDocument {
    pub schema: u32,
    pub kind: TrustKind,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub keys: BTreeMap<KeyId, TrustKey>,
    pub roles: Roles,
}

/// The role names, for verifiers and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleName {
    Root,
    Firmware,
    Config,
}

impl From<ArtifactKind> for RoleName {
    fn from(kind: ArtifactKind) -> Self {
        match kind {
            ArtifactKind::Firmware => Self::Firmware,
            ArtifactKind::Config => Self::Config,
        }
    }
}

/// Why a trust document is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The envelope or payload is malformed (server: 400 `bad_manifest`).
    #[error("trust document is malformed: {0}")]
    Malformed(String),
    /// Too few valid signatures by a root role (422 `signature_invalid`; on a device
    /// `trust_signature_invalid`).
    #[error("not signed by the {which} root threshold: {error}")]
    SignatureInvalid { which: &'static str, error: VerifyError },
    /// Not the next version (409 `trust_version`; on a device `trust_rollback`).
    #[error("trust document version {got}; expected {expected}")]
    Version { expected: u64, got: u64 },
    /// Expired (422 `trust_expired`; on a device `trust_expired`).
    #[error("trust document version {version} expired at {expires_at}")]
    Expired { version: u64, expires_at: OffsetDateTime },
}

impl TrustDocument {
    /// Parses and checks payload bytes. Call only on verified bytes (or to show a draft).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, TrustError> {
        let doc: Self = serde_json::from_slice(bytes).map_err(|e| TrustError::Malformed(e.to_string()))?;
        doc.check()?;
        Ok(doc)
    }

    /// The rules serde cannot express: schema, version, keys that match their ids, roles
    /// whose keys are listed and whose threshold they can meet.
    pub fn check(&self) -> Result<(), TrustError> {
        let bad = |m: String| Err(TrustError::Malformed(m));
        if self.schema != TRUST_SCHEMA {
            return bad(format!("schema {} is not supported (expected {TRUST_SCHEMA})", self.schema));
        }
        if self.version == 0 {
            return bad("version starts at 1".into());
        }
        for (keyid, key) in &self.keys {
            let parsed = PublicKey::from_pem(&key.public_key_pem).map_err(|e| TrustError::Malformed(e.to_string()))?;
            if parsed.keyid() != keyid {
                return bad(format!("key {keyid} is listed under another key's id"));
            }
        }
        for (name, role) in
            [("root", &self.roles.root), ("firmware", &self.roles.firmware), ("config", &self.roles.config)]
        {
            if let Some(missing) = role.keyids.iter().find(|k| !self.keys.contains_key(*k)) {
                return bad(format!("role {name} names key {missing}, which is not in keys"));
            }
            let distinct: std::collections::BTreeSet<_> = role.keyids.iter().collect();
            if role.threshold == 0 || role.threshold > distinct.len() {
                return bad(format!("role {name}: threshold {} of {} keys", role.threshold, distinct.len()));
            }
        }
        Ok(())
    }

    /// A role's keys and threshold.
    pub fn role(&self, name: RoleName) -> &Role {
        match name {
            RoleName::Root => &self.roles.root,
            RoleName::Firmware => &self.roles.firmware,
            RoleName::Config => &self.roles.config,
        }
    }

    /// A verifier for a role (keys were checked by [`TrustDocument::check`]).
    pub fn verifier(&self, name: RoleName) -> Verifier {
        let role = self.role(name);
        let keys = role
            .keyids
            .iter()
            .filter_map(|id| self.keys.get(id))
            .filter_map(|k| PublicKey::from_pem(&k.public_key_pem).ok());
        Verifier::new(keys, role.threshold)
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// The payload bytes of a new document (to be signed).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a trust document always serialises")
    }
}

/// Verifies `envelope` against a root role and parses what it signed.
fn signed_by_root(root: &TrustDocument, which: &'static str, envelope: &Envelope) -> Result<Vec<u8>, TrustError> {
    match root.verifier(RoleName::Root).verify_as(envelope, TRUST_PAYLOAD_TYPE) {
        Ok(v) => Ok(v.payload),
        Err(VerifyError::Malformed(e)) => Err(TrustError::Malformed(e.to_string())),
        Err(error) => Err(TrustError::SignatureInvalid { which, error }),
    }
}

/// The first document: signed by the threshold of its own root role, not expired.
pub fn accept_initial(envelope: &Envelope, now: OffsetDateTime) -> Result<TrustDocument, TrustError> {
    let payload = envelope.decode_as(TRUST_PAYLOAD_TYPE).map_err(|e| TrustError::Malformed(e.to_string()))?.payload;
    let doc = TrustDocument::from_slice(&payload)?;
    signed_by_root(&doc, "its own", envelope)?;
    not_expired(doc, now)
}

/// TUF's rule: version `current.version + 1`, signed by the root threshold of `current`
/// and by its own, not expired.
pub fn accept_next(
    current: &TrustDocument,
    envelope: &Envelope,
    now: OffsetDateTime,
) -> Result<TrustDocument, TrustError> {
    let payload = signed_by_root(current, "current", envelope)?;
    let next = TrustDocument::from_slice(&payload)?;
    if next.version != current.version + 1 {
        return Err(TrustError::Version { expected: current.version + 1, got: next.version });
    }
    signed_by_root(&next, "new", envelope)?;
    not_expired(next, now)
}

fn not_expired(doc: TrustDocument, now: OffsetDateTime) -> Result<TrustDocument, TrustError> {
    if doc.expired(now) {
        return Err(TrustError::Expired { version: doc.version, expires_at: doc.expires_at });
    }
    Ok(doc)
}

/// The version an envelope claims, read WITHOUT verifying it: only a hint of what to fetch
/// (every document fetched is then verified by [`accept_next`]).
pub fn claimed_version(envelope: &Envelope) -> Option<u64> {
    #[derive(Deserialize)]
    struct Claim {
        version: u64,
    }
    if envelope.payload_type != TRUST_PAYLOAD_TYPE {
        return None;
    }
    let payload = decode_base64(&envelope.payload)?;
    serde_json::from_slice::<Claim>(&payload).ok().map(|c| c.version)
}

#[cfg(all(test, feature = "sign"))]
mod tests {
    use super::*;
    use crate::sign::{SigningKey, sign_payload_as};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn id(seed: u8) -> KeyId {
        PublicKey::from_verifying_key(key(seed).verifying_key()).keyid().clone()
    }

    fn doc(version: u64, root: &[u8], threshold: usize, release: u8) -> TrustDocument {
        let mut keys = BTreeMap::new();
        for seed in root.iter().chain([&release]) {
            let pem = PublicKey::from_verifying_key(key(*seed).verifying_key()).to_pem();
            keys.insert(id(*seed), TrustKey { public_key_pem: pem });
        }
        let role = |ids: Vec<KeyId>, threshold| Role { keyids: ids, threshold };
        TrustDocument {
            schema: TRUST_SCHEMA,
            kind: TrustKind::Trust,
            version,
            expires_at: OffsetDateTime::now_utc() + time::Duration::days(30),
            keys,
            roles: Roles {
                root: role(root.iter().map(|s| id(*s)).collect(), threshold),
                firmware: role(vec![id(release)], 1),
                config: role(vec![id(release)], 1),
            },
        }
    }

    fn sign(doc: &TrustDocument, seeds: &[u8]) -> Envelope {
        let keys: Vec<SigningKey> = seeds.iter().map(|s| key(*s)).collect();
        sign_payload_as(TRUST_PAYLOAD_TYPE, &doc.to_bytes(), &keys.iter().collect::<Vec<_>>())
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn initial_needs_its_own_root_threshold() {
        let v1 = doc(1, &[1, 2], 2, 9);
        assert_eq!(accept_initial(&sign(&v1, &[1, 2]), now()).unwrap(), v1);
        assert!(matches!(accept_initial(&sign(&v1, &[1]), now()), Err(TrustError::SignatureInvalid { .. })));
    }

    #[test]
    fn next_needs_old_and_new_root_and_the_next_version() {
        let v1 = doc(1, &[1, 2], 2, 9);
        let v2 = doc(2, &[3, 4], 2, 8);
        assert!(accept_next(&v1, &sign(&v2, &[1, 2, 3, 4]), now()).is_ok());
        let old_only = accept_next(&v1, &sign(&v2, &[1, 2]), now());
        assert!(matches!(old_only, Err(TrustError::SignatureInvalid { which: "new", .. })));
        let new_only = accept_next(&v1, &sign(&v2, &[3, 4]), now());
        assert!(matches!(new_only, Err(TrustError::SignatureInvalid { which: "current", .. })));
        let v3 = doc(3, &[1, 2], 2, 9);
        assert_eq!(accept_next(&v1, &sign(&v3, &[1, 2]), now()), Err(TrustError::Version { expected: 2, got: 3 }));
        assert_eq!(accept_next(&v1, &sign(&v1, &[1, 2]), now()), Err(TrustError::Version { expected: 2, got: 1 }));
    }

    #[test]
    fn expired_and_malformed_are_refused() {
        let v1 = doc(1, &[1], 1, 9);
        let mut v2 = doc(2, &[1], 1, 9);
        v2.expires_at = now() - time::Duration::seconds(1);
        assert!(matches!(accept_next(&v1, &sign(&v2, &[1]), now()), Err(TrustError::Expired { .. })));
        let mut bad = doc(2, &[1], 1, 9);
        bad.roles.firmware.keyids.push(id(7));
        assert!(matches!(accept_next(&v1, &sign(&bad, &[1]), now()), Err(TrustError::Malformed(_))));
        let mut high = doc(2, &[1], 1, 9);
        high.roles.root.threshold = 2;
        assert!(matches!(accept_next(&v1, &sign(&high, &[1]), now()), Err(TrustError::Malformed(_))));
    }

    #[test]
    fn roles_verify_artifacts_and_versions_can_be_peeked() {
        let v1 = doc(1, &[1], 1, 9);
        let env = sign(&v1, &[1]);
        assert_eq!(claimed_version(&env), Some(1));
        let manifest = crate::sign::sign_payload(b"{}", &[&key(9)]);
        assert!(v1.verifier(RoleName::Firmware).verify(&manifest).is_ok());
        assert_eq!(v1.verifier(RoleName::Root).verify(&manifest), Err(VerifyError::UntrustedKey));
        let unknown =
            r#"{"schema":1,"kind":"trust","version":1,"expires_at":"2030-01-01T00:00:00Z","keys":{},"roles":{},"x":1}"#;
        assert!(TrustDocument::from_slice(unknown.as_bytes()).is_err());
    }
}
