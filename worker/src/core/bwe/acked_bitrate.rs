//! The acknowledged bitrate: bytes the feedback reports received, over a sliding window on the
//! receiver's clock. It is what the path actually delivered, which is what a decrease starts from
//! (the sender's own rate says nothing about the bottleneck).
//!
//! Bytes go into 10 ms buckets by arrival time; no per-packet storage, nothing allocated after
//! construction.

const BUCKET_US: i64 = 10_000;
/// Window length in buckets (500 ms).
const WINDOW_BUCKETS: i64 = 50;
/// Ring size: the window plus slack for packets reported a little out of arrival order.
const RING: usize = 64;
/// No rate until this much of the receiver's clock has been seen: two packets 1 ms apart are not
/// a bitrate.
const MIN_SPAN_US: i64 = 100_000;

#[derive(Debug)]
pub(super) struct AckedBitrate {
    buckets: [u64; RING],
    /// Index (arrival / BUCKET_US) of the newest bucket.
    head: Option<i64>,
    first_arrival_us: i64,
    newest_arrival_us: i64,
}

impl AckedBitrate {
    pub fn new() -> Self {
        Self { buckets: [0; RING], head: None, first_arrival_us: 0, newest_arrival_us: 0 }
    }

    /// A packet of `size` bytes arrived at `arrival_us` (receiver's clock, unwrapped).
    pub fn on_packet(&mut self, arrival_us: i64, size: u32) {
        let index = arrival_us.div_euclid(BUCKET_US);
        let head = match self.head {
            None => {
                self.first_arrival_us = arrival_us;
                self.newest_arrival_us = arrival_us;
                index
            }
            Some(head) if index > head => {
                // Clear the buckets the head skips over (all of them after a long gap).
                let skipped = (index - head).min(RING as i64);
                for i in 0..skipped {
                    self.buckets[ring_slot(index - i)] = 0;
                }
                self.newest_arrival_us = arrival_us;
                index
            }
            Some(head) => {
                if head - index >= WINDOW_BUCKETS {
                    return; // older than the window
                }
                self.newest_arrival_us = self.newest_arrival_us.max(arrival_us);
                head
            }
        };
        self.head = Some(head);
        let bucket = &mut self.buckets[ring_slot(index)];
        *bucket = bucket.saturating_add(u64::from(size));
    }

    /// Bits per second over the last 500 ms of arrivals, once 100 ms have been seen.
    pub fn rate_bps(&self) -> Option<f64> {
        let head = self.head?;
        let oldest = head - (WINDOW_BUCKETS - 1);
        let window_start_us = oldest.saturating_mul(BUCKET_US).max(self.first_arrival_us);
        let span_us = self.newest_arrival_us.saturating_sub(window_start_us);
        if self.newest_arrival_us.saturating_sub(self.first_arrival_us) < MIN_SPAN_US || span_us <= 0 {
            return None;
        }
        let bytes: u64 = (oldest..=head).map(|i| self.buckets[ring_slot(i)]).sum();
        Some(bytes as f64 * 8.0 * 1e6 / span_us as f64)
    }
}

fn ring_slot(index: i64) -> usize {
    (index.rem_euclid(RING as i64)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwe_acked_rate_over_the_window() {
        let mut acked = AckedBitrate::new();
        assert_eq!(acked.rate_bps(), None);
        // 1200 bytes every 4 ms = 2.4 Mbit/s, for 2 s.
        for i in 0..500 {
            acked.on_packet(1_000_000 + i * 4_000, 1200);
        }
        let rate = acked.rate_bps().unwrap();
        assert!((rate - 2.4e6).abs() < 0.05e6, "{rate}");
        // Then 1 Mbit/s for 1 s: the window forgets the old rate.
        for i in 0..104 {
            acked.on_packet(3_000_000 + i * 9_600, 1200);
        }
        let rate = acked.rate_bps().unwrap();
        assert!((rate - 1e6).abs() < 0.05e6, "{rate}");
    }

    #[test]
    fn bwe_acked_rate_survives_wild_arrival_times() {
        let mut acked = AckedBitrate::new();
        for arrival in [0, i64::MAX / 2, -5, i64::MIN / 2, 3, i64::MAX / 2 + 1] {
            acked.on_packet(arrival, u32::MAX);
            let _ = acked.rate_bps();
        }
    }
}
