//! One client WebRTC transport as a browser runs it against Octo: a UDP socket connected to the
//! worker's candidate, or an ICE-TCP connection to its passive TCP candidate; full ICE as the
//! controlling agent (checks with USE-CANDIDATE, then consent checks), the DTLS client, SRTP, and
//! the RTP/RTCP of its publisher or subscriber role. Only [`Socket`] knows which of the two it
//! runs over: every packet above it takes the same path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use octo_ipc::{DtlsFingerprint, DtlsState};
use octo_worker::core::dtls::{DtlsEvent, DtlsIdentity, DtlsLocalRole, DtlsTransport, NegotiatedSrtpProfile};
use octo_worker::core::ice::stun::{
    BindingRequest, StunClass, StunMessage, write_binding_request, write_binding_success,
};
use octo_worker::core::rtp::packet::{RtpHeader, RtpPacket};
use octo_worker::core::rtp::rtcp::{
    ReportBlock, RtcpCompound, RtcpCompoundWriter, RtcpPacket, SenderInfo, write_nack, write_pli,
    write_receiver_report, write_sender_report,
};
use octo_worker::core::srtp::{DtlsSrtpKeys, MAX_SEND_SSRCS, SrtpProfile, SrtpRecvContext, SrtpSendContext};

use super::counters::Counters;
use super::downlink::Downlink;
use super::ice_tcp::TcpConnection;
use super::probe;
use super::recv_stream::RecvStream;
use super::send_stream::{Kind, SendStream};
use super::tcp_framing::Frames;
use super::vp8;

/// What the signaling side learned about a transport, handed to the media loop.
pub struct TransportSetup {
    pub socket: ClientSocket,
    pub remote_ufrag: String,
    pub remote_password: String,
    pub remote_fingerprints: Vec<DtlsFingerprint>,
    /// The ICE role: controlling against an ICE-lite server or as the offerer; controlled when a
    /// full agent offered (Janus's subscriber offers), which then nominates.
    pub controlling: bool,
}

/// How the signaling side reached the worker's candidate.
pub enum ClientSocket {
    /// Bound and connected to its UDP candidate.
    Udp(std::net::UdpSocket),
    /// Connecting (non-blocking) to its passive TCP candidate, the address given.
    Tcp(mio::net::TcpStream, SocketAddr),
}

/// The wire under a transport. Everything it carries (STUN, DTLS, SRTP, RTCP) is the same on
/// both: a UDP datagram is one packet, a TCP connection frames each (RFC 4571).
enum Socket {
    Udp(UdpSocket),
    /// Boxed: its frame buffers would make every UDP transport as large.
    Tcp(Box<TcpConnection>),
}

impl Socket {
    /// Sends one packet and counts it.
    fn send(&mut self, packet: &[u8], c: &mut Counters) -> bool {
        let sent = match self {
            Socket::Udp(socket) => socket.send(packet).is_ok(),
            Socket::Tcp(conn) => conn.send(packet, c).is_ok(),
        };
        if sent {
            c.datagrams_sent += 1;
        } else {
            c.send_errors += 1;
        }
        sent
    }

    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Socket::Udp(socket) => socket.peer_addr(),
            Socket::Tcp(conn) => Ok(conn.peer_addr()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ice {
    Checking { next: Instant, interval: Duration, deadline: Instant },
    Connected { next_consent: Instant, last_response: Instant },
    Failed,
}

/// Every client transport's ICE password (SDP `ice-pwd`): an ICE-lite server never uses it, a
/// full agent signs its checks with it. Not a secret: these are test clients.
pub const LOCAL_ICE_PASSWORD: &str = "loadgenloadgenloadgen0";

/// The ICE username fragment of the transport seeded `seed` (the media loop seeds a transport
/// with its key + 1). An ICE-lite server checks only its own fragment; Janus, told this one in
/// the SDP, checks both.
pub fn local_ufrag(seed: u64) -> String {
    format!("lg{seed:08x}")
}

const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
const RENOMINATE_INTERVAL: Duration = Duration::from_millis(200);
const DTLS_AFTER_NOMINATION: Duration = Duration::from_millis(20);
/// RFC 7675: consent is lost after 30 s without a response.
const CONSENT_LOST: Duration = Duration::from_secs(30);
const ICE_TIMEOUT: Duration = Duration::from_secs(15);
const RTCP_INTERVAL: Duration = Duration::from_secs(1);
const NACK_INTERVAL: Duration = Duration::from_millis(20);
/// Room for an SRTP packet being decrypted or encrypted in place.
pub const BUFFER: usize = 1600;

pub struct ClientTransport {
    socket: Socket,
    local_ufrag: String,
    remote_ufrag: String,
    remote_password: String,
    tie_breaker: u64,
    controlling: bool,
    transaction: u32,
    ice: Ice,
    dtls: DtlsTransport,
    dtls_started: bool,
    /// When a controlled transport starts DTLS, once nominated.
    dtls_at: Option<Instant>,
    srtp_send: Option<SrtpSendContext>,
    srtp_recv: Option<SrtpRecvContext>,
    pub profile: Option<SrtpProfile>,
    pub connected_at: Option<Instant>,
    pub send_streams: Vec<SendStream>,
    pub recv_streams: Vec<RecvStream>,
    /// First arrival of SSRCs whose consumer the loop has not been told about yet.
    early: Vec<(u32, Instant)>,
    rtcp_ssrc: u32,
    next_rtcp: Instant,
    next_nack: Instant,
    /// Decrypt every Nth packet of each stream.
    decrypt_every: u64,
    /// A subscriber's transport-cc feedback and what it received.
    pub downlink: Downlink,
    behind_link: bool,
    /// A sink: once set up and flowing it is no longer read (see [`ClientTransport::deafen`]).
    pub sink: Sink,
}

/// Whether a subscriber's transport reads its media for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Read throughout (every publisher, and the sampled subscribers).
    No,
    /// To stop reading once connected and every consumer has had its first packet.
    Pending,
    /// No longer read: the kernel drops its datagrams at the socket (over TCP, which cannot
    /// drop, what arrives is read and thrown away unparsed).
    Deaf,
}

impl ClientTransport {
    pub fn new(
        setup: TransportSetup,
        identity: &DtlsIdentity,
        now: Instant,
        seed: u64,
        decrypt_every: u64,
    ) -> Result<Self, super::MediaError> {
        let socket = match setup.socket {
            ClientSocket::Udp(socket) => Socket::Udp(UdpSocket::from_std(socket)),
            ClientSocket::Tcp(stream, peer) => Socket::Tcp(Box::new(TcpConnection::new(stream, peer))),
        };
        let dtls = DtlsTransport::new(identity, DtlsLocalRole::Client, &setup.remote_fingerprints)?;
        Ok(Self {
            socket,
            local_ufrag: local_ufrag(seed),
            remote_ufrag: setup.remote_ufrag,
            remote_password: setup.remote_password,
            tie_breaker: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            controlling: setup.controlling,
            transaction: 0,
            ice: Ice::Checking { next: now, interval: Duration::from_millis(50), deadline: now + ICE_TIMEOUT },
            dtls,
            dtls_started: false,
            dtls_at: None,
            srtp_send: None,
            srtp_recv: None,
            profile: None,
            connected_at: None,
            send_streams: Vec::new(),
            recv_streams: Vec::new(),
            early: Vec::new(),
            rtcp_ssrc: (seed as u32).wrapping_mul(2_654_435_761) | 1,
            next_rtcp: now + RTCP_INTERVAL,
            next_nack: now,
            decrypt_every: decrypt_every.max(1),
            downlink: Downlink::new(),
            behind_link: false,
            sink: Sink::No,
        })
    }

    /// Its socket in the media loop's poll, under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> std::io::Result<()> {
        match &mut self.socket {
            Socket::Udp(socket) => registry.register(socket, token, Interest::READABLE),
            Socket::Tcp(conn) => conn.register(registry, token),
        }
    }

    /// The UDP socket to read datagrams from; `None` over TCP (see [`Self::receive_stream`]).
    pub fn udp_socket_mut(&mut self) -> Option<&mut UdpSocket> {
        match &mut self.socket {
            Socket::Udp(socket) => Some(socket),
            Socket::Tcp(_) => None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.srtp_send.is_some()
    }

    pub fn is_failed(&self) -> bool {
        self.ice == Ice::Failed
            || matches!(self.dtls.state(), DtlsState::Failed | DtlsState::Closed)
            || matches!(&self.socket, Socket::Tcp(conn) if conn.close_reason().is_some())
    }

    /// This subscriber receives through a simulated bottleneck: every packet is decrypted (each
    /// keyframe's resolution and each packet's temporal layer are read; few subscribers are
    /// capped), and its added latency, which includes the link's queue, stays out of the run's
    /// latency figures.
    pub fn set_behind_link(&mut self) {
        self.decrypt_every = 1;
        self.behind_link = true;
    }

    /// Ready to go deaf: a pending sink that is connected and whose every consumer has flowed.
    pub fn sink_ready(&self) -> bool {
        self.sink == Sink::Pending
            && self.is_connected()
            && !self.recv_streams.is_empty()
            && self.recv_streams.iter().all(|s| s.first_packet_at.is_some())
    }

    /// Stops reading this transport: a minimal receive buffer makes the kernel drop its
    /// datagrams at the socket, in the sending worker's context as a delivery would be, without
    /// waking the load generator. It keeps sending consent checks (whose answers it no longer
    /// reads), so Octo keeps the transport and its consumers. A TCP stream cannot drop: left
    /// unread it would push back into the worker, which a browser's never does; it stays polled
    /// and what arrives is thrown away unparsed.
    pub fn deafen(&mut self, registry: &Registry) -> std::io::Result<()> {
        self.sink = Sink::Deaf;
        match &mut self.socket {
            Socket::Udp(socket) => {
                registry.deregister(socket)?;
                set_receive_buffer(socket, 0);
            }
            Socket::Tcp(_) => {}
        }
        Ok(())
    }

    /// On a readiness event of its ICE-TCP connection: finishes connecting, writes what waits,
    /// then reads until nothing more has arrived, handing every packet, with when its read
    /// returned, to `on_packet` (which gives it to [`Self::handle_datagram`], as a datagram).
    /// `buf`: the loop's read buffer, longer than a frame.
    pub fn receive_stream(
        &mut self,
        buf: &mut [u8],
        c: &mut Counters,
        mut on_packet: impl FnMut(&mut Self, Instant, &mut [u8], &mut Counters),
    ) {
        loop {
            let Socket::Tcp(conn) = &mut self.socket else { return };
            conn.on_ready(c);
            let Some(filled) = conn.read(buf, c) else { return };
            if self.sink == Sink::Deaf {
                continue;
            }
            c.reads += 1;
            let now = Instant::now();
            let mut frames = Frames::new(&mut buf[..filled]);
            let mut bad = None;
            for packet in frames.by_ref() {
                match packet {
                    Ok(packet) => on_packet(self, now, packet, c),
                    Err(e) => bad = Some(e),
                }
            }
            // Handling a packet may have closed the connection (a failed write): then `read`
            // above ends the loop.
            let Socket::Tcp(conn) = &mut self.socket else { return };
            match bad {
                Some(e) => conn.close(super::ice_tcp::CloseReason::Framing(e), c),
                None => conn.keep_rest(frames),
            }
        }
    }

    /// A consumer negotiated transport-cc: feedback for everything carrying extension `id`.
    pub fn enable_twcc(&mut self, id: u8) {
        self.downlink.enable_twcc(id, self.rtcp_ssrc);
    }

    pub fn add_consumer(&mut self, mut stream: RecvStream) {
        if let Some(i) = self.early.iter().position(|(ssrc, _)| *ssrc == stream.ssrc) {
            stream.first_packet_at = Some(self.early.swap_remove(i).1);
        }
        self.recv_streams.push(stream);
    }

    fn send(&mut self, data: &[u8], c: &mut Counters) {
        self.socket.send(data, c);
    }

    /// Runs whatever is due: ICE checks, DTLS retransmissions, media, RTCP.
    pub fn poll(&mut self, now: Instant, epoch: Instant, c: &mut Counters) {
        self.poll_ice(now, c);
        if self.dtls_at.is_some_and(|at| at <= now) {
            self.dtls_at = None;
            self.start_dtls(now, c);
        }
        if self.dtls.poll_timeout().is_some_and(|t| t <= now) {
            self.dtls.handle_timeout(now);
            self.flush_dtls(now, c);
        }
        if self.srtp_send.is_none() {
            return;
        }
        let (srtp, socket) = (&mut self.srtp_send, &mut self.socket);
        for stream in &mut self.send_streams {
            stream.poll(now, epoch, |buf, len| {
                let Some(srtp) = srtp.as_mut() else { return };
                match srtp.encrypt_rtp(buf, len) {
                    Ok(n) if socket.send(&buf[..n], c) => c.rtp_sent += 1,
                    Ok(_) => {}
                    Err(_) => c.send_errors += 1,
                }
            });
        }
        if now >= self.next_nack {
            self.next_nack = now + NACK_INTERVAL;
            self.send_feedback(c);
        }
        self.send_transport_cc(now, c);
        if now >= self.next_rtcp {
            self.next_rtcp = now + RTCP_INTERVAL;
            self.send_reports(now, epoch, c);
        }
    }

    fn send_rtcp(&mut self, buf: &mut [u8], len: usize, c: &mut Counters) {
        let Some(srtp) = self.srtp_send.as_mut() else { return };
        if let Ok(n) = srtp.encrypt_rtcp(buf, len) {
            c.rtcp_sent += 1;
            self.send(&buf[..n], c);
        }
    }

    /// A browser's first PLI for each video consumer, and NACKs for gaps seen since last time.
    fn send_feedback(&mut self, c: &mut Counters) {
        let sender = self.rtcp_ssrc;
        let mut buf = [0u8; BUFFER];
        for i in 0..self.recv_streams.len() {
            let s = &mut self.recv_streams[i];
            let mut len = 0;
            if s.kind == Kind::Video && !s.pli_sent {
                s.pli_sent = true;
                c.pli_sent += 1;
                len = write_pli(&mut buf, sender, s.ssrc).unwrap_or(0);
            } else if !s.missing.is_empty() {
                let lost = std::mem::take(&mut s.missing);
                c.nack_sent += 1;
                c.nacked_packets += lost.len() as u64;
                len = write_nack(&mut buf, sender, s.ssrc, &lost).unwrap_or(0);
            }
            if len > 0 {
                self.send_rtcp(&mut buf, len, c);
            }
        }
    }

    /// Transport-wide CC feedback, every 100 ms while packets arrive (as libwebrtc sends it).
    fn send_transport_cc(&mut self, now: Instant, c: &mut Counters) {
        let media_ssrc = self.recv_streams.first().map_or(0, |s| s.ssrc);
        let (downlink, srtp, socket) = (&mut self.downlink, &mut self.srtp_send, &mut self.socket);
        downlink.poll_feedback(now, media_ssrc, |buf, len| {
            let Some(srtp) = srtp.as_mut() else { return };
            match srtp.encrypt_rtcp(buf, len) {
                Ok(n) if socket.send(&buf[..n], c) => {
                    c.rtcp_sent += 1;
                    c.twcc_feedback_sent += 1;
                }
                Ok(_) => {}
                Err(_) => c.send_errors += 1,
            }
        });
    }

    /// Receiver reports for every consumer (subscriber) or sender reports (publisher).
    fn send_reports(&mut self, now: Instant, epoch: Instant, c: &mut Counters) {
        let mut buf = [0u8; BUFFER];
        let len = {
            let mut w = RtcpCompoundWriter::new(&mut buf);
            let blocks: Vec<ReportBlock> =
                self.recv_streams.iter_mut().filter_map(RecvStream::report_block).take(31).collect();
            if !blocks.is_empty() {
                let _ = w.push(|b| write_receiver_report(b, self.rtcp_ssrc, &blocks));
            }
            for s in &self.send_streams {
                let ntp = ntp_time(now - epoch);
                let info = SenderInfo {
                    ssrc: s.config.ssrc,
                    ntp,
                    rtp_timestamp: s.last_rtp_timestamp,
                    packet_count: s.packets_sent as u32,
                    octet_count: s.bytes_sent as u32,
                };
                let _ = w.push(|b| write_sender_report(b, &info, &[]));
            }
            w.len()
        };
        if len > 0 {
            self.send_rtcp(&mut buf, len, c);
        }
    }

    fn poll_ice(&mut self, now: Instant, c: &mut Counters) {
        match self.ice {
            Ice::Checking { next, interval, deadline } if now >= next => {
                if now >= deadline {
                    self.ice = Ice::Failed;
                    c.ice_failures += 1;
                    return;
                }
                self.send_check(true, c);
                let interval = (interval * 2).min(Duration::from_millis(500));
                self.ice = Ice::Checking { next: now + interval, interval, deadline };
            }
            Ice::Connected { next_consent, last_response } if now >= next_consent => {
                if now >= last_response + CONSENT_LOST && self.sink != Sink::Deaf {
                    self.ice = Ice::Failed;
                    c.consent_lost += 1;
                    return;
                }
                // Until DTLS is through, nominate again every 200 ms: an agent that took the first
                // check before it was ready for it (libnice in Janus, which starts its checklist
                // only once trickling ends) nominates on a later one.
                let nominate = self.srtp_send.is_none();
                self.send_check(nominate, c);
                let next = if nominate { RENOMINATE_INTERVAL } else { CONSENT_INTERVAL };
                self.ice = Ice::Connected { next_consent: now + next, last_response };
            }
            _ => {}
        }
    }

    fn send_check(&mut self, use_candidate: bool, c: &mut Counters) {
        self.transaction = self.transaction.wrapping_add(1);
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&self.tie_breaker.to_be_bytes());
        tid[8..].copy_from_slice(&self.transaction.to_be_bytes());
        let username = format!("{}:{}", self.remote_ufrag, self.local_ufrag);
        let mut buf = [0u8; 256];
        let request = BindingRequest {
            transaction_id: tid,
            username: username.as_bytes(),
            password: self.remote_password.as_bytes(),
            // Host candidate type preference 126 (RFC 8445 §5.1.2.1).
            priority: (126 << 24) | (65_535 << 8) | 255,
            use_candidate: use_candidate && self.controlling,
            ice_controlling: self.controlling.then_some(self.tie_breaker),
            ice_controlled: (!self.controlling).then_some(self.tie_breaker),
        };
        if let Ok(n) = write_binding_request(&mut buf, &request) {
            c.stun_sent += 1;
            self.send(&buf[..n], c);
        }
    }

    /// One datagram from the socket, or one packet of the TCP stream (RFC 7983 demultiplexing).
    pub fn handle_datagram(&mut self, now: Instant, epoch: Instant, buf: &mut [u8], len: usize, c: &mut Counters) {
        match buf.first() {
            Some(0..=3) => self.handle_stun(now, &buf[..len], c),
            Some(20..=63) => {
                if self.dtls.handle_datagram(now, &buf[..len]).is_err() {
                    c.dtls_errors += 1;
                }
                self.flush_dtls(now, c);
            }
            Some(128..=191) if buf.get(1).is_some_and(|b| (64..=95).contains(&(b & 0x7f))) => {
                self.handle_rtcp(buf, len, c)
            }
            Some(128..=191) => self.handle_rtp(now, epoch, buf, len, c),
            _ => c.foreign += 1,
        }
    }

    fn handle_stun(&mut self, now: Instant, data: &[u8], c: &mut Counters) {
        let Ok(msg) = StunMessage::parse(data) else {
            c.foreign += 1;
            return;
        };
        if msg.class() == StunClass::Request {
            self.answer_check(now, &msg, c);
            return;
        }
        let ours = msg.transaction_id()[..8] == self.tie_breaker.to_be_bytes();
        if msg.class() != StunClass::SuccessResponse || !ours || !msg.verify_integrity(self.remote_password.as_bytes())
        {
            c.stun_errors += 1;
            return;
        }
        // A controlled agent waits for the controlling one's nomination (see `answer_check`).
        if self.controlling {
            self.start_dtls(now, c);
        }
        if self.ice != Ice::Failed {
            let next = if self.srtp_send.is_none() { RENOMINATE_INTERVAL } else { CONSENT_INTERVAL };
            self.ice = Ice::Connected { next_consent: now + next, last_response: now };
        }
    }

    /// Answers a full ICE agent's check (Janus's libnice; an ICE-lite server sends none): from
    /// the connected peer, for this transport's username, signed with its password.
    fn answer_check(&mut self, now: Instant, msg: &StunMessage<'_>, c: &mut Counters) {
        let expected = format!("{}:{}", self.local_ufrag, self.remote_ufrag);
        let Ok(from) = self.socket.peer_addr() else { return };
        if msg.username() != Some(expected.as_bytes()) || !msg.verify_integrity(LOCAL_ICE_PASSWORD.as_bytes()) {
            c.stun_errors += 1;
            return;
        }
        let mut buf = [0u8; 128];
        if let Ok(n) = write_binding_success(&mut buf, msg.transaction_id(), from, LOCAL_ICE_PASSWORD.as_bytes()) {
            self.send(&buf[..n], c);
        }
        // Nominated: the pair is the one in use. DTLS starts a moment later: Janus marks its
        // component ready only after it has handled this response, and drops a ClientHello that
        // comes before (whose retransmission would follow only a second later).
        if !self.controlling && msg.use_candidate() && self.ice != Ice::Failed {
            if matches!(self.ice, Ice::Checking { .. }) {
                self.ice = Ice::Connected { next_consent: now + RENOMINATE_INTERVAL, last_response: now };
            }
            if !self.dtls_started {
                self.dtls_at.get_or_insert(now + DTLS_AFTER_NOMINATION);
            }
        }
    }

    fn start_dtls(&mut self, now: Instant, c: &mut Counters) {
        if !self.dtls_started {
            tracing::trace!(ufrag = self.local_ufrag, "DTLS starts");
            self.dtls_started = true;
            self.dtls.start(now);
            self.flush_dtls(now, c);
        }
    }

    fn flush_dtls(&mut self, now: Instant, c: &mut Counters) {
        while let Some(datagram) = self.dtls.poll_transmit() {
            self.send(&datagram, c);
        }
        while let Some(event) = self.dtls.poll_event() {
            match event {
                DtlsEvent::SrtpKeys { profile, keying_material, local_is_client } => {
                    let profile = srtp_profile(profile);
                    match DtlsSrtpKeys::split(profile, &keying_material, local_is_client) {
                        Ok(keys) => {
                            self.srtp_send = Some(SrtpSendContext::new(&keys.local));
                            // A subscriber in a large meeting receives more streams than a
                            // server-side receiving context expects (as a browser does).
                            self.srtp_recv = Some(SrtpRecvContext::with_max_ssrcs(&keys.remote, MAX_SEND_SSRCS));
                            self.profile = Some(profile);
                            self.connected_at = Some(now);
                            tracing::trace!(ufrag = self.local_ufrag, "SRTP keys");
                        }
                        Err(_) => c.dtls_errors += 1,
                    }
                }
                DtlsEvent::StateChanged { state: DtlsState::Failed, .. } => c.dtls_errors += 1,
                _ => {}
            }
        }
    }

    fn handle_rtp(&mut self, now: Instant, epoch: Instant, buf: &mut [u8], len: usize, c: &mut Counters) {
        let Ok(header) = RtpHeader::parse(&buf[..len]) else {
            c.foreign += 1;
            return;
        };
        let (ssrc, seq, padding) = (header.ssrc(), header.sequence_number(), header.has_padding());
        // Header extensions are not encrypted: every packet's transport-wide sequence number is
        // recorded at its arrival, whether or not it is decrypted.
        if let Some(twcc_seq) = self.downlink.twcc_extension_id().and_then(|id| header.transport_wide_cc_seq(id)) {
            self.downlink.record(twcc_seq, now);
        }
        c.rtp_received += 1;
        c.rtp_bytes_received += len as u64;
        // mediasoup-client's probator stream (SSRC 1234): where the worker sends its probes' padding.
        if ssrc == PROBATOR_SSRC && padding {
            self.downlink.counters.padding_bytes += len as u64;
            c.padding_received += 1;
            return;
        }
        let Some(stream) = self.recv_streams.iter_mut().find(|s| s.ssrc == ssrc || s.rtx_ssrc == Some(ssrc)) else {
            if !self.early.iter().any(|(s, _)| *s == ssrc) && self.early.len() < 16 {
                self.early.push((ssrc, now));
            }
            c.unknown_ssrc += 1;
            return;
        };
        if stream.ssrc != ssrc {
            // The P bit is in the clear: the estimator's probes are padding-only RTX packets; a
            // retransmission of this load generator's media never has padding.
            if padding {
                self.downlink.counters.padding_bytes += len as u64;
                c.padding_received += 1;
            } else {
                self.downlink.counters.rtx_bytes += len as u64;
                stream.rtx_received += 1;
                c.rtx_received += 1;
            }
            return;
        }
        self.downlink.counters.media_bytes += len as u64;
        let first = stream.first_packet_at.is_none();
        stream.on_packet(now, seq);
        if first {
            tracing::trace!(ufrag = self.local_ufrag, ssrc = stream.ssrc, after = ?now.saturating_duration_since(stream.consumed_at), "first packet");
            c.first_packet.push(now.saturating_duration_since(stream.consumed_at));
        }
        if !first && stream.received % self.decrypt_every != 0 {
            return;
        }
        let kind = stream.kind;
        let Some(srtp) = self.srtp_recv.as_mut() else { return };
        let Ok(n) = srtp.decrypt_rtp(buf, len) else {
            c.decrypt_failures += 1;
            return;
        };
        let Ok(packet) = RtpPacket::parse(buf, n) else {
            c.corrupt += 1;
            return;
        };
        let payload = packet.payload();
        let codec_header = match kind {
            Kind::Audio => Some(1),
            Kind::Video => vp8::read_header(payload).map(|h| {
                self.downlink.on_video_header(&h);
                h.len
            }),
        };
        let sent = codec_header.and_then(|at| payload.get(at..)).and_then(|p| probe::read(p, epoch));
        match sent {
            Some(sent) => {
                c.decrypted += 1;
                if !self.behind_link {
                    c.latency.record(now.saturating_duration_since(sent));
                }
            }
            None => c.corrupt += 1,
        }
    }

    fn handle_rtcp(&mut self, buf: &mut [u8], len: usize, c: &mut Counters) {
        let Some(srtp) = self.srtp_recv.as_mut() else { return };
        let Ok(n) = srtp.decrypt_rtcp(buf, len) else {
            c.decrypt_failures += 1;
            return;
        };
        c.rtcp_received += 1;
        for packet in RtcpCompound::iter(&buf[..n]).flatten() {
            let wanted = match packet {
                RtcpPacket::Pli(p) => Some(p.media_ssrc),
                RtcpPacket::Fir(f) => f.entries().next().map(|e| e.ssrc),
                RtcpPacket::Nack(_) => {
                    c.nack_received += 1;
                    None
                }
                _ => None,
            };
            if let Some(ssrc) = wanted {
                c.keyframe_requests_received += 1;
                if let Some(s) = self.send_streams.iter_mut().find(|s| s.config.ssrc == ssrc) {
                    s.request_keyframe();
                }
            }
        }
    }
}

fn srtp_profile(p: NegotiatedSrtpProfile) -> SrtpProfile {
    match p {
        NegotiatedSrtpProfile::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
        NegotiatedSrtpProfile::AeadAes256Gcm => SrtpProfile::AeadAes256Gcm,
        NegotiatedSrtpProfile::Aes128CmHmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        NegotiatedSrtpProfile::Aes128CmHmacSha1_32 => SrtpProfile::Aes128CmHmacSha1_32,
    }
}

/// An NTP-format timestamp for SRs; only differences matter to the worker, so the load
/// generator's epoch stands in for 1900.
fn ntp_time(since_epoch: Duration) -> u64 {
    (since_epoch.as_secs() << 32) | ((u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000)
}

/// The SSRC mediasoup-client's probator receiver has (the worker's bandwidth probes go there).
const PROBATOR_SSRC: u32 = 1234;

/// Sets a socket's SO_RCVBUF (the kernel doubles it and keeps a minimum of its own).
pub fn set_receive_buffer(socket: &impl std::os::fd::AsRawFd, bytes: i32) {
    // SAFETY: a valid fd and a pointer to an int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if rc != 0 {
        tracing::debug!("SO_RCVBUF: {}", std::io::Error::last_os_error());
    }
}
