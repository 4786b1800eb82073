//! A producer: one incoming media source (a track) on a transport, with the tables that translate
//! its packets into the router's numbering at ingress.

use std::time::Instant;

use octo_ipc::{MediaKind, ProducerId, RouterId, RtpParameters, RtpType, TransportId};

use super::ortc::{self, RtpMapping};
use super::retransmission_buffer::{RETRANSMISSION_SLOTS, RetransmissionBuffer};
use super::rtp::keyframe::KeyframeCodec;
use super::rtp::nack_generator::NackGenerator;
use super::rtp::packet::RtpHeader;
use super::rtp::recv_stats::{BitrateWindow, RecvStats};

/// Translation tables applied in place to every incoming packet, so fan-out works on packets that
/// already speak the router's payload types and header extension ids.
#[derive(Debug, Clone)]
pub struct IngressMap {
    /// Producer payload type → router payload type; 0xFF = not negotiated (dropped).
    pub payload_types: [u8; 128],
    /// Producer header extension id → router id; 0 = not forwarded.
    pub extension_ids: [u8; 256],
}

impl IngressMap {
    fn new(params: &RtpParameters, consumable: &RtpParameters, mapping: &RtpMapping) -> Self {
        let mut payload_types = [0xFF; 128];
        for &(from, to) in &mapping.codecs {
            if let Some(slot) = payload_types.get_mut(usize::from(from)) {
                *slot = to;
            }
        }
        let mut extension_ids = [0u8; 256];
        for ext in &params.header_extensions {
            if let Some(router) = consumable.header_extensions.iter().find(|e| e.uri == ext.uri) {
                extension_ids[usize::from(ext.id)] = router.id;
            }
        }
        Self { payload_types, extension_ids }
    }
}

/// What the producer knows about one of its encodings: mediasoup's `RtpStreamRecv`.
pub struct ProducerStream {
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
    pub rid: Option<String>,
    /// The SSRC every consumer's packets of this encoding arrive with in the router.
    pub mapped_ssrc: u32,
    pub recv: RecvStats,
    /// Present when the codec negotiated `nack`.
    pub nack: Option<NackGenerator>,
    pub retransmissions: RetransmissionBuffer,
    pub nack_count: u64,
    pub nack_packet_count: u64,
    pub pli_count: u64,
    pub fir_count: u64,
    pub packets_discarded: u64,
    /// The last keyframe request sent upstream for this encoding, for throttling.
    pub last_keyframe_request: Option<Instant>,
    /// When a media packet of this encoding last arrived: a simulcast sender stops its upper
    /// encodings when its own uplink is short, and consumers then step down.
    pub last_packet: Option<Instant>,
    /// Bytes by temporal layer (VP8 TID; everything is layer 0 for other codecs), what the
    /// downlink allocator charges a consumer for each layer.
    pub temporal_rates: [BitrateWindow; 3],
}

impl ProducerStream {
    /// Whether the sender is sending this encoding now.
    pub fn is_active(&self, now: Instant) -> bool {
        self.last_packet.is_some_and(|t| now.saturating_duration_since(t) < STREAM_INACTIVE_AFTER)
    }
}

/// An encoding that sent nothing for this long is taken as stopped.
pub const STREAM_INACTIVE_AFTER: std::time::Duration = std::time::Duration::from_millis(1500);

impl std::fmt::Debug for ProducerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerStream")
            .field("ssrc", &self.ssrc)
            .field("rtx_ssrc", &self.rtx_ssrc)
            .field("rid", &self.rid)
            .field("mapped_ssrc", &self.mapped_ssrc)
            .field("packets", &self.recv.packets_received())
            .finish()
    }
}

pub struct Producer {
    pub id: ProducerId,
    /// Its router, so the forwarding path finds the fan-out list with one lookup.
    pub router_id: RouterId,
    pub transport_id: TransportId,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    pub consumable: RtpParameters,
    pub rtp_type: RtpType,
    pub paused: bool,
    pub ingress: IngressMap,
    pub streams: Vec<ProducerStream>,
    /// Header extension ids in the producer's own numbering, read before ingress rewriting.
    pub transport_cc_ext_id: Option<u8>,
    /// rid / repaired-rid ids (producer numbering): how SSRCs of rid-only encodings are learnt.
    pub rid_ext_id: Option<u8>,
    pub repaired_rid_ext_id: Option<u8>,
    /// RTX payload type (producer numbering) → the media payload type it repairs.
    pub rtx_apt: [u8; 128],
    pub clock_rate: u32,
    pub keyframe_codec: Option<KeyframeCodec>,
    /// PLI when negotiated, else FIR.
    pub use_pli: bool,
    /// REMB is the bandwidth feedback when transport-cc is not negotiated but goog-remb is.
    pub wants_remb: bool,
    /// ssrc-audio-level's id after ingress rewriting (router numbering), for the active speaker.
    pub audio_level_ext_id: Option<u8>,
    pub fir_seq: u8,
    /// A copy of another worker's producer, fed by a pipe transport (see `pipe.rs`).
    pub piped: bool,
}

impl Producer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ProducerId,
        router_id: RouterId,
        transport_id: TransportId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        consumable: RtpParameters,
        mapping: &RtpMapping,
        paused: bool,
    ) -> Self {
        let rtp_type = if rtp_parameters.encodings.len() > 1 {
            RtpType::Simulcast
        } else if rtp_parameters.encodings.first().and_then(|e| e.scalability_mode.as_deref()).is_some_and(|m| {
            // "L1T3" is temporal layering of one stream, still "simple"; spatial layers are SVC.
            !m.starts_with("L1")
        }) {
            RtpType::Svc
        } else {
            RtpType::Simple
        };
        let media_codec = rtp_parameters.codecs.iter().find(|c| !ortc::is_rtx(&c.mime_type));
        let has_fb = |kind: &str, param: Option<&str>| {
            media_codec.is_some_and(|c| {
                c.rtcp_feedback
                    .iter()
                    .any(|f| f.kind == kind && f.parameter.as_deref().unwrap_or("") == param.unwrap_or(""))
            })
        };
        let nack_enabled = kind == MediaKind::Video && has_fb("nack", None);
        let streams = rtp_parameters
            .encodings
            .iter()
            .zip(&mapping.mapped_ssrcs)
            .map(|(enc, &mapped_ssrc)| ProducerStream {
                ssrc: enc.ssrc,
                rtx_ssrc: enc.rtx.map(|r| r.ssrc),
                rid: enc.rid.clone(),
                mapped_ssrc,
                recv: RecvStats::new(),
                nack: nack_enabled.then(NackGenerator::default),
                retransmissions: if kind == MediaKind::Video {
                    RetransmissionBuffer::with_slots(RETRANSMISSION_SLOTS)
                } else {
                    RetransmissionBuffer::default()
                },
                nack_count: 0,
                nack_packet_count: 0,
                pli_count: 0,
                fir_count: 0,
                packets_discarded: 0,
                last_keyframe_request: None,
                last_packet: None,
                temporal_rates: Default::default(),
            })
            .collect();
        let ingress = IngressMap::new(&rtp_parameters, &consumable, mapping);
        let ext_id = |uri: &str| rtp_parameters.header_extensions.iter().find(|e| e.uri == uri).map(|e| e.id);
        let mut rtx_apt = [0xFF; 128];
        for rtx in rtp_parameters.codecs.iter().filter(|c| ortc::is_rtx(&c.mime_type)) {
            if let Some(apt) = rtx.parameters.get("apt").and_then(|v| v.as_i64()).and_then(|a| u8::try_from(a).ok())
                && let Some(slot) = rtx_apt.get_mut(usize::from(rtx.payload_type))
            {
                *slot = apt;
            }
        }
        let transport_cc_ext_id = ext_id(ortc::URI_TRANSPORT_CC);
        let rid_ext_id = ext_id(ortc::URI_RID);
        let repaired_rid_ext_id = ext_id(ortc::URI_REPAIRED_RID);
        let wants_remb = transport_cc_ext_id.is_none() && has_fb("goog-remb", None);
        let audio_level_ext_id = ext_id(ortc::URI_AUDIO_LEVEL)
            .and(consumable.header_extensions.iter().find(|e| e.uri == ortc::URI_AUDIO_LEVEL))
            .map(|e| e.id);
        let clock_rate = media_codec.map_or(90_000, |c| c.clock_rate);
        let keyframe_codec = media_codec.and_then(|c| KeyframeCodec::from_mime_type(&c.mime_type));
        let use_pli = has_fb("nack", Some("pli")) || !has_fb("ccm", Some("fir"));
        Self {
            id,
            router_id,
            transport_id,
            kind,
            rtp_parameters,
            consumable,
            rtp_type,
            paused,
            transport_cc_ext_id,
            rid_ext_id,
            repaired_rid_ext_id,
            rtx_apt,
            clock_rate,
            keyframe_codec,
            use_pli,
            wants_remb,
            audio_level_ext_id,
            fir_seq: 0,
            piped: false,
            ingress,
            streams,
        }
    }

    /// For an SSRC not signalled in advance: the encoding whose rid (or repaired rid, for RTX)
    /// the packet's header carries. Learns it, and returns (encoding, is_rtx).
    pub fn learn_ssrc(&mut self, ssrc: u32, header: &RtpHeader<'_>) -> Option<(usize, bool)> {
        let rid = self.rid_ext_id.and_then(|id| header.rid(id));
        let repaired = self.repaired_rid_ext_id.and_then(|id| header.repaired_rid(id));
        for (index, stream) in self.streams.iter_mut().enumerate() {
            let Some(name) = stream.rid.as_deref() else { continue };
            if stream.ssrc.is_none() && rid == Some(name.as_bytes()) {
                stream.ssrc = Some(ssrc);
                return Some((index, false));
            }
            if stream.rtx_ssrc.is_none() && repaired == Some(name.as_bytes()) {
                stream.rtx_ssrc = Some(ssrc);
                return Some((index, true));
            }
        }
        None
    }

    /// The encoding whose stream is sent (or piped) with `ssrc` in the router.
    pub fn encoding_of_mapped_ssrc(&self, ssrc: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.mapped_ssrc == ssrc)
    }

    pub fn primary_mime_type(&self) -> &str {
        self.consumable.codecs.iter().find(|c| !ortc::is_rtx(&c.mime_type)).map_or("", |c| c.mime_type.as_str())
    }
}
