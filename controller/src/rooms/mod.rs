//! Rooms and peers: the one set of room operations that every signaling dialect calls.
//!
//! A [`Room`] is a main router on one worker (placed on the least-loaded live worker, see
//! [`placement`]) that holds its producers, and, once it outgrows that worker, routers on others for
//! the peers that receive there (see [`spill`]), fed through pipes between workers. A
//! [`Peer`] owns the transports, producers and consumers it created; every operation names the
//! calling peer and is checked against that peer's own objects. Nothing here knows Socket.IO: what
//! the room has to tell a peer goes through the peer's [`EventSink`] as a [`RoomEvent`].

mod chat_log;
mod cluster_side;
mod copies;
mod far_copies;
mod far_pipes;
mod hands;
mod peer;
mod pipes;
pub mod placement;
mod remote;
mod room;
pub mod spill;
mod spread;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use octo_ipc::{
    ErrorCode, MediaKind, Notification, Request, RequestError, Response, RouterId, RouterNotification,
    RtpCodecCapability, Target, WorkerRequest,
};
use serde::Deserialize;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::channel::ChannelError;
use crate::config::MediaCodec;
use crate::worker_pool::{PoolError, WorkerPool};

pub use peer::Peer;
pub use room::{JoinSnapshot, PeerSummary, ProducerSummary, Room, StatsTarget};

/// A peer's id: its Socket.IO session id, which the seed app's client compares against `socket.id`.
pub type PeerId = String;

/// Which way media flows on a transport, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Send,
    Recv,
}

/// Something a room tells one of its peers.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    PeerJoined {
        peer_id: PeerId,
        display_name: String,
    },
    PeerLeft {
        peer_id: PeerId,
    },
    NewProducer {
        producer_id: octo_ipc::ProducerId,
        peer_id: PeerId,
        display_name: String,
        kind: MediaKind,
        app_data: serde_json::Value,
    },
    ProducerClosed {
        producer_id: octo_ipc::ProducerId,
        peer_id: PeerId,
    },
    NewDataProducer {
        data_producer_id: octo_ipc::DataProducerId,
        peer_id: PeerId,
        label: String,
        protocol: String,
        app_data: serde_json::Value,
    },
    DataProducerClosed {
        data_producer_id: octo_ipc::DataProducerId,
        peer_id: PeerId,
    },
    /// A peer raised its hand (at `raised_at`, Unix ms) or lowered it (`None`).
    PeerHand {
        peer_id: PeerId,
        raised_at: Option<u64>,
    },
    /// The peer whose audio is loudest now.
    ActiveSpeaker {
        peer_id: PeerId,
    },
    ProducerPaused {
        producer_id: octo_ipc::ProducerId,
        peer_id: PeerId,
    },
    ProducerResumed {
        producer_id: octo_ipc::ProducerId,
        peer_id: PeerId,
    },
    /// The consumer closed because its producer did.
    ConsumerClosed {
        consumer_id: octo_ipc::ConsumerId,
        producer_id: octo_ipc::ProducerId,
    },
    /// The consumer's producer paused.
    ConsumerPaused {
        consumer_id: octo_ipc::ConsumerId,
        producer_id: octo_ipc::ProducerId,
    },
    ConsumerResumed {
        consumer_id: octo_ipc::ConsumerId,
        producer_id: octo_ipc::ProducerId,
    },
    /// The consumer's score (0–10) changed.
    ConsumerScore {
        consumer_id: octo_ipc::ConsumerId,
        score: u8,
    },
    /// A simulcast consumer forwards other layers now (`None`: none).
    ConsumerLayersChanged {
        consumer_id: octo_ipc::ConsumerId,
        layers: Option<octo_ipc::ConsumerLayers>,
    },
    /// The room is gone (its worker died); the peer is no longer in it and may join again.
    RoomClosed {
        code: &'static str,
        message: String,
    },
}

/// How a room reaches one peer. Called without any room lock held; must not block.
pub type EventSink = Arc<dyn Fn(RoomEvent) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct RoomsConfig {
    pub max_peers_per_room: usize,
    /// How long a room with no peers keeps its router before closing it.
    pub empty_room_grace: Duration,
    /// The codecs every room's router offers.
    pub media_codecs: Vec<RtpCodecCapability>,
    /// When a room's receiving peers go to another worker.
    pub spill: spill::SpillLimits,
    /// Encrypt media on pipes between workers.
    pub pipe_srtp: bool,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            max_peers_per_room: 50,
            empty_room_grace: Duration::from_secs(10),
            media_codecs: default_media_codecs(),
            spill: spill::SpillLimits::default(),
            pipe_srtp: false,
        }
    }
}

/// Opus, VP8, VP9 and H.264 constrained baseline: what every browser can send or receive.
pub fn default_media_codecs() -> Vec<RtpCodecCapability> {
    media_codecs(&[MediaCodec::Opus, MediaCodec::Vp8, MediaCodec::Vp9, MediaCodec::H264])
}

/// The routers' codec list for the configured codecs, in the configured order, each once.
pub fn media_codecs(codecs: &[MediaCodec]) -> Vec<RtpCodecCapability> {
    let mut unique: Vec<MediaCodec> = Vec::new();
    for codec in codecs {
        if !unique.contains(codec) {
            unique.push(*codec);
        }
    }
    unique.into_iter().map(codec_capability).collect()
}

fn codec_capability(codec: MediaCodec) -> RtpCodecCapability {
    let json = match codec {
        MediaCodec::Opus => {
            serde_json::json!({"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2})
        }
        MediaCodec::Vp8 => serde_json::json!({"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}),
        MediaCodec::Vp9 => {
            serde_json::json!({"kind": "video", "mimeType": "video/VP9", "clockRate": 90000, "parameters": {"profile-id": 0}})
        }
        MediaCodec::H264 => serde_json::json!({"kind": "video", "mimeType": "video/H264", "clockRate": 90000,
            "parameters": {"packetization-mode": 1, "profile-level-id": "42e01f", "level-asymmetry-allowed": 1}}),
    };
    serde_json::from_value(json).expect("built-in codec capabilities are valid")
}

/// Why a room operation failed. Signaling maps each variant to a stable error code.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} belongs to another peer")]
    Forbidden(String),
    #[error("{0}")]
    WrongDirection(String),
    #[error("the consumer's rtpCapabilities cannot receive producer {0}")]
    CannotConsume(octo_ipc::ProducerId),
    #[error("room is full ({0} peers)")]
    RoomFull(usize),
    #[error("the peer is not in this room")]
    NotInRoom,
    #[error("the peer is already in the room")]
    AlreadyInRoom,
    #[error("the room was closed (its worker died); join again")]
    RoomClosed,
    #[error("{0}")]
    LimitExceeded(String),
    #[error("no worker is available: {0}")]
    Unavailable(String),
    #[error("worker refused: {0}")]
    Worker(RequestError),
    #[error("worker answered with an unexpected response")]
    UnexpectedResponse,
}

impl From<PoolError> for RoomError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Channel { source: ChannelError::Request(r), .. } => match r.code {
                ErrorCode::NotFound => RoomError::NotFound(r.message),
                ErrorCode::InvalidRequest | ErrorCode::InvalidState => RoomError::Worker(r),
                ErrorCode::AlreadyExists | ErrorCode::Internal => RoomError::Worker(r),
            },
            other => RoomError::Unavailable(other.to_string()),
        }
    }
}

/// Every room of this controller, by the room id clients chose.
pub struct Rooms {
    pool: Arc<WorkerPool>,
    /// The pipes between workers, shared by every room that spills.
    pipes: Arc<pipes::Pipes>,
    config: RoomsConfig,
    /// A cell per room id so that concurrent first joins create one router, not several.
    rooms: Mutex<HashMap<String, Arc<OnceCell<Arc<Room>>>>>,
    me: Weak<Rooms>,
    /// Shutting down: no new joins, existing rooms finish.
    draining: std::sync::atomic::AtomicBool,
    /// Cluster mode only (see `cluster_side.rs`): unset, Octo is standalone.
    cluster: OnceLock<Arc<crate::cluster::Cluster>>,
    far_pipes: OnceLock<Arc<far_pipes::FarPipes>>,
    remote_work: OnceLock<tokio::sync::mpsc::UnboundedSender<cluster_side::RemoteWork>>,
}

impl Rooms {
    pub fn new(pool: Arc<WorkerPool>, config: RoomsConfig) -> Arc<Rooms> {
        let pipes = pipes::Pipes::new(pool.clone(), config.pipe_srtp);
        Arc::new_cyclic(|me| Rooms {
            pool,
            pipes,
            config,
            rooms: Mutex::default(),
            me: me.clone(),
            draining: std::sync::atomic::AtomicBool::new(false),
            cluster: OnceLock::new(),
            far_pipes: OnceLock::new(),
            remote_work: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &RoomsConfig {
        &self.config
    }

    /// The open rooms' ids.
    pub fn room_ids(&self) -> Vec<String> {
        self.lock().iter().filter(|(_, c)| c.get().is_some_and(|r| !r.is_closed())).map(|(k, _)| k.clone()).collect()
    }

    /// Refuses every later join (`unavailable`); rooms already running go on.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Peers in all open rooms.
    pub fn peer_total(&self) -> usize {
        self.load().iter().map(|(_, peers)| peers).sum()
    }

    /// (main worker index, peer count) of every open room, for metrics.
    pub fn load(&self) -> Vec<(usize, usize)> {
        self.lock()
            .values()
            .filter_map(|c| c.get().filter(|r| !r.is_closed()).map(|r| (r.worker(), r.peer_count())))
            .collect()
    }

    /// What placement weighs for each worker slot: the pool's view (live, routers, CPU) and the
    /// producers and consumers of this controller's rooms on it (a room's producers on its main
    /// worker, its consumers on the worker hosting each).
    pub fn worker_loads(&self) -> Vec<placement::WorkerLoad> {
        let mut loads: Vec<placement::WorkerLoad> = self
            .pool
            .status()
            .into_iter()
            .map(|s| placement::WorkerLoad {
                index: s.index,
                alive: s.alive,
                routers: s.routers,
                producers: 0,
                consumers: 0,
                cpu: s.cpu_utilisation,
            })
            .collect();
        let rooms: Vec<Arc<Room>> = self.lock().values().filter_map(|c| c.get().cloned()).collect();
        for room in rooms.iter().filter(|r| !r.is_closed()) {
            for (worker, producers, consumers) in room.media_shares() {
                if let Some(load) = loads.get_mut(worker) {
                    load.producers += producers;
                    load.consumers += consumers;
                }
            }
        }
        loads
    }

    /// The room `room_id`, creating it (and its router) if it does not exist. A room created here
    /// that nobody joins closes after the grace period.
    pub async fn get_or_create(&self, room_id: &str) -> Result<Arc<Room>, RoomError> {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RoomError::Unavailable("the server is shutting down".into()));
        }
        // A room that closed between lookup and use is replaced; more than a few rounds means the
        // workers keep dying under us.
        for _ in 0..3 {
            let cell = self.lock().entry(room_id.to_owned()).or_default().clone();
            let result = cell.get_or_try_init(|| self.create_room(room_id)).await.cloned();
            match result {
                Ok(room) if !room.is_closed() => {
                    if let Some(cluster) = self.cluster()
                        && !cluster.is_up()
                        && room.has_remote_peers()
                    {
                        return Err(RoomError::Unavailable(
                            "the cluster's Redis is unreachable and this room spans nodes: joining is refused until it is back"
                                .into(),
                        ));
                    }
                    return Ok(room);
                }
                Ok(_) => self.forget_cell(room_id, &cell),
                Err(e) => {
                    self.forget_cell(room_id, &cell);
                    return Err(e);
                }
            }
        }
        Err(RoomError::Unavailable("the room's worker keeps failing".into()))
    }

    fn forget_cell(&self, room_id: &str, cell: &Arc<OnceCell<Arc<Room>>>) {
        let mut rooms = self.lock();
        if rooms.get(room_id).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            rooms.remove(room_id);
        }
    }

    /// Drops `room` from the map if it is still the current room of its id.
    pub(crate) fn forget(&self, room: &Arc<Room>) {
        let mut rooms = self.lock();
        if rooms.get(room.id()).and_then(|c| c.get()).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(room.id());
        }
    }

    async fn create_room(&self, room_id: &str) -> Result<Arc<Room>, RoomError> {
        let loads = self.worker_loads();
        let worker =
            placement::choose_worker(&loads).ok_or_else(|| RoomError::Unavailable("every worker is down".into()))?;
        let router_id = RouterId(rand::random());
        // Subscribe first: the pool reports a dead worker's routers as soon as it sees the death.
        let notifications = self.pool.subscribe(Target::Router(router_id));
        let request =
            Request::Worker(WorkerRequest::CreateRouter { router_id, media_codecs: self.config.media_codecs.clone() });
        let rtp_capabilities = match self.pool.request(worker, request).await {
            Ok(Response::RouterCreated { rtp_capabilities }) => rtp_capabilities,
            Ok(_) => {
                self.pool.unsubscribe(Target::Router(router_id));
                return Err(RoomError::UnexpectedResponse);
            }
            Err(e) => {
                self.pool.unsubscribe(Target::Router(router_id));
                return Err(e.into());
            }
        };
        let load = loads.iter().find(|l| l.index == worker).cloned().unwrap_or_default();
        info!(
            room = room_id,
            %router_id,
            worker,
            streams = load.producers + load.consumers,
            cpu = load.cpu,
            routers = load.routers,
            "room created"
        );
        let room = Room::new(
            room_id.to_owned(),
            (router_id, worker),
            rtp_capabilities,
            self.pool.clone(),
            self.pipes.clone(),
            self.me.clone(),
        );
        tokio::spawn(watch_router(Arc::downgrade(&room), notifications));
        if let Some(cluster) = self.cluster() {
            // The room's members on other nodes, before anyone here joins it.
            match cluster.open_room(room_id).await {
                Ok(members) => {
                    for record in members.others {
                        room.apply_member(record).await;
                    }
                }
                Err(e) => {
                    cluster.close_room(room_id).await;
                    self.pool.unsubscribe(Target::Router(router_id));
                    room.close_quietly(worker, Request::Router(router_id, octo_ipc::RouterRequest::Close)).await;
                    return Err(RoomError::Unavailable(format!(
                        "{e}: joins into rooms not open on this node are refused"
                    )));
                }
            }
        }
        room.schedule_close_if_empty();
        Ok(room)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<Arc<Room>>>>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Turns the main router's `Closed` notification (the pool sends it when the worker dies) into the
/// room's end, and its `ActiveSpeaker` into the room's (only the main router's count: it has the
/// original of every producer).
async fn watch_router(room: Weak<Room>, mut notifications: tokio::sync::mpsc::UnboundedReceiver<Notification>) {
    while let Some(n) = notifications.recv().await {
        if let Notification::Router(_, RouterNotification::ActiveSpeaker { producer_id }) = n {
            match room.upgrade() {
                Some(room) => room.announce_active_speaker(producer_id),
                None => return,
            }
            continue;
        }
        if let Notification::Router(_, RouterNotification::Closed { reason }) = n {
            match room.upgrade() {
                Some(room) => {
                    warn!(room = room.id(), ?reason, "router closed under the room");
                    room.fail("worker_died", format!("the room's media worker stopped ({reason:?}); join again")).await;
                }
                None => return,
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_codecs_keep_their_order_and_appear_once() {
        let codecs = media_codecs(&[MediaCodec::H264, MediaCodec::Opus, MediaCodec::H264]);
        let mimes: Vec<&str> = codecs.iter().map(|c| c.mime_type.as_str()).collect();
        assert_eq!(mimes, ["video/H264", "audio/opus"]);
        assert_eq!(default_media_codecs().len(), 4);
    }
}
