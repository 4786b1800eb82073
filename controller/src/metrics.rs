//! Prometheus `/metrics`, served on its own address so it can stay private while signaling is
//! public. Worker figures come from each worker's own counters over ipc; CPU and memory from the
//! kernel's accounting of each worker process.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use octo_ipc::{Request, Response, WorkerMetrics, WorkerRequest};

use crate::rooms::Rooms;
use crate::worker_pool::WorkerPool;

#[derive(Clone)]
pub struct MetricsState {
    pub pool: Arc<WorkerPool>,
    pub rooms: Arc<Rooms>,
}

pub fn router(state: MetricsState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], render(&state).await)
}

/// CPU seconds (user + system) and resident bytes of a process, from /proc.
fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let pages: u64 =
        std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: as above.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Some(((utime + stime) as f64 / ticks, pages * page_size))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub async fn render(state: &MetricsState) -> String {
    let mut out = String::new();
    let status = state.pool.status();
    let mut per_worker: Vec<(usize, Option<u32>, Option<WorkerMetrics>)> = Vec::new();
    for s in &status {
        let metrics = match state.pool.request(s.index, Request::Worker(WorkerRequest::GetMetrics)).await {
            Ok(Response::WorkerMetrics(m)) => Some(m),
            _ => None,
        };
        per_worker.push((s.index, s.pid, metrics));
    }
    family(&mut out, "octo_workers_live", "gauge", "Worker processes answering requests.");
    let _ = writeln!(out, "octo_workers_live {}", state.pool.live_count());
    family(&mut out, "octo_worker_restarts_total", "counter", "Times a worker was respawned.");
    for s in &status {
        let _ = writeln!(out, "octo_worker_restarts_total{{worker=\"{}\"}} {}", s.index, s.restarts);
    }
    family(&mut out, "octo_worker_cpu_seconds_total", "counter", "CPU time used by the current worker process.");
    for (index, pid, _) in &per_worker {
        if let Some((cpu, _)) = pid.and_then(process_usage) {
            let _ = writeln!(out, "octo_worker_cpu_seconds_total{{worker=\"{index}\"}} {cpu}");
        }
    }
    family(&mut out, "octo_worker_resident_memory_bytes", "gauge", "Resident memory of the worker process.");
    for (index, pid, _) in &per_worker {
        if let Some((_, rss)) = pid.and_then(process_usage) {
            let _ = writeln!(out, "octo_worker_resident_memory_bytes{{worker=\"{index}\"}} {rss}");
        }
    }
    let load = state.rooms.load();
    family(&mut out, "octo_rooms", "gauge", "Open rooms per worker.");
    family(&mut out, "octo_peers", "gauge", "Joined peers per worker.");
    for (index, _, _) in &per_worker {
        let rooms = load.iter().filter(|(w, _)| w == index).count();
        let peers: usize = load.iter().filter(|(w, _)| w == index).map(|(_, p)| p).sum();
        let _ = writeln!(out, "octo_rooms{{worker=\"{index}\"}} {rooms}");
        let _ = writeln!(out, "octo_peers{{worker=\"{index}\"}} {peers}");
    }
    type Field = fn(&WorkerMetrics) -> u64;
    let series: [(&str, &str, &str, Field); 12] = [
        ("octo_routers", "gauge", "Routers.", |m| m.routers),
        ("octo_transports", "gauge", "WebRTC transports.", |m| m.transports),
        ("octo_producers", "gauge", "Producers.", |m| m.producers),
        ("octo_consumers", "gauge", "Consumers.", |m| m.consumers),
        ("octo_packets_received_total", "counter", "Datagrams received by transports.", |m| m.packets_received),
        ("octo_bytes_received_total", "counter", "Bytes received by transports.", |m| m.bytes_received),
        ("octo_packets_sent_total", "counter", "Datagrams sent by transports.", |m| m.packets_sent),
        ("octo_bytes_sent_total", "counter", "Bytes sent by transports.", |m| m.bytes_sent),
        (
            "octo_packets_dropped_total",
            "counter",
            "Datagrams dropped (malformed, unknown source, undecryptable, unroutable).",
            |m| m.packets_dropped,
        ),
        (
            "octo_srtp_failures_total",
            "counter",
            "SRTP/SRTCP packets that failed authentication or replay checks.",
            |m| m.srtp_failures,
        ),
        ("octo_nacks_received_total", "counter", "NACK packets received from subscribers.", |m| m.nacks_received),
        ("octo_keyframe_requests_received_total", "counter", "PLI and FIR received from subscribers.", |m| {
            m.keyframe_requests_received
        }),
    ];
    for (name, kind, help, field) in series {
        family(&mut out, name, kind, help);
        for (index, _, metrics) in &per_worker {
            if let Some(m) = metrics {
                let _ = writeln!(out, "{name}{{worker=\"{index}\"}} {}", field(m));
            }
        }
    }
    out
}
