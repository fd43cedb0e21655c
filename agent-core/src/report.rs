//! The status report a device publishes on its `status` topic (CONTRACT §4), written
//! into a caller's buffer.

use serde::{Serialize, Serializer};

use crate::{DeviceState, Reason};

/// What a device has installed of one product, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InstalledReport<'a> {
    pub name: &'a str,
    pub version: &'a str,
    #[serde(serialize_with = "lowercase_hex")]
    pub sha256: [u8; 32],
}

/// One status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report<'a> {
    pub rollout_id: Option<&'a str>,
    pub state: DeviceState,
    pub progress: Option<u8>,
    pub reason: Option<Reason>,
    pub seq: u64,
    pub connect: bool,
    pub hardware: Option<&'a str>,
    pub firmware: Option<InstalledReport<'a>>,
    pub config: Option<InstalledReport<'a>>,
}

/// The buffer is too small for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the report does not fit in the buffer")]
pub struct TooLarge;

impl Report<'_> {
    /// Writes the report's JSON into `out`; its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, TooLarge> {
        serde_json_core::to_slice(self, out).map_err(|_| TooLarge)
    }
}

fn lowercase_hex<S: Serializer>(digest: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    let mut text = [0u8; 64];
    hex::encode_to_slice(digest, &mut text).expect("64 characters for 32 bytes");
    s.serialize_str(core::str::from_utf8(&text).expect("hex is ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_the_contracts_json() {
        let report = Report {
            rollout_id: Some("r1"),
            state: DeviceState::RolledBack,
            progress: None,
            reason: Some(Reason::HealthCheckFailed),
            seq: 17,
            connect: false,
            hardware: Some("esp32c3"),
            firmware: Some(InstalledReport { name: "sensor-fw", version: "1.4.1", sha256: [0xab; 32] }),
            config: None,
        };
        let mut out = [0u8; 512];
        let len = report.encode(&mut out).unwrap();
        let text = core::str::from_utf8(&out[..len]).unwrap();
        let expected = concat!(
            r#"{"rollout_id":"r1","state":"rolled_back","progress":null,"reason":"health_check_failed","#,
            r#""seq":17,"connect":false,"hardware":"esp32c3","firmware":{"name":"sensor-fw","version":"1.4.1","#,
            r#""sha256":"abababababababababababababababababababababababababababababababab"},"config":null}"#
        );
        assert_eq!(text, expected);
        assert_eq!(report.encode(&mut out[..40]), Err(TooLarge));
    }
}
