//! One room: a router on one worker and the peers in it.
//!
//! Locking: the state lock is never held across an await or while calling a peer's sink. An
//! operation checks ownership under the lock, releases it, asks the worker, and then commits under
//! the lock again. One peer's operations are serialised by its signaling session, so only other
//! peers (and notifications) run concurrently with it.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use octo_ipc::{
    ConsumerData, ConsumerId, ConsumerNotification, ConsumerRequest, DtlsParameters, IceParameters, MediaKind,
    Notification, ProducerId, ProducerRequest, Request, Response, RouterId, RouterRequest, RtpCapabilities,
    RtpParameters, RtpStreamStats, Target, TransportId, TransportRequest, TransportStats, WebRtcTransportData,
    WebRtcTransportOptions,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info};

use super::peer::{
    MAX_CONSUMERS, MAX_PRODUCERS, MAX_TRANSPORTS, OwnedConsumer, OwnedDataProducer, OwnedProducer, Peer,
};
use super::{Direction, EventSink, PeerId, RoomError, RoomEvent, Rooms};
use crate::worker_pool::WorkerPool;

pub struct Room {
    id: String,
    router_id: RouterId,
    worker: usize,
    rtp_capabilities: RtpCapabilities,
    pool: Arc<WorkerPool>,
    rooms: Weak<Rooms>,
    state: Mutex<State>,
    me: Weak<Room>,
}

#[derive(Default)]
struct State {
    closed: bool,
    /// Bumped by every join, so that a grace timer started while the room was empty does nothing
    /// once someone has come in since.
    generation: u64,
    /// In join order.
    peers: Vec<Peer>,
}

impl State {
    fn peer(&self, id: &str) -> Result<&Peer, RoomError> {
        self.peers.iter().find(|p| p.id == id).ok_or(RoomError::NotInRoom)
    }

    fn peer_mut(&mut self, id: &str) -> Result<&mut Peer, RoomError> {
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

    fn sinks_except(&self, peer: &str) -> Vec<EventSink> {
        self.peers.iter().filter(|p| p.id != peer).map(|p| p.sink.clone()).collect()
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
        router_id: RouterId,
        worker: usize,
        rtp_capabilities: RtpCapabilities,
        pool: Arc<WorkerPool>,
        rooms: Weak<Rooms>,
    ) -> Arc<Room> {
        Arc::new_cyclic(|me| Room {
            id,
            router_id,
            worker,
            rtp_capabilities,
            pool,
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

    /// The index of the worker hosting this room's router.
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

    /// (producers, consumers) of every peer in the room: its media load, for placement.
    pub fn media_counts(&self) -> (usize, usize) {
        let state = self.lock();
        state.peers.iter().fold((0, 0), |(p, c), peer| (p + peer.producers.len(), c + peer.consumers.len()))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open state, or `RoomClosed`.
    fn open(&self) -> Result<MutexGuard<'_, State>, RoomError> {
        let state = self.lock();
        if state.closed { Err(RoomError::RoomClosed) } else { Ok(state) }
    }

    async fn request(&self, request: Request) -> Result<Response, RoomError> {
        Ok(self.pool.request(self.worker, request).await?)
    }

    /// Adds `peer`; the others get `PeerJoined`.
    pub fn join(&self, peer: Peer, max_peers: usize) -> Result<JoinSnapshot, RoomError> {
        let (snapshot, sinks, event) = {
            let mut state = self.open()?;
            if state.peers.iter().any(|p| p.id == peer.id) {
                return Err(RoomError::AlreadyInRoom);
            }
            if state.peers.len() >= max_peers {
                return Err(RoomError::RoomFull(max_peers));
            }
            let snapshot = JoinSnapshot {
                rtp_capabilities: self.rtp_capabilities.clone(),
                peers: state
                    .peers
                    .iter()
                    .map(|p| PeerSummary { peer_id: p.id.clone(), display_name: p.display_name.clone() })
                    .collect(),
                producers: state
                    .peers
                    .iter()
                    .flat_map(|p| {
                        p.producers.iter().map(|pr| ProducerSummary {
                            producer_id: pr.id,
                            peer_id: p.id.clone(),
                            display_name: p.display_name.clone(),
                            kind: pr.kind,
                            app_data: pr.app_data.clone(),
                        })
                    })
                    .collect(),
            };
            let event = RoomEvent::PeerJoined { peer_id: peer.id.clone(), display_name: peer.display_name.clone() };
            let sinks = state.sinks_except(&peer.id);
            info!(room = self.id, peer = peer.id, name = peer.display_name, "peer joined");
            state.peers.push(peer);
            state.generation = state.generation.wrapping_add(1);
            (snapshot, sinks, event)
        };
        emit(&sinks, &event);
        Ok(snapshot)
    }

    pub async fn create_webrtc_transport(
        &self,
        peer: &str,
        direction: Direction,
        sctp: Option<octo_ipc::NumSctpStreams>,
    ) -> Result<WebRtcTransportData, RoomError> {
        {
            let state = self.open()?;
            if state.peer(peer)?.transports.len() >= MAX_TRANSPORTS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_TRANSPORTS} transports per peer")));
            }
        }
        let transport_id = TransportId(rand::random());
        // SCTP (DataChannels) when the client sent its sctpCapabilities.
        let options = WebRtcTransportOptions { sctp, ..WebRtcTransportOptions::default() };
        let response = self
            .request(Request::Router(self.router_id, RouterRequest::CreateWebRtcTransport { transport_id, options }))
            .await?;
        let Response::WebRtcTransportCreated(data) = response else { return Err(RoomError::UnexpectedResponse) };
        let kept = match self.open() {
            Ok(mut state) => state.peer_mut(peer).map(|p| p.transports.insert(transport_id, direction)).is_ok(),
            Err(_) => false,
        };
        if !kept {
            self.close_quietly(Request::Transport(transport_id, TransportRequest::Close)).await;
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
        self.open()?.own_transport(peer, transport_id)?;
        self.request(Request::Transport(transport_id, TransportRequest::Connect { dtls_parameters })).await?;
        Ok(())
    }

    pub async fn restart_ice(&self, peer: &str, transport_id: TransportId) -> Result<IceParameters, RoomError> {
        self.open()?.own_transport(peer, transport_id)?;
        match self.request(Request::Transport(transport_id, TransportRequest::RestartIce)).await? {
            Response::IceParameters(p) => Ok(p),
            _ => Err(RoomError::UnexpectedResponse),
        }
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
        self.request(Request::Transport(transport_id, request)).await?;
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
                Ok(producer_id)
            }
            Err(e) => {
                self.close_quietly(Request::Producer(producer_id, ProducerRequest::Close)).await;
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
        let request = TransportRequest::ProduceData {
            data_producer_id,
            sctp_stream_parameters,
            label: label.clone(),
            protocol: protocol.clone(),
        };
        self.request(Request::Transport(transport_id, request)).await?;
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
                Ok(data_producer_id)
            }
            Err(e) => {
                self.close_quietly(Request::DataProducer(data_producer_id, octo_ipc::DataProducerRequest::Close)).await;
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
        {
            let state = self.open()?;
            state.pick_transport(peer, Some(transport_id), Direction::Recv)?;
            if !state.peers.iter().any(|p| p.data_producers.iter().any(|d| d.id == data_producer_id)) {
                return Err(RoomError::NotFound(format!("data producer {data_producer_id}")));
            }
            if state.peer(peer)?.data_consumers.len() >= MAX_CONSUMERS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_CONSUMERS} data consumers per peer")));
            }
        }
        let data_consumer_id = octo_ipc::DataConsumerId(rand::random());
        let request = TransportRequest::ConsumeData { data_consumer_id, data_producer_id };
        let data = match self.request(Request::Transport(transport_id, request)).await? {
            Response::DataConsumerCreated(data) => data,
            _ => return Err(RoomError::UnexpectedResponse),
        };
        let kept = self.open().and_then(|mut state| {
            state.peer_mut(peer)?.data_consumers.push(data_consumer_id);
            Ok(())
        });
        if kept.is_err() {
            self.close_quietly(Request::DataConsumer(data_consumer_id, octo_ipc::DataConsumerRequest::Close)).await;
            return Err(RoomError::RoomClosed);
        }
        Ok(data)
    }

    /// Every data producer of the other peers, for a late joiner.
    pub fn data_producers_except(&self, peer: &str) -> Result<Vec<serde_json::Value>, RoomError> {
        let state = self.open()?;
        Ok(state
            .peers
            .iter()
            .filter(|p| p.id != peer)
            .flat_map(|p| {
                p.data_producers.iter().map(|d| {
                    serde_json::json!({
                        "dataProducerId": d.id.to_string(),
                        "peerId": p.id,
                        "label": d.label,
                        "protocol": d.protocol,
                        "appData": d.app_data,
                    })
                })
            })
            .collect())
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
        let transport_id = {
            let state = self.open()?;
            let t = state.pick_transport(peer, transport_id, Direction::Recv)?;
            if !state.peers.iter().any(|p| p.producer(producer_id).is_some()) {
                return Err(RoomError::NotFound(format!("producer {producer_id}")));
            }
            if state.peer(peer)?.consumers.len() >= MAX_CONSUMERS {
                return Err(RoomError::LimitExceeded(format!("at most {MAX_CONSUMERS} consumers per peer")));
            }
            t
        };
        let can = self
            .request(Request::Router(
                self.router_id,
                RouterRequest::CanConsume { producer_id, rtp_capabilities: rtp_capabilities.clone() },
            ))
            .await?;
        if can != Response::CanConsume(true) {
            return Err(RoomError::CannotConsume(producer_id));
        }
        let consumer_id = ConsumerId(rand::random());
        // Subscribe before creating it: the producer may close the moment the consumer exists.
        let notifications = self.pool.subscribe(Target::Consumer(consumer_id));
        let request = TransportRequest::Consume { consumer_id, producer_id, rtp_capabilities, paused };
        let data = match self.request(Request::Transport(transport_id, request)).await {
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
            self.close_quietly(Request::Consumer(consumer_id, ConsumerRequest::Close)).await;
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
        self.request(Request::Producer(producer_id, request)).await?;
        let sinks = {
            let mut state = self.open()?;
            if let Some(p) = state.peer_mut(peer)?.producer_mut(producer_id) {
                p.paused = paused;
            }
            state.sinks_except(peer)
        };
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
        self.request(Request::Producer(producer_id, ProducerRequest::Close)).await?;
        let sinks = {
            let mut state = self.open()?;
            state.peer_mut(peer)?.producers.retain(|p| p.id != producer_id);
            state.sinks_except(peer)
        };
        emit(&sinks, &RoomEvent::ProducerClosed { producer_id, peer_id: peer.to_owned() });
        Ok(())
    }

    pub async fn set_consumer_paused(
        &self,
        peer: &str,
        consumer_id: ConsumerId,
        paused: bool,
    ) -> Result<(), RoomError> {
        self.open()?.own_consumer(peer, consumer_id)?;
        let request = if paused { ConsumerRequest::Pause } else { ConsumerRequest::Resume };
        self.request(Request::Consumer(consumer_id, request)).await?;
        Ok(())
    }

    pub async fn request_key_frame(&self, peer: &str, consumer_id: ConsumerId) -> Result<(), RoomError> {
        self.open()?.own_consumer(peer, consumer_id)?;
        self.request(Request::Consumer(consumer_id, ConsumerRequest::RequestKeyFrame)).await?;
        Ok(())
    }

    /// Statistics of one of the caller's transports, producers or consumers, named by its raw id.
    pub async fn get_stats(&self, peer: &str, id: u128) -> Result<StatsTarget, RoomError> {
        let request = {
            let state = self.open()?;
            let (t, p, c) = (TransportId(id), ProducerId(id), ConsumerId(id));
            if state.own_transport(peer, t).is_ok() {
                Request::Transport(t, TransportRequest::GetStats)
            } else if state.own_producer(peer, p).is_ok() {
                Request::Producer(p, ProducerRequest::GetStats)
            } else if state.own_consumer(peer, c).is_ok() {
                Request::Consumer(c, ConsumerRequest::GetStats)
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
        match self.request(request).await? {
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
        Ok(state
            .peers
            .iter()
            .filter(|p| p.id != peer)
            .flat_map(|p| {
                p.producers.iter().map(|pr| ProducerSummary {
                    producer_id: pr.id,
                    peer_id: p.id.clone(),
                    display_name: p.display_name.clone(),
                    kind: pr.kind,
                    app_data: pr.app_data.clone(),
                })
            })
            .collect())
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
        for consumer_id in removed.consumers.keys() {
            self.pool.unsubscribe(Target::Consumer(*consumer_id));
        }
        // Closing a transport closes its producers and consumers; the worker tells other peers'
        // consumers that their producer closed.
        for transport_id in removed.transports.keys() {
            self.close_quietly(Request::Transport(*transport_id, TransportRequest::Close)).await;
        }
        for p in &removed.producers {
            emit(&sinks, &RoomEvent::ProducerClosed { producer_id: p.id, peer_id: removed.id.clone() });
        }
        for d in &removed.data_producers {
            emit(&sinks, &RoomEvent::DataProducerClosed { data_producer_id: d.id, peer_id: removed.id.clone() });
        }
        emit(&sinks, &RoomEvent::PeerLeft { peer_id: removed.id.clone() });
        if now_empty {
            self.schedule_close_if_empty();
        }
    }

    /// After the grace period, closes the router if nobody is in the room.
    pub(super) fn schedule_close_if_empty(&self) {
        let (Some(room), Some(rooms)) = (self.me.upgrade(), self.rooms.upgrade()) else { return };
        let grace = rooms.config().empty_room_grace;
        let generation = self.lock().generation;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            {
                let mut state = room.lock();
                if state.closed || !state.peers.is_empty() || state.generation != generation {
                    return;
                }
                state.closed = true;
            }
            rooms.forget(&room);
            room.pool.unsubscribe(Target::Router(room.router_id));
            room.close_quietly(Request::Router(room.router_id, RouterRequest::Close)).await;
            info!(room = room.id, router = %room.router_id, "empty room closed");
        });
    }

    /// The router is gone (its worker died): every peer is out and told why.
    /// Tells everyone in the room whose producer the worker found loudest.
    pub(super) fn announce_active_speaker(&self, producer_id: ProducerId) {
        let found = {
            let state = self.lock();
            state
                .peers
                .iter()
                .find(|p| p.producer(producer_id).is_some())
                .map(|owner| (owner.id.clone(), state.peers.iter().map(|p| p.sink.clone()).collect::<Vec<_>>()))
        };
        if let Some((peer_id, sinks)) = found {
            emit(&sinks, &RoomEvent::ActiveSpeaker { peer_id });
        }
    }

    pub(super) fn fail(&self, code: &'static str, message: String) {
        let peers = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.peers)
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
        }
        for peer in peers {
            (peer.sink)(RoomEvent::RoomClosed { code, message: message.clone() });
        }
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
            }
        };
        sink(event);
        done
    }

    /// Sends a close-type request whose failure changes nothing (the object may already be gone).
    async fn close_quietly(&self, request: Request) {
        let target = request.target();
        if let Err(e) = self.pool.request(self.worker, request).await {
            debug!(room = self.id, %target, "close failed: {e}");
        }
    }
}

fn emit(sinks: &[EventSink], event: &RoomEvent) {
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
