//! Janus as the server under load (`--target janus`): its VideoRoom plugin reached through its own
//! API, the same simulated browsers and media loop as for Octo, so `octo-loadgen compare` sets
//! both servers the same load and reads the same figures.

pub mod api;
pub mod sdp;
pub mod server;

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use octo_ipc::DtlsFingerprint;
use serde_json::json;

use crate::media::send_stream::Kind;
use api::{JanusClient, VIDEOROOM};
use sdp::{Direction, LocalDescription, LocalMedia, RemoteDescription};

/// The Janus the session talks to, and the rooms it made there.
pub struct JanusTarget {
    pub ws_addr: SocketAddr,
    admin: Option<(JanusClient, u64)>,
    rooms: HashMap<String, u64>,
}

impl JanusTarget {
    pub fn new(ws_addr: SocketAddr) -> Self {
        Self { ws_addr, admin: None, rooms: HashMap::new() }
    }

    /// The VideoRoom id of the scenario's room `name`, created on first use: no publisher limit
    /// worth hitting, no bitrate cap, VP8 and Opus, no per-peer notices.
    pub fn room(&mut self, name: &str) -> anyhow::Result<u64> {
        if let Some(id) = self.rooms.get(name) {
            return Ok(*id);
        }
        if self.admin.is_none() {
            let mut client = JanusClient::connect(self.ws_addr).context("janus admin session")?;
            let handle = client.attach(VIDEOROOM)?;
            self.admin = Some((client, handle));
        }
        let (client, handle) = self.admin.as_mut().expect("just made");
        let id = 1000 + self.rooms.len() as u64;
        let body = json!({
            "request": "create", "room": id, "description": name, "publishers": 1000, "bitrate": 0,
            "videocodec": "vp8", "audiocodec": "opus", "notify_joining": false, "audiolevel_event": false,
        });
        let created = client.message(*handle, body, None).with_context(|| format!("creating room {name}"))?;
        if created.data["videoroom"] != "created" {
            bail!("janus did not create room {name}: {}", created.data);
        }
        self.rooms.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Keeps the admin session alive.
    pub fn service(&mut self) {
        if let Some((client, _)) = self.admin.as_mut()
            && let Err(e) = client.service()
        {
            tracing::warn!("janus admin session: {e}");
        }
    }
}

/// A simulated browser's Janus session: its WebSocket, and a handle per PeerConnection.
pub struct JanusPeer {
    pub client: JanusClient,
    pub name: String,
    /// The subscriber handle, attached on the first try to subscribe (kept across retries).
    subscriber: Option<u64>,
}

/// A transport as Janus described it, and the streams it sends on it.
pub struct Negotiated {
    pub remote: RemoteDescription,
    pub candidate: SocketAddr,
}

/// What a subscriber receives on its transport: kind, SSRC and RTX SSRC of each stream.
pub type Streams = Vec<(Kind, u32, Option<u32>)>;

impl JanusPeer {
    pub fn connect(ws_addr: SocketAddr, name: String) -> anyhow::Result<Self> {
        Ok(Self { client: JanusClient::connect(ws_addr)?, name, subscriber: None })
    }

    /// Joins `room` as a publisher and publishes the offered streams (`(kind, ssrc)`, video first):
    /// returns the feed id and Janus's answer.
    pub fn publish(
        &mut self,
        room: u64,
        streams: &[(Kind, u32)],
        ufrag: &str,
        fingerprint: &DtlsFingerprint,
        host: SocketAddr,
    ) -> anyhow::Result<(u64, Negotiated)> {
        let handle = self.client.attach(VIDEOROOM)?;
        let media = streams
            .iter()
            .enumerate()
            .map(|(mid, &(kind, ssrc))| LocalMedia {
                kind,
                mid: mid.to_string(),
                payload_type: payload_type(kind),
                direction: Direction::SendOnly,
                ssrc: Some(ssrc),
                rejected: false,
            })
            .collect();
        let offer = sdp::write(&self.local(ufrag, fingerprint, host, media));
        let body = json!({"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": self.name,
                          "audio": true, "video": true});
        let joined = self.client.message(handle, body, Some(("offer", &offer)))?;
        self.client.trickle_completed(handle)?;
        let feed = joined.data["id"].as_u64().with_context(|| format!("no feed id in {}", joined.data))?;
        let answer = joined.jsep.context("janus answered the publisher without SDP")?;
        Ok((feed, negotiated(sdp::parse(&answer)?)?))
    }

    /// Subscribes to every stream of `feeds` in `room` on one PeerConnection: returns the handle,
    /// Janus's offer and the streams it will send; call [`JanusPeer::start`] to answer once the
    /// media loop knows the transport.
    pub fn subscribe(&mut self, room: u64, feeds: &[u64]) -> anyhow::Result<(u64, Negotiated, Streams)> {
        let handle = match self.subscriber {
            Some(h) => h,
            None => *self.subscriber.insert(self.client.attach(VIDEOROOM)?),
        };
        let streams: Vec<_> = feeds.iter().map(|f| json!({"feed": f})).collect();
        let body = json!({"request": "join", "room": room, "ptype": "subscriber", "streams": streams});
        let attached = self.client.message(handle, body, None)?;
        let offer = attached.jsep.context("janus offered the subscriber no SDP")?;
        let remote = sdp::parse(&offer)?;
        let received = remote
            .media
            .iter()
            .filter(|m| m.port != 0 && m.direction != Direction::Inactive)
            .filter_map(|m| Some((m.kind?, m.ssrc?, None)))
            .collect();
        Ok((handle, negotiated(remote)?, received))
    }

    /// Answers Janus's subscriber offer (every live section received, RTX declined) and starts it.
    pub fn start(
        &mut self,
        handle: u64,
        offer: &RemoteDescription,
        ufrag: &str,
        fingerprint: &DtlsFingerprint,
        host: SocketAddr,
    ) -> anyhow::Result<()> {
        let media = offer
            .media
            .iter()
            .map(|m| {
                let kind = m.kind.unwrap_or(Kind::Audio);
                let codec = if kind == Kind::Video { "VP8" } else { "opus" };
                let payload_type = m.payload_type(codec);
                LocalMedia {
                    kind,
                    mid: m.mid.clone(),
                    payload_type: payload_type.unwrap_or(0),
                    direction: m.direction.answered(),
                    ssrc: None,
                    rejected: m.kind.is_none() || m.port == 0 || payload_type.is_none(),
                }
            })
            .collect();
        let answer = sdp::write(&self.local(ufrag, fingerprint, host, media));
        self.client.message(handle, json!({"request": "start"}), Some(("answer", &answer)))?;
        self.client.trickle_completed(handle)?;
        Ok(())
    }

    fn local(
        &self,
        ufrag: &str,
        fingerprint: &DtlsFingerprint,
        host: SocketAddr,
        media: Vec<LocalMedia>,
    ) -> LocalDescription {
        LocalDescription {
            ufrag: ufrag.to_owned(),
            password: crate::media::LOCAL_ICE_PASSWORD.to_owned(),
            fingerprint: fingerprint.clone(),
            candidate: Some(host),
            cname: self.name.clone(),
            media,
        }
    }
}

fn payload_type(kind: Kind) -> u8 {
    if kind == Kind::Video { 96 } else { 111 }
}

fn negotiated(remote: RemoteDescription) -> anyhow::Result<Negotiated> {
    let candidate = remote
        .candidates
        .iter()
        .copied()
        .find(SocketAddr::is_ipv4)
        .context("janus offered no IPv4 UDP candidate (is `lo` in its ice_enforce_list?)")?;
    Ok(Negotiated { remote, candidate })
}
