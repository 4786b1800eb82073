//! `/readyz`: whether a load balancer should send new users here. Unlike `/healthz` (liveness: is
//! the process worth keeping), readiness drops while starting, while any worker is down and being
//! respawned, and while draining after SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::rooms::Rooms;
use crate::worker_pool::WorkerPool;

pub struct Readiness {
    pool: Arc<WorkerPool>,
    rooms: Arc<Rooms>,
    /// Set once the listener accepts and the workers answered (when systemd hears READY=1).
    serving: AtomicBool,
}

impl Readiness {
    pub fn new(pool: Arc<WorkerPool>, rooms: Arc<Rooms>) -> Arc<Readiness> {
        Arc::new(Readiness { pool, rooms, serving: AtomicBool::new(false) })
    }

    pub fn mark_serving(&self) {
        self.serving.store(true, Ordering::Relaxed);
    }

    /// `Ok` when ready; otherwise the state and a reason for operators.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.serving.load(Ordering::Relaxed) {
            return Err(("starting", "workers or listener not up yet".into()));
        }
        if self.rooms.is_draining() {
            return Err(("draining", "shutting down: new joins are refused".into()));
        }
        if let Some(cluster) = self.rooms.cluster()
            && !cluster.is_up()
        {
            return Err((
                "degraded",
                "the cluster's Redis is unreachable: serving current calls, refusing joins across nodes".into(),
            ));
        }
        let down: Vec<usize> = (0..self.pool.len()).filter(|&i| self.pool.worker(i).is_none()).collect();
        if !down.is_empty() {
            return Err(("degraded", format!("workers {down:?} are down (respawning)")));
        }
        Ok(())
    }
}

pub async fn readyz(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    let workers = readiness.pool.live_count();
    let configured = readiness.pool.len();
    match readiness.check() {
        Ok(()) => {
            (StatusCode::OK, Json(json!({ "status": "ready", "workers": workers, "configuredWorkers": configured })))
        }
        Err((status, reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": status, "reason": reason, "workers": workers, "configuredWorkers": configured })),
        ),
    }
}
