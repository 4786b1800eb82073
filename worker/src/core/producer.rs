//! A producer: one incoming media source (a track) on a transport, with the tables that translate
//! its packets into the router's numbering at ingress.

use std::time::Instant;

use octo_ipc::{MediaKind, ProducerId, RtpParameters, RtpType, TransportId};

use super::ortc::{self, RtpMapping};

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

/// What the producer knows about one of its encodings.
#[derive(Debug, Clone)]
pub struct ProducerStream {
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
    pub rid: Option<String>,
    /// The SSRC every consumer's packets of this encoding arrive with in the router.
    pub mapped_ssrc: u32,
    pub packets: u64,
    pub bytes: u64,
}

pub struct Producer {
    pub id: ProducerId,
    pub transport_id: TransportId,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    pub consumable: RtpParameters,
    pub rtp_type: RtpType,
    pub paused: bool,
    pub ingress: IngressMap,
    pub streams: Vec<ProducerStream>,
    /// The last keyframe request sent upstream, for throttling.
    pub last_keyframe_request: Option<Instant>,
}

impl Producer {
    pub fn new(
        id: ProducerId,
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
        let streams = rtp_parameters
            .encodings
            .iter()
            .zip(&mapping.mapped_ssrcs)
            .map(|(enc, &mapped_ssrc)| ProducerStream {
                ssrc: enc.ssrc,
                rtx_ssrc: enc.rtx.map(|r| r.ssrc),
                rid: enc.rid.clone(),
                mapped_ssrc,
                packets: 0,
                bytes: 0,
            })
            .collect();
        let ingress = IngressMap::new(&rtp_parameters, &consumable, mapping);
        Self {
            id,
            transport_id,
            kind,
            rtp_parameters,
            consumable,
            rtp_type,
            paused,
            ingress,
            streams,
            last_keyframe_request: None,
        }
    }

    /// The mime type of the router codec with `payload_type`.
    pub fn mime_type_of(&self, payload_type: u8) -> Option<&str> {
        self.consumable.codecs.iter().find(|c| c.payload_type == payload_type).map(|c| c.mime_type.as_str())
    }

    pub fn primary_mime_type(&self) -> &str {
        self.consumable.codecs.iter().find(|c| !ortc::is_rtx(&c.mime_type)).map_or("", |c| c.mime_type.as_str())
    }
}
