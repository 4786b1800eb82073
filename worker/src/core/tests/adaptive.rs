//! Adaptive video closed loop, in virtual time: a simulcast publisher (three VP8 encodings of
//! ~150 kbit/s, ~500 kbit/s and ~1.5 Mbit/s, L1T3) through the worker to a subscriber behind a
//! bottleneck link; the subscriber reports transport-cc (the real recorder), the worker's downlink
//! estimator and allocator pick the layer. A cut makes it step down within a second, the end of the
//! cut lets it climb back, and the subscriber's stream never shows a gap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use octo_ipc::*;

use super::simulcast::{EncodingSender, SSRCS, assert_one_continuous_stream, simulcast_call};
use crate::core::bwe::tests::link::Link;
use crate::core::rtp::rtcp::{RtcpCompound, RtcpPacket};
use crate::core::rtp::twcc::TwccRecorder;
use crate::core::testing::{Harness, Peer};

/// Bytes per frame of each encoding at 30 fps: ~150 kbit/s, ~500 kbit/s, ~1.5 Mbit/s.
const FRAME_BYTES: [usize; 3] = [625, 2080, 6250];
const PACKET_BYTES: usize = 1050;
const STEP: Duration = Duration::from_millis(5);
const FRAME: Duration = Duration::from_micros(33_333);

struct Loop {
    h: Harness,
    publisher: Peer,
    sub: Peer,
    consumer: ConsumerId,
    senders: [EncodingSender; 3],
    /// Encodings whose next frame is a keyframe (asked for by a PLI, and the first).
    keyframe_due: [bool; 3],
    link: Link,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    recorder: TwccRecorder,
    recorded_rtp: usize,
    recorded_padding: usize,
    next_frame: Instant,
    next_feedback: Instant,
    start: Instant,
    plis_seen: usize,
    /// (time since start, spatial layer) at every change the worker reported.
    switches: Vec<(Duration, Option<u8>)>,
    notifications_seen: usize,
}

impl Loop {
    fn new(rate_bps: u64) -> Self {
        let (h, publisher, sub, consumer) = simulcast_call();
        assert!(
            consumer.rtp_parameters.header_extensions.iter().any(|e| e.uri.contains("transport-wide-cc")),
            "the consumer carries transport-wide sequence numbers"
        );
        let now = h.now;
        let senders =
            [0u16, 1, 2].map(|e| EncodingSender { seq: 1000 * (e + 1), picture_id: 100 * (e + 1), tl0: 0, frame: 0 });
        Self {
            h,
            publisher,
            sub,
            consumer: consumer.id,
            senders,
            keyframe_due: [true; 3],
            link: Link::new(rate_bps, Duration::from_millis(20)),
            in_flight: VecDeque::new(),
            recorder: TwccRecorder::new(0x5eed),
            recorded_rtp: 0,
            recorded_padding: 0,
            next_frame: now,
            next_feedback: now,
            start: now,
            plis_seen: 0,
            switches: Vec::new(),
            notifications_seen: 0,
        }
    }

    fn send_frames(&mut self) {
        for (e, s) in self.senders.iter_mut().enumerate() {
            let key = std::mem::take(&mut self.keyframe_due[e]);
            let packets = FRAME_BYTES[e].div_ceil(PACKET_BYTES);
            s.send_frame(&mut self.publisher, e, key, packets, Some(FRAME_BYTES[e] / packets));
        }
    }

    /// The publisher answers PLIs with a keyframe on that encoding.
    fn answer_keyframe_requests(&mut self) {
        let plis: Vec<u32> = self.publisher.rtcp[self.plis_seen..]
            .iter()
            .flat_map(|c| RtcpCompound::iter(c).flatten().collect::<Vec<_>>())
            .filter_map(|p| match p {
                RtcpPacket::Pli(pli) => Some(pli.media_ssrc),
                _ => None,
            })
            .collect();
        self.plis_seen = self.publisher.rtcp.len();
        for ssrc in plis {
            if let Some(e) = SSRCS.iter().position(|&s| s == ssrc) {
                self.keyframe_due[e] = true;
            }
        }
    }

    fn step(&mut self) {
        let now = self.h.now;
        if now >= self.next_frame {
            self.next_frame += FRAME;
            self.answer_keyframe_requests();
            self.send_frames();
        }
        for datagram in self.publisher.take_outgoing() {
            self.h.datagram(self.publisher.addr, &datagram);
        }
        if self.h.worker.poll_timeout().is_some_and(|t| t <= now) {
            self.h.worker.handle_timeout(now);
        }
        while let Some(t) = self.h.worker.poll_transmit() {
            if t.to == self.publisher.addr {
                self.publisher.receive(now, &t.buf);
            } else if t.to == self.sub.addr
                && let Some(arrival) = self.link.send(now, t.buf.len())
            {
                self.in_flight.push_back((arrival, t.buf.clone()));
            }
            self.h.worker.recycle(t.buf);
        }
        while self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            let (at, datagram) = self.in_flight.pop_front().unwrap();
            self.sub.receive(at, &datagram);
        }
        for p in &self.sub.rtp[self.recorded_rtp..] {
            if let Some(seq) = p.transport_cc {
                self.recorder.record(seq, now);
            }
        }
        for seq in self.sub.padding[self.recorded_padding..].iter().flatten() {
            self.recorder.record(*seq, now);
        }
        (self.recorded_rtp, self.recorded_padding) = (self.sub.rtp.len(), self.sub.padding.len());
        if now >= self.next_feedback {
            self.next_feedback = now + Duration::from_millis(100);
            let mut buf = vec![0u8; 1200];
            while let Some(n) = self.recorder.poll_feedback(now, SSRCS[0], &mut buf) {
                let packet = buf[..n].to_vec();
                self.sub.send_rtcp(|b| {
                    b[..n].copy_from_slice(&packet);
                    n
                });
            }
            for datagram in self.sub.take_outgoing() {
                self.h.datagram(self.sub.addr, &datagram);
            }
        }
        for n in &self.h.notifications[self.notifications_seen..] {
            if let Notification::Consumer(id, ConsumerNotification::LayersChanged(l)) = n
                && *id == self.consumer
            {
                self.switches.push((now - self.start, l.map(|l| l.spatial_layer)));
            }
        }
        self.notifications_seen = self.h.notifications.len();
        if std::env::var("ADAPTIVE_TRACE").is_ok() && (now - self.start).as_millis().is_multiple_of(250) {
            let t = self.h.worker.transports.get(&self.sub.transport).unwrap();
            let c = self.h.worker.consumers.get(&self.consumer).unwrap();
            let st = t.bwe.as_ref().unwrap().stats();
            eprintln!(
                "{:>6} est {:>8} delay {:>8} loss {:>8} acked {:?} usage {:?} target {:?} cur {:?} drops {} rate {} probes {}/{} pad {}",
                (now - self.start).as_millis(),
                st.estimate_bps,
                st.delay_based_bps,
                st.loss_based_bps,
                st.acked_bps,
                st.usage,
                c.layers.as_ref().unwrap().target,
                c.layers.as_ref().unwrap().current(),
                self.link.dropped,
                t.counters.send_rate.bitrate(now),
                st.probes_sent,
                st.probes_succeeded,
                self.sub.padding.len()
            );
        }
        self.h.now += STEP;
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.h.now + d;
        while self.h.now < end {
            self.step();
        }
    }

    fn elapsed(&self) -> Duration {
        self.h.now - self.start
    }

    fn spatial_now(&self) -> Option<u8> {
        self.switches.last().and_then(|(_, s)| *s)
    }
}

#[test]
fn a_cut_steps_the_subscriber_down_within_a_second_and_its_end_lets_it_climb_back() {
    let mut l = Loop::new(5_000_000);
    l.run_for(Duration::from_secs(8));
    assert_eq!(l.spatial_now(), Some(2), "on the top encoding with room to spare: {:?}", l.switches);
    // The cut: 400 kbit/s, room for the lowest encoding only.
    l.link.set_rate(400_000);
    let cut_at = l.elapsed();
    l.run_for(Duration::from_secs(8));
    let down = l.switches.iter().find(|(at, s)| *at >= cut_at && *s == Some(0)).map(|(at, _)| *at - cut_at);
    println!("switched to the lowest encoding {down:?} after the cut; switches {:?}", l.switches);
    assert!(down.is_some_and(|d| d <= Duration::from_millis(1000)), "down within 1 s of the cut: {down:?}");
    assert_eq!(l.spatial_now(), Some(0), "stays down while the cut lasts: {:?}", l.switches);
    let stats = l.h.worker.transports.get(&l.sub.transport).and_then(|t| t.bwe.as_ref()).map(|b| b.stats()).unwrap();
    println!("estimate during the cut: {} bit/s", stats.estimate_bps);
    assert!(stats.estimate_bps < 480_000, "the estimate follows the cut: {}", stats.estimate_bps);
    // The cut ends.
    l.link.set_rate(5_000_000);
    let end_at = l.elapsed();
    l.run_for(Duration::from_secs(15));
    let up = l.switches.iter().find(|(at, s)| *at >= end_at && *s == Some(2)).map(|(at, _)| *at - end_at);
    println!("back on the top encoding {up:?} after the cut ended");
    assert!(up.is_some(), "climbs back to the top: {:?}", l.switches);
    assert_eq!(l.spatial_now(), Some(2));
    // No flapping: a handful of switches in all, not one per update.
    assert!(l.switches.len() <= 10, "{:?}", l.switches);
    // The link dropped some packets at the cut (its queue overflowed): those are the only holes.
    let holes = holes_in(&l.sub.rtp);
    println!("holes {holes}, link drops {}", l.link.dropped);
    assert!(holes <= l.link.dropped as usize, "{holes} sequence holes, {} packets lost on the link", l.link.dropped);
}

/// Sequence numbers missing from what the subscriber received (never a step back or a repeat).
fn holes_in(rtp: &[crate::core::testing::Received]) -> usize {
    assert!(rtp.iter().all(|p| p.ssrc == rtp[0].ssrc), "one SSRC");
    rtp.windows(2)
        .map(|w| {
            let step = w[1].seq.wrapping_sub(w[0].seq) as i16;
            assert!(step > 0, "sequence went back or repeated: {} → {}", w[0].seq, w[1].seq);
            step as usize - 1
        })
        .sum()
}

#[test]
fn garbage_transport_cc_feedback_changes_nothing() {
    let mut l = Loop::new(5_000_000);
    l.run_for(Duration::from_secs(3));
    let before = l.h.worker.transports.get(&l.sub.transport).and_then(|t| t.bwe.as_ref()).map(|b| b.stats()).unwrap();
    let dropped_before = l.h.worker.transports.get(&l.sub.transport).unwrap().counters.packets_dropped;
    // Feedback about sequence numbers never sent, and malformed feedback.
    for i in 0..50u16 {
        l.sub.send_rtcp(|b| {
            // Base sequence 0xf0xx (never sent), 20 statuses in one run-length chunk.
            let fci = [0xf0, i as u8, 0, 20, 0, 0, 1, i as u8, 0x00, 20];
            crate::core::rtp::rtcp::write_transport_cc(b, 1, SSRCS[0], &fci).unwrap()
        });
        l.sub.send_rtcp(|b| crate::core::rtp::rtcp::write_transport_cc(b, 1, SSRCS[0], &[0xff; 3]).unwrap());
    }
    for datagram in l.sub.take_outgoing() {
        l.h.datagram(l.sub.addr, &datagram);
    }
    let after = l.h.worker.transports.get(&l.sub.transport).and_then(|t| t.bwe.as_ref()).map(|b| b.stats()).unwrap();
    assert_eq!(after.estimate_bps, before.estimate_bps);
    assert!(after.feedback_ignored > before.feedback_ignored, "counted as ignored");
    let dropped = l.h.worker.transports.get(&l.sub.transport).unwrap().counters.packets_dropped - dropped_before;
    assert_eq!(dropped, 50, "the malformed ones are counted drops");
    l.run_for(Duration::from_secs(2));
    assert_eq!(l.spatial_now(), Some(2), "media unharmed");
    assert_one_continuous_stream(&l.sub.rtp);
}

/// The retransmission storm of RELIABILITY.md's `tbf` case, in virtual time: behind a cut link a
/// receiver NACKs far more than the link can carry (here, its last 17 packets every 20 ms). The
/// worker keeps media and resends together within its estimate: what it sends the transport stays
/// near the estimate instead of a multiple of it, and the extra NACKs are counted as skipped.
#[test]
fn nacks_beyond_the_estimate_do_not_become_a_retransmission_storm() {
    let mut l = Loop::new(5_000_000);
    l.run_for(Duration::from_secs(8));
    l.link.set_rate(400_000);
    l.run_for(Duration::from_secs(4));
    assert_eq!(l.spatial_now(), Some(0), "on the lowest encoding behind the cut: {:?}", l.switches);
    let media_ssrc = l.sub.rtp.last().unwrap().ssrc;
    let sent_bytes = |l: &Loop| l.h.worker.transports.get(&l.sub.transport).unwrap().counters.bytes_sent;
    let (bytes_before, start) = (sent_bytes(&l), l.h.now);
    let window = Duration::from_secs(3);
    while l.h.now < start + window {
        let seqs: Vec<u16> = l.sub.rtp.iter().rev().filter(|p| p.ssrc == media_ssrc).take(17).map(|p| p.seq).collect();
        l.sub.send_rtcp(|b| crate::core::rtp::rtcp::write_nack(b, 1, media_ssrc, &seqs).unwrap());
        for datagram in l.sub.take_outgoing() {
            l.h.datagram(l.sub.addr, &datagram);
        }
        l.run_for(Duration::from_millis(20));
    }
    let sent_bps = (sent_bytes(&l) - bytes_before) * 8 / window.as_secs();
    let estimate = l.h.worker.transports.get(&l.sub.transport).and_then(|t| t.bwe.as_ref()).unwrap().estimate_bps();
    let c = l.h.worker.consumers.get(&l.consumer).unwrap();
    println!(
        "sent {sent_bps} bit/s against an estimate of {estimate}; resent {}, skipped {}",
        c.packets_retransmitted, c.retransmissions_skipped
    );
    assert!(c.packets_retransmitted > 0, "NACKs within the budget are still answered");
    assert!(c.retransmissions_skipped > c.packets_retransmitted, "most of the flood is not answered");
    // 17 NACKed packets of ~400 bytes every 20 ms would be 2.7 Mbit/s of resends alone.
    assert!(sent_bps < 520_000, "sent {sent_bps} bit/s behind a 400 kbit/s link (estimate {estimate})");
}
