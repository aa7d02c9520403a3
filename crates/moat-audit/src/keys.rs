//! The store's audit key: one Ed25519 key pair that signs retention checkpoints and witnessed
//! heads (anyone holding the public key can check them, and only the private key can make them),
//! and, derived from its secret with domain separation, the keys of body digests and of
//! pseudonyms. Pure: reading and writing the key file is the caller's job.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::body::Body;

type HmacSha256 = Hmac<Sha256>;

/// Domain of the body-digest key: `HMAC-SHA256(seed, BODY_DOMAIN)`.
const BODY_DOMAIN: &[u8] = b"moat-audit-body-digest/v1";
/// Domain of the pseudonym key: `HMAC-SHA256(seed, PSEUDONYM_DOMAIN)`.
const PSEUDONYM_DOMAIN: &[u8] = b"moat-audit-pseudonym/v1";

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The private key file is not a PKCS#8 Ed25519 key in PEM.
    #[error("not an Ed25519 private key in PKCS#8 PEM")]
    Private,
    /// The public key is neither 64 hex digits nor an Ed25519 public key in PEM.
    #[error("not an Ed25519 public key (64 hex digits, or PEM `PUBLIC KEY`)")]
    Public,
}

/// The audit key pair and the secrets derived from it. Its `Debug` shows only the public key.
#[derive(Clone)]
pub struct AuditKeys {
    signing: SigningKey,
    digest: [u8; 32],
    pseudonym: [u8; 32],
}

impl AuditKeys {
    /// The keys of a 32-byte Ed25519 seed (draw it from the OS's random source).
    pub fn from_seed(seed: [u8; 32]) -> AuditKeys {
        AuditKeys {
            digest: derive(&seed, BODY_DOMAIN),
            pseudonym: derive(&seed, PSEUDONYM_DOMAIN),
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The keys of a key file: an Ed25519 private key as PKCS#8 PEM (`-----BEGIN PRIVATE
    /// KEY-----`, what `openssl genpkey -algorithm ed25519` writes).
    pub fn from_pem(text: &str) -> Result<AuditKeys, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(text).map_err(|_| KeyError::Private)?;
        Ok(AuditKeys::from_seed(signing.to_bytes()))
    }

    /// The key file's text (PKCS#8 PEM). Secret: write it with mode 0600, never log it.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.signing
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|pem| pem.as_str().to_string())
            .map_err(|_| KeyError::Private)
    }

    /// The public key, for verifiers.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key as 64 lower-case hex digits (`moat audit pubkey`).
    pub fn public_hex(&self) -> String {
        crate::hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo), which
    /// `openssl pkeyutl -verify -pubin` reads.
    pub fn public_pem(&self) -> Result<String, KeyError> {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        self.verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|_| KeyError::Public)
    }

    /// Ed25519 signature of `message`, lower-case hex.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        crate::hex::encode(&self.signing.sign(message).to_bytes())
    }

    /// A body kept as a keyed digest: `HMAC-SHA256(digest key, SHA-256(body))`. Without the
    /// store's key nobody can confirm a guessed body against it.
    pub fn body_digest(&self, bytes: &[u8]) -> Body {
        self.keyed_sha256(&Sha256::digest(bytes))
    }

    /// [`AuditKeys::body_digest`] of a body whose SHA-256 (hex) was computed as it streamed;
    /// `None` if `sha256_hex` is not 32 bytes of hex.
    pub fn body_digest_of_sha256(&self, sha256_hex: &str) -> Option<Body> {
        let sha = crate::hex::decode(sha256_hex).filter(|b| b.len() == 32)?;
        Some(self.keyed_sha256(&sha))
    }

    /// A stable pseudonym of `value` in `field` (`end_user`, `source_ip`): `anon_` and 16 hex
    /// digits of `HMAC-SHA256(pseudonym key, field || 0 || value)`. Equal values give equal
    /// pseudonyms, so analysts can correlate; without the key they cannot be reversed or
    /// confirmed by guessing.
    pub fn pseudonym(&self, field: &str, value: &str) -> String {
        let mut mac = hmac(&self.pseudonym);
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("anon_{}", crate::hex::encode(&tag[..8]))
    }

    fn keyed_sha256(&self, sha256: &[u8]) -> Body {
        let mut mac = hmac(&self.digest);
        mac.update(sha256);
        Body::Keyed(crate::hex::encode(&mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

/// A public key as `moat audit pubkey` prints it (64 hex digits) or as PEM (`-----BEGIN PUBLIC
/// KEY-----`, what `openssl pkey -pubout` writes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|_| KeyError::Public);
    }
    let bytes: [u8; 32] = crate::hex::decode(text)
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyError::Public)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Public)
}

/// Whether `signature_hex` is `key`'s Ed25519 signature of `message` (strict verification: no
/// malleable or small-order forms).
pub(crate) fn verify_signature(key: &VerifyingKey, message: &[u8], signature_hex: &str) -> bool {
    let Some(bytes) = crate::hex::decode(signature_hex) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify_strict(message, &signature).is_ok()
}

fn derive(seed: &[u8; 32], domain: &[u8]) -> [u8; 32] {
    let mut mac = hmac(seed);
    mac.update(domain);
    mac.finalize().into_bytes().into()
}

fn hmac(key: &[u8]) -> HmacSha256 {
    #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn keys(n: u8) -> AuditKeys {
        AuditKeys::from_seed([n; 32])
    }

    #[test]
    fn pem_round_trips_and_debug_hides_the_secret() {
        let k = keys(7);
        let pem = k.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = AuditKeys::from_pem(&pem).unwrap();
        assert_eq!(back.public_hex(), k.public_hex());
        assert_eq!(back.body_digest(b"x"), k.body_digest(b"x"));
        assert!(AuditKeys::from_pem("not a key").is_err());
        let debug = format!("{k:?}");
        assert!(debug.contains(&k.public_hex()));
        assert!(!debug.contains(&crate::hex::encode(&[7; 32])));
    }

    #[test]
    fn public_keys_parse_from_hex_and_pem() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let k = keys(1);
        assert_eq!(
            parse_public_key(&k.public_hex()).unwrap(),
            k.verifying_key()
        );
        let pem = k
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap();
        assert_eq!(parse_public_key(&pem).unwrap(), k.verifying_key());
        assert!(parse_public_key("abcd").is_err());
        assert!(parse_public_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn digests_are_keyed_and_pseudonyms_stable() {
        let (a, b) = (keys(1), keys(2));
        assert_eq!(a.body_digest(b"prompt"), a.body_digest(b"prompt"));
        assert_ne!(a.body_digest(b"prompt"), b.body_digest(b"prompt"));
        assert_ne!(a.body_digest(b"prompt"), a.body_digest(b"prompt2"));
        // Not the plain SHA-256 an auditor could recompute from a guess.
        assert_ne!(a.body_digest(b"prompt"), Body::digest(b"prompt"));
        let sha = crate::hex::encode(&Sha256::digest(b"prompt"));
        assert_eq!(
            a.body_digest_of_sha256(&sha),
            Some(a.body_digest(b"prompt"))
        );
        assert_eq!(a.body_digest_of_sha256("abc"), None);

        let p = a.pseudonym("end_user", "alice");
        assert_eq!(p, a.pseudonym("end_user", "alice"));
        assert!(p.starts_with("anon_") && p.len() == 21, "{p}");
        assert_ne!(p, a.pseudonym("end_user", "bob"));
        assert_ne!(p, a.pseudonym("source_ip", "alice"));
        assert_ne!(p, b.pseudonym("end_user", "alice"));
    }

    #[test]
    fn signatures_verify_only_under_their_key_and_message() {
        let (a, b) = (keys(1), keys(2));
        let sig = a.sign(b"m");
        assert!(verify_signature(&a.verifying_key(), b"m", &sig));
        assert!(!verify_signature(&a.verifying_key(), b"n", &sig));
        assert!(!verify_signature(&b.verifying_key(), b"m", &sig));
        assert!(!verify_signature(&a.verifying_key(), b"m", ""));
        assert!(!verify_signature(&a.verifying_key(), b"m", "zz"));
    }
}
