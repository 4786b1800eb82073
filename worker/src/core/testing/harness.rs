//! An in-memory WebRTC peer (STUN client, DTLS server, SRTP) and a driver that moves datagrams
//! between peers and the worker in virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use octo_ipc::*;

use super::fixtures::{chrome_opus_parameters, chrome_vp8_parameters, device_capabilities, media_codecs};
use crate::core::dtls::{DtlsEvent, DtlsIdentity, DtlsLocalRole, DtlsTransport, NegotiatedSrtpProfile};
use crate::core::ice::stun::{BindingRequest, write_binding_request};
use crate::core::rng::Rng;
use crate::core::rtp::packet::RtpPacket;
use crate::core::sctp::{Reliability, SctpAssociation, SctpEvent, SctpRole};
use crate::core::srtp::{DtlsSrtpKeys, MAX_SEND_SSRCS, SrtpProfile, SrtpRecvContext, SrtpSendContext};
use crate::core::tcp_framing::{FrameDecoder, encode};
use crate::core::transmit::{BUFFER_SIZE, SocketId};

/// RFC 5761 demultiplexing of RTCP from RTP.
fn is_rtcp(buf: &[u8]) -> bool {
    buf.get(1).is_some_and(|b| (64..=95).contains(&(b & 0x7f)))
}
use crate::core::{Input, ListenSocket, Output, Worker, WorkerConfig};

pub const SERVER: &str = "127.0.0.1:40000";

pub struct Harness {
    pub worker: Worker,
    pub now: Instant,
    pub notifications: Vec<Notification>,
    next_request: u32,
    pub router: RouterId,
    pub caps: RtpCapabilities,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::at(SERVER.parse().unwrap(), 7, Instant::now())
    }

    /// A worker listening on `local`, its randomness seeded with `seed`, its clock starting at `now`
    /// (several workers of one test share a clock).
    pub fn at(local: SocketAddr, seed: u8, now: Instant) -> Self {
        Self::listening(vec![ListenSocket::udp(SocketId(0), local, None)], seed, now)
    }

    /// A worker with ICE-TCP: UDP socket 0 and TCP listener [`TCP_SOCKET`] on the same address.
    pub fn with_tcp() -> Self {
        let local = SERVER.parse().unwrap();
        let sockets = vec![ListenSocket::udp(SocketId(0), local, None), ListenSocket::tcp(TCP_SOCKET, local, None)];
        Self::listening(sockets, 7, Instant::now())
    }

    fn listening(sockets: Vec<ListenSocket>, seed: u8, now: Instant) -> Self {
        let worker = Worker::new(WorkerConfig {
            pid: 7,
            rng: Rng::from_seed([seed; 32]),
            sockets,
            epoch: now,
            epoch_unix: Duration::from_secs(1_700_000_000),
            // The core's tests run the pacer (it is opt-in in production): its path stays tested.
            pace_video: true,
        })
        .unwrap();
        let mut h = Self {
            worker,
            now,
            notifications: Vec::new(),
            next_request: 1,
            router: RouterId(1),
            caps: Default::default(),
        };
        h.drain_outputs();
        match h.request(Request::Worker(WorkerRequest::CreateRouter {
            router_id: RouterId(1),
            media_codecs: media_codecs(),
        })) {
            Ok(Response::RouterCreated { rtp_capabilities }) => h.caps = rtp_capabilities,
            other => panic!("{other:?}"),
        }
        h
    }

    pub fn request(&mut self, request: Request) -> Result<Response, RequestError> {
        let id = self.next_request;
        self.next_request += 1;
        self.worker.handle_input(self.now, Input::Controller(ControllerMessage::Request { id, request }));
        let mut answer = None;
        while let Some(Output::Controller(msg)) = self.worker.poll_output() {
            match msg {
                WorkerMessage::Response { id: got, result } if got == id => answer = Some(result),
                WorkerMessage::Response { .. } => panic!("response to another request"),
                WorkerMessage::Notification(n) => self.notifications.push(n),
            }
        }
        answer.expect("no response")
    }

    fn drain_outputs(&mut self) {
        while let Some(Output::Controller(msg)) = self.worker.poll_output() {
            if let WorkerMessage::Notification(n) = msg {
                self.notifications.push(n);
            }
        }
    }

    pub fn create_transport(&mut self, id: u128) -> WebRtcTransportData {
        self.create_transport_with(id, Default::default())
    }

    /// A transport offering DataChannels (1024 streams each way, 256 KiB messages).
    pub fn create_sctp_transport(&mut self, id: u128) -> WebRtcTransportData {
        let options =
            WebRtcTransportOptions { sctp: Some(NumSctpStreams { os: 1024, mis: 1024 }), ..Default::default() };
        self.create_transport_with(id, options)
    }

    pub fn create_transport_with(&mut self, id: u128, options: WebRtcTransportOptions) -> WebRtcTransportData {
        match self.request(Request::Router(
            self.router,
            RouterRequest::CreateWebRtcTransport { transport_id: TransportId(id), options },
        )) {
            Ok(Response::WebRtcTransportCreated(data)) => data,
            other => panic!("{other:?}"),
        }
    }

    /// Moves datagrams from the worker to the peers (and anything they answer back) until quiet,
    /// and runs the worker's timers that fall due.
    pub fn pump(&mut self, peers: &mut [&mut Peer]) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.worker.poll_transmit() {
                moved = true;
                if let Some(peer) = peers.iter_mut().find(|p| p.addr == t.to && p.socket() == t.socket) {
                    match peer.tcp.as_mut() {
                        Some(link) => {
                            for packet in link.down.carry(&[t.buf.as_slice()]) {
                                peer.receive(self.now, &packet);
                            }
                        }
                        None => peer.receive(self.now, &t.buf),
                    }
                }
                self.worker.recycle(t.buf);
            }
            for peer in peers.iter_mut() {
                let mut outgoing = peer.take_outgoing();
                if let Some(link) = peer.tcp.as_mut() {
                    let refs: Vec<&[u8]> = outgoing.iter().map(Vec::as_slice).collect();
                    outgoing = link.up.carry(&refs);
                }
                for datagram in outgoing {
                    moved = true;
                    self.datagram_on(peer.socket(), peer.addr, &datagram);
                }
            }
            if !moved {
                break;
            }
        }
        self.drain_outputs();
    }

    pub fn datagram(&mut self, from: SocketAddr, data: &[u8]) {
        self.datagram_on(SocketId(0), from, data);
    }

    pub fn datagram_on(&mut self, socket: SocketId, from: SocketAddr, data: &[u8]) {
        let mut buf = vec![0u8; BUFFER_SIZE];
        let len = data.len().min(1500);
        buf[..len].copy_from_slice(&data[..len]);
        self.worker.handle_datagram(self.now, socket, from, &mut buf, len);
        self.drain_outputs();
    }

    /// Advances virtual time in steps, running timers and pumping.
    pub fn advance(&mut self, by: Duration, peers: &mut [&mut Peer]) {
        let end = self.now + by;
        while self.now < end {
            let step = Duration::from_millis(20).min(end - self.now);
            self.now += step;
            if self.worker.poll_timeout().is_some_and(|t| t <= self.now) {
                self.worker.handle_timeout(self.now);
            }
            for p in peers.iter_mut() {
                p.tick(self.now);
            }
            self.pump(peers);
        }
    }

    /// The fan-out the benchmarks time: `publisher` (on transport 1) produces video (producer 100),
    /// and every subscriber consumes it, resumed, on a transport of its own. Returns the producer.
    pub fn fan_out(&mut self, publisher: &mut Peer, subscribers: &mut [Peer]) -> ProducerId {
        let t = self.create_transport(1);
        self.connect(publisher, &t);
        let producer = self.produce(publisher, 100, MediaKind::Video);
        for (i, sub) in subscribers.iter_mut().enumerate() {
            let t = self.create_transport(1000 + i as u128);
            self.connect(sub, &t);
            let c = self.consume(sub, 5000 + i as u128, producer);
            assert_eq!(self.request(Request::Consumer(c.id, ConsumerRequest::Resume)), Ok(Response::Ok));
        }
        producer
    }

    /// Publishes a peer's transport: STUN with USE-CANDIDATE, Connect, DTLS to completion.
    pub fn connect(&mut self, peer: &mut Peer, data: &WebRtcTransportData) {
        peer.transport = data.id;
        peer.remote_ufrag = data.ice_parameters.username_fragment.clone();
        peer.remote_password = data.ice_parameters.password.clone();
        let fingerprints = data.dtls_parameters.fingerprints.clone();
        peer.dtls = Some(DtlsTransport::new(&peer.identity, DtlsLocalRole::Server, &fingerprints).unwrap());
        // Like a browser, the peer is the SCTP client and starts once DTLS is up.
        peer.sctp = data.sctp_parameters.map(|p| {
            SctpAssociation::new(SctpRole::Client, p.os, p.mis, p.max_message_size.max(peer.sctp_max_message_size))
        });
        peer.send_binding(true, &peer.remote_password.clone());
        self.pump(&mut [peer]);
        let resp = self.request(Request::Transport(
            data.id,
            TransportRequest::Connect {
                dtls_parameters: DtlsParameters {
                    role: Some(DtlsRole::Server),
                    fingerprints: peer.identity.fingerprints().to_vec(),
                },
            },
        ));
        assert_eq!(resp, Ok(Response::TransportConnected { dtls_local_role: DtlsRole::Client }));
        self.pump(&mut [peer]);
        assert!(peer.srtp_send.is_some(), "peer DTLS did not complete");
    }

    /// A publisher (on transport 1, port 50000) and a subscriber (transport 2, port 50001), both
    /// connected.
    pub fn publisher_and_subscriber(&mut self) -> (Peer, Peer) {
        let mut publisher = Peer::new(50000);
        let mut sub = Peer::new(50001);
        let t = self.create_transport(1);
        self.connect(&mut publisher, &t);
        let t = self.create_transport(2);
        self.connect(&mut sub, &t);
        (publisher, sub)
    }

    /// [`Self::publisher_and_subscriber`] with the publisher's VP8 producer (100) consumed, resumed,
    /// by the subscriber (consumer 200), and the handshakes pumped through.
    pub fn video_call(&mut self) -> (Peer, Peer) {
        let (mut publisher, mut sub) = self.publisher_and_subscriber();
        let producer = self.produce(&publisher, 100, MediaKind::Video);
        let c = self.consume(&sub, 200, producer);
        assert_eq!(self.request(Request::Consumer(c.id, ConsumerRequest::Resume)), Ok(Response::Ok));
        self.pump(&mut [&mut publisher, &mut sub]);
        (publisher, sub)
    }

    /// Hands the worker what `peer` has sent, without taking anything out of the worker (unlike
    /// [`Self::pump`]): what waits in its fan-out stays there.
    pub fn deliver(&mut self, peer: &mut Peer) {
        for datagram in peer.take_outgoing() {
            self.datagram_on(peer.socket(), peer.addr, &datagram);
        }
    }

    pub fn produce(&mut self, peer: &Peer, id: u128, kind: MediaKind) -> ProducerId {
        let params = if kind == MediaKind::Video { chrome_vp8_parameters() } else { chrome_opus_parameters() };
        let resp = self.request(Request::Transport(
            peer.transport,
            TransportRequest::Produce { producer_id: ProducerId(id), kind, rtp_parameters: params, paused: false },
        ));
        assert!(matches!(resp, Ok(Response::ProducerCreated { .. })), "{resp:?}");
        ProducerId(id)
    }

    /// `produceData` on the peer's transport, with the peer's side of the stream set up to match.
    pub fn produce_data(
        &mut self,
        peer: &mut Peer,
        id: u128,
        params: SctpStreamParameters,
        label: &str,
    ) -> DataProducerId {
        let resp = self.request(Request::Transport(
            peer.transport,
            TransportRequest::ProduceData {
                data_producer_id: DataProducerId(id),
                sctp_stream_parameters: params,
                label: label.to_owned(),
                protocol: String::new(),
            },
        ));
        assert_eq!(resp, Ok(Response::DataProducerCreated));
        let reliability = match (params.max_packet_life_time, params.max_retransmits) {
            (Some(ms), _) => Reliability::MaxPacketLifeTime(u32::from(ms)),
            (None, Some(n)) => Reliability::MaxRetransmits(u32::from(n)),
            (None, None) => Reliability::Reliable,
        };
        peer.sctp.as_mut().expect("sctp transport").configure_stream(params.stream_id, params.ordered, reliability);
        DataProducerId(id)
    }

    pub fn consume_data(&mut self, peer: &Peer, id: u128, data_producer: DataProducerId) -> DataConsumerData {
        match self.request(Request::Transport(
            peer.transport,
            TransportRequest::ConsumeData { data_consumer_id: DataConsumerId(id), data_producer_id: data_producer },
        )) {
            Ok(Response::DataConsumerCreated(data)) => data,
            other => panic!("{other:?}"),
        }
    }

    pub fn consume(&mut self, peer: &Peer, id: u128, producer: ProducerId) -> ConsumerData {
        let caps = device_capabilities(&self.caps);
        match self.request(Request::Transport(
            peer.transport,
            TransportRequest::Consume {
                consumer_id: ConsumerId(id),
                producer_id: producer,
                rtp_capabilities: caps,
                paused: true,
            },
        )) {
            Ok(Response::ConsumerCreated(data)) => data,
            other => panic!("{other:?}"),
        }
    }
}

/// A received, decrypted RTP packet.
#[derive(Debug, Clone)]
pub struct Received {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub payload: Vec<u8>,
    pub mid: Option<Vec<u8>>,
    /// The transport-wide sequence number (the router's id for it, which consumers negotiate).
    pub transport_cc: Option<u16>,
}

/// The ICE-TCP listener of [`Harness::with_tcp`].
pub const TCP_SOCKET: SocketId = SocketId(1);

/// One direction of an ICE-TCP connection as bytes: packets are framed (RFC 4571) into one stream,
/// cut into pieces of a size no packet boundary respects, and decoded again, as the IO shell does.
pub struct TcpDirection {
    decoder: FrameDecoder,
    piece: usize,
    /// Bytes sent the other way, framing included.
    pub bytes: usize,
}

impl TcpDirection {
    fn new(piece: usize) -> Self {
        Self { decoder: FrameDecoder::new(1500), piece, bytes: 0 }
    }

    fn carry(&mut self, packets: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut stream = Vec::new();
        for p in packets {
            encode(p, &mut stream).expect("a packet the worker sends fits a frame");
        }
        self.bytes += stream.len();
        let mut out = Vec::new();
        for piece in stream.chunks(self.piece) {
            self.decoder.feed(piece, |p| out.push(p.to_vec())).expect("well-framed");
        }
        out
    }
}

/// A peer's ICE-TCP connection to [`TCP_SOCKET`].
pub struct TcpLink {
    pub up: TcpDirection,
    pub down: TcpDirection,
}

/// The router's header extension id of transport-wide-cc (what the harness's consumers get).
pub const ROUTER_TWCC_ID: u8 = 5;

pub struct Peer {
    pub addr: SocketAddr,
    pub identity: DtlsIdentity,
    pub dtls: Option<DtlsTransport>,
    pub transport: TransportId,
    pub remote_ufrag: String,
    pub remote_password: String,
    pub srtp_send: Option<SrtpSendContext>,
    pub srtp_recv: Option<SrtpRecvContext>,
    outgoing: Vec<Vec<u8>>,
    pub stun_responses: Vec<Vec<u8>>,
    pub rtp: Vec<Received>,
    /// Padding-only packets received: their transport-wide sequence numbers.
    pub padding: Vec<Option<u16>>,
    pub rtcp: Vec<Vec<u8>>,
    pub undecryptable: usize,
    seq: u16,
    /// The peer's SCTP client, when its transport offers DataChannels.
    pub sctp: Option<SctpAssociation>,
    /// The maximum message size the peer's SCTP accepts to send (raise it to send oversize).
    pub sctp_max_message_size: u32,
    /// Complete messages received: (stream id, PPID, bytes).
    pub messages: Vec<(u16, u32, Vec<u8>)>,
    pub sctp_events: Vec<SctpEvent>,
    /// Drop every Nth DTLS application-data datagram the peer sends / receives (0: no loss).
    pub drop_app_out: u32,
    pub drop_app_in: u32,
    app_out: u32,
    app_in: u32,
    now: Option<Instant>,
    /// Reaches the worker over ICE-TCP instead of UDP.
    pub tcp: Option<TcpLink>,
}

impl Peer {
    pub fn new(port: u16) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            identity: DtlsIdentity::generate().unwrap(),
            dtls: None,
            transport: TransportId(0),
            remote_ufrag: String::new(),
            remote_password: String::new(),
            srtp_send: None,
            srtp_recv: None,
            outgoing: Vec::new(),
            stun_responses: Vec::new(),
            rtp: Vec::new(),
            padding: Vec::new(),
            rtcp: Vec::new(),
            undecryptable: 0,
            seq: 0,
            sctp: None,
            sctp_max_message_size: 262_144,
            messages: Vec::new(),
            sctp_events: Vec::new(),
            drop_app_out: 0,
            drop_app_in: 0,
            app_out: 0,
            app_in: 0,
            now: None,
            tcp: None,
        }
    }

    /// A peer that reaches the worker over ICE-TCP ([`Harness::with_tcp`]).
    pub fn over_tcp(port: u16) -> Self {
        Self { tcp: Some(TcpLink { up: TcpDirection::new(7), down: TcpDirection::new(333) }), ..Self::new(port) }
    }

    /// The worker socket this peer talks to.
    pub fn socket(&self) -> SocketId {
        if self.tcp.is_some() { TCP_SOCKET } else { SocketId(0) }
    }

    pub fn send_binding(&mut self, use_candidate: bool, password: &str) {
        self.seq = self.seq.wrapping_add(1);
        let mut tid = [0u8; 12];
        tid[..2].copy_from_slice(&self.seq.to_be_bytes());
        tid[2..4].copy_from_slice(&self.addr.port().to_be_bytes());
        let username = format!("{}:peer", self.remote_ufrag);
        let mut buf = vec![0u8; 512];
        let n = write_binding_request(
            &mut buf,
            &BindingRequest {
                transaction_id: tid,
                username: username.as_bytes(),
                password: password.as_bytes(),
                priority: 1_853_824_767,
                use_candidate,
                ice_controlling: Some(42),
                ice_controlled: None,
            },
        )
        .unwrap();
        buf.truncate(n);
        self.outgoing.push(buf);
    }

    pub fn take_outgoing(&mut self) -> Vec<Vec<u8>> {
        if let (Some(sctp), Some(dtls), Some(now)) = (self.sctp.as_mut(), self.dtls.as_mut(), self.now) {
            while let Some(packet) = sctp.poll_transmit(now) {
                dtls.send_application_data(now, &packet).unwrap();
            }
        }
        if let Some(dtls) = self.dtls.as_mut() {
            while let Some(d) = dtls.poll_transmit() {
                if d.first() == Some(&23) && self.drop_app_out > 0 {
                    self.app_out = self.app_out.wrapping_add(1);
                    if self.app_out.is_multiple_of(self.drop_app_out) {
                        continue;
                    }
                }
                self.outgoing.push(d.to_vec());
            }
        }
        std::mem::take(&mut self.outgoing)
    }

    pub fn tick(&mut self, now: Instant) {
        self.now = Some(now);
        if let Some(dtls) = self.dtls.as_mut()
            && dtls.poll_timeout().is_some_and(|t| t <= now)
        {
            dtls.handle_timeout(now);
        }
        if let Some(sctp) = self.sctp.as_mut() {
            sctp.handle_timeout(now);
        }
        self.drain_sctp_events();
    }

    fn drain_sctp_events(&mut self) {
        let Some(sctp) = self.sctp.as_mut() else { return };
        while let Some(event) = sctp.poll_event() {
            match event {
                SctpEvent::Message { stream_id, ppid, data } => self.messages.push((stream_id, ppid, data.to_vec())),
                other => self.sctp_events.push(other),
            }
        }
    }

    /// Sends a DataChannel message from the peer (queued until the next pump).
    pub fn send_message(&mut self, stream_id: u16, ppid: u32, data: &[u8]) -> Result<(), crate::core::sctp::SctpError> {
        let now = self.now.expect("peer has seen time");
        let result = self.sctp.as_mut().expect("sctp transport").send(now, stream_id, ppid, data);
        self.drain_sctp_events();
        result
    }

    pub fn receive(&mut self, now: Instant, data: &[u8]) {
        self.now = Some(now);
        if data.first() == Some(&23) && self.drop_app_in > 0 {
            self.app_in = self.app_in.wrapping_add(1);
            if self.app_in.is_multiple_of(self.drop_app_in) {
                return;
            }
        }
        match data.first() {
            Some(0..=3) => self.stun_responses.push(data.to_vec()),
            Some(20..=63) => {
                let Some(dtls) = self.dtls.as_mut() else { return };
                let _ = dtls.handle_datagram(now, data);
                while let Some(event) = dtls.poll_event() {
                    if let DtlsEvent::ApplicationData(packet) = &event
                        && let Some(sctp) = self.sctp.as_mut()
                    {
                        sctp.handle_packet(now, packet);
                    }
                    if matches!(event, DtlsEvent::SrtpKeys { .. })
                        && let Some(sctp) = self.sctp.as_mut()
                    {
                        sctp.start(now);
                    }
                    if let DtlsEvent::SrtpKeys { profile, keying_material, local_is_client } = event {
                        let profile = match profile {
                            NegotiatedSrtpProfile::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
                            NegotiatedSrtpProfile::AeadAes256Gcm => SrtpProfile::AeadAes256Gcm,
                            NegotiatedSrtpProfile::Aes128CmHmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
                            NegotiatedSrtpProfile::Aes128CmHmacSha1_32 => SrtpProfile::Aes128CmHmacSha1_32,
                        };
                        let keys = DtlsSrtpKeys::split(profile, &keying_material, local_is_client).unwrap();
                        self.srtp_send = Some(SrtpSendContext::new(&keys.local));
                        // A browser takes as many streams as it is sent.
                        self.srtp_recv = Some(SrtpRecvContext::with_max_ssrcs(&keys.remote, MAX_SEND_SSRCS));
                    }
                }
                self.drain_sctp_events();
            }
            Some(128..=191) => {
                let Some(srtp) = self.srtp_recv.as_mut() else { return };
                let mut buf = data.to_vec();
                buf.resize(BUFFER_SIZE, 0);
                if is_rtcp(data) {
                    match srtp.decrypt_rtcp(&mut buf, data.len()) {
                        Ok(n) => self.rtcp.push(buf[..n].to_vec()),
                        Err(_) => self.undecryptable += 1,
                    }
                    return;
                }
                match srtp.decrypt_rtp(&mut buf, data.len()) {
                    Ok(n) => {
                        let p = RtpPacket::parse(&mut buf, n).unwrap();
                        let h = p.header();
                        // Padding-only packets (bandwidth probes) carry nothing to play.
                        if p.payload().is_empty() {
                            self.padding.push(h.transport_wide_cc_seq(ROUTER_TWCC_ID));
                            return;
                        }
                        self.rtp.push(Received {
                            transport_cc: h.transport_wide_cc_seq(ROUTER_TWCC_ID),
                            ssrc: h.ssrc(),
                            seq: h.sequence_number(),
                            timestamp: h.timestamp(),
                            payload_type: h.payload_type(),
                            payload: p.payload().to_vec(),
                            mid: h.mid(1).map(<[u8]>::to_vec),
                        });
                    }
                    Err(_) => self.undecryptable += 1,
                }
            }
            _ => {}
        }
    }

    /// Encrypts and queues an RTP packet built from the given fields (with a mid and a
    /// transport-cc extension in the ids the chrome_* parameters use).
    pub fn send_rtp(&mut self, pt: u8, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) {
        let mut buf = vec![0u8; BUFFER_SIZE];
        buf[0] = 0x90; // V=2, X=1
        buf[1] = pt;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&ts.to_be_bytes());
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
        // One-byte extensions: mid (id 4) = "0", transport-cc (id 3) = seq.
        buf[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 2]);
        buf[16..20].copy_from_slice(&[0x40, b'0', 0x31, (seq >> 8) as u8]);
        buf[20..24].copy_from_slice(&[seq as u8, 0, 0, 0]);
        let len = 24 + payload.len();
        buf[24..len].copy_from_slice(payload);
        self.send_plain_rtp(buf, len);
    }

    pub fn send_plain_rtp(&mut self, mut buf: Vec<u8>, len: usize) {
        let n = self.srtp_send.as_mut().unwrap().encrypt_rtp(&mut buf, len).unwrap();
        buf.truncate(n);
        self.outgoing.push(buf);
    }

    pub fn send_rtcp(&mut self, write: impl FnOnce(&mut [u8]) -> usize) {
        let mut buf = vec![0u8; BUFFER_SIZE];
        let len = write(&mut buf);
        let n = self.srtp_send.as_mut().unwrap().encrypt_rtcp(&mut buf, len).unwrap();
        buf.truncate(n);
        self.outgoing.push(buf);
    }
}

/// `packets` SRTP datagrams of a VP8 stream from `publisher` (payload type 96, SSRC 1111, 30 fps
/// timestamps): a keyframe first, then delta frames padded to `payload_len` bytes of payload.
pub fn vp8_stream(publisher: &mut Peer, packets: u16, payload_len: usize) -> Vec<Vec<u8>> {
    let keyframe = vp8_payload(true, 1);
    let mut delta = vp8_payload(false, 2);
    delta.resize(payload_len, 0xAB);
    let mut datagrams = Vec::with_capacity(usize::from(packets));
    for seq in 0..packets {
        let payload = if seq == 0 { &keyframe } else { &delta };
        publisher.send_rtp(96, 1111, seq, u32::from(seq) * 3000, payload);
        datagrams.extend(publisher.take_outgoing());
    }
    datagrams
}

/// A VP8 payload: descriptor (S=1, PID=0) then a frame tag; keyframes carry the start code.
pub fn vp8_payload(keyframe: bool, marker_byte: u8) -> Vec<u8> {
    let mut p = vec![0x10];
    if keyframe {
        p.extend_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
    } else {
        p.extend_from_slice(&[0x01, 0x00, 0x00]);
    }
    p.extend_from_slice(&[marker_byte; 100]);
    p
}
