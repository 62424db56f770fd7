//! `--tenants`: opening each tenant's tables, and sending each API call to the routes
//! built over its caller's tenant's tables only.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use porthole_ingest::tenants::Tenants;
use porthole_storage::{Storage, Stores, Tenant};
use tower::ServiceExt;

use crate::args::StorageArgs;
use crate::compactor::Maintenance;

/// Reads `--tenants` when given. `max_request_bytes` is the smallest rate-limit burst.
/// `tokens: false` (maintenance commands) reads no tokens, so needs no `token_env`.
pub fn load(
    args: &StorageArgs,
    max_request_bytes: usize,
    tokens: bool,
) -> anyhow::Result<Option<Arc<Tenants>>> {
    let Some(path) = &args.tenants else {
        return Ok(None);
    };
    let tenants = match tokens {
        true => Tenants::from_file(path, |name| std::env::var(name).ok(), max_request_bytes),
        false => Tenants::from_file_without_tokens(path),
    }
    .map_err(anyhow::Error::msg)
    .context("--tenants")?;
    Ok(Some(Arc::new(tenants)))
}

/// The root's tables alone, or each tenant's.
pub async fn stores(root: Arc<Storage>, tenants: Option<&Tenants>) -> anyhow::Result<Stores> {
    match tenants {
        None => Ok(Stores::single(root)),
        Some(tenants) => Stores::with_tenants(root, &tenants.names())
            .await
            .context("opening the tenants' tables"),
    }
}

/// The maintenance of one set of tables: the tenant's own retention overrides the
/// server's, table by table.
pub fn maintenance_for(
    base: &Maintenance,
    tenants: Option<&Tenants>,
    tenant: Option<&Tenant>,
) -> Maintenance {
    let mut maintenance = base.clone();
    if let Some(config) = tenants.zip(tenant).and_then(|(t, tenant)| t.config(tenant)) {
        maintenance.retention.extend(config.retention.clone());
    }
    maintenance
}

/// Every `/api/v1/…` call, with tenants: answered by the routes built over the caller's
/// tenant's tables, found by its token; 401 for any other token.
#[derive(Clone)]
pub struct TenantApi {
    pub tenants: Arc<Tenants>,
    pub routers: Arc<BTreeMap<Tenant, axum::Router>>,
}

pub async fn tenant_api(api: &TenantApi, request: Request) -> Response {
    let router = api
        .tenants
        .tenant_of(request.headers())
        .and_then(|config| api.routers.get(&config.tenant));
    match router {
        Some(router) => match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => porthole_ingest::unauthorized().into_response(),
    }
}
