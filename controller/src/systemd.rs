//! systemd integration without libsystemd: `sd_notify` readiness, watchdog pings and stopping,
//! sent as datagrams to `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The notify socket systemd gave this process, if any.
pub struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
}

impl Notifier {
    /// `None` when not started by systemd with `Type=notify` (no `NOTIFY_SOCKET`).
    pub fn from_env() -> io::Result<Option<Self>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(None) };
        let path = path.to_string_lossy().into_owned();
        let target = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(&path)?,
        };
        Ok(Some(Self { socket: UnixDatagram::unbound()?, target }))
    }

    pub fn notify(&self, state: &str) -> io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.target).map(|_| ())
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if it is meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
