//! The pacer of one WebRtcTransport's video: a keyframe or a burst of retransmissions leaves at a
//! rate a little above the downlink estimate rather than all at once, so a bottleneck's shallow
//! queue (100 ms of a slow link holds a few kilobytes) is not overrun by one frame — the loss that
//! otherwise brings NACKs, PLIs and a new keyframe, overrun again. libwebrtc's pacer sends at 2.5×
//! its estimate; so does this one.
//!
//! A token bucket: bytes of budget accrue at the pacing rate up to a small burst, each packet sent
//! spends its size (a packet may take the budget below zero, and the next waits until it is paid
//! back). A packet goes straight out while nothing waits and the budget is not in debt; otherwise
//! it joins the queue, so a transport's packets always leave in the order they were made (the
//! receiver's SRTP replay window and jitter buffer expect that). Audio and RTCP do not wait but are
//! paid for. A queue that would take over [`MAX_QUEUE_TIME`] at the pacing rate is drained faster
//! (libwebrtc does the same), and beyond [`MAX_QUEUED`] packets the oldest is dropped.
//!
//! Pure: the caller gives the time and the rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pacing rate over the downlink estimate.
pub const PACING_FACTOR: f64 = 2.5;
/// The budget accrues up to this much sending at the pacing rate…
const BURST: Duration = Duration::from_millis(20);
/// …or at least two full packets, so a slow transport still sends a small frame at once.
const MIN_BURST_BYTES: f64 = 2.0 * 1200.0;
/// The longest a packet should wait: a longer queue is drained at the rate that empties it in
/// this time.
pub const MAX_QUEUE_TIME: Duration = Duration::from_millis(500);
/// Packets held at most (a second of 1,000 packets/s of video); the oldest is dropped beyond.
pub const MAX_QUEUED: usize = 1024;

pub struct Pacer<T> {
    /// Bytes that may be sent now (negative: owed).
    budget: f64,
    last: Option<Instant>,
    /// Each packet, its size and when it was queued.
    queue: VecDeque<(T, usize, Instant)>,
    queued_bytes: usize,
    /// Packets dropped because the queue was full.
    pub dropped: u64,
    /// Packets that waited in the queue.
    pub delayed: u64,
}

impl<T> Default for Pacer<T> {
    fn default() -> Self {
        Self { budget: MIN_BURST_BYTES, last: None, queue: VecDeque::new(), queued_bytes: 0, dropped: 0, delayed: 0 }
    }
}

impl<T> Pacer<T> {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn refill(&mut self, now: Instant, rate_bps: f64) {
        let cap = (rate_bps / 8.0 * BURST.as_secs_f64()).max(MIN_BURST_BYTES);
        // Idle since it was made: a full allowance.
        let elapsed = self.last.map_or(f64::MAX, |last| now.saturating_duration_since(last).as_secs_f64());
        self.last = Some(now);
        self.budget = (self.budget + elapsed * rate_bps / 8.0).min(cap);
    }

    /// Whether a packet of `bytes` may leave now (then it is paid for); if not, [`Self::push`] it.
    pub fn admit(&mut self, now: Instant, rate_bps: f64, bytes: usize) -> bool {
        self.refill(now, rate_bps);
        if self.queue.is_empty() && self.budget > 0.0 {
            self.budget -= bytes as f64;
            return true;
        }
        false
    }

    /// Pays for a packet that does not wait (audio, RTCP, probes).
    pub fn spend(&mut self, now: Instant, rate_bps: f64, bytes: usize) {
        self.refill(now, rate_bps);
        self.budget -= bytes as f64;
    }

    /// Queues a packet [`Self::admit`] refused; returns the oldest one if the queue was full.
    pub fn push(&mut self, now: Instant, item: T, bytes: usize) -> Option<T> {
        let dropped = (self.queue.len() >= MAX_QUEUED).then(|| self.queue.pop_front()).flatten().map(|(old, n, _)| {
            self.queued_bytes -= n;
            self.dropped += 1;
            old
        });
        self.queue.push_back((item, bytes, now));
        self.queued_bytes += bytes;
        self.delayed += 1;
        dropped
    }

    /// The oldest queued packet if the budget pays for it now (call until `None`).
    pub fn next_due(&mut self, now: Instant, rate_bps: f64) -> Option<T> {
        // A long queue leaves by the oldest packet's deadline, whatever the estimate says.
        let &(_, _, queued_at) = self.queue.front()?;
        let left = MAX_QUEUE_TIME.saturating_sub(now.saturating_duration_since(queued_at));
        let draining = self.queued_bytes as f64 * 8.0 / left.max(Duration::from_millis(1)).as_secs_f64();
        self.refill(now, rate_bps.max(draining));
        if self.budget <= 0.0 {
            return None;
        }
        let (item, bytes, _) = self.queue.pop_front()?;
        self.queued_bytes -= bytes;
        self.budget -= bytes as f64;
        Some(item)
    }

    /// Hands `send` every queued packet the budget pays for now, oldest first.
    #[cfg(test)]
    pub fn release(&mut self, now: Instant, rate_bps: f64, mut send: impl FnMut(T)) {
        while let Some(item) = self.next_due(now, rate_bps) {
            send(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 125_000.0; // 2.5 × a 50 kbit/s estimate

    /// Sends `packets` packets of `size` at `t0`, then releases every millisecond for `ms`;
    /// returns when (ms after t0) each packet left.
    fn burst(pacer: &mut Pacer<usize>, t0: Instant, packets: usize, size: usize, ms: u64) -> Vec<u64> {
        let mut left = vec![None; packets];
        for (i, slot) in left.iter_mut().enumerate() {
            if pacer.admit(t0, RATE, size) {
                *slot = Some(0);
            } else {
                assert!(pacer.push(t0, i, size).is_none());
            }
        }
        for ms in 1..=ms {
            pacer.release(t0 + Duration::from_millis(ms), RATE, |i| left[i] = Some(ms));
        }
        left.into_iter().map(|t| t.expect("every packet left")).collect()
    }

    #[test]
    fn a_keyframe_leaves_at_the_pacing_rate_in_order() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        // An 8.4 kB keyframe: 7 packets of 1200 bytes.
        let left = burst(&mut pacer, t0, 7, 1200, 1000);
        assert!(left.windows(2).all(|w| w[0] <= w[1]), "in order: {left:?}");
        // The burst allowance (2 packets) goes at once, the rest at 15.6 kB/s: one packet per
        // ~77 ms (each may take the budget into debt, the next waits until it is paid back).
        assert_eq!(&left[..3], &[0, 0, 1]);
        let last = *left.last().unwrap();
        assert!((280..=340).contains(&last), "the last packet after {last} ms: {left:?}");
        assert!(pacer.is_empty());
        assert_eq!(pacer.delayed, 5);
    }

    #[test]
    fn nothing_waits_while_the_budget_keeps_up() {
        let mut pacer = Pacer::<()>::default();
        let t0 = Instant::now();
        // 30 frames/s of 400 bytes: 96 kbit/s, under the 125 kbit/s pacing rate.
        for frame in 0..90u64 {
            assert!(pacer.admit(t0 + Duration::from_micros(frame * 33_333), RATE, 400), "frame {frame} waited");
        }
    }

    #[test]
    fn while_packets_wait_new_ones_queue_behind_them() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        for i in 0..5 {
            if !pacer.admit(t0, RATE, 1200) {
                pacer.push(t0, i, 1200);
            }
        }
        // Later the budget has grown, but a new packet must not overtake the queued ones.
        let later = t0 + Duration::from_millis(100);
        assert!(!pacer.admit(later, RATE, 100));
        pacer.push(later, 99, 100);
        let mut order = Vec::new();
        pacer.release(later + Duration::from_secs(1), RATE, |i| order.push(i));
        assert_eq!(order, vec![2, 3, 4, 99]);
    }

    #[test]
    fn audio_that_does_not_wait_is_paid_for() {
        let mut pacer = Pacer::<()>::default();
        let t0 = Instant::now();
        pacer.spend(t0, RATE, 5000);
        assert!(!pacer.admit(t0, RATE, 100), "in debt after 5 kB of audio");
        assert!(pacer.admit(t0 + Duration::from_millis(250), RATE, 100), "paid back at 15.6 kB/s");
    }

    #[test]
    fn a_long_queue_drains_within_the_limit_and_a_full_one_drops_the_oldest() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        // 100 kB queued at 125 kbit/s would take 6.4 s; it must be gone by MAX_QUEUE_TIME.
        let left = burst(&mut pacer, t0, 84, 1200, 2000);
        let last = *left.last().unwrap();
        assert!(last <= 510, "drained after {last} ms");
        let mut pacer = Pacer::default();
        for i in 0..MAX_QUEUED + 4 {
            if !pacer.admit(t0, RATE, 1200) {
                let _ = pacer.push(t0, i, 1200);
            }
        }
        assert_eq!(pacer.dropped, 2, "two went at once, two more than the queue holds: the oldest two dropped");
        let mut first = None;
        pacer.release(t0 + Duration::from_secs(10), RATE, |i| {
            first.get_or_insert(i);
        });
        assert_eq!(first, Some(4));
    }
}
