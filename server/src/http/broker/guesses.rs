//! Failed broker logins per username, so the EMQX authentication hook is no online oracle
//! for passwords: a token bucket per username that each failed attempt drains and time
//! refills. Once a username's bucket is empty, its attempts are refused unchecked until a
//! token is back, right or wrong password alike. Successful logins cost nothing.
//!
//! The map is bounded: when full, usernames whose buckets have refilled are forgotten, and
//! if that is not enough, the one idle longest. Keys are SHA-256 hex of the username, so a
//! long username costs no more memory than a short one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::token::hash_token;

/// Failed attempts a username may make at once.
pub const BURST: f64 = 5.0;
/// One more failed attempt per this long.
pub const REFILL: Duration = Duration::from_secs(2);
/// Usernames remembered at most.
pub const MAX_USERNAMES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant) -> f64 {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        (self.tokens + earned).min(BURST)
    }
}

/// Failed-login buckets per username.
#[derive(Debug, Default)]
pub struct LoginGuesses {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl LoginGuesses {
    /// Whether `username` may try now (its bucket is not empty).
    pub fn may_try(&self, username: &str) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.get(&hash_token(username)).is_none_or(|b| b.refilled(Instant::now()) >= 1.0)
    }

    /// Counts a failed attempt of `username` against its bucket.
    pub fn failed(&self, username: &str) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let key = hash_token(username);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_USERNAMES {
            make_room(&mut buckets, now);
        }
        let tokens = buckets.get(&key).map_or(BURST, |b| b.refilled(now));
        buckets.insert(key, Bucket { tokens: (tokens - 1.0).max(0.0), at: now });
    }
}

fn make_room(buckets: &mut HashMap<String, Bucket>, now: Instant) {
    buckets.retain(|_, b| b.refilled(now) < BURST);
    if buckets.len() >= MAX_USERNAMES {
        let oldest = buckets.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            buckets.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_refused_after_its_burst_of_failures_and_others_are_not() {
        let guesses = LoginGuesses::default();
        for _ in 0..BURST as usize {
            assert!(guesses.may_try("fleet-server"));
            guesses.failed("fleet-server");
        }
        assert!(!guesses.may_try("fleet-server"));
        assert!(guesses.may_try("dev-1"));
    }

    #[test]
    fn the_map_stays_bounded() {
        let guesses = LoginGuesses::default();
        for i in 0..MAX_USERNAMES + 10 {
            guesses.failed(&format!("user-{i}"));
        }
        assert!(guesses.buckets.lock().unwrap().len() <= MAX_USERNAMES);
    }
}
