//! Impairments between a str0m peer and the worker: seeded random loss, and dropping one chosen RTP
//! packet so a test can watch NACK and retransmission.
//!
//! SRTP leaves the RTP header in clear, so the SSRC and sequence number of a datagram can be read
//! on the wire (RFC 3711 §3.1) without the keys.

/// Seeded random loss of whole datagrams (xorshift64*: deterministic, no dependency).
#[derive(Debug, Clone)]
pub struct LossFilter {
    state: u64,
    /// Drop probability in parts per million.
    per_million: u32,
    pub dropped: u64,
    pub passed: u64,
}

impl LossFilter {
    pub fn none() -> Self {
        Self::new(1, 0.0)
    }

    /// Drops each datagram with probability `ratio` (0.0–1.0), the sequence fixed by `seed`.
    pub fn new(seed: u64, ratio: f64) -> Self {
        let per_million = (ratio.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
        // A zero state would stay zero forever.
        Self { state: seed | 1, per_million, dropped: 0, passed: 0 }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Whether the next datagram is lost; counts both outcomes.
    pub fn should_drop(&mut self) -> bool {
        if self.per_million == 0 {
            self.passed += 1;
            return false;
        }
        let lost = (self.next() % 1_000_000) < u64::from(self.per_million);
        if lost {
            self.dropped += 1;
        } else {
            self.passed += 1;
        }
        lost
    }
}

/// The clear-text identity of an RTP (not RTCP) datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpId {
    pub ssrc: u32,
    pub seq: u16,
    pub payload_type: u8,
}

/// Reads SSRC, sequence number and payload type of an (S)RTP datagram; `None` for anything else,
/// including RTCP (RFC 5761 §4: packet types 192–223 in the second byte).
pub fn rtp_id(datagram: &[u8]) -> Option<RtpId> {
    let (&first, &second) = (datagram.first()?, datagram.get(1)?);
    if !(128..=191).contains(&first) || (192..=223).contains(&second) {
        return None;
    }
    let seq = u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]);
    let ssrc = u32::from_be_bytes(datagram.get(8..12)?.try_into().ok()?);
    Some(RtpId { ssrc, seq, payload_type: second & 0x7f })
}

/// Which RTP datagram of an SSRC [`DropOneRtp`] drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The `n`th (0-based) seen.
    Nth(u32),
    /// The first with this sequence number.
    Seq(u16),
}

/// Drops one chosen RTP datagram of `ssrc`, once.
#[derive(Debug, Clone)]
pub struct DropOneRtp {
    pub ssrc: u32,
    pub which: Which,
    seen: u32,
    /// The sequence number of the dropped packet, once it happened.
    pub dropped: Option<u16>,
}

impl DropOneRtp {
    /// Drops the `nth` (0-based) RTP datagram of `ssrc`.
    pub fn new(ssrc: u32, nth: u32) -> Self {
        Self { ssrc, which: Which::Nth(nth), seen: 0, dropped: None }
    }

    /// Drops the RTP datagram of `ssrc` with sequence number `seq`.
    pub fn seq(ssrc: u32, seq: u16) -> Self {
        Self { ssrc, which: Which::Seq(seq), seen: 0, dropped: None }
    }

    fn should_drop(&mut self, datagram: &[u8]) -> bool {
        if self.dropped.is_some() {
            return false;
        }
        match rtp_id(datagram) {
            Some(id) if id.ssrc == self.ssrc => {
                let hit = match self.which {
                    Which::Nth(n) => self.seen == n,
                    Which::Seq(seq) => id.seq == seq,
                };
                self.seen = self.seen.saturating_add(1);
                if hit {
                    self.dropped = Some(id.seq);
                }
                hit
            }
            _ => false,
        }
    }
}

/// Everything that may happen to a peer's datagrams on the way to or from the worker.
#[derive(Debug, Clone)]
pub struct Impairment {
    /// Worker → peer.
    pub inbound: LossFilter,
    /// Peer → worker.
    pub outbound: LossFilter,
    /// One chosen RTP packet lost on the way to the peer.
    pub drop_inbound_rtp: Option<DropOneRtp>,
    /// One chosen RTP packet lost on the way to the worker.
    pub drop_outbound_rtp: Option<DropOneRtp>,
    /// Every RTP packet lost on purpose (either way), for diagnosing what a receiver misses.
    pub dropped_rtp: Vec<RtpId>,
}

impl Default for Impairment {
    fn default() -> Self {
        Self {
            inbound: LossFilter::none(),
            outbound: LossFilter::none(),
            drop_inbound_rtp: None,
            drop_outbound_rtp: None,
            dropped_rtp: Vec::new(),
        }
    }
}

impl Impairment {
    /// The same random loss ratio both ways, with independent seeded sequences.
    pub fn lossy(seed: u64, ratio: f64) -> Self {
        Self {
            inbound: LossFilter::new(seed, ratio),
            outbound: LossFilter::new(seed.wrapping_mul(31).wrapping_add(7), ratio),
            drop_inbound_rtp: None,
            drop_outbound_rtp: None,
            dropped_rtp: Vec::new(),
        }
    }

    pub fn drop_inbound(&mut self, datagram: &[u8]) -> bool {
        let targeted = self.drop_inbound_rtp.as_mut().is_some_and(|d| d.should_drop(datagram));
        // The random filter draws for every datagram so its sequence does not depend on the target.
        let dropped = self.inbound.should_drop() || targeted;
        if dropped {
            self.dropped_rtp.extend(rtp_id(datagram));
        }
        dropped
    }

    pub fn drop_outbound(&mut self, datagram: &[u8]) -> bool {
        let targeted = self.drop_outbound_rtp.as_mut().is_some_and(|d| d.should_drop(datagram));
        let dropped = self.outbound.should_drop() || targeted;
        if dropped {
            self.dropped_rtp.extend(rtp_id(datagram));
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_ratio_is_roughly_honoured_and_seeded() {
        let mut a = LossFilter::new(42, 0.05);
        let mut b = LossFilter::new(42, 0.05);
        let seq_a: Vec<bool> = (0..20_000).map(|_| a.should_drop()).collect();
        let seq_b: Vec<bool> = (0..20_000).map(|_| b.should_drop()).collect();
        assert_eq!(seq_a, seq_b);
        assert!((800..1200).contains(&a.dropped), "{}", a.dropped);
        assert_eq!(a.dropped + a.passed, 20_000);
        let mut none = LossFilter::none();
        assert!((0..1000).all(|_| !none.should_drop()));
        let mut all = LossFilter::new(3, 1.0);
        assert!((0..1000).all(|_| all.should_drop()));
    }

    #[test]
    fn rtp_ids_are_read_in_clear_and_rtcp_is_not_rtp() {
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        rtp[1] = 0x80 | 101;
        rtp[2..4].copy_from_slice(&4660u16.to_be_bytes());
        rtp[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(rtp_id(&rtp), Some(RtpId { ssrc: 0xdead_beef, seq: 4660, payload_type: 101 }));
        let mut rtcp = rtp;
        rtcp[1] = 201; // RR
        assert_eq!(rtp_id(&rtcp), None);
        assert_eq!(rtp_id(&rtp[..11]), None);
        assert_eq!(rtp_id(&[]), None);
        assert_eq!(rtp_id(&[0x16, 0xfe, 0xfd]), None); // DTLS
        let mut drop = DropOneRtp::new(0xdead_beef, 1);
        assert!(!drop.should_drop(&rtp));
        assert!(drop.should_drop(&rtp));
        assert!(!drop.should_drop(&rtp));
        assert_eq!(drop.dropped, Some(4660));
        let mut by_seq = DropOneRtp::seq(0xdead_beef, 4661);
        assert!(!by_seq.should_drop(&rtp));
        rtp[2..4].copy_from_slice(&4661u16.to_be_bytes());
        assert!(by_seq.should_drop(&rtp));
        assert!(!by_seq.should_drop(&rtp));
    }
}
