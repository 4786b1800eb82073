//! A str0m peer that reaches a worker through Octo's own signaling instead of the worker's ipc: it
//! joins a room over Socket.IO (Octo's protocol, [`crate::socketio::PollingClient`]) and makes the
//! calls mediasoup-client makes — `joinRoom`, `createWebRtcTransport`, `connectWebRtcTransport`,
//! `produce`, `consume`, `resumeConsumer` — then speaks ICE, DTLS and SRTP with the worker the
//! controller chose. Everything here is what a real client does; nothing talks to a worker directly.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use octo_ipc::{
    DtlsParameters, DtlsState, IceCandidate, IceParameters, IceState, MediaKind, RtpCapabilities, RtpParameters,
    WebRtcTransportData,
};
use serde_json::{Value, json};

use super::media::{PeerMedia, check_sequence_follows_counter, parse_opus_payload, parse_vp8_payload};
use super::peer::{DtlsSide, Str0mPeer};
use crate::socketio::PollingClient;

/// The `data` of a successful ack, or the error the server answered with.
pub fn ack_data(event: &str, ack: Value) -> anyhow::Result<Value> {
    match ack.get("data") {
        Some(data) => Ok(data.clone()),
        None => bail!("{event} failed: {ack}"),
    }
}

/// A consumer as `consume` describes it.
#[derive(Debug, Clone)]
pub struct SignaledConsumer {
    pub id: String,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
}

pub struct SignaledPeer {
    pub socket: PollingClient,
    pub peer: Str0mPeer,
    pub transport_id: String,
    /// The router's capabilities from `joinRoom`.
    pub rtp_capabilities: RtpCapabilities,
    /// The whole `joinRoom` answer (peers, producers, data producers).
    pub joined: Value,
}

impl SignaledPeer {
    /// Joins `room` on the Octo at `addr`, creates one transport (`"send"` or `"recv"`), points a str0m
    /// peer laid out by `media` at it and connects it (DTLS parameters sent; ICE and DTLS then run
    /// when the peer is driven).
    pub fn join(
        addr: SocketAddr,
        room: &str,
        name: &str,
        direction: &str,
        media: impl FnOnce(&RtpCapabilities) -> anyhow::Result<PeerMedia>,
        side: DtlsSide,
    ) -> anyhow::Result<Self> {
        let mut socket = PollingClient::connect(addr)?;
        let joined = ack_data("joinRoom", socket.request("joinRoom", json!({ "roomId": room, "displayName": name }))?)?;
        let rtp_capabilities: RtpCapabilities =
            serde_json::from_value(joined["rtpCapabilities"].clone()).context("rtpCapabilities")?;
        let t = ack_data(
            "createWebRtcTransport",
            socket.request("createWebRtcTransport", json!({ "direction": direction }))?,
        )?;
        let transport_id = t["id"].as_str().context("transport id")?.to_owned();
        let data = WebRtcTransportData {
            id: transport_id.parse().map_err(|_| anyhow::anyhow!("transport id {transport_id:?}"))?,
            ice_parameters: serde_json::from_value::<IceParameters>(t["iceParameters"].clone())
                .context("iceParameters")?,
            ice_candidates: serde_json::from_value::<Vec<IceCandidate>>(t["iceCandidates"].clone())
                .context("iceCandidates")?,
            ice_state: IceState::New,
            dtls_parameters: serde_json::from_value::<DtlsParameters>(t["dtlsParameters"].clone())
                .context("dtlsParameters")?,
            dtls_state: DtlsState::New,
            sctp_parameters: None,
        };
        let mut peer = Str0mPeer::new(name, media(&rtp_capabilities)?, &data, side)?;
        let dtls = serde_json::to_value(peer.dtls_parameters())?;
        ack_data(
            "connectWebRtcTransport",
            socket.request("connectWebRtcTransport", json!({ "transportId": transport_id, "dtlsParameters": dtls }))?,
        )?;
        Ok(SignaledPeer { socket, peer, transport_id, rtp_capabilities, joined })
    }

    /// `produce` on this peer's transport; returns the producer id.
    pub fn produce(&mut self, kind: MediaKind, rtp_parameters: &RtpParameters) -> anyhow::Result<String> {
        let payload = json!({
            "transportId": self.transport_id,
            "kind": kind,
            "rtpParameters": serde_json::to_value(rtp_parameters)?,
        });
        let data = ack_data("produce", self.socket.request("produce", payload)?)?;
        Ok(data["id"].as_str().context("producer id")?.to_owned())
    }

    /// A publisher named "publisher" in `room`: joined with a send transport (Chrome's sender
    /// shapes, the str0m end the DTLS client), producing VP8 + RTX and Opus on `ssrcs` (video,
    /// rtx, audio); returns it and the (video, audio) producer ids.
    pub fn publisher(
        addr: SocketAddr,
        room: &str,
        ssrcs: (u32, u32, u32),
        cname: &str,
    ) -> anyhow::Result<(SignaledPeer, [String; 2])> {
        let mut publisher = SignaledPeer::join(
            addr,
            room,
            "publisher",
            "send",
            |_| Ok(PeerMedia::chrome_like_sender()),
            DtlsSide::Str0mClient,
        )?;
        let (video, audio) = publisher.publish_vp8_and_opus(ssrcs, cname)?;
        Ok((publisher, [video, audio]))
    }

    /// Declares a VP8 (with RTX) and an Opus stream in str0m (mids "0" and "1") and produces both;
    /// returns the (video, audio) producer ids.
    pub fn publish_vp8_and_opus(
        &mut self,
        (video, rtx, audio): (u32, u32, u32),
        cname: &str,
    ) -> anyhow::Result<(String, String)> {
        self.peer.declare_send(MediaKind::Video, "0", video, Some(rtx));
        self.peer.declare_send(MediaKind::Audio, "1", audio, None);
        let vp8 = self.peer.media.vp8_parameters("0", video, rtx, cname);
        let opus = self.peer.media.opus_parameters("1", audio, cname);
        Ok((self.produce(MediaKind::Video, &vp8)?, self.produce(MediaKind::Audio, &opus)?))
    }

    /// `consume` of `producer_id` on this peer's transport with the router's own capabilities (what
    /// a device loaded from them announces); the consumer starts paused.
    pub fn consume(&mut self, producer_id: &str) -> anyhow::Result<SignaledConsumer> {
        let payload = json!({
            "transportId": self.transport_id,
            "producerId": producer_id,
            "rtpCapabilities": serde_json::to_value(&self.rtp_capabilities)?,
        });
        let data = ack_data("consume", self.socket.request("consume", payload)?)?;
        Ok(SignaledConsumer {
            id: data["id"].as_str().context("consumer id")?.to_owned(),
            kind: serde_json::from_value(data["kind"].clone()).context("kind")?,
            rtp_parameters: serde_json::from_value(data["rtpParameters"].clone()).context("rtpParameters")?,
        })
    }

    /// Declares the consumer's stream in str0m (after checking it fits this receiver) and resumes it.
    pub fn receive(&mut self, consumer: &SignaledConsumer) -> anyhow::Result<()> {
        self.peer.media.check_consumer(consumer.kind, &consumer.rtp_parameters)?;
        let enc = consumer.rtp_parameters.encodings.first().context("no encoding")?;
        let mid = consumer.rtp_parameters.mid.as_deref().context("no mid")?;
        self.peer.declare_receive(consumer.kind, mid, enc.ssrc.context("no ssrc")?, enc.rtx.map(|r| r.ssrc));
        ack_data("resumeConsumer", self.socket.request("resumeConsumer", json!({ "consumerId": consumer.id }))?)?;
        Ok(())
    }
}

/// A subscriber of a VP8 + Opus publisher: joined with a recv transport, consuming both.
pub struct Subscriber {
    pub signaled: SignaledPeer,
    /// The SSRCs its consumers receive on.
    pub video: u32,
    pub audio: u32,
}

impl Subscriber {
    /// Joins `room` at `addr` as `name` and consumes the publisher's (video, audio) `producers`.
    pub fn join(addr: SocketAddr, room: &str, name: &str, producers: &[String; 2]) -> anyhow::Result<Subscriber> {
        let mut signaled = SignaledPeer::join(addr, room, name, "recv", PeerMedia::from_router, DtlsSide::Str0mServer)?;
        let consumers: Vec<SignaledConsumer> =
            producers.iter().map(|p| signaled.consume(p)).collect::<anyhow::Result<_>>()?;
        for c in &consumers {
            signaled.receive(c)?;
        }
        let ssrc = |c: &SignaledConsumer| c.rtp_parameters.encodings[0].ssrc.unwrap_or(0);
        Ok(Subscriber { video: ssrc(&consumers[0]), audio: ssrc(&consumers[1]), signaled })
    }

    /// What it received since `since`: checks every payload is the publisher's (see
    /// [`super::source::Source`]) and sequence numbers follow the publisher's counters; returns
    /// (video frames, audio packets).
    pub fn received_since(&self, since: std::time::Instant) -> anyhow::Result<(usize, usize)> {
        let peer = &self.signaled.peer;
        let after = |ssrc: u32| {
            peer.events.iter().filter(move |(at, _)| *at >= since).filter_map(move |(_, e)| match e {
                str0m::Event::RtpPacket(p) if *p.header.ssrc == ssrc => Some(p),
                _ => None,
            })
        };
        let mut video = std::collections::BTreeMap::new();
        for p in after(self.video) {
            let (counter, _) = parse_vp8_payload(&p.payload).with_context(|| format!("{}: VP8 altered", peer.name))?;
            video.insert(counter, p.header.sequence_number);
        }
        let mut audio = std::collections::BTreeMap::new();
        for p in after(self.audio) {
            let counter = parse_opus_payload(&p.payload).with_context(|| format!("{}: Opus altered", peer.name))?;
            audio.insert(counter, p.header.sequence_number);
        }
        check_sequence_follows_counter(&format!("{} video", peer.name), &video)?;
        check_sequence_follows_counter(&format!("{} audio", peer.name), &audio)?;
        Ok((video.len(), audio.len()))
    }
}
