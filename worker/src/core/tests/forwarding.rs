//! Media through the core: fan-out, continuity, retransmission, keyframe requests, feedback.

use std::time::Duration;

use octo_ipc::*;

use crate::core::ice::{StunClass, StunMessage};
use crate::core::rtp::rtcp::{RtcpCompound, RtcpPacket, write_nack, write_pli};
use crate::core::testing::{Harness, Peer, vp8_payload};

const VP8_PT: u8 = 96;
const VIDEO_SSRC: u32 = 1111;

/// A publisher with a VP8 producer and two subscribers consuming it, all connected and resumed.
struct Call {
    h: Harness,
    publisher: Peer,
    subs: [Peer; 2],
    consumers: [ConsumerData; 2],
    producer: ProducerId,
}

impl Call {
    fn new() -> Self {
        let mut h = Harness::new();
        let mut publisher = Peer::new(50000);
        let mut subs = [Peer::new(50001), Peer::new(50002)];
        let t = h.create_transport(1);
        h.connect(&mut publisher, &t);
        for (i, sub) in subs.iter_mut().enumerate() {
            let t = h.create_transport(10 + i as u128);
            h.connect(sub, &t);
        }
        let producer = h.produce(&publisher, 100, MediaKind::Video);
        let consumers = [h.consume(&subs[0], 200, producer), h.consume(&subs[1], 201, producer)];
        for c in &consumers {
            assert_eq!(h.request(Request::Consumer(c.id, ConsumerRequest::Resume)), Ok(Response::Ok));
        }
        let mut call = Self { h, publisher, subs, consumers, producer };
        call.pump();
        call
    }

    fn pump(&mut self) {
        let [a, b] = &mut self.subs;
        self.h.pump(&mut [&mut self.publisher, a, b]);
    }

    fn advance(&mut self, by: Duration) {
        let [a, b] = &mut self.subs;
        self.h.advance(by, &mut [&mut self.publisher, a, b]);
    }

    fn send_video(&mut self, seq: u16, keyframe: bool) {
        let ts = u32::from(seq) * 3000;
        self.publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, ts, &vp8_payload(keyframe, seq as u8));
        self.pump();
    }

    fn publisher_feedback(&self, mut want: impl FnMut(&RtcpPacket) -> bool) -> usize {
        self.publisher
            .rtcp
            .iter()
            .flat_map(|p| RtcpCompound::iter(p).filter_map(Result::ok).collect::<Vec<_>>())
            .filter(|p| want(p))
            .count()
    }
}

#[test]
fn media_fans_out_to_every_subscriber_rewritten_for_each() {
    let mut call = Call::new();
    // Resuming asked the publisher for a keyframe.
    assert_eq!(call.publisher_feedback(|p| matches!(p, RtcpPacket::Pli(pli) if pli.media_ssrc == VIDEO_SSRC)), 1);
    call.send_video(10, false); // no keyframe yet: held back
    call.send_video(11, true);
    for seq in 12..=20 {
        call.send_video(seq, false);
    }
    for (sub, consumer) in call.subs.iter().zip(&call.consumers) {
        let ssrc = consumer.rtp_parameters.encodings[0].ssrc.unwrap();
        let mid = consumer.rtp_parameters.mid.clone().unwrap();
        assert_eq!(sub.rtp.len(), 10, "keyframe and the 9 packets after it");
        assert_eq!(sub.undecryptable, 0);
        for (i, p) in sub.rtp.iter().enumerate() {
            assert_eq!(p.ssrc, ssrc);
            assert_eq!(p.payload_type, 101, "the router's VP8 payload type");
            assert_eq!(p.mid.as_deref(), Some(mid.as_bytes()));
            assert_eq!(p.payload, vp8_payload(i == 0, 11 + i as u8), "payload intact");
            if i > 0 {
                assert_eq!(p.seq, sub.rtp[i - 1].seq.wrapping_add(1), "continuous sequence");
                assert_eq!(p.timestamp.wrapping_sub(sub.rtp[i - 1].timestamp), 3000);
            }
        }
    }
    assert_ne!(call.subs[0].rtp[0].ssrc, call.subs[1].rtp[0].ssrc);
}

#[test]
fn sequence_and_timestamps_stay_continuous_across_pause_and_resume() {
    let mut call = Call::new();
    call.send_video(1, true);
    call.send_video(2, false);
    let c = call.consumers[0].id;
    assert_eq!(call.h.request(Request::Consumer(c, ConsumerRequest::Pause)), Ok(Response::Ok));
    for seq in 3..=40 {
        call.send_video(seq, false);
    }
    call.advance(Duration::from_millis(600));
    assert_eq!(call.h.request(Request::Consumer(c, ConsumerRequest::Resume)), Ok(Response::Ok));
    call.send_video(41, false); // not a keyframe: the resumed consumer waits
    call.send_video(42, true);
    call.send_video(43, false);
    let got: Vec<u16> = call.subs[0].rtp.iter().map(|p| p.seq).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    for pair in got.windows(2) {
        assert_eq!(pair[1], pair[0].wrapping_add(1), "no gap across the pause: {got:?}");
    }
    let ts: Vec<u32> = call.subs[0].rtp.iter().map(|p| p.timestamp).collect();
    assert!(ts[2].wrapping_sub(ts[1]) > 0 && ts[2].wrapping_sub(ts[1]) < 1 << 31, "timestamps move forward: {ts:?}");
    // The other subscriber saw everything from the first keyframe.
    assert_eq!(call.subs[1].rtp.len(), 43);
}

#[test]
fn a_nack_is_answered_with_rtx_from_the_shared_buffer() {
    let mut call = Call::new();
    call.send_video(1, true);
    for seq in 2..=5 {
        call.send_video(seq, false);
    }
    let original = call.subs[0].rtp[2].clone();
    let ssrc = call.consumers[0].rtp_parameters.encodings[0].ssrc.unwrap();
    let rtx_ssrc = call.consumers[0].rtp_parameters.encodings[0].rtx.unwrap().ssrc;
    call.subs[0].send_rtcp(|b| write_nack(b, 0x5555, ssrc, &[original.seq]).unwrap());
    call.pump();
    let rtx = call.subs[0].rtp.last().unwrap().clone();
    assert_eq!(rtx.ssrc, rtx_ssrc);
    assert_eq!(rtx.payload_type, 102);
    assert_eq!(rtx.payload[..2], original.seq.to_be_bytes(), "original sequence number first");
    assert_eq!(rtx.payload[2..], original.payload[..]);
    // A NACK for something never sent is ignored.
    let before = call.subs[0].rtp.len();
    call.subs[0].send_rtcp(|b| write_nack(b, 0x5555, ssrc, &[original.seq.wrapping_add(1000)]).unwrap());
    call.pump();
    assert_eq!(call.subs[0].rtp.len(), before);
    match call.h.request(Request::Consumer(call.consumers[0].id, ConsumerRequest::GetStats)) {
        Ok(Response::RtpStreamStats(s)) => {
            assert_eq!(s[0].nack_count, 2);
            assert_eq!(s[0].packets_retransmitted, 1);
        }
        other => panic!("{other:?}"),
    }
}

/// How many retransmissions `sub` has received (RTX packets of its consumer).
fn rtx_received(call: &Call, sub: usize) -> usize {
    let rtx_ssrc = call.consumers[sub].rtp_parameters.encodings[0].rtx.unwrap().ssrc;
    call.subs[sub].rtp.iter().filter(|p| p.ssrc == rtx_ssrc).count()
}

fn nack(call: &mut Call, sub: usize, seq: u16) {
    let ssrc = call.consumers[sub].rtp_parameters.encodings[0].ssrc.unwrap();
    call.subs[sub].send_rtcp(|b| write_nack(b, 0x5555, ssrc, &[seq]).unwrap());
    call.pump();
}

fn consumer_stats(call: &mut Call, sub: usize) -> RtpStreamStats {
    match call.h.request(Request::Consumer(call.consumers[sub].id, ConsumerRequest::GetStats)) {
        Ok(Response::RtpStreamStats(mut s)) => s.remove(0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_packet_is_resent_at_most_once_per_round_trip() {
    let mut call = Call::new();
    call.send_video(1, true);
    for seq in 2..=5 {
        call.send_video(seq, false);
    }
    let lost = call.subs[0].rtp[2].seq;
    // The receiver asks again before the answer could have reached it: one answer is enough.
    for _ in 0..3 {
        nack(&mut call, 0, lost);
    }
    assert_eq!(rtx_received(&call, 0), 1);
    // A round trip later (no receiver report yet: 100 ms assumed) the resend may be lost too.
    call.advance(Duration::from_millis(100));
    nack(&mut call, 0, lost);
    assert_eq!(rtx_received(&call, 0), 2);
    let s = consumer_stats(&mut call, 0);
    assert_eq!((s.packets_retransmitted, s.retransmissions_skipped), (2, 2));
    // The other subscriber's resends are its own.
    let other = call.subs[1].rtp[2].seq;
    nack(&mut call, 1, other);
    assert_eq!(rtx_received(&call, 1), 1);
}

#[test]
fn a_packet_older_than_a_jitter_buffer_keeps_is_not_resent() {
    let mut call = Call::new();
    call.send_video(1, true);
    // A packet a frame: 3000 ticks of 90 kHz each, so seq 40 is 1.3 s of media after seq 1.
    for seq in 2..=40 {
        call.send_video(seq, false);
    }
    let (old, recent) = (call.subs[0].rtp[1].seq, call.subs[0].rtp[20].seq);
    nack(&mut call, 0, old);
    assert_eq!(rtx_received(&call, 0), 0, "1.27 s behind the newest: past any jitter buffer");
    nack(&mut call, 0, recent);
    assert_eq!(rtx_received(&call, 0), 1, "0.63 s behind: still worth sending");
    assert_eq!(consumer_stats(&mut call, 0).retransmissions_skipped, 1);
}

#[test]
fn keyframe_requests_are_throttled_upstream() {
    let mut call = Call::new();
    call.send_video(1, true);
    let plis = |call: &Call| call.publisher_feedback(|p| matches!(p, RtcpPacket::Pli(_)));
    call.advance(Duration::from_millis(600));
    let before = plis(&call);
    for i in 0..2 {
        let ssrc = call.consumers[i].rtp_parameters.encodings[0].ssrc.unwrap();
        call.subs[i].send_rtcp(|b| write_pli(b, 0x6666, ssrc).unwrap());
    }
    call.pump();
    assert_eq!(plis(&call), before + 1, "two PLIs within 500 ms reach the publisher once");
    call.advance(Duration::from_millis(600));
    let ssrc = call.consumers[0].rtp_parameters.encodings[0].ssrc.unwrap();
    call.subs[0].send_rtcp(|b| write_pli(b, 0x6666, ssrc).unwrap());
    call.pump();
    assert_eq!(plis(&call), before + 2);
}

#[test]
fn gaps_from_the_publisher_are_nacked_and_reported() {
    let mut call = Call::new();
    call.send_video(1, true);
    call.send_video(2, false);
    call.send_video(4, false);
    call.advance(Duration::from_millis(40));
    let lost: Vec<u16> = call
        .publisher
        .rtcp
        .iter()
        .flat_map(|p| {
            RtcpCompound::iter(p)
                .filter_map(Result::ok)
                .filter_map(|p| match p {
                    RtcpPacket::Nack(n) => Some(n.lost().collect::<Vec<_>>()),
                    _ => None,
                })
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lost, [3]);
    call.advance(Duration::from_millis(1100));
    assert!(call.publisher_feedback(|p| matches!(p, RtcpPacket::ReceiverReport(_))) >= 1);
    assert!(call.publisher_feedback(|p| matches!(p, RtcpPacket::TransportCc(_))) >= 1, "transport-cc feedback");
    // Subscribers get sender reports for their streams.
    let srs = call.subs[0]
        .rtcp
        .iter()
        .flat_map(|p| RtcpCompound::iter(p).filter_map(Result::ok).collect::<Vec<_>>())
        .filter(|p| matches!(p, RtcpPacket::SenderReport(_)))
        .count();
    assert!(srs >= 1);
    match call.h.request(Request::Producer(call.producer, ProducerRequest::GetStats)) {
        Ok(Response::RtpStreamStats(s)) => {
            assert_eq!(s[0].packet_count, 3);
            // Re-requested about once an RTT (100 ms when unknown) and given up after 10 tries.
            assert!((2..=10).contains(&s[0].nack_packet_count), "{}", s[0].nack_packet_count);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn consent_expires_after_30_seconds_without_checks() {
    let mut call = Call::new();
    call.h.notifications.clear();
    call.advance(Duration::from_secs(31));
    let disconnected = Notification::Transport(
        call.subs[0].transport,
        TransportNotification::IceStateChange { ice_state: IceState::Disconnected },
    );
    assert!(call.h.notifications.contains(&disconnected), "{:?}", call.h.notifications);
    // A new check brings it back.
    let password = call.subs[0].remote_password.clone();
    call.subs[0].send_binding(true, &password);
    call.pump();
    let completed = Notification::Transport(
        call.subs[0].transport,
        TransportNotification::IceStateChange { ice_state: IceState::Completed },
    );
    assert!(call.h.notifications.contains(&completed));
}

#[test]
fn checks_with_wrong_credentials_get_401_and_select_nothing() {
    let mut h = Harness::new();
    let t = h.create_transport(1);
    let mut peer = Peer::new(50000);
    peer.remote_ufrag = t.ice_parameters.username_fragment.clone();
    peer.send_binding(true, "not-the-password-at-all-00000000");
    h.pump(&mut [&mut peer]);
    let response = StunMessage::parse(&peer.stun_responses[0]).unwrap();
    assert_eq!(response.class(), StunClass::ErrorResponse);
    assert_eq!(response.error_code().unwrap().code, 401);
    assert!(
        !h.notifications
            .iter()
            .any(|n| matches!(n, Notification::Transport(_, TransportNotification::IceSelectedTupleChange { .. })))
    );
    // The right password succeeds and answers with the address the check came from.
    peer.send_binding(true, &t.ice_parameters.password);
    h.pump(&mut [&mut peer]);
    let response = StunMessage::parse(&peer.stun_responses[1]).unwrap();
    assert_eq!(response.class(), StunClass::SuccessResponse);
    assert_eq!(response.xor_mapped_address(), Some(peer.addr));
    assert!(response.verify_integrity(t.ice_parameters.password.as_bytes()));
}

#[test]
fn remb_is_the_feedback_when_transport_cc_is_not_negotiated() {
    let mut h = Harness::new();
    let mut publisher = Peer::new(50000);
    let t = h.create_transport(1);
    h.connect(&mut publisher, &t);
    let mut params = crate::core::testing::chrome_vp8_parameters();
    params.header_extensions.retain(|e| !e.uri.contains("transport-wide-cc"));
    h.request(Request::Transport(
        t.id,
        TransportRequest::Produce {
            producer_id: ProducerId(1),
            kind: MediaKind::Video,
            rtp_parameters: params,
            paused: false,
        },
    ))
    .unwrap();
    for seq in 0..50u16 {
        publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, u32::from(seq) * 3000, &vp8_payload(seq == 0, 1));
        h.pump(&mut [&mut publisher]);
    }
    h.advance(Duration::from_millis(1100), &mut [&mut publisher]);
    let rembs: Vec<u64> = publisher
        .rtcp
        .iter()
        .flat_map(|p| RtcpCompound::iter(p).filter_map(Result::ok).collect::<Vec<_>>())
        .filter_map(|p| match p {
            RtcpPacket::Remb(r) => Some(r.bitrate),
            _ => None,
        })
        .collect();
    assert!(!rembs.is_empty());
    assert!(rembs.iter().all(|&b| b >= 300_000), "{rembs:?}");
    let twcc = publisher
        .rtcp
        .iter()
        .flat_map(|p| RtcpCompound::iter(p).filter_map(Result::ok).collect::<Vec<_>>())
        .filter(|p| matches!(p, RtcpPacket::TransportCc(_)))
        .count();
    assert_eq!(twcc, 0, "no transport-cc feedback without the extension");
}

#[test]
fn a_keyframe_repaired_upstream_brings_the_packets_held_behind_it() {
    let mut call = Call::new();
    // The keyframe (seq 2) is lost on the way in; 3..=5 arrive and are held back by the gate.
    call.send_video(1, false);
    for seq in 3..=5 {
        call.send_video(seq, false);
    }
    assert!(call.subs[0].rtp.is_empty());
    // The publisher repairs it on its RTX stream (payload type 97, SSRC 2222).
    let mut rtx_payload = 2u16.to_be_bytes().to_vec();
    rtx_payload.extend_from_slice(&vp8_payload(true, 2));
    call.publisher.send_rtp(97, 2222, 900, 2 * 3000, &rtx_payload);
    call.pump();
    call.send_video(6, false);
    for sub in &call.subs {
        let payloads: Vec<u8> = sub.rtp.iter().map(|p| p.payload[p.payload.len() - 1]).collect();
        assert_eq!(payloads, [2, 3, 4, 5, 6], "the keyframe and everything after it, in order");
        for pair in sub.rtp.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1), "no hole");
        }
    }
}

/// A VP8 packet whose only header extension is rid (id 10).
fn packet_with_rid(ssrc: u32, seq: u16, rid: &[u8; 2], payload: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; 1600];
    buf[0] = 0x90;
    buf[1] = VP8_PT;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..20].copy_from_slice(&[0xBE, 0xDE, 0, 1, 0xA1, rid[0], rid[1], 0]);
    buf[20..20 + payload.len()].copy_from_slice(payload);
    (buf, 20 + payload.len())
}

#[test]
fn rid_only_simulcast_encodings_are_learnt_and_the_consumer_climbs_to_the_top_one() {
    let mut h = Harness::new();
    let (mut publisher, mut sub) = h.publisher_and_subscriber();
    let mut params = crate::core::testing::chrome_vp8_parameters();
    params.encodings = serde_json::from_str(r#"[{"rid":"r0"},{"rid":"r1"}]"#).unwrap();
    params
        .header_extensions
        .push(serde_json::from_str(r#"{"uri":"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id","id":10}"#).unwrap());
    let resp = h.request(Request::Transport(
        publisher.transport,
        TransportRequest::Produce {
            producer_id: ProducerId(1),
            kind: MediaKind::Video,
            rtp_parameters: params,
            paused: false,
        },
    ));
    assert_eq!(resp, Ok(Response::ProducerCreated { rtp_type: RtpType::Simulcast }));
    let consumer = h.consume(&sub, 2, ProducerId(1));
    h.request(Request::Consumer(consumer.id, ConsumerRequest::Resume)).unwrap();
    for seq in 0..5u16 {
        for (ssrc, rid) in [(7777, b"r0"), (8888, b"r1")] {
            let (buf, len) = packet_with_rid(ssrc, seq, rid, &vp8_payload(seq == 0, rid[1]));
            publisher.send_plain_rtp(buf, len);
        }
        h.pump(&mut [&mut publisher, &mut sub]);
    }
    // The first keyframe starts it (r0's came first), the top encoding's keyframe moves it up, and
    // from then on only r1 is forwarded, as one continuous stream.
    let from: Vec<u8> = sub.rtp.iter().map(|p| *p.payload.last().unwrap()).collect();
    assert_eq!(from, b"011111", "one stream: the start on r0, then r1");
    let seqs: Vec<u16> = sub.rtp.iter().map(|p| p.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "continuous: {seqs:?}");
    assert!(sub.rtp.iter().all(|p| p.ssrc == sub.rtp[0].ssrc));
    match h.request(Request::Producer(ProducerId(1), ProducerRequest::GetStats)) {
        Ok(Response::RtpStreamStats(s)) => {
            assert_eq!((s[0].ssrc, s[0].rid.as_deref(), s[0].packet_count), (7777, Some("r0"), 5));
            assert_eq!((s[1].ssrc, s[1].rid.as_deref(), s[1].packet_count), (8888, Some("r1"), 5));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn consumers_sharing_one_rewrite_each_get_their_own_mid_and_numbering() {
    // Eleven consumers of one producer on one transport have mids "0" to "10": the first rewrite
    // is shared, then refused (a longer mid), then shared again. Debug builds also compare every
    // shared rewrite with the full one.
    let mut h = Harness::new();
    let (mut publisher, mut sub) = (Peer::new(50000), Peer::new(50001));
    let t = h.create_transport(1);
    h.connect(&mut publisher, &t);
    let t = h.create_transport(2);
    h.connect(&mut sub, &t);
    let producer = h.produce(&publisher, 100, MediaKind::Video);
    let consumers: Vec<ConsumerData> = (0..11)
        .map(|i| {
            let c = h.consume(&sub, 200 + i, producer);
            assert_eq!(h.request(Request::Consumer(c.id, ConsumerRequest::Resume)), Ok(Response::Ok));
            c
        })
        .collect();
    h.pump(&mut [&mut publisher, &mut sub]);
    for seq in 0..5u16 {
        publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, u32::from(seq) * 3000, &vp8_payload(seq == 0, seq as u8));
        h.pump(&mut [&mut publisher, &mut sub]);
    }
    // Eleven streams' packets at one instant are more than the pacer's burst: some leave later.
    h.advance(Duration::from_millis(200), &mut [&mut publisher, &mut sub]);
    assert_eq!(sub.undecryptable, 0);
    let mids: Vec<String> = consumers.iter().map(|c| c.rtp_parameters.mid.clone().unwrap()).collect();
    assert!(mids.iter().any(|m| m.len() == 1) && mids.iter().any(|m| m.len() == 2), "{mids:?}");
    for (consumer, mid) in consumers.iter().zip(&mids) {
        let ssrc = consumer.rtp_parameters.encodings[0].ssrc.unwrap();
        let got: Vec<_> = sub.rtp.iter().filter(|p| p.ssrc == ssrc).collect();
        assert_eq!(got.len(), 5, "consumer {mid}");
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.mid.as_deref(), Some(mid.as_bytes()));
            assert_eq!(p.payload_type, 101);
            assert_eq!(p.payload, vp8_payload(i == 0, i as u8), "payload intact");
            if i > 0 {
                assert_eq!(p.seq, got[i - 1].seq.wrapping_add(1));
            }
        }
    }
}

/// Feeds `count` video packets from seq `first` to the worker as one loop turn reads them (nothing
/// polled in between), then takes every datagram: (destination, RTP sequence number) in order.
fn one_turn(call: &mut Call, first: u16, count: u16) -> Vec<(std::net::SocketAddr, u16)> {
    for seq in first..first + count {
        let ts = u32::from(seq / 4) * 3000;
        call.publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, ts, &vp8_payload(false, seq as u8));
    }
    for datagram in call.publisher.take_outgoing() {
        call.h.datagram(call.publisher.addr, &datagram);
    }
    let mut out = Vec::new();
    take_rtp(call, &mut out);
    out
}

fn take_rtp(call: &mut Call, out: &mut Vec<(std::net::SocketAddr, u16)>) {
    while let Some(t) = call.h.worker.poll_transmit() {
        if !crate::core::forward::is_rtcp(&t.buf) {
            out.push((t.to, u16::from_be_bytes([t.buf[2], t.buf[3]])));
        }
        call.h.worker.recycle(t.buf);
    }
}

/// What the transports' pacers held back after a turn, as their ticks release it (a second).
fn paced_rtp(call: &mut Call) -> Vec<(std::net::SocketAddr, u16)> {
    let mut out = Vec::new();
    for _ in 0..200 {
        call.h.now += Duration::from_millis(5);
        call.h.worker.handle_timeout(call.h.now);
        take_rtp(call, &mut out);
    }
    out
}

#[test]
fn a_turns_packets_go_out_consumer_by_consumer_each_in_order() {
    let mut call = Call::new();
    call.send_video(1, true);
    let out = one_turn(&mut call, 2, 4);
    assert_eq!(out.len(), 8);
    // Each consumer's four packets back to back (one GSO run), in order, without a gap.
    for run in out.chunks(4) {
        assert!(run.iter().all(|(to, _)| *to == run[0].0), "{out:?}");
        assert!(run.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(1)), "{out:?}");
    }
    assert_ne!(out[0].0, out[4].0);
    // A turn longer than the fan-out holds (and than the pacers' burst): everything still
    // arrives, each consumer in order.
    let mut out = one_turn(&mut call, 6, 300);
    out.extend(paced_rtp(&mut call));
    for sub in &call.subs {
        let seqs: Vec<u16> = out.iter().filter(|(to, _)| *to == sub.addr).map(|(_, s)| *s).collect();
        assert_eq!(seqs.len(), 300);
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    }
}

/// A peer in a large call consumes more streams on its one receiving transport than a receiving
/// SRTP context tracks (64): every one of them must still be sent.
#[test]
fn one_transport_carries_a_large_calls_worth_of_consumers() {
    let mut call = Call::new();
    let extra: Vec<ConsumerData> = (0..70).map(|i| call.h.consume(&call.subs[0], 1000 + i, call.producer)).collect();
    for c in &extra {
        assert_eq!(call.h.request(Request::Consumer(c.id, ConsumerRequest::Resume)), Ok(Response::Ok));
    }
    call.pump();
    call.send_video(1, true);
    call.send_video(2, false);
    // 71 streams at one instant: the pacer lets them out over a few ticks.
    call.advance(Duration::from_millis(200));
    let ssrcs: std::collections::HashSet<u32> = call.subs[0].rtp.iter().map(|r| r.ssrc).collect();
    assert_eq!(ssrcs.len(), 71, "every consumer's stream arrived and decrypted");
    assert_eq!(call.subs[0].rtp.len(), 2 * 71, "both packets to each of them");
}
