//! A simulated bottleneck link in front of one subscriber: a constant-rate server with a drop-tail
//! queue, applied to the datagrams its socket received before the subscriber sees them.
//!
//! Each datagram leaves the link when the server has sent everything queued before it at `rate`:
//! `departure = max(arrival, previous departure) + size / rate`. What would push the queue past its
//! byte limit (~100 ms at the rate, what a home router's buffer holds) is dropped, as a full router
//! queue drops. The subscriber then records the departure as the datagram's arrival (its
//! transport-cc feedback), so the worker's estimator sees the queueing delay and loss a real
//! bottleneck gives it.
//!
//! Storage is a fixed ring of datagram slots allocated once: nothing is allocated per packet, and
//! the queue is bounded by bytes and by slots.

use std::time::{Duration, Instant};

/// Room for one datagram in a slot (the largest the worker sends, with room to decrypt in place).
pub const SLOT: usize = super::transport::BUFFER;
/// The queue holds this long at the link's rate.
pub const QUEUE_TIME: Duration = Duration::from_millis(100);
/// Slots are sized for datagrams this small on average (a queue of audio packets may hold fewer
/// datagrams than its bytes allow), within these bounds.
const MIN_AVERAGE_DATAGRAM: usize = 200;
const MIN_SLOTS: usize = 16;
const MAX_SLOTS: usize = 4096;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Dropped at the tail: the queue was full.
    pub dropped: u64,
    pub dropped_bytes: u64,
}

pub struct Bottleneck {
    /// Bytes per second.
    rate: u64,
    capacity_bytes: usize,
    slots: Box<[[u8; SLOT]]>,
    /// Length and departure of each slot's datagram.
    meta: Box<[(usize, Instant)]>,
    /// Index of the oldest queued datagram and how many are queued.
    head: usize,
    queued: usize,
    queued_bytes: usize,
    /// When the server finishes the last queued datagram.
    busy_until: Option<Instant>,
    pub counters: LinkCounters,
}

impl Bottleneck {
    /// A link of `kbps` kbit/s (at least 8).
    pub fn new(kbps: u64, now: Instant) -> Self {
        let rate = kbps.max(8) * 1000 / 8;
        let capacity_bytes = (rate * QUEUE_TIME.as_millis() as u64 / 1000).max(SLOT as u64) as usize;
        let slots = (capacity_bytes / MIN_AVERAGE_DATAGRAM).clamp(MIN_SLOTS, MAX_SLOTS);
        Self {
            rate,
            capacity_bytes,
            slots: vec![[0u8; SLOT]; slots].into_boxed_slice(),
            meta: vec![(0, now); slots].into_boxed_slice(),
            head: 0,
            queued: 0,
            queued_bytes: 0,
            busy_until: None,
            counters: LinkCounters::default(),
        }
    }

    pub fn kbps(&self) -> u64 {
        self.rate * 8 / 1000
    }

    /// A datagram arrives at the link at `now`; false if it was dropped.
    pub fn push(&mut self, now: Instant, datagram: &[u8]) -> bool {
        let len = datagram.len();
        if len > SLOT || self.queued == self.slots.len() || self.queued_bytes + len > self.capacity_bytes {
            self.counters.dropped += 1;
            self.counters.dropped_bytes += len as u64;
            return false;
        }
        let start = self.busy_until.map_or(now, |t| t.max(now));
        let departure = start + Duration::from_nanos(len as u64 * 1_000_000_000 / self.rate);
        self.busy_until = Some(departure);
        let at = (self.head + self.queued) % self.slots.len();
        self.slots[at][..len].copy_from_slice(datagram);
        self.meta[at] = (len, departure);
        self.queued += 1;
        self.queued_bytes += len;
        true
    }

    /// When the oldest queued datagram leaves the link.
    pub fn next_departure(&self) -> Option<Instant> {
        (self.queued > 0).then(|| self.meta[self.head].1)
    }

    /// The oldest datagram if it has left the link by `now`: its departure time and its bytes (in a
    /// buffer of [`SLOT`] bytes the caller may decrypt in place), with its length.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, &mut [u8], usize)> {
        let (len, departure) = self.meta[self.head];
        if self.queued == 0 || departure > now {
            return None;
        }
        let at = self.head;
        self.head = (self.head + 1) % self.slots.len();
        self.queued -= 1;
        self.queued_bytes -= len;
        self.counters.delivered += 1;
        self.counters.delivered_bytes += len as u64;
        Some((departure, &mut self.slots[at][..], len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers `offered_kbps` in 1,200-byte datagrams for `seconds` and returns what left the link
    /// (kbit/s) and what it dropped.
    fn run(kbps: u64, offered_kbps: u64, seconds: u64) -> (f64, u64, Duration) {
        let start = Instant::now();
        let mut link = Bottleneck::new(kbps, start);
        let gap = Duration::from_nanos(1_200 * 8 * 1_000_000 / offered_kbps);
        let mut delivered = 0u64;
        let mut max_delay = Duration::ZERO;
        let mut now = start;
        let end = start + Duration::from_secs(seconds);
        while now < end {
            if link.push(now, &[0x80; 1_200]) {
                max_delay = max_delay.max(link.busy_until.unwrap() - now);
            }
            while let Some((_, _, len)) = link.pop_due(now) {
                delivered += len as u64;
            }
            now += gap;
        }
        (delivered as f64 * 8.0 / 1000.0 / seconds as f64, link.counters.dropped, max_delay)
    }

    #[test]
    fn below_the_rate_everything_passes_at_once() {
        let (kbps, dropped, max_delay) = run(1_000, 500, 5);
        assert_eq!(dropped, 0);
        assert!((480.0..=510.0).contains(&kbps), "{kbps}");
        // One datagram's serialisation: 9.6 ms at 1 Mbit/s.
        assert!(max_delay <= Duration::from_millis(10), "{max_delay:?}");
    }

    #[test]
    fn above_the_rate_it_delivers_the_rate_and_drops_the_rest_within_the_queue() {
        let (kbps, dropped, max_delay) = run(400, 1_000, 5);
        assert!((380.0..=410.0).contains(&kbps), "{kbps}");
        assert!(dropped > 250, "{dropped}");
        // Drop-tail: the queue never holds more than ~100 ms (plus one datagram).
        assert!(max_delay <= QUEUE_TIME + Duration::from_millis(25), "{max_delay:?}");
    }

    #[test]
    fn the_ring_wraps_and_keeps_order() {
        let start = Instant::now();
        let mut link = Bottleneck::new(100_000, start);
        let mut now = start;
        for round in 0u8..100 {
            for i in 0..3u8 {
                assert!(link.push(now, &[round, i]));
            }
            now += Duration::from_millis(1);
            for i in 0..3u8 {
                let (_, buf, len) = link.pop_due(now).expect("due");
                assert_eq!(&buf[..len], &[round, i]);
            }
            assert!(link.pop_due(now).is_none());
        }
    }
}
