//! `/healthz`, `/readyz` and `/metrics`: how an orchestrator and Prometheus see a node.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use porthole_storage::Storage;
use prometheus_client::registry::Registry;

#[derive(Clone)]
struct OpsState {
    storage: Arc<Storage>,
    registry: Arc<Registry>,
}

/// The operations routes in two parts: `/healthz` and `/readyz`, which orchestrators probe
/// without credentials, and `/metrics`, which sits behind the API's auth when there is one.
pub fn ops_routers(storage: Arc<Storage>, registry: Arc<Registry>) -> (Router, Router) {
    let state = OpsState { storage, registry };
    let open = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state.clone());
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    (open, protected)
}

/// Ready when the storage answers; a node that cannot write should get no traffic.
async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.storage.check_reachable(),
    )
    .await
    {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_string()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: storage unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unreachable\n".to_string(),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage did not answer within 5s\n".to_string(),
        ),
    }
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::new(),
        );
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
