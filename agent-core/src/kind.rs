//! What an artifact is.

use serde::{Deserialize, Serialize};
// What the OpenAPI derive's code names.
#[cfg(feature = "openapi")]
use std::{string::String, vec::Vec};

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Firmware,
    Config,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firmware => "firmware",
            Self::Config => "config",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "firmware" => Some(Self::Firmware),
            "config" => Some(Self::Config),
            _ => None,
        }
    }
}

impl core::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
