//! Randomness from the operating system, and the ids made from it. Nothing here imports
//! the rest of the crate.

/// The operating system gave no random bytes: nothing secret can be made safely, so the
/// caller fails rather than falling back to something guessable.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system: {0}")]
pub struct RandomnessError(getrandom::Error);

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomnessError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(RandomnessError)?;
    Ok(out)
}

/// A new resource id: 48 bits of milliseconds then 80 random bits, as 32 hex characters,
/// so ids sort by creation time and keyset pagination lists oldest first.
pub fn new_id() -> Result<String, RandomnessError> {
    let random = bytes::<10>()?;
    Ok(format!("{:012x}{}", crate::clock::now_ms() & 0xffff_ffff_ffff, hex::encode(random)))
}

/// This process's name among replicas: its MQTT client id and its name in rollout leases.
pub fn instance_name() -> Result<String, RandomnessError> {
    Ok(format!("fleet-server-{}", hex::encode(bytes::<6>()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_characters_and_differ() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
