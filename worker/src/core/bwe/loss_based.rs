//! The loss-based bound (GCC §6): the fraction of packets the feedback reports lost, over windows
//! of at least [`MIN_PACKETS`], moves a ceiling on the estimate. Above 10 % loss the ceiling drops
//! to (1 − 0.5 × loss) × the current estimate; below 2 % it rises (8 %/s) and no longer holds the
//! delay-based estimate back; in between it holds.
//!
//! Loss alone is a late signal (the queue had to overflow), but it is the one that catches a
//! full drop-tail queue, whose delay is high yet flat, which the delay gradient stops seeing.

/// A window reports no loss fraction until it holds this many packets (with 10 packets one loss is
/// 10 %, which says nothing) and spans this much time: GCC's loss controller ran on RTCP receiver
/// reports about once a second; at 100 ms feedback, 20-packet windows of a 1 Mbit/s stream with 5 %
/// random loss exceed 10 % in one window of 13 and would walk the estimate down.
pub(super) const MIN_PACKETS: u32 = 20;
const MIN_WINDOW_US: i64 = 500_000;
const HIGH_LOSS: f64 = 0.10;
const LOW_LOSS: f64 = 0.02;
const INCREASE_PER_SECOND: f64 = 1.08;

#[derive(Debug)]
pub(super) struct LossBased {
    /// The ceiling; starts at the maximum (no loss seen, no constraint).
    bound_bps: f64,
    max_bps: f64,
    lost: u32,
    total: u32,
    last_fraction: f64,
    last_update_us: Option<i64>,
    window_start_us: Option<i64>,
}

impl LossBased {
    pub fn new(max_bps: f64) -> Self {
        Self {
            bound_bps: max_bps,
            max_bps,
            lost: 0,
            total: 0,
            last_fraction: 0.0,
            last_update_us: None,
            window_start_us: None,
        }
    }

    pub fn bound_bps(&self) -> f64 {
        self.bound_bps
    }

    /// The loss fraction of the last complete window.
    pub fn loss_fraction(&self) -> f64 {
        self.last_fraction
    }

    /// A probe got through at this rate: losses below it were not the link's capacity.
    pub fn raise_to(&mut self, bps: f64) {
        self.bound_bps = self.bound_bps.max(bps).min(self.max_bps);
    }

    /// Adds one feedback's first reports (`lost` of `total`); `estimate_bps` is the current
    /// combined estimate, which a decrease starts from.
    pub fn on_feedback(&mut self, lost: u32, total: u32, estimate_bps: f64, now_us: i64) {
        self.lost = self.lost.saturating_add(lost);
        self.total = self.total.saturating_add(total);
        let window_start = *self.window_start_us.get_or_insert(now_us);
        if self.total < MIN_PACKETS || now_us - window_start < MIN_WINDOW_US {
            return;
        }
        self.window_start_us = Some(now_us);
        let fraction = f64::from(self.lost) / f64::from(self.total);
        self.lost = 0;
        self.total = 0;
        self.last_fraction = fraction;
        let dt_s = self.last_update_us.map_or(0.0, |last| (now_us - last).clamp(0, 1_000_000) as f64 / 1e6);
        self.last_update_us = Some(now_us);
        if fraction > HIGH_LOSS {
            self.bound_bps = self.bound_bps.min(estimate_bps) * (1.0 - 0.5 * fraction);
        } else if fraction < LOW_LOSS {
            let grown = self.bound_bps.max(estimate_bps) * INCREASE_PER_SECOND.powf(dt_s);
            self.bound_bps = self.bound_bps.max(grown).min(self.max_bps);
        } else {
            self.bound_bps = self.bound_bps.min(estimate_bps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwe_loss_thresholds() {
        // (loss out of 100, expected bound as a fraction of a 1 Mbit/s estimate)
        let cases = [(0, None), (1, None), (5, Some(1.0)), (10, Some(1.0)), (20, Some(0.9)), (50, Some(0.75))];
        for (lost, expected) in cases {
            let mut loss = LossBased::new(10e6);
            loss.on_feedback(0, 0, 1e6, 0);
            loss.on_feedback(lost, 100, 1e6, 500_000);
            match expected {
                None => assert!(loss.bound_bps() >= 1e6, "{lost}%: {}", loss.bound_bps()),
                Some(f) => assert!((loss.bound_bps() - f * 1e6).abs() < 1.0, "{lost}%: {}", loss.bound_bps()),
            }
        }
    }

    #[test]
    fn bwe_loss_waits_for_enough_packets() {
        let mut loss = LossBased::new(10e6);
        loss.on_feedback(5, 10, 1e6, 0);
        assert_eq!(loss.bound_bps(), 10e6, "10 packets say nothing");
        loss.on_feedback(5, 10, 1e6, 100_000);
        assert_eq!(loss.bound_bps(), 10e6, "20 packets in 100 ms say nothing yet");
        loss.on_feedback(0, 0, 1e6, 500_000);
        assert!((loss.bound_bps() - 0.75e6).abs() < 1.0);
    }
}
