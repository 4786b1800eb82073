//! Which NACKed packets a consumer resends. Answering every NACK is what turns a congested downlink
//! into a retransmission storm: the resends lengthen the bottleneck's queue, packets queued late are
//! NACKed again, and each answer makes the queue longer still (the `tbf` case of RELIABILITY.md:
//! four times the estimate sent, most of it retransmissions). So a packet is resent only when
//! - it is young enough to still be played: at most [`RTX_HORIZON`] of media time older than the
//!   newest packet sent (a jitter buffer has given up on anything older);
//! - it was not resent in the last round trip (the receiver NACKs again before an answer can
//!   have reached it; libwebrtc and mediasoup resend at most once per RTT too);
//! - the transport's send rate with it stays within the downlink estimate, when there is one: the
//!   estimate is the budget for media and retransmissions together. Resends always get at least
//!   [`RTX_MIN_SHARE`] of the estimate, though: when the lowest layer alone already fills the
//!   estimate, a rare loss must still be repaired rather than wait for a keyframe.
//!
//! Pure decisions on numbers given by the caller: no clock of its own.

use std::time::{Duration, Instant};

/// How much older (media time) than the newest packet sent a NACKed one may be.
pub const RTX_HORIZON: Duration = Duration::from_secs(1);
/// The round trip assumed before a receiver report gave one.
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// The share of the estimate (1 / this) resends may always use.
pub const RTX_MIN_SHARE: u64 = 10;
/// The least time between two resends of one packet, however short the round trip (loopback).
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(10);
/// Resends remembered per consumer (by sequence number modulo this). A resend forgotten because
/// another one took its slot can only allow one more resend, never block one.
const RESEND_SLOTS: usize = 128;

/// Why a NACKed packet was not resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    TooOld,
    ResentWithinRtt,
    OverBudget,
}

/// The resends of one consumer, made on its first NACK (most consumers never get one).
pub struct RtxGuard {
    resent: Box<[Option<(u16, Instant)>; RESEND_SLOTS]>,
}

impl Default for RtxGuard {
    fn default() -> Self {
        Self { resent: Box::new([None; RESEND_SLOTS]) }
    }
}

impl RtxGuard {
    /// Whether to resend `seq` now. `age_ticks`: how far (RTP clock ticks) the packet's timestamp
    /// is behind the newest sent; `send_bps`: what the transport sent over the last second,
    /// `rtx_bps` the resends among it; `estimate_bps`: its downlink estimate, if it has one;
    /// `bytes`: the resend's size.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        now: Instant,
        seq: u16,
        age_ticks: u32,
        clock_rate: u32,
        rtt: Option<Duration>,
        send_bps: u64,
        rtx_bps: u64,
        estimate_bps: Option<u64>,
        bytes: usize,
    ) -> Result<(), Skip> {
        let horizon = u64::from(clock_rate) * RTX_HORIZON.as_millis() as u64 / 1000;
        // A timestamp "ahead" of the newest (wrapped past half the range) is as old as it gets.
        if u64::from(age_ticks) > horizon {
            return Err(Skip::TooOld);
        }
        let interval = rtt.unwrap_or(DEFAULT_RTT).max(MIN_RESEND_INTERVAL);
        if let Some((s, at)) = self.resent[usize::from(seq) % RESEND_SLOTS]
            && s == seq
            && now.saturating_duration_since(at) < interval
        {
            return Err(Skip::ResentWithinRtt);
        }
        let bits = bytes as u64 * 8;
        if let Some(estimate) = estimate_bps
            && send_bps.saturating_add(bits) > estimate
            // The resends' own share is checked before this one (which may go over it), so even
            // at the lowest estimates a full-sized packet can be resent now and then.
            && rtx_bps >= estimate / RTX_MIN_SHARE
        {
            return Err(Skip::OverBudget);
        }
        Ok(())
    }

    pub fn resent(&mut self, now: Instant, seq: u16) {
        self.resent[usize::from(seq) % RESEND_SLOTS] = Some((seq, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Option<Duration> = Some(Duration::from_millis(200));

    fn check(g: &RtxGuard, now: Instant, seq: u16) -> Result<(), Skip> {
        g.check(now, seq, 9_000, 90_000, RTT, 500_000, 0, Some(1_000_000), 1200)
    }

    #[test]
    fn a_packet_is_resent_once_per_round_trip() {
        let t0 = Instant::now();
        let mut g = RtxGuard::default();
        assert_eq!(check(&g, t0, 7), Ok(()));
        g.resent(t0, 7);
        assert_eq!(check(&g, t0 + Duration::from_millis(150), 7), Err(Skip::ResentWithinRtt));
        // Others are not held back by it.
        assert_eq!(check(&g, t0 + Duration::from_millis(150), 8), Ok(()));
        assert_eq!(check(&g, t0 + Duration::from_millis(200), 7), Ok(()));
    }

    #[test]
    fn without_a_measured_rtt_the_default_applies_and_loopback_is_not_zero() {
        let t0 = Instant::now();
        let mut g = RtxGuard::default();
        g.resent(t0, 1);
        let at = |ms, rtt| g.check(t0 + Duration::from_millis(ms), 1, 0, 90_000, rtt, 0, 0, None, 100);
        assert_eq!(at(99, None), Err(Skip::ResentWithinRtt));
        assert_eq!(at(100, None), Ok(()));
        let loopback = Some(Duration::from_micros(300));
        assert_eq!(at(9, loopback), Err(Skip::ResentWithinRtt));
        assert_eq!(at(10, loopback), Ok(()));
    }

    #[test]
    fn a_slot_taken_by_another_sequence_number_allows_rather_than_blocks() {
        let t0 = Instant::now();
        let mut g = RtxGuard::default();
        g.resent(t0, 5);
        g.resent(t0, 5 + RESEND_SLOTS as u16);
        assert_eq!(check(&g, t0, 5), Ok(()));
        assert_eq!(check(&g, t0, 5 + RESEND_SLOTS as u16), Err(Skip::ResentWithinRtt));
    }

    #[test]
    fn packets_older_than_the_horizon_are_not_resent() {
        let g = RtxGuard::default();
        let now = Instant::now();
        let aged = |ticks, clock| g.check(now, 1, ticks, clock, RTT, 0, 0, None, 100);
        assert_eq!(aged(90_000, 90_000), Ok(()));
        assert_eq!(aged(90_001, 90_000), Err(Skip::TooOld));
        assert_eq!(aged(48_000, 48_000), Ok(()));
        assert_eq!(aged(48_001, 48_000), Err(Skip::TooOld));
        // A wrapped difference (a timestamp "ahead") is huge: too old.
        assert_eq!(aged(0u32.wrapping_sub(3000), 90_000), Err(Skip::TooOld));
    }

    #[test]
    fn the_estimate_is_the_budget_for_media_and_resends_together() {
        let g = RtxGuard::default();
        let now = Instant::now();
        let with = |send, rtx, estimate| g.check(now, 1, 0, 90_000, RTT, send, rtx, estimate, 1000);
        assert_eq!(with(40_000, 0, Some(50_000)), Ok(()));
        assert_eq!(with(42_001, 8_000, Some(50_000)), Err(Skip::OverBudget));
        // The storm of the tbf case: four times the estimate already going out, most of it resends.
        assert_eq!(with(197_000, 150_000, Some(50_000)), Err(Skip::OverBudget));
        // Media alone over the estimate: resends still get a tenth of it.
        assert_eq!(with(60_000, 0, Some(50_000)), Ok(()), "one 8-kbit resend, over the 5 kbit/s share");
        assert_eq!(with(60_000, 8_000, Some(50_000)), Err(Skip::OverBudget), "then no more this second");
        assert_eq!(with(600_000, 49_999, Some(500_000)), Ok(()));
        assert_eq!(with(600_000, 50_000, Some(500_000)), Err(Skip::OverBudget));
        // No estimate (the receiver sends no transport-cc): no budget to keep.
        assert_eq!(with(197_000, 150_000, None), Ok(()));
    }
}
