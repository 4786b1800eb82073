//! Pipe transports between workers: one per unordered pair of workers, shared by every room.
//!
//! A pipe carries the piped producers of any router of its two workers, so it belongs to no room:
//! it is created the first time a room needs the pair and kept until one of its two worker
//! processes dies. Each end remembers the pid it was created on, so a pipe whose worker was
//! replaced is never handed out (even before the death is processed) and its surviving end is
//! closed — the survivor would otherwise still own the far address and refuse the fresh pipe.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use octo_ipc::{PipeTransportData, Request, Response, TransportId, TransportRequest, WorkerRequest};
use tokio::sync::OnceCell;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};

use super::RoomError;
use crate::worker_pool::WorkerPool;

/// One end of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct End {
    worker: usize,
    pid: u32,
    transport: TransportId,
}

/// A connected pipe between two workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipe {
    ends: [End; 2],
}

impl Pipe {
    /// The pipe transport on `worker` (one of the pair).
    pub fn end_on(&self, worker: usize) -> TransportId {
        self.ends.iter().find(|e| e.worker == worker).map_or(self.ends[0].transport, |e| e.transport)
    }
}

type Cell = Arc<OnceCell<Pipe>>;

pub struct Pipes {
    pool: Arc<WorkerPool>,
    /// Encrypt what crosses pipes (off by default: both ends are on this host).
    srtp: bool,
    /// By (lower, higher) worker index. A cell per pair so that concurrent first uses create one.
    pairs: Mutex<HashMap<(usize, usize), Cell>>,
}

impl Pipes {
    pub fn new(pool: Arc<WorkerPool>, srtp: bool) -> Arc<Pipes> {
        let pipes = Arc::new(Pipes { pool: pool.clone(), srtp, pairs: Mutex::default() });
        tokio::spawn(forget_on_death(Arc::downgrade(&pipes), pool.subscribe_deaths()));
        pipes
    }

    /// The pipe between workers `a` and `b` (`a != b`), created and connected on first use.
    pub async fn get(&self, a: usize, b: usize) -> Result<Pipe, RoomError> {
        let key = (a.min(b), a.max(b));
        // A stale pipe found on the first round is dropped and the second creates a fresh one.
        for _ in 0..2 {
            let cell = self.lock().entry(key).or_default().clone();
            let pipe = *cell.get_or_try_init(|| self.create(key.0, key.1)).await?;
            if self.is_current(&pipe) {
                return Ok(pipe);
            }
            self.forget(key, &cell).await;
        }
        Err(RoomError::Unavailable(format!("workers {a} and {b} keep restarting")))
    }

    /// Drops every pipe one of whose workers is no longer the process it was created on, and closes
    /// its ends on the workers that remain.
    pub async fn forget_stale(&self) {
        let stale: Vec<((usize, usize), Cell)> = self
            .lock()
            .iter()
            .filter(|(_, c)| c.get().is_some_and(|p| !self.is_current(p)))
            .map(|(k, c)| (*k, c.clone()))
            .collect();
        for (key, cell) in stale {
            self.forget(key, &cell).await;
        }
    }

    async fn forget(&self, key: (usize, usize), cell: &Cell) {
        {
            let mut pairs = self.lock();
            if !pairs.get(&key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
                return; // someone else forgot it already
            }
            pairs.remove(&key);
        }
        let Some(pipe) = cell.get() else { return };
        info!(workers = ?key, "pipe dropped: a worker of the pair died");
        for end in pipe.ends.iter().filter(|e| self.pid_of(e.worker) == Some(e.pid)) {
            self.close_end(*end).await;
        }
    }

    fn is_current(&self, pipe: &Pipe) -> bool {
        pipe.ends.iter().all(|e| self.pid_of(e.worker) == Some(e.pid))
    }

    fn pid_of(&self, worker: usize) -> Option<u32> {
        self.pool.worker(worker).map(|w| w.pid)
    }

    async fn create(&self, a: usize, b: usize) -> Result<Pipe, RoomError> {
        let (pid_a, pid_b) = match (self.pid_of(a), self.pid_of(b)) {
            (Some(x), Some(y)) => (x, y),
            _ => return Err(RoomError::Unavailable(format!("worker {a} or {b} is down"))),
        };
        let end_a = End { worker: a, pid: pid_a, transport: TransportId(rand::random()) };
        let end_b = End { worker: b, pid: pid_b, transport: TransportId(rand::random()) };
        let (made_a, made_b) = tokio::join!(self.create_end(end_a), self.create_end(end_b));
        let (data_a, data_b) = match (made_a, made_b) {
            (Ok(x), Ok(y)) => (x, y),
            (made_a, made_b) => {
                let error = match made_a {
                    Err(e) => e,
                    Ok(_) => made_b.expect_err("one end failed"),
                };
                self.close_end(end_a).await;
                self.close_end(end_b).await;
                return Err(error);
            }
        };
        // Crosswise: each end sends to the other's address, with the other's key.
        let connect = |end: End, far: &PipeTransportData| {
            let request = TransportRequest::ConnectPipe {
                remote: reachable(far.local),
                srtp_parameters: far.srtp_parameters.clone(),
                sctp_client: None,
            };
            self.pool.request(end.worker, Request::Transport(end.transport, request))
        };
        let (connected_a, connected_b) = tokio::join!(connect(end_a, &data_b), connect(end_b, &data_a));
        if let Err(e) = connected_a.and(connected_b) {
            self.close_end(end_a).await;
            self.close_end(end_b).await;
            return Err(e.into());
        }
        info!(workers = ?(a, b), local_a = %data_a.local, local_b = %data_b.local, srtp = self.srtp, "pipe created");
        Ok(Pipe { ends: [end_a, end_b] })
    }

    async fn create_end(&self, end: End) -> Result<PipeTransportData, RoomError> {
        let request = WorkerRequest::CreatePipeTransport { transport_id: end.transport, srtp: self.srtp };
        match self.pool.request(end.worker, Request::Worker(request)).await? {
            Response::PipeTransportCreated(data) => Ok(data),
            _ => Err(RoomError::UnexpectedResponse),
        }
    }

    async fn close_end(&self, end: End) {
        let request = Request::Transport(end.transport, TransportRequest::Close);
        if let Err(e) = self.pool.request(end.worker, request).await {
            debug!(worker = end.worker, transport = %end.transport, "pipe end close failed: {e}");
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(usize, usize), Cell>> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the far worker reaches a pipe end listening on `local`: both workers are on this host, so
/// a wildcard address becomes the loopback address of its family.
fn reachable(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port()),
        _ => local,
    }
}

/// Sweeps stale pipes whenever a worker dies (and after a missed death, too).
async fn forget_on_death(pipes: std::sync::Weak<Pipes>, mut deaths: tokio::sync::broadcast::Receiver<usize>) {
    loop {
        match deaths.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        let Some(pipes) = pipes.upgrade() else { return };
        pipes.forget_stale().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_reached_over_loopback_of_its_family() {
        let cases = [
            ("0.0.0.0:4000", "127.0.0.1:4000"),
            ("[::]:4001", "[::1]:4001"),
            ("127.0.0.1:4002", "127.0.0.1:4002"),
            ("192.0.2.7:4003", "192.0.2.7:4003"),
            ("[::1]:4004", "[::1]:4004"),
        ];
        for (local, want) in cases {
            assert_eq!(reachable(local.parse().unwrap()), want.parse::<SocketAddr>().unwrap(), "{local}");
        }
    }
}
