//! A real TURN server for the connectivity tests: Debian's `coturn` (`turnserver`), started on a
//! free port of an address the test names, with the TURN REST API's shared secret (what Octo's
//! `--turn-secret` mints credentials for), in a directory of its own, stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const TURNSERVER: &str = "/usr/bin/turnserver";

pub struct Coturn {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Coturn {
    /// Listens (UDP and TCP) on `ip` and relays from it; credentials from `secret`.
    pub fn start(ip: &str, secret: &str) -> anyhow::Result<Coturn> {
        if !std::path::Path::new(TURNSERVER).is_file() {
            bail!("{TURNSERVER} is missing: install Debian's package coturn");
        }
        let port = TcpListener::bind(format!("{ip}:0"))?.local_addr()?.port();
        let addr: SocketAddr = format!("{ip}:{port}").parse()?;
        let dir = std::env::temp_dir().join(format!("octo-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Relay ports from a range of their own above the listening port, so two runs do not meet.
        let relay_min = 20_000 + (port % 20_000) / 100 * 100;
        let child = Command::new(TURNSERVER)
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--simple-log", "--log-file", "stdout"])
            .args(["--listening-ip", ip, "--relay-ip", ip, "--listening-port", &port.to_string()])
            .args(["--min-port", &relay_min.to_string(), "--max-port", &(relay_min + 99).to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", secret, "--realm", "octo.test"])
            .args(["--pidfile", &dir.join("turnserver.pid").to_string_lossy()])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting turnserver")?;
        let coturn = Coturn { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(coturn);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("turnserver did not listen on {addr} within 10 s")
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
