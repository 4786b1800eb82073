//! Frame gathering: with a hold set, the fan-out waits for a video frame's last packet (its marker
//! bit) or the hold, whichever comes first, and then forwards the whole frame at once.

use std::time::Duration;

use crate::core::testing::{Harness, Peer, vp8_payload};

const VP8_PT: u8 = 96;
const MARKER: u8 = 0x80;
const VIDEO_SSRC: u32 = 1111;
const HOLD: Duration = Duration::from_millis(1);

/// A publisher's VP8 producer and one subscriber's resumed consumer; gathering at `hold`.
fn call(hold: Option<Duration>) -> (Harness, Peer, Peer) {
    let mut h = Harness::new();
    let (publisher, sub) = h.video_call();
    h.worker.set_frame_gathering(hold);
    (h, publisher, sub)
}

/// Hands the worker one video packet from `publisher` without taking anything out of it.
fn arrive(h: &mut Harness, publisher: &mut Peer, seq: u16, last_of_frame: bool) {
    let pt = if last_of_frame { VP8_PT | MARKER } else { VP8_PT };
    publisher.send_rtp(pt, VIDEO_SSRC, seq, 3000, &vp8_payload(seq == 1, seq as u8));
    h.deliver(publisher);
}

#[test]
fn a_frame_waits_for_its_last_packet_and_then_leaves_whole() {
    let (mut h, mut publisher, mut sub) = call(Some(HOLD));
    let start = h.now;
    arrive(&mut h, &mut publisher, 1, false);
    arrive(&mut h, &mut publisher, 2, false);
    assert!(h.worker.holds_fan_out(h.now), "an open frame is held");
    assert_eq!(h.worker.gather_deadline(), Some(start + HOLD));
    arrive(&mut h, &mut publisher, 3, true);
    assert!(!h.worker.holds_fan_out(h.now), "the marker ends the hold");
    assert_eq!(h.worker.gather_deadline(), None);
    h.pump(&mut [&mut publisher, &mut sub]);
    let seqs: Vec<u16> = sub.rtp.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 3, "the whole frame: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "in order, without a gap: {seqs:?}");
    // The next frame is held anew.
    arrive(&mut h, &mut publisher, 4, false);
    assert!(h.worker.holds_fan_out(h.now));
}

#[test]
fn a_frame_whose_last_packet_is_lost_waits_no_longer_than_the_hold() {
    let (mut h, mut publisher, _sub) = call(Some(HOLD));
    arrive(&mut h, &mut publisher, 1, false);
    let deadline = h.worker.gather_deadline().expect("a deadline");
    assert!(h.worker.holds_fan_out(deadline - Duration::from_micros(1)));
    assert!(!h.worker.holds_fan_out(deadline), "held past the hold");
}

#[test]
fn a_long_frame_is_fanned_out_before_it_ends() {
    let (mut h, mut publisher, _sub) = call(Some(Duration::from_secs(1)));
    for seq in 1..=63 {
        arrive(&mut h, &mut publisher, seq, false);
    }
    assert!(h.worker.holds_fan_out(h.now), "63 packets still wait");
    arrive(&mut h, &mut publisher, 64, false);
    assert!(!h.worker.holds_fan_out(h.now), "64 packets no longer wait: the transmit queue stays bounded");
}

#[test]
fn without_a_hold_nothing_waits() {
    for hold in [None, Some(Duration::ZERO)] {
        let (mut h, mut publisher, _sub) = call(hold);
        arrive(&mut h, &mut publisher, 1, false);
        assert!(!h.worker.holds_fan_out(h.now), "{hold:?}");
        assert_eq!(h.worker.gather_deadline(), None, "{hold:?}");
    }
}
