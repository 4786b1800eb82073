//! Hostile feedback: random bytes and mutated real feedback go through the real parser into the
//! estimator. Nothing panics; statuses for sequence numbers never sent move nothing and are counted.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::core::bwe::SendSideBwe;
use crate::core::rtp::twcc::{TwccRecorder, parse_twcc_packet};

/// The sender has sent seqs FIRST..FIRST+SENT.
const FIRST: u16 = 1000;
const SENT: u16 = 200;

fn is_known(seq: u16) -> bool {
    seq.wrapping_sub(FIRST) < SENT
}

/// An estimator that has sent `SENT` packets and heard one real feedback about them, and that
/// feedback's bytes.
fn established() -> (SendSideBwe, Instant, Vec<u8>) {
    let base = Instant::now();
    let mut bwe = SendSideBwe::new(500_000, 30_000, 10_000_000);
    let mut recorder = TwccRecorder::new(1);
    for i in 0..SENT {
        let at = base + Duration::from_millis(u64::from(i) * 2);
        bwe.on_packet_sent(at, FIRST.wrapping_add(i), 1200, None);
        recorder.record(FIRST.wrapping_add(i), at + Duration::from_millis(30));
    }
    let now = base + Duration::from_millis(500);
    let mut buf = [0u8; 1500];
    let len = recorder.poll_feedback(now, 2, &mut buf).expect("feedback due");
    let real = buf[..len].to_vec();
    let (_, _, feedback) = parse_twcc_packet(&real).expect("parses");
    bwe.on_feedback(now, &feedback);
    (bwe, now, real)
}

/// Feeds `bytes` if they parse; checks the invariants.
fn feed(bwe: &mut SendSideBwe, now: Instant, bytes: &[u8]) {
    let Ok((_, _, feedback)) = parse_twcc_packet(bytes) else { return };
    let before = bwe.stats();
    let any_known = feedback.packets().any(|p| is_known(p.seq));
    bwe.on_feedback(now, &feedback);
    let after = bwe.stats();
    if !any_known {
        assert_eq!(after.estimate_bps, before.estimate_bps, "unknown seqs moved the estimate");
        assert_eq!(after.feedback_ignored, before.feedback_ignored + 1);
        assert_eq!(after.packets_ignored, before.packets_ignored + u64::from(feedback.status_count));
    }
    let e = bwe.estimate_bps();
    assert!((30_000..=10_000_000).contains(&e), "estimate out of bounds: {e}");
}

/// An RTCP transport-cc header with a correct length around `fci` (padded to 4 bytes).
fn with_header(fci: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x8F, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
    packet.extend_from_slice(fci);
    while !packet.len().is_multiple_of(4) {
        packet.push(0);
    }
    let words = (packet.len() / 4 - 1) as u16;
    packet[2..4].copy_from_slice(&words.to_be_bytes());
    packet
}

#[test]
fn bwe_feedback_for_seqs_never_sent_is_ignored() {
    let (mut bwe, now, _) = established();
    let before = bwe.stats();
    // base seq 5000, 3 statuses, all received (run-length chunk of symbol 1), deltas 4 ticks.
    let fci = [0x13, 0x88, 0, 3, 0, 0, 9, 0, 0x20, 3, 4, 4, 4];
    feed(&mut bwe, now + Duration::from_millis(100), &with_header(&fci));
    let after = bwe.stats();
    assert_eq!(after.feedback_ignored, before.feedback_ignored + 1);
    assert_eq!(after.packets_ignored, before.packets_ignored + 3);
}

proptest! {
    #[test]
    fn bwe_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let (mut bwe, now, _) = established();
        feed(&mut bwe, now, &bytes);
    }

    #[test]
    fn bwe_random_fci_never_panics(fci in proptest::collection::vec(any::<u8>(), 8..160)) {
        let (mut bwe, now, _) = established();
        feed(&mut bwe, now, &with_header(&fci));
        feed(&mut bwe, now + Duration::from_millis(100), &with_header(&fci));
    }

    #[test]
    fn bwe_mutated_real_feedback_never_panics(
        mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        rounds in 1usize..4,
    ) {
        let (mut bwe, now, real) = established();
        let mut bytes = real.clone();
        for round in 0..rounds {
            for &(pos, value) in &mutations {
                let pos = pos % bytes.len();
                bytes[pos] ^= value;
            }
            feed(&mut bwe, now + Duration::from_millis(100 * round as u64), &bytes);
        }
    }
}
