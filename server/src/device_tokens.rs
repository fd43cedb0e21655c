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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fleet_protocol::DeviceId;

use crate::store::{Store, StoreResult, TokenOwner};

/// How long a verified device token is taken without asking the store again.
pub const TTL: Duration = Duration::from_secs(5);
/// Tokens kept at most; when full, expired ones are dropped, then all of them.
const CAPACITY: usize = 100_000;

/// Recently verified device tokens, by token hash.
#[derive(Debug, Default)]
pub struct DeviceTokens {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    devices: HashMap<String, (Instant, DeviceId)>,
    /// Bumped by every [`DeviceTokens::forget_all`]: a lookup that began before one is
    /// not kept, since it may have read the store before the change.
    forgets: u64,
}

impl DeviceTokens {
    /// Who holds the token whose hash is `hash`: a device remembered within [`TTL`], or
    /// whatever the store says (a device found there is remembered).
    pub async fn owner(&self, store: &dyn Store, hash: &str) -> StoreResult<Option<TokenOwner>> {
        if let Some(device) = self.fresh(hash) {
            return Ok(Some(TokenOwner::Device(device)));
        }
        let forgets = self.forgets();
        let owner = store.token_owner(hash).await?;
        if let Some(TokenOwner::Device(device)) = &owner {
            self.keep(hash, device, forgets);
        }
        Ok(owner)
    }

    /// Forgets every remembered token (a device's credentials changed).
    pub fn forget_all(&self) {
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.devices.clear();
        entries.forgets += 1;
    }

    fn fresh(&self, hash: &str) -> Option<DeviceId> {
        let entries = self.entries.lock().expect("not poisoned");
        let (seen, device) = entries.devices.get(hash)?;
        (seen.elapsed() < TTL).then(|| device.clone())
    }

    fn forgets(&self) -> u64 {
        self.entries.lock().expect("not poisoned").forgets
    }

    /// Remembers `hash` as `device`'s unless something was forgotten since `forgets`.
    fn keep(&self, hash: &str, device: &DeviceId, forgets: u64) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.forgets != forgets {
            return;
        }
        if entries.devices.len() >= CAPACITY {
            entries.devices.retain(|_, (seen, _)| seen.elapsed() < TTL);
            if entries.devices.len() >= CAPACITY {
                entries.devices.clear();
            }
        }
        entries.devices.insert(hash.to_owned(), (Instant::now(), device.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str) -> DeviceId {
        DeviceId::parse(id).unwrap()
    }

    #[test]
    fn kept_tokens_are_served_until_forgotten() {
        let tokens = DeviceTokens::default();
        assert_eq!(tokens.fresh("h1"), None);
        tokens.keep("h1", &dev("dev-1"), tokens.forgets());
        assert_eq!(tokens.fresh("h1"), Some(dev("dev-1")));
        assert_eq!(tokens.fresh("h2"), None);
        tokens.forget_all();
        assert_eq!(tokens.fresh("h1"), None);
    }

    #[test]
    fn a_lookup_that_began_before_a_forget_is_not_kept() {
        let tokens = DeviceTokens::default();
        let began = tokens.forgets();
        tokens.forget_all();
        tokens.keep("h1", &dev("dev-1"), began);
        assert_eq!(tokens.fresh("h1"), None);
    }

    #[test]
    fn expired_tokens_are_not_served() {
        let tokens = DeviceTokens::default();
        tokens.keep("h1", &dev("dev-1"), tokens.forgets());
        let mut entries = tokens.entries.lock().unwrap();
        let seen = Instant::now().checked_sub(TTL).expect("the clock is past TTL");
        entries.devices.get_mut("h1").unwrap().0 = seen;
        drop(entries);
        assert_eq!(tokens.fresh("h1"), None);
    }
}
