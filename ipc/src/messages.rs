//! Requests, responses and notifications, each addressed to a typed [`Target`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RequestError;
use crate::ids::{ConsumerId, DataConsumerId, DataProducerId, ProducerId, RouterId, TransportId};
use crate::rtp_parameters::{MediaKind, RtpCapabilities, RtpCodecCapability, RtpParameters, RtpType};
use crate::stats::{RtpStreamStats, TransportStats};
use crate::transport_parameters::{
    DtlsParameters, DtlsRole, DtlsState, IceCandidate, IceParameters, IceState, NumSctpStreams, SctpParameters,
    SrtpParameters, TransportTuple,
};

/// The object a request or notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Worker,
    Router(RouterId),
    Transport(TransportId),
    Producer(ProducerId),
    Consumer(ConsumerId),
    DataProducer(DataProducerId),
    DataConsumer(DataConsumerId),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Worker => f.write_str("worker"),
            Target::Router(id) => write!(f, "{} {id}", RouterId::LABEL),
            Target::Transport(id) => write!(f, "{} {id}", TransportId::LABEL),
            Target::Producer(id) => write!(f, "{} {id}", ProducerId::LABEL),
            Target::Consumer(id) => write!(f, "{} {id}", ConsumerId::LABEL),
            Target::DataProducer(id) => write!(f, "{} {id}", DataProducerId::LABEL),
            Target::DataConsumer(id) => write!(f, "{} {id}", DataConsumerId::LABEL),
        }
    }
}

/// A request from the controller, with the object it is addressed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Worker(WorkerRequest),
    Router(RouterId, RouterRequest),
    Transport(TransportId, TransportRequest),
    Producer(ProducerId, ProducerRequest),
    Consumer(ConsumerId, ConsumerRequest),
    DataProducer(DataProducerId, DataProducerRequest),
    DataConsumer(DataConsumerId, DataConsumerRequest),
}

impl Request {
    pub fn target(&self) -> Target {
        match self {
            Request::Worker(_) => Target::Worker,
            Request::Router(id, _) => Target::Router(*id),
            Request::Transport(id, _) => Target::Transport(*id),
            Request::Producer(id, _) => Target::Producer(*id),
            Request::Consumer(id, _) => Target::Consumer(*id),
            Request::DataProducer(id, _) => Target::DataProducer(*id),
            Request::DataConsumer(id, _) => Target::DataConsumer(*id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Answered with [`Response::WorkerDump`].
    Dump,
    /// Creates a router for `media_codecs`; answered with [`Response::RouterCreated`].
    CreateRouter { router_id: RouterId, media_codecs: Vec<RtpCodecCapability> },
    /// Answered with [`Response::WorkerMetrics`].
    GetMetrics,
    /// Closes every router and ends the worker process after the response is written.
    Close,
    /// Replaces the worker's log filter (tracing's EnvFilter syntax), as the controller's own is on
    /// SIGHUP. A filter that does not parse fails with `InvalidRequest` and the old one stays.
    SetLogFilter { filter: String },
    /// A pipe transport to another worker (or, later, another host), on the worker's shared UDP
    /// port and told apart by the far end's address: it carries the RTP and RTCP of every producer
    /// piped between the two, for all rooms, without ICE or DTLS. Answered with
    /// [`Response::PipeTransportCreated`]; media flows after [`TransportRequest::ConnectPipe`].
    CreatePipeTransport { transport_id: TransportId, srtp: bool },
    /// The controller's heartbeat: answered with [`Response::Ok`] by a worker whose event loop
    /// turns. A worker that leaves it unanswered too long is taken as hung, killed and respawned.
    Ping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouterRequest {
    /// Answered with [`Response::RouterDump`].
    Dump,
    Close,
    /// A WebRTC transport on the worker's shared UDP port(s); answered with
    /// [`Response::WebRtcTransportCreated`].
    CreateWebRtcTransport {
        transport_id: TransportId,
        options: WebRtcTransportOptions,
    },
    /// Answered with [`Response::CanConsume`].
    CanConsume {
        producer_id: ProducerId,
        rtp_capabilities: RtpCapabilities,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebRtcTransportOptions {
    /// Offer an SCTP association for DataChannels with these stream counts.
    pub sctp: Option<NumSctpStreams>,
    pub max_sctp_message_size: u32,
}

impl Default for WebRtcTransportOptions {
    fn default() -> Self {
        Self { sctp: None, max_sctp_message_size: 262_144 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransportRequest {
    Dump,
    Close,
    /// Starts DTLS with the remote parameters; answered with [`Response::TransportConnected`].
    Connect {
        dtls_parameters: DtlsParameters,
    },
    /// New local ICE credentials; answered with [`Response::IceParameters`].
    RestartIce,
    /// Answered with [`Response::ProducerCreated`].
    Produce {
        producer_id: ProducerId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        paused: bool,
    },
    /// Answered with [`Response::ConsumerCreated`]. Consumers of video start paused by convention
    /// of the caller; `paused` is honoured as given.
    Consume {
        consumer_id: ConsumerId,
        producer_id: ProducerId,
        rtp_capabilities: RtpCapabilities,
        paused: bool,
    },
    /// Answered with [`Response::TransportStats`].
    GetStats,
    /// An incoming SCTP stream from the peer becomes a data producer; answered with
    /// [`Response::DataProducerCreated`]. The transport must have been created with `sctp`.
    ProduceData {
        data_producer_id: DataProducerId,
        sctp_stream_parameters: SctpStreamParameters,
        label: String,
        protocol: String,
    },
    /// An outgoing SCTP stream (its id allocated by this transport) carrying the messages of a
    /// data producer of the same router; answered with [`Response::DataConsumerCreated`].
    ConsumeData {
        data_consumer_id: DataConsumerId,
        data_producer_id: DataProducerId,
    },
    /// Pipe transports: where the far end listens and, with SRTP, the key it sends with. A pipe is
    /// connected once; answered with [`Response::Ok`]. Connecting also starts the pipe's SCTP
    /// association for data channels: `sctp_client` says whether this end is its client (the
    /// two ends must disagree); `None` lets the end with the lower (port, address) be the client,
    /// which is right between two workers of one host but not across hosts whose workers share a
    /// port number and listen on a wildcard address.
    ConnectPipe {
        remote: std::net::SocketAddr,
        srtp_parameters: Option<SrtpParameters>,
        sctp_client: Option<bool>,
    },
    /// Pipe transports: a consumer that sends every packet of `producer_id` (a producer of any
    /// router of this worker) across the pipe as the router has it — its SSRCs, sequence numbers and
    /// timestamps unchanged. Answered with [`Response::PipeConsumerCreated`].
    ConsumeToPipe {
        consumer_id: ConsumerId,
        producer_id: ProducerId,
    },
    /// Pipe transports: the far end of a [`TransportRequest::ConsumeToPipe`], a producer of
    /// `router_id` with the origin's id and the pipe consumer's `rtp_parameters`, whose consumers on
    /// this worker see the origin's stream. Answered with [`Response::ProducerCreated`].
    ProduceFromPipe {
        producer_id: ProducerId,
        router_id: RouterId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        paused: bool,
    },
    /// Pipe transports: a data consumer that sends every message of `data_producer_id` (of any
    /// router of this worker) across the pipe's SCTP association, on a stream of its own. Answered
    /// with [`Response::DataConsumerCreated`], whose stream parameters the far end's
    /// [`TransportRequest::ProduceDataFromPipe`] takes.
    ConsumeDataToPipe {
        data_consumer_id: DataConsumerId,
        data_producer_id: DataProducerId,
    },
    /// Pipe transports: the far end of a [`TransportRequest::ConsumeDataToPipe`], a data producer of
    /// `router_id` with the origin's id, on the stream the pipe data consumer sends on. Answered
    /// with [`Response::DataProducerCreated`].
    ProduceDataFromPipe {
        data_producer_id: DataProducerId,
        router_id: RouterId,
        sctp_stream_parameters: SctpStreamParameters,
        label: String,
        protocol: String,
    },
}

/// How one SCTP stream delivers, as mediasoup's `sctpStreamParameters`. At most one of
/// `max_packet_life_time` and `max_retransmits` is set; neither means reliable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SctpStreamParameters {
    pub stream_id: u16,
    pub ordered: bool,
    /// Milliseconds a message may be retransmitted for.
    pub max_packet_life_time: Option<u16>,
    pub max_retransmits: Option<u16>,
}

/// The SCTP association's state, as mediasoup's `sctpState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SctpState {
    New,
    Connecting,
    Connected,
    Failed,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataProducerRequest {
    Dump,
    Close,
    /// Answered with [`Response::DataProducerStats`].
    GetStats,
    /// While enabled, the worker also hands the producer's text messages to the controller
    /// ([`DataProducerNotification::Message`]; at most 4 KiB each, 20 a second with bursts of 40,
    /// the rest counted as `tap_dropped`). Answered with [`Response::Ok`].
    SetTap {
        enabled: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataConsumerRequest {
    Dump,
    Close,
    /// Answered with [`Response::DataConsumerStats`].
    GetStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProducerRequest {
    Dump,
    Close,
    Pause,
    Resume,
    /// Answered with [`Response::RtpStreamStats`].
    GetStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsumerRequest {
    Dump,
    Close,
    Pause,
    Resume,
    /// Asks the producer for a keyframe on this consumer's behalf (throttled).
    RequestKeyFrame,
    /// Answered with [`Response::RtpStreamStats`].
    GetStats,
    /// The most a simulcast consumer should forward (mediasoup's `setPreferredLayers`); the
    /// temporal layer defaults to the highest. Clamped to what the producer has.
    SetPreferredLayers(ConsumerLayers),
    /// Higher is served first when bandwidth is short (1–255; 1 by default).
    SetPriority(u8),
}

/// A consumer's spatial and temporal layer (mediasoup's `ConsumerLayers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerLayers {
    pub spatial_layer: u8,
    pub temporal_layer: Option<u8>,
}

/// A successful answer; which variant depends on the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The request succeeded and has nothing to report.
    Ok,
    WorkerDump(WorkerDump),
    WorkerMetrics(WorkerMetrics),
    RouterCreated {
        rtp_capabilities: RtpCapabilities,
    },
    RouterDump(RouterDump),
    WebRtcTransportCreated(WebRtcTransportData),
    CanConsume(bool),
    TransportConnected {
        dtls_local_role: DtlsRole,
    },
    IceParameters(IceParameters),
    ProducerCreated {
        rtp_type: RtpType,
    },
    ConsumerCreated(ConsumerData),
    TransportStats(TransportStats),
    RtpStreamStats(Vec<RtpStreamStats>),
    /// Dump of a transport, producer or consumer: a human-readable description for operators.
    ObjectDump(String),
    DataProducerCreated,
    DataConsumerCreated(DataConsumerData),
    DataProducerStats(DataProducerStats),
    DataConsumerStats(DataConsumerStats),
    PipeTransportCreated(PipeTransportData),
    PipeConsumerCreated(PipeConsumerData),
}

/// What the controller needs to connect the far end of a new pipe transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipeTransportData {
    pub id: TransportId,
    /// The worker's UDP address the pipe receives on and sends from (its shared port; an
    /// unspecified IP means every local address).
    pub local: std::net::SocketAddr,
    /// The key this end sends with, when created with `srtp`.
    pub srtp_parameters: Option<SrtpParameters>,
}

/// What the far end of a pipe consumer needs for its `ProduceFromPipe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipeConsumerData {
    pub id: ConsumerId,
    pub producer_id: ProducerId,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    pub producer_paused: bool,
}

/// What a client needs to receive a new data consumer (mediasoup's `consumeData` answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataConsumerData {
    pub id: DataConsumerId,
    pub data_producer_id: DataProducerId,
    pub sctp_stream_parameters: SctpStreamParameters,
    pub label: String,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataProducerStats {
    pub label: String,
    pub protocol: String,
    pub messages_received: u64,
    pub bytes_received: u64,
    /// Messages handed to the controller while tapped, and those the tap refused (binary,
    /// too long, or over its rate).
    pub tap_messages: u64,
    pub tap_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataConsumerStats {
    pub label: String,
    pub protocol: String,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Messages that could not be queued on the SCTP stream (association down, too large).
    pub messages_dropped: u64,
}

/// What a client needs to connect to a new WebRTC transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebRtcTransportData {
    pub id: TransportId,
    pub ice_parameters: IceParameters,
    pub ice_candidates: Vec<IceCandidate>,
    pub ice_state: IceState,
    pub dtls_parameters: DtlsParameters,
    pub dtls_state: DtlsState,
    pub sctp_parameters: Option<SctpParameters>,
}

/// What a client needs to receive a new consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    pub id: ConsumerId,
    pub producer_id: ProducerId,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    #[serde(rename = "type")]
    pub rtp_type: RtpType,
    pub paused: bool,
    pub producer_paused: bool,
}

/// What a worker has and has done, for Prometheus. Counters only ever grow (closed objects'
/// counts are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerMetrics {
    pub routers: u64,
    pub transports: u64,
    pub producers: u64,
    pub consumers: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Datagrams dropped: malformed, from unknown sources, undecryptable or unroutable.
    pub packets_dropped: u64,
    pub srtp_failures: u64,
    pub nacks_received: u64,
    pub keyframe_requests_received: u64,
    /// Pipe transports to other workers, the producers piped in over them and the consumers
    /// piping this worker's producers out (none of which are in `transports`, `producers` or
    /// `consumers`, which count what clients created).
    pub pipe_transports: u64,
    pub pipe_producers: u64,
    pub pipe_consumers: u64,
    /// Bytes through pipe transports each way (also in `bytes_received` / `bytes_sent`).
    pub pipe_bytes_received: u64,
    pub pipe_bytes_sent: u64,
    /// Simulcast consumers by the encoding they forward now (lowest first; `[3]`: none).
    #[serde(default)]
    pub simulcast_consumers_by_layer: [u64; 4],
    /// Consumers whose receiver reports heavy loss (score below 5).
    #[serde(default)]
    pub consumers_low_score: u64,
    /// WebRTC transports whose downlink estimator has feedback, and their estimates summed (bit/s).
    #[serde(default)]
    pub estimated_transports: u64,
    #[serde(default)]
    pub estimated_bitrate_sum: u64,
    /// The worker's ICE-TCP connections (filled in by its IO shell, which owns them).
    #[serde(default)]
    pub ice_tcp: IceTcpMetrics,
    /// Video the pacer (`--pace-video`) dropped because a transport's queue was full.
    #[serde(default)]
    pub pacer_packets_dropped: u64,
    /// DataChannel endpoints: data producers and data consumers.
    #[serde(default)]
    pub data_producers: u64,
    #[serde(default)]
    pub data_consumers: u64,
}

/// ICE-TCP connections of a worker: open now, and what became of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IceTcpMetrics {
    pub connections: u64,
    pub accepted: u64,
    /// Closed at accept: the worker had its maximum open.
    pub refused: u64,
    /// Closed for a malformed stream: bad framing, or a first packet that is not STUN.
    pub closed_malformed: u64,
    /// Closed after silence.
    pub closed_idle: u64,
    /// Packets dropped because their connection's write buffer was full (a reader too slow).
    pub send_drops: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerDump {
    pub pid: u32,
    pub router_ids: Vec<RouterId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterDump {
    pub id: RouterId,
    pub transport_ids: Vec<TransportId>,
    pub producer_ids: Vec<ProducerId>,
    pub consumer_ids: Vec<ConsumerId>,
}

/// Something that happened in the worker without being asked, addressed to the object it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Notification {
    Worker(WorkerNotification),
    Router(RouterId, RouterNotification),
    Transport(TransportId, TransportNotification),
    Producer(ProducerId, ProducerNotification),
    Consumer(ConsumerId, ConsumerNotification),
    DataConsumer(DataConsumerId, DataConsumerNotification),
    DataProducer(DataProducerId, DataProducerNotification),
}

impl Notification {
    pub fn target(&self) -> Target {
        match self {
            Notification::Worker(_) => Target::Worker,
            Notification::Router(id, _) => Target::Router(*id),
            Notification::Transport(id, _) => Target::Transport(*id),
            Notification::Producer(id, _) => Target::Producer(*id),
            Notification::Consumer(id, _) => Target::Consumer(*id),
            Notification::DataConsumer(id, _) => Target::DataConsumer(*id),
            Notification::DataProducer(id, _) => Target::DataProducer(*id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerNotification {
    /// Sent once when the worker's loop is ready for requests.
    Running { pid: u32 },
}

/// Why an object closed without its owner asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The worker process hosting it exited or was killed. Sent by the controller on the worker's behalf.
    WorkerDied,
    /// The object that contained it closed.
    ParentClosed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouterNotification {
    Closed {
        reason: CloseReason,
    },
    /// The loudest audio producer of the room changed (see the worker's ActiveSpeakerObserver).
    ActiveSpeaker {
        producer_id: ProducerId,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransportNotification {
    Closed { reason: CloseReason },
    IceStateChange { ice_state: IceState },
    IceSelectedTupleChange { tuple: Option<TransportTuple> },
    DtlsStateChange { dtls_state: DtlsState, reason: Option<String> },
    SctpStateChange { sctp_state: SctpState },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProducerNotification {
    Closed { reason: CloseReason },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsumerNotification {
    Closed {
        reason: CloseReason,
    },
    /// The producer closed; the consumer closed with it.
    ProducerClosed,
    ProducerPaused,
    ProducerResumed,
    /// The layers a simulcast consumer forwards changed; `None`: it forwards nothing now.
    LayersChanged(Option<ConsumerLayers>),
    /// The consumer's score (0–10, from its receiver's reports) changed.
    Score {
        score: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataProducerNotification {
    /// A text message the tapped data producer received (see [`DataProducerRequest::SetTap`]).
    Message { ppid: u32, payload: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataConsumerNotification {
    /// The data producer closed; the data consumer closed with it.
    DataProducerClosed,
}

/// Everything the controller writes to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerMessage {
    Request { id: u32, request: Request },
}

/// Everything a worker writes to the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerMessage {
    Response { id: u32, result: Result<Response, RequestError> },
    Notification(Notification),
}
