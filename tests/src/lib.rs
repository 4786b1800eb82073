//! Helpers shared by the integration tests: locating the built binaries, running `octo` as a real
//! process, a tiny HTTP client, and reading `/proc`; [`interop`] drives a real worker with str0m peers.

pub mod coturn;
pub mod interop;
pub mod netns;
pub mod node;
pub mod redis;
pub mod socketio;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// `target/<profile>/`, where cargo put the binaries this test was built with.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent().and_then(|deps| deps.parent()).expect("target dir").to_path_buf()
}

/// A binary of the workspace. The README's test command builds them before running tests.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(path.is_file(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `octo` process with its log captured.
pub struct Octo {
    child: Child,
    pub addr: SocketAddr,
    /// Serving HTTPS (`--tls-cert`/`--tls-key` or `--self-signed`).
    pub https: bool,
    /// Where `/metrics` is served (tests get a free port unless they pass `--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Octo {
    /// Starts `octo --listen 127.0.0.1:0 <args>` (unless `args` name a `--listen`) and waits until it
    /// listens.
    pub fn start(args: &[&str]) -> anyhow::Result<Octo> {
        let metrics_default: &[&str] =
            if args.contains(&"--metrics-listen") { &[] } else { &["--metrics-listen", "127.0.0.1:0"] };
        let listen_default: &[&str] = if args.contains(&"--listen") { &[] } else { &["--listen", "127.0.0.1:0"] };
        let mut child = Command::new(bin("octo"))
            .args(listen_default)
            .args(metrics_default)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning octo")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let metrics_addr = Arc::new(Mutex::new(None));
        let metrics_sink = metrics_addr.clone();
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[octo] {line}");
                if let Some(rest) = line.split("metrics on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default();
                    *metrics_sink.lock().unwrap() = addr.parse::<SocketAddr>().ok();
                }
                // Text or JSON lines: the URL ends at a space or a closing quote.
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap_or_default();
                    if let Some((scheme, addr)) = url.split_once("://") {
                        let _ = addr_tx.send((scheme == "https", addr.to_owned()));
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (https, addr) = match addr_rx.recv_timeout(Duration::from_secs(20)) {
            Ok((https, a)) => (https, a.parse().context("listen address")?),
            Err(_) => {
                let _ = child.kill();
                bail!("octo did not start listening; status {:?}", child.wait());
            }
        };
        let metrics_addr = *metrics_addr.lock().unwrap();
        Ok(Octo { child, addr, https, metrics_addr, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts a node of the cluster whose Redis is `redis_url`: one worker, on loopback.
    pub fn start_node(redis_url: &str, node_id: &str, extra: &[&str]) -> anyhow::Result<Octo> {
        let mut args =
            vec!["--cluster-redis", redis_url, "--node-id", node_id, "--node-address", "127.0.0.1", "--workers", "1"];
        args.extend_from_slice(extra);
        Octo::start(&args)
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// Every log line so far that contains `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// GET `path`; returns the status code and the body parsed as JSON.
    pub fn get_json(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let (status, body) = http_get(self.addr, path)?;
        Ok((status, serde_json::from_str(&body).with_context(|| format!("body of {path}: {body:?}"))?))
    }

    /// The worker pids per slot from `/workers` (None for a slot that is down).
    pub fn worker_pids(&self) -> anyhow::Result<Vec<Option<u32>>> {
        let (_, workers) = self.get_json("/workers")?;
        Ok(workers
            .as_array()
            .context("/workers is not an array")?
            .iter()
            .map(|w| w["pid"].as_u64().map(|p| p as u32))
            .collect())
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig).expect("kill");
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let status = wait_for(timeout, || self.child.try_wait().ok().flatten());
        match status {
            Some(s) => Ok(s),
            None => {
                let _ = self.child.kill();
                bail!("octo did not exit within {timeout:?}")
            }
        }
    }
}

impl Drop for Octo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on its own connection: the status and the (de-chunked) body.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    Ok(octo_loadgen::http::request(addr, "GET", path, "", Duration::from_secs(10))?)
}

/// Direct children of `pid`, from `/proc/<pid>/task/*/children`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The command name of a process, if it exists.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_owned())
}

/// A process that exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// A field of `/proc/<pid>/status`, such as `Cpus_allowed_list`.
pub fn proc_status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_owned()))
}

/// Expands a CPU list such as `0-2,5` into numbers.
pub fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}
