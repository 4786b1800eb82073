//! A subscriber's view of one consumer: loss from RTP sequence numbers (readable without
//! decrypting), the time from `consume` to the first packet, and what a receiver report needs.

use std::time::Instant;

use octo_worker::core::rtp::rtcp::ReportBlock;

use super::send_stream::Kind;

pub struct RecvStream {
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub kind: Kind,
    pub consumed_at: Instant,
    pub first_packet_at: Option<Instant>,
    /// Extended sequence number of the first and highest packet seen.
    base: u64,
    highest: u64,
    pub received: u64,
    pub rtx_received: u64,
    /// For the RR's fraction lost: expected and received at the previous report.
    prior_expected: u64,
    prior_received: u64,
    pub pli_sent: bool,
    /// Sequence numbers found missing and not yet NACKed.
    pub missing: Vec<u16>,
}

/// Gaps wider than this are a restart or garbage, not loss to NACK.
const MAX_NACK_GAP: u64 = 64;

impl RecvStream {
    pub fn new(ssrc: u32, rtx_ssrc: Option<u32>, kind: Kind, consumed_at: Instant) -> Self {
        Self {
            ssrc,
            rtx_ssrc,
            kind,
            consumed_at,
            first_packet_at: None,
            base: 0,
            highest: 0,
            received: 0,
            rtx_received: 0,
            prior_expected: 0,
            prior_received: 0,
            pli_sent: false,
            missing: Vec::new(),
        }
    }

    /// Records a packet of the primary stream.
    pub fn on_packet(&mut self, now: Instant, seq: u16) {
        if self.first_packet_at.is_none() {
            self.first_packet_at = Some(now);
            // Start a little before the first packet so `highest` never sits below `base`.
            self.base = (1 << 16) + u64::from(seq);
            self.highest = self.base;
            self.received = 1;
            return;
        }
        self.received += 1;
        let ext = extend(self.highest, seq);
        if ext > self.highest {
            let gap = ext - self.highest - 1;
            if gap > 0 && gap <= MAX_NACK_GAP {
                self.missing.extend((self.highest + 1..ext).map(|s| s as u16));
            }
            self.highest = ext;
        }
    }

    pub fn expected(&self) -> u64 {
        if self.first_packet_at.is_some() { self.highest - self.base + 1 } else { 0 }
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// The report block for an RR, advancing the fraction-lost interval.
    pub fn report_block(&mut self) -> Option<ReportBlock> {
        self.first_packet_at?;
        let expected = self.expected();
        let interval_expected = expected - self.prior_expected;
        let interval_received = self.received.saturating_sub(self.prior_received);
        let interval_lost = interval_expected.saturating_sub(interval_received);
        self.prior_expected = expected;
        self.prior_received = self.received;
        let fraction_lost = (interval_lost << 8).checked_div(interval_expected).map_or(0, |f| f.min(255) as u8);
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().min(0x7f_ffff) as i32,
            extended_highest_seq: self.highest as u32,
            jitter: 0,
            last_sr: 0,
            delay_since_last_sr: 0,
        })
    }
}

/// The extended sequence number nearest to `highest` whose low 16 bits are `seq`.
fn extend(highest: u64, seq: u16) -> u64 {
    let candidate = (highest & !0xffff) | u64::from(seq);
    if candidate + 0x8000 < highest {
        candidate + 0x1_0000
    } else if candidate > highest + 0x8000 && candidate >= 0x1_0000 {
        candidate - 0x1_0000
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_across_a_wrap_and_nack_list() {
        let now = Instant::now();
        let mut s = RecvStream::new(1, None, Kind::Video, now);
        for seq in [65530u16, 65531, 65533, 65534, 65535, 0, 2, 1, 3] {
            s.on_packet(now, seq);
        }
        assert_eq!(s.expected(), 10);
        assert_eq!(s.received, 9);
        assert_eq!(s.lost(), 1);
        assert_eq!(s.missing, vec![65532, 1]);
        let rb = s.report_block().unwrap();
        assert_eq!(rb.extended_highest_seq as u64 & 0xffff, 3);
        assert_eq!(rb.cumulative_lost, 1);
        assert_eq!(rb.fraction_lost, 25);
    }

    #[test]
    fn no_report_before_the_first_packet() {
        let mut s = RecvStream::new(1, None, Kind::Audio, Instant::now());
        assert!(s.report_block().is_none());
        assert_eq!(s.lost(), 0);
    }
}
