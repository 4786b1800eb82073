//! Statistics of transports and RTP streams, as the worker reports them.

use serde::{Deserialize, Serialize};

use crate::ids::TransportId;
use crate::rtp_parameters::MediaKind;
use crate::transport_parameters::{DtlsState, IceState, TransportTuple};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportStats {
    pub transport_id: TransportId,
    pub ice_state: IceState,
    pub ice_selected_tuple: Option<TransportTuple>,
    pub dtls_state: DtlsState,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Bits per second over the last few seconds.
    pub recv_bitrate: u64,
    pub send_bitrate: u64,
    /// Datagrams that failed to parse, authenticate or decrypt.
    pub packets_dropped: u64,
    /// The downlink estimate (bit/s), once the receiver reports transport-cc (mediasoup's name).
    #[serde(default)]
    pub available_outgoing_bitrate: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RtpStreamDirection {
    #[serde(rename = "inbound-rtp")]
    Inbound,
    #[serde(rename = "outbound-rtp")]
    Outbound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpStreamStats {
    #[serde(rename = "type")]
    pub direction: RtpStreamDirection,
    pub kind: MediaKind,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub rid: Option<String>,
    pub mime_type: String,
    pub packet_count: u64,
    pub byte_count: u64,
    pub bitrate: u64,
    pub packets_lost: i64,
    /// 0–255, as in an RTCP report block.
    pub fraction_lost: u8,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    pub round_trip_time_ms: Option<f64>,
    pub nack_count: u64,
    pub nack_packet_count: u64,
    pub pli_count: u64,
    pub fir_count: u64,
    pub packets_retransmitted: u64,
    /// A consumer's NACKed packets it did not resend: older than a jitter buffer keeps, resent
    /// within the round trip already, or over the transport's downlink estimate.
    #[serde(default)]
    pub retransmissions_skipped: u64,
    pub packets_discarded: u64,
    /// 0–10, mediasoup's scale: 10 is no loss, each 5 % of loss costs a point.
    #[serde(default)]
    pub score: u8,
    /// What a simulcast consumer forwards now (`None`: nothing, or not simulcast).
    #[serde(default)]
    pub spatial_layer: Option<u8>,
    #[serde(default)]
    pub temporal_layer: Option<u8>,
}

/// mediasoup's 0–10 stream score from a loss fraction (0–255, as in a report block).
pub fn score_of_loss(fraction_lost: u8) -> u8 {
    // A point per 5 % lost, rounded: 20 points would be all of it.
    let points = (u32::from(fraction_lost) * 20 + 128) / 256;
    10u32.saturating_sub(points) as u8
}

#[cfg(test)]
mod tests {
    use super::score_of_loss;

    #[test]
    fn scores_fall_a_point_per_five_percent_lost() {
        let cases = [(0u8, 10u8), (1, 10), (13, 9), (64, 5), (128, 0), (255, 0)];
        for (fraction_lost, score) in cases {
            assert_eq!(score_of_loss(fraction_lost), score, "fraction {fraction_lost}");
        }
    }
}
