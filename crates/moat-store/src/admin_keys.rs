//! Admin keys: the credentials of the admin API (`/admin/v1/...`), each with one role, kept apart
//! from the virtual keys clients call models with.
//!
//! An admin key reads `moatadm_<id>_<secret>` (the id 12 lowercase alphanumerics, the secret 43
//! base62 characters, as for virtual keys). The distinct prefix is what keeps the two kinds apart:
//! a virtual key (`moat_...`) never has the shape of an admin key and an admin key never has the
//! shape of a virtual key (`moat_` is not a prefix of `moatadm_`), so neither can be presented
//! where the other is expected, whatever the stores hold. Only the SHA-256 of the whole key is
//! stored, for the reasons given in `moat_policy::keys`.
//!
//! The format lives beside its store rather than in `moat-policy` because nothing on the request
//! path reads admin keys; it reuses that crate's generator and hash.

use crate::StoreError;
use async_trait::async_trait;
use moat_core::Secret;
use moat_policy::{generate_key, hash_key, KeyHash, KEY_PREFIX};

/// Every admin key starts with this prefix.
pub const ADMIN_KEY_PREFIX: &str = "moatadm_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;

/// What an admin key may see and do. Each admin route names the roles it admits; any other role
/// is refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminRole {
    /// Everything, including registering and removing workflows.
    Admin,
    /// Reads everything: audit bodies as stored, detection verdicts with their evidence.
    Security,
    /// Reads audit bodies with detected personal data and secrets redacted, and verdicts.
    Auditor,
    /// Metadata only: no bodies, no verdicts.
    Viewer,
}

impl AdminRole {
    /// Every role, most powerful first.
    pub const ALL: [AdminRole; 4] = [
        AdminRole::Admin,
        AdminRole::Security,
        AdminRole::Auditor,
        AdminRole::Viewer,
    ];

    /// The role's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Admin => "admin",
            AdminRole::Security => "security",
            AdminRole::Auditor => "auditor",
            AdminRole::Viewer => "viewer",
        }
    }

    /// The role called `name`.
    pub fn parse(name: &str) -> Option<AdminRole> {
        AdminRole::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for AdminRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored admin key: its hash, who holds it and its role. Never holds the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKeyRecord {
    /// Public id, the part between the prefix and the secret.
    pub id: String,
    /// SHA-256 of the whole key.
    pub hash: KeyHash,
    /// Who holds it (a person or a system), for lists and for read records.
    pub name: String,
    /// What it may do.
    pub role: AdminRole,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Revocation time, Unix seconds.
    pub revoked_at: Option<i64>,
}

/// A freshly generated admin key: the secret to show once and the record to store.
#[derive(Debug)]
pub struct GeneratedAdminKey {
    /// The full key, shown to its holder once.
    pub key: Secret<String>,
    /// What the store keeps.
    pub record: AdminKeyRecord,
}

/// Generates a new admin key for `name` with `role`, created at `created_at` (Unix seconds), from
/// the operating system's CSPRNG (through `moat_policy::generate_key`, re-prefixed).
pub fn generate_admin_key(name: &str, role: AdminRole, created_at: i64) -> GeneratedAdminKey {
    let generated = generate_key();
    let rest = generated
        .key
        .expose()
        .strip_prefix(KEY_PREFIX)
        .unwrap_or(generated.key.expose());
    let key = format!("{ADMIN_KEY_PREFIX}{rest}");
    let record = AdminKeyRecord {
        id: generated.id,
        hash: hash_key(&key),
        name: name.to_string(),
        role,
        created_at,
        revoked_at: None,
    };
    GeneratedAdminKey {
        key: Secret::new(key),
        record,
    }
}

/// The public id of a presented admin key, if it has the shape of one.
pub fn parse_admin_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(ADMIN_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(id)
}

/// Where admin keys live. Keys are stored only as hashes.
#[async_trait]
pub trait AdminKeyStore: Send + Sync {
    /// Stores a new admin key; fails with [`StoreError::Duplicate`] if the id exists.
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> Result<(), StoreError>;
    /// The admin key with this public id.
    async fn get_admin_key(&self, id: &str) -> Result<Option<AdminKeyRecord>, StoreError>;
    /// Every admin key, oldest first.
    async fn list_admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError>;
    /// Marks an admin key revoked at `at` (Unix seconds). False if there is no such key; revoking
    /// twice keeps the first time.
    async fn revoke_admin_key(&self, id: &str, at: i64) -> Result<bool, StoreError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn generated_admin_keys_parse_back_and_are_never_virtual_keys() {
        let g = generate_admin_key("alice", AdminRole::Auditor, 7);
        let key = g.key.expose();
        assert!(key.starts_with("moatadm_"));
        assert_eq!(parse_admin_key(key), Some(g.record.id.as_str()));
        assert!(hash_key(key).matches(&g.record.hash));
        assert_eq!(moat_policy::parse_key(key), None, "not a virtual key");
        let client = generate_key();
        assert_eq!(
            parse_admin_key(client.key.expose()),
            None,
            "not an admin key"
        );
        assert_eq!(
            (g.record.role, g.record.created_at),
            (AdminRole::Auditor, 7)
        );
    }

    #[test]
    fn roles_round_trip_by_name() {
        for role in AdminRole::ALL {
            assert_eq!(AdminRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(AdminRole::parse("root"), None);
        assert_eq!(AdminRole::parse("Admin"), None);
    }

    #[test]
    fn malformed_admin_keys_have_no_id() {
        for bad in [
            "",
            "moatadm_",
            "moatadm_abc_def",
            "moat_abcdefghijkl_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "moatadm_ABCDEFGHIJKL_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert_eq!(parse_admin_key(bad), None, "{bad}");
        }
    }
}
