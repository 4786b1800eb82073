//! The controller's HTTP face: Socket.IO signaling, the seed app's capabilities endpoint, health and
//! worker status for operators and tests, and the browser app: the built-in one (embedded from
//! `client-web/dist/`) or, with `--web-root`, any static front-end from a directory.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::services::ServeDir;

use crate::readiness::{self, Readiness};
use crate::signaling::{self, Signaling};
use crate::web_assets;
use crate::worker_pool::WorkerPool;

/// Every route. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the seed
/// dialect keys its `transport-created` hold by client address.
pub fn router(
    pool: Arc<WorkerPool>,
    readiness: Arc<Readiness>,
    signaling: Arc<Signaling>,
    web_root: Option<PathBuf>,
) -> Router {
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/workers", get(workers))
        .with_state(pool)
        .merge(Router::new().route("/readyz", get(readiness::readyz)).with_state(readiness));
    let seed = Router::new()
        .route("/getRtpCapabilities", get(signaling::get_rtp_capabilities))
        .route("/servers", get(servers))
        .with_state(signaling.clone());
    let mut app = ops.merge(seed);
    app = match web_root {
        Some(dir) => app.fallback_service(ServeDir::new(dir).append_index_html_on_directories(true)),
        None => app.merge(web_assets::routes()),
    };
    app.layer(signaling.layer())
}

/// Liveness: 200 with the live worker count while at least one worker answers; 503 otherwise.
async fn healthz(State(pool): State<Arc<WorkerPool>>) -> impl IntoResponse {
    let live = pool.live_count();
    let status = if live > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(
            json!({ "status": if live > 0 { "ok" } else { "down" }, "workers": live, "configuredWorkers": pool.len() }),
        ),
    )
}

async fn workers(State(pool): State<Arc<WorkerPool>>) -> impl IntoResponse {
    Json(pool.status())
}

/// Where a browser may reconnect if this server goes away: in a cluster, the live nodes' public
/// URLs (this one first); standalone, none (the client retries its own origin).
async fn servers(State(signaling): State<Arc<Signaling>>) -> impl IntoResponse {
    let servers = signaling.rooms().cluster().map(|c| c.servers()).unwrap_or_default();
    Json(json!({ "servers": servers }))
}
