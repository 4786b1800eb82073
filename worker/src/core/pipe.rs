//! Pipe transports: the worker's end of a link to another worker, which carries the RTP and RTCP of
//! every producer piped between the two (for any of their routers) over the worker's shared UDP
//! port, told apart from WebRTC peers by the far end's address.
//!
//! `producer → pipe consumer (here) → pipe producer (there) → consumers (there)`: the pipe consumer
//! sends the router's normalised packets as they are — SSRC, sequence number and timestamp of the
//! origin — and the pipe producer takes them with the same SSRCs and payload types, so the far
//! router's consumers see the origin's stream and every piped copy of a producer has one numbering.
//! NACKs, PLI/FIR and reports cross the pipe back as RTCP about those SSRCs.

use std::net::SocketAddr;
use std::time::Instant;

use octo_ipc::{
    ConsumerId, ErrorCode, MediaKind, PipeConsumerData, PipeTransportData, ProducerId, RequestError, Response,
    RouterId, RtpParameters, SctpParameters, SrtpCryptoSuite, SrtpParameters, Target, TransportId,
};

use super::consumer::Consumer;
use super::control::{exists, invalid};
use super::ortc;
use super::producer::Producer;
use super::sctp::{SCTP_PORT, SctpAssociation, SctpRole};
use super::srtp::{MasterKey, RecvProtection, SendProtection, SrtpProfile};
use super::transport::{IncomingStream, Link, Transport};
use super::worker::Worker;

/// The suite a pipe's SRTP uses: AES-GCM is the cheapest per packet with the ring backend.
const PIPE_SRTP_PROFILE: SrtpProfile = SrtpProfile::AeadAes128Gcm;
/// Streams each way of a pipe's SCTP association: one per data producer piped, all rooms together
/// (SCTP's limit).
const PIPE_SCTP_STREAMS: u16 = 65_535;
/// As large as any WebRTC transport's (the browser client's files are up to 256 KiB).
const PIPE_SCTP_MAX_MESSAGE_SIZE: u32 = 262_144;

fn profile_of(suite: SrtpCryptoSuite) -> SrtpProfile {
    match suite {
        SrtpCryptoSuite::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
        SrtpCryptoSuite::AesCm128HmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
    }
}

/// The key and salt of `params`, checked against its suite's lengths.
fn master_key(params: &SrtpParameters) -> Result<MasterKey, RequestError> {
    let profile = profile_of(params.crypto_suite);
    let key_len = profile.key_len();
    if params.key.len() != key_len + profile.salt_len() {
        return Err(invalid(format!(
            "srtpParameters: {:?} needs {} bytes of key and salt, got {}",
            params.crypto_suite,
            key_len + profile.salt_len(),
            params.key.len()
        )));
    }
    let (key, salt) = params.key.split_at(key_len);
    MasterKey::new(profile, key, salt).map_err(|e| invalid(format!("srtpParameters: {e}")))
}

/// What a pipe consumer sends: the producer's consumable parameters without what belongs to one
/// WebRTC peer connection — no mid or rid (the far consumers set their own), no RTX encoding (a
/// retransmission across the pipe is the original packet again), and no congestion-control feedback
/// (between two workers of Octo nothing adapts its rate to it).
pub fn pipe_rtp_parameters(consumable: &RtpParameters) -> RtpParameters {
    let mut params = consumable.clone();
    params.mid = None;
    params.header_extensions.retain(|e| {
        ![ortc::URI_MID, ortc::URI_RID, ortc::URI_REPAIRED_RID, ortc::URI_TRANSPORT_CC].contains(&e.uri.as_str())
    });
    for codec in &mut params.codecs {
        codec.rtcp_feedback.retain(|f| f.kind != "transport-cc" && f.kind != "goog-remb");
    }
    for encoding in &mut params.encodings {
        encoding.rtx = None;
    }
    params
}

impl Worker {
    pub(super) fn create_pipe_transport(
        &mut self,
        now: Instant,
        transport_id: TransportId,
        srtp: bool,
    ) -> Result<Response, RequestError> {
        if self.transports.contains_key(&transport_id) {
            return Err(exists(Target::Transport(transport_id)));
        }
        // IPv4 first: both ends of a pipe on one host use the same family, and v4 is always there.
        let Some(local) = self.server.udp_sockets().map(|s| s.local).min_by_key(SocketAddr::is_ipv6) else {
            return Err(RequestError::new(ErrorCode::InvalidState, "this worker listens on no UDP socket"));
        };
        let mut transport = Transport::pipe(transport_id, srtp, self.rng.ssrc());
        let srtp_parameters = if srtp {
            let profile = PIPE_SRTP_PROFILE;
            let mut key = vec![0u8; profile.key_len() + profile.salt_len()];
            for chunk in key.chunks_mut(4) {
                let word = self.rng.next_u32().to_be_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            let params = SrtpParameters { crypto_suite: SrtpCryptoSuite::AeadAes128Gcm, key };
            transport.srtp_send = Some(SendProtection::srtp(&master_key(&params)?));
            Some(params)
        } else {
            transport.srtp_send = Some(SendProtection::Clear);
            None
        };
        self.transports.insert(transport_id, transport);
        self.transport_ids.push(transport_id);
        self.ensure_tick(now);
        Ok(Response::PipeTransportCreated(PipeTransportData { id: transport_id, local, srtp_parameters }))
    }

    pub(super) fn connect_pipe(
        &mut self,
        now: Instant,
        id: TransportId,
        remote: SocketAddr,
        srtp_parameters: Option<SrtpParameters>,
        sctp_client: Option<bool>,
    ) -> Result<Response, RequestError> {
        let transport = &self.transports[&id];
        let Link::Pipe(link) = &transport.link else {
            return Err(invalid("connectPipe is for pipe transports; this is a WebRTC transport"));
        };
        if link.remote.is_some() {
            return Err(RequestError::new(ErrorCode::InvalidState, "the pipe is already connected"));
        }
        let recv = match (link.srtp, &srtp_parameters) {
            (true, Some(params)) => RecvProtection::srtp_for_pipe(&master_key(params)?),
            (false, None) => RecvProtection::Clear,
            (true, None) => return Err(invalid("the pipe was created with SRTP: srtpParameters are needed")),
            (false, Some(_)) => return Err(invalid("the pipe was created without SRTP: no srtpParameters")),
        };
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(invalid(format!("{remote} is not an address to send to")));
        }
        let Some(socket) = self.server.udp_sockets().find(|s| s.local.is_ipv6() == remote.is_ipv6()).map(|s| s.id)
        else {
            return Err(invalid(format!("this worker has no socket of {remote}'s address family")));
        };
        if let Some(other) = self.server.transport_for_tuple(socket, remote) {
            return Err(RequestError::new(
                ErrorCode::AlreadyExists,
                format!("{} already receives from {remote}", Target::Transport(other)),
            ));
        }
        self.server.register_tuple(socket, remote, id);
        let transport = self.transports.get_mut(&id).expect("checked by caller");
        if let Link::Pipe(link) = &mut transport.link {
            link.remote = Some(remote);
        }
        transport.selected = Some((socket, remote));
        transport.srtp_recv = Some(recv);
        // DataChannel messages cross the pipe on an SCTP association of their own, straight over
        // UDP (no DTLS): both ends must agree who is the client. Told (across hosts), or else
        // ports first: two workers of one host always differ in port, while the local IP may be
        // unspecified (0.0.0.0) and so compare wrongly against the far end's loopback address.
        let local = self.server.local_addr(socket).unwrap_or(remote);
        let client = sctp_client.unwrap_or((local.port(), local.ip()) < (remote.port(), remote.ip()));
        let role = if client { SctpRole::Client } else { SctpRole::Server };
        let params = SctpParameters {
            port: SCTP_PORT,
            os: PIPE_SCTP_STREAMS,
            mis: PIPE_SCTP_STREAMS,
            max_message_size: PIPE_SCTP_MAX_MESSAGE_SIZE,
        };
        let mut sctp = SctpAssociation::new(role, params.os, params.mis, params.max_message_size);
        sctp.start(now);
        transport.sctp = Some(sctp);
        transport.sctp_parameters = Some(params);
        self.ensure_tick(now);
        self.timers_moved();
        self.flush_sctp(now, id);
        Ok(Response::Ok)
    }

    /// A consumer on pipe `transport_id` of `producer_id`, a producer of any of this worker's routers.
    pub(super) fn consume_to_pipe(
        &mut self,
        transport_id: TransportId,
        consumer_id: ConsumerId,
        producer_id: ProducerId,
    ) -> Result<Response, RequestError> {
        if !self.transports[&transport_id].is_pipe() {
            return Err(invalid("consumeToPipe is for pipe transports"));
        }
        if self.consumers.contains_key(&consumer_id) {
            return Err(exists(Target::Consumer(consumer_id)));
        }
        let producer =
            self.producers.get(&producer_id).ok_or_else(|| RequestError::not_found(Target::Producer(producer_id)))?;
        let transport = &self.transports[&transport_id];
        if transport.consumers.iter().any(|c| self.consumers.get(c).is_some_and(|c| c.producer_id == producer_id)) {
            return Err(RequestError::new(
                ErrorCode::AlreadyExists,
                format!("{} is already piped over this transport", Target::Producer(producer_id)),
            ));
        }
        let rtp_parameters = pipe_rtp_parameters(&producer.consumable);
        let mut consumer = Consumer::new(
            consumer_id,
            transport_id,
            producer_id,
            producer.kind,
            rtp_parameters.clone(),
            producer.rtp_type,
            false,
            producer.paused,
            0,
            0,
        );
        consumer.make_pipe();
        let (router_id, kind, producer_paused) = (producer.router_id, producer.kind, producer.paused);
        let transport = self.transports.get_mut(&transport_id).expect("checked by caller");
        // RTCP from the far end names the origin's SSRCs: every encoding leads to this consumer.
        for encoding in &rtp_parameters.encodings {
            if let Some(ssrc) = encoding.ssrc {
                transport.outgoing.insert(ssrc, consumer_id);
            }
        }
        transport.consumers.push(consumer_id);
        self.consumers.insert(consumer_id, consumer);
        // First in the fan-out: the far worker's own fan-out starts as soon as the packet crosses,
        // in parallel with this one, instead of after this worker's last viewer.
        if let Some(list) = self.routers.get_mut(&router_id).and_then(|r| r.fanout.get_mut(&producer_id)) {
            list.insert(0, consumer_id);
        }
        Ok(Response::PipeConsumerCreated(PipeConsumerData {
            id: consumer_id,
            producer_id,
            kind,
            rtp_parameters,
            producer_paused,
        }))
    }

    /// The far end of a pipe consumer: a producer of `router_id` fed by pipe `transport_id`.
    pub(super) fn produce_from_pipe(
        &mut self,
        transport_id: TransportId,
        producer_id: ProducerId,
        router_id: RouterId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        paused: bool,
    ) -> Result<Response, RequestError> {
        if !self.transports[&transport_id].is_pipe() {
            return Err(invalid("produceFromPipe is for pipe transports"));
        }
        if self.producers.contains_key(&producer_id) {
            return Err(exists(Target::Producer(producer_id)));
        }
        let router = self.routers.get(&router_id).ok_or_else(|| RequestError::not_found(Target::Router(router_id)))?;
        let transport = &self.transports[&transport_id];
        let mut ssrcs = Vec::with_capacity(rtp_parameters.encodings.len());
        for encoding in &rtp_parameters.encodings {
            let ssrc = encoding.ssrc.ok_or_else(|| invalid("a piped encoding needs its ssrc"))?;
            if transport.incoming.contains_key(&ssrc) {
                return Err(invalid(format!("ssrc {ssrc} is already piped in over this transport")));
            }
            ssrcs.push(ssrc);
        }
        // Both routers were made from the same codec list, so the mapping keeps the payload types;
        // the SSRCs stay the origin's.
        let mut mapping = ortc::producer_rtp_mapping(kind, &rtp_parameters, &router.capabilities, || 0)?;
        mapping.mapped_ssrcs.clone_from(&ssrcs);
        let consumable = ortc::consumable_rtp_parameters(kind, &rtp_parameters, &router.capabilities, &mapping);
        let mut producer =
            Producer::new(producer_id, router_id, transport_id, kind, rtp_parameters, consumable, &mapping, paused);
        producer.piped = true;
        let rtp_type = producer.rtp_type;
        let transport = self.transports.get_mut(&transport_id).expect("checked by caller");
        for (encoding, ssrc) in ssrcs.into_iter().enumerate() {
            transport.incoming.insert(ssrc, IncomingStream { producer: producer_id, encoding, is_rtx: false });
        }
        transport.producers.push(producer_id);
        self.producers.insert(producer_id, producer);
        self.routers.get_mut(&router_id).expect("checked above").fanout.insert(producer_id, Vec::new());
        Ok(Response::ProducerCreated { rtp_type })
    }
}

impl Worker {
    /// A datagram from a pipe's far end that is not STUN, DTLS or RTP: an SCTP packet of its data
    /// association (SCTP's common header starts with the source port, 5000: first byte 19, which RFC
    /// 7983 leaves unassigned). From anyone else it is nothing.
    pub(super) fn handle_pipe_sctp(&mut self, now: Instant, id: TransportId, data: &[u8]) {
        let Some(transport) = self.transports.get_mut(&id) else { return };
        transport.counters.packets_received += 1;
        transport.counters.bytes_received += data.len() as u64;
        // The library drops malformed packets without a word: what is not even an SCTP common header
        // between our two ports is counted here.
        let ports = [(SCTP_PORT >> 8) as u8, SCTP_PORT as u8, (SCTP_PORT >> 8) as u8, SCTP_PORT as u8];
        match transport.sctp.as_mut() {
            Some(sctp) if data.len() >= 12 && data[..4] == ports => sctp.handle_packet(now, data),
            _ => transport.counters.packets_dropped += 1,
        }
        self.timers_moved();
        self.flush_sctp(now, id);
    }
}
