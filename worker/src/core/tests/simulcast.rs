//! Simulcast through the core: a producer with three VP8 encodings (L1T3 each), a simulcast
//! consumer switching between them, and what the subscriber sees: one stream, with no sequence,
//! picture id or TL0PICIDX gap at any switch.

use std::time::Duration;

use octo_ipc::*;

use crate::core::rtp::rtcp::{RtcpCompound, RtcpPacket};
use crate::core::rtp::vp8;
use crate::core::testing::{Harness, Peer, Received};

const VP8_PT: u8 = 96;
pub(super) const SSRCS: [u32; 3] = [1001, 1002, 1003];
/// The L1T3 pattern of temporal layer ids, frame by frame.
pub(super) const TIDS: [u8; 4] = [0, 2, 1, 2];

/// One encoding's sender state: its own sequence numbers, picture ids and TL0PICIDX.
pub(super) struct EncodingSender {
    pub seq: u16,
    pub picture_id: u16,
    pub tl0: u8,
    pub frame: u32,
}

impl EncodingSender {
    /// One frame of encoding `encoding` in `packets` packets (of `payload_len` bytes each, if given),
    /// in the L1T3 pattern; a keyframe restarts the pattern.
    pub fn send_frame(
        &mut self,
        publisher: &mut Peer,
        encoding: usize,
        key: bool,
        packets: usize,
        payload_len: Option<usize>,
    ) {
        if key {
            self.frame = 0;
        }
        let tid = TIDS[self.frame as usize % TIDS.len()];
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let ts = self.frame.wrapping_mul(3000).wrapping_add(encoding as u32 * 1_000_000);
        for part in 0..packets {
            let mut payload = vp8_packet(self.picture_id, self.tl0, tid, part == 0, key && part == 0, encoding as u8);
            if let Some(len) = payload_len {
                let last = *payload.last().unwrap();
                payload.resize(len, last);
            }
            publisher.send_rtp(VP8_PT, SSRCS[encoding], self.seq, ts, &payload);
            self.seq = self.seq.wrapping_add(1);
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        self.frame += 1;
    }
}

struct Simulcast {
    h: Harness,
    publisher: Peer,
    sub: Peer,
    consumer: ConsumerData,
    senders: [EncodingSender; 3],
}

pub(super) fn simulcast_parameters() -> RtpParameters {
    let mut params = crate::core::testing::chrome_vp8_parameters();
    params.encodings = serde_json::from_str(
        r#"[{"ssrc":1001,"scalabilityMode":"L1T3"},{"ssrc":1002,"scalabilityMode":"L1T3"},
            {"ssrc":1003,"scalabilityMode":"L1T3"}]"#,
    )
    .unwrap();
    params
}

/// A publisher producing [`simulcast_parameters`] (producer 1) and a subscriber with a resumed
/// simulcast consumer of it.
pub(super) fn simulcast_call() -> (Harness, Peer, Peer, ConsumerData) {
    let mut h = Harness::new();
    let (publisher, sub) = h.publisher_and_subscriber();
    let resp = h.request(Request::Transport(
        publisher.transport,
        TransportRequest::Produce {
            producer_id: ProducerId(1),
            kind: MediaKind::Video,
            rtp_parameters: simulcast_parameters(),
            paused: false,
        },
    ));
    assert_eq!(resp, Ok(Response::ProducerCreated { rtp_type: RtpType::Simulcast }));
    let consumer = h.consume(&sub, 2, ProducerId(1));
    assert_eq!(consumer.rtp_type, RtpType::Simulcast);
    h.request(Request::Consumer(consumer.id, ConsumerRequest::Resume)).unwrap();
    (h, publisher, sub, consumer)
}

impl Simulcast {
    fn new() -> Self {
        let (h, publisher, sub, consumer) = simulcast_call();
        assert_eq!(consumer.rtp_parameters.encodings[0].scalability_mode.as_deref(), Some("L3T3"));
        let senders = [(100, 7000, 10), (30000, 32760, 250), (65530, 1, 77)]
            .map(|(seq, picture_id, tl0)| EncodingSender { seq, picture_id, tl0, frame: 0 });
        Self { h, publisher, sub, consumer, senders }
    }

    /// One frame (two packets) on each encoding; `keyframes` says which encodings send a keyframe.
    fn frame(&mut self, keyframes: [bool; 3]) {
        for (e, s) in self.senders.iter_mut().enumerate() {
            s.send_frame(&mut self.publisher, e, keyframes[e], 2, None);
        }
        self.h.advance(Duration::from_millis(33), &mut [&mut self.publisher, &mut self.sub]);
    }

    fn set_preferred(&mut self, spatial: u8, temporal: Option<u8>) {
        let layers = ConsumerLayers { spatial_layer: spatial, temporal_layer: temporal };
        let resp = self.h.request(Request::Consumer(self.consumer.id, ConsumerRequest::SetPreferredLayers(layers)));
        assert_eq!(resp, Ok(Response::Ok));
    }

    /// Encodings the subscriber's packets came from, received since `from`.
    fn encodings_since(&self, from: usize) -> Vec<u8> {
        self.sub.rtp[from..].iter().map(|p| *p.payload.last().unwrap()).collect()
    }

    fn plis_for(&self, ssrc: u32) -> usize {
        self.publisher
            .rtcp
            .iter()
            .flat_map(|c| RtcpCompound::iter(c).flatten().collect::<Vec<_>>())
            .filter(|p| matches!(p, RtcpPacket::Pli(pli) if pli.media_ssrc == ssrc))
            .count()
    }

    fn layer_changes(&self) -> Vec<Option<ConsumerLayers>> {
        self.h
            .notifications
            .iter()
            .filter_map(|n| match n {
                Notification::Consumer(id, ConsumerNotification::LayersChanged(l)) if *id == self.consumer.id => {
                    Some(*l)
                }
                _ => None,
            })
            .collect()
    }
}

/// A VP8 payload with a 15-bit picture id, TL0PICIDX and TID; the last byte names the encoding.
pub(super) fn vp8_packet(picture_id: u16, tl0: u8, tid: u8, start: bool, keyframe: bool, encoding: u8) -> Vec<u8> {
    let pid = (picture_id | 0x8000).to_be_bytes();
    let sync = if tid > 0 { 0x20 } else { 0 };
    let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0xe0, pid[0], pid[1], tl0, (tid << 6) | sync];
    if keyframe {
        p.extend_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
    } else {
        p.extend_from_slice(&[0x01, 0x00, 0x00]);
    }
    p.extend_from_slice(&[encoding; 60]);
    p
}

/// What a receiver checks: one SSRC, sequence numbers and frame picture ids without gaps, TL0PICIDX
/// moving by 0 or 1, timestamps never going back.
pub(super) fn assert_one_continuous_stream(rtp: &[Received]) {
    assert!(rtp.iter().all(|p| p.ssrc == rtp[0].ssrc), "one SSRC");
    for w in rtp.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap between {} and {}", w[0].seq, w[1].seq);
        assert!((w[1].timestamp.wrapping_sub(w[0].timestamp) as i32) >= 0, "timestamp went back");
    }
    let frames: Vec<vp8::Vp8Descriptor> =
        rtp.iter().filter_map(|p| vp8::parse(&p.payload)).filter(|d| d.start_of_frame).collect();
    for w in frames.windows(2) {
        let step = w[1].picture_id.unwrap().wrapping_sub(w[0].picture_id.unwrap()) & 0x7fff;
        assert_eq!(step, 1, "picture id gap: {:?} → {:?}", w[0].picture_id, w[1].picture_id);
        let tl0_step = w[1].tl0_pic_idx.unwrap().wrapping_sub(w[0].tl0_pic_idx.unwrap());
        assert!(tl0_step <= 1, "TL0PICIDX jumped by {tl0_step}");
        if w[1].temporal_id == 0 {
            assert_eq!(tl0_step, 1, "a TL0 frame moves TL0PICIDX on");
        }
    }
}

#[test]
fn a_simulcast_consumer_climbs_to_the_top_and_switches_down_at_the_lower_keyframe() {
    let mut s = Simulcast::new();
    s.frame([true, true, true]);
    for _ in 0..6 {
        s.frame([false; 3]);
    }
    // Started on the lowest keyframe, climbed within the same frame to the top encoding.
    let from_top = s.encodings_since(s.sub.rtp.len() - 12);
    assert!(from_top.iter().all(|&e| e == 2), "forwarding the top encoding: {from_top:?}");
    assert_eq!(s.layer_changes().last(), Some(&Some(ConsumerLayers { spatial_layer: 2, temporal_layer: Some(2) })));

    // Asked for the lowest: it keeps the top until the lowest encoding's keyframe, which it asks for.
    let plis_before = s.plis_for(SSRCS[0]);
    let top_plis = s.plis_for(SSRCS[2]);
    s.set_preferred(0, None);
    let mark = s.sub.rtp.len();
    s.frame([false; 3]);
    assert!(s.encodings_since(mark).iter().all(|&e| e == 2), "no switch before a keyframe");
    assert!(s.plis_for(SSRCS[0]) > plis_before, "a keyframe of the lowest encoding was asked for");
    assert_eq!(s.plis_for(SSRCS[2]), top_plis, "nobody asked the top encoding for one");
    let mark = s.sub.rtp.len();
    s.frame([true, false, false]);
    for _ in 0..6 {
        s.frame([false; 3]);
    }
    assert!(s.encodings_since(mark).iter().all(|&e| e == 0), "on the lowest from its keyframe");
    assert_eq!(s.layer_changes().last(), Some(&Some(ConsumerLayers { spatial_layer: 0, temporal_layer: Some(2) })));

    // Back up: the middle encoding's keyframe is the way.
    s.set_preferred(1, None);
    for _ in 0..3 {
        s.frame([false; 3]);
    }
    s.frame([false, true, false]);
    let mark = s.sub.rtp.len();
    s.frame([false; 3]);
    assert_eq!(s.encodings_since(mark), [1, 1], "on the middle one from its keyframe");
    assert_one_continuous_stream(&s.sub.rtp);
}

#[test]
fn temporal_layers_above_the_target_are_dropped_without_a_gap() {
    let mut s = Simulcast::new();
    s.frame([true, true, true]);
    s.set_preferred(2, Some(0));
    let mark = s.sub.rtp.len();
    for _ in 0..12 {
        s.frame([false; 3]);
    }
    let tids: Vec<u8> =
        s.sub.rtp[mark..].iter().filter_map(|p| vp8::parse(&p.payload)).map(|d| d.temporal_id).collect();
    assert!(!tids.is_empty() && tids.iter().all(|&t| t == 0), "only TL0 frames: {tids:?}");
    // Up again to TL1: starts at a layer-sync frame.
    s.set_preferred(2, Some(1));
    let mark = s.sub.rtp.len();
    for _ in 0..8 {
        s.frame([false; 3]);
    }
    let tids: Vec<u8> =
        s.sub.rtp[mark..].iter().filter_map(|p| vp8::parse(&p.payload)).map(|d| d.temporal_id).collect();
    assert!(tids.contains(&1) && !tids.contains(&2), "TL0 and TL1: {tids:?}");
    assert_one_continuous_stream(&s.sub.rtp);
}

#[test]
fn an_encoding_the_sender_stops_is_left_for_the_next_one_down() {
    let mut s = Simulcast::new();
    s.frame([true, true, true]);
    // The sender stops its top encoding (its uplink is short); after a while the consumer moves
    // down, at the middle encoding's keyframe.
    for i in 0..60 {
        let keyframe_middle = i == 55;
        for (e, sender) in s.senders.iter_mut().enumerate().take(2) {
            let tid = TIDS[sender.frame as usize % 4];
            if tid == 0 {
                sender.tl0 = sender.tl0.wrapping_add(1);
            }
            let key = e == 1 && keyframe_middle;
            if key {
                sender.frame = 0;
            }
            let ts = sender.frame * 3000 + e as u32 * 1_000_000;
            let payload = vp8_packet(sender.picture_id, sender.tl0, tid, true, key, e as u8);
            s.publisher.send_rtp(VP8_PT, SSRCS[e], sender.seq, ts, &payload);
            sender.seq = sender.seq.wrapping_add(1);
            sender.picture_id = (sender.picture_id + 1) & 0x7fff;
            sender.frame += 1;
        }
        s.h.advance(Duration::from_millis(33), &mut [&mut s.publisher, &mut s.sub]);
    }
    assert!(s.plis_for(SSRCS[1]) > 0, "the middle encoding was asked for a keyframe");
    assert_eq!(s.encodings_since(s.sub.rtp.len() - 3), [1, 1, 1]);
    assert_eq!(s.layer_changes().last(), Some(&Some(ConsumerLayers { spatial_layer: 1, temporal_layer: Some(2) })));
    assert_one_continuous_stream(&s.sub.rtp);
}

#[test]
fn a_nack_after_a_switch_is_answered_with_the_bytes_first_sent() {
    let mut s = Simulcast::new();
    s.frame([true, true, true]);
    s.frame([false; 3]);
    let sent = s.sub.rtp.last().unwrap().clone();
    let ssrc = s.consumer.rtp_parameters.encodings[0].ssrc.unwrap();
    s.sub.rtp.clear();
    s.sub.send_rtcp(|b| crate::core::rtp::rtcp::write_nack(b, 1, ssrc, &[sent.seq]).unwrap());
    s.h.pump(&mut [&mut s.publisher, &mut s.sub]);
    // Retransmitted over RTX (the consumer negotiated it): the original seq leads the payload.
    let rtx = s.sub.rtp.iter().find(|p| p.payload.get(..2) == Some(&sent.seq.to_be_bytes())).expect("retransmitted");
    assert_eq!(&rtx.payload[2..], &sent.payload[..], "same VP8 descriptor and frame bytes as first sent");
}

#[test]
fn preferred_layers_on_a_simple_consumer_are_refused() {
    let mut h = Harness::new();
    let (publisher, sub) = h.publisher_and_subscriber();
    let producer = h.produce(&publisher, 1, MediaKind::Video);
    let consumer = h.consume(&sub, 2, producer);
    let layers = ConsumerLayers { spatial_layer: 0, temporal_layer: None };
    let err = h.request(Request::Consumer(consumer.id, ConsumerRequest::SetPreferredLayers(layers))).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState);
    let err = h.request(Request::Consumer(consumer.id, ConsumerRequest::SetPriority(0))).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert_eq!(h.request(Request::Consumer(consumer.id, ConsumerRequest::SetPriority(9))), Ok(Response::Ok));
}

#[test]
fn receiver_reports_move_the_score_and_get_stats_shows_it_with_the_layers() {
    let mut s = Simulcast::new();
    s.frame([true, true, true]);
    let ssrc = s.consumer.rtp_parameters.encodings[0].ssrc.unwrap();
    let report = |fraction_lost| crate::core::rtp::rtcp::ReportBlock { ssrc, fraction_lost, ..Default::default() };
    for fraction_lost in [64u8, 64, 0] {
        s.sub.send_rtcp(|b| crate::core::rtp::rtcp::write_receiver_report(b, 9, &[report(fraction_lost)]).unwrap());
        s.h.pump(&mut [&mut s.publisher, &mut s.sub]);
    }
    let scores: Vec<u8> = s
        .h
        .notifications
        .iter()
        .filter_map(|n| match n {
            Notification::Consumer(id, ConsumerNotification::Score { score }) if *id == s.consumer.id => Some(*score),
            _ => None,
        })
        .collect();
    assert_eq!(scores, [5, 10], "25 % lost is 5, and only changes are told");
    match s.h.request(Request::Consumer(s.consumer.id, ConsumerRequest::GetStats)) {
        Ok(Response::RtpStreamStats(stats)) => {
            assert_eq!(stats[0].score, 10);
            assert_eq!((stats[0].spatial_layer, stats[0].temporal_layer), (Some(2), Some(2)));
        }
        other => panic!("{other:?}"),
    }
}
