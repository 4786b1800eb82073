//! The scenarios: `meeting` (P publishers, everyone consumes everyone), `webinar` (1 publisher, N
//! subscribers), `rooms` (4-person meetings spread over the workers) and `ramp` (raise the load
//! until a limit is crossed; report the last good level).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use octo_ipc::Protocol;
use serde::Serialize;

use crate::flood::Flood;
use crate::janus::JanusTarget;
use crate::janus::server::{JanusOptions, JanusServer};
use crate::media::{LoopOptions, MediaLoop};
use crate::octo::{LaunchOptions, Octo};
use crate::raw_send::{self, RawSend};
use crate::report::{self, Report};
use crate::session::{DownlinkCaps, MediaOptions, Session};
use crate::{cluster, figures};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Meeting,
    Webinar,
    Rooms,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub url: Option<SocketAddr>,
    pub metrics_url: Option<SocketAddr>,
    pub octo_bin: Option<PathBuf>,
    pub workers: Option<usize>,
    /// More arguments for an Octo the load generator starts.
    pub octo_args: Vec<String>,
    pub media: MediaOptions,
    /// Which subscribers receive through a simulated bottleneck, and its rate.
    pub downlink_caps: DownlinkCaps,
    /// Time after setup before measuring (lets keyframe requests and NACKs settle).
    pub settle: Duration,
    pub window: Duration,
    pub decrypt_every: u64,
    pub raw_packets: u64,
    pub json: Option<PathBuf>,
    /// Pin the started Octo's workers (`--pin-workers`) and the media loop to CPUs of their own.
    pub pin: bool,
    /// Only every Nth subscriber reads its media once flowing (1: all).
    pub read_every: usize,
    /// Start a cluster of this many nodes and one Redis instead of one Octo (0: no cluster).
    pub cluster: usize,
    /// The server under load.
    pub target: Target,
    /// Count egress at the subscribers (datagrams received plus those the kernel dropped at the
    /// sinks' full sockets) instead of from Octo's metrics: the one count both servers share.
    pub egress_at_subscribers: bool,
    /// What the subscribers' receive transports run over (`--tcp`: ICE-TCP); publishers' are UDP.
    pub subscriber_transport: Protocol,
    /// Garbage datagrams per second at the worker's media port while each step is measured.
    pub flood_pps: Option<u64>,
}

/// Which SFU the load goes to.
#[derive(Debug, Clone)]
pub enum Target {
    Octo,
    /// Janus's VideoRoom: one it starts (`bin`) or one running at `url` (its WebSocket).
    Janus {
        url: Option<SocketAddr>,
        bin: PathBuf,
    },
}

/// How the load of a scenario grows to a level.
trait Load {
    fn grow(&mut self, session: &mut Session, level: usize) -> anyhow::Result<()>;
    /// Peers in the session once grown to `level`.
    fn peers_at(&self, level: usize) -> usize;
}

struct Webinar {
    publisher: Option<usize>,
    subscribers: usize,
}

impl Load for Webinar {
    fn grow(&mut self, session: &mut Session, level: usize) -> anyhow::Result<()> {
        let publisher = match self.publisher {
            Some(p) => p,
            None => {
                let p = session.join("webinar")?;
                session.publish(p, session_media(session))?;
                self.publisher = Some(p);
                p
            }
        };
        // The publisher is on the first node; viewers go round the nodes (all on it without a cluster).
        while self.subscribers < level {
            session
                .subscribe_all_on("webinar", &[publisher], self.subscribers)
                .with_context(|| format!("subscriber {}", self.subscribers))?;
            self.subscribers += 1;
        }
        Ok(())
    }

    fn peers_at(&self, level: usize) -> usize {
        level + 1
    }
}

/// `size` peers per room, each publishing and consuming every other peer of its room.
struct Rooms {
    size: usize,
    rooms: usize,
}

impl Load for Rooms {
    fn grow(&mut self, session: &mut Session, level: usize) -> anyhow::Result<()> {
        while self.rooms < level {
            let room = format!("room-{}", self.rooms);
            let media = session_media(session);
            let mut members = Vec::new();
            // In a cluster each room spans the nodes: its members go round them.
            for i in 0..self.size {
                let p = session.join_on(&room, self.rooms + i)?;
                session.publish(p, media)?;
                members.push(p);
            }
            for &p in &members {
                let others: Vec<usize> = members.iter().copied().filter(|&o| o != p).collect();
                let producers: Vec<_> = others.iter().flat_map(|&o| session.peers[o].producers.clone()).collect();
                session.consume_all(p, &producers)?;
            }
            self.rooms += 1;
        }
        Ok(())
    }

    fn peers_at(&self, level: usize) -> usize {
        level * self.size
    }
}

/// One meeting of `level` publishers, everyone consuming everyone: a newcomer consumes every member,
/// and every member consumes the newcomer, as when people join a call one by one.
struct Meeting {
    members: Vec<usize>,
}

impl Load for Meeting {
    fn grow(&mut self, session: &mut Session, level: usize) -> anyhow::Result<()> {
        let media = session_media(session);
        while self.members.len() < level {
            let newcomer = session.join_on("meeting", self.members.len())?;
            session.publish(newcomer, media)?;
            let mine = session.peers[newcomer].producers.clone();
            for &member in &self.members {
                for (id, kind) in session.peers[member].producers.clone() {
                    session.consume(newcomer, &id, kind)?;
                }
                for (id, kind) in &mine {
                    session.consume(member, id, *kind)?;
                }
            }
            self.members.push(newcomer);
        }
        Ok(())
    }

    fn peers_at(&self, level: usize) -> usize {
        level
    }
}

fn session_media(session: &Session) -> MediaOptions {
    session.media_options
}

/// Setting up a peer (signaling, ICE, DTLS) takes ~50 ms on this machine when a thousand others
/// are already sending.
const SETUP_PER_PEER: Duration = Duration::from_millis(50);

pub struct Ramp {
    pub start: usize,
    pub max: usize,
    pub max_time: Duration,
    /// A step whose added latency p99 is above this is not good.
    pub max_p99_ms: f64,
}

/// Runs `kind` at one level (`ramp: None`) or ramps it, prints the table and writes the JSON.
pub fn run(kind: Kind, level: usize, ramp: Option<Ramp>, options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    if options.subscriber_transport == Protocol::Tcp {
        anyhow::ensure!(matches!(options.target, Target::Octo), "--tcp: ICE-TCP subscribers are for Octo only");
        // A bottleneck drops datagrams at its queue; TCP never loses what it delivers, and a
        // slow TCP reader pushes back into the sender instead: not what the simulated link models.
        anyhow::ensure!(options.downlink_caps.kbps.is_empty(), "--tcp: subscribers over TCP cannot be capped");
    }
    let workers = options.workers.unwrap_or(if kind == Kind::Rooms { 2 } else { 1 });
    let launch = LaunchOptions {
        bin: options.octo_bin.clone(),
        workers,
        pin_workers: options.pin,
        extra_args: options.octo_args.clone(),
    };
    let janus = match &options.target {
        Target::Octo => None,
        Target::Janus { url: Some(url), .. } => Some(JanusServer::connect(*url)),
        Target::Janus { url: None, bin } => {
            // The same CPUs, and as many event loops, as Octo's pinned workers get.
            let cpus = if options.pin { (0..workers).collect() } else { Vec::new() };
            let server = JanusServer::launch(&JanusOptions { bin: bin.clone(), event_loops: workers, cpus })?;
            tracing::info!("janus {} on {} with {workers} event loop(s)", bin.display(), server.ws_addr);
            Some(server)
        }
    };
    let redis = if options.cluster > 0 { Some(cluster::Redis::start()?) } else { None };
    let nodes: Vec<Octo> = match (&redis, options.url, &janus) {
        (_, _, Some(_)) => Vec::new(),
        (Some(redis), _, None) => cluster::launch_nodes(options.cluster, redis, &launch)?,
        (None, Some(addr), None) => vec![Octo::connect(addr, options.metrics_url)],
        (None, None, None) => vec![Octo::launch(&launch)?],
    };
    let external = options.url.is_some() || matches!(options.target, Target::Janus { url: Some(_), .. });
    // Workers pinned to the first CPUs leave the next one to the media loop, if there is one.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loop_cpu = (options.pin && !external && redis.is_none() && workers < cpus).then_some(workers);
    let node_workers: Vec<Vec<(usize, u32)>> = match &janus {
        // Every thread of the Janus process is billed, as every worker process of Octo's is.
        Some(j) => vec![j.pid().map(|pid| (0, pid)).into_iter().collect()],
        None => nodes.iter().map(Octo::worker_pids).collect::<anyhow::Result<_>>()?,
    };
    let worker_pids: Vec<(usize, u32)> = node_workers.iter().flatten().copied().collect();
    anyhow::ensure!(janus.is_some() || node_workers.iter().all(|w| !w.is_empty()), "an Octo has no live worker");
    let baseline_rss: u64 =
        worker_pids.iter().filter_map(|(_, pid)| crate::proc_stat::process(*pid)).map(|s| s.rss_bytes).sum();
    let setup = Duration::from_secs(120) + SETUP_PER_PEER * level as u32;
    let bound = ramp.as_ref().map_or(setup, |r| r.max_time + Duration::from_secs(60)) + options.window + options.settle;
    let media =
        MediaLoop::start(LoopOptions { decrypt_every: options.decrypt_every, max_duration: bound, cpu: loop_cpu })?;
    let first_addr = nodes.first().map_or_else(|| janus.as_ref().map(|j| j.ws_addr).expect("a server"), |n| n.addr);
    let mut session = Session::new(first_addr, media, options.media);
    session.nodes = if nodes.is_empty() { vec![first_addr] } else { nodes.iter().map(|n| n.addr).collect() };
    session.janus = janus.as_ref().map(|j| JanusTarget::new(j.ws_addr));
    session.downlink_caps = options.downlink_caps.clone();
    session.read_every = options.read_every;
    session.subscriber_transport = options.subscriber_transport;
    let with_pids: Vec<figures::Billed<'_>> = if janus.is_some() || options.egress_at_subscribers {
        node_workers.iter().map(|w| (None, &w[..])).collect()
    } else {
        nodes.iter().zip(&node_workers).map(|(n, w)| (Some(n), &w[..])).collect()
    };
    let cluster_nodes: Vec<(&Octo, &[(usize, u32)])> =
        if redis.is_some() { nodes.iter().zip(&node_workers).map(|(n, w)| (n, &w[..])).collect() } else { Vec::new() };
    let before_setup = redis.as_ref().map(|r| cluster::edge(&cluster_nodes, r));
    let mut cluster_report = None;
    let mut load: Box<dyn Load> = match kind {
        Kind::Webinar => Box::new(Webinar { publisher: None, subscribers: 0 }),
        Kind::Rooms => Box::new(Rooms { size: 4, rooms: 0 }),
        Kind::Meeting if janus.is_some() => anyhow::bail!("the Janus target runs `webinar` and `rooms`"),
        Kind::Meeting => Box::new(Meeting { members: Vec::new() }),
    };
    let levels = match &ramp {
        Some(r) => ramp_levels(r.start, r.max),
        None => vec![level],
    };
    let max_p99_ms = ramp.as_ref().map_or(figures::MAX_P99_MS, |r| r.max_p99_ms);
    let mut steps = Vec::new();
    let mut stop_reason = None;
    for level in levels {
        // A step must be set up (~50 ms a subscriber here) and measured inside the time bound.
        let setup = SETUP_PER_PEER * load.peers_at(level).saturating_sub(session.peers.len()) as u32;
        if let Some(r) = &ramp
            && started.elapsed() + setup + options.settle + options.window > r.max_time
        {
            stop_reason = Some(format!("time bound ({:?}) reached before level {level}", r.max_time));
            break;
        }
        let first_from = session.media.snapshot()?.counters.first_packet.len();
        tracing::info!(level, "growing");
        if let Err(e) = load.grow(&mut session, level) {
            stop_reason = Some(format!("setup failed at level {level}: {e:#}"));
            break;
        }
        if !session.wait_flowing(Duration::from_secs(20))? {
            stop_reason = Some(format!("level {level}: not every consumer received media within 20 s"));
            break;
        }
        session.idle(options.settle);
        let cluster_a = redis.as_ref().map(|r| cluster::edge(&cluster_nodes, r));
        let flood = match (options.flood_pps, session.worker_addrs.first()) {
            (Some(pps), Some(&target)) => {
                let drops = worker_drops(&nodes, &node_workers);
                Some((Flood::start(target, pps, options.window + Duration::from_secs(5))?, drops))
            }
            _ => None,
        };
        let a = figures::edge_of(&session, &with_pids)?;
        session.idle(options.window);
        let b = figures::edge_of(&session, &with_pids)?;
        let flood = flood.map(|(flood, before)| {
            let mut f = flood.stop();
            f.worker_drops = before.zip(worker_drops(&nodes, &node_workers)).map(|(a, b)| b.saturating_sub(a));
            f
        });
        let cluster_b = redis.as_ref().map(|r| cluster::edge(&cluster_nodes, r));
        let mut step = figures::window(&a, &b, level, &session, baseline_rss, first_from);
        step.flood = flood;
        report::print_step(&step);
        if let (Some(before), Some(ca), Some(cb)) = (&before_setup, &cluster_a, &cluster_b) {
            let figures = cluster::figures(before, ca, cb, step.window_s, session.peers.len());
            let by_node = cluster::by_node(&a, &b, &node_workers, &session, level, first_from);
            report::print_cluster(&by_node, &figures);
            cluster_report = Some(report::ClusterReport { nodes: by_node, figures });
        }
        let violation = step.violation(max_p99_ms);
        steps.push(step);
        if let Some(v) = violation {
            stop_reason = Some(format!("level {level}: {v}"));
            break;
        }
    }
    // The raw baseline is UDP datagrams to the subscribers' UDP sockets, which TCP ones lack.
    let raw = (options.subscriber_transport == Protocol::Udp).then(|| measure_raw(&session, options)).flatten();
    let last_good = steps.iter().rev().find(|s| s.violation(max_p99_ms).is_none()).cloned();
    let mut report = Report::new(kind, ramp.is_some(), worker_pids.len(), steps, last_good, stop_reason, raw, started);
    report.cluster = cluster_report;
    report.server_config = janus.as_ref().map(|j| j.config.clone());
    report.subscriber_transport = options.subscriber_transport;
    if options.subscriber_transport == Protocol::Tcp {
        report.worker_ice_tcp_connections =
            nodes.iter().zip(&node_workers).map(|(n, w)| n.metric_sum("octo_ice_tcp_connections", w)).sum();
    }
    report::print(&report);
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn measure_raw(session: &Session, options: &Options) -> Option<RawSend> {
    let receivers = session.receivers();
    match raw_send::measure(&receivers, options.raw_packets, Duration::from_secs(5)) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("raw sendmmsg baseline: {e}");
            None
        }
    }
}

/// Levels from `start` growing by ~40 % (rounded to 50 above 100), up to `max`.
fn ramp_levels(start: usize, max: usize) -> Vec<usize> {
    let mut levels = vec![start.max(1)];
    while let Some(&last) = levels.last() {
        let mut next = (last * 7).div_ceil(5).max(last + 1);
        if next > 100 {
            next = next.div_ceil(50) * 50;
        }
        if next > max {
            break;
        }
        levels.push(next);
    }
    levels
}

/// `octo_packets_dropped_total` over every worker of every node, if their metrics answer.
fn worker_drops(nodes: &[Octo], node_workers: &[Vec<(usize, u32)>]) -> Option<u64> {
    nodes.iter().zip(node_workers).map(|(n, w)| n.metric_sum("octo_packets_dropped_total", w)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_levels_grow_and_stop_at_max() {
        assert_eq!(ramp_levels(100, 600), vec![100, 150, 250, 350, 500]);
        assert_eq!(ramp_levels(2, 6), vec![2, 3, 5]);
    }
}
