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

use super::media::PeerMedia;
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
        Ok(SignaledPeer { socket, peer, transport_id, rtp_capabilities })
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
