//! The delay-gradient detector: a trendline (least-squares slope of the smoothed accumulated
//! delay over the last groups) compared with an adaptive threshold (GCC §5.4–5.5, the trendline
//! variant libwebrtc uses instead of the draft's Kalman filter).
//!
//! A rising slope means a queue is building at the bottleneck (overuse), a falling one that a
//! queue is draining (underuse). The threshold adapts so that the detector is not starved by
//! competing loss-based flows (a fixed threshold would let TCP take the link) nor triggered by
//! jitter.

/// Groups in the regression window.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// The slope is tiny (ms per ms); this gain and the sample count put it on the threshold's scale.
const THRESHOLD_GAIN: f64 = 4.0;
const MAX_SAMPLES_GAIN: f64 = 60.0;
/// Threshold adaptation speeds: slow up (follow a rising noise floor), faster down.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
const INITIAL_THRESHOLD_MS: f64 = 12.5;
const MIN_THRESHOLD_MS: f64 = 6.0;
const MAX_THRESHOLD_MS: f64 = 600.0;
/// Spikes this far above the threshold are not noise to adapt to (a route change, a burst).
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// How long the trend must stay above the threshold before it counts as overuse.
const OVERUSE_TIME_MS: f64 = 10.0;

/// What the detector concludes about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    #[default]
    Normal,
    Overusing,
    Underusing,
}

#[derive(Debug)]
pub(super) struct Trendline {
    /// (arrival ms since the first sample, smoothed accumulated delay ms), a ring of `WINDOW`.
    samples: [(f64, f64); WINDOW],
    len: usize,
    next: usize,
    first_arrival_ms: Option<f64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    num_deltas: f64,
    trend: f64,
    previous_trend: f64,
    threshold_ms: f64,
    last_threshold_update_ms: Option<f64>,
    /// Negative while not above the threshold.
    time_over_using_ms: f64,
    overuse_count: u32,
    usage: BandwidthUsage,
}

impl Default for Trendline {
    fn default() -> Self {
        Self {
            samples: [(0.0, 0.0); WINDOW],
            len: 0,
            next: 0,
            first_arrival_ms: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            num_deltas: 0.0,
            trend: 0.0,
            previous_trend: 0.0,
            threshold_ms: INITIAL_THRESHOLD_MS,
            last_threshold_update_ms: None,
            time_over_using_ms: -1.0,
            overuse_count: 0,
            usage: BandwidthUsage::Normal,
        }
    }
}

impl Trendline {
    pub fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// Feeds one group delta.
    pub fn update(&mut self, send_delta_ms: f64, arrival_delta_ms: f64, arrival_ms: f64) -> BandwidthUsage {
        let delay_ms = arrival_delta_ms - send_delta_ms;
        if !delay_ms.is_finite() || !arrival_ms.is_finite() {
            return self.usage;
        }
        self.num_deltas = (self.num_deltas + 1.0).min(MAX_SAMPLES_GAIN);
        self.accumulated_ms += delay_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival_ms.get_or_insert(arrival_ms);
        self.samples[self.next] = (arrival_ms - first, self.smoothed_ms);
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len == WINDOW
            && let Some(slope) = self.slope()
        {
            self.trend = slope;
        }
        self.detect(send_delta_ms, arrival_ms);
        self.usage
    }

    /// Least-squares slope of the window; `None` when all x are equal.
    fn slope(&self) -> Option<f64> {
        let n = self.len as f64;
        let (sx, sy) = self.samples.iter().fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
        let (mx, my) = (sx / n, sy / n);
        let (num, den) = self
            .samples
            .iter()
            .fold((0.0, 0.0), |(num, den), &(x, y)| (num + (x - mx) * (y - my), den + (x - mx) * (x - mx)));
        let slope = num / den;
        (den > 0.0 && slope.is_finite()).then_some(slope)
    }

    fn detect(&mut self, send_delta_ms: f64, now_ms: f64) {
        let modified = self.num_deltas * self.trend * THRESHOLD_GAIN;
        if modified > self.threshold_ms {
            if self.time_over_using_ms < 0.0 {
                // Assume the overuse began half a group ago.
                self.time_over_using_ms = send_delta_ms / 2.0;
            } else {
                self.time_over_using_ms += send_delta_ms;
            }
            self.overuse_count += 1;
            // Overuse only while the trend still rises: a high but falling trend is a queue that
            // has stopped growing, and the rate controller already reacted to it.
            if self.time_over_using_ms > OVERUSE_TIME_MS && self.overuse_count > 1 && self.trend >= self.previous_trend
            {
                self.time_over_using_ms = 0.0;
                self.overuse_count = 0;
                self.usage = BandwidthUsage::Overusing;
            }
        } else {
            self.time_over_using_ms = -1.0;
            self.overuse_count = 0;
            self.usage =
                if modified < -self.threshold_ms { BandwidthUsage::Underusing } else { BandwidthUsage::Normal };
        }
        self.previous_trend = self.trend;
        self.adapt_threshold(modified, now_ms);
    }

    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_threshold_update_ms.get_or_insert(now_ms);
        self.last_threshold_update_ms = Some(now_ms);
        if modified.abs() > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            return;
        }
        let k = if modified.abs() < self.threshold_ms { K_DOWN } else { K_UP };
        let dt_ms = (now_ms - last).clamp(0.0, 100.0);
        self.threshold_ms += k * (modified.abs() - self.threshold_ms) * dt_ms;
        self.threshold_ms = self.threshold_ms.clamp(MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(growth_ms_per_group: f64, groups: usize) -> BandwidthUsage {
        let mut t = Trendline::default();
        let mut arrival = 0.0;
        let mut usage = BandwidthUsage::Normal;
        for _ in 0..groups {
            arrival += 10.0 + growth_ms_per_group;
            usage = t.update(10.0, 10.0 + growth_ms_per_group, arrival);
        }
        usage
    }

    #[test]
    fn bwe_trendline_flags_a_growing_queue_and_a_draining_one() {
        assert_eq!(run(0.0, 100), BandwidthUsage::Normal);
        assert_eq!(run(2.0, 40), BandwidthUsage::Overusing);
        assert_eq!(run(-2.0, 40), BandwidthUsage::Underusing);
    }
}
