//! When to probe. A rate the sender never tried cannot be measured, so the estimator asks the
//! caller to send short bursts of padding at a higher rate ("probe clusters") and measures how
//! fast they arrive:
//!
//! - at start, at 3× and 6× the initial estimate, so that a fresh transport does not spend tens of
//!   seconds creeping up at 8 %/s;
//! - later, when the allocator wants more than the estimate (`set_desired_bitrate`) and the path
//!   is not overusing, at up to 2× the estimate, with exponential backoff: a probe that found
//!   nothing waits twice as long before the next one, a successful one lets the next come soon.
//!
//! A large drop of the estimate resets the backoff, so a link that recovers is found again quickly.

use std::time::Duration;

/// A request to send `bytes` of padding at `target_bps`, each packet marked with `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    pub id: u32,
    pub target_bps: u64,
    /// Padding bytes to send. The cluster is complete once both this many bytes and
    /// `min_packets` packets were sent.
    pub bytes: usize,
    /// The measurement needs at least this many packets, however large they are.
    pub min_packets: usize,
    /// How long the cluster should take at `target_bps`.
    pub duration: Duration,
}

/// A cluster lasts this long at its target rate: long enough for a receive rate, short enough
/// that the queue it may build is small.
const CLUSTER_DURATION: Duration = Duration::from_millis(30);
pub(super) const MIN_PACKETS: usize = 6;
const INITIAL_MULTIPLIERS: [u64; 2] = [3, 6];
/// Periodic probes go no higher than this multiple of the estimate.
const PERIODIC_MULTIPLIER: f64 = 2.0;
/// A periodic probe aims this much above the desired rate so that, after the result is
/// discounted (see [`super::PROBE_RESULT_FACTOR`]), the estimate can reach what is desired.
const DESIRED_HEADROOM: f64 = 1.25;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// A link that got better says nothing by itself: after failed probes the next one still comes
/// within this, so recovery from a cut that ended takes seconds, not tens of them.
const BACKOFF_MAX: Duration = Duration::from_secs(4);
/// An estimate falling below this fraction of its recent level counts as a large drop.
const LARGE_DROP: f64 = 0.66;

#[derive(Debug)]
pub(super) struct ProbeController {
    max_bps: u64,
    next_id: u32,
    started: bool,
    /// Initial clusters not yet handed out, highest multiplier last.
    initial: [Option<u64>; 2],
    desired_bps: u64,
    backoff: Duration,
    next_probe_us: i64,
    /// A cluster handed out and not yet resolved: no periodic probe meanwhile.
    in_flight: u32,
    /// Estimate level that a large drop is measured against.
    reference_bps: f64,
}

impl ProbeController {
    pub fn new(max_bps: u64) -> Self {
        Self {
            max_bps,
            next_id: 1,
            started: false,
            initial: [None; 2],
            desired_bps: 0,
            backoff: BACKOFF_MIN,
            next_probe_us: 0,
            in_flight: 0,
            reference_bps: 0.0,
        }
    }

    pub fn set_desired(&mut self, bps: u64) {
        self.desired_bps = bps;
    }

    /// The next cluster to send, if one is due.
    /// `hold`: no periodic probe now (the initial ones still go).
    pub fn poll(&mut self, now_us: i64, estimate_bps: u64, hold: bool) -> Option<ProbeCluster> {
        if !self.started {
            self.started = true;
            for (slot, multiplier) in self.initial.iter_mut().zip(INITIAL_MULTIPLIERS) {
                let target = estimate_bps.saturating_mul(multiplier).min(self.max_bps);
                *slot = (target > estimate_bps).then_some(target);
            }
            self.next_probe_us = now_us.saturating_add(duration_us(self.backoff));
        }
        if let Some(target) = self.initial.iter_mut().find_map(Option::take) {
            return Some(self.cluster(target));
        }
        if hold || self.in_flight > 0 || now_us < self.next_probe_us || self.desired_bps <= estimate_bps {
            return None;
        }
        let ceiling = (estimate_bps as f64 * PERIODIC_MULTIPLIER) as u64;
        let target = ((self.desired_bps as f64 * DESIRED_HEADROOM) as u64).min(ceiling).min(self.max_bps);
        if target <= estimate_bps {
            return None;
        }
        Some(self.cluster(target))
    }

    /// A cluster was resolved: `found` tells whether it found capacity above the estimate.
    pub fn on_result(&mut self, now_us: i64, found: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.backoff = if found { BACKOFF_MIN } else { (self.backoff * 2).min(BACKOFF_MAX) };
        self.next_probe_us = now_us.saturating_add(duration_us(self.backoff));
    }

    /// Follows the estimate, to notice large drops.
    pub fn on_estimate(&mut self, now_us: i64, estimate_bps: f64) {
        if estimate_bps < self.reference_bps * LARGE_DROP {
            // The path changed: probe again soon rather than after a long backoff.
            self.backoff = BACKOFF_MIN;
            self.next_probe_us = self.next_probe_us.min(now_us.saturating_add(duration_us(BACKOFF_MIN)));
            self.reference_bps = estimate_bps;
        } else {
            // Decays slowly towards the estimate so that a slide over many seconds is not a "drop".
            self.reference_bps = estimate_bps.max(self.reference_bps * 0.99);
        }
    }

    fn cluster(&mut self, target_bps: u64) -> ProbeCluster {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.in_flight += 1;
        let bytes = (target_bps as f64 / 8.0 * CLUSTER_DURATION.as_secs_f64()) as usize;
        ProbeCluster { id, target_bps, bytes, min_packets: MIN_PACKETS, duration: CLUSTER_DURATION }
    }
}

fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwe_probes_at_start_then_backs_off() {
        let mut p = ProbeController::new(10_000_000);
        let a = p.poll(0, 300_000, false).unwrap();
        let b = p.poll(0, 300_000, false).unwrap();
        assert_eq!((a.target_bps, b.target_bps), (900_000, 1_800_000));
        assert_ne!(a.id, b.id);
        assert!(p.poll(0, 300_000, false).is_none(), "nothing desired");
        p.on_result(0, true);
        p.on_result(0, false);
        p.set_desired(5_000_000);
        assert!(p.poll(1_000_000, 300_000, false).is_none(), "backoff doubled to 2 s");
        assert!(p.poll(2_000_000, 300_000, true).is_none(), "not while overusing");
        let c = p.poll(2_000_000, 300_000, false).unwrap();
        assert_eq!(c.target_bps, 600_000);
        assert!(p.poll(9_000_000, 300_000, false).is_none(), "one in flight");
        p.on_result(2_100_000, false);
        assert!(p.poll(5_000_000, 300_000, false).is_none(), "4 s backoff");
        assert!(p.poll(6_100_000, 300_000, false).is_some());
    }
}
