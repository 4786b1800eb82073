//! A consumer: one outgoing copy of a producer's media on another transport (mediasoup's
//! `SimpleConsumer` with its `RtpStreamSend`).

use std::time::{Duration, Instant};

use octo_ipc::{ConsumerId, MediaKind, ProducerId, RtpParameters, RtpType, TransportId};

use super::forward::Outgoing;
use super::layers::{LayerSelector, UpgradeHold};
use super::ortc;
use super::rtp::packet::ExtensionIdMap;
use super::rtp::recv_stats::BitrateWindow;
use super::rtp::seq_manager::{SeqManager, TimestampOffset};
use super::rtp::vp8::Vp8Rewriter;

/// Outgoing sequence numbers remembered to map a NACK back to the producer's packet.
const SENT_HISTORY: usize = 1024;

#[derive(Debug, Clone, Copy, Default)]
pub struct SentPacket {
    pub out_seq: u16,
    pub in_seq: u16,
    pub out_ts: u32,
    /// The producer's encoding it came from (simulcast consumers switch between them).
    pub encoding: u8,
    /// The VP8 picture id and TL0PICIDX it was sent with, when they were rewritten.
    pub vp8: Option<(u16, u8)>,
    /// The transport-wide sequence number it was sent with (a retransmission without RTX must be
    /// the same bytes).
    pub twcc: Option<u16>,
    pub valid: bool,
}

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
    pub clock_rate: u32,
    pub cname: Vec<u8>,
    /// Router header extension ids this consumer negotiated (others are stripped).
    pub extension_ids: ExtensionIdMap,
    pub mid_ext_id: Option<u8>,
    /// The transport-wide sequence number's id, when the receiver sends transport-cc feedback
    /// (the downlink estimator's input).
    pub twcc_ext_id: Option<u8>,
    pub mid: Vec<u8>,
    pub seq: SeqManager,
    pub timestamps: TimestampOffset,
    /// A pipe consumer (see `pipe.rs`): it sends the router's packets with their own numbering
    /// and never waits for a keyframe (the far router's consumers do).
    pub pipe: bool,
    /// Video waits for a keyframe after (re)starting; the next forwarded packet re-syncs.
    pub waiting_keyframe: bool,
    pub needs_sync: bool,
    /// A simulcast consumer's layer choice (`None`: a simple or pipe consumer).
    pub layers: Option<LayerSelector>,
    /// Its continuous VP8 picture ids across layer switches and dropped temporal layers.
    pub vp8: Vp8Rewriter,
    /// Served first when bandwidth is short (1–255).
    pub priority: u8,
    /// The allocator's step-up hysteresis for this consumer.
    pub upgrade_hold: UpgradeHold,
    pub rtx_seq: u16,
    /// What was sent as each recent outgoing sequence number, to answer NACKs.
    sent: Box<[SentPacket]>,
    pub last_sent: Option<(Instant, u32)>,
    pub last_sr: Option<(u32, Instant)>,
    pub next_sr: Option<Instant>,
    pub packets: u64,
    pub bytes: u64,
    pub send_rate: BitrateWindow,
    pub nack_count: u64,
    pub nack_packet_count: u64,
    pub pli_count: u64,
    pub fir_count: u64,
    pub packets_retransmitted: u64,
    /// NACKed packets not resent (too old, resent within the RTT, or over the estimate).
    pub retransmissions_skipped: u64,
    /// Made on the first NACK.
    pub rtx_guard: Option<super::rtx_guard::RtxGuard>,
    pub rtt: Option<Duration>,
    pub fraction_lost: u8,
    /// The score last reported to the controller.
    pub reported_score: Option<u8>,
    pub packets_lost: i64,
    pub jitter: u32,
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
        initial_seq: u16,
        initial_timestamp: u32,
    ) -> Self {
        let encoding = rtp_parameters.encodings.first().cloned().unwrap_or_default();
        let media = rtp_parameters.codecs.iter().find(|c| !ortc::is_rtx(&c.mime_type));
        let payload_type = media.map_or(0, |c| c.payload_type);
        let clock_rate = media.map_or(90_000, |c| c.clock_rate);
        let rtx_pt = rtp_parameters.codecs.iter().find(|c| ortc::is_rtx(&c.mime_type)).map(|c| c.payload_type);
        let rtx = encoding.rtx.zip(rtx_pt).map(|(r, pt)| (r.ssrc, pt));
        let mut extension_ids = [0u8; 256];
        for ext in &rtp_parameters.header_extensions {
            extension_ids[usize::from(ext.id)] = ext.id;
        }
        let ext_id = |uri: &str| rtp_parameters.header_extensions.iter().find(|e| e.uri == uri).map(|e| e.id);
        let mid_ext_id = ext_id(ortc::URI_MID);
        let twcc_ext_id = ext_id(ortc::URI_TRANSPORT_CC);
        Self {
            id,
            transport_id,
            producer_id,
            kind,
            ssrc: encoding.ssrc.unwrap_or(0),
            rtx,
            payload_type,
            clock_rate,
            cname: rtp_parameters.rtcp.cname.clone().unwrap_or_default().into_bytes(),
            extension_ids,
            mid_ext_id,
            twcc_ext_id,
            mid: rtp_parameters.mid.clone().unwrap_or_default().into_bytes(),
            rtp_parameters,
            rtp_type,
            paused,
            producer_paused,
            seq: SeqManager::new(initial_seq),
            timestamps: TimestampOffset::new(initial_timestamp),
            pipe: false,
            waiting_keyframe: kind == MediaKind::Video,
            needs_sync: true,
            layers: None,
            vp8: Vp8Rewriter::default(),
            priority: 1,
            upgrade_hold: UpgradeHold::default(),
            rtx_seq: initial_seq.wrapping_add(0x4000),
            sent: vec![SentPacket::default(); SENT_HISTORY].into_boxed_slice(),
            last_sent: None,
            last_sr: None,
            next_sr: None,
            packets: 0,
            bytes: 0,
            send_rate: BitrateWindow::default(),
            nack_count: 0,
            nack_packet_count: 0,
            pli_count: 0,
            fir_count: 0,
            packets_retransmitted: 0,
            retransmissions_skipped: 0,
            rtx_guard: None,
            rtt: None,
            fraction_lost: 0,
            reported_score: None,
            packets_lost: 0,
            jitter: 0,
        }
    }

    /// Whether media flows to the remote end now.
    pub fn is_active(&self) -> bool {
        !self.paused && !self.producer_paused
    }

    /// (Re)starting: video waits for a keyframe, and the outgoing numbering re-syncs on the next
    /// forwarded packet so the receiver sees no gap.
    pub fn restart(&mut self) {
        self.waiting_keyframe = self.kind == MediaKind::Video && !self.pipe;
        self.needs_sync = true;
        if let Some(layers) = self.layers.as_mut() {
            layers.restart();
        }
    }

    /// Turns a new consumer of a producer with `encodings` simulcast encodings into a simulcast
    /// consumer: it picks one encoding (and its temporal layers) at a time.
    pub fn make_simulcast(&mut self, encodings: u8) {
        self.layers = Some(LayerSelector::new(encodings));
    }

    /// Turns a new consumer into a pipe consumer.
    pub fn make_pipe(&mut self) {
        self.pipe = true;
        self.waiting_keyframe = false;
    }

    /// The sequence number and timestamp `in_seq` / `in_ts` leave with, or `None` if the numbering
    /// drops the packet: a pipe keeps the router's, any other consumer has its own.
    pub fn number(&mut self, now: Instant, in_seq: u16, in_ts: u32) -> Option<(u16, u32)> {
        if self.pipe {
            return Some((in_seq, in_ts));
        }
        let out_seq = self.seq.input(in_seq)?;
        Some((out_seq, self.timestamps.map(now, in_ts)))
    }

    pub fn remember_sent(&mut self, out: &Outgoing, in_seq: u16, encoding: u8) {
        let len = self.sent.len();
        self.sent[usize::from(out.seq) % len] = SentPacket {
            out_seq: out.seq,
            in_seq,
            out_ts: out.ts,
            encoding,
            vp8: out.vp8.map(|v| (v.picture_id, v.tl0)),
            twcc: out.twcc,
            valid: true,
        };
    }

    /// What was sent as `out_seq`, if still remembered.
    pub fn sent(&self, out_seq: u16) -> Option<SentPacket> {
        let p = self.sent[usize::from(out_seq) % self.sent.len()];
        (p.valid && p.out_seq == out_seq).then_some(p)
    }
}
