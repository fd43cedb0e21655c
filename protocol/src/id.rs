//! Validated identifiers. Raw strings never cross a layer: parse at the edge.
//!
//! A device id (CONTRACT §4) is 1–64 characters of `[A-Za-z0-9._-]`, starting with a letter
//! or digit, so it is always safe as one MQTT topic level and one URL path segment. Product
//! names and hardware models follow the same rule: they appear in the same places.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The rule is the device core's, so servers and devices accept the same identifiers.
pub use fleet_agent_core::id::{IdError, MAX_ID_LEN, check};

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// A device's id: its MQTT username, client id and topic level.
    DeviceId
);
identifier!(
    /// The name of a firmware or configuration product (`manifest.name`).
    ProductName
);
identifier!(
    /// A hardware model such as `rpi4`.
    HardwareModel
);
identifier!(
    /// A rollout's id, chosen by the server.
    RolloutId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_contract_examples() {
        for ok in ["dev-1", "a", "A.b_c-d", "0gateway", &"x".repeat(64)] {
            assert!(DeviceId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_each_rule() {
        assert_eq!(DeviceId::parse(""), Err(IdError::Empty));
        assert_eq!(DeviceId::parse("x".repeat(65)), Err(IdError::TooLong(65)));
        assert_eq!(DeviceId::parse("../x"), Err(IdError::BadChar('/')));
        assert_eq!(DeviceId::parse("a/b"), Err(IdError::BadChar('/')));
        assert_eq!(DeviceId::parse("+"), Err(IdError::BadChar('+')));
        assert_eq!(DeviceId::parse("#"), Err(IdError::BadChar('#')));
        assert_eq!(DeviceId::parse(".hidden"), Err(IdError::BadStart));
        assert_eq!(DeviceId::parse("-x"), Err(IdError::BadStart));
        assert_eq!(DeviceId::parse("dév"), Err(IdError::BadChar('é')));
    }

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<DeviceId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<DeviceId>("\"a/b\"").is_err());
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(s in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}") {
            let id = DeviceId::parse(s.clone()).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
        }

        #[test]
        fn parse_never_panics_and_accepts_only_safe_strings(s in "\\PC{0,80}") {
            if let Ok(id) = DeviceId::parse(s) {
                let id = id.as_str();
                prop_assert!(!id.is_empty() && id.len() <= 64);
                prop_assert!(!id.contains(['/', '+', '#', '\0']));
                prop_assert!(id.as_bytes()[0].is_ascii_alphanumeric());
            }
        }
    }
}
