//! Virtual keys: their format, generation and hashing.
//!
//! A key reads `moat_<id>_<secret>`: `id` (12 lowercase alphanumerics) is public and used to find the
//! record; `secret` (43 base62 characters, ~256 bits) never leaves the client. Only the SHA-256 of the
//! whole key is stored; a salt or server secret adds nothing against a 256-bit random secret, and plain
//! SHA-256 lets another replica verify keys without sharing one.
//!
//! A rotation keeps the id (so the key stays the same principal for scope, limits, spend and
//! detection) and gives it a new secret; the old secret's hash is kept as [`PreviousSecret`] and
//! accepted until its grace window ends.

use ipnet::IpNet;
use moat_core::Secret;
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every virtual key starts with this prefix.
pub const KEY_PREFIX: &str = "moat_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;

/// The SHA-256 digest of a whole key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Compares in constant time, so response timing tells nothing about how much of a guess matched.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lower-case hex, as stored.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the stored hex form.
    pub fn from_hex(hex: &str) -> Option<KeyHash> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(KeyHash(out))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

/// A stored virtual key: its hash and its scope. Never holds the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Public id, the part between the prefix and the secret.
    pub id: String,
    /// SHA-256 of the whole key.
    pub hash: KeyHash,
    /// The account the key belongs to.
    pub account: String,
    /// The workflow the key belongs to, if any.
    pub workflow: Option<String>,
    /// Model names the key may call; empty means every configured model.
    pub models: Vec<String>,
    /// Source networks the key may be used from; empty means anywhere.
    pub cidrs: Vec<IpNet>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: Option<i64>,
    /// Revocation time, Unix seconds.
    pub revoked_at: Option<i64>,
    /// The secret replaced by the last rotation, accepted until its grace window ends. A second
    /// rotation within the window replaces it: only the secret just before the current one
    /// still works.
    pub previous: Option<PreviousSecret>,
}

/// A rotated-out secret of a key, still accepted for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSecret {
    /// SHA-256 of the whole old key.
    pub hash: KeyHash,
    /// The old secret works while `now < valid_until` (Unix seconds), and never after.
    pub valid_until: i64,
}

/// Which of a key's secrets a presented key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMatch {
    /// The current secret.
    Current,
    /// The previous secret, inside its grace window.
    Previous,
}

impl KeyRecord {
    /// Whether `presented` (the hash of a presented key) is this key's current secret, or its
    /// previous one while `now_secs < valid_until`. Both comparisons run in constant time.
    pub fn accepts(&self, presented: &KeyHash, now_secs: i64) -> Option<SecretMatch> {
        if self.hash.matches(presented) {
            return Some(SecretMatch::Current);
        }
        let previous = self.previous.as_ref()?;
        (now_secs < previous.valid_until && previous.hash.matches(presented))
            .then_some(SecretMatch::Previous)
    }

    /// When the previous secret stops working, if it still works at `now_secs`.
    pub fn grace_until(&self, now_secs: i64) -> Option<i64> {
        self.previous
            .map(|p| p.valid_until)
            .filter(|&until| now_secs < until)
    }
}

/// A freshly generated key: the secret to show once and its public id and hash to store.
#[derive(Debug)]
pub struct GeneratedKey {
    /// Public id.
    pub id: String,
    /// The full key, shown to its owner once.
    pub key: Secret<String>,
    /// What the store keeps.
    pub hash: KeyHash,
}

impl GeneratedKey {
    /// The record to store for this key: owned by `account`, created at `created_at` (Unix
    /// seconds), with no scope limits yet (every model, any source, no expiry).
    pub fn record(&self, account: &str, created_at: i64) -> KeyRecord {
        KeyRecord {
            id: self.id.clone(),
            hash: self.hash,
            account: account.to_string(),
            workflow: None,
            models: Vec::new(),
            cidrs: Vec::new(),
            created_at,
            expires_at: None,
            revoked_at: None,
            previous: None,
        }
    }
}

/// Generates a new random key from the operating system's CSPRNG.
pub fn generate_key() -> GeneratedKey {
    let mut rng = rand::rngs::OsRng;
    let id: String = (0..ID_LEN)
        .map(|_| {
            let n = rng.gen_range(0..36u8);
            char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
        })
        .collect();
    with_new_secret(id)
}

/// A new random secret for the existing key `id` (a rotation); `None` if `id` is not the id of
/// a moat key.
pub fn generate_secret_for(id: &str) -> Option<GeneratedKey> {
    let valid = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    valid.then(|| with_new_secret(id.to_string()))
}

fn with_new_secret(id: String) -> GeneratedKey {
    let secret = Alphanumeric.sample_string(&mut rand::rngs::OsRng, SECRET_LEN);
    let key = format!("{KEY_PREFIX}{id}_{secret}");
    let hash = hash_key(&key);
    GeneratedKey {
        id,
        key: Secret::new(key),
        hash,
    }
}

/// The SHA-256 of a presented key.
pub fn hash_key(key: &str) -> KeyHash {
    KeyHash(Sha256::digest(key.as_bytes()).into())
}

/// The public id of a presented key, if it has the shape of a moat key.
pub fn parse_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_to_their_id_and_hash() {
        let g = generate_key();
        assert_eq!(parse_key(g.key.expose()), Some(g.id.as_str()));
        assert!(hash_key(g.key.expose()).matches(&g.hash));
        assert!(!hash_key("moat_x").matches(&g.hash));
        assert_ne!(generate_key().id, g.id);
    }

    #[test]
    fn a_new_secret_keeps_the_id_and_changes_the_hash() {
        let g = generate_key();
        let r = generate_secret_for(&g.id).unwrap();
        assert_eq!(r.id, g.id);
        assert_eq!(parse_key(r.key.expose()), Some(g.id.as_str()));
        assert_ne!(r.key.expose(), g.key.expose());
        assert!(!r.hash.matches(&g.hash));
        assert!(generate_secret_for("not-an-id").is_none());
        assert!(generate_secret_for("ABCDEFGHIJKL").is_none());
    }

    #[test]
    fn the_previous_secret_works_only_before_its_window_ends() {
        let old = generate_key();
        let new = generate_secret_for(&old.id).unwrap();
        let mut k = new.record("acme", 0);
        assert_eq!(k.accepts(&old.hash, 5), None, "no previous secret yet");
        k.previous = Some(PreviousSecret {
            hash: old.hash,
            valid_until: 100,
        });
        assert_eq!(k.accepts(&new.hash, 5), Some(SecretMatch::Current));
        assert_eq!(k.accepts(&new.hash, 1_000), Some(SecretMatch::Current));
        assert_eq!(k.accepts(&old.hash, 99), Some(SecretMatch::Previous));
        assert_eq!(
            k.accepts(&old.hash, 100),
            None,
            "the window's end is excluded"
        );
        assert_eq!(k.accepts(&hash_key("moat_x"), 5), None);
        assert_eq!(k.grace_until(99), Some(100));
        assert_eq!(k.grace_until(100), None);
    }

    #[test]
    fn malformed_keys_have_no_id() {
        for bad in [
            "",
            "moat_",
            "sk-abc",
            "moat_abc_def",
            "moat_ABCDEFGHIJKL_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn hash_hex_round_trips() {
        let h = hash_key("moat_abc");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
        assert_eq!(KeyHash::from_hex(&"é".repeat(32)), None);
    }
}
