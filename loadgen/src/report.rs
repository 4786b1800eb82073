//! The figures as a table on stdout and as JSON (`--json FILE`).

use std::time::Instant;

use octo_ipc::Protocol;
use serde::Serialize;

use crate::figures::StepFigures;
use crate::raw_send::RawSend;
use crate::scenario::Kind;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
}

impl Machine {
    pub fn this() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
            })
            .unwrap_or_default();
        Self { nproc: std::thread::available_parallelism().map_or(1, |n| n.get()), cpu_model }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Kind,
    pub ramp: bool,
    pub machine: Machine,
    pub workers: usize,
    /// What the subscribers received over: "udp", or "tcp" (ICE-TCP, RFC 4571 frames; `--tcp`).
    /// Publishers always send over UDP.
    pub subscriber_transport: Protocol,
    /// With `--tcp`, at the end: the ICE-TCP connections Octo's workers had open, from their
    /// metrics (one per subscriber that took TCP).
    pub worker_ice_tcp_connections: Option<u64>,
    pub steps: Vec<StepFigures>,
    /// The highest level that kept every limit (loss, p99, no saturated thread, integrity).
    pub last_good: Option<StepFigures>,
    pub stop_reason: Option<String>,
    /// The raw `sendmmsg` loop to the same receivers, in the same run.
    pub raw_send: Option<RawSend>,
    /// Worker CPU per egress packet ÷ raw `sendmmsg` CPU per packet (last measured step).
    pub worker_to_raw_ratio: Option<f64>,
    pub duration_s: f64,
    /// `--cluster`: the last window by node, and what crossed between nodes and Redis did.
    pub cluster: Option<ClusterReport>,
    /// The configuration the load generator wrote for the server it started (Janus).
    pub server_config: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub nodes: Vec<crate::cluster::NodeFigures>,
    pub figures: crate::cluster::ClusterFigures,
}

/// The cluster's lines under a step: one per node, then the pipes and Redis.
pub fn print_cluster(nodes: &[crate::cluster::NodeFigures], c: &crate::cluster::ClusterFigures) {
    for (i, n) in nodes.iter().enumerate() {
        println!(
            "  {}: {} peers ({} viewers), egress {:.0} pkt/s, workers {:.0} % CPU, {} µs/pkt; pipes out {:.2} Mbit/s, in {:.2} Mbit/s",
            n.node,
            n.peers,
            n.viewers,
            n.egress_packets_per_s,
            n.worker_cpu_percent,
            opt(n.worker_cpu_us_per_packet, 2),
            c.pipe_out_mbit_per_s.get(i).copied().unwrap_or(0.0),
            c.pipe_in_mbit_per_s.get(i).copied().unwrap_or(0.0),
        );
    }
    println!(
        "  redis: {} % CPU, {} commands/s in the window; {} commands during setup ({} per peer)",
        opt(c.redis_cpu_percent, 1),
        opt(c.redis_commands_per_s, 0),
        c.redis_setup_commands.map_or("-".into(), |n| n.to_string()),
        opt(c.redis_commands_per_join, 1),
    );
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: Kind,
        ramp: bool,
        workers: usize,
        steps: Vec<StepFigures>,
        last_good: Option<StepFigures>,
        stop_reason: Option<String>,
        raw_send: Option<RawSend>,
        started: Instant,
    ) -> Self {
        let reference = last_good.as_ref().or(steps.last());
        let worker_to_raw_ratio = match (reference.and_then(|s| s.worker_cpu_us_per_packet), &raw_send) {
            (Some(us), Some(raw)) if raw.cpu_ns_per_packet > 0.0 => Some(us * 1000.0 / raw.cpu_ns_per_packet),
            _ => None,
        };
        Self {
            scenario,
            ramp,
            machine: Machine::this(),
            workers,
            subscriber_transport: Protocol::Udp,
            worker_ice_tcp_connections: None,
            steps,
            last_good,
            stop_reason,
            raw_send,
            worker_to_raw_ratio,
            duration_s: started.elapsed().as_secs_f64(),
            server_config: None,
            cluster: None,
        }
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

const HEADER: &str = "level  peers  consumers  egress pkt/s  Mbit/s  worker CPU %  µs/pkt  viewers/core  loadgen CPU %  loss %  p50 ms  p99 ms  first pkt p50/max ms  RSS/consumer kB";

/// One row, printed as soon as a step is measured (a ramp shows progress).
pub fn print_step(s: &StepFigures) {
    static HEADER_ONCE: std::sync::Once = std::sync::Once::new();
    HEADER_ONCE.call_once(|| println!("{HEADER}"));
    let cpu: Vec<String> = s.worker_cpu_percent.iter().map(|c| format!("{c:.0}")).collect();
    println!(
        "{:>5}  {:>5}  {:>9}  {:>12.0}  {:>6.1}  {:>12}  {:>6}  {:>12}  {:>13.0}  {:>6.3}  {:>6}  {:>6}  {:>20}  {:>15}",
        s.level,
        s.peers,
        s.consumers,
        s.egress_packets_per_s,
        s.egress_mbit_per_s,
        cpu.join("+"),
        opt(s.worker_cpu_us_per_packet, 2),
        opt(s.video_consumers_per_worker_core, 0),
        s.loadgen_cpu_percent,
        s.loss_percent,
        opt(s.latency_p50_ms, 2),
        opt(s.latency_p99_ms, 2),
        format!("{}/{}", opt(s.first_packet_p50_ms, 0), opt(s.first_packet_max_ms, 0)),
        opt(s.worker_rss_per_consumer_kb, 1),
    );
    crate::downlink_figures::print(&s.downlink);
}

pub fn print(r: &Report) {
    println!();
    println!(
        "machine: {} × {}; scenario {:?}{}; {} worker(s); subscribers over {}; {:.0} s",
        r.machine.nproc,
        r.machine.cpu_model,
        r.scenario,
        if r.ramp { " (ramp)" } else { "" },
        r.workers,
        match r.subscriber_transport {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP (ICE-TCP, RFC 4571 framing; publishers over UDP)",
        },
        r.duration_s
    );
    if let Some(s) = r.steps.last() {
        println!(
            "SRTP profile {}; {:.2} datagrams per read at the subscribers; NACKs sent {}, PLIs sent {}, RTX \
             received {}, padding probes received {}, transport-cc feedback sent {}, bottlenecks delivered {} and \
             dropped {} datagrams, integrity failures {}; worker preempted {:.0}/s, load average {:.1} (last step)",
            s.srtp_profile.as_deref().unwrap_or("-"),
            s.datagrams_per_read,
            s.nacks_sent,
            s.plis_sent,
            s.rtx_received,
            s.padding_received,
            s.twcc_feedback_sent,
            s.link_delivered,
            s.link_dropped,
            s.integrity_failures,
            s.worker_preemptions_per_s,
            s.load_average
        );
    }
    if let Some(s) = r.steps.last().filter(|_| r.subscriber_transport == Protocol::Tcp) {
        println!(
            "ICE-TCP: {} connections open at the workers, {} closed at the subscribers (each a failed transport), \
             {} packets dropped at their full write buffers (last step); no raw sendmmsg baseline (it is UDP)",
            r.worker_ice_tcp_connections.map_or_else(|| "?".to_owned(), |n| n.to_string()),
            s.tcp_closed,
            s.tcp_write_drops
        );
    }
    if let Some(f) = r.steps.last().and_then(|s| s.flood.as_ref()) {
        println!(
            "garbage flood: {} datagrams in {:.1} s ({:.0}/s of {}/s asked, {} refused sends); the workers dropped {} \
             meanwhile (last step)",
            f.sent,
            f.seconds,
            f.sent_per_s,
            f.target_packets_per_s,
            f.send_errors,
            f.worker_drops.map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
    }
    if let Some(s) = r.steps.last().filter(|s| s.sinks > 0) {
        println!(
            "{} of {} subscribers were sinks (set up, then not read{}): loss, latency and received RTP are the \
             others'; the kernel dropped {:.0} datagrams/s at full sockets (last step)",
            s.sinks,
            s.level,
            if r.subscriber_transport == Protocol::Tcp { "; over TCP, read and thrown away" } else { "" },
            s.udp_rcvbuf_drops_per_s
        );
    }
    if let Some(s) = r.steps.last().filter(|s| s.egress_packets_per_s_by_worker.len() > 1) {
        let by_worker: Vec<String> = s
            .egress_packets_per_s_by_worker
            .iter()
            .zip(&s.worker_cpu_percent)
            .enumerate()
            .map(|(i, (pkts, cpu))| format!("worker {i}: {pkts:.0} pkt/s at {cpu:.0} % CPU"))
            .collect();
        println!("by worker (last step): {}", by_worker.join("; "));
    }
    if let Some(raw) = &r.raw_send {
        println!(
            "raw sendmmsg: {:.0} ns CPU per 1200-byte datagram ({} datagrams to {} receivers, {:.0} pkt/s)",
            raw.cpu_ns_per_packet, raw.packets, raw.receivers, raw.packets_per_second_wall
        );
    }
    if let Some(ratio) = r.worker_to_raw_ratio {
        println!("worker CPU per egress packet = {ratio:.2} × raw sendmmsg");
    }
    match &r.last_good {
        Some(s) if r.ramp => println!(
            "last good level: {} ({} consumers, {:.0} egress pkt/s, {} viewers per worker core)",
            s.level,
            s.consumers,
            s.egress_packets_per_s,
            opt(s.video_consumers_per_worker_core, 0)
        ),
        None if r.ramp => println!("no level kept every limit"),
        _ => {}
    }
    if let Some(reason) = &r.stop_reason {
        println!("stopped: {reason}");
    }
}
