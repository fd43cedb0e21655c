//! A command from the server (CONTRACT §4), read in place from the MQTT payload.

use serde::Deserialize;

use crate::envelope::Envelope;
use crate::kind::ArtifactKind;

/// Server → device, on `…/commands`.
// One lives on the stack per command; without an allocator there is nothing to box into.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Update { device_id: &'a str, rollout_id: &'a str, kind: ArtifactKind, url: &'a str, envelope: Envelope<'a> },
    Cancel { device_id: &'a str, rollout_id: &'a str },
}

/// The command's fields as written: `type` says which others are there.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    #[serde(rename = "type")]
    type_: &'a str,
    device_id: &'a str,
    rollout_id: &'a str,
    #[serde(default)]
    kind: Option<ArtifactKind>,
    #[serde(default)]
    url: Option<&'a str>,
    #[serde(default)]
    envelope: Option<Envelope<'a>>,
}

/// The payload is not a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a command: invalid JSON, an unknown type, or a field missing or extra")]
pub struct CommandError;

impl<'a> Command<'a> {
    pub fn from_json(json: &'a [u8]) -> Result<Self, CommandError> {
        let (f, _): (Fields<'a>, _) = serde_json_core::from_slice(json).map_err(|_| CommandError)?;
        match (f.type_, f.kind, f.url, f.envelope) {
            ("update", Some(kind), Some(url), Some(envelope)) => {
                Ok(Self::Update { device_id: f.device_id, rollout_id: f.rollout_id, kind, url, envelope })
            }
            ("cancel", None, None, None) => Ok(Self::Cancel { device_id: f.device_id, rollout_id: f.rollout_id }),
            _ => Err(CommandError),
        }
    }

    pub fn device_id(&self) -> &'a str {
        match self {
            Self::Update { device_id, .. } | Self::Cancel { device_id, .. } => device_id,
        }
    }

    pub fn rollout_id(&self) -> &'a str {
        match self {
            Self::Update { rollout_id, .. } | Self::Cancel { rollout_id, .. } => rollout_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_commands_are_read_and_anything_else_refused() {
        let update = br#"{"type":"update","device_id":"mcu-1","rollout_id":"r1","kind":"firmware","url":"http://s/blob","envelope":{"payloadType":"t","payload":"e30","signatures":[{"keyid":"k","sig":"s"}]}}"#;
        let Command::Update { kind, url, envelope, .. } = Command::from_json(update).unwrap() else { panic!() };
        assert_eq!((kind, url, envelope.payload), (ArtifactKind::Firmware, "http://s/blob", "e30"));
        let cancel = br#"{"type":"cancel","device_id":"mcu-1","rollout_id":"r1"}"#;
        assert_eq!(Command::from_json(cancel), Ok(Command::Cancel { device_id: "mcu-1", rollout_id: "r1" }));
        for bad in [
            &br#"{"type":"reboot","device_id":"mcu-1","rollout_id":"r1"}"#[..],
            br#"{"type":"update","device_id":"mcu-1","rollout_id":"r1"}"#,
            br#"{"type":"cancel","device_id":"mcu-1","rollout_id":"r1","extra":1}"#,
            b"not json",
        ] {
            assert_eq!(Command::from_json(bad), Err(CommandError));
        }
    }
}
