//! Copies of other nodes' producers (cluster mode): a producer of a member on another node is
//! piped onto this room's main router once, the first time a local peer consumes it, through the
//! pipe between the two nodes' workers (`far_pipes.rs`). The copy has the origin's id, so from then
//! on it is consumed (and spread onto other local workers) exactly like a local producer.
//!
//! The other half is here too: serving another node's request for one of our producers.
//!
//! Locking as in `room.rs`: the state lock is never held across an await.

use std::sync::Arc;

use octo_ipc::{ConsumerId, DataConsumerId, ProducerId, ProducerRequest, Request, Response, TransportRequest};
use tokio::sync::OnceCell;
use tracing::info;

use super::RoomError;
use super::copies::Origin;
use super::far_pipes::{FarKey, FarPipes, cluster_error};
use super::room::Room;
use crate::cluster::wire::{NodeRequest, NodeResponse, PipeEnd};

/// A copy here of another node's producer: what to tell that node when it is no longer needed.
#[derive(Debug, Clone)]
pub(super) struct FarCopy {
    node: String,
    far_worker: usize,
    feed: Feed,
}

/// The origin node's pipe consumer that feeds a copy.
#[derive(Debug, Clone, Copy)]
enum Feed {
    Media(ConsumerId),
    Data(DataConsumerId),
}

pub(super) type FarCell = Arc<OnceCell<FarCopy>>;

impl Room {
    fn far_pipes(&self) -> Result<Arc<FarPipes>, RoomError> {
        let rooms = self.rooms.upgrade().ok_or(RoomError::RoomClosed)?;
        rooms.far_pipes().ok_or_else(|| RoomError::Unavailable("not in a cluster".into()))
    }

    /// Makes sure `origin`, if another node's, has its copy on this room's main router.
    pub(super) async fn ensure_far_copy(&self, origin: Origin) -> Result<(), RoomError> {
        let owner = {
            let state = self.open()?;
            let owner = state.remote.values().find(|r| match origin {
                Origin::Producer(id) => r.record.producers.iter().any(|p| p.id == id),
                Origin::Data(id) => r.record.data_producers.iter().any(|d| d.id == id),
            });
            match owner {
                None => return Ok(()), // ours
                Some(r) => FarKey {
                    local_worker: self.worker,
                    node: r.record.node.clone(),
                    far_worker: r.record.worker,
                    far_pid: r.record.worker_pid,
                },
            }
        };
        if self.cluster().is_some_and(|c| !c.is_up()) {
            return Err(RoomError::Unavailable(
                "the cluster's Redis is unreachable: media from other nodes cannot be added until it is back".into(),
            ));
        }
        let cell = self.open()?.far_piped.entry(origin).or_default().clone();
        let made = cell.get_or_try_init(|| self.make_far_copy(origin, &owner)).await;
        if made.is_err() {
            super::spread::forget_cell(&mut self.lock().far_piped, &origin, &cell);
        }
        made.map(|_| ())
    }

    async fn make_far_copy(&self, origin: Origin, key: &FarKey) -> Result<FarCopy, RoomError> {
        let far_pipes = self.far_pipes()?;
        let pipe = far_pipes.get(key).await?;
        let cluster = far_pipes.cluster().clone();
        let (feed, produce) = match origin {
            Origin::Producer(producer_id) => {
                let request = NodeRequest::PipeProducer { room: self.id.clone(), producer_id, far: pipe.end.clone() };
                match cluster.request(&key.node, request).await {
                    Ok(NodeResponse::ProducerPiped { consumer_id, kind, rtp_parameters, paused }) => (
                        Feed::Media(consumer_id),
                        TransportRequest::ProduceFromPipe {
                            producer_id,
                            router_id: self.router_id,
                            kind,
                            rtp_parameters,
                            paused,
                        },
                    ),
                    other => return Err(cluster_error(other.err())),
                }
            }
            Origin::Data(data_producer_id) => {
                let request =
                    NodeRequest::PipeDataProducer { room: self.id.clone(), data_producer_id, far: pipe.end.clone() };
                match cluster.request(&key.node, request).await {
                    Ok(NodeResponse::DataProducerPiped {
                        data_consumer_id,
                        sctp_stream_parameters,
                        label,
                        protocol,
                    }) => (
                        Feed::Data(data_consumer_id),
                        TransportRequest::ProduceDataFromPipe {
                            data_producer_id,
                            router_id: self.router_id,
                            sctp_stream_parameters,
                            label,
                            protocol,
                        },
                    ),
                    other => return Err(cluster_error(other.err())),
                }
            }
        };
        let copy = FarCopy { node: key.node.clone(), far_worker: key.far_worker, feed };
        if let Err(e) = self.request(self.worker, Request::Transport(pipe.transport, produce)).await {
            self.unpipe(std::slice::from_ref(&copy)).await;
            return Err(e);
        }
        info!(room = self.id, ?origin, node = key.node, "piped from another node");
        // The origin paused, resumed or closed while this was under way: follow it now.
        let now = {
            let state = self.lock();
            match origin {
                Origin::Producer(id) => state.producer_paused(id).map(Some),
                Origin::Data(id) => {
                    state.remote.values().any(|r| r.record.data_producers.iter().any(|d| d.id == id)).then_some(None)
                }
            }
        };
        match now {
            None => {
                self.close_quietly(self.worker, origin.close_request()).await;
                self.unpipe(std::slice::from_ref(&copy)).await;
                return Err(RoomError::NotFound(format!("{origin:?}")));
            }
            Some(Some(paused)) => {
                let Origin::Producer(id) = origin else { unreachable!("only producers pause") };
                let request = if paused { ProducerRequest::Pause } else { ProducerRequest::Resume };
                self.close_quietly(self.worker, Request::Producer(id, request)).await;
            }
            Some(None) => {}
        }
        Ok(copy)
    }

    /// Pauses or resumes the copy here of another node's producer, and its copies on other workers.
    pub(super) async fn set_far_copy_paused(&self, producer_id: ProducerId, paused: bool) {
        let exists = self.lock().far_piped.get(&Origin::Producer(producer_id)).is_some_and(|c| c.get().is_some());
        if !exists {
            return;
        }
        let request = if paused { ProducerRequest::Pause } else { ProducerRequest::Resume };
        self.close_quietly(self.worker, Request::Producer(producer_id, request)).await;
        self.set_copies_paused(producer_id, paused).await;
    }

    /// Closes the copies here of `origins` (gone on their node): on the main router, on other
    /// workers, and the origin node's feeds.
    pub(super) async fn close_far_copies(&self, origins: &[Origin]) {
        let copies: Vec<(Origin, FarCopy)> = {
            let mut state = self.lock();
            origins
                .iter()
                .filter_map(|o| state.far_piped.remove(o).and_then(|c| c.get().cloned()).map(|c| (*o, c)))
                .collect()
        };
        self.close_copies(origins).await;
        for (origin, _) in &copies {
            self.close_quietly(self.worker, origin.close_request()).await;
        }
        let feeds: Vec<FarCopy> = copies.into_iter().map(|(_, c)| c).collect();
        self.unpipe(&feeds).await;
    }

    /// The room is closing: tells the origin nodes that every copy's feed is no longer needed
    /// (the copies themselves close with the router).
    pub(super) async fn release_far_copies(&self) {
        let copies: Vec<FarCopy> =
            std::mem::take(&mut self.lock().far_piped).into_values().filter_map(|c| c.get().cloned()).collect();
        self.unpipe(&copies).await;
    }

    /// Asks the origin nodes to close the pipe consumers feeding `copies` (best effort: a node
    /// that does not answer closes them when its pipe to us goes).
    async fn unpipe(&self, copies: &[FarCopy]) {
        let Some(cluster) = self.cluster() else { return };
        let mut by_node: std::collections::HashMap<(String, usize), (Vec<ConsumerId>, Vec<DataConsumerId>)> =
            Default::default();
        for copy in copies {
            let entry = by_node.entry((copy.node.clone(), copy.far_worker)).or_default();
            match copy.feed {
                Feed::Media(id) => entry.0.push(id),
                Feed::Data(id) => entry.1.push(id),
            }
        }
        for ((node, worker), (consumers, data_consumers)) in by_node {
            let request = NodeRequest::Unpipe { worker, consumers, data_consumers };
            if let Err(e) = cluster.request(&node, request).await {
                tracing::debug!(room = self.id, node, "unpipe not delivered: {e}");
            }
        }
    }

    /// Another node (`from`) asks for our producer or data producer `origin` across the pipe whose
    /// end on it is `far`: a pipe consumer on our end of that pipe.
    pub(super) async fn serve_pipe(
        &self,
        from: &str,
        origin: Origin,
        far: &PipeEnd,
    ) -> Result<NodeResponse, RoomError> {
        {
            let state = self.open()?;
            let ours = state.peers.iter().any(|p| match origin {
                Origin::Producer(id) => p.producer(id).is_some(),
                Origin::Data(id) => p.data_producers.iter().any(|d| d.id == id),
            });
            if !ours {
                return Err(RoomError::NotFound(format!("{origin:?} of a peer on this node")));
            }
        }
        let key = FarKey {
            local_worker: self.worker,
            node: from.to_owned(),
            far_worker: far.worker,
            far_pid: far.worker_pid,
        };
        let pipe =
            self.far_pipes()?.find_or_await(&key).await.ok_or_else(|| {
                RoomError::Unavailable(format!("no pipe open to node {from}'s worker {}", far.worker))
            })?;
        match origin {
            Origin::Producer(producer_id) => {
                let consumer_id = ConsumerId(rand::random());
                let request = TransportRequest::ConsumeToPipe { consumer_id, producer_id };
                match self.request(self.worker, Request::Transport(pipe.transport, request)).await? {
                    Response::PipeConsumerCreated(data) => Ok(NodeResponse::ProducerPiped {
                        consumer_id,
                        kind: data.kind,
                        rtp_parameters: data.rtp_parameters,
                        paused: data.producer_paused,
                    }),
                    _ => Err(RoomError::UnexpectedResponse),
                }
            }
            Origin::Data(data_producer_id) => {
                let data_consumer_id = DataConsumerId(rand::random());
                let request = TransportRequest::ConsumeDataToPipe { data_consumer_id, data_producer_id };
                match self.request(self.worker, Request::Transport(pipe.transport, request)).await? {
                    Response::DataConsumerCreated(data) => Ok(NodeResponse::DataProducerPiped {
                        data_consumer_id,
                        sctp_stream_parameters: data.sctp_stream_parameters,
                        label: data.label,
                        protocol: data.protocol,
                    }),
                    _ => Err(RoomError::UnexpectedResponse),
                }
            }
        }
    }
}
