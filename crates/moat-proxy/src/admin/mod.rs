//! The admin API (`/admin/v1/...`): who may call what, and the routes.
//!
//! Callers present an admin key (`moatadm_<id>_<secret>`, from `moat admin-keys create`, each
//! with one role) or the bootstrap token of `[admin] token` (role `admin`) as
//! `Authorization: Bearer ...`. Every route below names the roles it admits; the guard
//! (`auth.rs`) refuses any other role with 403 before the handler runs, and hands the handler the
//! caller as a request extension, so a route registered without a guard fails closed (its handler
//! cannot extract the caller: 500). No credential or a wrong one is 401; when neither a token is
//! configured nor an active admin key stored, the admin API does not exist (404).
//!
//! | route | admin | security | auditor | viewer |
//! |---|---|---|---|---|
//! | `GET /admin/v1/audit`, `GET /admin/v1/audit/{seq}` | bodies as stored | bodies as stored | bodies redacted | no bodies |
//! | `GET /admin/v1/detect/verdicts` | yes | yes | yes | 403 |
//! | `GET /admin/v1/workflows`, `/spend`, `/incidents` | yes | yes | yes | yes |
//! | `PUT`/`DELETE /admin/v1/workflows/{name}` | yes | 403 | 403 | 403 |
//! | `GET /admin/v1/keys` (never hashes or secrets) | yes | yes | yes | yes |
//! | `POST /admin/v1/keys`, `POST .../keys/{id}/rotate`, `DELETE .../keys/{id}` | yes | 403 | 403 | 403 |
//!
//! The key routes are `moat_admin::keys`'s handlers over the gateway's `KeyService`.

mod audit;
mod auth;
mod ops;

use crate::state::AppState;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use moat_admin::keys::{self as keys, error};
use moat_store::AdminRole::{self, Admin, Auditor, Security, Viewer};
use std::sync::Arc;

pub use moat_admin::Caller;

/// Every role: metadata that any admin key may read.
const ANY: &[AdminRole] = &[Admin, Security, Auditor, Viewer];
/// Detection verdicts with their evidence (request ids, counters): not for viewers.
const VERDICTS: &[AdminRole] = &[Admin, Security, Auditor];
/// Changing the workflow inventory: admins only. A security key reads everything but changes
/// nothing, so a leaked read credential cannot reroute or unblock traffic.
const MANAGE_WORKFLOWS: &[AdminRole] = &[Admin];
/// Creating, rotating and revoking virtual keys: admins only, for the same reason.
const MANAGE_KEYS: &[AdminRole] = &[Admin];
/// The audit log: every role, each shown what its role allows (`audit.rs`).
const AUDIT: &[AdminRole] = ANY;

/// The admin routes, each behind the guard of the roles it admits.
pub(crate) fn routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let only = |roles: &'static [AdminRole], route: MethodRouter<Arc<AppState>>| {
        route.route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            move |s, req, next| auth::guard(s, roles, req, next),
        ))
    };
    Router::new()
        .route("/admin/v1/audit", only(AUDIT, get(audit::list)))
        .route("/admin/v1/audit/{seq}", only(AUDIT, get(audit::one)))
        .route(
            "/admin/v1/detect/verdicts",
            only(VERDICTS, get(ops::verdicts)),
        )
        .route("/admin/v1/workflows", only(ANY, get(ops::workflows)))
        .route(
            "/admin/v1/workflows/{name}",
            only(MANAGE_WORKFLOWS, put(ops::put_workflow))
                .merge(only(MANAGE_WORKFLOWS, delete(ops::delete_workflow))),
        )
        .route("/admin/v1/spend", only(ANY, get(ops::spend)))
        .route("/admin/v1/incidents", only(ANY, get(ops::incidents)))
        .route(
            "/admin/v1/keys",
            only(ANY, get(keys::list::<AppState>))
                .merge(only(MANAGE_KEYS, post(keys::create::<AppState>))),
        )
        .route(
            "/admin/v1/keys/{id}",
            only(MANAGE_KEYS, delete(keys::revoke::<AppState>)),
        )
        .route(
            "/admin/v1/keys/{id}/rotate",
            only(MANAGE_KEYS, post(keys::rotate::<AppState>)),
        )
}

impl keys::KeyAdminState for AppState {
    fn key_service(&self) -> &moat_admin::KeyService {
        &self.key_service
    }
}
