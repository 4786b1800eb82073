//! The fan-out of a loop turn's packets, consumer by consumer. `handle_rtp` normalises a packet and
//! queues it here; the fan-out runs when the IO shell asks for datagrams, a few consumers at a time.
//! Each consumer gets all of the turn's packets of a producer back to back, so
//! - its state, its transport and its SRTP keys are fetched from memory once for the run instead of
//!   once per packet (with thousands of consumers these are cache misses, most of the cost);
//! - the run leaves as one GSO message (a frame's packets arrive together: WebRTC's pacer sends a
//!   frame in one burst);
//! - only a chunk's datagrams are in flight, so the kernel copies from buffers written a moment
//!   before rather than from megabytes written a whole turn earlier.
//!
//! Nothing waits for a later turn: the shell drains the fan-out before it polls again.

use std::time::Instant;

use octo_ipc::{ProducerId, RouterId};

use super::consumer::Consumer;
use super::forward::{CATCH_UP_LIMIT, Outgoing, Vp8Patch, rtp_timestamp, send_to_consumer};
use super::layers::{PacketLayers, Verdict};
use super::producer::ProducerStream;
use super::shared_rewrite::SharedRewrite;
use super::transmit::TransmitQueue;
use super::transport::Transport;
use super::worker::Worker;

/// A layer switch starts with the new layer's keyframe, sent as it arrives (there is no pacer): a
/// 720p keyframe through a 1 Mbit/s link drains in about this long.
const KEYFRAME_BURST_GUARD: std::time::Duration = std::time::Duration::from_millis(500);
/// Consumers served per refill of the transmit queue.
pub(super) const CONSUMERS_PER_CHUNK: usize = 32;
/// Packets held for one turn's fan-out at most; a longer turn fans out what it holds first.
const MAX_PENDING_PACKETS: usize = 256;
/// Frame gathering waits for no more packets than this (a 720p keyframe is ~40): past it the
/// fan-out runs, so that what it fills the transmit queue with at once stays bounded.
const MAX_GATHERED_PACKETS: usize = 64;

/// A normalised packet waiting for the fan-out.
struct PendingPacket {
    now: Instant,
    router_id: RouterId,
    producer_id: ProducerId,
    seq: u16,
    /// Its encoding, whether it starts a keyframe, its VP8 descriptor.
    layers: PacketLayers,
    /// The producer's highest sequence number when this packet arrived: a late keyframe's
    /// catch-up stops there (packets after it are in this turn's fan-out themselves).
    newest: u16,
    /// Where its bytes are in the arena.
    at: usize,
    len: usize,
    /// Taken into a group.
    taken: bool,
}

/// The producer being fanned out and how far down its consumer list.
#[derive(Clone, Copy)]
struct Group {
    router_id: RouterId,
    producer_id: ProducerId,
    next_consumer: usize,
    /// Encodings (a bit each) some consumer waits for a keyframe of.
    wants_keyframe: u8,
}

#[derive(Default)]
pub(super) struct PendingFanOut {
    arena: Vec<u8>,
    packets: Vec<PendingPacket>,
    group: Option<Group>,
    /// The group's packets (indices into `packets`), in arrival order.
    group_packets: Vec<usize>,
    /// One shared header rewrite per packet of the group.
    shared: Vec<SharedRewrite>,
    /// When the oldest packet still waiting was queued.
    held_since: Option<Instant>,
    /// Whether the newest video packet queued ends no frame (its marker bit is clear): the rest of
    /// its frame is on its way.
    frame_open: bool,
}

impl PendingFanOut {
    /// Starts the group of the oldest packet not yet taken; `None` when every packet has been.
    fn start_next_group(&mut self) -> Option<Group> {
        let Some(first) = self.packets.iter().position(|p| !p.taken) else {
            self.packets.clear();
            self.arena.clear();
            self.held_since = None;
            self.frame_open = false;
            return None;
        };
        let (router_id, producer_id) = (self.packets[first].router_id, self.packets[first].producer_id);
        self.group_packets.clear();
        for (i, p) in self.packets.iter_mut().enumerate().skip(first) {
            if !p.taken && p.producer_id == producer_id {
                p.taken = true;
                self.group_packets.push(i);
            }
        }
        self.shared.resize_with(self.group_packets.len(), SharedRewrite::new);
        for shared in &mut self.shared[..self.group_packets.len()] {
            shared.clear();
        }
        self.group = Some(Group { router_id, producer_id, next_consumer: 0, wants_keyframe: 0 });
        self.group
    }
}

impl Worker {
    /// Queues a normalised packet for this turn's fan-out. `ends_frame` is its marker bit for
    /// video, `None` for audio (whose marker starts a talkspurt and ends nothing).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn queue_fan_out(
        &mut self,
        now: Instant,
        router_id: RouterId,
        producer_id: ProducerId,
        packet: &[u8],
        seq: u16,
        layers: PacketLayers,
        newest: u16,
        ends_frame: Option<bool>,
    ) {
        if self.pending.packets.len() >= MAX_PENDING_PACKETS {
            while self.fan_out_chunk(usize::MAX) {}
        }
        self.pending.held_since.get_or_insert(now);
        if let Some(ends) = ends_frame {
            self.pending.frame_open = !ends;
        }
        let at = self.pending.arena.len();
        self.pending.arena.extend_from_slice(packet);
        self.pending.packets.push(PendingPacket {
            now,
            router_id,
            producer_id,
            seq,
            layers,
            newest,
            at,
            len: packet.len(),
            taken: false,
        });
    }

    /// Whether the fan-out waits, at `now`, for the rest of a frame before it runs: frame gathering
    /// is on, a video frame is open, nothing has been fanned out of what waits, and the oldest
    /// packet has waited less than the hold. The IO shell then leaves the turn's datagrams unsent
    /// until [`Self::gather_deadline`] or the frame's last packet. Why: each consumer's run of a
    /// producer's packets leaves as one GSO message, so a worker that fans out a frame whole sends
    /// as few, long messages as a busy worker does by chance (its turns are long enough to read a
    /// whole frame); an idle worker's short turns split a frame into a run per packet or two.
    pub fn holds_fan_out(&self, now: Instant) -> bool {
        self.gather_deadline().is_some_and(|deadline| now < deadline)
    }

    /// While the fan-out may wait for a frame: when it runs anyway (the frame's last packet not
    /// having come).
    pub fn gather_deadline(&self) -> Option<Instant> {
        let p = &self.pending;
        let hold = self.gather?;
        if !p.frame_open || p.group.is_some() || p.packets.len() >= MAX_GATHERED_PACKETS {
            return None;
        }
        p.held_since.map(|since| since + hold)
    }

    /// Fans the pending packets out to the next `max_consumers` consumers of the current group
    /// (starting the next group when one is done); false when nothing was pending.
    pub(super) fn fan_out_chunk(&mut self, max_consumers: usize) -> bool {
        let Some(mut group) = self.pending.group.or_else(|| self.pending.start_next_group()) else { return false };
        let list = self.routers.get_mut(&group.router_id).and_then(|r| r.fanout.get_mut(&group.producer_id));
        // Taken out and put back so consumers and transports can be borrowed while walking it.
        let consumers = list.map(std::mem::take).unwrap_or_default();
        let start = group.next_consumer.min(consumers.len());
        let end = start.saturating_add(max_consumers).min(consumers.len());
        let pending = &mut self.pending;
        let producer = self.producers.get(&group.producer_id);
        for consumer_id in &consumers[start..end] {
            let Some(consumer) = self.consumers.get_mut(consumer_id) else { continue };
            if !consumer.is_active() {
                continue;
            }
            let Some(transport) = self.transports.get_mut(&consumer.transport_id) else { continue };
            for (k, &i) in pending.group_packets.iter().enumerate() {
                let p = &pending.packets[i];
                let packet = &pending.arena[p.at..p.at + p.len];
                let before = consumer.layers.as_ref().and_then(|l| l.current_spatial);
                match consumer.layers.as_mut() {
                    Some(selector) => match selector.select(&p.layers) {
                        Verdict::Ignore => continue,
                        Verdict::Drop => {
                            consumer.seq.drop(p.seq);
                            if let Some(d) = &p.layers.vp8 {
                                consumer.vp8.drop(d);
                            }
                            continue;
                        }
                        Verdict::Forward { switched } => {
                            // Only a step up: a step down's keyframe is smaller than what it
                            // replaces, and the estimate must be free to fall further.
                            if switched
                                && selector.current_spatial > before
                                && let Some(bwe) = transport.bwe.as_mut()
                            {
                                bwe.expect_burst(p.now, KEYFRAME_BURST_GUARD);
                            }
                            consumer.needs_sync |= switched;
                        }
                    },
                    // A pipe carries every encoding; a simple consumer the first.
                    None if !consumer.pipe && p.layers.encoding != 0 => continue,
                    None if consumer.waiting_keyframe => {
                        if !p.layers.keyframe {
                            group.wants_keyframe |= 1;
                            continue;
                        }
                        consumer.waiting_keyframe = false;
                    }
                    None => {}
                }
                let starts_here = consumer.needs_sync;
                if consumer.needs_sync {
                    consumer.seq.sync(p.seq);
                    consumer.timestamps.sync(p.now, rtp_timestamp(packet), consumer.clock_rate);
                    if let Some(d) = &p.layers.vp8 {
                        consumer.vp8.sync(d);
                    }
                    consumer.needs_sync = false;
                }
                let shared = Some(&mut pending.shared[k]);
                if !forward(p.now, &mut self.transmits, transport, consumer, packet, p.seq, &p.layers, shared) {
                    continue;
                }
                let stream = producer.and_then(|pr| pr.streams.get(usize::from(p.layers.encoding)));
                if let Some(stream) = stream.filter(|_| starts_here && p.layers.keyframe && consumer.layers.is_none()) {
                    catch_up(p.now, &mut self.transmits, transport, consumer, stream, p.seq, p.newest);
                }
            }
            if let Some(encoding) = consumer.layers.as_ref().and_then(|l| l.wants_keyframe()).filter(|&e| e < 8) {
                group.wants_keyframe |= 1 << encoding;
            }
        }
        let done = end == consumers.len();
        if let Some(list) = self.routers.get_mut(&group.router_id).and_then(|r| r.fanout.get_mut(&group.producer_id)) {
            *list = consumers;
        }
        group.next_consumer = end;
        self.pending.group = if done { None } else { Some(group) };
        if done && group.wants_keyframe != 0 {
            let now = self.pending.group_packets.last().map(|&i| self.pending.packets[i].now);
            if let Some(now) = now {
                self.request_key_frame(now, group.producer_id, group.wants_keyframe);
            }
        }
        true
    }
}

/// Sends the normalised `packet` (the producer's `in_seq`) to `consumer`, numbered and timed as its
/// next, and remembers what was sent for NACKs. False when the consumer's numbering drops it.
#[allow(clippy::too_many_arguments)]
fn forward(
    now: Instant,
    transmits: &mut TransmitQueue,
    transport: &mut Transport,
    consumer: &mut Consumer,
    packet: &[u8],
    in_seq: u16,
    layers: &PacketLayers,
    shared: Option<&mut SharedRewrite>,
) -> bool {
    let Some((seq, ts)) = consumer.number(now, in_seq, rtp_timestamp(packet)) else { return false };
    // A pipe keeps each encoding's own SSRC; everyone else sends one stream.
    let ssrc = if consumer.pipe { rtp_ssrc(packet) } else { consumer.ssrc };
    let vp8 = match (&consumer.layers, &layers.vp8) {
        (Some(_), Some(descriptor)) => {
            let (picture_id, tl0) = consumer.vp8.forward(descriptor);
            Some(Vp8Patch { descriptor: *descriptor, picture_id, tl0 })
        }
        _ => None,
    };
    let out = Outgoing { seq, ts, ssrc, vp8, twcc: transport.next_twcc_seq(consumer) };
    if send_to_consumer(now, transmits, transport, consumer, packet, &out, false, shared) {
        consumer.remember_sent(&out, in_seq, layers.encoding);
        consumer.last_sent = Some((now, ts));
    }
    true
}

/// The SSRC of a packet (0 if it is too short to have one).
fn rtp_ssrc(packet: &[u8]) -> u32 {
    packet.get(8..12).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A keyframe that arrived late (repaired upstream) has newer packets behind it that the keyframe
/// gate held back: sends them, up to `newest`, from the producer's retransmission buffer, or the
/// receiver sees a hole nobody can fill.
fn catch_up(
    now: Instant,
    transmits: &mut TransmitQueue,
    transport: &mut Transport,
    consumer: &mut Consumer,
    stream: &ProducerStream,
    keyframe_seq: u16,
    newest: u16,
) {
    let mut next = keyframe_seq.wrapping_add(1);
    for _ in 0..CATCH_UP_LIMIT {
        if (newest.wrapping_sub(next) as i16) < 0 {
            break;
        }
        if let Some(held) = stream.retransmissions.get(next) {
            forward(now, transmits, transport, consumer, held, next, &PacketLayers::default(), None);
        }
        next = next.wrapping_add(1);
    }
}
