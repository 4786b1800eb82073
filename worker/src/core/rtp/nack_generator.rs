//! NACK generation for one incoming RTP stream (RFC 4585 generic NACK): notices sequence gaps, asks
//! for each missing packet at once, asks again no sooner than an RTT later, and gives up after a
//! bounded number of tries. When too much is missing to recover packet by packet, it clears the list
//! and asks for a keyframe instead.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tunables; the defaults follow what browsers and mediasoup do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackConfig {
    /// Most packets tracked as missing at once; beyond that older losses are dropped in favour of
    /// a keyframe.
    pub max_packets: usize,
    /// NACKs sent per missing packet before it is given up.
    pub max_retries: u8,
    /// Wait before the first NACK of a new gap, to let reordering resolve. Zero: ask at once.
    pub first_nack_delay: Duration,
    /// Retry spacing used while the RTT is unknown (`poll_nacks` given a zero RTT).
    pub default_rtt: Duration,
    /// Missing packets older than this many sequence numbers behind the newest are dropped: their
    /// frames are long gone.
    pub max_age: u64,
}

impl Default for NackConfig {
    fn default() -> Self {
        Self {
            max_packets: 1000,
            max_retries: 10,
            first_nack_delay: Duration::ZERO,
            default_rtt: Duration::from_millis(100),
            max_age: 10_000,
        }
    }
}

/// What an arriving packet meant to the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackArrival {
    /// The newest packet so far (possibly after a gap).
    New,
    /// A packet that was listed as missing: late or retransmitted.
    Filled,
    /// Older than the newest but not listed (already given up, or never missing).
    Late,
    /// The newest packet again.
    Duplicate,
    /// A retransmission (RTX) ahead of the newest packet, e.g. Chrome's RTX probing: not taken as
    /// progress of the stream.
    RecoveredAhead,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NackStats {
    /// Sequence numbers requested, retries included.
    pub nacks_sent: u64,
    /// Listed packets that arrived afterwards (late or by RTX).
    pub packets_recovered: u64,
    /// Listed packets dropped after `max_retries` NACKs.
    pub given_up: u64,
    /// Listed packets dropped without giving them all their tries: overflow, keyframe, age, jump.
    pub dropped: u64,
    pub keyframe_requests: u64,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    ext_seq: u64,
    noticed: Instant,
    last_sent: Option<Instant>,
    sent: u8,
}

/// Retransmissions received ahead of the newest packet that are remembered, so the gap that follows
/// does not NACK them.
const RECOVERED_AHEAD: usize = 32;
const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(5);

/// Missing-packet bookkeeping for one incoming RTP stream (mediasoup's `NackGenerator`).
#[derive(Debug)]
pub struct NackGenerator {
    config: NackConfig,
    /// Sorted by extended sequence number; capacity `max_packets`, never grows past it.
    missing: VecDeque<Missing>,
    newest: Option<u64>,
    last_keyframe: Option<u64>,
    recovered_ahead: [u64; RECOVERED_AHEAD],
    recovered_ahead_next: usize,
    rtt: Duration,
    keyframe_required: bool,
    stats: NackStats,
}

impl Default for NackGenerator {
    fn default() -> Self {
        Self::new(NackConfig::default())
    }
}

impl NackGenerator {
    pub fn new(config: NackConfig) -> Self {
        let config = NackConfig { max_packets: config.max_packets.max(1), ..config };
        Self {
            config,
            missing: VecDeque::with_capacity(config.max_packets),
            newest: None,
            last_keyframe: None,
            recovered_ahead: [u64::MAX; RECOVERED_AHEAD],
            recovered_ahead_next: 0,
            rtt: config.default_rtt,
            keyframe_required: false,
            stats: NackStats::default(),
        }
    }

    pub fn stats(&self) -> NackStats {
        self.stats
    }

    /// Packets currently listed as missing.
    pub fn missing_count(&self) -> usize {
        self.missing.len()
    }

    /// Takes the pending keyframe request (set when losses were too many to NACK).
    pub fn poll_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_required)
    }

    /// Forgets everything (e.g. the producer's stream restarted).
    pub fn reset(&mut self) {
        self.stats.dropped += self.missing.len() as u64;
        self.missing.clear();
        self.newest = None;
        self.last_keyframe = None;
        self.recovered_ahead = [u64::MAX; RECOVERED_AHEAD];
    }

    /// Feeds one received packet of the stream (`is_recovered`: it came by RTX).
    pub fn received(&mut self, now: Instant, seq: u16, is_keyframe: bool, is_recovered: bool) -> NackArrival {
        let Some(newest) = self.newest else {
            let ext = (1u64 << 32) | u64::from(seq);
            self.newest = Some(ext);
            if is_keyframe {
                self.last_keyframe = Some(ext);
            }
            return NackArrival::New;
        };
        let ext = newest.wrapping_add_signed(i64::from(seq.wrapping_sub(newest as u16) as i16));
        if ext == newest {
            return NackArrival::Duplicate;
        }
        if ext < newest {
            if is_keyframe && self.last_keyframe.is_none_or(|k| k < ext) {
                self.last_keyframe = Some(ext);
            }
            return match self.missing.binary_search_by_key(&ext, |m| m.ext_seq) {
                Ok(i) => {
                    self.missing.remove(i);
                    self.stats.packets_recovered += 1;
                    NackArrival::Filled
                }
                Err(_) => NackArrival::Late,
            };
        }
        if is_recovered {
            self.recovered_ahead[self.recovered_ahead_next] = ext;
            self.recovered_ahead_next = (self.recovered_ahead_next + 1) % RECOVERED_AHEAD;
            return NackArrival::RecoveredAhead;
        }

        let gap = ext - newest - 1;
        if gap > self.config.max_packets as u64 {
            // Far too much lost to recover packet by packet.
            self.clear_and_request_keyframe();
        } else {
            for missing in newest + 1..ext {
                if let Some(slot) = self.recovered_ahead.iter_mut().find(|r| **r == missing) {
                    *slot = u64::MAX;
                    continue;
                }
                if self.missing.len() >= self.config.max_packets {
                    self.make_room();
                }
                self.missing.push_back(Missing { ext_seq: missing, noticed: now, last_sent: None, sent: 0 });
            }
        }
        self.newest = Some(ext);
        if is_keyframe {
            self.last_keyframe = Some(ext);
        }
        // Losses too old to matter any more.
        while self.missing.front().is_some_and(|m| m.ext_seq.saturating_add(self.config.max_age) < ext) {
            self.missing.pop_front();
            self.stats.dropped += 1;
        }
        NackArrival::New
    }

    /// The list is full: drop losses before the latest keyframe (a decoder no longer needs them);
    /// if that frees nothing, start over with a keyframe.
    fn make_room(&mut self) {
        if let Some(keyframe) = self.last_keyframe {
            let before = self.missing.len();
            while self.missing.front().is_some_and(|m| m.ext_seq < keyframe) {
                self.missing.pop_front();
            }
            self.stats.dropped += (before - self.missing.len()) as u64;
        }
        if self.missing.len() >= self.config.max_packets {
            self.clear_and_request_keyframe();
        }
    }

    fn clear_and_request_keyframe(&mut self) {
        self.stats.dropped += self.missing.len() as u64;
        self.missing.clear();
        self.keyframe_required = true;
        self.stats.keyframe_requests += 1;
    }

    fn retry_interval(&self) -> Duration {
        self.rtt.max(MIN_RETRY_INTERVAL)
    }

    fn due(&self, missing: &Missing) -> Instant {
        match missing.last_sent {
            None => missing.noticed + self.config.first_nack_delay,
            Some(sent) => sent + self.retry_interval(),
        }
    }

    /// Writes the sequence numbers to NACK now into `out` (ascending in stream order, ready to pack
    /// into PID/BLP pairs) and returns how many. Packets that had all their tries are given up here,
    /// one retry interval after their last NACK. `rtt` zero means unknown (`default_rtt` is used).
    /// When `out` fills up the rest stays due for the next call.
    pub fn poll_nacks(&mut self, now: Instant, rtt: Duration, out: &mut [u16]) -> usize {
        self.rtt = if rtt.is_zero() { self.config.default_rtt } else { rtt };
        let mut written = 0;
        let mut i = 0;
        while let Some(missing) = self.missing.get(i) {
            if now < self.due(missing) {
                i += 1;
                continue;
            }
            if missing.sent >= self.config.max_retries {
                self.missing.remove(i);
                self.stats.given_up += 1;
                continue;
            }
            let Some(slot) = out.get_mut(written) else { break };
            *slot = missing.ext_seq as u16;
            written += 1;
            if let Some(missing) = self.missing.get_mut(i) {
                missing.sent += 1;
                missing.last_sent = Some(now);
            }
            self.stats.nacks_sent += 1;
            i += 1;
        }
        written
    }

    /// When [`Self::poll_nacks`] next has something to do, using the RTT it was last given.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing.iter().map(|m| self.due(m)).min()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn nacks(generator: &mut NackGenerator, now: Instant) -> Vec<u16> {
        let mut out = [0u16; 2048];
        let n = generator.poll_nacks(now, RTT, &mut out);
        out[..n].to_vec()
    }

    fn feed(generator: &mut NackGenerator, now: Instant, seqs: &[u16]) {
        for &seq in seqs {
            generator.received(now, seq, false, false);
        }
    }

    #[test]
    fn single_loss_is_nacked_at_once_then_each_rtt() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[1, 2, 4]);
        assert_eq!(g.poll_timeout(), Some(t0));
        assert_eq!(nacks(&mut g, t0), vec![3]);
        assert_eq!(nacks(&mut g, t0 + ms(49)), Vec::<u16>::new());
        assert_eq!(g.poll_timeout(), Some(t0 + RTT));
        assert_eq!(nacks(&mut g, t0 + ms(50)), vec![3]);
        assert_eq!(g.received(t0 + ms(60), 3, false, true), NackArrival::Filled);
        assert_eq!(g.missing_count(), 0);
        assert_eq!(g.poll_timeout(), None);
        assert_eq!(nacks(&mut g, t0 + ms(200)), Vec::<u16>::new());
        assert_eq!(g.received(t0 + ms(61), 3, false, true), NackArrival::Late);
        let stats = g.stats();
        assert_eq!((stats.nacks_sent, stats.packets_recovered, stats.given_up), (2, 1, 0));
    }

    #[test]
    fn burst_loss() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[100, 110]);
        assert_eq!(nacks(&mut g, t0), (101..110).collect::<Vec<_>>());
        // Part of the burst arrives; the rest is asked again.
        feed(&mut g, t0 + ms(10), &[101, 105, 109]);
        assert_eq!(nacks(&mut g, t0 + ms(50)), vec![102, 103, 104, 106, 107, 108]);
    }

    #[test]
    fn reordering_that_resolves_before_the_nack_is_due() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[1, 3, 2]);
        assert_eq!(nacks(&mut g, t0), Vec::<u16>::new());
        assert_eq!(g.stats().packets_recovered, 1);

        let mut g = NackGenerator::new(NackConfig { first_nack_delay: ms(10), ..NackConfig::default() });
        feed(&mut g, t0, &[1, 3, 5]);
        assert_eq!(nacks(&mut g, t0 + ms(9)), Vec::<u16>::new());
        assert_eq!(g.poll_timeout(), Some(t0 + ms(10)));
        assert_eq!(g.received(t0 + ms(5), 2, false, false), NackArrival::Filled);
        assert_eq!(nacks(&mut g, t0 + ms(10)), vec![4]);
    }

    #[test]
    fn retries_are_spaced_by_rtt_and_given_up_after_the_maximum() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[1, 3]);
        let mut sent_at = Vec::new();
        for step in 0..=600u64 {
            let now = t0 + ms(step);
            if !nacks(&mut g, now).is_empty() {
                sent_at.push(step);
            }
        }
        assert_eq!(sent_at, (0..10).map(|i| i * 50).collect::<Vec<_>>());
        assert_eq!(g.missing_count(), 0, "given up one RTT after the last try");
        assert_eq!(g.stats().given_up, 1);
        assert_eq!(g.stats().nacks_sent, 10);

        // Unknown RTT: the default spacing.
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[1, 3]);
        let mut out = [0u16; 4];
        assert_eq!(g.poll_nacks(t0, Duration::ZERO, &mut out), 1);
        assert_eq!(g.poll_nacks(t0 + ms(99), Duration::ZERO, &mut out), 0);
        assert_eq!(g.poll_nacks(t0 + ms(100), Duration::ZERO, &mut out), 1);
    }

    #[test]
    fn a_full_buffer_leaves_the_rest_due() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[1, 7]);
        let mut out = [0u16; 2];
        assert_eq!(g.poll_nacks(t0, RTT, &mut out), 2);
        assert_eq!(out, [2, 3]);
        assert_eq!(g.poll_nacks(t0, RTT, &mut out), 2);
        assert_eq!(out, [4, 5]);
        assert_eq!(g.poll_nacks(t0, RTT, &mut out), 1);
        assert_eq!(out[0], 6);
    }

    #[test]
    fn a_huge_jump_clears_the_list_and_asks_for_a_keyframe() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[1, 3]);
        assert!(!g.poll_keyframe_request());
        assert_eq!(g.received(t0, 2000, false, false), NackArrival::New);
        assert_eq!(g.missing_count(), 0);
        assert!(g.poll_keyframe_request());
        assert!(!g.poll_keyframe_request(), "taken once");
        // And the stream goes on from there.
        feed(&mut g, t0, &[2002]);
        assert_eq!(nacks(&mut g, t0), vec![2001]);
    }

    #[test]
    fn overflow_drops_losses_before_the_last_keyframe() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[0, 600]); // 599 missing
        g.received(t0, 700, true, false); // 99 more, then a keyframe
        assert_eq!(g.missing_count(), 698);
        feed(&mut g, t0, &[1200]); // 499 more: over 1000, losses before 700 are dropped
        assert_eq!(g.missing_count(), 499);
        assert!(!g.poll_keyframe_request());
        let listed = nacks(&mut g, t0);
        assert_eq!(listed.first(), Some(&701));
        assert_eq!(listed.last(), Some(&1199));

        // Without a keyframe to fall back on: clear and ask for one.
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[0, 900, 1500]);
        assert!(g.missing_count() <= 1000);
        assert!(g.poll_keyframe_request());
    }

    #[test]
    fn wraparound() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[65533, 65535, 2]);
        assert_eq!(nacks(&mut g, t0), vec![65534, 0, 1]);
        assert_eq!(g.received(t0, 0, false, false), NackArrival::Filled);
        assert_eq!(nacks(&mut g, t0 + RTT), vec![65534, 1]);
    }

    #[test]
    fn retransmissions_ahead_are_not_progress_and_not_nacked() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        feed(&mut g, t0, &[10]);
        assert_eq!(g.received(t0, 12, false, true), NackArrival::RecoveredAhead);
        assert_eq!(g.missing_count(), 0);
        feed(&mut g, t0, &[14]);
        assert_eq!(nacks(&mut g, t0), vec![11, 13]);
    }

    proptest! {
        #[test]
        fn random_streams_keep_the_list_bounded_and_sorted(
            events in proptest::collection::vec((-50i32..400, any::<bool>(), any::<bool>(), 0u64..80, any::<bool>()), 1..400),
            max_packets in 1usize..300,
        ) {
            let t0 = Instant::now();
            let config = NackConfig { max_packets, max_retries: 3, ..NackConfig::default() };
            let mut g = NackGenerator::new(config);
            let (mut seq, mut now) = (65_000u16, t0);
            let mut out = [0u16; 64];
            for (step, keyframe, recovered, dt, poll) in events {
                seq = seq.wrapping_add(step as u16);
                now += Duration::from_millis(dt);
                g.received(now, seq, keyframe, recovered);
                prop_assert!(g.missing_count() <= max_packets);
                prop_assert!(g.missing.iter().zip(g.missing.iter().skip(1)).all(|(a, b)| a.ext_seq < b.ext_seq));
                if poll {
                    let n = g.poll_nacks(now, RTT, &mut out);
                    prop_assert!(n <= out.len());
                    // Never the packet just received.
                    prop_assert!(!g.missing.iter().any(|m| m.ext_seq as u16 == seq));
                    if let Some(next) = g.poll_timeout() {
                        prop_assert!(n == out.len() || next > now);
                    }
                }
            }
        }
    }
}
