//! A bottleneck link for tests: a constant-rate server behind a drop-tail queue, optional random
//! loss from a seeded rng, and a base one-way delay. FIFO, so packets leave in the order they came.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

pub struct Link {
    rate_bps: u64,
    /// The queue holds this long of the current rate (drop-tail beyond it).
    queue: Duration,
    base_delay: Duration,
    loss: f64,
    rng: StdRng,
    /// When the server finishes the last queued packet.
    free_at: Option<Instant>,
    pub dropped: u64,
    pub lost: u64,
}

impl Link {
    pub fn new(rate_bps: u64, base_delay: Duration) -> Self {
        Self {
            rate_bps,
            queue: Duration::from_millis(100),
            base_delay,
            loss: 0.0,
            rng: StdRng::seed_from_u64(7),
            free_at: None,
            dropped: 0,
            lost: 0,
        }
    }

    pub fn with_loss(mut self, loss: f64, seed: u64) -> Self {
        self.loss = loss;
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// Packets already queued keep the times they were given; the new rate serves what comes next.
    pub fn set_rate(&mut self, rate_bps: u64) {
        self.rate_bps = rate_bps;
    }

    /// A packet of `size` bytes enters at `now`; returns when it reaches the far end, or `None`.
    pub fn send(&mut self, now: Instant, size: usize) -> Option<Instant> {
        if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
            self.lost += 1;
            return None;
        }
        let rate = self.rate_bps as f64;
        let backlog_s = self.free_at.map_or(0.0, |free| free.saturating_duration_since(now).as_secs_f64());
        let backlog_bytes = backlog_s * rate / 8.0;
        let limit_bytes = (rate / 8.0 * self.queue.as_secs_f64()).max(3000.0);
        if backlog_bytes + size as f64 > limit_bytes {
            self.dropped += 1;
            return None;
        }
        let start = self.free_at.map_or(now, |free| free.max(now));
        let done = start + Duration::from_secs_f64(size as f64 * 8.0 / rate);
        self.free_at = Some(done);
        Some(done + self.base_delay)
    }
}

#[test]
fn bwe_link_serves_at_its_rate_and_drops_beyond_the_queue() {
    let base = Instant::now();
    let mut link = Link::new(1_000_000, Duration::from_millis(20));
    // 1250 bytes take 10 ms at 1 Mbit/s.
    let first = link.send(base, 1250).unwrap();
    let second = link.send(base, 1250).unwrap();
    assert_eq!(first - base, Duration::from_millis(30));
    assert_eq!(second - first, Duration::from_millis(10));
    // 100 ms of queue = 12500 bytes: the 11th packet at once does not fit.
    let accepted = (0..20).filter(|_| link.send(base, 1250).is_some()).count();
    assert_eq!(accepted, 8);
    assert_eq!(link.dropped, 12);
}
