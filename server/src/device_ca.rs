//! Device certificates (CONTRACT §12): the CA that signs them (`--device-ca-cert/--device-ca-key`,
//! or `--tls-self-signed`'s own CA), signing a device's CSR, and telling which device a
//! presented certificate stands for.
//!
//! A certificate counts only if the server signed it and still knows it: the TLS layer checks
//! that it chains to the CA and is within its validity; then it is looked up in the store by
//! the SHA-256 of its DER ([`device_of`]), which gives the device and says whether it was
//! revoked (rotating the device's credentials or removing it revokes all of its certificates).
//! A certificate made with the same CA key outside the server is therefore refused too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::RootCertStore;
use rustls::server::danger::ClientCertVerifier;
use sha2::{Digest as _, Sha256};

use crate::random::RandomnessError;
use crate::store::{DeviceCertificateRecord, Store, StoreResult};

/// Default lifetime of a device certificate (`--device-cert-days`).
pub const DEFAULT_DAYS: u32 = 90;

/// How far before the signing a certificate becomes valid, at most.
const BACKDATE: Duration = Duration::from_secs(300);

/// Why the device CA could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DeviceCaError {
    #[error("device CA {0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("device CA {0}: {1}")]
    Certificate(PathBuf, #[source] rcgen::Error),
    #[error("device CA {0}: {1}")]
    Verifier(PathBuf, String),
}

/// Why a CSR was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the CSR is not valid: {0}")]
    BadCsr(rcgen::Error),
    #[error("the CSR's subject CN must be the device id {0}")]
    WrongName(DeviceId),
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    #[error("signing: {0}")]
    Signing(rcgen::Error),
}

/// The CA that signs device certificates.
pub struct DeviceCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, for verifying client certificates.
    roots: Arc<RootCertStore>,
    lifetime: Duration,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

/// A certificate just signed.
#[derive(Debug, Clone)]
pub struct Signed {
    pub pem: String,
    pub record: DeviceCertificateRecord,
}

impl DeviceCa {
    /// Loads the CA certificate and key (PEM); certificates it signs live `lifetime`.
    pub fn load(cert: &Path, key: &Path, lifetime: Duration) -> Result<Self, DeviceCaError> {
        let cert_pem = std::fs::read_to_string(cert).map_err(|e| DeviceCaError::Io(cert.to_owned(), e))?;
        let key_pem = std::fs::read_to_string(key).map_err(|e| DeviceCaError::Io(key.to_owned(), e))?;
        let key_pair = KeyPair::from_pem(&key_pem).map_err(|e| DeviceCaError::Certificate(key.to_owned(), e))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key_pair)
            .map_err(|e| DeviceCaError::Certificate(cert.to_owned(), e))?;
        let mut roots = RootCertStore::empty();
        let certs = fleet_protocol::tls::load_certs(cert)
            .map_err(|e| DeviceCaError::Verifier(cert.to_owned(), e.to_string()))?;
        for c in certs {
            roots.add(c).map_err(|e| DeviceCaError::Verifier(cert.to_owned(), e.to_string()))?;
        }
        Ok(Self { issuer, roots: Arc::new(roots), lifetime })
    }

    /// A TLS client verifier that asks for a certificate chained to this CA and lets clients
    /// without one in (they log in with their tokens).
    pub fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::server::VerifierBuilderError> {
        rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots.clone(), fleet_protocol::tls::provider())
            .allow_unauthenticated()
            .build()
    }

    /// Signs `csr_pem` for `device`: its subject CN must be the device id; everything else
    /// it asks for is ignored (the certificate is for TLS client authentication only).
    pub fn sign(&self, device: &DeviceId, csr_pem: &str, now_ms: i64) -> Result<Signed, SignError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(SignError::BadCsr)?;
        let cn = csr.params.distinguished_name.get(&DnType::CommonName).and_then(dn_text);
        if cn != Some(device.as_str()) {
            return Err(SignError::WrongName(device.clone()));
        }
        let serial = crate::random::bytes::<16>()?;
        let mut serial = serial.to_vec();
        serial[0] &= 0x7f; // a positive serial number
        let now = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let not_after = now + self.lifetime;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, device.as_str());
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // Back-dated a little for devices whose clock runs behind, not so much that the
        // renewal point (two thirds into the lifetime) would already have passed.
        params.not_before = now - (self.lifetime / 10).min(BACKDATE);
        params.not_after = not_after;
        params.use_authority_key_identifier_extension = true;
        csr.params = params;
        let cert = csr.signed_by(&self.issuer).map_err(SignError::Signing)?;
        let record = DeviceCertificateRecord {
            sha256: fingerprint(cert.der()),
            serial: hex::encode(&serial),
            device_id: device.clone(),
            not_after_ms: i64::try_from(not_after.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
            revoked_at_ms: None,
            created_at_ms: now_ms,
        };
        Ok(Signed { pem: cert.pem(), record })
    }
}

/// The text of a name attribute, whatever its string type.
fn dn_text(value: &DnValue) -> Option<&str> {
    match value {
        DnValue::Utf8String(s) => Some(s),
        DnValue::PrintableString(s) => Some(s.as_str()),
        DnValue::Ia5String(s) => Some(s.as_str()),
        _ => None,
    }
}

impl DeviceCa {
    /// A CRL (PEM) of the device certificates `revoked`, signed now (`now_ms`) and valid
    /// for [`CRL_VALIDITY`]: for brokers that check certificates against a CRL file
    /// (Mosquitto's `crlfile`).
    pub fn crl(&self, revoked: &[DeviceCertificateRecord], now_ms: i64) -> Result<String, rcgen::Error> {
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        };
        let now = at(now_ms);
        let revoked_certs = revoked
            .iter()
            .filter_map(|c| {
                Some(rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&hex::decode(&c.serial).ok()?),
                    revocation_time: at(c.revoked_at_ms.unwrap_or(now_ms)),
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(5),
            next_update: now + CRL_VALIDITY,
            crl_number: SerialNumber::from(u64::try_from(now_ms).unwrap_or_default()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer)?.pem()
    }
}

impl DeviceCa {
    /// A certificate for `device` with a key made here, valid for [`STAND_IN_LIFETIME`] and
    /// recorded nowhere: the server's stand-in for the device on a broker that checks
    /// certificates itself (Mosquitto), to take over the device's session
    /// (`broker::takeover`). Being unknown to the store, it opens nothing of the server's
    /// own (HTTPS, the embedded broker); its key never leaves this process.
    pub fn stand_in(&self, device: &DeviceId) -> Result<StandIn, SignError> {
        let key = KeyPair::generate().map_err(SignError::Signing)?;
        let mut serial = crate::random::bytes::<16>()?.to_vec();
        serial[0] &= 0x7f; // a positive serial number
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, device.as_str());
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // Back-dated as much as it lives, for a broker whose clock runs behind.
        params.not_before = now - STAND_IN_LIFETIME;
        params.not_after = now + STAND_IN_LIFETIME;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(SignError::Signing)?;
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        Ok(StandIn { cert: cert.der().clone(), key: key.into() })
    }
}

/// How long a stand-in certificate ([`DeviceCa::stand_in`]) is valid.
pub const STAND_IN_LIFETIME: Duration = Duration::from_secs(120);

/// A stand-in certificate and its key, in memory only.
pub struct StandIn {
    pub cert: rustls::pki_types::CertificateDer<'static>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").finish_non_exhaustive()
    }
}

/// How long a CRL written for a broker is valid; it is written again well before.
pub const CRL_VALIDITY: Duration = Duration::from_secs(7 * 86_400);

/// The SHA-256 of a certificate's DER, lowercase hex: how the store finds it.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The device a presented certificate (by [`fingerprint`]) stands for: one the server
/// signed, not revoked and not expired at `now_ms`; `None` otherwise.
pub async fn device_of(store: &dyn Store, sha256: &str, now_ms: i64) -> StoreResult<Option<DeviceId>> {
    Ok(store
        .device_certificate(sha256)
        .await?
        .filter(|c| c.revoked_at_ms.is_none() && c.not_after_ms > now_ms)
        .map(|c| c.device_id))
}

/// The verified client certificate of a TLS connection, by [`fingerprint`]: put into each
/// request's extensions by the HTTPS server and recorded by the broker's gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub String);

impl ClientCertificate {
    /// The end-entity certificate a TLS client presented (already verified), if any.
    pub fn of(connection: &rustls::ServerConnection) -> Option<Self> {
        connection.peer_certificates()?.first().map(|c| Self(fingerprint(c.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(dir: &Path) -> DeviceCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, "test device CA");
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("ca.key"), key.serialize_pem()).unwrap();
        DeviceCa::load(&dir.join("ca.crt"), &dir.join("ca.key"), Duration::from_secs(90 * 86_400)).unwrap()
    }

    fn csr(cn: &str) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap()
    }

    #[test]
    fn only_a_csr_for_the_device_itself_is_signed_for_the_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let device = DeviceId::parse("dev-1").unwrap();
        let signed = ca.sign(&device, &csr("dev-1"), 1_000_000).unwrap();
        assert_eq!(signed.record.device_id, device);
        assert_eq!(signed.record.not_after_ms, 1_000_000 + 90 * 86_400_000);
        assert_eq!(signed.record.serial.len(), 32);
        let der = <rustls::pki_types::CertificateDer<'_> as rustls::pki_types::pem::PemObject>::from_pem_slice(
            signed.pem.as_bytes(),
        )
        .unwrap();
        assert_eq!(fingerprint(der.as_ref()), signed.record.sha256, "found by what a client presents");
        assert!(matches!(ca.sign(&device, &csr("dev-2"), 0), Err(SignError::WrongName(_))));
        assert!(matches!(ca.sign(&device, "no CSR", 0), Err(SignError::BadCsr(_))));
        let crl = ca.crl(&[signed.record], 2_000_000).unwrap();
        assert!(crl.starts_with("-----BEGIN X509 CRL-----"), "{crl}");
    }

    #[test]
    fn a_stand_in_chains_to_the_ca_for_two_minutes_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let stand_in = ca.stand_in(&DeviceId::parse("dev-1").unwrap()).unwrap();
        let verifier = ca.client_verifier().unwrap();
        let at = |from_now: Duration| {
            rustls::pki_types::UnixTime::since_unix_epoch(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + from_now,
            )
        };
        assert!(verifier.verify_client_cert(&stand_in.cert, &[], at(Duration::ZERO)).is_ok());
        let later = at(STAND_IN_LIFETIME + Duration::from_secs(5));
        assert!(verifier.verify_client_cert(&stand_in.cert, &[], later).is_err(), "expired");
        assert!(matches!(stand_in.key, rustls::pki_types::PrivateKeyDer::Pkcs8(_)));
    }
}
