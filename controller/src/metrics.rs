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

use crate::process_usage::process_usage;
use crate::rooms::Rooms;
use crate::signaling::Signaling;
use crate::worker_pool::WorkerPool;

#[derive(Clone)]
pub struct MetricsState {
    pub pool: Arc<WorkerPool>,
    pub rooms: Arc<Rooms>,
    pub signaling: Arc<Signaling>,
}

pub fn router(state: MetricsState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], render(&state).await)
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
    family(
        &mut out,
        "octo_worker_hangs_total",
        "counter",
        "Times a worker left its heartbeat unanswered and was killed.",
    );
    for s in &status {
        let _ = writeln!(out, "octo_worker_hangs_total{{worker=\"{}\"}} {}", s.index, s.hangs);
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
    // Each family's samples follow its own HELP and TYPE: the format does not allow interleaving.
    family(&mut out, "octo_rooms", "gauge", "Open rooms per worker.");
    for (index, _, _) in &per_worker {
        let rooms = load.iter().filter(|(w, _)| w == index).count();
        let _ = writeln!(out, "octo_rooms{{worker=\"{index}\"}} {rooms}");
    }
    family(&mut out, "octo_peers", "gauge", "Joined peers per worker.");
    for (index, _, _) in &per_worker {
        let peers: usize = load.iter().filter(|(w, _)| w == index).map(|(_, p)| p).sum();
        let _ = writeln!(out, "octo_peers{{worker=\"{index}\"}} {peers}");
    }
    type Field = fn(&WorkerMetrics) -> u64;
    let series: [(&str, &str, &str, Field); 29] = [
        ("octo_routers", "gauge", "Routers.", |m| m.routers),
        ("octo_transports", "gauge", "WebRTC transports.", |m| m.transports),
        ("octo_producers", "gauge", "Producers (not counting piped copies).", |m| m.producers),
        ("octo_consumers", "gauge", "Consumers (not counting pipe consumers).", |m| m.consumers),
        ("octo_data_producers", "gauge", "Data producers (a peer's DataChannels to the room).", |m| m.data_producers),
        ("octo_data_consumers", "gauge", "Data consumers (a peer's DataChannels from others).", |m| m.data_consumers),
        ("octo_pipe_transports", "gauge", "Pipe transports to other workers.", |m| m.pipe_transports),
        ("octo_pipe_producers", "gauge", "Producers piped in from other workers.", |m| m.pipe_producers),
        ("octo_pipe_consumers", "gauge", "Consumers piping producers out to other workers.", |m| m.pipe_consumers),
        ("octo_pipe_bytes_received_total", "counter", "Bytes received over pipe transports.", |m| {
            m.pipe_bytes_received
        }),
        ("octo_pipe_bytes_sent_total", "counter", "Bytes sent over pipe transports.", |m| m.pipe_bytes_sent),
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
            "octo_pacer_packets_dropped_total",
            "counter",
            "Video packets the pacer dropped (--pace-video: a subscriber's queue was full).",
            |m| m.pacer_packets_dropped,
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
        (
            "octo_consumers_low_score",
            "gauge",
            "Consumers whose receivers report heavy loss (score below 5 of 10).",
            |m| m.consumers_low_score,
        ),
        ("octo_downlink_estimated_transports", "gauge", "WebRTC transports with a downlink estimate.", |m| {
            m.estimated_transports
        }),
        (
            "octo_downlink_estimate_bits_per_second_sum",
            "gauge",
            "Downlink estimates of those transports, summed.",
            |m| m.estimated_bitrate_sum,
        ),
        ("octo_ice_tcp_connections", "gauge", "ICE-TCP connections open.", |m| m.ice_tcp.connections),
        ("octo_ice_tcp_connections_accepted_total", "counter", "ICE-TCP connections accepted.", |m| m.ice_tcp.accepted),
        (
            "octo_ice_tcp_connections_refused_total",
            "counter",
            "ICE-TCP connections closed at accept because the worker had its maximum open.",
            |m| m.ice_tcp.refused,
        ),
        (
            "octo_ice_tcp_connections_malformed_total",
            "counter",
            "ICE-TCP connections closed for a malformed stream (bad framing, or not starting with STUN).",
            |m| m.ice_tcp.closed_malformed,
        ),
        ("octo_ice_tcp_connections_idle_total", "counter", "ICE-TCP connections closed after silence.", |m| {
            m.ice_tcp.closed_idle
        }),
        (
            "octo_ice_tcp_send_drops_total",
            "counter",
            "Packets dropped because their ICE-TCP connection's write buffer was full.",
            |m| m.ice_tcp.send_drops,
        ),
    ];
    for (name, kind, help, field) in series {
        family(&mut out, name, kind, help);
        for (index, _, metrics) in &per_worker {
            if let Some(m) = metrics {
                let _ = writeln!(out, "{name}{{worker=\"{index}\"}} {}", field(m));
            }
        }
    }
    family(
        &mut out,
        "octo_simulcast_consumers",
        "gauge",
        "Simulcast consumers by the encoding they forward (0 is the lowest; none: waiting for a keyframe).",
    );
    for (index, _, metrics) in &per_worker {
        if let Some(m) = metrics {
            for (layer, n) in ["0", "1", "2", "none"].iter().zip(m.simulcast_consumers_by_layer) {
                let _ = writeln!(out, "octo_simulcast_consumers{{worker=\"{index}\",layer=\"{layer}\"}} {n}");
            }
        }
    }
    if let Some(cluster) = state.rooms.cluster() {
        render_cluster(&mut out, &cluster, &state.rooms, &per_worker);
    }
    let counters = state.signaling.counters();
    family(
        &mut out,
        "octo_signaling_requests_total",
        "counter",
        "Signaling requests by dialect and event (event names neither dialect knows count as unknown).",
    );
    for (dialect, event, n) in counters.requests() {
        let _ = writeln!(out, "octo_signaling_requests_total{{dialect=\"{dialect}\",event=\"{event}\"}} {n}");
    }
    family(&mut out, "octo_signaling_errors_total", "counter", "Signaling requests answered with an error, by code.");
    for (dialect, event, code, n) in counters.errors() {
        let _ =
            writeln!(out, "octo_signaling_errors_total{{dialect=\"{dialect}\",event=\"{event}\",code=\"{code}\"}} {n}");
    }
    family(
        &mut out,
        "octo_signaling_undelivered_total",
        "counter",
        "Acks and events dropped because a socket's send buffer was full (a client that does not read).",
    );
    let _ = writeln!(out, "octo_signaling_undelivered_total {}", counters.undelivered());
    out
}

/// Cluster mode only: this node's view of the cluster, its pipes to other nodes and its Redis.
fn render_cluster(
    out: &mut String,
    cluster: &crate::cluster::Cluster,
    rooms: &Rooms,
    per_worker: &[(usize, Option<u32>, Option<WorkerMetrics>)],
) {
    use std::sync::atomic::Ordering::Relaxed;
    let nodes = cluster.nodes();
    family(out, "octo_cluster_redis_up", "gauge", "Whether the cluster's Redis answers (1) or not (0).");
    let _ = writeln!(out, "octo_cluster_redis_up {}", u8::from(cluster.is_up()));
    family(out, "octo_cluster_nodes", "gauge", "Live nodes of the cluster, this one included.");
    let _ = writeln!(out, "octo_cluster_nodes {}", nodes.len());
    family(out, "octo_cluster_peers", "gauge", "Peers of the cluster's nodes, as their heartbeats report.");
    let _ = writeln!(out, "octo_cluster_peers {}", nodes.values().map(|n| n.peers).sum::<usize>());
    family(out, "octo_cluster_rooms", "gauge", "Rooms open on the cluster's nodes (a room on two nodes counts twice).");
    let _ = writeln!(out, "octo_cluster_rooms {}", nodes.values().map(|n| n.rooms).sum::<usize>());
    family(out, "octo_cluster_remote_peers", "gauge", "Members of this node's rooms that are on other nodes.");
    let _ = writeln!(out, "octo_cluster_remote_peers {}", rooms.remote_peer_total());
    family(out, "octo_cluster_pipes", "gauge", "Pipes from a worker to other nodes' workers.");
    let pipes = rooms.far_pipe_counts();
    for (index, _, _) in per_worker {
        let _ = writeln!(out, "octo_cluster_pipes{{worker=\"{index}\"}} {}", pipes.get(index).copied().unwrap_or(0));
    }
    family(out, "octo_cluster_redis_round_trip_seconds", "gauge", "The last Redis command's round trip.");
    let _ = writeln!(out, "octo_cluster_redis_round_trip_seconds {}", cluster.redis_round_trip().as_secs_f64());
    family(out, "octo_cluster_redis_errors_total", "counter", "Redis commands that failed.");
    let _ = writeln!(out, "octo_cluster_redis_errors_total {}", cluster.redis_errors());
    let m = &cluster.metrics;
    for (name, help, value) in [
        (
            "octo_cluster_messages_received_total",
            "Messages received from the cluster's channels.",
            &m.messages_received,
        ),
        (
            "octo_cluster_messages_refused_total",
            "Cluster messages or records dropped as unreadable or not the sender's.",
            &m.messages_refused,
        ),
        ("octo_cluster_requests_sent_total", "Requests sent to other nodes.", &m.requests_sent),
        ("octo_cluster_requests_failed_total", "Requests to other nodes that failed or timed out.", &m.requests_failed),
        ("octo_cluster_requests_served_total", "Requests from other nodes served.", &m.requests_served),
    ] {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", value.load(Relaxed));
    }
}
