//! Pipes to other nodes' workers (cluster mode): one per pair (a worker here, a worker there),
//! shared by every room, always SRTP-encrypted (they cross a network).
//!
//! Two nodes must never open the same pair at once — each would create an end for the other's
//! address, and a worker refuses a second pipe to an address it already pipes to. So the node
//! whose id sorts first opens every pipe between the two (`OpenPipe`: here is my end, make yours
//! and connect); the other asks it to (`PleaseOpenPipe`) and keeps the end it was given. The
//! opener's end is the SCTP client.
//!
//! A pipe is keyed by both workers' pids: when either process is replaced (or its node is gone),
//! `sweep` closes the end that is left.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use octo_ipc::{PipeTransportData, Request, Response, TransportId, TransportRequest, WorkerRequest};
use tokio::sync::OnceCell;
use tracing::{debug, info};

use super::RoomError;
use crate::cluster::wire::{NodeRecord, NodeRequest, NodeResponse, PipeEnd};
use crate::cluster::{Cluster, ClusterError};
use crate::worker_pool::WorkerPool;

/// A pair of workers: ours and another node's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FarKey {
    pub local_worker: usize,
    pub node: String,
    pub far_worker: usize,
    pub far_pid: u32,
}

/// Our end of a pipe to another node.
#[derive(Debug, Clone, PartialEq)]
pub struct FarPipe {
    pub transport: TransportId,
    pub local_pid: u32,
    /// Our end as the other node knows it.
    pub end: PipeEnd,
}

pub struct FarPipes {
    pool: Arc<WorkerPool>,
    cluster: Arc<Cluster>,
    /// The pipes this node opened.
    opened: Mutex<HashMap<FarKey, Arc<OnceCell<FarPipe>>>>,
    /// The pipes the other node opened to us.
    accepted: Mutex<HashMap<FarKey, FarPipe>>,
}

impl FarPipes {
    pub fn new(pool: Arc<WorkerPool>, cluster: Arc<Cluster>) -> Arc<FarPipes> {
        Arc::new(FarPipes { pool, cluster, opened: Mutex::default(), accepted: Mutex::default() })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Whether this node opens the pipes between it and `node`.
    fn opens_to(&self, node: &str) -> bool {
        self.cluster.node_id() < node
    }

    /// The pipe between our `local_worker` and `node`'s `far_worker` (process `far_pid`), opened
    /// on first use.
    pub async fn get(&self, key: &FarKey) -> Result<FarPipe, RoomError> {
        if let Some(pipe) = self.find(key) {
            return Ok(pipe);
        }
        if self.opens_to(&key.node) {
            let cell = self.lock_opened().entry(key.clone()).or_default().clone();
            let result = cell.get_or_try_init(|| self.open(key)).await.cloned();
            if result.is_err() {
                super::spread::forget_cell(&mut self.lock_opened(), key, &cell);
            }
            return result;
        }
        let local_pid = self.pid_of(key.local_worker).ok_or_else(|| down(key.local_worker))?;
        let request = NodeRequest::PleaseOpenPipe {
            worker: key.far_worker,
            worker_pid: key.far_pid,
            far_worker: key.local_worker,
            far_worker_pid: local_pid,
        };
        expect_done(self.cluster.request(&key.node, request).await)?;
        self.find(key).ok_or_else(|| RoomError::Unavailable(format!("node {} opened no pipe to us", key.node)))
    }

    /// The pipe of `key`, if it is open and our worker is still the process it was made on.
    pub fn find(&self, key: &FarKey) -> Option<FarPipe> {
        let current = |p: &FarPipe| self.pid_of(key.local_worker) == Some(p.local_pid);
        if let Some(pipe) = self.lock_opened().get(key).and_then(|c| c.get().cloned()) {
            return current(&pipe).then_some(pipe);
        }
        self.lock_accepted().get(key).cloned().filter(current)
    }

    /// The pipe of `key` as [`Self::find`] gives it, but if this node is opening that pipe right
    /// now, once the opening is done: the other node holds its end (and may use it, asking for a
    /// producer across) from the moment it answered our `OpenPipe`, while ours is still being
    /// connected.
    pub async fn find_or_await(&self, key: &FarKey) -> Option<FarPipe> {
        if let Some(pipe) = self.find(key) {
            return Some(pipe);
        }
        let cell = self.lock_opened().get(key).cloned()?;
        // Waits for an opening under way; with none, initialises nothing (and leaves the cell as it is).
        cell.get_or_try_init(|| async { Err::<FarPipe, ()>(()) }).await.ok()?;
        self.find(key)
    }

    /// Opens the pipe of `key` from our side: our end, the other node's (it connects to ours), then
    /// ours connected to it.
    async fn open(&self, key: &FarKey) -> Result<FarPipe, RoomError> {
        let (transport, local_pid, end) = self.create_end(key.local_worker).await?;
        let request = NodeRequest::OpenPipe { worker: key.far_worker, worker_pid: key.far_pid, far: end.clone() };
        let far = match self.cluster.request(&key.node, request).await {
            Ok(NodeResponse::PipeOpened { end }) => end,
            other => {
                self.close_end(key.local_worker, transport).await;
                return Err(cluster_error(other.err()));
            }
        };
        if let Err(e) = self.connect(key.local_worker, transport, &far, true).await {
            self.close_end(key.local_worker, transport).await;
            return Err(e);
        }
        info!(node = key.node, local = key.local_worker, far = key.far_worker, address = %far.address, "pipe to node opened");
        Ok(FarPipe { transport, local_pid, end })
    }

    /// Another node opens a pipe from its worker (described by `far`) to our `worker`: our end,
    /// connected to theirs. A pipe of the same pair accepted before is replaced.
    pub async fn accept(
        &self,
        from: &str,
        worker: usize,
        worker_pid: u32,
        far: &PipeEnd,
    ) -> Result<PipeEnd, RoomError> {
        if self.pid_of(worker) != Some(worker_pid) {
            return Err(RoomError::Unavailable(format!("worker {worker} is not process {worker_pid} any more")));
        }
        let key =
            FarKey { local_worker: worker, node: from.to_owned(), far_worker: far.worker, far_pid: far.worker_pid };
        let old = self.lock_accepted().remove(&key);
        if let Some(old) = old {
            self.close_end(worker, old.transport).await;
        }
        let (transport, local_pid, end) = self.create_end(worker).await?;
        if let Err(e) = self.connect(worker, transport, far, false).await {
            self.close_end(worker, transport).await;
            return Err(e);
        }
        info!(node = from, local = worker, far = far.worker, address = %far.address, "pipe from node accepted");
        self.lock_accepted().insert(key, FarPipe { transport, local_pid, end: end.clone() });
        Ok(end)
    }

    async fn create_end(&self, worker: usize) -> Result<(TransportId, u32, PipeEnd), RoomError> {
        let pid = self.pid_of(worker).ok_or_else(|| down(worker))?;
        let transport = TransportId(rand::random());
        let request = WorkerRequest::CreatePipeTransport { transport_id: transport, srtp: true };
        let data: PipeTransportData = match self.pool.request(worker, Request::Worker(request)).await? {
            Response::PipeTransportCreated(data) => data,
            _ => return Err(RoomError::UnexpectedResponse),
        };
        let address = SocketAddr::new(self.cluster.address(), data.local.port());
        Ok((transport, pid, PipeEnd { worker, worker_pid: pid, address, srtp: data.srtp_parameters }))
    }

    async fn connect(
        &self,
        worker: usize,
        transport: TransportId,
        far: &PipeEnd,
        opener: bool,
    ) -> Result<(), RoomError> {
        // Across hosts the address rule may not tell the ends apart: the opener is the client.
        let request = TransportRequest::ConnectPipe {
            remote: far.address,
            srtp_parameters: far.srtp.clone(),
            sctp_client: Some(opener),
        };
        self.pool.request(worker, Request::Transport(transport, request)).await?;
        Ok(())
    }

    async fn close_end(&self, worker: usize, transport: TransportId) {
        let request = Request::Transport(transport, TransportRequest::Close);
        if let Err(e) = self.pool.request(worker, request).await {
            debug!(worker, %transport, "pipe end close failed: {e}");
        }
    }

    /// Closes every pipe whose node is gone or whose far worker is another process now, and
    /// forgets those whose own worker died.
    pub async fn sweep(&self, alive: &HashMap<String, NodeRecord>) {
        let stale = |key: &FarKey, pipe: &FarPipe| {
            let far_current = alive
                .get(&key.node)
                .is_some_and(|n| n.workers.get(key.far_worker).copied().flatten() == Some(key.far_pid));
            let local_current = self.pid_of(key.local_worker) == Some(pipe.local_pid);
            !(far_current && local_current)
        };
        let mut dead: Vec<(FarKey, FarPipe)> = Vec::new();
        {
            let mut opened = self.lock_opened();
            let keys: Vec<FarKey> =
                opened.iter().filter(|(k, c)| c.get().is_some_and(|p| stale(k, p))).map(|(k, _)| k.clone()).collect();
            for key in keys {
                if let Some(pipe) = opened.remove(&key).and_then(|c| c.get().cloned()) {
                    dead.push((key, pipe));
                }
            }
        }
        {
            let mut accepted = self.lock_accepted();
            let keys: Vec<FarKey> = accepted.iter().filter(|(k, p)| stale(k, p)).map(|(k, _)| k.clone()).collect();
            for key in keys {
                if let Some(pipe) = accepted.remove(&key) {
                    dead.push((key, pipe));
                }
            }
        }
        for (key, pipe) in dead {
            info!(
                node = key.node,
                local = key.local_worker,
                far = key.far_worker,
                "pipe to node closed: an end is gone"
            );
            if self.pid_of(key.local_worker) == Some(pipe.local_pid) {
                self.close_end(key.local_worker, pipe.transport).await;
            }
        }
    }

    /// Pipes open to other nodes' workers, for metrics: (local worker, count).
    pub fn count_by_worker(&self) -> HashMap<usize, usize> {
        let mut counts = HashMap::new();
        for key in self.lock_opened().iter().filter(|(_, c)| c.get().is_some()).map(|(k, _)| k.local_worker) {
            *counts.entry(key).or_default() += 1;
        }
        for key in self.lock_accepted().keys() {
            *counts.entry(key.local_worker).or_default() += 1;
        }
        counts
    }

    fn pid_of(&self, worker: usize) -> Option<u32> {
        self.pool.worker(worker).map(|w| w.pid)
    }

    fn lock_opened(&self) -> MutexGuard<'_, HashMap<FarKey, Arc<OnceCell<FarPipe>>>> {
        self.opened.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_accepted(&self) -> MutexGuard<'_, HashMap<FarKey, FarPipe>> {
        self.accepted.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn down(worker: usize) -> RoomError {
    RoomError::Unavailable(format!("worker {worker} is down"))
}

/// A cluster failure as a room error: the other node or Redis is unavailable.
pub fn cluster_error(e: Option<ClusterError>) -> RoomError {
    match e {
        Some(e) => RoomError::Unavailable(e.to_string()),
        None => RoomError::UnexpectedResponse,
    }
}

fn expect_done(result: Result<NodeResponse, ClusterError>) -> Result<(), RoomError> {
    match result {
        Ok(NodeResponse::Done) => Ok(()),
        Ok(_) => Err(RoomError::UnexpectedResponse),
        Err(e) => Err(cluster_error(Some(e))),
    }
}
