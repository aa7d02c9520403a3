//! A time-bounded cache of virtual keys in front of a [`KeyStore`], and the check of a presented
//! key against it: its current secret, or the previous one inside its rotation's grace window.

use crate::{KeyStore, StoreError};
use moat_core::Clock;
use moat_policy::{hash_key, parse_key, KeyRecord, SecretMatch};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Above this many cached ids the cache starts over, so random ids cannot grow it without bound.
const MAX_CACHED: usize = 100_000;

/// Looks keys up by public id through a time-bounded cache. Changes made through this gateway
/// call [`KeyCache::forget`] and hold at once; changes made by another process (the CLI) take
/// effect within the TTL, except that a presented key matching nothing cached is looked up again,
/// so the new secret of a rotation works at once everywhere.
pub struct KeyCache {
    store: Arc<dyn KeyStore>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: RwLock<HashMap<String, Arc<CacheEntry>>>,
    fingerprints: RandomState,
}

/// What a lookup of one key id found, and when.
struct CacheEntry {
    at: Instant,
    /// `None`: no such key; cached too, so random ids do not reach the store each time.
    record: Option<Arc<KeyRecord>>,
    /// A keyed fingerprint of the last presented key that matched the record's *current* hash (0:
    /// none yet). A repeat of that exact key skips the SHA-256, the costliest step of a cache hit;
    /// any other key still goes through it, and forging a match means finding a 64-bit preimage
    /// of a fingerprint keyed with a secret random to this process. A previous secret is never
    /// remembered here, so it is checked against its window every time.
    verified: AtomicU64,
}

impl KeyCache {
    /// A cache in front of `store` keeping entries for `ttl`; rotation windows are judged by
    /// `clock`.
    pub fn new(store: Arc<dyn KeyStore>, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            ttl,
            clock,
            entries: RwLock::new(HashMap::new()),
            fingerprints: RandomState::new(),
        }
    }

    /// The key record the presented key is a valid secret of, `None` for a malformed key, an
    /// unknown id, a wrong secret or a previous secret past its window. Revocation and expiry
    /// are not judged here (`moat_policy::scope::authorize` does, after).
    pub async fn authenticate(
        &self,
        presented: &str,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let Some(id) = parse_key(presented) else {
            return Ok(None);
        };
        let (entry, fresh) = match self.cached(id) {
            Some(hit) => (hit, false),
            None => (self.load(id).await?, true),
        };
        if let Some(record) = self.check(&entry, presented) {
            return Ok(Some(record));
        }
        // A cached key the presented one does not match may have been rotated by another
        // process; one more look at the store lets its new secret in at once. Unknown ids are
        // not looked up again, so random ids still stay off the store.
        if fresh || entry.record.is_none() {
            return Ok(None);
        }
        let entry = self.load(id).await?;
        Ok(self.check(&entry, presented))
    }

    /// Drops what is cached for `id`, so a change to it (rotation, revocation) holds at once.
    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(id);
        }
    }

    /// The store behind the cache.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    fn check(&self, entry: &CacheEntry, presented: &str) -> Option<Arc<KeyRecord>> {
        let record = entry.record.clone()?;
        let fingerprint = self.fingerprints.hash_one(presented) | 1;
        if entry.verified.load(Ordering::Relaxed) == fingerprint {
            return Some(record);
        }
        match record.accepts(&hash_key(presented), self.clock.now_secs())? {
            SecretMatch::Current => entry.verified.store(fingerprint, Ordering::Relaxed),
            SecretMatch::Previous => {}
        }
        Some(record)
    }

    async fn load(&self, id: &str) -> Result<Arc<CacheEntry>, StoreError> {
        let record = self.store.get_key(id).await?.map(Arc::new);
        let entry = Arc::new(CacheEntry {
            at: Instant::now(),
            record,
            verified: AtomicU64::new(0),
        });
        self.remember(id, Arc::clone(&entry));
        Ok(entry)
    }

    fn cached(&self, id: &str) -> Option<Arc<CacheEntry>> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(id)?;
        (entry.at.elapsed() < self.ttl).then(|| Arc::clone(entry))
    }

    fn remember(&self, id: &str, entry: Arc<CacheEntry>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
            entries.insert(id.to_string(), entry);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use moat_core::ManualClock;
    use moat_policy::{generate_key, generate_secret_for};

    fn cache(store: &Arc<MemoryStore>, ttl: u64, clock: &Arc<ManualClock>) -> KeyCache {
        KeyCache::new(
            store.clone(),
            Duration::from_secs(ttl),
            clock.clone() as Arc<dyn Clock>,
        )
    }

    /// Whether the cache lets `key` in.
    async fn lets_in(cache: &KeyCache, key: &str) -> bool {
        cache.authenticate(key).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn only_the_exact_key_authenticates_and_revocation_shows_after_the_ttl() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(0));
        let g = generate_key();
        store.insert_key(&g.record("a", 0)).await.unwrap();
        let cache = cache(&store, 0, &clock);
        let found = cache.authenticate(g.key.expose()).await.unwrap();
        assert_eq!(found.unwrap().id, g.id);
        let mut wrong = g.key.expose().clone();
        wrong.pop();
        wrong.push(if g.key.expose().ends_with('A') {
            'B'
        } else {
            'A'
        });
        assert!(!lets_in(&cache, &wrong).await);
        assert!(!lets_in(&cache, "not-a-moat-key").await);
        store.revoke_key(&g.id, 1).await.unwrap();
        let found = cache.authenticate(g.key.expose()).await.unwrap();
        assert_eq!(found.unwrap().revoked_at, Some(1));
    }

    #[tokio::test]
    async fn a_previous_secret_works_until_its_window_ends_even_on_the_fast_path() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(1_000_000));
        let old = generate_key();
        store.insert_key(&old.record("a", 0)).await.unwrap();
        let cache = cache(&store, 3600, &clock);
        // Warm the fast path with the old secret while it is current.
        for _ in 0..2 {
            assert!(lets_in(&cache, old.key.expose()).await);
        }
        let new = generate_secret_for(&old.id).unwrap();
        assert!(store.rotate_key(&old.id, &new.hash, 1_060).await.unwrap());
        cache.forget(&old.id);
        for _ in 0..2 {
            assert!(lets_in(&cache, old.key.expose()).await);
            assert!(lets_in(&cache, new.key.expose()).await);
        }
        clock.advance_ms(59_999);
        assert!(lets_in(&cache, old.key.expose()).await);
        clock.advance_ms(1);
        assert!(!lets_in(&cache, old.key.expose()).await);
        assert!(lets_in(&cache, new.key.expose()).await);
    }

    #[tokio::test]
    async fn a_rotation_by_another_process_lets_the_new_secret_in_at_once() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(0));
        let old = generate_key();
        store.insert_key(&old.record("a", 0)).await.unwrap();
        let cache = cache(&store, 3600, &clock);
        assert!(lets_in(&cache, old.key.expose()).await);
        let new = generate_secret_for(&old.id).unwrap();
        store.rotate_key(&old.id, &new.hash, 0).await.unwrap();
        // No forget: the cache holds the record from before the rotation.
        assert!(lets_in(&cache, new.key.expose()).await);
        // The lookup refreshed the entry, so the old secret (grace 0) is refused now.
        assert!(!lets_in(&cache, old.key.expose()).await);
    }

    #[tokio::test]
    async fn forget_makes_a_revocation_hold_at_once() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(0));
        let g = generate_key();
        store.insert_key(&g.record("a", 0)).await.unwrap();
        let cache = cache(&store, 3600, &clock);
        assert!(lets_in(&cache, g.key.expose()).await);
        store.revoke_key(&g.id, 5).await.unwrap();
        let stale = cache.authenticate(g.key.expose()).await.unwrap().unwrap();
        assert_eq!(stale.revoked_at, None, "cached within the TTL");
        cache.forget(&g.id);
        let now = cache.authenticate(g.key.expose()).await.unwrap().unwrap();
        assert_eq!(now.revoked_at, Some(5));
    }
}
