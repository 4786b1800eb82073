//! A fixed-bucket latency histogram: 10 µs buckets up to 200 ms, then one overflow bucket. Cheap
//! to record into from the event loop and to subtract for a measurement window.

use std::time::Duration;

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 20_000;

#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    overflow: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], overflow: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let bucket = (d.as_micros() as u64 / BUCKET_US) as usize;
        match self.counts.get_mut(bucket) {
            Some(c) => *c += 1,
            None => self.overflow += 1,
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.overflow
    }

    /// What was recorded since `earlier` (a snapshot of this histogram).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            counts: self.counts.iter().zip(&earlier.counts).map(|(a, b)| a.saturating_sub(*b)).collect(),
            overflow: self.overflow.saturating_sub(earlier.overflow),
        }
    }

    /// The `q` quantile (0..=1) as the upper edge of its bucket; overflow reads as 200 ms+.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros((i as u64 + 1) * BUCKET_US));
            }
        }
        Some(Duration::from_micros(BUCKETS as u64 * BUCKET_US))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_windows() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=100 {
            h.record(Duration::from_micros(us * 100));
        }
        let before = h.clone();
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(5010)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(9910)));
        h.record(Duration::from_secs(1));
        let window = h.since(&before);
        assert_eq!(window.count(), 1);
        assert_eq!(window.quantile(0.5), Some(Duration::from_millis(200)));
    }
}
