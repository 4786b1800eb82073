//! The downlink (send-side) bandwidth estimator of one WebRtcTransport, GCC-style
//! (draft-ietf-rmcat-gcc-02 with transport-wide feedback), and the layer allocator that spends its
//! estimate.
//!
//! Sans-IO: the transport tells it what it sent ([`SendSideBwe::on_packet_sent`]) and what the
//! remote reported ([`SendSideBwe::on_feedback`]), time passed in; it answers with an estimate and
//! with probe clusters to send ([`SendSideBwe::poll_probe`]). Nothing is allocated per packet.
//!
//! ```text
//! on_packet_sent ─▶ send_history ◀── on_feedback (seq, arrival)
//!                        │ send time, size, cluster
//!        ┌───────────────┼───────────────┬──────────────┐
//!   delay_based      loss_based     acked_bitrate   probe_result
//!  (inter_arrival,   (loss windows)  (500 ms, rx      (cluster rates)
//!   trendline, aimd)                  clock)               │
//!        └─────── min ───┘                                 ▼
//!                  └──── clamp [min, max] ◀── raise ── probe (when to probe)
//! ```

mod acked_bitrate;
mod aimd;
pub mod allocator;
mod delay_based;
mod inter_arrival;
mod loss_based;
mod probe;
mod probe_result;
mod send_history;
#[cfg(test)]
pub(crate) mod tests;
mod trendline;

use std::time::{Duration, Instant};

use crate::core::rtp::twcc::TwccFeedback;

use acked_bitrate::AckedBitrate;
#[cfg(doc)]
use aimd::Aimd;
pub use aimd::RateState;
use delay_based::DelayBased;
use loss_based::LossBased;
pub use probe::ProbeCluster;
use probe::ProbeController;
use probe_result::ProbeTracker;
use send_history::{Reported, SendHistory};
pub use trendline::BandwidthUsage;

/// A probe result raises the estimate to this fraction of the measured rate. The measurement is a
/// 30 ms burst's receive rate: with the cluster sent above capacity it is the bottleneck's rate
/// (plus whatever queue and cross-traffic gaps let through in a burst), so running media at the full
/// measured rate would build a queue at once. 10 % below leaves the headroom GCC's own decrease
/// (to 0.85 × acked) aims for, and the additive increase takes it from there.
pub(crate) const PROBE_RESULT_FACTOR: f64 = 0.9;
/// A probe "found" capacity (and the next may come soon) only if it raised the estimate by this
/// much. Near capacity a probe measures the link and raises the estimate by a few percent at best;
/// calling that a success would keep probing every second, and each burst costs a queue.
const PROBE_FOUND_FACTOR: f64 = 1.1;
/// Acknowledged below this fraction of the estimate, the sender is application-limited.
const APP_LIMITED_FRACTION: f64 = 0.8;
/// The reference time is 24 bits of 64 ms units.
const REFERENCE_TIME_MODULUS: i64 = 1 << 24;
const REFERENCE_UNIT_US: i64 = 64_000;
/// RTT assumed until feedback measures one.
const INITIAL_RTT_US: i64 = 100_000;
/// After a probe cluster resolved, its queue may still be in the detector's window (20 groups, a
/// feedback interval): overuse holds rather than decreases for this long.
const PROBE_GUARD_US: i64 = 200_000;

/// Counters and the current figures, for stats and debugging.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweStats {
    pub estimate_bps: u64,
    pub delay_based_bps: u64,
    pub loss_based_bps: u64,
    /// What the remote reported received over the last 500 ms of its clock.
    pub acked_bps: Option<u64>,
    /// Loss fraction of the last complete loss window (at least 20 packets).
    pub loss_fraction: f64,
    /// Send to feedback of the newest reported packet, smoothed (includes the feedback interval).
    pub rtt: Duration,
    pub usage: BandwidthUsage,
    pub state: RateState,
    pub probes_sent: u64,
    /// Probes whose result raised the estimate by at least 10 %.
    pub probes_succeeded: u64,
    pub feedback_received: u64,
    /// Feedback that matched no packet in the send history (never sent, or long forgotten).
    pub feedback_ignored: u64,
    /// Statuses for packets the history does not know.
    pub packets_ignored: u64,
}

/// The send-side estimator of one transport.
#[derive(Debug)]
pub struct SendSideBwe {
    min_bps: u64,
    max_bps: u64,
    epoch: Option<Instant>,
    history: SendHistory,
    delay: DelayBased,
    loss: LossBased,
    acked: AckedBitrate,
    prober: ProbeController,
    tracker: ProbeTracker,
    /// Unwrapped reference time (64 ms units) of the last accepted feedback.
    reference: Option<(u32, i64)>,
    rtt_us: i64,
    /// Until then, overuse may be a probe's own burst (see [`Aimd::update`]).
    probe_guard_until_us: i64,
    estimate_bps: u64,
    stats: BweStats,
}

impl SendSideBwe {
    /// `initial_bps` is clamped to `[min_bps, max_bps]`.
    pub fn new(initial_bps: u64, min_bps: u64, max_bps: u64) -> Self {
        let max_bps = max_bps.max(min_bps);
        let initial = initial_bps.clamp(min_bps, max_bps);
        Self {
            min_bps,
            max_bps,
            epoch: None,
            history: SendHistory::new(),
            delay: DelayBased::new(initial as f64, min_bps as f64, max_bps as f64),
            loss: LossBased::new(max_bps as f64),
            acked: AckedBitrate::new(),
            prober: ProbeController::new(max_bps),
            tracker: ProbeTracker::new(),
            reference: None,
            rtt_us: INITIAL_RTT_US,
            probe_guard_until_us: 0,
            estimate_bps: initial,
            stats: BweStats {
                estimate_bps: initial,
                delay_based_bps: initial,
                loss_based_bps: max_bps,
                acked_bps: None,
                loss_fraction: 0.0,
                rtt: Duration::from_micros(INITIAL_RTT_US as u64),
                usage: BandwidthUsage::Normal,
                state: RateState::Hold,
                probes_sent: 0,
                probes_succeeded: 0,
                feedback_received: 0,
                feedback_ignored: 0,
                packets_ignored: 0,
            },
        }
    }

    /// The estimate: min(delay-based, loss-based), clamped to `[min, max]`.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps
    }

    pub fn stats(&self) -> BweStats {
        self.stats
    }

    /// What the allocator would spend if it could (the current layers plus the next ones up).
    /// Probes are sent only while this is above the estimate.
    pub fn set_desired_bitrate(&mut self, bps: u64) {
        self.prober.set_desired(bps);
    }

    /// A packet carrying transport-wide sequence number `twcc_seq` left, `size` bytes on the wire
    /// (what the bottleneck carries). `probe` is the cluster id for padding sent for a probe.
    pub fn on_packet_sent(&mut self, now: Instant, twcc_seq: u16, size: usize, probe: Option<u32>) {
        let send_us = self.time_us(now);
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let cluster = self.tracker.on_sent(probe, size, send_us);
        self.history.on_sent(twcc_seq, send_us, size, cluster);
    }

    /// The sender is about to send a burst of its own making (a keyframe of a layer just switched
    /// to): the queue it builds for the next `duration` reads as overuse that says nothing about the
    /// path, so overuse holds rather than decreases meanwhile (as during a probe). Loss still counts.
    pub fn expect_burst(&mut self, now: Instant, duration: Duration) {
        let until = self.time_us(now).saturating_add(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX));
        self.probe_guard_until_us = self.probe_guard_until_us.max(until);
    }

    /// The next probe cluster to send, if one is due. Call it regularly (every few ms when
    /// sending, at least after each feedback).
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeCluster> {
        let now_us = self.time_us(now);
        self.resolve_probes(now_us);
        // No periodic probe while overusing, nor while the estimate sits at the capacity the
        // controller converged on (see `Aimd::near_capacity`).
        // Unless the media is far below the estimate (a consumer stepped down, a sender slowed):
        // then the additive increase never tests anything, and only a probe can show that the
        // capacity came back.
        let app_limited =
            self.stats.acked_bps.is_some_and(|a| (a as f64) < APP_LIMITED_FRACTION * self.estimate_bps as f64);
        let hold = self.delay.usage() == BandwidthUsage::Overusing || (self.delay.near_capacity() && !app_limited);
        let cluster = self.prober.poll(now_us, self.estimate_bps, hold)?;
        self.tracker.on_created(&cluster, now_us);
        self.stats.probes_sent += 1;
        Some(cluster)
    }

    /// A transport-cc feedback from the remote (parsed with `parse_twcc_packet`). Statuses for
    /// sequence numbers never sent, or forgotten, are ignored; a feedback with none we know changes
    /// nothing at all.
    pub fn on_feedback(&mut self, now: Instant, feedback: &TwccFeedback<'_>) {
        let now_us = self.time_us(now);
        self.stats.feedback_received += 1;
        // Only commit the clock unwrap once the feedback proved to be about our packets: garbage
        // must not shift the receiver's clock under the real feedback that follows.
        let unwrapped_reference = self.unwrap_reference(feedback.reference_time);
        let offset_us = (unwrapped_reference - i64::from(feedback.reference_time)).saturating_mul(REFERENCE_UNIT_US);
        let (mut known, mut lost, mut received) = (0u32, 0u32, 0u32);
        let mut newest_send_us = None;
        for status in feedback.packets() {
            let Some(packet) = self.history.get_mut(status.seq) else {
                self.stats.packets_ignored += 1;
                continue;
            };
            known += 1;
            let first_report = packet.reported == Reported::Not;
            match status.arrival_us {
                None => {
                    if first_report {
                        packet.reported = Reported::Lost;
                        lost += 1;
                        if let Some(cluster) = packet.cluster {
                            self.tracker.on_reported(cluster, packet.size, None);
                        }
                    }
                }
                Some(arrival) => {
                    if packet.reported == Reported::Received {
                        continue; // reported again (a late packet re-opened the range)
                    }
                    packet.reported = Reported::Received;
                    let arrival_us = arrival.saturating_add(offset_us);
                    if first_report {
                        received += 1;
                        if let Some(cluster) = packet.cluster {
                            self.tracker.on_reported(cluster, packet.size, Some(arrival_us));
                        }
                    }
                    self.delay.on_packet(packet.send_us, arrival_us);
                    self.acked.on_packet(arrival_us, packet.size);
                    newest_send_us = Some(newest_send_us.unwrap_or(i64::MIN).max(packet.send_us));
                }
            }
        }
        if known == 0 {
            self.stats.feedback_ignored += 1;
            return;
        }
        self.reference = Some((feedback.reference_time, unwrapped_reference));
        if let Some(send_us) = newest_send_us {
            let sample = (now_us - send_us).clamp(0, 10_000_000);
            self.rtt_us = (7 * self.rtt_us + sample) / 8;
        }
        let acked = self.acked.rate_bps();
        let probing = self.tracker.any_in_flight() || now_us < self.probe_guard_until_us;
        self.delay.update(acked, now_us, self.rtt_us, probing);
        self.loss.on_feedback(lost, lost + received, self.estimate_bps as f64, now_us);
        self.resolve_probes(now_us);
        self.combine(now_us);
        self.stats.acked_bps = acked.map(|a| a as u64);
    }

    fn resolve_probes(&mut self, now_us: i64) {
        while let Some((_, rate)) = self.tracker.poll_result(now_us) {
            self.probe_guard_until_us = now_us.saturating_add(PROBE_GUARD_US);
            let before = self.estimate_bps as f64;
            let raised_to = rate.map(|r| r * PROBE_RESULT_FACTOR).filter(|&r| r > before);
            if let Some(bps) = raised_to {
                self.delay.set_rate(bps);
                self.loss.raise_to(bps);
                self.combine(now_us);
            }
            let found = raised_to.is_some_and(|bps| bps >= before * PROBE_FOUND_FACTOR);
            if found {
                self.stats.probes_succeeded += 1;
            }
            self.prober.on_result(now_us, found);
        }
    }

    fn combine(&mut self, now_us: i64) {
        let estimate = self.delay.rate_bps().min(self.loss.bound_bps());
        self.estimate_bps = (estimate.max(0.0) as u64).clamp(self.min_bps, self.max_bps);
        self.prober.on_estimate(now_us, self.estimate_bps as f64);
        self.stats.estimate_bps = self.estimate_bps;
        self.stats.delay_based_bps = self.delay.rate_bps() as u64;
        self.stats.loss_based_bps = self.loss.bound_bps() as u64;
        self.stats.loss_fraction = self.loss.loss_fraction();
        self.stats.rtt = Duration::from_micros(self.rtt_us.max(0) as u64);
        self.stats.usage = self.delay.usage();
        self.stats.state = self.delay.state();
    }

    /// Unwraps a 24-bit reference time against the last accepted one (without committing it).
    fn unwrap_reference(&self, reference_time: u32) -> i64 {
        let Some((last, last_unwrapped)) = self.reference else {
            return i64::from(reference_time);
        };
        let mut diff = (i64::from(reference_time) - i64::from(last)).rem_euclid(REFERENCE_TIME_MODULUS);
        if diff >= REFERENCE_TIME_MODULUS / 2 {
            diff -= REFERENCE_TIME_MODULUS;
        }
        last_unwrapped.saturating_add(diff)
    }

    /// Microseconds since the first instant this estimator saw (earlier instants count as 0).
    fn time_us(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn bwe_reference_time_unwraps_across_24_bits() {
        let mut bwe = SendSideBwe::new(300_000, 30_000, 10_000_000);
        assert_eq!(bwe.unwrap_reference(5), 5, "first feedback: as is");
        bwe.reference = Some((0xFF_FFFE, 0xFF_FFFE));
        assert_eq!(bwe.unwrap_reference(1), 0x100_0001, "forwards over the wrap");
        bwe.reference = Some((1, 0x100_0001));
        assert_eq!(bwe.unwrap_reference(0xFF_FFFF), 0xFF_FFFF, "a late feedback from before the wrap");
    }

    #[test]
    fn bwe_initial_estimate_is_clamped() {
        assert_eq!(SendSideBwe::new(10, 30_000, 10_000_000).estimate_bps(), 30_000);
        assert_eq!(SendSideBwe::new(u64::MAX, 30_000, 10_000_000).estimate_bps(), 10_000_000);
    }
}
