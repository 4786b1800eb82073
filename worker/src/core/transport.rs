//! A transport: a WebRTC peer connection (ICE-lite, DTLS and, once keyed, SRTP) or a pipe to another
//! worker (a fixed remote address and SRTP keys from the controller, or none), plus the tables that
//! route its incoming RTP to producers and its incoming RTCP to consumers. Both kinds share the whole
//! forwarding path: only how a transport finds its remote and its keys differs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use octo_ipc::{
    DataConsumerId, DataProducerId, DtlsParameters, DtlsRole, DtlsState, IceParameters, IceState, ProducerId,
    SctpParameters, TransportId, TransportStats, TransportTuple,
};

use super::bwe::SendSideBwe;
use super::dtls::{DtlsIdentity, DtlsLocalRole, DtlsTransport};
use super::ice::{IceLite, Tuple};
use super::id_map::IdMap;
use super::rtp::recv_stats::BitrateWindow;
use super::rtp::twcc::TwccRecorder;
use super::sctp::{SctpAssociation, SctpRole};
use super::srtp::{RecvProtection, SendProtection};
use super::transmit::SocketId;

pub fn ipc_tuple(tuple: Tuple) -> TransportTuple {
    TransportTuple { local_address: tuple.local, remote_address: tuple.remote, protocol: tuple.protocol }
}

/// Where an incoming SSRC goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingStream {
    pub producer: ProducerId,
    /// Index of the producer's encoding.
    pub encoding: usize,
    pub is_rtx: bool,
}

#[derive(Debug, Default, Clone)]
pub struct TransportCounters {
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub packets_dropped: u64,
    pub srtp_failures: u64,
    /// Media bytes over the last second, each way.
    pub recv_rate: BitrateWindow,
    pub send_rate: BitrateWindow,
    /// Retransmissions among what is sent, over the last second (their share of the budget).
    pub rtx_rate: BitrateWindow,
}

/// How a transport reaches its remote end. (One per transport, nearly all of them `Ice`: not worth
/// a box.)
#[allow(clippy::large_enum_variant)]
pub enum Link {
    /// A browser (or other WebRTC peer): ICE-lite picks the tuple, DTLS makes the keys.
    Ice(IceLite),
    /// Another Octo worker: the controller names the remote address and hands over the keys.
    Pipe(PipeLink),
}

pub struct PipeLink {
    /// The far end's address, once `ConnectPipe` named it; only datagrams from it reach the pipe.
    pub remote: Option<SocketAddr>,
    /// SRTP was asked for at creation (else RTP and RTCP cross the pipe in the clear).
    pub srtp: bool,
}

pub struct Transport {
    pub id: TransportId,
    pub link: Link,
    pub dtls: Option<DtlsTransport>,
    /// Where to send: the socket and remote address of ICE's selected tuple.
    pub selected: Option<(SocketId, SocketAddr)>,
    pub producers: Vec<ProducerId>,
    pub consumers: Vec<octo_ipc::ConsumerId>,
    pub incoming: IdMap<u32, IncomingStream>,
    /// Outgoing SSRC (media and RTX) → consumer, for RTCP feedback from the receiver.
    pub outgoing: IdMap<u32, octo_ipc::ConsumerId>,
    pub srtp_send: Option<SendProtection>,
    pub srtp_recv: Option<RecvProtection>,
    /// Transport-wide congestion control feedback for what this transport receives.
    pub twcc: TwccRecorder,
    /// The downlink estimator, once a consumer negotiated transport-cc (boxed: most of its
    /// memory is the send history, and transports that only publish never have one).
    pub bwe: Option<Box<SendSideBwe>>,
    /// The next transport-wide sequence number stamped on what this transport sends.
    pub twcc_out_seq: u16,
    /// The probe cluster being sent.
    pub probe: Option<super::downlink::ProbeSend>,
    /// Holds video that would overrun the downlink estimate (see `pacer.rs`).
    pub pacer: super::pacing::TransportPacer,
    /// In the worker's list of transports whose pacer holds packets.
    pub pacing_listed: bool,
    /// Whether its video goes through the pacer (the worker's `pace_video`).
    pub paced: bool,
    /// The probator stream's next sequence number (probe padding).
    pub probator_seq: u16,
    /// The RTCP CNAME of every producer on this transport.
    pub cname_for_producers: Option<String>,
    /// The SSRC our own RTCP (receiver reports, NACK, PLI, feedback) is sent from.
    pub rtcp_ssrc: u32,
    pub next_receiver_report: Option<Instant>,
    pub sctp_parameters: Option<SctpParameters>,
    /// The DataChannel association, when the transport was created with `sctp`.
    pub sctp: Option<SctpAssociation>,
    pub data_producers: Vec<DataProducerId>,
    pub data_consumers: Vec<DataConsumerId>,
    /// Incoming SCTP stream id → the data producer on it.
    pub data_streams: HashMap<u16, DataProducerId>,
    pub counters: TransportCounters,
    /// Where the search for a data consumer's stream id starts: ids go round rather than lowest-first
    /// so a just-closed stream is not handed out again while the browser may still be resetting it
    /// (Chromium refuses `createDataChannel` on an id whose old channel is still closing).
    pub next_data_stream_id: u16,
    next_mid: u32,
}

impl Transport {
    pub fn new(id: TransportId, ice: IceLite, sctp_parameters: Option<SctpParameters>, rtcp_ssrc: u32) -> Self {
        Self::with_link(id, Link::Ice(ice), sctp_parameters, rtcp_ssrc)
    }

    /// A pipe transport, not yet connected.
    pub fn pipe(id: TransportId, srtp: bool, rtcp_ssrc: u32) -> Self {
        Self::with_link(id, Link::Pipe(PipeLink { remote: None, srtp }), None, rtcp_ssrc)
    }

    fn with_link(id: TransportId, link: Link, sctp_parameters: Option<SctpParameters>, rtcp_ssrc: u32) -> Self {
        Self {
            outgoing: IdMap::default(),
            srtp_send: None,
            srtp_recv: None,
            twcc: TwccRecorder::new(rtcp_ssrc),
            bwe: None,
            twcc_out_seq: 0,
            probe: None,
            pacer: Default::default(),
            pacing_listed: false,
            paced: false,
            probator_seq: 0,
            cname_for_producers: None,
            rtcp_ssrc,
            next_receiver_report: None,
            id,
            link,
            dtls: None,
            selected: None,
            producers: Vec::new(),
            consumers: Vec::new(),
            incoming: IdMap::default(),
            sctp: sctp_parameters.map(|p| SctpAssociation::new(SctpRole::Server, p.os, p.mis, p.max_message_size)),
            data_producers: Vec::new(),
            data_consumers: Vec::new(),
            data_streams: HashMap::new(),
            sctp_parameters,
            counters: TransportCounters::default(),
            next_data_stream_id: 0,
            next_mid: 0,
        }
    }

    /// The transport-wide sequence number for the next packet to `consumer`, if its receiver
    /// reports on them.
    pub fn next_twcc_seq(&mut self, consumer: &super::consumer::Consumer) -> Option<u16> {
        consumer.twcc_ext_id?;
        self.bwe.as_ref()?;
        let seq = self.twcc_out_seq;
        self.twcc_out_seq = seq.wrapping_add(1);
        Some(seq)
    }

    pub fn ice(&self) -> Option<&IceLite> {
        match &self.link {
            Link::Ice(ice) => Some(ice),
            Link::Pipe(_) => None,
        }
    }

    pub fn ice_mut(&mut self) -> Option<&mut IceLite> {
        match &mut self.link {
            Link::Ice(ice) => Some(ice),
            Link::Pipe(_) => None,
        }
    }

    pub fn is_pipe(&self) -> bool {
        matches!(self.link, Link::Pipe(_))
    }

    /// Whether datagrams from `tuple` may reach this transport: ICE's consent for a peer connection,
    /// the configured far end for a pipe.
    pub fn accepts(&self, tuple: &Tuple) -> bool {
        match &self.link {
            Link::Ice(ice) => ice.is_valid_tuple(tuple),
            Link::Pipe(pipe) => pipe.remote == Some(tuple.remote),
        }
    }

    /// A pipe's state in ICE's words: connected once it has a far end.
    pub fn ice_state(&self) -> IceState {
        match &self.link {
            Link::Ice(ice) => ice.state(),
            Link::Pipe(PipeLink { remote: Some(_), .. }) => IceState::Connected,
            Link::Pipe(PipeLink { remote: None, .. }) => IceState::New,
        }
    }

    /// ICE parameters of a peer connection (empty for a pipe, which has none).
    pub fn ice_parameters(&self) -> IceParameters {
        let (ufrag, password) = self.ice().map_or(("", ""), |ice| (ice.local_ufrag(), ice.local_password()));
        IceParameters { username_fragment: ufrag.to_owned(), password: password.to_owned(), ice_lite: Some(true) }
    }

    pub fn dtls_state(&self) -> DtlsState {
        self.dtls.as_ref().map_or(DtlsState::New, DtlsTransport::state)
    }

    /// `Connect`: the remote's DTLS parameters fix our role (mediasoup's rule: a remote `auto` makes
    /// us the client, since the ICE-lite side is controlled).
    pub fn connect(
        &mut self,
        now: Instant,
        identity: &DtlsIdentity,
        remote: &DtlsParameters,
    ) -> Result<DtlsRole, super::dtls::DtlsError> {
        let role = match remote.role {
            Some(DtlsRole::Client) => DtlsLocalRole::Server,
            Some(DtlsRole::Server) | Some(DtlsRole::Auto) | None => DtlsLocalRole::Client,
        };
        let mut dtls = DtlsTransport::new(identity, role, &remote.fingerprints)?;
        // A client starts as soon as ICE has somewhere to send; a server waits for the hello.
        if self.selected.is_some() || role == DtlsLocalRole::Server {
            dtls.start(now);
        }
        self.dtls = Some(dtls);
        Ok(match role {
            DtlsLocalRole::Client => DtlsRole::Client,
            DtlsLocalRole::Server => DtlsRole::Server,
        })
    }

    /// The `mid` for the next consumer on this transport: "0", "1", … as mediasoup assigns them.
    pub fn next_mid(&mut self) -> String {
        let mid = self.next_mid.to_string();
        self.next_mid += 1;
        mid
    }

    pub fn stats(&self, now: Option<Instant>) -> TransportStats {
        TransportStats {
            transport_id: self.id,
            ice_state: self.ice_state(),
            ice_selected_tuple: self.ice().and_then(IceLite::selected_tuple).map(ipc_tuple),
            dtls_state: self.dtls_state(),
            bytes_received: self.counters.bytes_received,
            bytes_sent: self.counters.bytes_sent,
            packets_received: self.counters.packets_received,
            packets_sent: self.counters.packets_sent,
            recv_bitrate: now.map_or(0, |n| self.counters.recv_rate.bitrate(n)),
            send_bitrate: now.map_or(0, |n| self.counters.send_rate.bitrate(n)),
            packets_dropped: self.counters.packets_dropped,
            available_outgoing_bitrate: self
                .bwe
                .as_ref()
                .filter(|b| b.stats().feedback_received > 0)
                .map(|b| b.estimate_bps()),
        }
    }
}
