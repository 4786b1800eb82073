//! The outgoing sequence space of a consumer (mediasoup's `SeqManager`) and the matching RTP
//! timestamp offset.
//!
//! A consumer forwards a subset of its producer's packets: it drops packets on purpose (while waiting
//! for a keyframe, layers it does not forward, empty padding) and it pauses, resumes and switches
//! producers (simulcast layers). The receiver must still see one continuous sequence: a gap in it
//! means loss and triggers NACKs and concealment. So outgoing = incoming − (offset + packets dropped
//! before it), with all arithmetic modulo 2^16.

use std::time::Instant;

/// Late packets further than this behind the newest input are rejected; this bounds how long dropped
/// ranges must be remembered and keeps every comparison well inside the ±2^15 window where 16-bit
/// "newer than" is unambiguous.
pub const MAX_LATE: u16 = 4096;
/// Dropped ranges remembered for mapping late packets. Dropping every other packet (a temporal
/// layer) needs one range per packet; older ones are folded into the offset.
const MAX_RANGES: usize = 512;

/// `a` comes after `b` in 16-bit sequence order.
fn is_newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

/// Consecutive dropped inputs `start ..= start + len - 1`.
#[derive(Debug, Clone, Copy, Default)]
struct DropRange {
    start: u16,
    len: u16,
}

impl DropRange {
    fn end(self) -> u16 {
        self.start.wrapping_add(self.len.wrapping_sub(1))
    }

    fn contains(self, seq: u16) -> bool {
        seq.wrapping_sub(self.start) < self.len
    }
}

/// Maps a consumer's incoming sequence numbers to its continuous outgoing sequence space.
#[derive(Debug, Clone)]
pub struct SeqManager {
    started: bool,
    /// Sync offset plus every dropped packet folded out of `ranges`.
    base_offset: u16,
    /// Recent dropped ranges, oldest first, in a ring.
    ranges: [DropRange; MAX_RANGES],
    ranges_head: usize,
    ranges_len: usize,
    /// Sum of the lengths in `ranges` (mod 2^16).
    ranges_dropped: u16,
    max_input: u16,
    max_output: u16,
    /// Inputs before this one are rejected (the last sync point, or too late).
    floor: u16,
}

impl SeqManager {
    /// `initial_output` is the first outgoing sequence number (random, RFC 3550 §5.1).
    pub fn new(initial_output: u16) -> Self {
        Self {
            started: false,
            base_offset: 0,
            ranges: [DropRange::default(); MAX_RANGES],
            ranges_head: 0,
            ranges_len: 0,
            ranges_dropped: 0,
            max_input: 0,
            max_output: initial_output.wrapping_sub(1),
            floor: 0,
        }
    }

    /// The highest outgoing sequence number handed out so far.
    pub fn max_output(&self) -> u16 {
        self.max_output
    }

    /// Makes input `seq` map to the outgoing number after the last one sent; anything before `seq`
    /// is rejected from now on. Call at resume, at a producer/layer switch, or when forwarding
    /// starts on a keyframe. The first `input` or `drop` syncs implicitly.
    pub fn sync(&mut self, seq: u16) {
        self.started = true;
        self.base_offset = seq.wrapping_sub(self.max_output.wrapping_add(1));
        self.ranges_head = 0;
        self.ranges_len = 0;
        self.ranges_dropped = 0;
        self.max_input = seq.wrapping_sub(1);
        self.floor = seq;
    }

    /// The outgoing sequence number for input `seq`, or `None` if it must not be sent: from before
    /// the sync point, too late, or dropped before.
    pub fn input(&mut self, seq: u16) -> Option<u16> {
        if !self.started {
            self.sync(seq);
        }
        if is_newer(self.floor, seq) {
            return None;
        }
        let shift = if is_newer(seq, self.max_input) {
            self.advance(seq);
            self.ranges_dropped
        } else {
            // Late: only the drops before it shift it.
            let mut after = 0u16;
            for i in (0..self.ranges_len).rev() {
                let range = self.range(i);
                if range.contains(seq) {
                    return None;
                }
                if is_newer(seq, range.end()) {
                    break;
                }
                after = after.wrapping_add(range.len);
            }
            self.ranges_dropped.wrapping_sub(after)
        };
        let output = seq.wrapping_sub(self.base_offset).wrapping_sub(shift);
        if is_newer(output, self.max_output) {
            self.max_output = output;
        }
        Some(output)
    }

    /// The SFU discards input `seq`: the packets after it shift down so the receiver sees no gap.
    /// Only a packet newer than every input so far can be taken out; a late one leaves its gap
    /// (what came after it is already sent).
    pub fn drop(&mut self, seq: u16) {
        if !self.started {
            self.sync(seq);
        }
        if is_newer(self.floor, seq) || !is_newer(seq, self.max_input) {
            return;
        }
        match self.ranges_len.checked_sub(1).map(|last| self.range_index(last)) {
            Some(last) if self.ranges[last].end().wrapping_add(1) == seq => {
                self.ranges[last].len = self.ranges[last].len.wrapping_add(1);
            }
            _ => {
                if self.ranges_len == MAX_RANGES {
                    self.fold_oldest();
                }
                let index = self.range_index(self.ranges_len);
                self.ranges[index] = DropRange { start: seq, len: 1 };
                self.ranges_len += 1;
            }
        }
        self.ranges_dropped = self.ranges_dropped.wrapping_add(1);
        self.advance(seq);
    }

    fn range_index(&self, i: usize) -> usize {
        (self.ranges_head + i) % MAX_RANGES
    }

    fn range(&self, i: usize) -> DropRange {
        self.ranges[self.range_index(i)]
    }

    fn advance(&mut self, seq: u16) {
        self.max_input = seq;
        let oldest_allowed = seq.wrapping_sub(MAX_LATE);
        if is_newer(oldest_allowed, self.floor) {
            self.floor = oldest_allowed;
        }
        while self.ranges_len > 0 && is_newer(self.floor, self.range(0).start) {
            self.fold_oldest();
        }
    }

    /// Moves the oldest dropped range into the base offset. Inputs before its end are rejected from
    /// then on, so the fold cannot change any mapping that is still accepted.
    fn fold_oldest(&mut self) {
        if self.ranges_len == 0 {
            return;
        }
        let range = self.range(0);
        self.base_offset = self.base_offset.wrapping_add(range.len);
        self.ranges_dropped = self.ranges_dropped.wrapping_sub(range.len);
        self.ranges_head = (self.ranges_head + 1) % MAX_RANGES;
        self.ranges_len -= 1;
        let after = range.end().wrapping_add(1);
        if is_newer(after, self.floor) {
            self.floor = after;
        }
    }
}

/// The outgoing RTP timestamp of a consumer: `out = in + offset`. At a sync (resume, producer
/// switch) the offset is chosen so the outgoing timestamp continues from the last one sent by the
/// wall-clock time elapsed since, as the receiver's jitter buffer expects.
#[derive(Debug, Clone)]
pub struct TimestampOffset {
    offset: u32,
    /// Newest outgoing timestamp and when it was sent.
    newest: Option<(u32, Instant)>,
}

impl TimestampOffset {
    pub fn new(initial_offset: u32) -> Self {
        Self { offset: initial_offset, newest: None }
    }

    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// The outgoing timestamp for incoming `rtp_timestamp`, sent at `now`.
    pub fn map(&mut self, now: Instant, rtp_timestamp: u32) -> u32 {
        let out = rtp_timestamp.wrapping_add(self.offset);
        if self.newest.is_none_or(|(newest, _)| (out.wrapping_sub(newest) as i32) > 0) {
            self.newest = Some((out, now));
        }
        out
    }

    /// The next packet, with incoming `rtp_timestamp`, is the first after a sync: it maps to the
    /// newest outgoing timestamp plus the elapsed time (at least one tick, so it is a new frame).
    /// Before anything was sent the offset is kept.
    pub fn sync(&mut self, now: Instant, rtp_timestamp: u32, clock_rate: u32) {
        let Some((newest, at)) = self.newest else { return };
        let elapsed_ticks = now.saturating_duration_since(at).as_micros() * u128::from(clock_rate) / 1_000_000;
        let target = newest.wrapping_add((elapsed_ticks as u32).max(1));
        self.offset = target.wrapping_sub(rtp_timestamp);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn continuity_across_drops() {
        let mut seq = SeqManager::new(1000);
        let mut outputs = Vec::new();
        for input in 1..=20u16 {
            if [5, 6, 10].contains(&input) {
                seq.drop(input);
            } else {
                outputs.push(seq.input(input).unwrap());
            }
        }
        assert_eq!(outputs, (1000..1017).collect::<Vec<_>>());
        assert_eq!(seq.max_output(), 1016);
        // A dropped packet arriving again (a retransmission) is not sent.
        assert_eq!(seq.input(5), None);
    }

    #[test]
    fn late_packets_map_into_their_place() {
        let mut seq = SeqManager::new(100);
        assert_eq!(seq.input(1), Some(100));
        assert_eq!(seq.input(2), Some(101));
        seq.drop(4); // 3 not here yet
        assert_eq!(seq.input(5), Some(103));
        assert_eq!(seq.input(3), Some(102));
        assert_eq!(seq.input(2), Some(101), "a duplicate maps the same");
        // A late packet dropped: nothing after it can shift any more, its gap stays.
        assert_eq!(seq.input(8), Some(106));
        seq.drop(7);
        assert_eq!(seq.input(9), Some(107));
        assert_eq!(seq.input(6), Some(104));
    }

    #[test]
    fn sync_after_pause_continues_the_sequence() {
        let mut seq = SeqManager::new(500);
        for input in 10..20u16 {
            seq.input(input);
        }
        assert_eq!(seq.max_output(), 509);
        // Paused; packets 20..=399 never forwarded. Resume at 400.
        seq.sync(400);
        assert_eq!(seq.input(401), Some(511), "400 lost: the receiver may NACK 510");
        assert_eq!(seq.input(400), Some(510));
        assert_eq!(seq.input(19), None, "before the sync point");
        assert_eq!(seq.input(399), None);
        // A producer switch to another sequence space entirely.
        seq.sync(60_000);
        assert_eq!(seq.input(60_000), Some(512));
        assert_eq!(seq.input(60_001), Some(513));
    }

    #[test]
    fn wraparound_of_input_and_output() {
        let mut seq = SeqManager::new(65_530);
        let mut outputs = Vec::new();
        let mut input = 65_520u16;
        for i in 0..40 {
            if i % 4 == 1 {
                seq.drop(input);
            } else {
                outputs.push(seq.input(input).unwrap());
            }
            input = input.wrapping_add(1);
        }
        let expected: Vec<u16> = (0..30u16).map(|i| 65_530u16.wrapping_add(i)).collect();
        assert_eq!(outputs, expected);
    }

    #[test]
    fn old_packets_are_rejected() {
        let mut seq = SeqManager::new(0);
        for input in 0..=5000u16 {
            seq.input(input);
        }
        assert_eq!(seq.input(5000 - MAX_LATE - 1), None);
        assert_eq!(seq.input(5000 - MAX_LATE + 1), Some(5000 - MAX_LATE + 1));
        assert_eq!(seq.input(40_000), None, "a leap of more than half the space looks old");
    }

    #[test]
    fn many_separate_drops_stay_bounded_and_continuous() {
        let mut seq = SeqManager::new(7);
        let mut next = 7u16;
        for input in 0..20_000u16 {
            if input % 2 == 1 {
                seq.drop(input);
            } else {
                assert_eq!(seq.input(input), Some(next));
                next = next.wrapping_add(1);
            }
            assert!(seq.ranges_len <= MAX_RANGES);
        }
        // A long keyframe wait: one range, folded as it ages.
        for input in 20_000..60_000u16 {
            seq.drop(input);
        }
        assert_eq!(seq.input(60_000), Some(next));
    }

    #[test]
    fn timestamps_continue_by_elapsed_time() {
        let t0 = Instant::now();
        let mut ts = TimestampOffset::new(1000);
        assert_eq!(ts.map(t0, 90_000), 91_000);
        assert_eq!(ts.map(t0 + Duration::from_millis(33), 93_000), 94_000);
        assert_eq!(ts.map(t0 + Duration::from_millis(40), 90_000), 91_000, "late packet");
        // Two seconds later, from another producer with its own timestamps.
        let resume = t0 + Duration::from_millis(2033);
        ts.sync(resume, 5, 90_000);
        assert_eq!(ts.map(resume, 5), 94_000 + 180_000);
        // Switching with no time elapsed still makes a new frame.
        ts.sync(resume, u32::MAX, 90_000);
        assert_eq!(ts.map(resume, u32::MAX), 94_000 + 180_001);
        // Nothing sent yet: the offset stands.
        let mut fresh = TimestampOffset::new(7);
        fresh.sync(t0, 100, 48_000);
        assert_eq!(fresh.map(t0, 100), 107);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Input,
        Drop,
        Sync,
        Skip(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![6 => Just(Op::Input), 3 => Just(Op::Drop), 1 => Just(Op::Sync), 1 => (1u8..50).prop_map(Op::Skip)]
    }

    proptest! {
        #[test]
        fn in_order_outputs_are_strictly_continuous(
            start in any::<u16>(),
            initial in any::<u16>(),
            ops in proptest::collection::vec(op(), 1..2000),
        ) {
            let mut seq = SeqManager::new(initial);
            let mut input = start;
            // The model: the next output, and whether anything started the stream yet.
            let mut expected = initial;
            let mut last_sent: Option<u16> = None;
            let mut started = false;
            for op in ops {
                match op {
                    Op::Input => {
                        prop_assert_eq!(seq.input(input), Some(expected));
                        last_sent = Some(expected);
                        expected = expected.wrapping_add(1);
                        input = input.wrapping_add(1);
                        started = true;
                    }
                    Op::Drop => {
                        seq.drop(input);
                        input = input.wrapping_add(1);
                        started = true;
                    }
                    // A pause: inputs skipped, then the next one continues right after the last sent.
                    Op::Sync => {
                        input = input.wrapping_add(100);
                        seq.sync(input);
                        expected = last_sent.map_or(initial, |s| s.wrapping_add(1));
                        started = true;
                    }
                    // Packets lost upstream: the gap is kept (the receiver NACKs it), except before
                    // the first packet.
                    Op::Skip(n) => {
                        input = input.wrapping_add(u16::from(n));
                        if started {
                            expected = expected.wrapping_add(u16::from(n));
                        }
                    }
                }
                prop_assert!(seq.ranges_len <= MAX_RANGES);
            }
        }

        #[test]
        fn random_inputs_keep_the_order_of_nearby_packets(
            ops in proptest::collection::vec((any::<i16>(), 0u8..8), 1..1000),
        ) {
            let mut seq = SeqManager::new(0);
            let mut input = 0u16;
            let mut recent: std::collections::VecDeque<(u16, u16)> = std::collections::VecDeque::new();
            for (step, kind) in ops {
                let step = if step % 5 == 0 { step } else { step % 40 };
                input = input.wrapping_add_signed(step);
                match kind {
                    0 | 1 => seq.drop(input),
                    2 => {
                        seq.sync(input);
                        recent.clear();
                    }
                    _ => {
                        if let Some(out) = seq.input(input) {
                            // Between two forwarded packets close to each other, the outgoing distance
                            // keeps the sign of the incoming one and shrinks by at most the drops.
                            for &(prev_in, prev_out) in &recent {
                                let d_in = input.wrapping_sub(prev_in) as i16;
                                let d_out = out.wrapping_sub(prev_out) as i16;
                                if d_in.unsigned_abs() < MAX_LATE {
                                    prop_assert_eq!(d_in.signum(), d_out.signum(), "{} -> {} vs {} -> {}", prev_in, prev_out, input, out);
                                    prop_assert!(d_out.unsigned_abs() <= d_in.unsigned_abs());
                                }
                            }
                            recent.push_back((input, out));
                            if recent.len() > 64 {
                                recent.pop_front();
                            }
                        }
                    }
                }
                prop_assert!(seq.ranges_len <= MAX_RANGES);
                // Forget packets far behind the newest input (pruned every step, so none can come
                // round the 16-bit space and look recent again).
                let newest = seq.max_input;
                recent.retain(|&(prev_in, _)| newest.wrapping_sub(prev_in) <= MAX_LATE);
            }
        }
    }
}
