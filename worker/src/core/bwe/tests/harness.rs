//! A closed loop in virtual time: a sender limited by the estimate (and by a media rate) sends
//! 1200-byte packets every 5 ms plus the probe clusters the estimator asks for, through a [`Link`]
//! into a real [`TwccRecorder`]; its feedback (real RTCP bytes) comes back after the base delay
//! through [`parse_twcc_packet`] into [`SendSideBwe::on_feedback`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::link::Link;
use crate::core::bwe::{ProbeCluster, SendSideBwe};
use crate::core::rtp::twcc::{TwccRecorder, parse_twcc_packet};

pub const PACKET: usize = 1200;
const STEP: Duration = Duration::from_millis(1);
const MEDIA_TICK: Duration = Duration::from_millis(5);
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Duration,
    pub estimate: u64,
    pub acked: Option<u64>,
}

struct ActiveProbe {
    cluster: ProbeCluster,
    sent: usize,
    packets: usize,
    next_at: Instant,
}

pub struct Harness {
    pub base: Instant,
    pub now: Instant,
    pub bwe: SendSideBwe,
    pub link: Link,
    recorder: TwccRecorder,
    /// The most the media source can send.
    pub media_rate_bps: u64,
    next_seq: u16,
    in_flight: VecDeque<(Instant, u16)>,
    feedback: VecDeque<(Instant, Vec<u8>)>,
    probes: VecDeque<ProbeCluster>,
    active_probe: Option<ActiveProbe>,
    media_budget: f64,
    next_media: Instant,
    next_sample: Instant,
    pub samples: Vec<Sample>,
    pub probe_packets: u64,
}

impl Harness {
    pub fn new(initial_bps: u64, link: Link) -> Self {
        let base = Instant::now();
        let mut bwe = SendSideBwe::new(initial_bps, 30_000, 20_000_000);
        let media_rate_bps = 5_000_000;
        bwe.set_desired_bitrate(media_rate_bps);
        Self {
            base,
            now: base,
            bwe,
            link,
            recorder: TwccRecorder::new(0x1111),
            media_rate_bps,
            // Start near the wrap so every run crosses it.
            next_seq: 65_000,
            in_flight: VecDeque::new(),
            feedback: VecDeque::new(),
            probes: VecDeque::new(),
            active_probe: None,
            media_budget: 0.0,
            next_media: base,
            next_sample: base,
            samples: Vec::new(),
            probe_packets: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.step();
            self.now += STEP;
        }
    }

    /// Runs until `until` holds (checked every step) or `limit` passes; returns the time taken.
    pub fn run_until(&mut self, limit: Duration, until: impl Fn(&Self) -> bool) -> Option<Duration> {
        let start = self.now;
        while self.now - start < limit {
            if until(self) {
                return Some(self.now - start);
            }
            self.step();
            self.now += STEP;
        }
        None
    }

    /// Mean of the sampled estimates (and acked rates) between two offsets from the start.
    pub fn mean(&self, from: Duration, to: Duration) -> (f64, f64) {
        let window: Vec<&Sample> = self.samples.iter().filter(|s| s.at >= from && s.at < to).collect();
        let n = window.len().max(1) as f64;
        let estimate = window.iter().map(|s| s.estimate as f64).sum::<f64>() / n;
        let acked = window.iter().map(|s| s.acked.unwrap_or(0) as f64).sum::<f64>() / n;
        (estimate, acked)
    }

    pub fn range(&self, from: Duration, to: Duration) -> (u64, u64) {
        let window = self.samples.iter().filter(|s| s.at >= from && s.at < to).map(|s| s.estimate);
        window.fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e), hi.max(e)))
    }

    fn step(&mut self) {
        let now = self.now;
        while let Some(&(arrival, seq)) = self.in_flight.front() {
            if arrival > now {
                break;
            }
            self.in_flight.pop_front();
            self.recorder.record(seq, arrival);
        }
        let mut buf = [0u8; 1200];
        while let Some(len) = self.recorder.poll_feedback(now, 0x2222, &mut buf) {
            self.feedback.push_back((now + self.link.base_delay(), buf[..len].to_vec()));
        }
        while let Some((at, _)) = self.feedback.front() {
            if *at > now {
                break;
            }
            let (_, bytes) = self.feedback.pop_front().expect("front exists");
            let (_, _, feedback) = parse_twcc_packet(&bytes).expect("the recorder's feedback parses");
            self.bwe.on_feedback(now, &feedback);
        }
        while let Some(cluster) = self.bwe.poll_probe(now) {
            self.probes.push_back(cluster);
        }
        self.send_probes();
        if now >= self.next_media {
            self.next_media += MEDIA_TICK;
            let rate = self.bwe.estimate_bps().min(self.media_rate_bps) as f64;
            self.media_budget += rate * MEDIA_TICK.as_secs_f64() / 8.0;
            while self.media_budget >= PACKET as f64 {
                self.media_budget -= PACKET as f64;
                self.send(PACKET, None);
            }
        }
        if now >= self.next_sample {
            self.next_sample += SAMPLE_EVERY;
            let stats = self.bwe.stats();
            self.samples.push(Sample { at: self.elapsed(), estimate: stats.estimate_bps, acked: stats.acked_bps });
        }
    }

    /// Probe padding paced at the cluster's target rate (to the 1 ms step).
    fn send_probes(&mut self) {
        if self.active_probe.is_none() {
            self.active_probe =
                self.probes.pop_front().map(|cluster| ActiveProbe { cluster, sent: 0, packets: 0, next_at: self.now });
        }
        let Some(probe) = self.active_probe.as_mut() else { return };
        let gap = Duration::from_secs_f64(PACKET as f64 * 8.0 / probe.cluster.target_bps as f64);
        let id = probe.cluster.id;
        let mut count = 0;
        let done = |p: &ActiveProbe| p.sent >= p.cluster.bytes && p.packets >= p.cluster.min_packets;
        while probe.next_at <= self.now && !done(probe) {
            probe.sent += PACKET;
            probe.packets += 1;
            probe.next_at += gap;
            count += 1;
        }
        if done(probe) {
            self.active_probe = None;
        }
        for _ in 0..count {
            self.probe_packets += 1;
            self.send(PACKET, Some(id));
        }
    }

    fn send(&mut self, size: usize, probe: Option<u32>) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.bwe.on_packet_sent(self.now, seq, size, probe);
        if let Some(arrival) = self.link.send(self.now, size) {
            self.in_flight.push_back((arrival, seq));
        }
    }
}
