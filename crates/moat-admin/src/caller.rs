//! Who is calling the admin API, as the gateway's guard found them.

use moat_store::AdminRole;

/// An authenticated admin caller, put on the request by the guard for the handler. A handler
/// that extracts it cannot run on a route registered without a guard (it fails closed: 500).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The admin key's id, or the bootstrap token's fixed id.
    pub id: String,
    /// Its role.
    pub role: AdminRole,
    /// The caller's address as resolved (`server.trusted_proxies`), when known.
    pub source_ip: Option<String>,
    /// The caller's `User-Agent`.
    pub user_agent: Option<String>,
}
