//! Values read from the store a moment ago, kept in memory for a while: the one rule that
//! the artifact records ([`crate::artifact_cache`]) and the device tokens
//! ([`crate::device_tokens`]) are kept by.
//!
//! A value is served while it is younger than the time to live. Forgetting (one key, or
//! all of them) is immediate, and a read from the store that began before a forget is not
//! kept, since it may have raced the change: readers take a [`Remembered::generation`]
//! before they read and hand it to [`Remembered::keep`]. When full, expired values are
//! dropped, then all of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each for `ttl`.
#[derive(Debug)]
pub struct Remembered<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries<V>>,
}

#[derive(Debug)]
struct Entries<V> {
    values: HashMap<String, (Instant, V)>,
    /// Bumped by every forget.
    forgets: u64,
}

impl<V: Clone> Remembered<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(Entries { values: HashMap::new(), forgets: 0 }) }
    }

    /// The value of `key`, if kept within the time to live.
    pub fn fresh(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().expect("not poisoned");
        let (kept, value) = entries.values.get(key)?;
        (kept.elapsed() < self.ttl).then(|| value.clone())
    }

    /// To be taken before reading the store, and handed to [`Remembered::keep`].
    pub fn generation(&self) -> u64 {
        self.entries.lock().expect("not poisoned").forgets
    }

    /// Keeps `value` for `key` unless something was forgotten since `generation`.
    pub fn keep(&self, key: &str, value: V, generation: u64) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.forgets != generation {
            return;
        }
        if entries.values.len() >= self.capacity {
            let ttl = self.ttl;
            entries.values.retain(|_, (kept, _)| kept.elapsed() < ttl);
            if entries.values.len() >= self.capacity {
                entries.values.clear();
            }
        }
        entries.values.insert(key.to_owned(), (Instant::now(), value));
    }

    /// Forgets `key`.
    pub fn forget(&self, key: &str) {
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.values.remove(key);
        entries.forgets += 1;
    }

    /// Forgets every key.
    pub fn forget_all(&self) {
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.values.clear();
        entries.forgets += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_values_are_served_until_forgotten() {
        let kept = Remembered::new(Duration::from_secs(60), 8);
        assert_eq!(kept.fresh("a"), None);
        kept.keep("a", 1, kept.generation());
        kept.keep("b", 2, kept.generation());
        assert_eq!((kept.fresh("a"), kept.fresh("b"), kept.fresh("c")), (Some(1), Some(2), None));
        kept.forget("a");
        assert_eq!((kept.fresh("a"), kept.fresh("b")), (None, Some(2)));
        kept.forget_all();
        assert_eq!(kept.fresh("b"), None);
    }

    #[test]
    fn a_read_that_began_before_a_forget_is_not_kept() {
        let kept = Remembered::new(Duration::from_secs(60), 8);
        let began = kept.generation();
        kept.forget("other");
        kept.keep("a", 1, began);
        assert_eq!(kept.fresh("a"), None);
    }

    #[test]
    fn expired_values_are_not_served() {
        let kept = Remembered::new(Duration::ZERO, 8);
        kept.keep("a", 1, kept.generation());
        assert_eq!(kept.fresh("a"), None);
    }

    #[test]
    fn a_full_store_makes_room() {
        let kept = Remembered::new(Duration::from_secs(60), 2);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            kept.keep(key, i, kept.generation());
        }
        // All were fresh, so making room dropped them all before "c" went in.
        assert_eq!((kept.fresh("a"), kept.fresh("b"), kept.fresh("c")), (None, None, Some(2)));
    }
}
