//! Spending a WebRtcTransport's downlink estimate: every [`LAYER_UPDATE_INTERVAL`] the consumers
//! of a transport whose receiver reports transport-cc are handed to the allocator (`bwe/`) with
//! what each layer of their producers costs now, simulcast consumers get the layers that fit, and
//! the estimator learns how much more the consumers would take (so it probes only when that
//! could change something). Probes leave as padding-only RTX packets.
//!
//! [`LAYER_UPDATE_INTERVAL`]: super::layer_updates::LAYER_UPDATE_INTERVAL

use std::time::{Duration, Instant};

use octo_ipc::{MediaKind, TransportId};

use super::bwe::ProbeCluster;
use super::bwe::allocator::{self, ConsumerDemand, Layer, MAX_SPATIAL, MAX_TEMPORAL};
use super::consumer::Consumer;
use super::layers::Layers;
use super::producer::Producer;
use super::transmit::BUFFER_SIZE;
use super::worker::Worker;

/// Where a new subscriber's estimate starts: enough for a middle layer and audio, and probes
/// (at 3× and 6×) find out within a second or two whether the top layer fits.
pub const BWE_INITIAL_BPS: u64 = 1_000_000;
pub const BWE_MIN_BPS: u64 = 50_000;
pub const BWE_MAX_BPS: u64 = 30_000_000;
/// Below this loss, and with at least [`DELIVERED_FRACTION`] of the send rate acknowledged, what is
/// sent is taken as carried. The two rates are measured over different windows (half a second of the
/// receiver's clock, a second of ours) and a frame's burst lands in one or the other, so the
/// fraction leaves room; a real cut shows far below it (400 kbit/s acknowledged of 1.5 sent).
const DELIVERED_MAX_LOSS: f64 = 0.02;
const DELIVERED_FRACTION: f64 = 0.75;
/// The budget a carried send rate gives: a little over it, since the layers' own rates are measured
/// over other windows than the send rate, and a budget of exactly the send rate would flip a layer
/// down and up on that noise.
const DELIVERED_HEADROOM: f64 = 1.1;
/// Padding bytes in one probe packet (the most RTP padding can say).
const PROBE_PADDING: usize = 255;
/// A probe packet: RTP header, the extension block (mid and transport-cc), the padding.
const PROBE_PACKET_LEN: usize = 12 + 16 + PROBE_PADDING;
/// mediasoup-client's probator receiver.
const PROBATOR_SSRC: u32 = 1234;
const PROBATOR_PAYLOAD_TYPE: u8 = 127;
const PROBATOR_MID: &[u8] = b"probator";
/// Packets in one probe cluster at most.
const MAX_PROBE_PACKETS: usize = 200;

/// Bit/s of each (spatial, temporal) layer of `producer` now: cumulative over temporal layers;
/// 0 for an encoding the sender is not sending.
fn layer_bitrates(now: Instant, producer: &Producer) -> [[u64; MAX_TEMPORAL]; MAX_SPATIAL] {
    let mut out = [[0; MAX_TEMPORAL]; MAX_SPATIAL];
    for (s, stream) in producer.streams.iter().take(MAX_SPATIAL).enumerate() {
        if !stream.is_active(now) {
            continue;
        }
        let mut total = 0;
        for (t, rate) in stream.temporal_rates.iter().enumerate().take(MAX_TEMPORAL) {
            total += rate.bitrate(now);
            out[s][t] = total.max(1);
        }
    }
    out
}

/// Above the lowest encoding, resolution steps come at the full frame rate the client wants:
/// 720p at 7.5 frames/s is worse on a call than 360p at 30 (faces and lips move), so the options
/// offered are every temporal layer of the lowest encoding, then each higher encoding with its
/// temporal layers up to `temporal` only.
fn full_rate_above_the_lowest(rates: &mut [[u64; MAX_TEMPORAL]; MAX_SPATIAL], temporal: u8) {
    let top = usize::from(temporal).min(MAX_TEMPORAL - 1);
    for layer in rates.iter_mut().skip(1) {
        for (t, rate) in layer.iter_mut().enumerate() {
            if t != top {
                *rate = 0;
            }
        }
    }
}

fn demand(now: Instant, index: usize, consumer: &Consumer, producer: &Producer) -> ConsumerDemand {
    let kind = match (consumer.kind, &consumer.layers) {
        (MediaKind::Audio, _) => allocator::MediaKind::Audio,
        (MediaKind::Video, Some(_)) => allocator::MediaKind::Video,
        // One stream it cannot make smaller: served before adaptable video, like a screen share
        // (which the browser client sends as one high encoding).
        (MediaKind::Video, None) => allocator::MediaKind::Screen,
    };
    let layer = |l: Layers| Layer::new(l.spatial, l.temporal);
    let (preferred, current) = match &consumer.layers {
        Some(selector) => (layer(selector.preferred), selector.current().map(layer)),
        None => (Layer::new(0, (MAX_TEMPORAL - 1) as u8), Some(Layer::new(0, (MAX_TEMPORAL - 1) as u8))),
    };
    let mut layer_bitrates = layer_bitrates(now, producer);
    full_rate_above_the_lowest(&mut layer_bitrates, preferred.temporal);
    ConsumerDemand {
        id: index,
        kind,
        priority: consumer.priority,
        paused: !consumer.is_active(),
        preferred,
        current,
        layer_bitrates,
    }
}

impl Worker {
    /// Re-allocates transport `id`'s estimate over its consumers; false when the transport has no
    /// estimate to go by yet (its consumers follow their preferences alone).
    pub(super) fn allocate_downlink(&mut self, now: Instant, id: TransportId) -> bool {
        let Some(transport) = self.transports.get(&id) else { return false };
        let Some(bwe) = transport.bwe.as_ref().filter(|b| b.stats().feedback_received > 0) else { return false };
        let stats = bwe.stats();
        // What is sent now arrives, at the rate it is sent and without loss: the path carries it,
        // whatever the delay-based estimate says. Receivers on a busy machine report arrival jitter
        // that reads as queueing, and GCC answers with a decrease to 0.85 × what arrived; spent as
        // it is, that costs a layer, then the next decrease another. Layers go down on evidence
        // (loss, or less arriving than is sent), which a real cut gives within a feedback window.
        let sent = transport.counters.send_rate.bitrate(now);
        let delivered = stats.loss_fraction < DELIVERED_MAX_LOSS
            && stats.acked_bps.is_some_and(|acked| acked as f64 >= DELIVERED_FRACTION * sent as f64);
        let estimate = if delivered {
            bwe.estimate_bps().max((sent as f64 * DELIVERED_HEADROOM) as u64)
        } else {
            bwe.estimate_bps()
        };
        let mut demands = Vec::with_capacity(transport.consumers.len());
        for (index, consumer_id) in transport.consumers.iter().enumerate() {
            let Some(consumer) = self.consumers.get(consumer_id) else { continue };
            let Some(producer) = self.producers.get(&consumer.producer_id) else { continue };
            demands.push(demand(now, index, consumer, producer));
        }
        let allocations = allocator::allocate(estimate, &demands);
        tracing::trace!(
            transport = %id,
            estimate,
            raw = stats.estimate_bps,
            delay = stats.delay_based_bps,
            loss_based = stats.loss_based_bps,
            loss = stats.loss_fraction,
            acked = ?stats.acked_bps,
            sent,
            usage = ?stats.usage,
            probes = stats.probes_sent,
            found = stats.probes_succeeded,
            targets = ?allocations.iter().map(|a| a.target.map(|l| (l.spatial, l.temporal))).collect::<Vec<_>>(),
            "downlink allocated"
        );
        // What the consumers would take unconstrained: the estimator probes towards it.
        let desired: u64 = demands
            .iter()
            .filter(|d| !d.paused)
            .map(|d| {
                let rates = &d.layer_bitrates;
                let s = usize::from(d.preferred.spatial).min(MAX_SPATIAL - 1);
                let t = usize::from(d.preferred.temporal).min(MAX_TEMPORAL - 1);
                (0..=s).rev().map(|s| rates[s][t]).find(|&r| r > 0).unwrap_or(0)
            })
            .sum();
        let transport = self.transports.get_mut(&id).expect("looked up above");
        if let Some(bwe) = transport.bwe.as_mut() {
            bwe.set_desired_bitrate(desired);
        }
        // One allocation per demand, in order.
        for (allocation, demand) in allocations.iter().zip(&demands) {
            // Paused consumers keep their last target: they forward nothing anyway, and resume
            // where they were. So do consumers of a producer with nothing measured just now (its
            // sender stalled a moment): no bitrate known is not "nothing fits", and dropping the
            // target would cost a keyframe when it comes back.
            if demand.paused || demand.layer_bitrates.iter().flatten().all(|&r| r == 0) {
                continue;
            }
            let Some(consumer_id) = transport.consumers.get(allocation.id) else { continue };
            let Some(consumer) = self.consumers.get_mut(consumer_id) else { continue };
            let Some(selector) = consumer.layers.as_mut() else { continue };
            let proposed = allocation.target.map(|l| Layers { spatial: l.spatial, temporal: l.temporal });
            selector.target = consumer.upgrade_hold.filter(now, selector.target, proposed);
        }
        true
    }

    /// Starts the probe cluster transport `id`'s estimator asks for, if any; [`Self::pace_probes`]
    /// sends it over the cluster's duration.
    pub(super) fn probe_downlink(&mut self, now: Instant, id: TransportId) {
        let Some(transport) = self.transports.get_mut(&id) else { return };
        if transport.probe.is_some() {
            return;
        }
        // Only a receiver that answers can be probed: padding towards one that never reports
        // transport-cc (it negotiated the extension but ignores it) would be waste.
        let answering = transport.bwe.as_ref().is_some_and(|b| b.stats().feedback_received > 0);
        let Some(cluster) = transport.bwe.as_mut().filter(|_| answering).and_then(|b| b.poll_probe(now)) else {
            return;
        };
        let packets = cluster.bytes.div_ceil(PROBE_PACKET_LEN).max(cluster.min_packets).min(MAX_PROBE_PACKETS);
        transport.probe = Some(ProbeSend { cluster, started: now, sent: 0, packets });
        self.probing.push(id);
    }

    /// Sends what is due of every probe cluster in flight: a cluster goes out evenly over its
    /// duration (a burst at one instant would measure nothing but the burst). True while some
    /// cluster is still unsent (the worker ticks faster meanwhile).
    pub(super) fn pace_probes(&mut self, now: Instant) -> bool {
        let mut probing = std::mem::take(&mut self.probing);
        probing.retain(|&id| {
            let Some(transport) = self.transports.get_mut(&id) else { return false };
            let Some(mut probe) = transport.probe.take() else { return false };
            let duration = probe.cluster.duration.max(Duration::from_millis(1));
            let elapsed = now.saturating_duration_since(probe.started);
            let due = if elapsed >= duration {
                probe.packets
            } else {
                ((probe.packets as u128 * elapsed.as_micros()).div_ceil(duration.as_micros()) as usize).max(1)
            };
            // Padding rides on a video consumer's RTX stream, which the receiver knows and discards.
            let carrier = transport.consumers.iter().copied().find(|c| {
                self.consumers
                    .get(c)
                    .is_some_and(|c| c.rtx.is_some() && c.twcc_ext_id.is_some() && c.last_sent.is_some())
            });
            let Some(consumer) = carrier.and_then(|c| self.consumers.get_mut(&c)) else { return false };
            let n = due.saturating_sub(probe.sent);
            send_padding(now, &mut self.transmits, transport, consumer, probe.cluster.id, n);
            probe.sent += n;
            let more = probe.sent < probe.packets;
            if more {
                transport.probe = Some(probe);
            }
            more
        });
        let any = !probing.is_empty();
        self.probing = probing;
        any
    }
}

/// A probe cluster being sent.
pub struct ProbeSend {
    cluster: ProbeCluster,
    started: Instant,
    sent: usize,
    packets: usize,
}

/// `count` padding-only packets of probe cluster `cluster` on the probator stream, each stamped with
/// a transport-wide sequence number. A browser counts a packet in its transport-cc feedback only if
/// it routes it to a receiver; mediasoup-client opens one for exactly this (mid `probator`, SSRC
/// 1234, payload type 127, the header extensions of the first video consumer), so the padding goes
/// there, with `consumer`'s extension ids.
fn send_padding(
    now: Instant,
    transmits: &mut super::transmit::TransmitQueue,
    transport: &mut super::transport::Transport,
    consumer: &Consumer,
    cluster: u32,
    count: usize,
) {
    let (Some(twcc_id), Some(mid_id)) =
        (consumer.twcc_ext_id.filter(|&id| id <= 14), consumer.mid_ext_id.filter(|&id| id <= 14))
    else {
        return;
    };
    let timestamp = consumer.last_sent.map_or(0, |(_, ts)| ts);
    for _ in 0..count {
        let (Some((socket, to)), Some(srtp)) = (transport.selected, transport.srtp_send.as_mut()) else { return };
        let seq = transport.twcc_out_seq;
        transport.twcc_out_seq = seq.wrapping_add(1);
        let rtp_seq = transport.probator_seq;
        transport.probator_seq = rtp_seq.wrapping_add(1);
        let mut buf = transmits.buffer();
        // V=2, P=1, X=1; mid and transport-cc in a one-byte extension block of three words.
        buf.extend_from_slice(&[0xb0, PROBATOR_PAYLOAD_TYPE]);
        buf.extend_from_slice(&rtp_seq.to_be_bytes());
        buf.extend_from_slice(&timestamp.to_be_bytes());
        buf.extend_from_slice(&PROBATOR_SSRC.to_be_bytes());
        buf.extend_from_slice(&[0xbe, 0xde, 0, 3, (mid_id << 4) | (PROBATOR_MID.len() as u8 - 1)]);
        buf.extend_from_slice(PROBATOR_MID);
        let [hi, lo] = seq.to_be_bytes();
        buf.extend_from_slice(&[(twcc_id << 4) | 1, hi, lo]);
        buf.resize(PROBE_PACKET_LEN, 0);
        buf[PROBE_PACKET_LEN - 1] = PROBE_PADDING as u8;
        buf.resize(BUFFER_SIZE.min(PROBE_PACKET_LEN + 64), 0);
        match srtp.encrypt_rtp(&mut buf, PROBE_PACKET_LEN) {
            Ok(n) => {
                buf.truncate(n);
                transport.counters.packets_sent += 1;
                transport.counters.bytes_sent += n as u64;
                if let Some(bwe) = transport.bwe.as_mut() {
                    bwe.on_packet_sent(now, seq, n, Some(cluster));
                }
                transmits.push(socket, to, buf);
            }
            Err(_) => {
                transmits.recycle(buf);
                return;
            }
        }
    }
}
