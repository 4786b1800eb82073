//! Simulated peers against one Octo: each joins through its own Socket.IO connection, creates and
//! connects transports, produces and consumes exactly as mediasoup-client would, and hands the
//! media side of every transport to the shared [`MediaLoop`].

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use octo_ipc::{DtlsParameters, IceCandidate, IceParameters, Protocol};
use serde_json::{Value, json};

use crate::janus::{JanusPeer, JanusTarget, Negotiated};
use crate::media::send_stream::{Kind, MID_EXTENSION_ID, SendStreamConfig};
use crate::media::{
    ClientSocket, Command, MediaLoop, TransportSetup, TransportSummary, ice_ufrag_of, set_receive_buffer,
};
use crate::signaling::{LayerChange, SignalingClient, SignalingError};
use octo_worker::core::ortc::URI_TRANSPORT_CC;

/// How a peer signals: Octo's Socket.IO API, or a Janus session (`--target janus`).
pub enum PeerSignaling {
    Octo(SignalingClient),
    Janus(JanusPeer),
    /// The peer has left (see [`Session::leave`]).
    Left,
}

pub struct Peer {
    pub signaling: PeerSignaling,
    pub room: String,
    /// The node it joined through (an index into [`Session::nodes`]; 0 without a cluster).
    pub node: usize,
    rtp_capabilities: Value,
    send_transport: Option<(usize, String)>,
    recv_transport: Option<(usize, String)>,
    /// This peer's producers: (producer id, kind).
    pub producers: Vec<(String, Kind)>,
    /// Where this peer receives media: its recv transport's UDP socket (none over ICE-TCP).
    pub recv_addr: Option<SocketAddr>,
    pub consumers: usize,
    pub video_consumers: usize,
    /// The rate of the simulated bottleneck in front of its recv transport, if it has one.
    pub cap_kbps: Option<u64>,
    /// Its recv transport stops reading once flowing (`--read-every`).
    pub sink: bool,
    /// Its consumers: (consumer id, kind, when it was resumed).
    pub consumer_ids: Vec<(String, Kind, Instant)>,
    /// Its data producers' and data consumers' ids (objects only: see [`Session::produce_data`]).
    pub data_producers: Vec<String>,
    pub data_consumers: Vec<String>,
}

/// What every publisher sends.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MediaOptions {
    pub bitrate: u64,
    pub keyframe_interval: Duration,
    pub audio: bool,
    /// Receive GSO runs whole (UDP_GRO) on the clients' sockets.
    pub gro: bool,
    /// Publish video as three simulcast encodings (L1T3) of these bitrates, lowest first, instead
    /// of one stream of `bitrate`.
    pub simulcast: Option<[u64; 3]>,
    /// Subscribers send transport-cc feedback (as browsers do); without it the worker neither
    /// estimates nor probes, and every consumer gets its preferred layer.
    pub transport_cc: bool,
}

/// The simulcast encodings' resolutions, lowest first (scaled down by 4, 2 and 1, as
/// mediasoup-client's defaults for a 720p camera).
pub const SIMULCAST_RESOLUTIONS: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];
/// A single-encoding publisher's resolution.
pub const SINGLE_RESOLUTION: (u16, u16) = (640, 480);

/// Which subscribers receive through a simulated bottleneck.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DownlinkCaps {
    /// Rates in kbit/s, taken by the capped subscribers in turn (empty: no caps).
    pub kbps: Vec<u64>,
    /// How many subscribers (the first ones) are capped; `None`: all of them.
    pub subscribers: Option<usize>,
}

impl DownlinkCaps {
    /// The cap of the `index`-th subscriber.
    pub fn for_subscriber(&self, index: usize) -> Option<u64> {
        if self.kbps.is_empty() || self.subscribers.is_some_and(|n| index >= n) {
            return None;
        }
        Some(self.kbps[index % self.kbps.len()])
    }
}

pub struct Session {
    pub addr: SocketAddr,
    /// Every node peers may join through (`--cluster`); `[addr]` otherwise.
    pub nodes: Vec<SocketAddr>,
    pub media: MediaLoop,
    pub peers: Vec<Peer>,
    next_key: usize,
    next_ssrc: u32,
    last_service: Instant,
    last_capped_service: Instant,
    pub media_options: MediaOptions,
    pub downlink_caps: DownlinkCaps,
    /// Subscribers made by [`Session::subscribe_all_on`] so far.
    subscribers: usize,
    /// Only every Nth subscriber reads its media once flowing; the others are sinks (1: all read).
    pub read_every: usize,
    /// The server under load is this Janus, not Octo.
    pub janus: Option<JanusTarget>,
    /// What every receive transport (every subscriber's) runs over: UDP, or ICE-TCP to the
    /// worker's passive TCP candidate (`--tcp`). Send transports are always UDP.
    pub subscriber_transport: Protocol,
    /// The workers' UDP candidates the transports connected to, each once.
    pub worker_addrs: Vec<SocketAddr>,
    /// Transports are created with SCTP (`sctpCapabilities`), so peers can make data producers
    /// and consumers.
    pub data_channels: bool,
}

impl Peer {
    /// The media loop's key of its recv transport, once it has one.
    pub fn recv_key(&self) -> Option<usize> {
        self.recv_transport.as_ref().map(|(key, _)| *key)
    }

    /// Its Socket.IO client: the Octo target's requests.
    fn octo(&mut self) -> anyhow::Result<&mut SignalingClient> {
        match &mut self.signaling {
            PeerSignaling::Octo(s) => Ok(s),
            PeerSignaling::Janus(_) => bail!("an Octo request on a Janus peer"),
            PeerSignaling::Left => bail!("a request from a peer that has left"),
        }
    }

    fn janus(&mut self) -> anyhow::Result<&mut JanusPeer> {
        match &mut self.signaling {
            PeerSignaling::Janus(j) => Ok(j),
            PeerSignaling::Octo(_) | PeerSignaling::Left => bail!("a Janus request on an Octo peer"),
        }
    }

    /// Every `consumerLayersChanged` Octo sent it (none from Janus).
    pub fn layer_changes(&self) -> &[LayerChange] {
        match &self.signaling {
            PeerSignaling::Octo(s) => &s.layer_changes,
            PeerSignaling::Janus(_) | PeerSignaling::Left => &[],
        }
    }

    fn service(&mut self) -> Result<(), SignalingError> {
        match &mut self.signaling {
            PeerSignaling::Octo(s) => s.service(),
            PeerSignaling::Janus(j) => j.client.service(),
            PeerSignaling::Left => Ok(()),
        }
    }
}

impl Session {
    pub fn new(addr: SocketAddr, media: MediaLoop, media_options: MediaOptions) -> Self {
        Self {
            addr,
            nodes: vec![addr],
            media,
            peers: Vec::new(),
            next_key: 0,
            next_ssrc: 0x1000_0000,
            last_service: Instant::now(),
            last_capped_service: Instant::now(),
            media_options,
            downlink_caps: DownlinkCaps::default(),
            subscribers: 0,
            read_every: 1,
            janus: None,
            subscriber_transport: Protocol::Udp,
            worker_addrs: Vec::new(),
            data_channels: false,
        }
    }

    /// Connects a new peer and joins `room`; returns its index.
    pub fn join(&mut self, room: &str) -> anyhow::Result<usize> {
        self.join_on(room, 0)
    }

    /// The same through node `node` (modulo the nodes there are).
    pub fn join_on(&mut self, room: &str, node: usize) -> anyhow::Result<usize> {
        self.service_if_due();
        let node = node % self.nodes.len();
        let name = format!("loadgen-{}", self.peers.len());
        let (signaling, rtp_capabilities) = match &self.janus {
            // A Janus peer joins its VideoRoom when it publishes or subscribes.
            Some(janus) => (PeerSignaling::Janus(JanusPeer::connect(janus.ws_addr, name)?), Value::Null),
            None => {
                let mut signaling = SignalingClient::connect(self.nodes[node])?;
                let data = signaling.request("joinRoom", json!({"roomId": room, "displayName": name}))?;
                (PeerSignaling::Octo(signaling), data["rtpCapabilities"].clone())
            }
        };
        self.peers.push(Peer {
            signaling,
            room: room.to_owned(),
            node,
            rtp_capabilities,
            send_transport: None,
            recv_transport: None,
            producers: Vec::new(),
            recv_addr: None,
            consumers: 0,
            video_consumers: 0,
            cap_kbps: None,
            sink: false,
            consumer_ids: Vec::new(),
            data_producers: Vec::new(),
            data_consumers: Vec::new(),
        });
        Ok(self.peers.len() - 1)
    }

    /// Creates and connects a transport on Octo and hands it to the media loop: its key, its id
    /// and, over UDP, the local address it receives on.
    fn create_transport(
        &mut self,
        peer: usize,
        direction: &str,
    ) -> anyhow::Result<(usize, String, Option<SocketAddr>)> {
        let fingerprints = self.media.fingerprints.clone();
        let protocol = if direction == "recv" { self.subscriber_transport } else { Protocol::Udp };
        let mut request = json!({"direction": direction});
        if self.data_channels {
            // As mediasoup-client's device.sctpCapabilities in Chrome.
            request["sctpCapabilities"] = json!({"numStreams": {"OS": 1024, "MIS": 1024}});
        }
        let p = &mut self.peers[peer];
        let data = p.octo()?.request("createWebRtcTransport", request)?;
        let id = data["id"].as_str().context("transport id")?.to_owned();
        let ice: IceParameters = serde_json::from_value(data["iceParameters"].clone())?;
        let candidates: Vec<IceCandidate> = serde_json::from_value(data["iceCandidates"].clone())?;
        let remote_dtls: DtlsParameters = serde_json::from_value(data["dtlsParameters"].clone())?;
        let candidate = ipv4_candidate(&candidates, protocol)?;
        if let Ok(udp) = ipv4_candidate(&candidates, Protocol::Udp)
            && !self.worker_addrs.contains(&udp)
        {
            self.worker_addrs.push(udp);
        }
        // The load generator is the DTLS client, as a browser answering an ICE-lite server is.
        p.octo()?.request(
            "connectWebRtcTransport",
            json!({"transportId": id, "dtlsParameters": {"role": "client", "fingerprints": fingerprints}}),
        )?;
        let setup = |socket| TransportSetup {
            socket,
            remote_ufrag: ice.username_fragment,
            remote_password: ice.password,
            remote_fingerprints: remote_dtls.fingerprints,
            controlling: true,
        };
        let (key, local) = match protocol {
            Protocol::Udp => self.add_transport(peer, direction, candidate, setup).map(|(k, l)| (k, Some(l)))?,
            Protocol::Tcp => {
                // Non-blocking: the media loop sees the connect finish (the socket is bound now).
                let stream = mio::net::TcpStream::connect(candidate)
                    .with_context(|| format!("connecting to the TCP candidate {candidate}"))?;
                (self.hand_over(peer, direction, setup(ClientSocket::Tcp(stream, candidate)))?, None)
            }
        };
        Ok((key, id, local))
    }

    /// A client socket for a transport to the server at `server`: on loopback for Octo, any
    /// address for the Janus in its namespace (the kernel picks the veth's).
    fn client_socket(&self, server: std::net::IpAddr) -> anyhow::Result<UdpSocket> {
        let bind = if server.is_loopback() { "127.0.0.1:0" } else { "0.0.0.0:0" };
        let socket = UdpSocket::bind(bind)?;
        set_receive_buffer(&socket, RECEIVE_BUFFER);
        if self.media_options.gro
            && let Err(e) = octo_worker::io::recv_batch::enable_gro(&socket)
        {
            tracing::debug!("UDP_GRO: {e}");
        }
        Ok(socket)
    }

    /// A client socket connected to the server's `candidate`, handed to the media loop.
    fn add_transport(
        &mut self,
        peer: usize,
        direction: &str,
        candidate: SocketAddr,
        setup: impl FnOnce(ClientSocket) -> TransportSetup,
    ) -> anyhow::Result<(usize, SocketAddr)> {
        let socket = self.client_socket(candidate.ip())?;
        self.add_socket(peer, direction, socket, candidate, setup)
    }

    fn add_socket(
        &mut self,
        peer: usize,
        direction: &str,
        socket: UdpSocket,
        candidate: SocketAddr,
        setup: impl FnOnce(ClientSocket) -> TransportSetup,
    ) -> anyhow::Result<(usize, SocketAddr)> {
        socket.connect(candidate)?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let key = self.hand_over(peer, direction, setup(ClientSocket::Udp(socket)))?;
        Ok((key, local))
    }

    /// Gives a transport to the media loop under a new key (a receive transport with its peer's
    /// bottleneck and sink settings).
    fn hand_over(&mut self, peer: usize, direction: &str, setup: TransportSetup) -> anyhow::Result<usize> {
        let key = self.next_key;
        self.next_key += 1;
        let (cap_kbps, sink) =
            if direction == "recv" { (self.peers[peer].cap_kbps, self.peers[peer].sink) } else { (None, false) };
        self.media.send(Command::AddTransport { key, cap_kbps, sink, setup })?;
        Ok(key)
    }

    /// A socket for a Janus transport and the host candidate it is, for the SDP: Janus's libnice
    /// nominates a pair only with a remote candidate it was told of (not a peer-reflexive one).
    fn janus_socket(&self) -> anyhow::Result<(UdpSocket, SocketAddr)> {
        let server = self.janus.as_ref().context("janus")?.ws_addr;
        let socket = self.client_socket(server.ip())?;
        // Connecting picks the source address the kernel will use towards Janus.
        socket.connect(SocketAddr::new(server.ip(), 9))?;
        let local = socket.local_addr()?;
        Ok((socket, local))
    }

    /// A transport Janus described, on `socket`, handed to the media loop.
    fn add_janus_transport(
        &mut self,
        peer: usize,
        direction: &str,
        socket: UdpSocket,
        n: &Negotiated,
    ) -> anyhow::Result<(usize, SocketAddr)> {
        let setup = |socket| TransportSetup {
            socket,
            remote_ufrag: n.remote.ufrag.clone(),
            remote_password: n.remote.password.clone(),
            remote_fingerprints: n.remote.fingerprints.clone(),
            // Janus offers to subscribers, and as the offering full agent it controls.
            controlling: direction == "send",
        };
        self.add_socket(peer, direction, socket, n.candidate, setup)
    }

    /// Creates the peer's send transport and produces video (simulcast or not) and audio.
    pub fn publish(&mut self, peer: usize, media: MediaOptions) -> anyhow::Result<()> {
        if self.janus.is_some() {
            return self.publish_janus(peer, media);
        }
        let (key, transport_id, _) = self.create_transport(peer, "send")?;
        self.peers[peer].send_transport = Some((key, transport_id.clone()));
        let kinds: &[Kind] = if media.audio { &[Kind::Video, Kind::Audio] } else { &[Kind::Video] };
        for (mid, &kind) in kinds.iter().enumerate() {
            let mid = mid as u8;
            // One stream per encoding: SSRC, RTX SSRC (declared, as browsers do), bitrate, size.
            let encodings: Vec<(u32, u64, (u16, u16))> = match (kind, media.simulcast) {
                (Kind::Video, Some(rates)) => {
                    (0..3).map(|i| (self.next_ssrc + 2 * i as u32, rates[i], SIMULCAST_RESOLUTIONS[i])).collect()
                }
                _ => vec![(self.next_ssrc, media.bitrate, SINGLE_RESOLUTION)],
            };
            self.next_ssrc += 2 * encodings.len() as u32;
            let simulcast = encodings.len() > 1;
            let ssrcs: Vec<(u32, u64)> = encodings.iter().map(|&(ssrc, rate, _)| (ssrc, rate)).collect();
            let (params, payload_type) = rtp_parameters(kind, mid, &ssrcs, simulcast, peer);
            let kind_name = if kind == Kind::Video { "video" } else { "audio" };
            let data = self.peers[peer]
                .octo()?
                .request("produce", json!({"transportId": transport_id, "kind": kind_name, "rtpParameters": params}))?;
            let producer_id = data["id"].as_str().context("producer id")?.to_owned();
            self.peers[peer].producers.push((producer_id, kind));
            for (ssrc, bitrate, resolution) in encodings {
                self.media.send(Command::Publish {
                    key,
                    stream: SendStreamConfig {
                        kind,
                        ssrc,
                        payload_type,
                        mid,
                        bitrate,
                        keyframe_interval: media.keyframe_interval,
                        temporal_layers: simulcast,
                        resolution,
                    },
                })?;
            }
        }
        Ok(())
    }

    /// Consumes `producer` on the peer's recv transport (created on first use) and resumes it.
    pub fn consume(&mut self, peer: usize, producer: &str, kind: Kind) -> anyhow::Result<()> {
        self.service_if_due();
        let (key, transport_id) = match &self.peers[peer].recv_transport {
            Some(t) => t.clone(),
            None => {
                let (key, id, local) = self.create_transport(peer, "recv")?;
                self.peers[peer].recv_transport = Some((key, id.clone()));
                self.peers[peer].recv_addr = local;
                (key, id)
            }
        };
        let p = &mut self.peers[peer];
        let consumed_at = Instant::now();
        let request =
            json!({"transportId": transport_id, "producerId": producer, "rtpCapabilities": p.rtp_capabilities});
        // Through another node of a cluster, a producer made a moment ago may not have reached
        // this node yet: it is `not_found` for a few milliseconds (seconds on a loaded machine).
        let mut tries = 0;
        let data = loop {
            match p.octo()?.request("consume", request.clone()) {
                Err(SignalingError::Refused { code, .. }) if code == "not_found" && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => break other?,
            }
        };
        let consumer_id = data["id"].as_str().context("consumer id")?.to_owned();
        let encoding = &data["rtpParameters"]["encodings"][0];
        let ssrc = encoding["ssrc"].as_u64().context("consumer ssrc")? as u32;
        let rtx_ssrc = encoding["rtx"]["ssrc"].as_u64().map(|s| s as u32);
        // The router's capabilities this peer echoes list transport-cc, so consumers negotiate it.
        let twcc_ext_id = data["rtpParameters"]["headerExtensions"]
            .as_array()
            .and_then(|exts| exts.iter().find(|e| e["uri"] == URI_TRANSPORT_CC))
            .and_then(|e| e["id"].as_u64())
            .and_then(|id| u8::try_from(id).ok())
            .filter(|_| self.media_options.transport_cc);
        // The loop must know the SSRC before the worker can send on it.
        self.media.send(Command::Consume { key, ssrc, rtx_ssrc, kind, consumed_at, twcc_ext_id })?;
        p.octo()?.request("resumeConsumer", json!({"consumerId": consumer_id}))?;
        p.consumer_ids.push((consumer_id, kind, Instant::now()));
        p.consumers += 1;
        p.video_consumers += usize::from(kind == Kind::Video);
        Ok(())
    }

    /// A data producer on the peer's send transport (made with [`Session::data_channels`]). The
    /// load generator has no SCTP stack, so this makes the worker's objects (what a leak would
    /// leave behind), not a channel that carries messages.
    pub fn produce_data(&mut self, peer: usize, label: &str) -> anyhow::Result<String> {
        let (_, transport_id) = self.peers[peer].send_transport.clone().context("produceData before publish")?;
        let stream_id = self.peers[peer].data_producers.len();
        let data = self.peers[peer].octo()?.request(
            "produceData",
            json!({"transportId": transport_id, "label": label,
                   "sctpStreamParameters": {"streamId": stream_id, "ordered": true}}),
        )?;
        let id = data["id"].as_str().context("data producer id")?.to_owned();
        self.peers[peer].data_producers.push(id.clone());
        Ok(id)
    }

    /// A data consumer of `data_producer` on the peer's recv transport (which must exist).
    pub fn consume_data(&mut self, peer: usize, data_producer: &str) -> anyhow::Result<()> {
        let (_, transport_id) = self.peers[peer].recv_transport.clone().context("consumeData before consume")?;
        let data = self.peers[peer]
            .octo()?
            .request("consumeData", json!({"transportId": transport_id, "dataProducerId": data_producer}))?;
        let id = data["id"].as_str().context("data consumer id")?.to_owned();
        self.peers[peer].data_consumers.push(id);
        Ok(())
    }

    /// The peer leaves: its transports leave the media loop (their summaries are returned, send
    /// transport first), then either it sends `leaveRoom` and closes its connection, or, as a
    /// closed tab, its connection just drops.
    pub fn leave(&mut self, peer: usize, via_request: bool) -> anyhow::Result<Vec<TransportSummary>> {
        let p = &mut self.peers[peer];
        let keys: Vec<usize> =
            [p.send_transport.take(), p.recv_transport.take()].into_iter().flatten().map(|t| t.0).collect();
        p.recv_addr = None;
        let signaling = std::mem::replace(&mut p.signaling, PeerSignaling::Left);
        let mut summaries = Vec::new();
        for key in keys {
            summaries.push(self.media.remove_transport(key)?);
        }
        if via_request && let PeerSignaling::Octo(mut s) = signaling {
            s.request("leaveRoom", json!({}))?;
        }
        Ok(summaries)
    }

    /// A subscriber joining `room` and consuming every producer of `publishers`.
    pub fn subscribe_all(&mut self, room: &str, publishers: &[usize]) -> anyhow::Result<usize> {
        self.subscribe_all_on(room, publishers, 0)
    }

    /// The same through node `node`.
    pub fn subscribe_all_on(&mut self, room: &str, publishers: &[usize], node: usize) -> anyhow::Result<usize> {
        let peer = self.join_on(room, node)?;
        self.peers[peer].cap_kbps = self.downlink_caps.for_subscriber(self.subscribers);
        // A capped subscriber is always read: its figures are the point of capping it.
        self.peers[peer].sink =
            self.peers[peer].cap_kbps.is_none() && !self.subscribers.is_multiple_of(self.read_every.max(1));
        self.subscribers += 1;
        let producers: Vec<(String, Kind)> = publishers.iter().flat_map(|&p| self.peers[p].producers.clone()).collect();
        self.consume_all(peer, &producers)?;
        Ok(peer)
    }

    /// Consumes every one of `producers` on the peer's recv transport: one `consume` each on
    /// Octo, one subscription to all their feeds on Janus (its one PeerConnection per subscriber).
    pub fn consume_all(&mut self, peer: usize, producers: &[(String, Kind)]) -> anyhow::Result<()> {
        if self.janus.is_none() {
            for (id, kind) in producers {
                self.consume(peer, id, *kind)?;
            }
            return Ok(());
        }
        self.service_if_due();
        anyhow::ensure!(self.peers[peer].recv_transport.is_none(), "a Janus peer subscribes once, to every feed");
        let mut feeds: Vec<u64> = Vec::new();
        for (id, _) in producers {
            let feed = id.parse().with_context(|| format!("janus feed id {id:?}"))?;
            if !feeds.contains(&feed) {
                feeds.push(feed);
            }
        }
        let room_name = self.peers[peer].room.clone();
        let room = self.janus.as_mut().context("janus")?.room(&room_name)?;
        let ufrag = ice_ufrag_of(self.next_key);
        let fingerprint = self.media.fingerprints.first().context("no certificate fingerprint")?.clone();

        // Janus lists a feed once its publisher's PeerConnection is up (ICE, DTLS, first media):
        // until then a subscription is refused with 428, "No such feed".
        let deadline = Instant::now() + Duration::from_secs(20);
        let (socket, host) = self.janus_socket()?;
        // From the request Janus accepts, as Octo's from its `consume`.
        let mut consumed_at;
        let (handle, negotiated, streams) = loop {
            consumed_at = Instant::now();
            match self.peers[peer].janus()?.subscribe(room, &feeds) {
                Err(e) if Instant::now() < deadline && is_no_such_feed(&e) => self.idle(Duration::from_millis(100)),
                other => break other?,
            }
        };
        let (key, local) = self.add_janus_transport(peer, "recv", socket, &negotiated)?;
        // The loop must know the SSRCs before Janus can send on them.
        for &(kind, ssrc, rtx_ssrc) in &streams {
            self.media.send(Command::Consume { key, ssrc, rtx_ssrc, kind, consumed_at, twcc_ext_id: None })?;
        }
        let p = &mut self.peers[peer];
        p.recv_transport = Some((key, handle.to_string()));
        p.recv_addr = Some(local);
        p.janus()?.start(handle, &negotiated.remote, &ufrag, &fingerprint, host)?;
        for &(kind, ssrc, _) in &streams {
            p.consumer_ids.push((ssrc.to_string(), kind, Instant::now()));
            p.consumers += 1;
            p.video_consumers += usize::from(kind == Kind::Video);
        }
        Ok(())
    }

    /// Publishes one VP8 stream (and Opus) through Janus's VideoRoom: its `joinandconfigure` with
    /// the load generator's offer. Simulcast is Octo's only.
    fn publish_janus(&mut self, peer: usize, media: MediaOptions) -> anyhow::Result<()> {
        anyhow::ensure!(media.simulcast.is_none(), "the Janus target publishes one encoding (no --simulcast)");
        let kinds: &[Kind] = if media.audio { &[Kind::Video, Kind::Audio] } else { &[Kind::Video] };
        let streams: Vec<(Kind, u32)> =
            kinds.iter().enumerate().map(|(i, &k)| (k, self.next_ssrc + 2 * i as u32)).collect();
        self.next_ssrc += 2 * kinds.len() as u32;
        let room_name = self.peers[peer].room.clone();
        let room = self.janus.as_mut().context("janus")?.room(&room_name)?;
        let ufrag = ice_ufrag_of(self.next_key);
        let fingerprint = self.media.fingerprints.first().context("no certificate fingerprint")?.clone();
        let (socket, host) = self.janus_socket()?;
        let (feed, negotiated) = self.peers[peer].janus()?.publish(room, &streams, &ufrag, &fingerprint, host)?;
        let (key, _) = self.add_janus_transport(peer, "send", socket, &negotiated)?;
        self.peers[peer].send_transport = Some((key, feed.to_string()));
        for (mid, &(kind, ssrc)) in streams.iter().enumerate() {
            self.peers[peer].producers.push((feed.to_string(), kind));
            let payload_type = if kind == Kind::Video { 96 } else { 111 };
            self.media.send(Command::Publish {
                key,
                stream: SendStreamConfig {
                    kind,
                    ssrc,
                    payload_type,
                    mid: mid as u8,
                    bitrate: media.bitrate,
                    keyframe_interval: media.keyframe_interval,
                    temporal_layers: false,
                    resolution: SINGLE_RESOLUTION,
                },
            })?;
        }
        Ok(())
    }

    /// Answers Engine.IO pings on every connection (at most every 500 ms) and reads the capped
    /// subscribers' events every 50 ms (when their layers change is one of the figures).
    pub fn service_if_due(&mut self) {
        if self.last_capped_service.elapsed() >= Duration::from_millis(50) {
            self.last_capped_service = Instant::now();
            for (i, p) in self.peers.iter_mut().enumerate().filter(|(_, p)| p.cap_kbps.is_some()) {
                if let Err(e) = p.service() {
                    tracing::warn!(peer = i, "signaling: {e}");
                }
            }
        }
        if self.last_service.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last_service = Instant::now();
        if let Some(janus) = self.janus.as_mut() {
            janus.service();
        }
        for (i, p) in self.peers.iter_mut().enumerate() {
            if let Err(e) = p.service() {
                tracing::warn!(peer = i, "signaling: {e}");
            }
        }
    }

    /// Sleeps for `d` while keeping every signaling connection alive.
    pub fn idle(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.service_if_due();
            std::thread::sleep(Duration::from_millis(25).min(end.saturating_duration_since(Instant::now())));
        }
    }

    /// Waits until every consumer has received media (or `timeout`); false on timeout.
    pub fn wait_flowing(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let end = Instant::now() + timeout;
        loop {
            let s = self.media.snapshot()?;
            if s.transports_failed > 0 {
                let c = &s.counters;
                bail!(
                    "{} transports failed ICE, DTLS or their TCP connection (ICE timeouts {}, consent lost {}, DTLS \
                     errors {}, STUN errors {}, TCP connections closed {})",
                    s.transports_failed,
                    c.ice_failures,
                    c.consent_lost,
                    c.dtls_errors,
                    c.stun_errors,
                    c.tcp_closed
                );
            }
            if s.consumers_flowing == s.consumers && s.transports_connected == s.transports {
                return Ok(true);
            }
            if Instant::now() >= end {
                tracing::warn!(
                    flowing = s.consumers_flowing,
                    consumers = s.consumers,
                    connected = s.transports_connected,
                    transports = s.transports,
                    "not every consumer receives media"
                );
                return Ok(false);
            }
            self.idle(Duration::from_millis(100));
        }
    }

    pub fn receivers(&self) -> Vec<SocketAddr> {
        self.peers.iter().filter_map(|p| p.recv_addr).collect()
    }

    pub fn consumer_count(&self) -> usize {
        self.peers.iter().map(|p| p.consumers).sum()
    }

    pub fn video_consumers(&self) -> usize {
        self.peers.iter().map(|p| p.video_consumers).sum()
    }
}

/// The worker's first IPv4 host candidate for `protocol`: over TCP a passive one (RFC 6544), the
/// only kind a client can connect to.
fn ipv4_candidate(candidates: &[IceCandidate], protocol: Protocol) -> anyhow::Result<SocketAddr> {
    candidates
        .iter()
        .filter(|c| c.protocol == protocol)
        .filter(|c| protocol == Protocol::Udp || c.tcp_type.as_deref() == Some("passive"))
        .find_map(|c| format!("{}:{}", c.address, c.port).parse::<SocketAddr>().ok().filter(|a| a.is_ipv4()))
        .with_context(|| match protocol {
            Protocol::Udp => "no IPv4 UDP candidate".to_owned(),
            Protocol::Tcp => format!("no IPv4 passive TCP candidate (is ICE-TCP off on this Octo?) in {candidates:?}"),
        })
}

fn is_no_such_feed(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<SignalingError>(), Some(SignalingError::Refused { code, .. }) if code == "428")
}

/// Receive buffer of every client socket: a second of a subscriber's media and then some, so a
/// moment the load generator's thread is not scheduled (the machine is shared) is not counted as
/// Octo's loss. Loss inside Octo (its own socket buffers, its drops) is unaffected.
const RECEIVE_BUFFER: i32 = 1 << 20;

/// The RTP parameters Chrome's mediasoup-client sends for a VP8 webcam (one encoding, or three
/// simulcast encodings, lowest first, each L1T3 with its SSRC and RTX SSRC) or an Opus microphone,
/// trimmed to what the load generator writes (mid only; no transport-cc from the publishers).
/// `encodings`: (SSRC, bitrate) each.
fn rtp_parameters(kind: Kind, mid: u8, encodings: &[(u32, u64)], simulcast: bool, peer: usize) -> (Value, u8) {
    let mid_ext = json!([{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": MID_EXTENSION_ID, "encrypt": false, "parameters": {}}]);
    let rtcp = json!({"cname": format!("loadgen-{peer}"), "reducedSize": true});
    match kind {
        Kind::Video => {
            let scale = [4.0, 2.0, 1.0];
            let encodings: Vec<Value> = encodings
                .iter()
                .enumerate()
                .map(|(i, &(ssrc, bitrate))| {
                    if simulcast {
                        json!({"ssrc": ssrc, "rtx": {"ssrc": ssrc + 1}, "dtx": false, "scalabilityMode": "L1T3",
                               "maxBitrate": bitrate, "scaleResolutionDownBy": scale[i.min(2)]})
                    } else {
                        json!({"ssrc": ssrc, "rtx": {"ssrc": ssrc + 1}, "dtx": false})
                    }
                })
                .collect();
            (
                json!({
                    "mid": mid.to_string(),
                    "codecs": [
                        {"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "parameters": {},
                         "rtcpFeedback": [{"type": "ccm", "parameter": "fir"}, {"type": "nack", "parameter": ""},
                                          {"type": "nack", "parameter": "pli"}]},
                        {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": 96},
                         "rtcpFeedback": []}],
                    "headerExtensions": mid_ext,
                    "encodings": encodings,
                    "rtcp": rtcp,
                }),
                96,
            )
        }
        Kind::Audio => (
            json!({
                "mid": mid.to_string(),
                "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                            "parameters": {"minptime": 10, "useinbandfec": 1}, "rtcpFeedback": []}],
                "headerExtensions": mid_ext,
                "encodings": [{"ssrc": encodings[0].0, "dtx": false}],
                "rtcp": rtcp,
            }),
            111,
        ),
    }
}
