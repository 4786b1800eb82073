//! The cluster: several `octo` nodes sharing one Redis, so that a room spans hosts.
//!
//! Redis holds each node's heartbeat (a record with a TTL), each room's members (a hash of member
//! records: who, on which node, what they publish) and each room's chat history (a stream). Nodes
//! tell each other about changes on a channel per room and ask each other for media (pipes between
//! their workers) on a channel per node. Standalone Octo has no `Cluster` at all: rooms call into
//! it only when it exists, so the embedded default does exactly what it did before.
//!
//! This module knows Redis and the wire format, not rooms: what the cluster hears is handed to a
//! [`ClusterHandler`] (the rooms), which also answers other nodes' requests.

pub mod chat;
mod inbox;
pub mod keys;
mod link;
mod supervisor;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use redis::aio::PubSubSink;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

pub use chat::ChatHistory;
use link::Link;
use wire::{MemberRecord, NodeMessage, NodeRecord, NodeRequest, NodeResponse, RoomEnvelope, RoomMessage};

/// How often a node heart-beats and reads the others' records.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node's record outlives its last heartbeat: a node silent this long is gone.
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// How long a request to another node may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A room's member hash outlives its last write by this much (rooms whose nodes all died).
const MEMBERS_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    pub node_id: String,
    /// Where other nodes reach this node's workers.
    pub address: IpAddr,
    pub chat_history: ChatHistory,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Config(String),
    #[error("the cluster's Redis is unreachable ({0})")]
    Down(String),
    #[error("Redis: {0}")]
    Protocol(String),
    #[error("node {0} is not in the cluster (or not listening)")]
    NodeUnreachable(String),
    #[error("node {0} did not answer in time")]
    Timeout(String),
    #[error("node {node} refused: {message}")]
    Refused { node: String, message: String },
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the cluster hands to the rooms, and asks of them.
pub trait ClusterHandler: Send + Sync {
    /// Another node said something about a room open here.
    fn on_room_message(&self, envelope: RoomEnvelope);
    /// The node table was read again; `gone` are nodes that were alive and no longer are.
    fn on_nodes(&self, alive: &HashMap<String, NodeRecord>, gone: &[String]);
    /// Another node's request.
    fn serve(&self, from: String, request: NodeRequest) -> BoxFuture<'_, Result<NodeResponse, String>>;
    /// Redis is reachable again (or for the first time): write this node's whole state again and
    /// re-read every open room. `settled`: one TTL later, when every live node has written its
    /// state again, so that members Redis lacks now are gone.
    fn resync(&self, settled: bool) -> BoxFuture<'_, ()>;
    /// This node's heartbeat, as of now.
    fn node_record(&self) -> NodeRecord;
}

/// What Redis holds of a room's members.
#[derive(Debug, Default)]
pub struct Members {
    /// On other live nodes.
    pub others: Vec<MemberRecord>,
    /// The peer ids recorded for this node.
    pub own: Vec<String>,
}

/// A write of this node's own state, done in order by one task.
enum Write {
    Member { room: String, record: Box<MemberRecord> },
    Left { room: String, peer_id: String },
}

pub struct Cluster {
    config: ClusterConfig,
    epoch: u64,
    link: Link,
    /// The subscription side of the current pub/sub connection.
    pubsub: Mutex<Option<PubSubSink>>,
    /// Rooms open on this node: their channels are (re)subscribed on every connection.
    rooms: Mutex<HashSet<String>>,
    /// Nodes alive as of the last read of the node table (this one included).
    nodes: Mutex<HashMap<String, NodeRecord>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<NodeResponse, String>>>>,
    next_request: AtomicU64,
    writes: mpsc::UnboundedSender<Write>,
    handler: OnceLock<Weak<dyn ClusterHandler>>,
    /// Set once the listener is bound (the default depends on its port).
    public_url: OnceLock<String>,
    pub metrics: ClusterMetrics,
}

#[derive(Default)]
pub struct ClusterMetrics {
    pub messages_received: AtomicU64,
    pub messages_refused: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_failed: AtomicU64,
    pub requests_served: AtomicU64,
}

impl Cluster {
    /// Checks the configuration and starts the supervisor, which connects (and reconnects) to Redis
    /// and heart-beats; `handler` gets what the cluster hears from then on.
    pub fn start(config: ClusterConfig, handler: Weak<dyn ClusterHandler>) -> Result<Arc<Cluster>, ClusterError> {
        if config.node_id.is_empty() || config.node_id.len() > 64 || config.node_id.chars().any(|c| c.is_whitespace()) {
            return Err(ClusterError::Config("--node-id must be 1 to 64 characters without spaces".into()));
        }
        let link = Link::new(&config.redis_url)?;
        let (writes, queue) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            config,
            epoch: rand::random(),
            link,
            pubsub: Mutex::new(None),
            rooms: Mutex::default(),
            nodes: Mutex::default(),
            pending: Mutex::default(),
            next_request: AtomicU64::new(1),
            writes,
            handler: OnceLock::new(),
            public_url: OnceLock::new(),
            metrics: ClusterMetrics::default(),
        });
        let _ = cluster.handler.set(handler);
        tokio::spawn(write_in_order(Arc::downgrade(&cluster), queue));
        tokio::spawn(supervisor::run(Arc::downgrade(&cluster)));
        Ok(cluster)
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn address(&self) -> IpAddr {
        self.config.address
    }

    /// Where browsers reach this node, once known.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.get().map(String::as_str)
    }

    pub fn set_public_url(&self, url: String) {
        let _ = self.public_url.set(url);
    }

    /// The URLs a browser of this node may reconnect to if this node dies: this node's first, then
    /// the other ready nodes', least loaded first, each once.
    pub fn servers(&self) -> Vec<String> {
        let mut others: Vec<NodeRecord> =
            self.nodes().into_values().filter(|n| n.id != self.config.node_id && n.ready).collect();
        others.sort_by_key(|n| n.peers);
        let mut urls: Vec<String> = self.public_url().map(str::to_owned).into_iter().collect();
        for url in others.into_iter().filter_map(|n| n.public_url) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }

    pub fn chat_history(&self) -> &ChatHistory {
        &self.config.chat_history
    }

    /// Whether Redis answers: while it does not, the node serves what it has and refuses what
    /// needs the others.
    pub fn is_up(&self) -> bool {
        self.link.is_up()
    }

    pub fn redis_errors(&self) -> u64 {
        self.link.errors.load(Ordering::Relaxed)
    }

    pub fn redis_round_trip(&self) -> Duration {
        Duration::from_micros(self.link.last_round_trip_us.load(Ordering::Relaxed))
    }

    /// The nodes alive as of the last heartbeat round (this one included).
    pub fn nodes(&self) -> HashMap<String, NodeRecord> {
        lock(&self.nodes).clone()
    }

    fn handler(&self) -> Option<Arc<dyn ClusterHandler>> {
        self.handler.get().and_then(Weak::upgrade)
    }

    /// Starts following room `room` (opened here): subscribes to its channel, then reads its
    /// members. Records this node left behind in an earlier life are removed.
    pub async fn open_room(&self, room: &str) -> Result<Members, ClusterError> {
        lock(&self.rooms).insert(room.to_owned());
        // Subscribe before reading, so that no change falls between the two (a change seen twice
        // is harmless: messages are states, not deltas).
        let sink = lock(&self.pubsub).clone();
        let Some(mut sink) = sink else { return Err(ClusterError::Down("not connected".into())) };
        tokio::time::timeout(link::COMMAND_TIMEOUT, sink.subscribe(keys::room_channel(room)))
            .await
            .map_err(|_| ClusterError::Down("subscribing timed out".into()))?
            .map_err(|e| ClusterError::Down(e.to_string()))?;
        self.read_members(room).await
    }

    /// The room's members as Redis has them now: those on other live nodes, and the peer ids it
    /// holds for this node (this life).
    pub async fn read_members(&self, room: &str) -> Result<Members, ClusterError> {
        let raw: HashMap<String, String> = self.link.run(redis::cmd("HGETALL").arg(keys::members(room))).await?;
        let alive = self.nodes();
        let mut members = Members::default();
        for (peer_id, text) in raw {
            let record = match serde_json::from_str::<MemberRecord>(&text) {
                Ok(r) if r.peer_id == peer_id => r,
                _ => {
                    self.metrics.messages_refused.fetch_add(1, Ordering::Relaxed);
                    warn!(room, peer_id, "unreadable member record in Redis: ignored");
                    continue;
                }
            };
            if record.node == self.config.node_id {
                if record.epoch == self.epoch {
                    members.own.push(record.peer_id);
                } else {
                    // Left behind by this node's previous run: those peers are long gone.
                    self.publish_left(room, &record.peer_id);
                }
                continue;
            }
            if alive.get(&record.node).is_some_and(|n| n.epoch == record.epoch) {
                members.others.push(record);
            }
        }
        Ok(members)
    }

    /// Stops following `room` (it closed here).
    pub async fn close_room(&self, room: &str) {
        lock(&self.rooms).remove(room);
        let sink = lock(&self.pubsub).clone();
        if let Some(mut sink) = sink {
            let _ = tokio::time::timeout(link::COMMAND_TIMEOUT, sink.unsubscribe(keys::room_channel(room))).await;
        }
    }

    /// Publishes a local member's state (joined, or its producers changed).
    pub fn publish_member(&self, room: &str, record: MemberRecord) {
        let _ = self.writes.send(Write::Member { room: room.to_owned(), record: Box::new(record) });
    }

    /// Publishes that a local member left.
    pub fn publish_left(&self, room: &str, peer_id: &str) {
        let _ = self.writes.send(Write::Left { room: room.to_owned(), peer_id: peer_id.to_owned() });
    }

    /// Asks node `node` for something and waits for its answer.
    pub async fn request(&self, node: &str, request: NodeRequest) -> Result<NodeResponse, ClusterError> {
        self.metrics.requests_sent.fetch_add(1, Ordering::Relaxed);
        let result = self.request_inner(node, request).await;
        if result.is_err() {
            self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn request_inner(&self, node: &str, request: NodeRequest) -> Result<NodeResponse, ClusterError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let message = NodeMessage::Request { from: self.config.node_id.clone(), id, request };
        let text = serde_json::to_string(&message).expect("node messages serialize");
        let receivers: Result<u64, _> =
            self.link.run(redis::cmd("PUBLISH").arg(keys::node_channel(node)).arg(text)).await;
        match receivers {
            Ok(0) => {
                lock(&self.pending).remove(&id);
                return Err(ClusterError::NodeUnreachable(node.to_owned()));
            }
            Ok(_) => {}
            Err(e) => {
                lock(&self.pending).remove(&id);
                return Err(e);
            }
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(message))) => Err(ClusterError::Refused { node: node.to_owned(), message }),
            Ok(Err(_)) | Err(_) => {
                lock(&self.pending).remove(&id);
                Err(ClusterError::Timeout(node.to_owned()))
            }
        }
    }

    /// A message on one of this node's channels.
    fn on_message(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        self.metrics.messages_received.fetch_add(1, Ordering::Relaxed);
        if channel == keys::node_channel(&self.config.node_id) {
            match serde_json::from_slice::<NodeMessage>(payload) {
                Ok(message) => inbox::handle(self, message),
                Err(e) => self.refuse(channel, &e),
            }
            return;
        }
        let Some(room) = keys::room_of_channel(channel) else { return };
        match serde_json::from_slice::<RoomEnvelope>(payload) {
            Ok(envelope) if envelope.room == room => {
                if envelope.from == self.config.node_id {
                    return; // our own, echoed by Redis
                }
                // A member record only from the node it names: one node cannot speak for another's
                // peers (it may say a dead node's peers left).
                if let RoomMessage::Member { record } = &envelope.message
                    && record.node != envelope.from
                {
                    self.metrics.messages_refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if let Some(handler) = self.handler() {
                    handler.on_room_message(envelope);
                }
            }
            Ok(_) => {
                self.metrics.messages_refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.refuse(channel, &e),
        }
    }

    fn refuse(&self, channel: &str, error: &serde_json::Error) {
        self.metrics.messages_refused.fetch_add(1, Ordering::Relaxed);
        debug!(channel, "unreadable cluster message dropped: {error}");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes this node's member changes one at a time, in the order they happened: a peer's
/// "left" can never overtake its last "member". A write that fails is dropped; the resync after
/// Redis comes back rewrites the whole state.
async fn write_in_order(cluster: Weak<Cluster>, mut queue: mpsc::UnboundedReceiver<Write>) {
    while let Some(write) = queue.recv().await {
        let Some(cluster) = cluster.upgrade() else { return };
        if !cluster.is_up() {
            continue;
        }
        let from = cluster.config.node_id.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let (room, message) = match write {
            Write::Member { room, record } => {
                let text = serde_json::to_string(&record).expect("member records serialize");
                pipe.cmd("HSET").arg(keys::members(&room)).arg(&record.peer_id).arg(text).ignore();
                pipe.cmd("PEXPIRE").arg(keys::members(&room)).arg(MEMBERS_TTL.as_millis() as u64).ignore();
                (room, RoomMessage::Member { record: *record })
            }
            Write::Left { room, peer_id } => {
                pipe.cmd("HDEL").arg(keys::members(&room)).arg(&peer_id).ignore();
                (room, RoomMessage::Left { peer_id })
            }
        };
        let envelope = RoomEnvelope { from, room: room.clone(), message };
        let text = serde_json::to_string(&envelope).expect("room messages serialize");
        pipe.cmd("PUBLISH").arg(keys::room_channel(&room)).arg(text).ignore();
        if let Err(e) = cluster.link.run::<()>(&pipe).await {
            debug!(room, "cluster write dropped: {e}");
        }
    }
}
