//! Certificates for TLS tests: a throw-away CA and a server certificate for 127.0.0.1 and
//! localhost, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};

/// PEM files of one test CA and the server certificate it issued.
#[derive(Debug, Clone)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    /// A fresh CA named `name` and a server certificate, in `dir`.
    pub fn generate(dir: &Path, name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");

        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, "fleet test server");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca).expect("server certificate");

        std::fs::create_dir_all(dir).expect("cert dir");
        let write = |file: &str, pem: String| {
            let path = dir.join(format!("{name}-{file}"));
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        Self {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", cert.pem()),
            key: write("key.pem", key.serialize_pem()),
        }
    }
}

/// A test CA `NAME.cert.pem` and a signer under it (`NAME.signer.{cert,key}.pem`) in `dir`,
/// made with the `openssl` command-line tool as RAUC's and SWUpdate's documentation do.
pub fn openssl_ca(dir: &Path, name: &str) -> anyhow::Result<()> {
    let p = |suffix: &str| dir.join(format!("{name}.{suffix}")).display().to_string();
    let subject = format!("/CN=fleet test {name}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("key.pem"),
        "-out",
        &p("cert.pem"),
        "-days",
        "3650",
        "-subj",
        &subject,
    ])?;
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("signer.key.pem"),
        "-out",
        &p("signer.csr.pem"),
        "-subj",
        &format!("{subject} signer"),
    ])?;
    std::fs::write(p("leaf.ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n")?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("signer.csr.pem"),
        "-CA",
        &p("cert.pem"),
        "-CAkey",
        &p("key.pem"),
        "-CAcreateserial",
        "-out",
        &p("signer.cert.pem"),
        "-days",
        "3650",
        "-extfile",
        &p("leaf.ext"),
    ])?;
    Ok(())
}

fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("openssl").args(args).output()?;
    anyhow::ensure!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// A throw-away CA for device certificates (the server's `--device-ca-cert/--device-ca-key`).
#[derive(Debug, Clone)]
pub struct TestCa {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A fresh CA named `name`, in `dir`.
    pub fn generate(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let ca = Self::params(name).self_signed(&key).expect("CA");
        std::fs::create_dir_all(dir).expect("cert dir");
        let (cert, key_file) = (dir.join(format!("{name}-ca.pem")), dir.join(format!("{name}-ca.key")));
        std::fs::write(&cert, ca.pem()).expect("write PEM");
        std::fs::write(&key_file, key.serialize_pem()).expect("write PEM");
        Self { cert, key: key_file }
    }

    fn params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("{name} device CA"));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params
    }

    /// An empty CRL of this CA (PEM), valid for a day.
    pub fn empty_crl(&self) -> String {
        let key = KeyPair::from_pem(&std::fs::read_to_string(&self.key).expect("CA key")).expect("CA key");
        let stem = self.cert.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix("-ca.pem"));
        let issuer = rcgen::Issuer::new(Self::params(stem.expect("a TestCa file name")), key);
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(5),
            next_update: now + time::Duration::days(1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&issuer).expect("CRL").pem().expect("PEM")
    }
}
