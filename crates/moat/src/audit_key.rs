//! The audit key file (`audit.signing_key`, by default the store's path + `.audit-key`): an
//! Ed25519 private key as PKCS#8 PEM, generated on first use with mode 0600 and never logged or
//! printed. Its public half (`moat audit pubkey`) lets anyone check checkpoints and witnessed
//! heads.

use anyhow::{bail, Context};
use moat_audit::AuditKeys;
use moat_config::Config;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The key file the config names; `None` for an in-memory store.
pub fn path(config: &Config) -> Option<PathBuf> {
    config.audit.signing_key_path(&config.store.path)
}

/// The config's audit key, generated (and written) if its file does not exist yet. An in-memory
/// store gets a key for this process only.
pub fn load_or_create(config: &Config) -> anyhow::Result<AuditKeys> {
    let Some(path) = path(config) else {
        return Ok(ephemeral());
    };
    if let Some(keys) = load(&path)? {
        return Ok(keys);
    }
    create(&path)?;
    load(&path)?.with_context(|| format!("audit key file {} vanished", path.display()))
}

/// The key in `path`, `None` if there is no such file.
pub fn load(path: &Path) -> anyhow::Result<Option<AuditKeys>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("reading audit key file {}", path.display()))
        }
    };
    warn_if_readable_by_others(path);
    match AuditKeys::from_pem(&text) {
        Ok(keys) => Ok(Some(keys)),
        Err(e) => bail!("audit key file {}: {e}", path.display()),
    }
}

/// Writes a new key to `path` without ever replacing one: written to a temporary file beside it
/// (mode 0600), then linked into place, which fails if another process got there first (its
/// key is then the one used).
fn create(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let pem = AuditKeys::from_seed(seed())
        .to_pem()
        .map_err(|e| anyhow::anyhow!("encoding the audit key: {e}"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".audit-key.")
        .tempfile_in(&dir)
        .with_context(|| format!("creating the audit key in {}", dir.display()))?;
    // tempfile creates files readable by their owner only (0600).
    tmp.write_all(pem.as_bytes())?;
    tmp.as_file().sync_all()?;
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => {
            tracing::info!(file = %path.display(), "generated the audit key");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("writing audit key file {}", path.display())),
    }
}

/// A key for this process only (an in-memory store, a disabled log).
pub fn ephemeral() -> AuditKeys {
    AuditKeys::from_seed(seed())
}

fn seed() -> [u8; 32] {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    seed
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the audit key file is readable by others than its owner: chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.db.audit-key");
        assert!(load(&path).unwrap().is_none());
        create(&path).unwrap();
        let first = load(&path).unwrap().unwrap();
        // A second create never replaces the key.
        create(&path).unwrap();
        assert_eq!(
            load(&path).unwrap().unwrap().public_hex(),
            first.public_hex()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(load(&path).is_err());
    }
}
