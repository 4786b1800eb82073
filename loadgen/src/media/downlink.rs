//! What a subscriber's transport sees of its downlink: transport-cc feedback for every packet that
//! carries a transport-wide sequence number (the worker's estimator lives on it), and counters of
//! what arrived — media, retransmissions, the estimator's padding probes, and the layer the media
//! came from (a keyframe's resolution, each packet's VP8 temporal id).

use std::time::Instant;

use octo_worker::core::rtp::twcc::{TWCC_MIN_PACKET_SIZE, TwccRecorder};

use super::vp8::ReadHeader;

/// Counters of one subscriber transport, copied into every snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownlinkCounters {
    /// Bytes on the wire of the consumers' primary streams (video and audio).
    pub media_bytes: u64,
    /// RTX that carried a retransmission.
    pub rtx_bytes: u64,
    /// RTX that carried only padding: the estimator's probes.
    pub padding_bytes: u64,
    pub twcc_recorded: u64,
    pub feedback_sent: u64,
    /// Decrypted video packets by VP8 temporal id.
    pub temporal_packets: [u64; 3],
    /// The resolution of the last keyframe decrypted, and how many were.
    pub keyframe_resolution: Option<(u16, u16)>,
    pub keyframes: u64,
}

pub struct Downlink {
    /// The transport-wide sequence number's header extension id and the recorder, once a consumer
    /// negotiated transport-cc.
    twcc: Option<(u8, TwccRecorder)>,
    pub counters: DownlinkCounters,
}

/// Feedback packets are written into this much of a buffer (below any path MTU with SRTCP's
/// trailer).
const FEEDBACK_BUFFER: usize = 1200;

impl Downlink {
    pub fn new() -> Self {
        Self { twcc: None, counters: DownlinkCounters::default() }
    }

    /// A consumer negotiated transport-cc with extension id `id` (the router's id: the same for every
    /// consumer of a transport).
    pub fn enable_twcc(&mut self, id: u8, sender_ssrc: u32) {
        if self.twcc.as_ref().is_none_or(|(known, _)| *known != id) {
            self.twcc = Some((id, TwccRecorder::new(sender_ssrc)));
        }
    }

    pub fn twcc_extension_id(&self) -> Option<u8> {
        self.twcc.as_ref().map(|(id, _)| *id)
    }

    /// A packet with transport-wide sequence number `seq` arrived at `arrival`.
    pub fn record(&mut self, seq: u16, arrival: Instant) {
        if let Some((_, recorder)) = self.twcc.as_mut() {
            recorder.record(seq, arrival);
            self.counters.twcc_recorded += 1;
        }
    }

    /// Writes every feedback packet due at `now` through `send` (plain RTCP, to be encrypted).
    pub fn poll_feedback(&mut self, now: Instant, media_ssrc: u32, mut send: impl FnMut(&mut [u8], usize)) {
        let Some((_, recorder)) = self.twcc.as_mut() else { return };
        if recorder.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        let mut buf = [0u8; super::transport::BUFFER];
        const { assert!(FEEDBACK_BUFFER >= TWCC_MIN_PACKET_SIZE) };
        while let Some(len) = recorder.poll_feedback(now, media_ssrc, &mut buf[..FEEDBACK_BUFFER]) {
            self.counters.feedback_sent += 1;
            send(&mut buf, len);
        }
    }

    /// A decrypted video packet's payload header.
    pub fn on_video_header(&mut self, header: &ReadHeader) {
        if let Some(n) = self.counters.temporal_packets.get_mut(usize::from(header.temporal_id)) {
            *n += 1;
        }
        if let Some(resolution) = header.keyframe_resolution {
            self.counters.keyframe_resolution = Some(resolution);
            self.counters.keyframes += 1;
        }
    }
}

impl Default for Downlink {
    fn default() -> Self {
        Self::new()
    }
}
