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
    pub packets_discarded: u64,
}
