//! The Octo under test: started by the load generator (the `octo` next to its own executable) or
//! an already running one given by `--url`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::http;

pub struct Octo {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
}

/// What the load generator asks of an Octo it starts itself.
#[derive(Clone)]
pub struct LaunchOptions {
    pub bin: Option<PathBuf>,
    pub workers: usize,
    /// `--pin-workers`: worker i on the i-th CPU, so the load generator can have another.
    pub pin_workers: bool,
    /// Given to `octo` after the load generator's own arguments (so they win).
    pub extra_args: Vec<String>,
}

impl Octo {
    /// Starts `octo` on ephemeral loopback ports with limits raised for load (rooms of thousands,
    /// no request rate limit worth hitting), and waits until it listens.
    pub fn launch(options: &LaunchOptions) -> anyhow::Result<Self> {
        let bin = match &options.bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?.parent().context("exe dir")?.join("octo"),
        };
        if !bin.is_file() {
            bail!(
                "{} is missing: build Octo first (`cargo build --release`) or pass --octo-bin / --url",
                bin.display()
            );
        }
        let mut command = Command::new(&bin);
        command
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--rtc-listen-ip", "127.0.0.1"])
            .args(["--workers", &options.workers.to_string()])
            .args(["--max-peers-per-room", "100000", "--requests-per-second", "10000", "--request-burst", "10000"])
            .args(["--drain-timeout-ms", "500"])
            .args(if options.pin_workers { &["--pin-workers"][..] } else { &[] })
            .args(["--log", "info"])
            .args(&options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal, so
        // an interrupted load generator (Ctrl-C) does not leave Octo running.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("octo stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads the log to the end so octo never blocks on a full pipe; only the two
            // addresses are kept.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for (marker, is_metrics) in [("metrics on http://", true), ("listening on http://", false)] {
                    if let Some(rest) = line.split(marker).nth(1) {
                        let addr = rest.split(['/', ' ']).next().unwrap_or_default().to_owned();
                        let _ = tx.send((is_metrics, addr));
                    }
                }
                if line.contains("ERROR") || line.contains("WARN") {
                    tracing::debug!(target: "octo", "{line}");
                }
            }
        });
        let mut octo = Self { child: Some(child), addr: "127.0.0.1:0".parse()?, metrics_addr: None };
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok((true, addr)) => octo.metrics_addr = addr.parse().ok(),
                Ok((false, addr)) => {
                    octo.addr = addr.parse().context("octo's listen address")?;
                    return Ok(octo);
                }
                Err(_) => bail!("octo did not start listening within 30 s"),
            }
        }
    }

    /// The controller's pid, when the load generator started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn connect(addr: SocketAddr, metrics_addr: Option<SocketAddr>) -> Self {
        Self { child: None, addr, metrics_addr }
    }

    /// The pid of every live worker, by slot index (from `GET /workers`).
    pub fn worker_pids(&self) -> anyhow::Result<Vec<(usize, u32)>> {
        let body = http::get(self.addr, "/workers")?;
        let workers: serde_json::Value = serde_json::from_str(&body)?;
        Ok(workers
            .as_array()
            .context("/workers is not an array")?
            .iter()
            .filter_map(|w| Some((w["index"].as_u64()? as usize, w["pid"].as_u64()? as u32)))
            .collect())
    }

    /// `octo_packets_sent_total` and `octo_bytes_sent_total` per worker slot, when the metrics
    /// endpoint is known.
    pub fn egress(&self, workers: &[(usize, u32)]) -> Option<Vec<(u64, u64)>> {
        let text = http::get(self.metrics_addr?, "/metrics").ok()?;
        workers
            .iter()
            .map(|(i, _)| {
                let packets = http::metric(&text, "octo_packets_sent_total", *i)?;
                let bytes = http::metric(&text, "octo_bytes_sent_total", *i)?;
                Some((packets as u64, bytes as u64))
            })
            .collect()
    }

    /// The per-worker series `name` summed over `workers` (when the metrics endpoint is known).
    pub fn metric_sum(&self, name: &str, workers: &[(usize, u32)]) -> Option<u64> {
        let text = http::get(self.metrics_addr?, "/metrics").ok()?;
        workers.iter().map(|(i, _)| http::metric(&text, name, *i).map(|n| n as u64)).sum()
    }
}

impl Drop for Octo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets octo close its workers; it drains rooms for at most its drain timeout,
            // so kill it if it is not gone soon.
            let _ = nix_term(child.id());
            for _ in 0..50 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn nix_term(pid: u32) -> std::io::Result<()> {
    // SAFETY: kill has no memory preconditions; pid is our own child.
    if unsafe { libc::kill(pid as i32, libc::SIGTERM) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
