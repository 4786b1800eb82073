//! The forwarding path: SRTP in → decrypt once → producer bookkeeping → for each consumer: copy,
//! rewrite in place, encrypt, queue. Nothing here allocates once buffers have warmed up.

use std::time::{Duration, Instant};

use octo_ipc::{ConsumerId, MediaKind, ProducerId, TransportId};

use super::consumer::Consumer;
use super::layers::PacketLayers;
use super::pacing::{self, Paced};
use super::producer::ProducerStream;
use super::rtp::keyframe::{KeyframeCodec, is_keyframe};
use super::rtp::packet::{RtpHeader, RtpPacket};
use super::rtp::rtcp::{FirEntry, write_fir, write_pli};
use super::rtp::vp8::{self, Vp8Descriptor};
use super::shared_rewrite::SharedRewrite;
use super::transmit::{BUFFER_SIZE, TransmitQueue};
use super::transport::IncomingStream;
use super::transport::Transport;
use super::worker::Worker;

/// What a resend adds on the wire to the stored packet, for the budget: RTX's original sequence
/// number and the SRTP tag.
const RTX_OVERHEAD: usize = 2 + 16;

/// Keyframe requests upstream are throttled per producer: every consumer that joins or loses a
/// frame asks, and the encoder should not be flooded.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// SSRCs one transport may receive (signalled or learnt by rid).
const MAX_INCOMING_SSRCS: usize = 64;

/// Bytes a forwarded packet may grow by (header rewrite, RTX wrapping, the SRTP tag): the room a
/// full-size 1500-byte datagram always had in a [`BUFFER_SIZE`] buffer, now given to every packet.
const REWRITE_HEADROOM: usize = BUFFER_SIZE - 1500;

/// Packets at most sent behind a late keyframe (about a second of 1 Mbit/s video).
pub(super) const CATCH_UP_LIMIT: usize = 128;

/// Offset of the SSRC in an RTP header, readable before decryption.
fn rtp_ssrc(buf: &[u8]) -> Option<u32> {
    buf.get(8..12).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// RFC 5761: RTCP packet types 192–223 land in the second byte's low 7 bits as 64–95.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.get(1).is_some_and(|b| (64..=95).contains(&(b & 0x7f)))
}

impl Worker {
    pub(super) fn handle_rtp(&mut self, now: Instant, transport_id: TransportId, buf: &mut [u8], len: usize) {
        let Some(transport) = self.transports.get_mut(&transport_id) else { return };
        // The SSRC is readable before decrypting: unknown streams are dropped before SRTP creates
        // any state for them.
        let (Some(ssrc), Some(srtp)) = (rtp_ssrc(&buf[..len]), transport.srtp_recv.as_mut()) else {
            transport.counters.packets_dropped += 1;
            return;
        };
        let incoming = match transport.incoming.get(&ssrc) {
            Some(&incoming) => incoming,
            None => {
                // Simulcast encodings may be announced by rid only: the rid header extension
                // (in the clear, before the SRTP payload) names the encoding of a new SSRC.
                let learnt = RtpHeader::parse(&buf[..len]).ok().and_then(|header| {
                    transport.producers.iter().find_map(|pid| {
                        let producer = self.producers.get_mut(pid)?;
                        let (encoding, is_rtx) = producer.learn_ssrc(ssrc, &header)?;
                        Some(IncomingStream { producer: *pid, encoding, is_rtx })
                    })
                });
                match learnt {
                    Some(incoming) if transport.incoming.len() < MAX_INCOMING_SSRCS => {
                        transport.incoming.insert(ssrc, incoming);
                        incoming
                    }
                    _ => {
                        transport.counters.packets_dropped += 1;
                        return;
                    }
                }
            }
        };
        let Ok(len) = srtp.decrypt_rtp(buf, len) else {
            transport.counters.packets_dropped += 1;
            transport.counters.srtp_failures += 1;
            return;
        };
        let Some(producer) = self.producers.get_mut(&incoming.producer) else { return };
        let Ok(mut packet) = RtpPacket::parse(buf, len) else {
            transport.counters.packets_dropped += 1;
            return;
        };
        if let Some(id) = producer.transport_cc_ext_id
            && let Some(seq) = packet.header().transport_wide_cc_seq(id)
        {
            transport.twcc.record(seq, now);
        }
        let Some(stream) = producer.streams.get_mut(incoming.encoding) else { return };
        if incoming.is_rtx {
            // RTX carries the original sequence number first in its payload (RFC 4588).
            let apt = producer.rtx_apt.get(usize::from(packet.payload_type())).copied().unwrap_or(0xFF);
            let (Some(media_ssrc), true) = (stream.ssrc, apt != 0xFF) else { return };
            if packet.rtx_unwrap(apt, media_ssrc).is_err() || packet.payload().is_empty() {
                // Empty RTX packets are bandwidth probes: nothing to forward.
                return;
            }
        }
        let router_pt = producer.ingress.payload_types.get(usize::from(packet.payload_type())).copied();
        let Some(router_pt) = router_pt.filter(|&pt| pt != 0xFF) else {
            stream.packets_discarded += 1;
            return;
        };
        let seq = packet.sequence_number();
        let ends_frame = (producer.kind == MediaKind::Video).then(|| packet.marker());
        let keyframe = producer.keyframe_codec.is_some_and(|c| is_keyframe(c, packet.payload()));
        // Read once here, where the packet is parsed already; the offsets are from the payload's
        // start, which the ingress rewrite below does not change.
        let vp8 = (producer.keyframe_codec == Some(KeyframeCodec::Vp8)).then(|| vp8::parse(packet.payload())).flatten();
        stream.recv.received(now, seq, packet.timestamp(), producer.clock_rate, len);
        let newest = stream.recv.extended_highest_seq() as u16;
        if let Some(nack) = stream.nack.as_mut() {
            nack.received(now, seq, keyframe, incoming.is_rtx);
        }
        // Ingress normalisation, once for every consumer: router payload type, SSRC and ids.
        packet.set_payload_type(router_pt);
        packet.set_ssrc(stream.mapped_ssrc);
        if packet.rewrite_extension_ids(&producer.ingress.extension_ids).is_err() {
            stream.packets_discarded += 1;
            return;
        }
        let (buf, len) = packet.into_buffer();
        stream.retransmissions.store(seq, &buf[..len]);
        stream.last_packet = Some(now);
        if producer.paused {
            return;
        }
        // Every encoding goes to the fan-out: simulcast consumers pick theirs, simple ones the first
        // (mediasoup-client lists encodings lowest first), pipes take them all.
        let tid = vp8.map_or(0, |d| usize::from(d.temporal_id).min(stream.temporal_rates.len() - 1));
        stream.temporal_rates[tid].add(now, len);
        let layers = PacketLayers { encoding: incoming.encoding as u8, keyframe, vp8 };
        let (producer_id, router_id) = (producer.id, producer.router_id);
        let audio_level = producer
            .audio_level_ext_id
            .and_then(|id| RtpHeader::parse(&buf[..len]).ok().and_then(|h| h.audio_level(id)))
            .map(|l| l.level);
        if let Some(level) = audio_level
            && let Some(router) = self.routers.get_mut(&router_id)
        {
            router.active_speaker.record(now, producer_id, level);
        }
        self.queue_fan_out(now, router_id, producer_id, &buf[..len], seq, layers, newest, ends_frame);
    }

    /// Answers a consumer's NACK for `lost` (on `media_ssrc`) from its producer's retransmission
    /// buffer.
    pub(super) fn retransmit(&mut self, now: Instant, consumer_id: ConsumerId, media_ssrc: u32, lost: u16) {
        let Some(consumer) = self.consumers.get_mut(&consumer_id) else { return };
        let Some(producer) = self.producers.get(&consumer.producer_id) else { return };
        let Some(transport) = self.transports.get_mut(&consumer.transport_id) else { return };
        // A pipe sends every encoding with the router's own numbering: the NACK names the stream.
        let (stored, out) = if consumer.pipe {
            let Some(stream) = producer.encoding_of_mapped_ssrc(media_ssrc).and_then(|e| producer.streams.get(e))
            else {
                return;
            };
            let Some(stored) = stream.retransmissions.get(lost) else { return };
            let out = Outgoing { seq: lost, ts: rtp_timestamp(stored), ssrc: media_ssrc, vp8: None, twcc: None };
            (stored, out)
        } else {
            let Some(sent) = consumer.sent(lost) else { return };
            let stream = producer.streams.get(usize::from(sent.encoding));
            let Some(stored) = stream.and_then(|s| s.retransmissions.get(sent.in_seq)) else { return };
            let newest_ts = consumer.last_sent.map_or(sent.out_ts, |(_, ts)| ts);
            let verdict = consumer.rtx_guard.get_or_insert_with(Default::default).check(
                now,
                lost,
                newest_ts.wrapping_sub(sent.out_ts),
                consumer.clock_rate,
                consumer.rtt,
                transport.counters.send_rate.bitrate(now),
                transport.counters.rtx_rate.bitrate(now),
                transport.bwe.as_ref().map(|b| b.estimate_bps()),
                stored.len() + RTX_OVERHEAD,
            );
            if verdict.is_err() {
                consumer.retransmissions_skipped += 1;
                return;
            }
            let vp8 = sent.vp8.and_then(|(picture_id, tl0)| {
                let payload = RtpHeader::parse(stored).ok()?.payload().ok()?;
                Some(Vp8Patch { descriptor: vp8::parse(payload)?, picture_id, tl0 })
            });
            // Over RTX it is a new packet on the wire with a transport-wide number of its own;
            // without, the same bytes as the first time.
            let twcc = if consumer.rtx.is_some() { transport.next_twcc_seq(consumer) } else { sent.twcc };
            (stored, Outgoing { seq: lost, ts: sent.out_ts, ssrc: consumer.ssrc, vp8, twcc })
        };
        // The very same header as the first time: without RTX the packet is re-encrypted under the
        // same SRTP index, which is only safe for identical bytes.
        if send_to_consumer(now, &mut self.transmits, transport, consumer, stored, &out, true, None) {
            consumer.packets_retransmitted += 1;
            transport.counters.rtx_rate.add(now, stored.len() + RTX_OVERHEAD);
            if let Some(guard) = consumer.rtx_guard.as_mut() {
                guard.resent(now, lost);
            }
        }
    }

    /// Asks the producer's sender for a keyframe of the encodings in `encodings` (a bit each), at
    /// most every [`KEYFRAME_REQUEST_INTERVAL`] per encoding.
    pub(super) fn request_key_frame(&mut self, now: Instant, producer_id: ProducerId, encodings: u8) {
        let Some(producer) = self.producers.get_mut(&producer_id) else { return };
        if producer.keyframe_codec.is_none() {
            return;
        }
        let Some(transport) = self.transports.get_mut(&producer.transport_id) else { return };
        let use_pli = producer.use_pli;
        for (index, stream) in producer.streams.iter_mut().enumerate() {
            let wanted = index < 8 && encodings & (1 << index) != 0;
            if !wanted
                || stream.last_keyframe_request.is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
            {
                continue;
            }
            stream.last_keyframe_request = Some(now);
            if !use_pli {
                producer.fir_seq = producer.fir_seq.wrapping_add(1);
            }
            send_keyframe_request(&mut self.transmits, transport, stream, use_pli, producer.fir_seq);
        }
    }
}

/// Every encoding, for [`Worker::request_key_frame`].
pub const ALL_ENCODINGS: u8 = u8::MAX;

fn send_keyframe_request(
    transmits: &mut TransmitQueue,
    transport: &mut Transport,
    stream: &mut ProducerStream,
    use_pli: bool,
    fir_seq: u8,
) {
    let (Some((socket, to)), Some(srtp)) = (transport.selected, transport.srtp_send.as_mut()) else { return };
    let Some(media_ssrc) = stream.ssrc else { return };
    let mut buf = transmits.buffer();
    buf.resize(BUFFER_SIZE, 0);
    let written = if use_pli {
        stream.pli_count += 1;
        write_pli(&mut buf, transport.rtcp_ssrc, media_ssrc)
    } else {
        stream.fir_count += 1;
        write_fir(&mut buf, transport.rtcp_ssrc, &[FirEntry { ssrc: media_ssrc, seq_nr: fir_seq }])
    };
    match written.ok().and_then(|n| srtp.encrypt_rtcp(&mut buf, n).ok()) {
        Some(n) => {
            buf.truncate(n);
            transport.counters.packets_sent += 1;
            transport.counters.bytes_sent += n as u64;
            transmits.push(socket, to, buf);
        }
        None => transmits.recycle(buf),
    }
}

/// How a packet leaves for one consumer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outgoing {
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub vp8: Option<Vp8Patch>,
    /// The transport-wide sequence number to stamp (the consumer's transport-cc id carries it).
    pub twcc: Option<u16>,
}

/// A VP8 descriptor's numbers as this consumer sends them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Vp8Patch {
    pub descriptor: Vp8Descriptor,
    pub picture_id: u16,
    pub tl0: u8,
}

impl Vp8Patch {
    /// Writes the numbers into the RTP packet `packet` (header included).
    fn apply(&self, packet: &mut [u8]) {
        let Ok(header_len) = RtpHeader::parse(packet).map(|h| h.header_len()) else { return };
        if let Some(payload) = packet.get_mut(header_len..) {
            self.descriptor.rewrite(payload, self.picture_id, self.tl0);
        }
    }
}

/// Rewrites the normalised packet in `buf[..len]` for `consumer`: its SSRC, sequence number,
/// timestamp, payload type, extension ids and mid. `None` when it does not parse; the flag says
/// whether the extensions could be rewritten.
fn rewrite<'a>(buf: &'a mut [u8], len: usize, consumer: &Consumer, o: &Outgoing) -> Option<(RtpPacket<'a>, bool)> {
    let mut out = RtpPacket::parse(buf, len).ok()?;
    out.set_ssrc(o.ssrc);
    out.set_sequence_number(o.seq);
    out.set_timestamp(o.ts);
    out.set_payload_type(consumer.payload_type);
    let mut ok = out.rewrite_extension_ids(&consumer.extension_ids).is_ok();
    if let Some(id) = consumer.mid_ext_id {
        ok &= out.set_extension(id, &consumer.mid).is_ok();
    }
    if let (Some(id), Some(seq)) = (consumer.twcc_ext_id, o.twcc) {
        ok &= out.set_transport_wide_cc_seq(id, seq).is_ok();
    }
    Some((out, ok))
}

/// Copies a normalised packet into a send buffer, rewrites it for `consumer`, encrypts and queues
/// it. Returns whether it was queued.
///
/// abs-send-time passes through as the producer stamped it: rewriting it per send would make a
/// plain (non-RTX) retransmission differ from the original under the same SRTP index.
#[allow(clippy::too_many_arguments)]
pub(super) fn send_to_consumer(
    now: Instant,
    transmits: &mut TransmitQueue,
    transport: &mut Transport,
    consumer: &mut Consumer,
    packet: &[u8],
    o: &Outgoing,
    as_retransmission: bool,
    shared: Option<&mut SharedRewrite>,
) -> bool {
    let (Some((socket, to)), Some(srtp)) = (transport.selected, transport.srtp_send.as_mut()) else { return false };
    if packet.len() > BUFFER_SIZE {
        return false;
    }
    let mut buf = transmits.buffer();
    let (ok, plain_len) = match shared {
        Some(shared) if !as_retransmission && shared.fits(consumer) => {
            let len = shared.write(&mut buf, consumer, packet, o);
            #[cfg(debug_assertions)]
            {
                // Debug builds (every test) check the shortcut against the full rewrite.
                let mut full = [0u8; BUFFER_SIZE];
                full[..packet.len()].copy_from_slice(packet);
                let expected =
                    rewrite(&mut full[..(packet.len() + REWRITE_HEADROOM).min(BUFFER_SIZE)], packet.len(), consumer, o);
                debug_assert_eq!(expected.as_ref().map(|(p, ok)| (p.as_bytes(), *ok)), Some((&buf[..len], true)));
            }
            // The same room as the full rewrite leaves, for the tag.
            buf.resize((packet.len() + REWRITE_HEADROOM).min(BUFFER_SIZE).max(len), 0);
            if let Some(patch) = &o.vp8 {
                patch.apply(&mut buf[..len]);
            }
            (true, len)
        }
        shared => {
            buf.extend_from_slice(packet);
            // Zeroing only the room the rewrite and the tag may use: clearing the whole buffer
            // first cost as much as copying the packet.
            buf.resize((packet.len() + REWRITE_HEADROOM).min(BUFFER_SIZE), 0);
            let Some((mut out, mut ok)) = rewrite(&mut buf, packet.len(), consumer, o) else {
                transmits.recycle(buf);
                return false;
            };
            // The shared header is kept before the payload is patched: it covers the header only.
            if ok
                && !as_retransmission
                && let Some(shared) = shared
            {
                shared.keep(consumer, packet, &out);
            }
            if let Some(patch) = &o.vp8 {
                patch.descriptor.rewrite(out.payload_mut(), patch.picture_id, patch.tl0);
            }
            if as_retransmission && let Some((rtx_ssrc, rtx_pt)) = consumer.rtx {
                ok &= out.rtx_wrap(rtx_pt, rtx_ssrc, consumer.rtx_seq).is_ok();
                consumer.rtx_seq = consumer.rtx_seq.wrapping_add(1);
            }
            (ok, out.len())
        }
    };
    let encrypted = if ok { srtp.encrypt_rtp(&mut buf, plain_len).ok() } else { None };
    match encrypted {
        Some(n) => {
            buf.truncate(n);
            consumer.packets += 1;
            consumer.bytes += plain_len as u64;
            consumer.send_rate.add(now, plain_len);
            transport.counters.packets_sent += 1;
            transport.counters.bytes_sent += n as u64;
            transport.counters.send_rate.add(now, n);
            let video = consumer.kind == MediaKind::Video;
            pacing::send(now, transmits, transport, video, Paced { socket, to, buf, twcc: o.twcc });
            true
        }
        None => {
            transmits.recycle(buf);
            false
        }
    }
}

/// The RTP timestamp of a packet (0 if it is too short to have one).
pub(super) fn rtp_timestamp(packet: &[u8]) -> u32 {
    packet.get(4..8).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
