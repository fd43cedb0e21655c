//! The TLS pass of `rollout --tls --mosquitto`: TLS ends in Mosquitto (its own process with
//! its own open-files limit), so the server holds only the devices' HTTPS connections. The
//! wiring is the one tests/tests/it/device_certs.rs checks: a device CA the server signs
//! with and Mosquitto requires client certificates of (checked against the CRL the server
//! writes), and a broker certificate of a CA of its own.

use std::path::{Path, PathBuf};

use fleet_tests::certs::{TestCa, TestCerts};
use fleet_tests::mosquitto::Mosquitto;

/// The certificates beside a Mosquitto with a TLS listener for device certificates.
pub struct MosquittoTls {
    device_ca: TestCa,
    /// The CA Mosquitto's own certificate chains to (the server and devices trust it).
    broker_ca: PathBuf,
}

impl MosquittoTls {
    /// Generates both CAs in `dir` and starts Mosquitto there (its files in `dir/mqtt`).
    pub fn start(dir: &Path) -> (Mosquitto, Self) {
        let device_ca = TestCa::generate(&dir.join("device-ca"), "devices");
        let broker = TestCerts::generate(&dir.join("broker-certs"), "broker");
        let mosquitto = Mosquitto::start_with(&dir.join("mqtt"), Some(&broker), Some(&device_ca));
        (mosquitto, Self { device_ca, broker_ca: broker.ca })
    }

    /// The server's flags: sign device certificates with the device CA, and close revoked
    /// certificates' sessions on Mosquitto's TLS listener (trusting the broker's CA).
    pub fn server_args(&self, mosquitto: &Mosquitto) -> Vec<String> {
        let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
        vec![
            "--device-ca-cert".into(),
            path(&self.device_ca.cert),
            "--device-ca-key".into(),
            path(&self.device_ca.key),
            "--mosquitto-cert-url".into(),
            mosquitto.tls_url(),
            "--mqtt-ca-file".into(),
            path(&self.broker_ca),
        ]
    }

    /// One CA file for the devices (`--ca-file` reads every certificate in it): the server's
    /// CA for HTTPS and the broker's for mqtts://.
    pub fn device_bundle(&self, server_ca: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
        let bundle = dir.join("devices-trust.pem");
        let mut pem = std::fs::read(server_ca)?;
        pem.extend(std::fs::read(&self.broker_ca)?);
        std::fs::write(&bundle, pem)?;
        Ok(bundle)
    }
}
