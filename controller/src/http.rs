//! The controller's HTTP face: health and worker status for operators and tests.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::worker_pool::WorkerPool;

pub fn router(pool: Arc<WorkerPool>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/workers", get(workers)).with_state(pool)
}

/// 200 with the live worker count while at least one worker answers; 503 otherwise.
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
