//! One SCTP association per WebRTC transport, over `rtc-sctp`'s sans-IO endpoint, carried inside
//! DTLS application data (RFC 8261). The browser normally initiates (the worker accepts, as
//! mediasoup's does); the client side exists for tests. DCEP (RFC 8832) is answered here so the
//! layers above only see stream lifecycle and messages.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use octo_ipc::SctpState;
use rtc_sctp::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event, Payload,
    PayloadProtocolIdentifier, ReliabilityType, ServerConfig, StreamEvent, TransportConfig,
};
use rtc_shared::TransportProtocol;

use super::dcep::{ChannelType, DataChannelOpen, DcepMessage, Reliability, write_ack};
use super::forward_tsn_guard::ForwardTsnGuard;

/// The SCTP port every WebRTC endpoint uses (RFC 8841 default; browsers use nothing else).
pub const SCTP_PORT: u16 = 5000;
/// The smallest maximum message size Octo accepts to negotiate.
pub const MIN_MAX_MESSAGE_SIZE: u32 = 256 * 1024;
/// The DTLS layer already demultiplexed the peer; the endpoint still wants addresses.
const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), SCTP_PORT);
const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), SCTP_PORT);

/// Payload protocol identifiers of WebRTC (RFC 8831 §8).
pub mod ppid {
    pub const DCEP: u32 = 50;
    pub const STRING: u32 = 51;
    pub const BINARY: u32 = 53;
    pub const STRING_EMPTY: u32 = 56;
    pub const BINARY_EMPTY: u32 = 57;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SctpError {
    #[error("the association is not connected")]
    NotConnected,
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("payload protocol identifier {0} is not a WebRTC one")]
    UnknownPpid(u32),
    #[error("sctp: {0}")]
    Library(String),
}

impl From<rtc_shared::error::Error> for SctpError {
    fn from(e: rtc_shared::error::Error) -> Self {
        SctpError::Library(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SctpRole {
    /// Waits for the peer's INIT (the worker's side).
    Server,
    /// Sends INIT once started.
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SctpEvent {
    StateChanged(SctpState),
    /// The peer started using a stream (a first DATA chunk or a DCEP OPEN on it).
    StreamOpened(u16),
    /// The stream was reset by the peer, by us, or with the association.
    StreamClosed(u16),
    /// The peer opened a channel with DCEP; it was acknowledged.
    ChannelOpened {
        stream_id: u16,
        channel_type: ChannelType,
        label: String,
        protocol: String,
    },
    /// The peer acknowledged a channel we opened with DCEP.
    ChannelAcked(u16),
    /// A complete application message (DCEP messages are consumed here).
    Message {
        stream_id: u16,
        ppid: u32,
        data: Bytes,
    },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SctpCounters {
    pub messages_received: u64,
    pub bytes_received: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Messages over the maximum size (their stream is reset), unknown PPIDs, bad DCEP.
    pub messages_dropped: u64,
}

/// How the local side sends on a stream: fixed by the data consumer or by a DCEP OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamConfig {
    ordered: bool,
    reliability: Reliability,
}

pub struct SctpAssociation {
    role: SctpRole,
    endpoint: Endpoint,
    transport_config: TransportConfig,
    association: Option<(AssociationHandle, Association)>,
    max_message_size: usize,
    state: SctpState,
    streams: HashMap<u16, StreamConfig>,
    events: VecDeque<SctpEvent>,
    transmits: VecDeque<Bytes>,
    counters: SctpCounters,
    forward_tsn_guard: ForwardTsnGuard,
}

impl SctpAssociation {
    /// `os`/`mis` are the stream counts offered in `sctpParameters`; `max_message_size` is
    /// raised to [`MIN_MAX_MESSAGE_SIZE`] if lower.
    pub fn new(role: SctpRole, os: u16, mis: u16, max_message_size: u32) -> Self {
        let max_message_size = max_message_size.max(MIN_MAX_MESSAGE_SIZE);
        // The receive window must hold at least one whole message being reassembled.
        let receive_buffer = max_message_size.saturating_mul(2).max(1024 * 1024);
        let transport_config = TransportConfig::default()
            .with_sctp_port(SCTP_PORT)
            .with_max_message_size(max_message_size)
            .with_max_receive_buffer_size(receive_buffer)
            .with_max_num_outbound_streams(os.max(1))
            .with_max_num_inbound_streams(mis.max(1));
        let server = match role {
            SctpRole::Server => Some(Arc::new(ServerConfig::new(transport_config.clone()))),
            SctpRole::Client => None,
        };
        let endpoint = Endpoint::new(LOCAL, TransportProtocol::UDP, Arc::new(EndpointConfig::new()), server);
        Self {
            role,
            endpoint,
            transport_config,
            association: None,
            max_message_size: max_message_size as usize,
            state: SctpState::New,
            streams: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            counters: SctpCounters::default(),
            forward_tsn_guard: ForwardTsnGuard::default(),
        }
    }

    pub fn state(&self) -> SctpState {
        self.state
    }

    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    pub fn counters(&self) -> SctpCounters {
        self.counters
    }

    /// DTLS is connected: a client sends its INIT, a server starts listening.
    pub fn start(&mut self, now: Instant) {
        if self.state != SctpState::New {
            return;
        }
        self.set_state(SctpState::Connecting);
        if self.role == SctpRole::Client {
            match self.endpoint.connect(now, ClientConfig::new(self.transport_config.clone()), REMOTE) {
                Ok(pair) => self.association = Some(pair),
                Err(_) => self.set_state(SctpState::Failed),
            }
        }
    }

    /// One SCTP packet, decrypted from a DTLS record. Malformed packets are dropped by the library.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        if matches!(self.state, SctpState::Failed | SctpState::Closed) {
            return;
        }
        if self.state == SctpState::New {
            self.start(now);
        }
        if !self.forward_tsn_guard.admit(packet) {
            return;
        }
        // rtc-sctp 0.21.1 panics on some malformed chunks (a slice past the end of a DATA chunk
        // was seen in our hostile test). A peer must not take the worker down: contain it, and
        // fail this association, whose state can no longer be trusted.
        let endpoint = &mut self.endpoint;
        let association = &mut self.association;
        let data = Bytes::copy_from_slice(packet);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::route(endpoint, association, now, data);
        }));
        if outcome.is_err() {
            self.fail_after_panic();
            return;
        }
        self.drain(now);
    }

    /// The library panicked inside this association: drop it (its state can no longer be trusted)
    /// and tell the owner it closed.
    fn fail_after_panic(&mut self) {
        self.association = None;
        self.transmits.clear();
        self.counters.messages_dropped += 1;
        let state = if self.state == SctpState::Connected { SctpState::Closed } else { SctpState::Failed };
        self.set_state(state);
    }

    fn route(
        endpoint: &mut Endpoint,
        association: &mut Option<(AssociationHandle, Association)>,
        now: Instant,
        data: Bytes,
    ) {
        let Some((handle, event)) = endpoint.handle(now, REMOTE, None, data) else {
            return;
        };
        let current = association;
        match event {
            // One association per transport: a second INIT with a new tag would replace a
            // working association, so it is ignored while one exists.
            DatagramEvent::NewAssociation(association) if current.is_none() => {
                *current = Some((handle, association));
            }
            DatagramEvent::AssociationEvent(event) => {
                if let Some((h, association)) = current.as_mut()
                    && *h == handle
                {
                    association.handle_event(event);
                }
            }
            _ => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.association.as_ref().and_then(|(_, a)| a.poll_timeout())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, association)) = self.association.as_mut()
            && association.poll_timeout().is_some_and(|t| t <= now)
        {
            // A SACK built from a hostile peer's TSNs overflowed a u16 inside rtc-sctp 0.21.1
            // (payload_queue.rs, debug builds): contained like a panic on input.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| association.handle_timeout(now)));
            if outcome.is_err() {
                self.fail_after_panic();
                return;
            }
            self.drain(now);
        }
    }

    /// The next SCTP packet to hand to DTLS.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.transmits.is_empty()
            && let Some((_, association)) = self.association.as_mut()
        {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| association.poll_transmit(now)));
            match outcome {
                Ok(Some(t)) => {
                    if let Payload::RawEncode(packets) = t.message {
                        self.transmits.extend(packets);
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    self.fail_after_panic();
                    return None;
                }
            }
        }
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SctpEvent> {
        self.events.pop_front()
    }

    /// Fixes how we send on `stream_id` (a data consumer's stream, or before opening a channel).
    /// Takes effect now if the association is up, else when the stream first carries data.
    pub fn configure_stream(&mut self, stream_id: u16, ordered: bool, reliability: Reliability) {
        self.streams.insert(stream_id, StreamConfig { ordered, reliability });
        if let Some((_, association)) = self.association.as_mut()
            && let Ok(mut stream) = association.stream(stream_id)
        {
            apply(&mut stream, StreamConfig { ordered, reliability });
        }
    }

    /// Opens a channel with DCEP (the role a browser plays for non-negotiated channels).
    pub fn open_channel(
        &mut self,
        now: Instant,
        stream_id: u16,
        channel_type: ChannelType,
        label: &str,
        protocol: &str,
    ) -> Result<(), SctpError> {
        let open = DataChannelOpen { channel_type, priority: 256, label, protocol };
        let mut buf = vec![0u8; open.len()];
        open.write(&mut buf).map_err(|e| SctpError::Library(e.to_string()))?;
        self.configure_stream(stream_id, channel_type.ordered, channel_type.reliability);
        self.send(now, stream_id, ppid::DCEP, &buf)
    }

    /// Sends one message. An empty string or binary message goes out as the RFC 8831 §6.6 empty
    /// PPID with one zero byte, since SCTP cannot carry an empty DATA chunk.
    pub fn send(&mut self, now: Instant, stream_id: u16, ppid: u32, data: &[u8]) -> Result<(), SctpError> {
        if self.state != SctpState::Connected {
            return Err(SctpError::NotConnected);
        }
        if data.len() > self.max_message_size {
            return Err(SctpError::MessageTooLarge { size: data.len(), max: self.max_message_size });
        }
        let (ppid, data): (u32, &[u8]) = match (ppid, data.is_empty()) {
            (ppid::STRING | ppid::STRING_EMPTY, true) => (ppid::STRING_EMPTY, &[0]),
            (ppid::BINARY | ppid::BINARY_EMPTY, true) => (ppid::BINARY_EMPTY, &[0]),
            (p, _) => (p, data),
        };
        let ppi = PayloadProtocolIdentifier::from(ppid);
        if ppi == PayloadProtocolIdentifier::Unknown {
            return Err(SctpError::UnknownPpid(ppid));
        }
        let config = self.streams.get(&stream_id).copied();
        let Some((_, association)) = self.association.as_mut() else { return Err(SctpError::NotConnected) };
        let mut stream = match association.stream(stream_id) {
            Ok(stream) => stream,
            Err(_) => {
                let mut stream = association.open_stream(stream_id, ppi)?;
                if let Some(config) = config {
                    apply(&mut stream, config);
                }
                stream
            }
        };
        stream.write_with_ppi(now, data, ppi)?;
        self.counters.messages_sent += 1;
        self.counters.bytes_sent += data.len() as u64;
        Ok(())
    }

    /// Resets a stream in both directions (RFC 6525), as closing a data producer or consumer does.
    pub fn reset_stream(&mut self, now: Instant, stream_id: u16) {
        self.streams.remove(&stream_id);
        if let Some((_, association)) = self.association.as_mut()
            && let Ok(mut stream) = association.stream(stream_id)
        {
            let _ = stream.close(now);
        }
    }

    /// Aborts the association (what a closing peer connection does).
    pub fn close(&mut self, now: Instant) {
        if let Some((_, association)) = self.association.as_mut() {
            let _ = association.abort();
        }
        self.drain(now);
        self.set_state(SctpState::Closed);
    }

    /// Turns the library's events into ours, reading complete messages off readable streams.
    fn drain(&mut self, now: Instant) {
        loop {
            let Some((handle, association)) = self.association.as_mut() else { return };
            let handle = *handle;
            if let Some(ev) = association.poll_endpoint_event() {
                self.endpoint.handle_event(handle, ev);
                continue;
            }
            let Some(event) = association.poll() else { break };
            match event {
                Event::Connected => self.set_state(SctpState::Connected),
                Event::HandshakeFailed { .. } => self.set_state(SctpState::Failed),
                Event::AssociationLost { id, .. } => self.events.push_back(SctpEvent::StreamClosed(id)),
                Event::Stream(StreamEvent::Opened { id }) => {
                    let _ = association.accept_stream();
                    if let Some(config) = self.streams.get(&id).copied()
                        && let Ok(mut stream) = association.stream(id)
                    {
                        apply(&mut stream, config);
                    }
                    self.events.push_back(SctpEvent::StreamOpened(id));
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read_stream(now, id),
                _ => {}
            }
        }
        // A server association reads as closed until the COOKIE ECHO arrives (the INIT ACK is
        // stateless), so only a connected association can be lost this way; handshake failures
        // come as events.
        let closed = self.association.as_ref().is_some_and(|(_, a)| a.is_closed());
        if closed && self.state == SctpState::Connected {
            self.set_state(SctpState::Closed);
        }
    }

    fn read_stream(&mut self, now: Instant, id: u16) {
        loop {
            let Some((_, association)) = self.association.as_mut() else { return };
            let Ok(mut stream) = association.stream(id) else { return };
            let chunks = match stream.read_sctp() {
                Ok(Some(chunks)) => chunks,
                _ => return,
            };
            let ppid = chunks.ppi as u32;
            match chunks.to_payload(self.max_message_size) {
                Ok(data) => self.on_message(now, id, ppid, data.freeze()),
                Err(_) => {
                    // Over the maximum we advertised: drop it and reset the stream, so the peer's
                    // channel closes instead of silently losing data.
                    self.counters.messages_dropped += 1;
                    let _ = stream.close(now);
                    return;
                }
            }
        }
    }

    fn on_message(&mut self, now: Instant, stream_id: u16, ppid: u32, data: Bytes) {
        match ppid {
            ppid::DCEP => self.on_dcep(now, stream_id, &data),
            ppid::STRING | ppid::BINARY | ppid::STRING_EMPTY | ppid::BINARY_EMPTY => {
                self.counters.messages_received += 1;
                self.counters.bytes_received += data.len() as u64;
                self.events.push_back(SctpEvent::Message { stream_id, ppid, data });
            }
            // `rtc-sctp` maps every PPID it does not know to one value; nothing to forward.
            _ => self.counters.messages_dropped += 1,
        }
    }

    fn on_dcep(&mut self, now: Instant, stream_id: u16, data: &[u8]) {
        match DcepMessage::parse(data) {
            Ok(DcepMessage::Open(open)) => {
                let config =
                    StreamConfig { ordered: open.channel_type.ordered, reliability: open.channel_type.reliability };
                let event = SctpEvent::ChannelOpened {
                    stream_id,
                    channel_type: open.channel_type,
                    label: open.label.to_owned(),
                    protocol: open.protocol.to_owned(),
                };
                // Our side of the channel sends as the opener asked (RFC 8832 §6).
                self.configure_stream(stream_id, config.ordered, config.reliability);
                let mut ack = [0u8; 1];
                if let Ok(n) = write_ack(&mut ack)
                    && self.send(now, stream_id, ppid::DCEP, &ack[..n]).is_ok()
                {
                    self.events.push_back(event);
                }
            }
            Ok(DcepMessage::Ack) => self.events.push_back(SctpEvent::ChannelAcked(stream_id)),
            Err(_) => self.counters.messages_dropped += 1,
        }
    }

    fn set_state(&mut self, state: SctpState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(SctpEvent::StateChanged(state));
        }
    }
}

fn apply(stream: &mut rtc_sctp::Stream<'_>, config: StreamConfig) {
    let (kind, value) = match config.reliability {
        Reliability::Reliable => (ReliabilityType::Reliable, 0),
        Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
        Reliability::MaxPacketLifeTime(ms) => (ReliabilityType::Timed, ms),
    };
    let _ = stream.set_reliability_params(!config.ordered, kind, value);
}
