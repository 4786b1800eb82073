//! One measurement window: the media loop's counters, the workers' CPU time and RSS from `/proc`,
//! and their egress counters from Octo's metrics, read at both edges and turned into figures.

use std::time::Duration;

use serde::Serialize;

use crate::media::Snapshot;
use crate::octo::Octo;
use crate::proc_stat::{self, ProcessSample};
use crate::session::Session;

/// The state at one edge of a window.
pub struct Edge {
    snapshot: Snapshot,
    workers: Vec<Option<ProcessSample>>,
    egress: Option<Vec<(u64, u64)>>,
}

pub fn edge(session: &Session, octo: &Octo, workers: &[(usize, u32)]) -> anyhow::Result<Edge> {
    edge_of(session, &[(Some(octo), workers)])
}

/// One edge over several Octos (a cluster's nodes): their workers one after the other.
/// A server's processes to bill: an Octo (`None`: egress is counted at the subscribers, as for
/// Janus) and its worker pids by slot.
pub type Billed<'a> = (Option<&'a Octo>, &'a [(usize, u32)]);

pub fn edge_of(session: &Session, nodes: &[Billed<'_>]) -> anyhow::Result<Edge> {
    let mut egress = Some(Vec::new());
    for (octo, workers) in nodes {
        match (egress.as_mut(), octo.and_then(|o| o.egress(workers))) {
            (Some(all), Some(mine)) => all.extend(mine),
            _ => egress = None,
        }
    }
    Ok(Edge {
        snapshot: session.media.snapshot()?,
        workers: nodes.iter().flat_map(|(_, w)| w.iter().map(|(_, pid)| proc_stat::process(*pid))).collect(),
        egress,
    })
}

impl Edge {
    /// The same edge for the workers in `range` only (one node of a cluster).
    pub fn workers_in(&self, range: std::ops::Range<usize>) -> Edge {
        Edge {
            snapshot: self.snapshot.clone(),
            workers: self.workers.get(range.clone()).unwrap_or_default().to_vec(),
            egress: self.egress.as_ref().map(|e| e.get(range).unwrap_or_default().to_vec()),
        }
    }
}

/// Limits a ramp step must stay within (the definition of "good").
pub const MAX_LOSS_PERCENT: f64 = 0.5;
/// The default p99 limit; a ramp may be given another (`--max-p99-ms`).
pub const MAX_P99_MS: f64 = 20.0;
/// A thread above this share of one core is saturated.
pub const SATURATED_PERCENT: f64 = 90.0;

#[derive(Debug, Clone, Serialize)]
pub struct StepFigures {
    /// Subscribers (webinar), rooms (rooms) or publishers (meeting).
    pub level: usize,
    pub peers: usize,
    pub consumers: usize,
    pub video_consumers: usize,
    pub window_s: f64,
    /// From the workers' own `octo_packets_sent_total` / `octo_bytes_sent_total`.
    pub egress_packets_per_s: f64,
    pub egress_mbit_per_s: f64,
    /// The same by worker slot (empty without the metrics endpoint); pipe datagrams between
    /// workers are in it (a stream per producer per worker, next to thousands of consumers').
    pub egress_packets_per_s_by_worker: Vec<f64>,
    /// RTP the load generator's subscribers received.
    pub received_rtp_per_s: f64,
    pub worker_cpu_percent: Vec<f64>,
    /// Worker CPU time (utime + stime) ÷ datagrams the workers sent.
    pub worker_cpu_us_per_packet: Option<f64>,
    /// Video consumers ÷ worker cores used: how many 1-Mbit/s viewers one core carries at this
    /// per-packet cost.
    pub video_consumers_per_worker_core: Option<f64>,
    pub loadgen_cpu_percent: f64,
    pub loss_percent: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_samples: u64,
    /// `consume` sent → first RTP packet, for the consumers created for this step.
    pub first_packet_p50_ms: Option<f64>,
    pub first_packet_max_ms: Option<f64>,
    pub worker_rss_mb: f64,
    pub worker_rss_per_consumer_kb: Option<f64>,
    /// Datagrams per read at the subscribers: above 1 when Octo's GSO runs arrive whole (GRO).
    pub datagrams_per_read: f64,
    pub nacks_sent: u64,
    pub plis_sent: u64,
    pub rtx_received: u64,
    pub integrity_failures: u64,
    pub srtp_profile: Option<String>,
    /// Times per second the workers were preempted while runnable, and the machine's 1-minute
    /// load average at the end of the window: on a shared machine, what other processes took.
    pub worker_preemptions_per_s: f64,
    pub load_average: f64,
    /// Padding-only RTX packets the subscribers received (the estimator's probes) and the
    /// transport-cc feedback packets they sent, in the window.
    pub padding_received: u64,
    pub twcc_feedback_sent: u64,
    /// The simulated bottlenecks' datagrams delivered and dropped in the window.
    pub link_delivered: u64,
    pub link_dropped: u64,
    /// Subscribers not read in the window (`--read-every`), and the datagrams per second the
    /// kernel dropped at full sockets (theirs, and any other's on this machine).
    pub sinks: usize,
    pub udp_rcvbuf_drops_per_s: f64,
    /// ICE-TCP (`--tcp`): connections closed so far (each a failed transport), and packets the
    /// subscribers' full write buffers dropped in the window.
    pub tcp_closed: u64,
    pub tcp_write_drops: u64,
    /// `--flood-pps`: the garbage flood during the window, and what the workers dropped of it.
    pub flood: Option<crate::flood::FloodFigures>,
    /// Per subscriber: received bitrate against its cap, the layers it was given.
    pub downlink: crate::downlink_figures::DownlinkReport,
}

impl StepFigures {
    /// Why this step is not good, if it is not (`max_p99_ms`: the added latency's limit).
    pub fn violation(&self, max_p99_ms: f64) -> Option<String> {
        if self.loss_percent > MAX_LOSS_PERCENT {
            return Some(format!("loss {:.2} % > {MAX_LOSS_PERCENT} %", self.loss_percent));
        }
        if let Some(p99) = self.latency_p99_ms.filter(|p| *p > max_p99_ms) {
            return Some(format!("added latency p99 {p99:.1} ms > {max_p99_ms} ms"));
        }
        if let Some(cpu) = self.worker_cpu_percent.iter().copied().find(|c| *c >= SATURATED_PERCENT) {
            return Some(format!("worker saturated ({cpu:.0} % of a core)"));
        }
        if self.loadgen_cpu_percent >= SATURATED_PERCENT {
            return Some(format!("load generator saturated ({:.0} % of a core)", self.loadgen_cpu_percent));
        }
        if self.integrity_failures > 0 {
            return Some(format!("{} packets failed decryption or the integrity check", self.integrity_failures));
        }
        None
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Figures for the window between `a` and `b`. `baseline_rss` is the workers' RSS before any
/// client existed; `first_from` indexes the first consume→first-packet time of this step.
pub fn window(
    a: &Edge,
    b: &Edge,
    level: usize,
    session: &Session,
    baseline_rss: u64,
    first_from: usize,
) -> StepFigures {
    let wall = b.snapshot.at.duration_since(a.snapshot.at).as_secs_f64().max(1e-6);
    let (ca, cb) = (&a.snapshot.counters, &b.snapshot.counters);
    let cpu: Vec<Option<Duration>> =
        a.workers.iter().zip(&b.workers).map(|(x, y)| Some(y.as_ref()?.cpu.saturating_sub(x.as_ref()?.cpu))).collect();
    let worker_cpu_percent: Vec<f64> = cpu.iter().map(|c| c.map_or(0.0, |c| c.as_secs_f64() / wall * 100.0)).collect();
    let total_cpu: f64 = cpu.iter().flatten().map(Duration::as_secs_f64).sum();
    let egress = match (&a.egress, &b.egress) {
        (Some(x), Some(y)) => {
            let packets: u64 = x.iter().zip(y).map(|(p, q)| q.0.saturating_sub(p.0)).sum();
            let bytes: u64 = x.iter().zip(y).map(|(p, q)| q.1.saturating_sub(p.1)).sum();
            Some((packets, bytes))
        }
        _ => None,
    };
    let egress_by_worker: Vec<f64> = match (&a.egress, &b.egress) {
        (Some(x), Some(y)) => x.iter().zip(y).map(|(p, q)| q.0.saturating_sub(p.0) as f64 / wall).collect(),
        _ => Vec::new(),
    };
    let received_rtp = cb.rtp_received - ca.rtp_received;
    let (packets, bytes) = egress.unwrap_or_else(|| {
        // At the subscribers: what they read, and what the kernel dropped at the sinks' sockets
        // (billed at the read packets' average size).
        let dropped = b.snapshot.udp_rcvbuf_errors.saturating_sub(a.snapshot.udp_rcvbuf_errors);
        let read_bytes = cb.rtp_bytes_received - ca.rtp_bytes_received;
        let per_packet = read_bytes.checked_div(received_rtp).unwrap_or(0);
        (received_rtp + dropped, read_bytes + dropped * per_packet)
    });
    let expected = b.snapshot.expected.saturating_sub(a.snapshot.expected);
    let received = b.snapshot.received.saturating_sub(a.snapshot.received);
    let loss_percent =
        if expected == 0 { 0.0 } else { expected.saturating_sub(received) as f64 / expected as f64 * 100.0 };
    let latency = cb.latency.since(&ca.latency);
    let mut first: Vec<Duration> = cb.first_packet.get(first_from..).unwrap_or_default().to_vec();
    first.sort();
    let consumers = session.consumer_count();
    let rss: u64 = b.workers.iter().flatten().map(|w| w.rss_bytes).sum();
    StepFigures {
        level,
        peers: session.peers.len(),
        consumers,
        video_consumers: session.video_consumers(),
        window_s: wall,
        egress_packets_per_s: packets as f64 / wall,
        egress_mbit_per_s: bytes as f64 * 8.0 / wall / 1e6,
        egress_packets_per_s_by_worker: egress_by_worker,
        received_rtp_per_s: received_rtp as f64 / wall,
        worker_cpu_percent,
        worker_cpu_us_per_packet: (packets > 0 && total_cpu > 0.0).then(|| total_cpu * 1e6 / packets as f64),
        video_consumers_per_worker_core: (total_cpu > 0.0).then(|| session.video_consumers() as f64 * wall / total_cpu),
        loadgen_cpu_percent: b.snapshot.loop_cpu.saturating_sub(a.snapshot.loop_cpu).as_secs_f64() / wall * 100.0,
        loss_percent,
        latency_p50_ms: latency.quantile(0.5).map(ms),
        latency_p99_ms: latency.quantile(0.99).map(ms),
        latency_samples: latency.count(),
        first_packet_p50_ms: first.get(first.len() / 2).copied().map(ms),
        first_packet_max_ms: first.last().copied().map(ms),
        worker_rss_mb: rss as f64 / 1e6,
        worker_rss_per_consumer_kb: (consumers > 0)
            .then(|| rss.saturating_sub(baseline_rss) as f64 / 1e3 / consumers as f64),
        datagrams_per_read: (cb.datagrams_received - ca.datagrams_received) as f64
            / (cb.reads - ca.reads).max(1) as f64,
        nacks_sent: cb.nack_sent - ca.nack_sent,
        plis_sent: cb.pli_sent - ca.pli_sent,
        rtx_received: cb.rtx_received - ca.rtx_received,
        integrity_failures: (cb.decrypt_failures - ca.decrypt_failures) + (cb.corrupt - ca.corrupt),
        srtp_profile: b.snapshot.srtp_profile.clone(),
        worker_preemptions_per_s: a
            .workers
            .iter()
            .zip(&b.workers)
            .filter_map(|(x, y)| Some(y.as_ref()?.preemptions.saturating_sub(x.as_ref()?.preemptions)))
            .sum::<u64>() as f64
            / wall,
        load_average: proc_stat::load_average(),
        padding_received: cb.padding_received - ca.padding_received,
        twcc_feedback_sent: cb.twcc_feedback_sent - ca.twcc_feedback_sent,
        link_delivered: cb.link_delivered - ca.link_delivered,
        link_dropped: cb.link_dropped - ca.link_dropped,
        sinks: b.snapshot.sinks,
        tcp_closed: cb.tcp_closed,
        tcp_write_drops: cb.tcp_write_drops - ca.tcp_write_drops,
        flood: None,
        udp_rcvbuf_drops_per_s: b.snapshot.udp_rcvbuf_errors.saturating_sub(a.snapshot.udp_rcvbuf_errors) as f64 / wall,
        downlink: crate::downlink_figures::window(&a.snapshot, &b.snapshot, session),
    }
}
