//! Measuring a probe cluster: the rate at which the cluster's packets (its padding and the media
//! sent between them) arrived. A cluster sent faster than the bottleneck arrives at the
//! bottleneck's rate, which is the measurement; one the path carried fully arrives at its own.
//!
//! Fixed slots for the few clusters in flight; nothing allocated per packet.

use super::probe::{MIN_PACKETS, ProbeCluster};

const SLOTS: usize = 4;
/// A cluster not resolved this long after it was handed out has failed (lost, never sent).
const TIMEOUT_US: i64 = 1_500_000;
/// At least this share of the cluster's packets must be reported received for a result.
const MIN_RECEIVED_SHARE: f64 = 0.5;

#[derive(Debug, Clone, Copy)]
struct Track {
    id: u32,
    target_bytes: usize,
    created_us: i64,
    padding_bytes: usize,
    padding_packets: usize,
    sent: u32,
    sent_bytes: u64,
    first_send_us: i64,
    last_send_us: i64,
    last_sent_size: u32,
    reported: u32,
    received: u32,
    received_bytes: u64,
    first_arrival_us: i64,
    first_arrival_size: u32,
    last_arrival_us: i64,
}

impl Track {
    fn done_sending(&self) -> bool {
        self.padding_bytes >= self.target_bytes && self.padding_packets >= MIN_PACKETS
    }

    /// min(send rate, receive rate); each excludes the packet whose transmission the interval
    /// does not cover (the last sent, the first received).
    fn rate_bps(&self) -> Option<f64> {
        if self.received < MIN_PACKETS as u32 || f64::from(self.received) < MIN_RECEIVED_SHARE * f64::from(self.sent) {
            return None;
        }
        let send_us = self.last_send_us - self.first_send_us;
        let recv_us = self.last_arrival_us.saturating_sub(self.first_arrival_us);
        if send_us <= 0 || recv_us <= 0 {
            return None;
        }
        let send = (self.sent_bytes - u64::from(self.last_sent_size)) as f64 * 8e6 / send_us as f64;
        let recv = (self.received_bytes - u64::from(self.first_arrival_size)) as f64 * 8e6 / recv_us as f64;
        Some(send.min(recv))
    }
}

#[derive(Debug)]
pub(super) struct ProbeTracker {
    slots: [Option<Track>; SLOTS],
    /// The slot of the cluster being sent: media packets sent meanwhile count towards it.
    sending: Option<usize>,
}

impl ProbeTracker {
    pub fn new() -> Self {
        Self { slots: [None; SLOTS], sending: None }
    }

    pub fn on_created(&mut self, cluster: &ProbeCluster, now_us: i64) {
        // Reuse a free slot, else the oldest (it has all but timed out).
        let index = self
            .slots
            .iter()
            .position(Option::is_none)
            .or_else(|| (0..SLOTS).min_by_key(|&i| self.slots[i].map_or(i64::MIN, |t| t.created_us)))
            .unwrap_or(0);
        self.slots[index] = Some(Track {
            id: cluster.id,
            target_bytes: cluster.bytes,
            created_us: now_us,
            padding_bytes: 0,
            padding_packets: 0,
            sent: 0,
            sent_bytes: 0,
            first_send_us: 0,
            last_send_us: 0,
            last_sent_size: 0,
            reported: 0,
            received: 0,
            received_bytes: 0,
            first_arrival_us: i64::MAX,
            first_arrival_size: 0,
            last_arrival_us: i64::MIN,
        });
        if self.sending == Some(index) {
            self.sending = None;
        }
    }

    /// Whether a cluster has started going out and is not resolved yet (one handed out but never
    /// sent does not count: it cannot have built a queue).
    pub fn any_in_flight(&self) -> bool {
        self.slots.iter().flatten().any(|t| t.sent > 0)
    }

    /// A packet went out; returns the cluster it counts towards.
    pub fn on_sent(&mut self, probe: Option<u32>, size: u32, send_us: i64) -> Option<u32> {
        if let Some(id) = probe {
            // A probe id we never handed out is plain padding.
            self.sending = self.slots.iter().position(|t| t.is_some_and(|t| t.id == id && !t.done_sending()));
        }
        let index = self.sending?;
        let track = self.slots[index].as_mut()?;
        if track.sent == 0 {
            track.first_send_us = send_us;
        }
        track.sent += 1;
        track.sent_bytes += u64::from(size);
        track.last_send_us = send_us;
        track.last_sent_size = size;
        if probe.is_some() {
            track.padding_bytes += size as usize;
            track.padding_packets += 1;
            if track.done_sending() {
                self.sending = None;
            }
        }
        Some(track.id)
    }

    /// Feedback's first report of a packet of `cluster`.
    pub fn on_reported(&mut self, cluster: u32, size: u32, arrival_us: Option<i64>) {
        let Some(track) = self.slots.iter_mut().flatten().find(|t| t.id == cluster) else {
            return;
        };
        track.reported += 1;
        if let Some(arrival) = arrival_us {
            track.received += 1;
            track.received_bytes += u64::from(size);
            if arrival < track.first_arrival_us {
                track.first_arrival_us = arrival;
                track.first_arrival_size = size;
            }
            track.last_arrival_us = track.last_arrival_us.max(arrival);
        }
    }

    /// A resolved cluster: (id, measured rate or `None` when the measurement failed).
    pub fn poll_result(&mut self, now_us: i64) -> Option<(u32, Option<f64>)> {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(track) = slot else { continue };
            let complete = track.done_sending() && track.reported >= track.sent;
            let timed_out = now_us - track.created_us >= TIMEOUT_US;
            if complete || timed_out {
                let result = (track.id, track.rate_bps());
                *slot = None;
                if self.sending == Some(index) {
                    self.sending = None;
                }
                return Some(result);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cluster(id: u32, bytes: usize) -> ProbeCluster {
        ProbeCluster { id, target_bps: 2_000_000, bytes, min_packets: MIN_PACKETS, duration: Duration::from_millis(30) }
    }

    #[test]
    fn bwe_probe_rate_is_the_slower_of_send_and_receive() {
        let mut tracker = ProbeTracker::new();
        tracker.on_created(&cluster(7, 12_000), 0);
        // 10 packets of 1200 bytes sent 4.8 ms apart (2 Mbit/s), arriving 9.6 ms apart (1 Mbit/s).
        let mut tags = Vec::new();
        for i in 0..10 {
            tags.push(tracker.on_sent(Some(7), 1200, i * 4_800));
        }
        assert!(tags.iter().all(|t| *t == Some(7)));
        assert_eq!(tracker.on_sent(None, 1200, 50_000), None, "cluster complete: media is not part of it");
        for i in 0..10 {
            assert!(tracker.poll_result(100_000).is_none(), "not all reported yet");
            tracker.on_reported(7, 1200, Some(20_000 + i * 9_600));
        }
        let (id, rate) = tracker.poll_result(200_000).unwrap();
        assert_eq!(id, 7);
        let rate = rate.unwrap();
        assert!((rate - 1e6).abs() < 1e3, "{rate}");
    }

    #[test]
    fn bwe_probe_with_too_few_packets_received_fails() {
        let mut tracker = ProbeTracker::new();
        tracker.on_created(&cluster(1, 12_000), 0);
        for i in 0..10 {
            tracker.on_sent(Some(1), 1200, i * 4_800);
        }
        for i in 0..10 {
            tracker.on_reported(1, 1200, (i < 3).then_some(20_000 + i * 9_600));
        }
        assert_eq!(tracker.poll_result(100_000), Some((1, None)));
        // Unknown ids are plain padding.
        assert_eq!(tracker.on_sent(Some(99), 1200, 0), None);
    }
}
