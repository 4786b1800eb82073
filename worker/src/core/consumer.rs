//! A consumer: one outgoing copy of a producer's media on another transport.

use octo_ipc::{ConsumerId, MediaKind, ProducerId, RtpParameters, RtpType, TransportId};

use super::ortc;

pub struct Consumer {
    pub id: ConsumerId,
    pub transport_id: TransportId,
    pub producer_id: ProducerId,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    pub rtp_type: RtpType,
    /// Paused by its owner.
    pub paused: bool,
    /// Its producer is paused.
    pub producer_paused: bool,
    pub ssrc: u32,
    pub rtx: Option<(u32, u8)>,
    pub payload_type: u8,
    pub packets: u64,
    pub bytes: u64,
}

impl Consumer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ConsumerId,
        transport_id: TransportId,
        producer_id: ProducerId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        rtp_type: RtpType,
        paused: bool,
        producer_paused: bool,
    ) -> Self {
        let encoding = rtp_parameters.encodings.first().cloned().unwrap_or_default();
        let media = rtp_parameters.codecs.iter().find(|c| !ortc::is_rtx(&c.mime_type));
        let payload_type = media.map_or(0, |c| c.payload_type);
        let rtx_pt = rtp_parameters.codecs.iter().find(|c| ortc::is_rtx(&c.mime_type)).map(|c| c.payload_type);
        let rtx = encoding.rtx.zip(rtx_pt).map(|(r, pt)| (r.ssrc, pt));
        Self {
            id,
            transport_id,
            producer_id,
            kind,
            ssrc: encoding.ssrc.unwrap_or(0),
            rtx,
            payload_type,
            rtp_parameters,
            rtp_type,
            paused,
            producer_paused,
            packets: 0,
            bytes: 0,
        }
    }

    /// Whether media flows to the remote end now.
    pub fn is_active(&self) -> bool {
        !self.paused && !self.producer_paused
    }
}
