//! Receive statistics of one incoming RTP stream (RFC 3550 appendix A.1, A.3, A.8): extended highest
//! sequence number, loss, interarrival jitter, and what a receiver report block needs, plus a
//! bitrate over a sliding window.

use std::time::{Duration, Instant};

/// The report block this produces is the one the RTCP writer encodes.
pub use super::rtcp::ReportBlock;

/// Most loss that a report block can carry (24-bit signed).
const MAX_CUMULATIVE_LOST: i64 = 0x7F_FFFF;
const MIN_CUMULATIVE_LOST: i64 = -0x80_0000;
/// RFC 3550 A.1: a forward step of less than this is a (possibly lossy) continuation ...
const MAX_DROPOUT: u16 = 3000;
/// ... and a backward step of at most this a reordered packet; anything else a jump.
const MAX_MISORDER: u16 = 100;
/// Internal extended sequence numbers start here so that reordered packets before the first one
/// never underflow; reports subtract it again.
const EXT_OFFSET: u64 = 1 << 32;
/// Duplicate detection covers the reordering window (bits, a multiple of 64).
const SEEN_BITS: u64 = 256;

/// Statistics of one incoming RTP stream (mediasoup's `RtpStreamRecv` counters).
#[derive(Debug)]
pub struct RecvStats {
    started: bool,
    base_ext: u64,
    max_ext: u64,
    /// Sequence number that would confirm a stream restart after a jump (RFC 3550 `bad_seq`).
    bad_seq: Option<u16>,
    /// Packets counted for loss (no duplicates, no jump candidates).
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    seen: [u64; (SEEN_BITS / 64) as usize],
    epoch: Option<Instant>,
    last_transit: Option<u32>,
    jitter_clock_rate: u32,
    /// Jitter in timestamp units × 16 (the RFC's fixed-point form).
    jitter_q4: u64,
    last_sr: Option<(u32, Instant)>,
    fraction_lost: u8,
    packets: u64,
    bytes: u64,
    duplicates: u64,
    out_of_order: u64,
    restarts: u64,
    bitrate: BitrateWindow,
}

impl Default for RecvStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvStats {
    pub fn new() -> Self {
        Self {
            started: false,
            base_ext: 0,
            max_ext: 0,
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            seen: [0; (SEEN_BITS / 64) as usize],
            epoch: None,
            last_transit: None,
            jitter_clock_rate: 0,
            jitter_q4: 0,
            last_sr: None,
            fraction_lost: 0,
            packets: 0,
            bytes: 0,
            duplicates: 0,
            out_of_order: 0,
            restarts: 0,
            bitrate: BitrateWindow::default(),
        }
    }

    /// Accounts one received packet of the stream.
    pub fn received(&mut self, arrival: Instant, seq: u16, rtp_timestamp: u32, clock_rate: u32, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
        self.bitrate.add(arrival, bytes);
        if !self.started {
            self.start(seq);
            self.update_jitter(arrival, rtp_timestamp, clock_rate);
            return;
        }
        let max_seq = self.max_ext as u16;
        let forward = seq.wrapping_sub(max_seq);
        if forward == 0 {
            self.duplicates += 1;
        } else if forward < MAX_DROPOUT {
            // In order, possibly after a gap (and across a wrap).
            let ext = self.max_ext + u64::from(forward);
            self.clear_seen(self.max_ext + 1, ext);
            self.max_ext = ext;
            self.mark_seen(ext);
            self.received += 1;
            self.bad_seq = None;
            self.update_jitter(arrival, rtp_timestamp, clock_rate);
        } else if forward <= u16::MAX - MAX_MISORDER {
            // A jump. Two packets in a row over there mean the source restarted its sequence.
            if self.bad_seq == Some(seq) {
                self.restarts += 1;
                self.start(seq);
                self.update_jitter(arrival, rtp_timestamp, clock_rate);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
            }
        } else {
            // Reordered (or a duplicate of a recent packet).
            let back = u64::from(max_seq.wrapping_sub(seq));
            let ext = self.max_ext - back;
            if self.is_seen(ext) {
                self.duplicates += 1;
                return;
            }
            self.mark_seen(ext);
            self.out_of_order += 1;
            self.received += 1;
            if ext < self.base_ext {
                // Sent before the first one we saw: it was expected after all.
                self.base_ext = ext;
            }
        }
    }

    fn start(&mut self, seq: u16) {
        self.started = true;
        self.base_ext = EXT_OFFSET | u64::from(seq);
        self.max_ext = self.base_ext;
        self.bad_seq = None;
        self.received = 1;
        self.expected_prior = 0;
        self.received_prior = 0;
        self.seen = [0; (SEEN_BITS / 64) as usize];
        self.mark_seen(self.max_ext);
        self.last_transit = None;
    }

    fn seen_bit(ext: u64) -> (usize, u64) {
        let bit = ext % SEEN_BITS;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    fn is_seen(&self, ext: u64) -> bool {
        // Older than the window: cannot tell; take it as a duplicate rather than count it twice.
        if self.max_ext - ext >= SEEN_BITS {
            return true;
        }
        let (word, mask) = Self::seen_bit(ext);
        self.seen.get(word).is_some_and(|w| w & mask != 0)
    }

    fn mark_seen(&mut self, ext: u64) {
        let (word, mask) = Self::seen_bit(ext);
        if let Some(w) = self.seen.get_mut(word) {
            *w |= mask;
        }
    }

    fn clear_seen(&mut self, from: u64, to: u64) {
        if to - from + 1 >= SEEN_BITS {
            self.seen = [0; (SEEN_BITS / 64) as usize];
            return;
        }
        for ext in from..=to {
            let (word, mask) = Self::seen_bit(ext);
            if let Some(w) = self.seen.get_mut(word) {
                *w &= !mask;
            }
        }
    }

    /// RFC 3550 A.8, in fixed point: J += (|D| - J) / 16 with D the change in transit time.
    fn update_jitter(&mut self, arrival: Instant, rtp_timestamp: u32, clock_rate: u32) {
        if clock_rate == 0 {
            return;
        }
        if clock_rate != self.jitter_clock_rate {
            self.jitter_clock_rate = clock_rate;
            self.last_transit = None;
        }
        let epoch = *self.epoch.get_or_insert(arrival);
        let elapsed_us = arrival.saturating_duration_since(epoch).as_micros();
        // Arrival in timestamp units; only differences matter, so wrapping to 32 bits is fine.
        let arrival_units = (elapsed_us * u128::from(clock_rate) / 1_000_000) as u32;
        let transit = arrival_units.wrapping_sub(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Tells the stats that a sender report for this stream arrived (for LSR and DLSR).
    pub fn sender_report_received(&mut self, now: Instant, ntp_sec: u32, ntp_frac: u32) {
        let middle = (ntp_sec << 16) | (ntp_frac >> 16);
        self.last_sr = Some((middle, now));
    }

    /// Builds the report block for `media_ssrc` and starts a new reporting interval.
    pub fn report_block(&mut self, now: Instant, media_ssrc: u32) -> ReportBlock {
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((middle, at)) => {
                let delay = now.saturating_duration_since(at).as_micros() * 65_536 / 1_000_000;
                (middle, u32::try_from(delay).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        if !self.started {
            return ReportBlock { ssrc: media_ssrc, last_sr, delay_since_last_sr, ..ReportBlock::default() };
        }
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        self.fraction_lost = match expected_interval.checked_sub(received_interval) {
            Some(lost) if lost > 0 && expected_interval > 0 => ((lost << 8) / expected_interval).min(255) as u8,
            _ => 0,
        };
        ReportBlock {
            ssrc: media_ssrc,
            fraction_lost: self.fraction_lost,
            cumulative_lost: clamp_cumulative_lost(self.packets_lost()),
            extended_highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }

    fn expected(&self) -> u64 {
        if self.started { self.max_ext - self.base_ext + 1 } else { 0 }
    }

    /// Cumulative packets lost since the stream (re)started, unclamped.
    pub fn packets_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    /// Loss fraction (0.0–1.0) of the interval ending at the last [`Self::report_block`].
    pub fn loss_fraction(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }

    pub fn extended_highest_seq(&self) -> u32 {
        (self.max_ext - EXT_OFFSET) as u32
    }

    /// Every packet handed in, duplicates included.
    pub fn packets_received(&self) -> u64 {
        self.packets
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Sequence restarts detected (jumps confirmed by the next packet).
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Received bitrate over the last second, bits/s.
    pub fn bitrate(&self, now: Instant) -> u64 {
        self.bitrate.bitrate(now)
    }
}

fn clamp_cumulative_lost(lost: i64) -> i32 {
    lost.clamp(MIN_CUMULATIVE_LOST, MAX_CUMULATIVE_LOST) as i32
}

const BITRATE_BUCKETS: usize = 20;
const BITRATE_BUCKET: Duration = Duration::from_millis(50);

/// Bytes over a sliding window of fixed buckets (1 s by default: 20 × 50 ms); no allocation.
#[derive(Debug, Clone)]
pub struct BitrateWindow {
    epoch: Option<Instant>,
    bucket_us: u64,
    /// (bucket number since the epoch, bytes in it).
    buckets: [(u64, u64); BITRATE_BUCKETS],
    /// The bucket `add` filled last: the instants it spans and its slot. Every forwarded packet adds to
    /// two windows, and comparing two instants is much cheaper than dividing a duration.
    current: Option<(Instant, Instant, usize)>,
}

impl Default for BitrateWindow {
    fn default() -> Self {
        Self::new(BITRATE_BUCKET)
    }
}

impl BitrateWindow {
    /// A window of 20 buckets of `bucket` each.
    pub fn new(bucket: Duration) -> Self {
        let bucket_us = u64::try_from(bucket.as_micros()).unwrap_or(u64::MAX).max(1);
        Self { epoch: None, bucket_us, buckets: [(u64::MAX, 0); BITRATE_BUCKETS], current: None }
    }

    fn elapsed_us(&self, now: Instant) -> Option<u64> {
        let epoch = self.epoch?;
        Some(u64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX))
    }

    pub fn add(&mut self, now: Instant, bytes: usize) {
        if let Some((start, end, slot)) = self.current
            && start <= now
            && now < end
        {
            let slot = &mut self.buckets[slot].1;
            *slot = slot.saturating_add(bytes as u64);
            return;
        }
        let epoch = *self.epoch.get_or_insert(now);
        let Some(elapsed) = self.elapsed_us(now) else { return };
        let index = elapsed / self.bucket_us;
        let slot_index = (index % BITRATE_BUCKETS as u64) as usize;
        let slot = &mut self.buckets[slot_index];
        if slot.0 != index {
            *slot = (index, 0);
        }
        slot.1 = slot.1.saturating_add(bytes as u64);
        let start = index.checked_mul(self.bucket_us).and_then(|us| epoch.checked_add(Duration::from_micros(us)));
        let end = start.and_then(|s| s.checked_add(Duration::from_micros(self.bucket_us)));
        self.current = start.zip(end).map(|(start, end)| (start, end, slot_index));
    }

    /// Bits per second over the window ending at `now` (shorter while the stream is younger).
    pub fn bitrate(&self, now: Instant) -> u64 {
        let Some(elapsed) = self.elapsed_us(now) else { return 0 };
        let current = elapsed / self.bucket_us;
        let oldest = current.saturating_sub(BITRATE_BUCKETS as u64 - 1);
        let bytes: u64 = self.buckets.iter().filter(|(i, _)| (oldest..=current).contains(i)).map(|(_, b)| b).sum();
        // The window spans the full older buckets plus the elapsed part of the current one.
        let span_us = ((current - oldest) * self.bucket_us + elapsed % self.bucket_us).min(elapsed).max(self.bucket_us);
        (u128::from(bytes) * 8 * 1_000_000 / u128::from(span_us)) as u64
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn jitter_matches_a_hand_computed_example() {
        // 8 kHz audio, 20 ms packets (160 ticks). Arrivals 0, 20, 50, 60 ms.
        // Transit (arrival units - ts): 0, 0, 400-320=80, 480-480=0. D: 0, 80, -80.
        // J×16: 0 → 0 + 0 - 0 = 0 → 0 + 80 - ((0+8)>>4 = 0) = 80 → 80 + 80 - ((80+8)>>4 = 5) = 155.
        // J = 155 >> 4 = 9 (the float form gives 5, then 5 + (80 - 5)/16 = 9.69).
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        for (i, at) in [0u64, 20, 50, 60].into_iter().enumerate() {
            stats.received(t0 + ms(at), 1000 + i as u16, 5000 + 160 * i as u32, 8000, 100);
            if i == 2 {
                assert_eq!(stats.jitter(), 5);
            }
        }
        assert_eq!(stats.jitter(), 9);
        assert_eq!(stats.report_block(t0 + ms(60), 7).jitter, 9);
    }

    #[test]
    fn perfectly_paced_stream_has_no_jitter_even_across_timestamp_wrap() {
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        for i in 0..100u32 {
            let ts = (u32::MAX - 3000 * 50).wrapping_add(i * 3000);
            stats.received(t0 + Duration::from_micros(u64::from(i) * 33_333), i as u16, ts, 90_000, 1200);
        }
        assert!(stats.jitter() <= 1, "jitter {}", stats.jitter());
    }

    #[test]
    fn loss_fraction_and_cumulative_across_wraparound() {
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        let lost = [65533u16, 2, 7];
        let mut seq = 65530u16;
        for _ in 0..17 {
            if !lost.contains(&seq) {
                stats.received(t0, seq, 0, 90_000, 1000);
            }
            seq = seq.wrapping_add(1);
        }
        let block = stats.report_block(t0, 0xAABB);
        assert_eq!(block.ssrc, 0xAABB);
        assert_eq!(block.extended_highest_seq, 0x1_000A);
        assert_eq!(block.cumulative_lost, 3);
        assert_eq!(block.fraction_lost, (3 * 256 / 17) as u8);
        assert_eq!(stats.packets_lost(), 3);
        assert!((stats.loss_fraction() - 45.0 / 256.0).abs() < 1e-9);

        // A clean interval: fraction 0, cumulative unchanged. A late packet reduces the total.
        for s in 11..=30u16 {
            stats.received(t0, s, 0, 90_000, 1000);
        }
        stats.received(t0, 7, 0, 90_000, 1000);
        let block = stats.report_block(t0, 0xAABB);
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 2));
        assert_eq!(block.extended_highest_seq, 0x1_001E);
        // No packets since: nothing expected, nothing lost.
        assert_eq!(stats.report_block(t0, 0xAABB).fraction_lost, 0);
    }

    #[test]
    fn duplicates_and_reordering_do_not_count_as_received_twice() {
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        for seq in [10u16, 12, 11, 11, 12, 13, 13, 10] {
            stats.received(t0, seq, 0, 90_000, 500);
        }
        assert_eq!(stats.duplicates(), 4);
        assert_eq!(stats.out_of_order(), 1);
        assert_eq!(stats.packets_received(), 8);
        assert_eq!(stats.bytes_received(), 4000);
        assert_eq!(stats.packets_lost(), 0);
        let block = stats.report_block(t0, 1);
        assert_eq!((block.cumulative_lost, block.fraction_lost), (0, 0));
        // A packet sent before the first one seen is expected after all.
        stats.received(t0, 9, 0, 90_000, 500);
        assert_eq!(stats.packets_lost(), 0);
    }

    #[test]
    fn a_confirmed_jump_restarts_the_sequence() {
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        for seq in [100u16, 101, 30_000, 102, 103] {
            stats.received(t0, seq, 0, 90_000, 100);
        }
        assert_eq!(stats.restarts(), 0, "a single stray packet is not a restart");
        assert_eq!(stats.extended_highest_seq(), 103);
        assert_eq!(stats.packets_lost(), 0);
        for seq in [40_000u16, 40_001, 40_003] {
            stats.received(t0, seq, 0, 90_000, 100);
        }
        assert_eq!(stats.restarts(), 1);
        assert_eq!(stats.extended_highest_seq(), 40_003);
        assert_eq!(stats.packets_lost(), 1);
        assert_eq!(stats.report_block(t0, 1).fraction_lost, 85); // 1 of 3 since the restart
    }

    #[test]
    fn lsr_and_dlsr() {
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        let block = stats.report_block(t0, 5);
        assert_eq!(block, ReportBlock { ssrc: 5, ..ReportBlock::default() });
        stats.received(t0, 1, 0, 48_000, 100);
        stats.sender_report_received(t0, 0x1234_5678, 0x9ABC_DEF0);
        let block = stats.report_block(t0 + ms(1500), 5);
        assert_eq!(block.last_sr, 0x5678_9ABC);
        assert_eq!(block.delay_since_last_sr, 98_304); // 1.5 s × 65536
    }

    #[test]
    fn cumulative_lost_is_clamped_to_24_bits() {
        assert_eq!(clamp_cumulative_lost(10_000_000), 0x7F_FFFF);
        assert_eq!(clamp_cumulative_lost(-10_000_000), -0x80_0000);
        assert_eq!(clamp_cumulative_lost(-5), -5);
    }

    #[test]
    fn bitrate_over_a_sliding_window() {
        let t0 = Instant::now();
        let mut stats = RecvStats::new();
        assert_eq!(stats.bitrate(t0), 0);
        // 1000 bytes every 10 ms = 800 kbit/s.
        for i in 0..300u64 {
            stats.received(t0 + ms(i * 10), i as u16, 0, 90_000, 1000);
        }
        let rate = stats.bitrate(t0 + ms(2995));
        assert!((760_000..=840_000).contains(&rate), "rate {rate}");
        // Half a second of silence halves it; two seconds empty the window.
        let rate = stats.bitrate(t0 + ms(3495));
        assert!((360_000..=440_000).contains(&rate), "rate {rate}");
        assert_eq!(stats.bitrate(t0 + ms(5000)), 0);
    }

    proptest! {
        #[test]
        fn the_cached_bucket_counts_as_the_full_computation_does(
            steps in proptest::collection::vec((0u64..120_000, any::<bool>(), 1usize..1500), 1..200),
        ) {
            let t0 = Instant::now() + Duration::from_secs(10);
            let (mut cached, mut full) = (BitrateWindow::default(), BitrateWindow::default());
            let mut now = t0;
            for (dt_us, backwards, bytes) in steps {
                // Mostly forwards; sometimes an instant slightly in the past (another socket's read).
                now = if backwards { now - Duration::from_micros(dt_us / 8) } else { now + Duration::from_micros(dt_us) };
                cached.add(now, bytes);
                full.current = None;
                full.add(now, bytes);
                prop_assert_eq!(cached.buckets, full.buckets);
                prop_assert_eq!(cached.bitrate(now), full.bitrate(now));
            }
        }

        #[test]
        fn random_streams_keep_report_invariants(
            events in proptest::collection::vec((any::<i16>(), 0u64..50, any::<u32>(), any::<bool>()), 1..300),
        ) {
            let t0 = Instant::now();
            let mut stats = RecvStats::new();
            let (mut seq, mut now) = (0u16, t0);
            for (step, dt, ts, report) in events {
                // Mostly small steps, sometimes anything.
                let step = if step % 7 == 0 { step } else { step % 20 };
                seq = seq.wrapping_add_signed(step);
                now += ms(dt);
                stats.received(now, seq, ts, 90_000, 100);
                prop_assert!(stats.packets_lost() >= 0);
                if report {
                    let block = stats.report_block(now, 1);
                    prop_assert!((MIN_CUMULATIVE_LOST..=MAX_CUMULATIVE_LOST).contains(&i64::from(block.cumulative_lost)));
                    prop_assert_eq!(block.extended_highest_seq as u16, stats.max_ext as u16);
                }
            }
        }
    }
}
