//! `--cluster N`: one `redis-server` and N `octo` nodes sharing it, started by the load generator
//! on loopback (issue #15), and the figures only a cluster has: what crosses the pipes between
//! nodes, and what Redis does (its CPU from `/proc`, the commands it served from `INFO stats`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::figures;
use crate::http;
use crate::octo::{LaunchOptions, Octo};
use crate::proc_stat;
use crate::session::Session;

const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A redis-server of our own: a free loopback port, its own directory, nothing kept on disk. The
/// cluster tests use it too, stopping it and bringing it back (empty) on the same port.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts one; fails with the Debian package's name if the binary is missing.
    pub fn start() -> anyhow::Result<Redis> {
        if !std::path::Path::new(REDIS_SERVER).is_file() {
            bail!("{REDIS_SERVER} is missing: install Debian's package redis-server");
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("octo-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut redis = Redis { child: None, port, dir };
        redis.spawn()?;
        Ok(redis)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        self.child = Some(child);
        for _ in 0..100 {
            if self.command("PING").is_ok_and(|r| r.starts_with("+PONG")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("redis-server did not answer on port {}", self.port)
    }

    /// `redis://127.0.0.1:PORT`, for `--cluster-redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (an outage, not a shutdown: nothing is saved).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// One inline command (`INFO stats`); the raw answer.
    pub fn command(&self, line: &str) -> anyhow::Result<String> {
        let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("{line}\r\n").as_bytes())?;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        // INFO's answer is one bulk string: read until its announced length is in.
        loop {
            let n = s.read(&mut buf)?;
            out.extend_from_slice(&buf[..n]);
            if n == 0 || complete(&out) {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Redis's own CPU time and the commands it has served so far.
    pub fn sample(&self) -> Option<RedisSample> {
        let info = self.command("INFO stats").ok()?;
        let commands = info.lines().find_map(|l| l.strip_prefix("total_commands_processed:"))?.trim().parse().ok()?;
        let cpu = proc_stat::process(self.child.as_ref()?.id())?.cpu;
        Some(RedisSample { commands, cpu })
    }
}

/// Whether a RESP answer is whole (a simple line, or a bulk string of its announced length).
fn complete(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    match text.strip_prefix('$').and_then(|t| t.split_once("\r\n")) {
        Some((len, rest)) => len.parse::<usize>().is_ok_and(|n| rest.len() >= n + 2),
        None => text.ends_with("\r\n"),
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RedisSample {
    pub commands: u64,
    pub cpu: Duration,
}

/// N nodes of one cluster, `node-1` … `node-N`, each started as the load generator starts Octo.
pub fn launch_nodes(n: usize, redis: &Redis, options: &LaunchOptions) -> anyhow::Result<Vec<Octo>> {
    (1..=n)
        .map(|i| {
            let mut extra = vec![
                "--cluster-redis".to_owned(),
                redis.url(),
                "--node-id".to_owned(),
                format!("node-{i}"),
                "--node-address".to_owned(),
                "127.0.0.1".to_owned(),
            ];
            extra.extend(options.extra_args.iter().cloned());
            Octo::launch(&LaunchOptions { extra_args: extra, pin_workers: false, ..options.clone() })
                .with_context(|| format!("node-{i}"))
        })
        .collect()
}

/// One node's pipe counters (all its workers): bytes sent to and received from other workers.
fn pipe_bytes(octo: &Octo, workers: &[(usize, u32)]) -> Option<(u64, u64)> {
    let text = http::get(octo.metrics_addr?, "/metrics").ok()?;
    let mut sum = (0, 0);
    for (i, _) in workers {
        sum.0 += http::metric(&text, "octo_pipe_bytes_sent_total", *i)? as u64;
        sum.1 += http::metric(&text, "octo_pipe_bytes_received_total", *i)? as u64;
    }
    Some(sum)
}

/// The cluster's state at one edge of a window.
pub struct ClusterEdge {
    pipes: Vec<Option<(u64, u64)>>,
    redis: Option<RedisSample>,
}

pub fn edge(nodes: &[(&Octo, &[(usize, u32)])], redis: &Redis) -> ClusterEdge {
    ClusterEdge { pipes: nodes.iter().map(|(o, w)| pipe_bytes(o, w)).collect(), redis: redis.sample() }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterFigures {
    /// Per node (node-1 first): pipe Mbit/s out of and into its workers.
    pub pipe_out_mbit_per_s: Vec<f64>,
    pub pipe_in_mbit_per_s: Vec<f64>,
    /// Redis during the window: its CPU (share of one core) and commands per second.
    pub redis_cpu_percent: Option<f64>,
    pub redis_commands_per_s: Option<f64>,
    /// Commands Redis served while the peers joined (setup), and per peer.
    pub redis_setup_commands: Option<u64>,
    pub redis_commands_per_join: Option<f64>,
}

/// What the cluster did between `a` and `b` (`wall` seconds), and during setup (`before_setup` to `a`).
pub fn figures(
    before_setup: &ClusterEdge,
    a: &ClusterEdge,
    b: &ClusterEdge,
    wall: f64,
    peers: usize,
) -> ClusterFigures {
    let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 * 8.0 / wall / 1e6;
    let (mut out, mut into) = (Vec::new(), Vec::new());
    for (x, y) in a.pipes.iter().zip(&b.pipes) {
        let (x, y) = (x.unwrap_or_default(), y.unwrap_or_default());
        out.push(rate(x.0, y.0));
        into.push(rate(x.1, y.1));
    }
    let window = a.redis.zip(b.redis);
    let setup = before_setup.redis.zip(a.redis).map(|(s, a)| a.commands.saturating_sub(s.commands));
    ClusterFigures {
        pipe_out_mbit_per_s: out,
        pipe_in_mbit_per_s: into,
        redis_cpu_percent: window.map(|(a, b)| b.cpu.saturating_sub(a.cpu).as_secs_f64() / wall * 100.0),
        redis_commands_per_s: window.map(|(a, b)| b.commands.saturating_sub(a.commands) as f64 / wall),
        redis_setup_commands: setup,
        redis_commands_per_join: setup.filter(|_| peers > 0).map(|c| c as f64 / peers as f64),
    }
}

/// One node's share of a window: its viewers and its workers' figures.
#[derive(Debug, Clone, Serialize)]
pub struct NodeFigures {
    pub node: String,
    /// Peers that joined through it, and of those the ones consuming.
    pub peers: usize,
    pub viewers: usize,
    pub egress_packets_per_s: f64,
    pub worker_cpu_percent: f64,
    pub worker_cpu_us_per_packet: Option<f64>,
}

/// Splits the window's edges by node (its workers are consecutive in the edges).
pub fn by_node(
    a: &figures::Edge,
    b: &figures::Edge,
    node_workers: &[Vec<(usize, u32)>],
    session: &Session,
    level: usize,
    first_from: usize,
) -> Vec<NodeFigures> {
    let mut start = 0;
    node_workers
        .iter()
        .enumerate()
        .map(|(i, workers)| {
            let range = start..start + workers.len();
            start = range.end;
            let step =
                figures::window(&a.workers_in(range.clone()), &b.workers_in(range), level, session, 0, first_from);
            let mine = session.peers.iter().filter(|p| p.node == i);
            NodeFigures {
                node: format!("node-{}", i + 1),
                peers: mine.clone().count(),
                viewers: mine.filter(|p| p.consumers > 0).count(),
                egress_packets_per_s: step.egress_packets_per_s,
                worker_cpu_percent: step.worker_cpu_percent.iter().sum(),
                worker_cpu_us_per_packet: step.worker_cpu_us_per_packet,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resp_answer_is_complete_once_its_bulk_length_is_in() {
        assert!(complete(b"+PONG\r\n"));
        assert!(!complete(b"$10\r\n12345"));
        assert!(complete(b"$5\r\n12345\r\n"));
        assert!(!complete(b"+PON"));
    }
}
