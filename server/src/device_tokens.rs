//! Device tokens this replica verified a moment ago, kept in memory for [`TTL`].
//!
//! A device that takes an update calls three times within a second or so, each time with
//! its token: it confirms its command, downloads the blob, and logs in to the broker again
//! after its reboot. Each used to look its token up in the store, the largest class of
//! statements in a rollout. A token found to be a device's is now remembered for [`TTL`].
//!
//! Revocation stays immediate where it is made: rotating a device's token, removing a
//! device or registering devices through this replica forgets every remembered token
//! before the request answers, and a lookup that began before the change is not kept.
//! Another replica may still take a revoked token for up to [`TTL`] (docs/decisions.md).
//! Operator tokens are always read from the store.

use std::time::Duration;

use fleet_protocol::DeviceId;

use crate::remembered::Remembered;
use crate::store::{Store, StoreResult, TokenOwner};

/// How long a verified device token is taken without asking the store again.
pub const TTL: Duration = Duration::from_secs(5);
/// Tokens kept at most.
const CAPACITY: usize = 100_000;

/// Recently verified device tokens, by token hash.
#[derive(Debug)]
pub struct DeviceTokens {
    devices: Remembered<DeviceId>,
}

impl Default for DeviceTokens {
    fn default() -> Self {
        Self { devices: Remembered::new(TTL, CAPACITY) }
    }
}

impl DeviceTokens {
    /// Who holds the token whose hash is `hash`: a device remembered within [`TTL`], or
    /// whatever the store says (a device found there is remembered).
    pub async fn owner(&self, store: &dyn Store, hash: &str) -> StoreResult<Option<TokenOwner>> {
        if let Some(device) = self.devices.fresh(hash) {
            return Ok(Some(TokenOwner::Device(device)));
        }
        let generation = self.devices.generation();
        let owner = store.token_owner(hash).await?;
        if let Some(TokenOwner::Device(device)) = &owner {
            self.devices.keep(hash, device.clone(), generation);
        }
        Ok(owner)
    }

    /// Forgets every remembered token (a device's credentials changed).
    pub fn forget_all(&self) {
        self.devices.forget_all();
    }
}
