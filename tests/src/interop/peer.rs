//! A str0m peer on a real UDP socket, configured with str0m's direct API from what the worker
//! answered, and [`drive`], which steps peers and the worker's ipc together, bounded in time.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use octo_ipc::{
    DtlsFingerprint, DtlsParameters, DtlsRole, FingerprintAlgorithm, MediaKind as IpcMediaKind,
    Protocol as IpcProtocol, WebRtcTransportData,
};
use str0m::config::Fingerprint;
use str0m::media::{KeyframeRequest, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::rtcp::Rtcp;
use str0m::rtp::{ExtensionValues, RawPacket, RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

use super::loss::Impairment;
use super::media::PeerMedia;
use super::worker::WorkerUnderTest;

/// Which side of the DTLS handshake str0m plays (the worker plays the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsSide {
    /// str0m sends the ClientHello ("active"); the worker is told `role: client` and serves.
    Str0mClient,
    /// str0m waits for the worker's ClientHello; the worker is told `role: server` and connects.
    Str0mServer,
}

pub struct Str0mPeer {
    pub name: String,
    pub rtc: Rtc,
    pub media: PeerMedia,
    pub dtls_side: DtlsSide,
    socket: UdpSocket,
    pub local_addr: SocketAddr,
    /// The worker's UDP candidate this peer talks to.
    pub worker_addr: SocketAddr,
    pub impairment: Impairment,
    /// Everything str0m emitted, with the time it came out.
    pub events: Vec<(Instant, Event)>,
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// When set, str0m refusing a datagram is recorded in [`Self::errors`] instead of failing
    /// [`Self::pump`]: for tests where the worker is expected to abort the handshake.
    pub tolerate_errors: bool,
    pub errors: Vec<String>,
    buf: Vec<u8>,
}

impl Str0mPeer {
    /// A peer for `transport`: ICE controlling (the worker is ICE-lite) with the worker's
    /// credentials and candidate, DTLS pinned to the worker's sha-256 fingerprint.
    pub fn new(
        name: &str,
        media: PeerMedia,
        transport: &WebRtcTransportData,
        dtls_side: DtlsSide,
    ) -> anyhow::Result<Self> {
        let candidate = transport
            .ice_candidates
            .iter()
            .find(|c| c.protocol == IpcProtocol::Udp)
            .context("worker offered no UDP candidate")?;
        let worker_addr: SocketAddr = format!("{}:{}", candidate.address, candidate.port)
            .parse()
            .with_context(|| format!("candidate address {candidate:?}"))?;
        let fingerprint = transport
            .dtls_parameters
            .fingerprints
            .iter()
            .find(|f| f.algorithm == FingerprintAlgorithm::Sha256)
            .context("worker offered no sha-256 fingerprint")?;
        let fingerprint = format!("sha-256 {}", fingerprint.value)
            .parse()
            .map_err(|e| anyhow::anyhow!("worker fingerprint {:?}: {e}", fingerprint.value))?;
        let creds = IceCreds {
            ufrag: transport.ice_parameters.username_fragment.clone(),
            pass: transport.ice_parameters.password.clone(),
        };
        let mut peer = Self::bind(name, media, dtls_side)?;
        peer.start(worker_addr, creds, fingerprint, true)?;
        Ok(peer)
    }

    /// Two peers wired straight to each other, no worker in between (the first ICE controlling,
    /// the second controlled): checks the harness's own media logic against str0m alone.
    pub fn loopback_pair(media_a: PeerMedia, media_b: PeerMedia) -> anyhow::Result<(Str0mPeer, Str0mPeer)> {
        let mut a = Self::bind("loopback-a", media_a, DtlsSide::Str0mClient)?;
        let mut b = Self::bind("loopback-b", media_b, DtlsSide::Str0mServer)?;
        let (creds_a, finger_a) =
            (a.rtc.direct_api().local_ice_credentials(), a.rtc.direct_api().local_dtls_fingerprint().clone());
        let (creds_b, finger_b) =
            (b.rtc.direct_api().local_ice_credentials(), b.rtc.direct_api().local_dtls_fingerprint().clone());
        let (addr_a, addr_b) = (a.local_addr, b.local_addr);
        a.start(addr_b, creds_b, finger_b, true)?;
        b.start(addr_a, creds_a, finger_a, false)?;
        Ok((a, b))
    }

    /// A socket on 127.0.0.1 and an `Rtc` with that host candidate, not yet pointed anywhere.
    fn bind(name: &str, media: PeerMedia, dtls_side: DtlsSide) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        let mut rtc = media.build_rtc();
        rtc.add_local_candidate(Candidate::host(local_addr, "udp")?).context("local candidate refused")?;
        Ok(Str0mPeer {
            name: name.into(),
            rtc,
            media,
            dtls_side,
            socket,
            local_addr,
            worker_addr: local_addr,
            impairment: Impairment::default(),
            events: Vec::new(),
            datagrams_in: 0,
            datagrams_out: 0,
            tolerate_errors: false,
            errors: Vec::new(),
            buf: vec![0u8; 2048],
        })
    }

    /// Points the peer at its remote and starts ICE and DTLS (str0m's direct API, no SDP).
    fn start(
        &mut self,
        remote: SocketAddr,
        remote_creds: IceCreds,
        remote_fingerprint: Fingerprint,
        controlling: bool,
    ) -> anyhow::Result<()> {
        self.worker_addr = remote;
        self.rtc.add_remote_candidate(Candidate::host(remote, "udp")?);
        let mut api = self.rtc.direct_api();
        api.set_ice_controlling(controlling);
        api.set_remote_ice_credentials(remote_creds);
        api.set_remote_fingerprint(remote_fingerprint);
        api.start_dtls(self.dtls_side == DtlsSide::Str0mClient)?;
        Ok(())
    }

    /// What to send in `Connect`: str0m's certificate fingerprint and the role str0m plays.
    pub fn dtls_parameters(&mut self) -> DtlsParameters {
        let local = self.rtc.direct_api().local_dtls_fingerprint().clone();
        let value = local.bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let algorithm = match local.hash_func.as_str() {
            "sha-384" => FingerprintAlgorithm::Sha384,
            "sha-512" => FingerprintAlgorithm::Sha512,
            _ => FingerprintAlgorithm::Sha256,
        };
        DtlsParameters {
            role: Some(match self.dtls_side {
                DtlsSide::Str0mClient => DtlsRole::Client,
                DtlsSide::Str0mServer => DtlsRole::Server,
            }),
            fingerprints: vec![DtlsFingerprint { algorithm, value }],
        }
    }

    /// One turn without blocking: every datagram waiting on the socket into str0m, str0m's timers,
    /// and after each input everything str0m has to say (its contract: in RTP mode an incoming
    /// packet waits in a one-packet slot for the next `poll_output`). An error is str0m refusing
    /// input from the worker (worth reporting) or the socket failing.
    pub fn pump(&mut self) -> anyhow::Result<()> {
        loop {
            let (n, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A previous send found the port closed (ICMP): the worker is gone or not there yet.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e).context("recv_from"),
            };
            self.datagrams_in += 1;
            let data = &self.buf[..n];
            if self.impairment.drop_inbound(data) {
                continue;
            }
            let Ok(contents) = data.try_into() else {
                bail!(
                    "{}: str0m cannot classify a {n}-byte datagram from {from}: {:02x?}",
                    self.name,
                    &data[..n.min(16)]
                );
            };
            let input = Input::Receive(
                Instant::now(),
                Receive { proto: Protocol::Udp, source: from, destination: self.local_addr, contents },
            );
            if let Err(e) = self.rtc.handle_input(input) {
                if !self.tolerate_errors {
                    bail!("{}: str0m rejected a datagram from {from}: {e}", self.name);
                }
                self.errors.push(e.to_string());
            }
            self.poll()?;
        }
        self.rtc.handle_input(Input::Timeout(Instant::now())).with_context(|| format!("{}: timeout", self.name))?;
        self.poll()
    }

    /// Everything str0m has to say until it names its next timeout: datagrams out of the socket
    /// (through the impairment), events into [`Self::events`].
    fn poll(&mut self) -> anyhow::Result<()> {
        loop {
            match self.rtc.poll_output().with_context(|| format!("{}: poll_output", self.name))? {
                Output::Timeout(_) => return Ok(()),
                Output::Transmit(t) => {
                    if self.impairment.drop_outbound(&t.contents) {
                        continue;
                    }
                    match self.socket.send_to(&t.contents, t.destination) {
                        Ok(_) => self.datagrams_out += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                        Err(e) => return Err(e).context("send_to"),
                    }
                }
                Output::Event(e) => self.events.push((Instant::now(), e)),
            }
        }
    }

    /// ICE connected, DTLS done and SRTP keyed, as str0m sees it.
    pub fn is_connected(&self) -> bool {
        self.rtc.is_connected()
    }

    pub fn saw_connected_event(&self) -> bool {
        self.events.iter().any(|(_, e)| matches!(e, Event::Connected))
    }

    pub fn ice_states(&self) -> Vec<IceConnectionState> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::IceConnectionStateChange(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    // Media declarations (direct API, explicit SSRCs, no SDP).

    pub fn declare_send(&mut self, kind: IpcMediaKind, mid: &str, ssrc: u32, rtx: Option<u32>) {
        let mid = Mid::from(mid);
        let mut api = self.rtc.direct_api();
        api.declare_media(mid, media_kind(kind));
        api.declare_stream_tx(Ssrc::from(ssrc), rtx.map(Ssrc::from), mid, None);
    }

    pub fn declare_receive(&mut self, kind: IpcMediaKind, mid: &str, ssrc: u32, rtx: Option<u32>) {
        let mid = Mid::from(mid);
        let mut api = self.rtc.direct_api();
        api.declare_media(mid, media_kind(kind));
        api.expect_stream_rx(Ssrc::from(ssrc), rtx.map(Ssrc::from), mid, None);
    }

    /// Writes one RTP packet on a declared send stream (str0m adds mid, abs-send-time and
    /// transport-cc itself, encrypts, paces, and keeps it for RTX if `nackable`).
    #[allow(clippy::too_many_arguments)]
    pub fn write_rtp(
        &mut self,
        ssrc: u32,
        pt: u8,
        seq: u64,
        timestamp: u32,
        marker: bool,
        payload: Vec<u8>,
        exts: ExtensionValues,
    ) -> anyhow::Result<()> {
        let mut api = self.rtc.direct_api();
        let stream = api.stream_tx(&Ssrc::from(ssrc)).with_context(|| format!("no send stream {ssrc}"))?;
        let write = RtpWrite::new(Pt::from(pt), SeqNo::from(seq), timestamp, Instant::now(), payload)
            .marker(marker)
            .nackable(true)
            .ext_vals(exts);
        stream.write_rtp(write);
        Ok(())
    }

    /// Asks the sender of `ssrc` (here: the worker) for a keyframe.
    pub fn request_keyframe(&mut self, ssrc: u32) -> anyhow::Result<()> {
        let mut api = self.rtc.direct_api();
        let stream = api.stream_rx(&Ssrc::from(ssrc)).with_context(|| format!("no receive stream {ssrc}"))?;
        stream.request_keyframe(KeyframeRequestKind::Pli);
        Ok(())
    }

    // What arrived.

    /// RTP packets delivered on `ssrc` (retransmissions already unwrapped by str0m to their
    /// original sequence number), in delivery order.
    pub fn rtp_received(&self, ssrc: u32) -> Vec<&RtpPacket> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::RtpPacket(p) if *p.header.ssrc == ssrc => Some(p),
                _ => None,
            })
            .collect()
    }

    /// Decrypted RTP packets as they came off the wire with SSRC `ssrc` (for RTX: still wrapped).
    pub fn raw_rtp_received(&self, ssrc: u32) -> Vec<(&str0m::rtp::RtpHeader, &[u8])> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e.as_raw_packet() {
                Some(RawPacket::RtpRx(h, payload)) if *h.ssrc == ssrc => Some((h, payload.as_slice())),
                _ => None,
            })
            .collect()
    }

    /// Sequence numbers this peer asked to have resent for media SSRC `ssrc`.
    pub fn nacks_sent(&self, ssrc: u32) -> Vec<u16> {
        let mut out = Vec::new();
        for (_, e) in &self.events {
            if let Some(RawPacket::RtcpTx(Rtcp::Nack(nack))) = e.as_raw_packet()
                && *nack.ssrc == ssrc
            {
                for entry in nack.reports.iter() {
                    out.push(entry.pid);
                    out.extend(
                        (0..16u16).filter(|bit| entry.blp & (1 << bit) != 0).map(|bit| entry.pid.wrapping_add(bit + 1)),
                    );
                }
            }
        }
        out
    }

    /// Keyframe requests (PLI/FIR) that reached this peer for media it sends.
    pub fn keyframe_requests(&self) -> Vec<(Instant, &KeyframeRequest)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::KeyframeRequest(r) => Some((*t, r)),
                _ => None,
            })
            .collect()
    }

    /// Every RTCP packet str0m sent, for diagnostics.
    pub fn rtcp_sent(&self) -> impl Iterator<Item = &Rtcp> {
        self.events.iter().filter_map(|(_, e)| match e.as_raw_packet() {
            Some(RawPacket::RtcpTx(r)) => Some(r),
            _ => None,
        })
    }

    /// Every RTCP packet str0m received, for diagnostics.
    pub fn rtcp_received(&self) -> impl Iterator<Item = &Rtcp> {
        self.events.iter().filter_map(|(_, e)| match e.as_raw_packet() {
            Some(RawPacket::RtcpRx(r)) => Some(r),
            _ => None,
        })
    }

    /// A one-line account of what this peer saw, for assertion messages.
    pub fn summary(&self) -> String {
        let rtp_in =
            self.events.iter().filter(|(_, e)| matches!(e.as_raw_packet(), Some(RawPacket::RtpRx(..)))).count();
        let rtp_out =
            self.events.iter().filter(|(_, e)| matches!(e.as_raw_packet(), Some(RawPacket::RtpTx(..)))).count();
        format!(
            "{}: connected {} ice {:?}, datagrams in {} out {}, rtp in {rtp_in} out {rtp_out}, rtcp in {} out {}, \
             keyframe requests {}, loss in {}/{} out {}/{}",
            self.name,
            self.is_connected(),
            self.ice_states(),
            self.datagrams_in,
            self.datagrams_out,
            self.rtcp_received().count(),
            self.rtcp_sent().count(),
            self.keyframe_requests().len(),
            self.impairment.inbound.dropped,
            self.impairment.inbound.dropped + self.impairment.inbound.passed,
            self.impairment.outbound.dropped,
            self.impairment.outbound.dropped + self.impairment.outbound.passed,
        )
    }
}

fn media_kind(kind: IpcMediaKind) -> MediaKind {
    match kind {
        IpcMediaKind::Audio => MediaKind::Audio,
        IpcMediaKind::Video => MediaKind::Video,
    }
}

/// How often [`drive`] turns when nothing is due: short enough for 20 ms audio pacing.
const TURN: Duration = Duration::from_millis(1);

/// Steps every peer and the worker's ipc until `step` returns `true` (→ `Ok(true)`) or `timeout`
/// passes (→ `Ok(false)`). `step` runs after each turn and may write media or change impairments.
pub fn drive(
    worker: &mut WorkerUnderTest,
    peers: &mut [&mut Str0mPeer],
    timeout: Duration,
    mut step: impl FnMut(&mut WorkerUnderTest, &mut [&mut Str0mPeer]) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    drive_inner(Some(worker), peers, timeout, |w, peers| step(w.expect("given"), peers))
}

/// [`drive`] for peers talking to each other, without a worker.
pub fn drive_peers(
    peers: &mut [&mut Str0mPeer],
    timeout: Duration,
    mut step: impl FnMut(&mut [&mut Str0mPeer]) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    drive_inner(None, peers, timeout, |_, peers| step(peers))
}

fn drive_inner(
    mut worker: Option<&mut WorkerUnderTest>,
    peers: &mut [&mut Str0mPeer],
    timeout: Duration,
    mut step: impl FnMut(Option<&mut WorkerUnderTest>, &mut [&mut Str0mPeer]) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    // A second bound, on turns, in case the clock misbehaves: each turn sleeps at least TURN.
    let max_turns = (timeout.as_millis() / TURN.as_millis().max(1)).saturating_add(1000);
    for _ in 0..max_turns {
        for peer in peers.iter_mut() {
            peer.pump()?;
        }
        if let Some(w) = worker.as_deref_mut() {
            w.pump()?;
        }
        if step(worker.as_deref_mut(), peers)? {
            // Let whatever the step wrote leave now.
            for peer in peers.iter_mut() {
                peer.pump()?;
            }
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(TURN);
    }
    Ok(false)
}
