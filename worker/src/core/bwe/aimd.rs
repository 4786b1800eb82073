//! The delay-based rate controller: additive-increase / multiplicative-decrease driven by the
//! detector's signal (GCC §5.5 state machine, with libwebrtc's near/far increase).
//!
//! Far from the last known capacity the rate grows multiplicatively (8 %/s) so that it finds a new
//! link quickly; near it (the acknowledged rate is within three standard deviations of the rates
//! seen at past decreases) it grows by about one packet per response time so that it lingers below
//! the point where the queue builds. On overuse it drops to 0.85 × what actually got through.

/// Multiplicative increase per second far from convergence.
const MULTIPLICATIVE_PER_SECOND: f64 = 1.08;
/// Decrease factor applied to the acknowledged rate on overuse.
const BETA: f64 = 0.85;
/// The additive increase assumes packets of this size.
const PACKET_BITS: f64 = 1200.0 * 8.0;
/// A response time is the RTT plus this (the feedback interval and the encoder's reaction).
const RESPONSE_EXTRA_US: i64 = 100_000;
/// Never let the estimate run ahead of what the sender actually sends by more than this: an
/// estimate that was never tested is not an estimate (GCC: A < 1.5 R).
const MAX_AHEAD_OF_ACKED: f64 = 1.5;
const MAX_AHEAD_SLACK_BPS: f64 = 10_000.0;
/// Smoothing of the capacity seen at decreases.
const CAPACITY_ALPHA: f64 = 0.05;

/// The controller's state (GCC §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateState {
    #[default]
    Hold,
    Increase,
    Decrease,
}

use super::trendline::BandwidthUsage;

/// Running mean and normalised variance of the acknowledged rate at decreases, in kbit/s (the
/// variance bounds are meaningful on that scale).
#[derive(Debug, Default)]
struct LinkCapacity {
    mean_kbps: Option<f64>,
    var: f64,
}

impl LinkCapacity {
    fn update(&mut self, sample_bps: f64) {
        let x = sample_bps / 1000.0;
        let mean = match self.mean_kbps {
            None => x,
            Some(mean) => (1.0 - CAPACITY_ALPHA) * mean + CAPACITY_ALPHA * x,
        };
        let norm = mean.max(1.0);
        self.var = ((1.0 - CAPACITY_ALPHA) * self.var + CAPACITY_ALPHA * (mean - x).powi(2) / norm).clamp(0.4, 2.5);
        self.mean_kbps = Some(mean);
    }

    fn deviation_kbps(&self, mean: f64) -> f64 {
        (self.var * mean.max(1.0)).sqrt()
    }

    fn upper_bps(&self) -> Option<f64> {
        self.mean_kbps.map(|m| (m + 3.0 * self.deviation_kbps(m)) * 1000.0)
    }

    fn lower_bps(&self) -> Option<f64> {
        self.mean_kbps.map(|m| (m - 3.0 * self.deviation_kbps(m)) * 1000.0)
    }

    fn estimate_bps(&self) -> Option<f64> {
        self.mean_kbps.map(|m| m * 1000.0)
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[derive(Debug)]
pub(super) struct Aimd {
    rate_bps: f64,
    min_bps: f64,
    max_bps: f64,
    state: RateState,
    last_update_us: Option<i64>,
    last_decrease_us: Option<i64>,
    capacity: LinkCapacity,
}

impl Aimd {
    pub fn new(initial_bps: f64, min_bps: f64, max_bps: f64) -> Self {
        Self {
            rate_bps: initial_bps,
            min_bps,
            max_bps,
            state: RateState::Hold,
            last_update_us: None,
            last_decrease_us: None,
            capacity: LinkCapacity::default(),
        }
    }

    pub fn rate_bps(&self) -> f64 {
        self.rate_bps
    }

    pub fn state(&self) -> RateState {
        self.state
    }

    /// Whether the rate sits at the capacity measured at past decreases (within its 3σ band).
    /// There the additive increase is the probe; a burst at 2× would only build a queue.
    pub fn near_capacity(&self) -> bool {
        match (self.capacity.lower_bps(), self.capacity.upper_bps()) {
            (Some(lower), Some(upper)) => self.rate_bps >= BETA * lower && self.rate_bps <= upper,
            _ => false,
        }
    }

    /// A probe measured the path: jump there, and forget the old capacity (the link changed).
    pub fn set_rate(&mut self, bps: f64) {
        self.rate_bps = bps.clamp(self.min_bps, self.max_bps);
        self.capacity.reset();
    }

    /// One step per feedback. `acked_bps` is the acknowledged rate, `rtt_us` the round trip.
    /// `probing`: a probe cluster's own burst may be what the detector sees; overuse then holds.
    pub fn update(
        &mut self,
        usage: BandwidthUsage,
        acked_bps: Option<f64>,
        now_us: i64,
        rtt_us: i64,
        probing: bool,
    ) -> f64 {
        let dt_us = self.last_update_us.map_or(0, |last| (now_us - last).clamp(0, 1_000_000));
        self.last_update_us = Some(now_us);
        self.state = match (usage, self.state) {
            (BandwidthUsage::Overusing, _) if probing => RateState::Hold,
            (BandwidthUsage::Overusing, _) => RateState::Decrease,
            (BandwidthUsage::Underusing, _) => RateState::Hold,
            // A queue that stopped growing right after a decrease is still draining: hold once.
            (BandwidthUsage::Normal, RateState::Decrease) => RateState::Hold,
            (BandwidthUsage::Normal, _) => RateState::Increase,
        };
        match self.state {
            RateState::Hold => {}
            RateState::Increase => self.increase(acked_bps, dt_us, rtt_us),
            RateState::Decrease => self.decrease(acked_bps, now_us, rtt_us),
        }
        self.rate_bps = self.rate_bps.clamp(self.min_bps, self.max_bps);
        self.rate_bps
    }

    fn increase(&mut self, acked_bps: Option<f64>, dt_us: i64, rtt_us: i64) {
        if let (Some(acked), Some(upper)) = (acked_bps, self.capacity.upper_bps())
            && acked > upper
        {
            // Well above anything seen at a decrease: the link got faster, search again.
            self.capacity.reset();
        }
        let dt_s = dt_us as f64 / 1e6;
        let increment = if self.capacity.estimate_bps().is_some() {
            let response_s = (rtt_us + RESPONSE_EXTRA_US) as f64 / 1e6;
            (PACKET_BITS / response_s * dt_s).max(1000.0 * dt_s)
        } else {
            (self.rate_bps * (MULTIPLICATIVE_PER_SECOND.powf(dt_s) - 1.0)).max(1000.0 * dt_s)
        };
        let mut next = self.rate_bps + increment;
        if let Some(acked) = acked_bps {
            let limit = MAX_AHEAD_OF_ACKED * acked + MAX_AHEAD_SLACK_BPS;
            // Never lower the rate here: an app-limited sender is not a congested one.
            next = next.min(limit.max(self.rate_bps));
        }
        self.rate_bps = next;
    }

    fn decrease(&mut self, acked_bps: Option<f64>, now_us: i64, rtt_us: i64) {
        let Some(acked) = acked_bps else {
            // Nothing acknowledged yet: the best we can do is back off.
            if self.may_decrease(now_us, rtt_us, None) {
                self.rate_bps *= BETA;
                self.last_decrease_us = Some(now_us);
            }
            return;
        };
        if !self.may_decrease(now_us, rtt_us, Some(acked)) {
            return;
        }
        let mut next = BETA * acked;
        if next > self.rate_bps {
            // Acked above our own rate (a probe went through): fall back on the capacity instead.
            next = self.capacity.estimate_bps().map_or(self.rate_bps, |c| BETA * c);
        }
        if self.capacity.lower_bps().is_some_and(|lower| acked < lower) {
            self.capacity.reset();
        }
        self.capacity.update(acked);
        self.rate_bps = next.min(self.rate_bps);
        self.last_decrease_us = Some(now_us);
    }

    /// One decrease per round trip (the previous one has not had time to show), unless the rate is
    /// still more than twice what gets through.
    fn may_decrease(&self, now_us: i64, rtt_us: i64, acked: Option<f64>) -> bool {
        let Some(last) = self.last_decrease_us else {
            return true;
        };
        let interval = rtt_us.clamp(10_000, 200_000);
        now_us - last >= interval || acked.is_some_and(|a| self.rate_bps > 2.0 * a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwe_aimd_grows_about_8_percent_a_second_far_from_capacity() {
        let mut aimd = Aimd::new(1_000_000.0, 10_000.0, 10_000_000.0);
        for i in 0..=10 {
            aimd.update(BandwidthUsage::Normal, Some(1_000_000.0), i * 100_000, 50_000, false);
        }
        let rate = aimd.rate_bps();
        assert!((1_070_000.0..1_090_000.0).contains(&rate), "{rate}");
    }

    #[test]
    fn bwe_aimd_drops_to_85_percent_of_acked_on_overuse() {
        let mut aimd = Aimd::new(2_000_000.0, 10_000.0, 10_000_000.0);
        aimd.update(BandwidthUsage::Overusing, Some(1_000_000.0), 0, 50_000, false);
        assert!((aimd.rate_bps() - 850_000.0).abs() < 1.0);
        assert_eq!(aimd.state(), RateState::Decrease);
        aimd.update(BandwidthUsage::Underusing, Some(1_000_000.0), 100_000, 50_000, false);
        assert_eq!(aimd.state(), RateState::Hold);
        assert!((aimd.rate_bps() - 850_000.0).abs() < 1.0, "hold on underuse");
    }
}
