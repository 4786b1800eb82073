//! One soak sample: the controller's and the workers' memory and descriptors from `/proc`, and
//! every object gauge of `/metrics` summed over the workers.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::http;
use crate::proc_stat;

/// The object gauges a closed room must bring back to zero, as `/metrics` names them.
pub const OBJECT_GAUGES: [&str; 8] = [
    "octo_rooms",
    "octo_peers",
    "octo_routers",
    "octo_transports",
    "octo_producers",
    "octo_consumers",
    "octo_data_producers",
    "octo_data_consumers",
];

/// A process's resident memory and open descriptors (summed over the processes, for workers).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Footprint {
    pub rss_bytes: u64,
    pub fds: u64,
}

impl Footprint {
    /// Of `pids` together; `None` if one is gone (a worker died).
    pub fn of(pids: &[u32]) -> Option<Self> {
        pids.iter().try_fold(Self::default(), |sum, &pid| {
            Some(Self {
                rss_bytes: sum.rss_bytes + proc_stat::process(pid)?.rss_bytes,
                fds: sum.fds + proc_stat::open_fds(pid)?,
            })
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the soak started.
    pub at_s: f64,
    pub controller: Footprint,
    pub workers: Footprint,
    /// [`OBJECT_GAUGES`]' values, in that order.
    pub objects: [u64; 8],
    /// Peers the soak has joined so far, and those in a room now.
    pub peers_joined: usize,
    pub peers_live: usize,
}

impl Sample {
    /// Reads the processes and the metrics endpoint now.
    pub fn take(
        at: Duration,
        controller: u32,
        workers: &[(usize, u32)],
        metrics: SocketAddr,
        peers: (usize, usize),
    ) -> anyhow::Result<Self> {
        let worker_pids: Vec<u32> = workers.iter().map(|w| w.1).collect();
        let text = http::get(metrics, "/metrics")?;
        let mut objects = [0; 8];
        for (value, name) in objects.iter_mut().zip(OBJECT_GAUGES) {
            for &(index, _) in workers {
                let n = http::metric(&text, name, index)
                    .ok_or_else(|| anyhow::anyhow!("/metrics has no {name} for worker {index}"))?;
                *value += n as u64;
            }
        }
        Ok(Self {
            at_s: at.as_secs_f64(),
            controller: Footprint::of(&[controller]).ok_or_else(|| anyhow::anyhow!("the controller is gone"))?,
            workers: Footprint::of(&worker_pids).ok_or_else(|| anyhow::anyhow!("a worker is gone"))?,
            objects,
            peers_joined: peers.0,
            peers_live: peers.1,
        })
    }

    /// The object gauges by name (without the `octo_` prefix).
    pub fn named_objects(&self) -> Vec<(&'static str, u64)> {
        OBJECT_GAUGES.iter().map(|n| n.trim_start_matches("octo_")).zip(self.objects).collect()
    }

    pub fn header() -> String {
        format!(
            "{:>7} {:>6} {:>6} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5}  {:>9} {:>5}  {:>9} {:>5}",
            "t(s)",
            "joined",
            "rooms",
            "peers",
            "trans",
            "prods",
            "cons",
            "dprod",
            "dcons",
            "rtrs",
            "ctl MiB",
            "fds",
            "wrk MiB",
            "fds"
        )
    }

    pub fn row(&self) -> String {
        let o = &self.objects;
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        format!(
            "{:>7.0} {:>6} {:>6} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5}  {:>9.1} {:>5}  {:>9.1} {:>5}",
            self.at_s,
            self.peers_joined,
            o[0],
            o[1],
            o[3],
            o[4],
            o[5],
            o[6],
            o[7],
            o[2],
            mib(self.controller.rss_bytes),
            self.controller.fds,
            mib(self.workers.rss_bytes),
            self.workers.fds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprint_of_this_process_and_of_none() {
        let me = Footprint::of(&[std::process::id()]).unwrap();
        assert!(me.rss_bytes > 0 && me.fds >= 3);
        let twice = Footprint::of(&[std::process::id(), std::process::id()]).unwrap();
        assert!(twice.rss_bytes >= me.rss_bytes);
        assert!(Footprint::of(&[std::process::id(), u32::MAX]).is_none(), "a gone process");
    }
}
