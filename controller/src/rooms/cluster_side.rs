//! The rooms as the cluster's handler: what other nodes say is applied to the rooms open here, in
//! the order it arrived (one task, so that a member's "paused" never overtakes its "resumed"); their
//! requests for our media are served; after an outage the rooms are resynchronised.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use octo_ipc::{ConsumerRequest, DataConsumerRequest, Request};
use tokio::sync::mpsc;
use tracing::debug;

use super::copies::Origin;
use super::far_pipes::{FarKey, FarPipes};
use super::{Room, RoomError, Rooms};
use crate::cluster::wire::{NodeRecord, NodeRequest, NodeResponse, RoomEnvelope, RoomMessage};
use crate::cluster::{BoxFuture, Cluster, ClusterConfig, ClusterError, ClusterHandler};

/// Something from the cluster to apply to the rooms, in arrival order.
pub(super) enum RemoteWork {
    Message(RoomEnvelope),
    Nodes { alive: HashMap<String, NodeRecord>, gone: Vec<String> },
}

impl Rooms {
    /// Joins the cluster of `config`: from now on the rooms here are the cluster's rooms.
    pub fn join_cluster(self: &Arc<Self>, config: ClusterConfig) -> Result<Arc<Cluster>, ClusterError> {
        let handler: Weak<dyn ClusterHandler> = Arc::downgrade(self) as Weak<dyn ClusterHandler>;
        let cluster = Cluster::start(config, handler)?;
        let far_pipes = FarPipes::new(self.pool.clone(), cluster.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        if self.cluster.set(cluster.clone()).is_err()
            || self.far_pipes.set(far_pipes.clone()).is_err()
            || self.remote_work.set(tx).is_err()
        {
            return Err(ClusterError::Config("already in a cluster".into()));
        }
        tokio::spawn(apply_in_order(Arc::downgrade(self), rx));
        // A worker of ours that dies takes its pipe ends with it: forget them at once.
        let mut deaths = self.pool.subscribe_deaths();
        let (weak_pipes, weak_cluster) = (Arc::downgrade(&far_pipes), Arc::downgrade(&cluster));
        tokio::spawn(async move {
            while let Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) = deaths.recv().await {
                let (Some(pipes), Some(cluster)) = (weak_pipes.upgrade(), weak_cluster.upgrade()) else { return };
                pipes.sweep(&cluster.nodes()).await;
            }
        });
        Ok(cluster)
    }

    pub fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.get().cloned()
    }

    pub(super) fn far_pipes(&self) -> Option<Arc<FarPipes>> {
        self.far_pipes.get().cloned()
    }

    /// The open room `id`, if there is one here.
    fn open_room(&self, id: &str) -> Option<Arc<Room>> {
        self.lock().get(id).and_then(|c| c.get().cloned()).filter(|r| !r.is_closed())
    }

    fn open_rooms(&self) -> Vec<Arc<Room>> {
        self.lock().values().filter_map(|c| c.get().cloned()).filter(|r| !r.is_closed()).collect()
    }

    /// Members of this node's rooms that are on other nodes (for metrics).
    pub fn remote_peer_total(&self) -> usize {
        self.open_rooms().iter().map(|r| r.lock().remote.len()).sum()
    }

    /// Pipes to other nodes' workers, by local worker (for metrics).
    pub fn far_pipe_counts(&self) -> HashMap<usize, usize> {
        self.far_pipes().map(|p| p.count_by_worker()).unwrap_or_default()
    }

    async fn serve_request(&self, from: &str, request: NodeRequest) -> Result<NodeResponse, RoomError> {
        let far_pipes = self.far_pipes().ok_or_else(|| RoomError::Unavailable("not in a cluster".into()))?;
        match request {
            NodeRequest::OpenPipe { worker, worker_pid, far } => {
                Ok(NodeResponse::PipeOpened { end: far_pipes.accept(from, worker, worker_pid, &far).await? })
            }
            NodeRequest::PleaseOpenPipe { worker, worker_pid, far_worker, far_worker_pid } => {
                if self.pool.worker(worker).map(|w| w.pid) != Some(worker_pid) {
                    return Err(RoomError::Unavailable(format!(
                        "worker {worker} is not process {worker_pid} any more"
                    )));
                }
                let key = FarKey { local_worker: worker, node: from.to_owned(), far_worker, far_pid: far_worker_pid };
                far_pipes.get(&key).await?;
                Ok(NodeResponse::Done)
            }
            NodeRequest::PipeProducer { room, producer_id, far } => {
                let room = self.open_room(&room).ok_or_else(|| RoomError::NotFound(format!("room {room}")))?;
                room.serve_pipe(from, Origin::Producer(producer_id), &far).await
            }
            NodeRequest::PipeDataProducer { room, data_producer_id, far } => {
                let room = self.open_room(&room).ok_or_else(|| RoomError::NotFound(format!("room {room}")))?;
                room.serve_pipe(from, Origin::Data(data_producer_id), &far).await
            }
            NodeRequest::Unpipe { worker, consumers, data_consumers } => {
                let requests = (consumers.into_iter().map(|id| Request::Consumer(id, ConsumerRequest::Close)))
                    .chain(data_consumers.into_iter().map(|id| Request::DataConsumer(id, DataConsumerRequest::Close)));
                for request in requests {
                    if let Err(e) = self.pool.request(worker, request).await {
                        debug!(from, worker, "unpipe: {e}");
                    }
                }
                Ok(NodeResponse::Done)
            }
        }
    }
}

impl ClusterHandler for Rooms {
    fn on_room_message(&self, envelope: RoomEnvelope) {
        if let Some(tx) = self.remote_work.get() {
            let _ = tx.send(RemoteWork::Message(envelope));
        }
    }

    fn on_nodes(&self, alive: &HashMap<String, NodeRecord>, gone: &[String]) {
        if let Some(tx) = self.remote_work.get() {
            let _ = tx.send(RemoteWork::Nodes { alive: alive.clone(), gone: gone.to_vec() });
        }
    }

    fn serve(&self, from: String, request: NodeRequest) -> BoxFuture<'_, Result<NodeResponse, String>> {
        Box::pin(async move { self.serve_request(&from, request).await.map_err(|e| e.to_string()) })
    }

    fn resync(&self, settled: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(cluster) = self.cluster() else { return };
            let started = Instant::now();
            for room in self.open_rooms() {
                match cluster.read_members(room.id()).await {
                    Ok(members) if settled => room.resync_remote(members.others, Some(started)).await,
                    Ok(members) => {
                        room.publish_all(&members.own);
                        room.resync_remote(members.others, None).await;
                    }
                    Err(e) => debug!(room = room.id(), "resync: {e}"),
                }
            }
        })
    }

    fn node_record(&self) -> NodeRecord {
        let workers: Vec<Option<u32>> = (0..self.pool.len()).map(|i| self.pool.worker(i).map(|w| w.pid)).collect();
        let (id, epoch, address, public_url) = match self.cluster() {
            Some(c) => (c.node_id().to_owned(), c.epoch(), c.address(), c.public_url().map(str::to_owned)),
            None => (String::new(), 0, std::net::Ipv4Addr::UNSPECIFIED.into(), None),
        };
        NodeRecord {
            id,
            epoch,
            address,
            ready: !self.is_draining() && workers.iter().all(Option::is_some),
            peers: self.peer_total(),
            rooms: self.room_ids().len(),
            workers,
            public_url,
        }
    }
}

/// Applies the cluster's news to the rooms one at a time.
async fn apply_in_order(rooms: Weak<Rooms>, mut rx: mpsc::UnboundedReceiver<RemoteWork>) {
    while let Some(work) = rx.recv().await {
        let Some(rooms) = rooms.upgrade() else { return };
        match work {
            RemoteWork::Message(envelope) => {
                let Some(room) = rooms.open_room(&envelope.room) else { continue };
                match envelope.message {
                    RoomMessage::Member { record } => room.apply_member(record).await,
                    RoomMessage::Left { peer_id } => room.apply_left(&peer_id, &envelope.from).await,
                }
            }
            RemoteWork::Nodes { alive, gone } => {
                if let Some(pipes) = rooms.far_pipes() {
                    pipes.sweep(&alive).await;
                }
                for node in &gone {
                    for room in rooms.open_rooms() {
                        room.drop_node(node).await;
                    }
                }
            }
        }
    }
}
