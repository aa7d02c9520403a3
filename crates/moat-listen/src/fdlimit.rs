//! The process's file-descriptor limit: every connection holds one.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so the connection cap, not the default
/// soft limit (often 1024), decides how many clients are served. Returns the limits before and
/// after, or the error; a no-op where the platform has no such limit.
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    let (before, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let after = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok((before, after))
}
