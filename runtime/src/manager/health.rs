//! The manager's HTTP endpoints: `/metrics` (Prometheus/OpenMetrics text) on the metrics
//! address, `/healthz` and `/readyz` on the health-probe address (kubelet probes).
//!
//! `/healthz` answers 200 while the process serves requests. `/readyz` answers 200 once every
//! controller's caches have synced (and the webhook server, if any, serves), 503 with the list of
//! what is not ready before that (`controller/resource` for each unsynced cache).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::manager::metrics::Metrics;

/// A readiness check: a name and a probe returning whether it passes.
pub type ReadyCheck = (String, Arc<dyn Fn() -> bool + Send + Sync>);

/// The checks `/readyz` runs, shared with the manager that adds to them.
pub type ReadyChecks = Arc<parking_lot::Mutex<Vec<ReadyCheck>>>;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn serve_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.encode())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(checks): State<ReadyChecks>) -> (StatusCode, String) {
    let failing: Vec<String> = checks
        .lock()
        .iter()
        .filter(|(_, ok)| !ok())
        .map(|(name, _)| name.clone())
        .collect();
    if failing.is_empty() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", failing.join(", ")),
        )
    }
}

/// The `/metrics` router.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

/// The `/healthz` + `/readyz` router.
pub fn probes_router(checks: ReadyChecks) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(checks)
}

/// Serves `router` on `listener` until `stop` fires.
pub(crate) async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let addr = listener.local_addr().ok();
    if let Err(err) = axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(?addr, %err, "HTTP server failed");
    }
}
