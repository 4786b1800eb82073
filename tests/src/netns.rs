//! A network namespace joined to this one by a veth pair, for tests that put a browser behind a
//! link of their own (shaped with `tc`, filtered with nftables). Created by the test, removed when
//! dropped (deleting the namespace deletes the pair). Needs root and `ip` (Debian `iproute2`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub struct NetNs {
    pub name: String,
    /// The host end of the pair: what it sends towards the namespace leaves through this device
    /// (a `tc` qdisc on it shapes the namespace's downlink).
    pub host_dev: String,
    pub host_ip: String,
    pub ns_ip: String,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(args[0]).args(&args[1..]).status().with_context(|| format!("running {args:?}"))?;
    if !status.success() {
        bail!("{args:?} failed: {status}");
    }
    Ok(())
}

/// The effective uid is 0 (from `/proc/self/status`: `Uid: real effective saved fs`).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1)) == Some("0")
}

impl NetNs {
    /// A namespace `octo-<tag>-<pid>` with `10.<net>.0.2/24` inside and `10.<net>.0.1/24` here.
    pub fn create(tag: &str, net: u8) -> anyhow::Result<NetNs> {
        if !is_root() {
            bail!("network namespaces need root: run this test as root (CI does)");
        }
        if Command::new("ip").arg("-V").output().is_err() || Command::new("tc").arg("-V").output().is_err() {
            bail!("`ip` and `tc` are missing: apt-get install -y iproute2");
        }
        let pid = std::process::id();
        let name = format!("octo-{tag}-{pid}");
        let host_dev = format!("vh{net}-{}", pid % 100_000);
        let ns_dev = format!("vn{net}-{}", pid % 100_000);
        let (host_ip, ns_ip) = (format!("10.{net}.0.1"), format!("10.{net}.0.2"));
        run(&["ip", "netns", "add", &name])?;
        let ns = NetNs { name, host_dev, host_ip, ns_ip };
        run(&["ip", "link", "add", &ns.host_dev, "type", "veth", "peer", "name", &ns_dev])?;
        run(&["ip", "link", "set", &ns_dev, "netns", &ns.name])?;
        run(&["ip", "addr", "add", &format!("{}/24", ns.host_ip), "dev", &ns.host_dev])?;
        run(&["ip", "link", "set", &ns.host_dev, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", ns.name.as_str()];
            all.extend_from_slice(args);
            run(&all)
        };
        inside(&["ip", "addr", "add", &format!("{}/24", ns.ns_ip), "dev", &ns_dev])?;
        inside(&["ip", "link", "set", &ns_dev, "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A script that runs `program` inside the namespace with the arguments it is given (what a
    /// browser driver launches as its executable), written into `dir`.
    pub fn wrapper(&self, dir: &Path, program: &str) -> anyhow::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("in-{}", self.name));
        std::fs::write(&path, format!("#!/bin/sh\nexec ip netns exec {} {program} \"$@\"\n", self.name))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
        let _ =
            Command::new("ip").args(["link", "delete", &self.host_dev]).stderr(std::process::Stdio::null()).status();
    }
}
