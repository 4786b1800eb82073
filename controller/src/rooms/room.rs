//! One room: its main router, the routers it spilled onto on other workers, and the peers in it.
//!
//! Every producer is on the main router; a peer's receiving transports (and so its consumers) are
//! on the worker `spill` chose for it, which gets piped copies of what the peer consumes (see
//! `spread.rs`). Each request goes to the worker that hosts its object.
//!
//! Locking: the state lock is never held across an await or while calling a peer's sink. An
//! operation checks ownership under the lock, releases it, asks the worker, and then commits under
//! the lock again. One peer's operations are serialised by its signaling session, so only other
//! peers (and notifications) run concurrently with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use octo_ipc::{
    ConsumerData, ConsumerId, ConsumerNotification, ConsumerRequest, DtlsParameters, IceParameters, MediaKind,
    Notification, ProducerId, ProducerRequest, Request, Response, RouterId, RouterRequest, RtpCapabilities,
    RtpParameters, RtpStreamStats, Target, TransportId, TransportRequest, TransportStats, WebRtcTransportData,
    WebRtcTransportOptions,
};
use tokio::sync::OnceCell;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info};

use super::copies::Origin;
use super::far_copies::FarCell;
use super::peer::{
    MAX_CONSUMERS, MAX_PRODUCERS, MAX_TRANSPORTS, OwnedConsumer, OwnedDataProducer, OwnedProducer, Peer,
};
use super::pipes::Pipes;
use super::remote::{RemotePeer, remote_producers};
use super::{Direction, EventSink, PeerId, RoomError, RoomEvent, Rooms};
use crate::worker_pool::WorkerPool;

pub struct Room {
    pub(super) id: String,
    /// The main router: every producer of the room is on it.
    pub(super) router_id: RouterId,
    /// The main router's worker.
    pub(super) worker: usize,
    rtp_capabilities: RtpCapabilities,
    pub(super) pool: Arc<WorkerPool>,
    pub(super) pipes: Arc<Pipes>,
    pub(super) rooms: Weak<Rooms>,
    state: Mutex<State>,
    pub(super) me: Weak<Room>,
}

/// A value made once on one worker process, with that process's pid: a value whose worker has been
/// replaced since is stale (the object died with it).
pub(super) type OnWorker<T> = Arc<OnceCell<(T, u32)>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) closed: bool,
    /// Bumped by every join, so that a grace timer started while the room was empty does nothing
    /// once someone has come in since.
    generation: u64,
    /// In join order.
    pub(super) peers: Vec<Peer>,
    /// The room's routers on workers other than the main one, by worker index.
    pub(super) routers: HashMap<usize, OnWorker<RouterId>>,
    /// Piped copies of the main router's producers and data producers, by (origin, worker): one
    /// per pair, made by the first consumer there that needs it.
    pub(super) piped: HashMap<(Origin, usize), OnWorker<()>>,
    /// Cluster: the room's members on other nodes, by peer id.
    pub(super) remote: HashMap<PeerId, RemotePeer>,
    /// Cluster: copies on the main router of other nodes' producers, made on first consume.
    pub(super) far_piped: HashMap<Origin, FarCell>,
}

impl State {
    pub(super) fn peer(&self, id: &str) -> Result<&Peer, RoomError> {
        self.peers.iter().find(|p| p.id == id).ok_or(RoomError::NotInRoom)
    }

    pub(super) fn peer_mut(&mut self, id: &str) -> Result<&mut Peer, RoomError> {
        self.peers.iter_mut().find(|p| p.id == id).ok_or(RoomError::NotInRoom)
    }

    /// The caller's transport, or why it is not: `Forbidden` if another peer owns it.
    fn own_transport(&self, peer: &str, id: TransportId) -> Result<Direction, RoomError> {
        if let Some(d) = self.peer(peer)?.transports.get(&id) {
            return Ok(*d);
        }
        if self.peers.iter().any(|p| p.transports.contains_key(&id)) {
            return Err(RoomError::Forbidden(format!("transport {id}")));
        }
        Err(RoomError::NotFound(format!("transport {id}")))
    }

    fn own_producer(&self, peer: &str, id: ProducerId) -> Result<&OwnedProducer, RoomError> {
        if let Some(p) = self.peer(peer)?.producer(id) {
            return Ok(p);
        }
        if self.peers.iter().any(|p| p.producer(id).is_some()) {
            return Err(RoomError::Forbidden(format!("producer {id}")));
        }
        Err(RoomError::NotFound(format!("producer {id}")))
    }

    fn own_consumer(&self, peer: &str, id: ConsumerId) -> Result<&OwnedConsumer, RoomError> {
        if let Some(c) = self.peer(peer)?.consumers.get(&id) {
            return Ok(c);
        }
        if self.peers.iter().any(|p| p.consumers.contains_key(&id)) {
            return Err(RoomError::Forbidden(format!("consumer {id}")));
        }
        Err(RoomError::NotFound(format!("consumer {id}")))
    }

    /// The transport to use: the named one (owned, of `direction`) or the peer's first of `direction`.
    fn pick_transport(
        &self,
        peer: &str,
        id: Option<TransportId>,
        direction: Direction,
    ) -> Result<TransportId, RoomError> {
        match id {
            Some(id) => {
                if self.own_transport(peer, id)? != direction {
                    let what = if direction == Direction::Send { "produce on" } else { "consume on" };
                    let other = if direction == Direction::Send { "recv" } else { "send" };
                    return Err(RoomError::WrongDirection(format!("cannot {what} {other} transport {id}")));
                }
                Ok(id)
            }
            None => self.peer(peer)?.first_transport(direction).ok_or_else(|| {
                RoomError::NotFound(format!(
                    "{} transport of this peer",
                    if direction == Direction::Send { "send" } else { "recv" }
                ))
            }),
        }
    }

    pub(super) fn sinks_except(&self, peer: &str) -> Vec<EventSink> {
        self.peers.iter().filter(|p| p.id != peer).map(|p| p.sink.clone()).collect()
    }

    /// The worker hosting the caller's transport `id` (owned: checked by the caller).
    fn transport_worker(&self, peer: &str, id: TransportId, main: usize) -> usize {
        let Ok(p) = self.peer(peer) else { return main };
        match p.transports.get(&id) {
            Some(Direction::Recv) => p.recv_worker.unwrap_or(main),
            _ => main,
        }
    }

    /// The worker of `peer`'s consumers (its recv transports).
    fn consumer_worker(&self, peer: &str, main: usize) -> usize {
        self.peer(peer).ok().and_then(|p| p.recv_worker).unwrap_or(main)
    }

    /// The producer `id` of any local peer in the room.
    pub(super) fn any_producer(&self, id: ProducerId) -> Option<&OwnedProducer> {
        self.peers.iter().find_map(|p| p.producer(id))
    }

    /// Whether producer `id` of any member, here or on another node, is paused (`None`: no such
    /// producer in the room).
    pub(super) fn producer_paused(&self, id: ProducerId) -> Option<bool> {
        self.any_producer(id)
            .map(|p| p.paused)
            .or_else(|| remote_producers(&self.remote).find(|p| p.id == id).map(|p| p.paused))
    }

    /// Whether any member, here or on another node, has data producer `id`.
    pub(super) fn has_data_producer(&self, id: octo_ipc::DataProducerId) -> bool {
        self.peers.iter().any(|p| p.data_producers.iter().any(|d| d.id == id))
            || self.remote.values().any(|r| r.record.data_producers.iter().any(|d| d.id == id))
    }

    /// Every member's (id, name, producers), local ones first, then the other nodes'.
    fn all_producers(&self) -> Vec<ProducerSummary> {
        let local = self.peers.iter().flat_map(|p| {
            p.producers.iter().map(|pr| ProducerSummary {
                producer_id: pr.id,
                peer_id: p.id.clone(),
                display_name: p.display_name.clone(),
                kind: pr.kind,
                app_data: pr.app_data.clone(),
            })
        });
        let remote = self.remote.values().flat_map(|r| {
            r.record.producers.iter().map(|pr| ProducerSummary {
                producer_id: pr.id,
                peer_id: r.record.peer_id.clone(),
                display_name: r.record.display_name.clone(),
                kind: pr.kind,
                app_data: pr.app_data.clone(),
            })
        });
        local.chain(remote).collect()
    }
}

/// What a joining peer learns about the room.
pub struct JoinSnapshot {
    pub rtp_capabilities: RtpCapabilities,
    pub peers: Vec<PeerSummary>,
    pub producers: Vec<ProducerSummary>,
}

pub struct PeerSummary {
    pub peer_id: PeerId,
    pub display_name: String,
    /// When its hand went up (Unix ms), if it is up.
    pub hand_raised_at: Option<u64>,
}

pub struct ProducerSummary {
    pub producer_id: ProducerId,
    pub peer_id: PeerId,
    pub display_name: String,
    pub kind: MediaKind,
    pub app_data: serde_json::Value,
}

/// The statistics a `getStats` returns, by the kind of object asked about.
pub enum StatsTarget {
    Transport(TransportStats),
    Producer(Vec<RtpStreamStats>),
    Consumer(Vec<RtpStreamStats>),
}

impl Room {
    pub(super) fn new(
        id: String,
        (router_id, worker): (RouterId, usize),
        rtp_capabilities: RtpCapabilities,
        pool: Arc<WorkerPool>,
        pipes: Arc<Pipes>,
        rooms: Weak<Rooms>,
    ) -> Arc<Room> {
        Arc::new_cyclic(|me| Room {
            id,
            router_id,
            worker,
            rtp_capabilities,
            pool,
            pipes,
            rooms,
            state: Mutex::default(),
            me: me.clone(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn router_id(&self) -> RouterId {
        self.router_id
    }

    /// The index of the worker hosting this room's main router (its producers).
    pub fn worker(&self) -> usize {
        self.worker
    }

    pub fn rtp_capabilities(&self) -> &RtpCapabilities {
        &self.rtp_capabilities
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Whether `peer` is (still) in the room: a peer whose receiving worker died is put out of a
    /// room that goes on.
    pub fn has_peer(&self, peer: &str) -> bool {
        self.lock().peer(peer).is_ok()
    }

    /// The room's media load by worker: (worker, producers, consumers) — producers count on the
    /// main worker, consumers on the worker hosting them. For placement.
    pub fn media_shares(&self) -> Vec<(usize, usize, usize)> {
        let state = self.lock();
        let mut shares = vec![(self.worker, 0, 0)];
        for peer in &state.peers {
            shares[0].1 += peer.producers.len();
            let worker = peer.recv_worker.unwrap_or(self.worker);
            match shares.iter_mut().find(|s| s.0 == worker) {
                Some(share) => share.2 += peer.consumers.len(),
                None => shares.push((worker, 0, peer.consumers.len())),
            }
        }
        shares
    }

    /// The cluster this node is in, if any.
    pub(super) fn cluster(&self) -> Option<Arc<crate::cluster::Cluster>> {
        self.rooms.upgrade().and_then(|r| r.cluster())
    }

    /// The room closes here: the other nodes' feeds of its copies are released and its channel left.
    pub(super) async fn leave_cluster(&self) {
        let Some(cluster) = self.cluster() else { return };
        self.release_far_copies().await;
        cluster.close_room(&self.id).await;
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open state, or `RoomClosed`.
    pub(super) fn open(&self) -> Result<MutexGuard<'_, State>, RoomError> {
        let state = self.lock();
        if state.closed { Err(RoomError::RoomClosed) } else { Ok(state) }
    }

    /// `request` to worker `worker` (the one hosting its object).
    pub(super) async fn request(&self, worker: usize, request: Request) -> Result<Response, RoomError> {
        Ok(self.pool.request(worker, request).await?)
    }

    /// Adds `peer`; the others get `PeerJoined`.
    pub fn join(&self, peer: Peer, max_peers: usize) -> Result<JoinSnapshot, RoomError> {
        let (snapshot, sinks, event) = {
            let mut state = self.open()?;
            if state.peers.iter().any(|p| p.id == peer.id) {
                return Err(RoomError::AlreadyInRoom);
            }
            if state.peers.len() + state.remote.len() >= max_peers {
                return Err(RoomError::RoomFull(max_peers));
            }
            let mut peers: Vec<PeerSummary> = state
                .peers
                .iter()
                .map(|p| PeerSummary {
                    peer_id: p.id.clone(),
                    display_name: p.display_name.clone(),
                    hand_raised_at: p.hand_raised_at,
                })
                .collect();
            peers.extend(state.remote.values().map(|r| PeerSummary {
                peer_id: r.record.peer_id.clone(),
                display_name: r.record.display_name.clone(),
                hand_raised_at: r.record.hand_raised_at,
            }));
            let snapshot = JoinSnapshot {
                rtp_capabilities: self.rtp_capabilities.clone(),
                peers,
                producers: state.all_producers(),
            };
            let event = RoomEvent::PeerJoined { peer_id: peer.id.clone(), display_name: peer.display_name.clone() };
            let sinks = state.sinks_except(&peer.id);
            info!(room = self.id, peer = peer.id, name = peer.display_name, "peer joined");
            let peer_id = peer.id.clone();
            state.peers.push(peer);
            state.generation = state.generation.wrapping_add(1);
            (snapshot, sinks, (event, peer_id))
        };
        emit(&sinks, &event.0);
        self.publish_member(&event.1);
        Ok(snapshot)
    }

    pub async fn create_webrtc_transport(
        &self,
        peer: &str,
        direction: Direction,
        sctp: Option<octo_ipc::NumSctpStreams>,
    ) -> Result<WebRtcTransportData, RoomError> {
        let recv_worker = {
            let state = self.open()?;
            let owner = state.peer(peer)?;
            if owner.transports.len() >= MAX_TRANSPORTS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_TRANSPORTS} transports per peer")));
            }
            owner.recv_worker
        };
        // Sending stays on the main router; receiving goes where the peer's first recv transport
        // went, chosen then.
        let worker = match (direction, recv_worker) {
            (Direction::Send, _) => self.worker,
            (Direction::Recv, Some(w)) => w,
            (Direction::Recv, None) => self.choose_recv_worker()?,
        };
        let router_id = self.router_on(worker).await?;
        let transport_id = TransportId(rand::random());
        // SCTP (DataChannels) when the client sent its sctpCapabilities.
        let options = WebRtcTransportOptions { sctp, ..WebRtcTransportOptions::default() };
        let response = self
            .request(worker, Request::Router(router_id, RouterRequest::CreateWebRtcTransport { transport_id, options }))
            .await?;
        let Response::WebRtcTransportCreated(data) = response else { return Err(RoomError::UnexpectedResponse) };
        let kept = match self.open() {
            Ok(mut state) => state
                .peer_mut(peer)
                .map(|p| {
                    p.transports.insert(transport_id, direction);
                    if direction == Direction::Recv && p.recv_worker.is_none() {
                        p.recv_worker = Some(worker);
                        if worker != self.worker {
                            info!(room = self.id, peer, worker, "peer receives on another worker");
                        }
                    }
                })
                .is_ok(),
            Err(_) => false,
        };
        if !kept {
            self.close_quietly(worker, Request::Transport(transport_id, TransportRequest::Close)).await;
            return Err(RoomError::RoomClosed);
        }
        Ok(data)
    }

    pub async fn connect_transport(
        &self,
        peer: &str,
        transport_id: TransportId,
        dtls_parameters: DtlsParameters,
    ) -> Result<(), RoomError> {
        let worker = self.own_transport_worker(peer, transport_id)?;
        self.request(worker, Request::Transport(transport_id, TransportRequest::Connect { dtls_parameters })).await?;
        Ok(())
    }

    pub async fn restart_ice(&self, peer: &str, transport_id: TransportId) -> Result<IceParameters, RoomError> {
        let worker = self.own_transport_worker(peer, transport_id)?;
        match self.request(worker, Request::Transport(transport_id, TransportRequest::RestartIce)).await? {
            Response::IceParameters(p) => Ok(p),
            _ => Err(RoomError::UnexpectedResponse),
        }
    }

    /// The worker of the caller's own transport `id`, or why it is not the caller's.
    fn own_transport_worker(&self, peer: &str, id: TransportId) -> Result<usize, RoomError> {
        let state = self.open()?;
        state.own_transport(peer, id)?;
        Ok(state.transport_worker(peer, id, self.worker))
    }

    /// A producer on the caller's send transport (`None`: its first one); the others get `NewProducer`.
    pub async fn produce(
        &self,
        peer: &str,
        transport_id: Option<TransportId>,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        app_data: serde_json::Value,
    ) -> Result<ProducerId, RoomError> {
        let transport_id = {
            let state = self.open()?;
            let t = state.pick_transport(peer, transport_id, Direction::Send)?;
            if state.peer(peer)?.producers.len() >= MAX_PRODUCERS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_PRODUCERS} producers per peer")));
            }
            t
        };
        let producer_id = ProducerId(rand::random());
        let request = TransportRequest::Produce { producer_id, kind, rtp_parameters, paused: false };
        self.request(self.worker, Request::Transport(transport_id, request)).await?;
        let committed = self.open().and_then(|mut state| {
            let owner = state.peer_mut(peer)?;
            owner.producers.push(OwnedProducer { id: producer_id, kind, app_data: app_data.clone(), paused: false });
            let event = RoomEvent::NewProducer {
                producer_id,
                peer_id: owner.id.clone(),
                display_name: owner.display_name.clone(),
                kind,
                app_data,
            };
            Ok((state.sinks_except(peer), event))
        });
        match committed {
            Ok((sinks, event)) => {
                debug!(room = self.id, peer, %producer_id, ?kind, "producer created");
                emit(&sinks, &event);
                self.publish_member(peer);
                Ok(producer_id)
            }
            Err(e) => {
                self.close_quietly(self.worker, Request::Producer(producer_id, ProducerRequest::Close)).await;
                Err(e)
            }
        }
    }

    /// A data producer (an SCTP stream the client sends on) on the caller's send transport; the
    /// others get `NewDataProducer`.
    pub async fn produce_data(
        &self,
        peer: &str,
        transport_id: TransportId,
        sctp_stream_parameters: octo_ipc::SctpStreamParameters,
        label: String,
        protocol: String,
        app_data: serde_json::Value,
    ) -> Result<octo_ipc::DataProducerId, RoomError> {
        {
            let state = self.open()?;
            state.pick_transport(peer, Some(transport_id), Direction::Send)?;
            if state.peer(peer)?.data_producers.len() >= MAX_PRODUCERS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_PRODUCERS} data producers per peer")));
            }
        }
        let data_producer_id = octo_ipc::DataProducerId(rand::random());
        let tap = (label.clone(), protocol.clone());
        let request = TransportRequest::ProduceData {
            data_producer_id,
            sctp_stream_parameters,
            label: label.clone(),
            protocol: protocol.clone(),
        };
        self.request(self.worker, Request::Transport(transport_id, request)).await?;
        let committed = self.open().and_then(|mut state| {
            let owner = state.peer_mut(peer)?;
            owner.data_producers.push(OwnedDataProducer {
                id: data_producer_id,
                label: label.clone(),
                protocol: protocol.clone(),
                app_data: app_data.clone(),
            });
            let event =
                RoomEvent::NewDataProducer { data_producer_id, peer_id: owner.id.clone(), label, protocol, app_data };
            Ok((state.sinks_except(peer), event))
        });
        match committed {
            Ok((sinks, event)) => {
                emit(&sinks, &event);
                self.publish_member(peer);
                self.tap_chat(peer, data_producer_id, &tap.0, &tap.1).await;
                Ok(data_producer_id)
            }
            Err(e) => {
                let request = Request::DataProducer(data_producer_id, octo_ipc::DataProducerRequest::Close);
                self.close_quietly(self.worker, request).await;
                Err(e)
            }
        }
    }

    /// A data consumer of another peer's data producer on the caller's recv transport.
    pub async fn consume_data(
        &self,
        peer: &str,
        transport_id: TransportId,
        data_producer_id: octo_ipc::DataProducerId,
    ) -> Result<octo_ipc::DataConsumerData, RoomError> {
        let worker = {
            let state = self.open()?;
            state.pick_transport(peer, Some(transport_id), Direction::Recv)?;
            if !state.has_data_producer(data_producer_id) {
                return Err(RoomError::NotFound(format!("data producer {data_producer_id}")));
            }
            if state.peer(peer)?.data_consumers.len() >= MAX_CONSUMERS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_CONSUMERS} data consumers per peer")));
            }
            state.consumer_worker(peer, self.worker)
        };
        // Every data producer is on the main router (another node's as a copy): on another worker,
        // its piped copy is consumed.
        self.ensure_far_copy(Origin::Data(data_producer_id)).await?;
        self.ensure_copy(Origin::Data(data_producer_id), worker).await?;
        let data_consumer_id = octo_ipc::DataConsumerId(rand::random());
        let request = TransportRequest::ConsumeData { data_consumer_id, data_producer_id };
        let data = match self.request(worker, Request::Transport(transport_id, request)).await? {
            Response::DataConsumerCreated(data) => data,
            _ => return Err(RoomError::UnexpectedResponse),
        };
        let kept = self.open().and_then(|mut state| {
            state.peer_mut(peer)?.data_consumers.push(data_consumer_id);
            Ok(())
        });
        if kept.is_err() {
            let request = Request::DataConsumer(data_consumer_id, octo_ipc::DataConsumerRequest::Close);
            self.close_quietly(worker, request).await;
            return Err(RoomError::RoomClosed);
        }
        Ok(data)
    }

    /// Every data producer of the other peers, for a late joiner.
    pub fn data_producers_except(&self, peer: &str) -> Result<Vec<serde_json::Value>, RoomError> {
        let state = self.open()?;
        let json = |peer_id: &str, d: (&octo_ipc::DataProducerId, &str, &str, &serde_json::Value)| {
            serde_json::json!({
                "dataProducerId": d.0.to_string(),
                "peerId": peer_id,
                "label": d.1,
                "protocol": d.2,
                "appData": d.3,
            })
        };
        let local =
            state.peers.iter().filter(|p| p.id != peer).flat_map(|p| {
                p.data_producers.iter().map(|d| json(&p.id, (&d.id, &d.label, &d.protocol, &d.app_data)))
            });
        let remote = state.remote.values().flat_map(|r| {
            r.record.data_producers.iter().map(|d| json(&r.record.peer_id, (&d.id, &d.label, &d.protocol, &d.app_data)))
        });
        Ok(local.chain(remote).collect())
    }

    /// A consumer of `producer_id` on the caller's recv transport (`None`: its first one).
    pub async fn consume(
        &self,
        peer: &str,
        transport_id: Option<TransportId>,
        producer_id: ProducerId,
        rtp_capabilities: RtpCapabilities,
        paused: bool,
    ) -> Result<ConsumerData, RoomError> {
        let (transport_id, worker) = {
            let state = self.open()?;
            let t = state.pick_transport(peer, transport_id, Direction::Recv)?;
            if state.producer_paused(producer_id).is_none() {
                return Err(RoomError::NotFound(format!("producer {producer_id}")));
            }
            if state.peer(peer)?.consumers.len() >= MAX_CONSUMERS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_CONSUMERS} consumers per peer")));
            }
            (t, state.consumer_worker(peer, self.worker))
        };
        // Another node's producer is copied onto the main router first; on another worker the
        // producer must be there too: its piped copy is what the consumer (and CanConsume) sees.
        self.ensure_far_copy(Origin::Producer(producer_id)).await?;
        self.ensure_copy(Origin::Producer(producer_id), worker).await?;
        let router_id = self.router_on(worker).await?;
        let can = self
            .request(
                worker,
                Request::Router(
                    router_id,
                    RouterRequest::CanConsume { producer_id, rtp_capabilities: rtp_capabilities.clone() },
                ),
            )
            .await?;
        if can != Response::CanConsume(true) {
            return Err(RoomError::CannotConsume(producer_id));
        }
        let consumer_id = ConsumerId(rand::random());
        // Subscribe before creating it: the producer may close the moment the consumer exists.
        let notifications = self.pool.subscribe(Target::Consumer(consumer_id));
        let request = TransportRequest::Consume { consumer_id, producer_id, rtp_capabilities, paused };
        let data = match self.request(worker, Request::Transport(transport_id, request)).await {
            Ok(Response::ConsumerCreated(data)) => data,
            Ok(_) => {
                self.pool.unsubscribe(Target::Consumer(consumer_id));
                return Err(RoomError::UnexpectedResponse);
            }
            Err(e) => {
                self.pool.unsubscribe(Target::Consumer(consumer_id));
                return Err(e);
            }
        };
        let kept = self
            .open()
            .and_then(|mut state| {
                state.peer_mut(peer)?.consumers.insert(consumer_id, OwnedConsumer { producer_id });
                Ok(())
            })
            .is_ok();
        if !kept {
            self.pool.unsubscribe(Target::Consumer(consumer_id));
            self.close_quietly(worker, Request::Consumer(consumer_id, ConsumerRequest::Close)).await;
            return Err(RoomError::RoomClosed);
        }
        tokio::spawn(watch_consumer(self.me.clone(), peer.to_owned(), consumer_id, notifications));
        Ok(data)
    }

    /// Pauses or resumes the caller's producer; the others get `ProducerPaused` / `ProducerResumed`
    /// and its consumers' owners `ConsumerPaused` / `ConsumerResumed` (from the worker).
    pub async fn set_producer_paused(
        &self,
        peer: &str,
        producer_id: ProducerId,
        paused: bool,
    ) -> Result<(), RoomError> {
        self.open()?.own_producer(peer, producer_id)?;
        let request = if paused { ProducerRequest::Pause } else { ProducerRequest::Resume };
        self.request(self.worker, Request::Producer(producer_id, request)).await?;
        let sinks = {
            let mut state = self.open()?;
            if let Some(p) = state.peer_mut(peer)?.producer_mut(producer_id) {
                p.paused = paused;
            }
            state.sinks_except(peer)
        };
        self.publish_member(peer);
        // The copies' consumers on other workers hear of it from their copy.
        self.set_copies_paused(producer_id, paused).await;
        let peer_id = peer.to_owned();
        let event = if paused {
            RoomEvent::ProducerPaused { producer_id, peer_id }
        } else {
            RoomEvent::ProducerResumed { producer_id, peer_id }
        };
        emit(&sinks, &event);
        Ok(())
    }

    /// Closes the caller's producer; the others get `ProducerClosed`, its consumers' owners
    /// `ConsumerClosed`.
    pub async fn close_producer(&self, peer: &str, producer_id: ProducerId) -> Result<(), RoomError> {
        self.open()?.own_producer(peer, producer_id)?;
        self.request(self.worker, Request::Producer(producer_id, ProducerRequest::Close)).await?;
        let sinks = {
            let mut state = self.open()?;
            state.peer_mut(peer)?.producers.retain(|p| p.id != producer_id);
            state.sinks_except(peer)
        };
        self.publish_member(peer);
        // The origin's pipe consumers closed with it; its copies on other workers must be closed.
        self.close_copies(&[Origin::Producer(producer_id)]).await;
        emit(&sinks, &RoomEvent::ProducerClosed { producer_id, peer_id: peer.to_owned() });
        Ok(())
    }

    pub async fn set_consumer_paused(
        &self,
        peer: &str,
        consumer_id: ConsumerId,
        paused: bool,
    ) -> Result<(), RoomError> {
        let worker = self.own_consumer_worker(peer, consumer_id)?;
        let request = if paused { ConsumerRequest::Pause } else { ConsumerRequest::Resume };
        self.request(worker, Request::Consumer(consumer_id, request)).await?;
        Ok(())
    }

    pub async fn request_key_frame(&self, peer: &str, consumer_id: ConsumerId) -> Result<(), RoomError> {
        let worker = self.own_consumer_worker(peer, consumer_id)?;
        self.request(worker, Request::Consumer(consumer_id, ConsumerRequest::RequestKeyFrame)).await?;
        Ok(())
    }

    /// The most the caller's simulcast consumer should forward (mediasoup's `setPreferredLayers`).
    pub async fn set_consumer_preferred_layers(
        &self,
        peer: &str,
        consumer_id: ConsumerId,
        layers: octo_ipc::ConsumerLayers,
    ) -> Result<(), RoomError> {
        let worker = self.own_consumer_worker(peer, consumer_id)?;
        self.request(worker, Request::Consumer(consumer_id, ConsumerRequest::SetPreferredLayers(layers))).await?;
        Ok(())
    }

    /// Who is served first when the caller's downlink is short.
    pub async fn set_consumer_priority(
        &self,
        peer: &str,
        consumer_id: ConsumerId,
        priority: u8,
    ) -> Result<(), RoomError> {
        let worker = self.own_consumer_worker(peer, consumer_id)?;
        self.request(worker, Request::Consumer(consumer_id, ConsumerRequest::SetPriority(priority))).await?;
        Ok(())
    }

    /// The worker of the caller's own consumer `id`, or why it is not the caller's.
    fn own_consumer_worker(&self, peer: &str, id: ConsumerId) -> Result<usize, RoomError> {
        let state = self.open()?;
        state.own_consumer(peer, id)?;
        Ok(state.consumer_worker(peer, self.worker))
    }

    /// Statistics of one of the caller's transports, producers or consumers, named by its raw id.
    pub async fn get_stats(&self, peer: &str, id: u128) -> Result<StatsTarget, RoomError> {
        let (worker, request) = {
            let state = self.open()?;
            let (t, p, c) = (TransportId(id), ProducerId(id), ConsumerId(id));
            if state.own_transport(peer, t).is_ok() {
                (state.transport_worker(peer, t, self.worker), Request::Transport(t, TransportRequest::GetStats))
            } else if state.own_producer(peer, p).is_ok() {
                (self.worker, Request::Producer(p, ProducerRequest::GetStats))
            } else if state.own_consumer(peer, c).is_ok() {
                (state.consumer_worker(peer, self.worker), Request::Consumer(c, ConsumerRequest::GetStats))
            } else {
                // Not the caller's: another peer's object is forbidden, anything else not found.
                let forbidden = [
                    state.own_transport(peer, t).err(),
                    state.own_producer(peer, p).err(),
                    state.own_consumer(peer, c).err(),
                ]
                .into_iter()
                .flatten()
                .find(|e| matches!(e, RoomError::Forbidden(_)));
                return Err(forbidden.unwrap_or_else(|| RoomError::NotFound(format!("object {t}"))));
            }
        };
        let is_producer = matches!(request, Request::Producer(..));
        match self.request(worker, request).await? {
            Response::TransportStats(s) => Ok(StatsTarget::Transport(s)),
            Response::RtpStreamStats(s) if is_producer => Ok(StatsTarget::Producer(s)),
            Response::RtpStreamStats(s) => Ok(StatsTarget::Consumer(s)),
            _ => Err(RoomError::UnexpectedResponse),
        }
    }

    /// Everything the room knows of the other peers' producers (for dialects that ask for them).
    pub fn producers_except(&self, peer: &str) -> Result<Vec<ProducerSummary>, RoomError> {
        let state = self.open()?;
        state.peer(peer)?;
        Ok(state.all_producers().into_iter().filter(|p| p.peer_id != peer).collect())
    }

    /// Removes the peer and closes everything it owned; the others get `ProducerClosed` for each of
    /// its producers and then `PeerLeft`. An empty room closes after the grace period.
    pub async fn leave(&self, peer: &str) {
        let (removed, sinks, now_empty) = {
            let mut state = self.lock();
            let Some(pos) = state.peers.iter().position(|p| p.id == peer) else { return };
            let removed = state.peers.remove(pos);
            (removed, state.sinks_except(peer), state.peers.is_empty() && !state.closed)
        };
        info!(room = self.id, peer, "peer left");
        self.release(&removed, &sinks).await;
        if now_empty {
            self.schedule_close_if_empty();
        }
    }

    /// Closes everything of `removed` (already out of the state) and tells `sinks` it left.
    pub(super) async fn release(&self, removed: &Peer, sinks: &[EventSink]) {
        self.publish_left(&removed.id);
        for consumer_id in removed.consumers.keys() {
            self.pool.unsubscribe(Target::Consumer(*consumer_id));
        }
        for d in &removed.data_producers {
            self.pool.unsubscribe(Target::DataProducer(d.id));
        }
        // Closing a transport closes its producers and consumers; the worker tells other peers'
        // consumers that their producer closed.
        for (transport_id, direction) in &removed.transports {
            let worker = if *direction == Direction::Recv { removed.recv_worker } else { None };
            let request = Request::Transport(*transport_id, TransportRequest::Close);
            self.close_quietly(worker.unwrap_or(self.worker), request).await;
        }
        let origins: Vec<Origin> = (removed.producers.iter().map(|p| Origin::Producer(p.id)))
            .chain(removed.data_producers.iter().map(|d| Origin::Data(d.id)))
            .collect();
        self.close_copies(&origins).await;
        for p in &removed.producers {
            emit(sinks, &RoomEvent::ProducerClosed { producer_id: p.id, peer_id: removed.id.clone() });
        }
        for d in &removed.data_producers {
            emit(sinks, &RoomEvent::DataProducerClosed { data_producer_id: d.id, peer_id: removed.id.clone() });
        }
        emit(sinks, &RoomEvent::PeerLeft { peer_id: removed.id.clone() });
    }

    /// After the grace period, closes the routers if nobody is in the room.
    pub(super) fn schedule_close_if_empty(&self) {
        let (Some(room), Some(rooms)) = (self.me.upgrade(), self.rooms.upgrade()) else { return };
        let grace = rooms.config().empty_room_grace;
        let generation = self.lock().generation;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let far_routers = {
                let mut state = room.lock();
                if state.closed || !state.peers.is_empty() || state.generation != generation {
                    return;
                }
                state.closed = true;
                std::mem::take(&mut state.routers)
            };
            rooms.forget(&room);
            room.leave_cluster().await;
            room.pool.unsubscribe(Target::Router(room.router_id));
            room.close_quietly(room.worker, Request::Router(room.router_id, RouterRequest::Close)).await;
            room.close_far_routers(far_routers).await;
            info!(room = room.id, router = %room.router_id, "empty room closed");
        });
    }

    /// Tells everyone in the room whose producer the worker found loudest.
    pub(super) fn announce_active_speaker(&self, producer_id: ProducerId) {
        let found = {
            let state = self.lock();
            // The main router hears the copies of other nodes' audio too, so its loudest may be
            // a member elsewhere: every node works the active speaker out for its own peers.
            let local = state.peers.iter().find(|p| p.producer(producer_id).is_some()).map(|p| p.id.clone());
            let remote = || {
                state
                    .remote
                    .values()
                    .find(|r| r.record.producers.iter().any(|p| p.id == producer_id))
                    .map(|r| r.record.peer_id.clone())
            };
            local.or_else(remote).map(|owner| (owner, state.peers.iter().map(|p| p.sink.clone()).collect::<Vec<_>>()))
        };
        if let Some((peer_id, sinks)) = found {
            emit(&sinks, &RoomEvent::ActiveSpeaker { peer_id });
        }
    }

    /// The main router is gone (its worker died): every peer is out and told why; the routers the
    /// room spilled onto are closed.
    pub(super) async fn fail(&self, code: &'static str, message: String) {
        let (peers, far_routers) = {
            let mut state = self.lock();
            state.closed = true;
            state.piped.clear();
            (std::mem::take(&mut state.peers), std::mem::take(&mut state.routers))
        };
        if let Some(room) = self.me.upgrade()
            && let Some(rooms) = self.rooms.upgrade()
        {
            rooms.forget(&room);
        }
        for peer in &peers {
            for consumer_id in peer.consumers.keys() {
                self.pool.unsubscribe(Target::Consumer(*consumer_id));
            }
            for d in &peer.data_producers {
                self.pool.unsubscribe(Target::DataProducer(d.id));
            }
        }
        for peer in &peers {
            self.publish_left(&peer.id);
        }
        self.leave_cluster().await;
        for peer in peers {
            (peer.sink)(RoomEvent::RoomClosed { code, message: message.clone() });
        }
        self.close_far_routers(far_routers).await;
    }

    /// A worker notification about one of `peer`'s consumers.
    fn on_consumer_notification(&self, peer: &str, consumer_id: ConsumerId, n: &ConsumerNotification) -> bool {
        let (sink, event, done) = {
            let mut state = self.lock();
            let Ok(owner) = state.peer_mut(peer) else { return true };
            let Some(producer_id) = owner.consumers.get(&consumer_id).map(|c| c.producer_id) else { return true };
            match n {
                ConsumerNotification::ProducerClosed | ConsumerNotification::Closed { .. } => {
                    owner.consumers.remove(&consumer_id);
                    (owner.sink.clone(), RoomEvent::ConsumerClosed { consumer_id, producer_id }, true)
                }
                ConsumerNotification::ProducerPaused => {
                    (owner.sink.clone(), RoomEvent::ConsumerPaused { consumer_id, producer_id }, false)
                }
                ConsumerNotification::ProducerResumed => {
                    (owner.sink.clone(), RoomEvent::ConsumerResumed { consumer_id, producer_id }, false)
                }
                ConsumerNotification::Score { score } => {
                    (owner.sink.clone(), RoomEvent::ConsumerScore { consumer_id, score: *score }, false)
                }
                ConsumerNotification::LayersChanged(layers) => {
                    (owner.sink.clone(), RoomEvent::ConsumerLayersChanged { consumer_id, layers: *layers }, false)
                }
            }
        };
        sink(event);
        done
    }

    /// Sends a close-type request whose failure changes nothing (the object may already be gone).
    pub(super) async fn close_quietly(&self, worker: usize, request: Request) {
        let target = request.target();
        if let Err(e) = self.pool.request(worker, request).await {
            debug!(room = self.id, worker, %target, "close failed: {e}");
        }
    }
}

pub(super) fn emit(sinks: &[EventSink], event: &RoomEvent) {
    for sink in sinks {
        sink(event.clone());
    }
}

/// Forwards one consumer's notifications to its owner until it closes.
async fn watch_consumer(
    room: Weak<Room>,
    peer: PeerId,
    consumer_id: ConsumerId,
    mut notifications: UnboundedReceiver<Notification>,
) {
    while let Some(n) = notifications.recv().await {
        let Notification::Consumer(_, n) = n else { continue };
        let Some(room) = room.upgrade() else { return };
        if room.on_consumer_notification(&peer, consumer_id, &n) {
            room.pool.unsubscribe(Target::Consumer(consumer_id));
            return;
        }
    }
}
