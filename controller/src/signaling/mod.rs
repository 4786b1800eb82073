//! Socket.IO signaling: two dialects (Octo's own protocol and the seed app's) over one set of room
//! operations. See PROTOCOL.md for the events.
//!
//! Each socket gets a session: events are checked against the payload limit and the socket's rate
//! limit as they arrive, then queued and handled one at a time, in arrival order, by the session's
//! task. Order matters: the seed app's client sends `join` and `create-transport` back to back
//! without waiting, and a peer's operations must not race each other.

mod counters;
mod error;
mod json;
mod limits;
mod protocol;
pub mod requests;
mod seed;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use counters::{DialectLabel, GET_RTP_CAPABILITIES, SignalingCounters};
pub use error::{Code, SignalError};
pub use limits::{Auth, Limits, RoomClaims, TokenBucket};
pub use seed::get_rtp_capabilities;

use crate::rooms::{PeerId, Room, Rooms};

#[derive(Debug, Clone)]
pub struct SignalingConfig {
    pub limits: Limits,
    /// With a secret, joining needs an HS256 token naming the room.
    pub auth_secret: Option<String>,
    /// Seed dialect: `transport-created` waits until this long after the client's
    /// `/getRtpCapabilities` response (see PROTOCOL.md for why).
    pub seed_transport_hold: Duration,
    /// TURN servers for the clients (`iceServers` in the join answer).
    pub turn: Option<crate::turn::TurnConfig>,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            auth_secret: None,
            seed_transport_hold: Duration::from_millis(300),
            turn: None,
        }
    }
}

/// The Socket.IO room every seed-dialect socket is put in when it joins: server-wide notices of
/// Octo's own dialect (`serverDraining`) skip it, since the seed app's client knows none of them.
pub(crate) const SEED_SOCKETS: &str = "octo:seed-dialect";

/// How long a `/getRtpCapabilities` answer marks its client as a seed-app client for the hold.
const SEED_FETCH_MEMORY: Duration = Duration::from_secs(60);

/// Packets a socket may have waiting to be written before a send to it fails. socketioxide's 128
/// is less than one answered burst of `rate_limited` acks (every request gets one) plus a big
/// room's join notices, and a long-polling client only drains between polls: with 128, a client
/// on a busy machine lost acks it was waiting for. The queue grows only as far as it is used.
const SOCKET_SEND_BUFFER: usize = 4096;

/// Which protocol a peer speaks; events to it are shaped accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Main,
    Seed,
}

pub struct Signaling {
    rooms: Arc<Rooms>,
    config: SignalingConfig,
    auth: Option<Auth>,
    sessions: Mutex<HashMap<Sid, Arc<Session>>>,
    /// When each (client IP, room) last got `/getRtpCapabilities` answered: the seed dialect's hold.
    seed_fetches: Mutex<HashMap<(IpAddr, String), Instant>>,
    counters: Arc<SignalingCounters>,
    /// The Socket.IO handle, for notices to every socket; set by [`Signaling::layer`].
    io: OnceLock<SocketIo>,
}

struct Session {
    jobs: mpsc::Sender<Job>,
    bucket: Mutex<TokenBucket>,
    /// Shared with the session task, which must not hold `jobs`: its end is the task's signal.
    disconnected: Arc<AtomicBool>,
}

struct Job {
    event: String,
    payload: Value,
    ack: AckSender,
    /// When the event reached the server (the seed dialect's hold counts from its `join`).
    arrived: Instant,
}

/// A session's place in a room.
pub(crate) struct Joined {
    pub room: Arc<Room>,
    pub peer_id: PeerId,
    pub dialect: Dialect,
}

/// What the session task keeps between events.
#[derive(Default)]
pub(crate) struct SessionState {
    pub joined: Option<Joined>,
    /// When this socket's seed-dialect `join` arrived.
    pub seed_joined_at: Option<Instant>,
}

impl SessionState {
    /// The room this session is in, or `not_joined` / `room_closed`.
    pub fn joined(&mut self) -> Result<&Joined, SignalError> {
        match &self.joined {
            None => Err(SignalError::new(Code::NotJoined, "join a room first")),
            // Closed, or put out of a room that goes on (the worker it received on died).
            Some(j) if j.room.is_closed() || !j.room.has_peer(&j.peer_id) => {
                self.joined = None;
                Err(SignalError::new(Code::RoomClosed, "the room was closed (its worker died); join again"))
            }
            Some(_) => Ok(self.joined.as_ref().expect("checked above")),
        }
    }
}

/// Largest JSON payload the transport layer buffers; bigger ones end the connection there, smaller
/// ones over the signaling limit are answered `payload_too_large`.
fn engine_max_payload(limits: &Limits) -> usize {
    limits.max_payload_bytes.saturating_mul(4).max(1 << 20)
}

impl Signaling {
    pub fn new(rooms: Arc<Rooms>, config: SignalingConfig) -> Arc<Signaling> {
        let auth = config.auth_secret.as_deref().map(|s| Auth::new(s.as_bytes()));
        Arc::new(Signaling {
            rooms,
            config,
            auth,
            sessions: Mutex::default(),
            seed_fetches: Mutex::default(),
            counters: Arc::default(),
            io: OnceLock::new(),
        })
    }

    pub fn rooms(&self) -> &Arc<Rooms> {
        &self.rooms
    }

    /// Requests and errors by dialect, event and code, for `/metrics`.
    pub fn counters(&self) -> &SignalingCounters {
        &self.counters
    }

    /// The counters, for room event sinks that outlive a request.
    pub(crate) fn counters_arc(&self) -> Arc<SignalingCounters> {
        self.counters.clone()
    }

    /// The Socket.IO layer to put on the HTTP router (it answers `/socket.io/`).
    pub fn layer(self: &Arc<Self>) -> SocketIoLayer {
        let max = engine_max_payload(&self.config.limits);
        let (layer, io) = SocketIo::builder()
            .max_payload(max as u64)
            .ws_max_message_size(max)
            .max_buffer_size(SOCKET_SEND_BUFFER)
            .build_layer();
        if self.io.set(io.clone()).is_err() {
            warn!("Signaling::layer called twice: shutdown notices go to the first layer's sockets only");
        }
        let sig = self.clone();
        // The event handlers are installed in a connect middleware, which socketioxide runs before
        // it sends the client its connect packet: installed in the connect handler (which runs
        // after that packet, on a spawned task), an event the client sends as soon as it is
        // connected could arrive first and be dropped unanswered (the load generator's clients
        // hit that race).
        let install = move |socket: SocketRef| {
            sig.clone().connected(socket);
            std::future::ready(Ok::<(), std::convert::Infallible>(()))
        };
        io.ns("/", (|| std::future::ready(())).with(install));
        layer
    }

    fn connected(self: Arc<Self>, socket: SocketRef) {
        let limits = &self.config.limits;
        let (jobs, queue) = mpsc::channel(limits.max_queued_requests.max(1));
        let session = Arc::new(Session {
            jobs,
            bucket: Mutex::new(TokenBucket::new(limits.requests_per_second, limits.request_burst, Instant::now())),
            disconnected: Arc::new(AtomicBool::new(false)),
        });
        let disconnected = session.disconnected.clone();
        self.lock_sessions().insert(socket.id, session);
        tokio::spawn(run_session(self.clone(), socket.clone(), queue, disconnected));

        // Handlers are plain closures, not async: socketioxide calls them in arrival order, so the
        // queue keeps that order (an async handler would be spawned and could be overtaken).
        let sig = self.clone();
        socket.on_fallback(move |s: SocketRef, Event(event): Event, TryData(data): TryData<Value>, ack: AckSender| {
            sig.arrived(&s, event, data.unwrap_or(Value::Null), ack);
            std::future::ready(())
        });
        let sig = self.clone();
        socket.on_disconnect(move |s: SocketRef| {
            sig.disconnected(&s);
            std::future::ready(())
        });
    }

    /// Checks an event against the socket's limits and queues it for the session task.
    fn arrived(&self, socket: &SocketRef, event: String, payload: Value, ack: AckSender) {
        let Some(session) = self.lock_sessions().get(&socket.id).cloned() else { return };
        let limits = &self.config.limits;
        if !session.bucket.lock().unwrap_or_else(|p| p.into_inner()).take(Instant::now()) {
            let retry = limits::retry_after(limits.requests_per_second);
            let e =
                SignalError::new(Code::RateLimited, format!("too many requests; retry in {} ms", retry.as_millis()));
            self.reply_error(&event, &payload, ack, &e);
            return;
        }
        let size = serde_json::to_vec(&payload).map_or(usize::MAX, |v| v.len());
        if size > limits.max_payload_bytes {
            let e = SignalError::new(
                Code::PayloadTooLarge,
                format!("payload is {size} bytes; the limit is {}", limits.max_payload_bytes),
            );
            self.reply_error(&event, &Value::Null, ack, &e);
            return;
        }
        let job = Job { event, payload, ack, arrived: Instant::now() };
        if let Err(mpsc::error::TrySendError::Full(job)) = session.jobs.try_send(job) {
            let e = SignalError::new(Code::RateLimited, "too many requests waiting for an answer");
            self.reply_error(&job.event, &job.payload, job.ack, &e);
        }
    }

    fn disconnected(&self, socket: &SocketRef) {
        // Dropping the session's sender ends its task once the queue is drained; the task then
        // leaves the room.
        if let Some(session) = self.lock_sessions().remove(&socket.id) {
            session.disconnected.store(true, Ordering::Relaxed);
        }
    }

    /// Tells every socket of Octo's own dialect that the server is shutting down and how long the
    /// calls in progress have (`serverDraining`, PROTOCOL.md), so people hear it from the app rather
    /// than from a dropped call. Seed-dialect sockets are left out: their protocol has no such event.
    pub async fn announce_drain(&self, remaining: Duration) {
        let Some(io) = self.io.get() else { return };
        let deadline = SystemTime::now() + remaining;
        let payload = serde_json::json!({
            "remainingMs": u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
            "deadline": deadline.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        });
        match io.except(SEED_SOCKETS).emit("serverDraining", &payload).await {
            Ok(()) => info!(remaining_ms = remaining.as_millis(), "told the connected clients that the server drains"),
            Err(e) => warn!("could not tell every client that the server drains: {e}"),
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `ip` just got the capabilities of `room` (seed dialect).
    pub(crate) fn record_seed_fetch(&self, ip: IpAddr, room: &str) {
        let now = Instant::now();
        let mut fetches = self.seed_fetches.lock().unwrap_or_else(|p| p.into_inner());
        // Entries matter for well under a second; forget old ones so the map stays small.
        fetches.retain(|_, at| now.saturating_duration_since(*at) < SEED_FETCH_MEMORY);
        if fetches.len() >= 10_000 {
            fetches.clear();
        }
        fetches.insert((ip, room.to_owned()), now);
    }

    /// When the seed client at `ip`, whose `join` arrived at `joined_at`, may get its
    /// `transport-created` for `room`: `hold` after the later of its `/getRtpCapabilities` answer and
    /// its `join`. The client sends `join` only once it has the capabilities, so this is at least
    /// `hold` after the client got them, whatever the transit time. No fetch by that address in the
    /// last minute: no hold (not the seed app's client).
    pub(crate) fn seed_release_time(
        &self,
        ip: Option<IpAddr>,
        room: &str,
        joined_at: Option<Instant>,
    ) -> Option<Instant> {
        let ip = ip?;
        let fetches = self.seed_fetches.lock().unwrap_or_else(|p| p.into_inner());
        let fetched = *fetches.get(&(ip, room.to_owned()))?;
        if fetched.elapsed() > SEED_FETCH_MEMORY {
            return None;
        }
        let from = joined_at.map_or(fetched, |j| j.max(fetched));
        Some(from + self.config.seed_transport_hold)
    }
}

/// The client address of the request that opened the socket (needs `into_make_service_with_connect_info`).
pub(crate) fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Which dialect handles `event`: the one that owns its name, and for the names both use (`produce`,
/// `consume`) the dialect the socket joined with, or before joining the seed one if the payload
/// carries the seed app's `roomId`.
fn dialect_of(event: &str, payload: &Value, joined: Option<Dialect>) -> Option<Dialect> {
    if protocol::EVENTS.contains(&event) && seed::EVENTS.contains(&event) {
        return Some(joined.unwrap_or(if payload.get("roomId").is_some() { Dialect::Seed } else { Dialect::Main }));
    }
    if protocol::EVENTS.contains(&event) {
        return Some(Dialect::Main);
    }
    if seed::EVENTS.contains(&event) {
        return Some(Dialect::Seed);
    }
    None
}

impl Signaling {
    /// Answers an event that never reached its handler, in its dialect's shape, and counts it.
    fn reply_error(&self, event: &str, payload: &Value, ack: AckSender, e: &SignalError) {
        let dialect = dialect_of(event, payload, None);
        self.counters.request(dialect.into(), event);
        self.counters.error(dialect.into(), event, e.code);
        let value = match dialect {
            Some(Dialect::Seed) => seed::error_ack(event, e),
            _ => e.to_ack(),
        };
        self.counters.sent(ack.send(&value));
    }
}

async fn run_session(
    sig: Arc<Signaling>,
    socket: SocketRef,
    mut queue: mpsc::Receiver<Job>,
    disconnected: Arc<AtomicBool>,
) {
    let mut state = SessionState::default();
    while let Some(job) = queue.recv().await {
        let joined = state.joined.as_ref().map(|j| j.dialect);
        let dialect = dialect_of(&job.event, &job.payload, joined);
        sig.counters.request(dialect.into(), &job.event);
        if disconnected.load(Ordering::Relaxed) {
            continue;
        }
        match dialect {
            Some(Dialect::Main) => {
                let reply = protocol::handle(&sig, &socket, &mut state, &job.event, job.payload).await;
                let value = match reply {
                    Ok(data) => serde_json::json!({ "data": data }),
                    Err(e) => {
                        debug!(sid = %socket.id, event = job.event, "{e}");
                        sig.counters.error(DialectLabel::Main, &job.event, e.code);
                        e.to_ack()
                    }
                };
                sig.counters.sent(job.ack.send(&value));
            }
            Some(Dialect::Seed) => {
                seed::handle(&sig, &socket, &mut state, &job.event, job.payload, job.ack, job.arrived).await
            }
            None => {
                let e = SignalError::new(Code::UnknownEvent, format!("unknown event {:?}", job.event));
                sig.counters.error(DialectLabel::Unknown, &job.event, e.code);
                sig.counters.sent(job.ack.send(&e.to_ack()));
            }
        }
    }
    if let Some(j) = state.joined.take() {
        j.room.leave(&j.peer_id).await;
    }
    debug!(sid = %socket.id, "session ended");
}
