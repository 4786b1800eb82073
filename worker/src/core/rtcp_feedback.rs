//! RTCP in both directions: what receivers and senders tell us (reports, NACK, PLI/FIR) and what we
//! tell them on a timer (receiver reports, NACK, transport-wide-cc feedback, sender reports).

use std::time::{Duration, Instant};

use octo_ipc::{ConsumerId, ConsumerNotification, Notification, ProducerId, TransportId};

use super::rtp::rtcp::{
    ReportBlock, RtcpCompound, RtcpCompoundWriter, RtcpPacket, SenderInfo, write_nack, write_receiver_report,
    write_remb, write_sdes_cname, write_sender_report,
};
use super::rtp::twcc::parse_twcc_fci;
use super::transmit::{BUFFER_SIZE, TransmitQueue};
use super::transport::Transport;
use super::worker::Worker;

/// How often receiver and sender reports go out.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Encrypts the RTCP in `buf[..len]` for `transport` and queues it; false if it could not go.
fn send_rtcp(transmits: &mut TransmitQueue, transport: &mut Transport, mut buf: Vec<u8>, len: usize) -> bool {
    let (Some((socket, to)), Some(srtp)) = (transport.selected, transport.srtp_send.as_mut()) else {
        transmits.recycle(buf);
        return false;
    };
    match srtp.encrypt_rtcp(&mut buf, len) {
        Ok(n) => {
            buf.truncate(n);
            transport.counters.packets_sent += 1;
            transport.counters.bytes_sent += n as u64;
            transmits.push(socket, to, buf);
            true
        }
        Err(_) => {
            transmits.recycle(buf);
            false
        }
    }
}

impl Worker {
    /// 64-bit NTP time (32.32) of `now`.
    pub(super) fn ntp(&self, now: Instant) -> u64 {
        let since = self.epoch_unix + now.saturating_duration_since(self.epoch);
        let secs = since.as_secs() + NTP_UNIX_OFFSET;
        let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    pub(super) fn handle_rtcp(&mut self, now: Instant, transport_id: TransportId, buf: &mut [u8], len: usize) {
        let now_mid = ((self.ntp(now) >> 16) & 0xffff_ffff) as u32;
        let Some(transport) = self.transports.get_mut(&transport_id) else { return };
        let Some(srtp) = transport.srtp_recv.as_mut() else {
            transport.counters.packets_dropped += 1;
            return;
        };
        let Ok(len) = srtp.decrypt_rtcp(buf, len) else {
            transport.counters.packets_dropped += 1;
            transport.counters.srtp_failures += 1;
            return;
        };
        // Collected first: acting on them needs other parts of the worker.
        let mut nacks: [(ConsumerId, u32, u16); 64] = [(ConsumerId(0), 0, 0); 64];
        let mut nack_count = 0;
        let mut keyframes: [Option<(ConsumerId, u32)>; 8] = [None; 8];
        // Consumers whose score changed with a report (a report carries 31 blocks at most).
        let mut scored: Vec<(ConsumerId, u8)> = Vec::new();
        let mut keyframe_count = 0;
        for packet in RtcpCompound::iter(&buf[..len]) {
            let Ok(packet) = packet else {
                transport.counters.packets_dropped += 1;
                continue;
            };
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    if let Some(incoming) = transport.incoming.get(&sr.info.ssrc)
                        && let Some(producer) = self.producers.get_mut(&incoming.producer)
                        && let Some(stream) = producer.streams.get_mut(incoming.encoding)
                    {
                        stream.recv.sender_report_received(now, (sr.info.ntp >> 32) as u32, sr.info.ntp as u32);
                    }
                    for block in sr.report_blocks() {
                        scored.extend(apply_report_block(&mut self.consumers, transport, block, now_mid));
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    for block in rr.report_blocks() {
                        scored.extend(apply_report_block(&mut self.consumers, transport, block, now_mid));
                    }
                }
                RtcpPacket::Nack(nack) => {
                    let Some(&consumer_id) = transport.outgoing.get(&nack.media_ssrc) else { continue };
                    if let Some(c) = self.consumers.get_mut(&consumer_id) {
                        c.nack_count += 1;
                    }
                    for lost in nack.lost() {
                        if let Some(slot) = nacks.get_mut(nack_count) {
                            *slot = (consumer_id, nack.media_ssrc, lost);
                            nack_count += 1;
                        }
                        if let Some(c) = self.consumers.get_mut(&consumer_id) {
                            c.nack_packet_count += 1;
                        }
                    }
                }
                RtcpPacket::Pli(pli) => {
                    if let Some(c) = transport.outgoing.get(&pli.media_ssrc).and_then(|id| self.consumers.get_mut(id)) {
                        c.pli_count += 1;
                        if let Some(slot) = keyframes.get_mut(keyframe_count) {
                            *slot = Some((c.id, pli.media_ssrc));
                            keyframe_count += 1;
                        }
                    }
                }
                RtcpPacket::Fir(fir) => {
                    for entry in fir.entries() {
                        if let Some(c) = transport.outgoing.get(&entry.ssrc).and_then(|id| self.consumers.get_mut(id)) {
                            c.fir_count += 1;
                            if let Some(slot) = keyframes.get_mut(keyframe_count) {
                                *slot = Some((c.id, entry.ssrc));
                                keyframe_count += 1;
                            }
                        }
                    }
                }
                // What the receiver got of what we sent: the downlink estimator's input.
                RtcpPacket::TransportCc(cc) => match (transport.bwe.as_mut(), parse_twcc_fci(cc.fci)) {
                    (Some(bwe), Ok(feedback)) => bwe.on_feedback(now, &feedback),
                    (_, Err(_)) => transport.counters.packets_dropped += 1,
                    (None, Ok(_)) => {}
                },
                // REMB is the receiver's estimate for senders without transport-cc; Octo's consumers
                // negotiate transport-cc whenever the receiver can.
                RtcpPacket::Remb(_) => {}
                RtcpPacket::Sdes(_) | RtcpPacket::Bye(_) | RtcpPacket::Unknown { .. } => {}
            }
        }
        for (consumer_id, score) in scored {
            self.notify(Notification::Consumer(consumer_id, ConsumerNotification::Score { score }));
        }
        for &(consumer_id, media_ssrc, lost) in &nacks[..nack_count] {
            self.retransmit(now, consumer_id, media_ssrc, lost);
        }
        for &(consumer_id, media_ssrc) in keyframes[..keyframe_count].iter().flatten() {
            self.request_key_frame_for(now, consumer_id, Some(media_ssrc));
        }
    }

    /// Periodic RTCP of one transport: transport-cc feedback, NACKs, receiver and sender reports.
    pub(super) fn rtcp_tick(&mut self, now: Instant, transport_id: TransportId) {
        let ntp = self.ntp(now);
        let Some(transport) = self.transports.get_mut(&transport_id) else { return };
        if transport.srtp_send.is_none() || transport.selected.is_none() {
            return;
        }
        // Transport-wide feedback, possibly several packets per round.
        let media_ssrc = transport.incoming.keys().next().copied().unwrap_or(0);
        loop {
            let mut buf = self.transmits.buffer();
            buf.resize(BUFFER_SIZE - 64, 0);
            match transport.twcc.poll_feedback(now, media_ssrc, &mut buf) {
                Some(n) => {
                    buf.resize(BUFFER_SIZE, 0);
                    send_rtcp(&mut self.transmits, transport, buf, n);
                }
                None => {
                    self.transmits.recycle(buf);
                    break;
                }
            }
        }
        // NACKs for what our producers are missing.
        let mut keyframe_for: Option<(ProducerId, u8)> = None;
        let report_due = transport.next_receiver_report.is_none_or(|t| now >= t);
        let mut blocks = [ReportBlock::default(); 31];
        let mut block_count = 0;
        for i in 0..transport.producers.len() {
            let producer_id = transport.producers[i];
            let Some(producer) = self.producers.get_mut(&producer_id) else { continue };
            for (encoding, stream) in producer.streams.iter_mut().enumerate() {
                let Some(media_ssrc) = stream.ssrc else { continue };
                if let Some(nack) = stream.nack.as_mut() {
                    let mut lost = [0u16; 128];
                    let n = nack.poll_nacks(now, Duration::ZERO, &mut lost);
                    if n > 0 {
                        let mut buf = self.transmits.buffer();
                        buf.resize(BUFFER_SIZE, 0);
                        if let Ok(len) = write_nack(&mut buf, transport.rtcp_ssrc, media_ssrc, &lost[..n]) {
                            stream.nack_count += 1;
                            stream.nack_packet_count += n as u64;
                            send_rtcp(&mut self.transmits, transport, buf, len);
                        } else {
                            self.transmits.recycle(buf);
                        }
                    }
                    if nack.poll_keyframe_request() && encoding < 8 {
                        let mask = keyframe_for.filter(|(p, _)| *p == producer_id).map_or(0, |(_, m)| m);
                        keyframe_for = Some((producer_id, mask | 1 << encoding));
                    }
                }
                if report_due && block_count < blocks.len() && stream.recv.packets_received() > 0 {
                    blocks[block_count] = stream.recv.report_block(now, media_ssrc);
                    block_count += 1;
                }
            }
        }
        if report_due {
            transport.next_receiver_report = Some(now + REPORT_INTERVAL);
            // REMB for senders without transport-cc: an estimate above what arrives, so the
            // sender may climb until its own congestion control or encoder stops it.
            let mut remb_ssrcs = [0u32; 16];
            let mut remb_count = 0;
            let mut incoming_bitrate = 0u64;
            for producer_id in &transport.producers {
                let Some(producer) = self.producers.get(producer_id).filter(|p| p.wants_remb) else { continue };
                for stream in &producer.streams {
                    incoming_bitrate += stream.recv.bitrate(now);
                    if let (Some(ssrc), Some(slot)) = (stream.ssrc, remb_ssrcs.get_mut(remb_count)) {
                        *slot = ssrc;
                        remb_count += 1;
                    }
                }
            }
            if remb_count > 0 {
                let estimate = (incoming_bitrate * 3 / 2 + 200_000).clamp(300_000, 20_000_000);
                let mut buf = self.transmits.buffer();
                buf.resize(BUFFER_SIZE, 0);
                match write_remb(&mut buf, transport.rtcp_ssrc, estimate, &remb_ssrcs[..remb_count]) {
                    Ok(len) => {
                        send_rtcp(&mut self.transmits, transport, buf, len);
                    }
                    Err(_) => self.transmits.recycle(buf),
                }
            }
            if block_count > 0 {
                let mut buf = self.transmits.buffer();
                buf.resize(BUFFER_SIZE, 0);
                match write_receiver_report(&mut buf, transport.rtcp_ssrc, &blocks[..block_count]) {
                    Ok(len) => {
                        send_rtcp(&mut self.transmits, transport, buf, len);
                    }
                    Err(_) => self.transmits.recycle(buf),
                }
            }
        }
        // Sender reports for our consumers, so receivers can sync audio and video and measure RTT.
        for i in 0..transport.consumers.len() {
            let consumer_id = transport.consumers[i];
            let Some(consumer) = self.consumers.get_mut(&consumer_id) else { continue };
            let Some((sent_at, sent_ts)) = consumer.last_sent else { continue };
            if consumer.next_sr.is_some_and(|t| now < t) {
                continue;
            }
            consumer.next_sr = Some(now + REPORT_INTERVAL);
            let elapsed = now.saturating_duration_since(sent_at);
            let rtp_timestamp =
                sent_ts.wrapping_add((elapsed.as_micros() * u128::from(consumer.clock_rate) / 1_000_000) as u32);
            let info = SenderInfo {
                ssrc: consumer.ssrc,
                ntp,
                rtp_timestamp,
                packet_count: consumer.packets as u32,
                octet_count: consumer.bytes as u32,
            };
            let mut buf = self.transmits.buffer();
            buf.resize(BUFFER_SIZE, 0);
            let mut writer = RtcpCompoundWriter::new(&mut buf);
            let ok = writer.push(|b| write_sender_report(b, &info, &[])).is_ok()
                && writer.push(|b| write_sdes_cname(b, consumer.ssrc, &consumer.cname)).is_ok();
            let len = writer.len();
            if ok {
                consumer.last_sr = Some((((ntp >> 16) & 0xffff_ffff) as u32, now));
                send_rtcp(&mut self.transmits, transport, buf, len);
            } else {
                self.transmits.recycle(buf);
            }
        }
        if let Some((producer_id, encodings)) = keyframe_for {
            self.request_key_frame(now, producer_id, encodings);
        }
    }
}

/// A receiver's report about one of our consumers: loss, jitter and (from LSR/DLSR) RTT. Returns the
/// consumer and its new score when the score changed.
fn apply_report_block(
    consumers: &mut super::id_map::IdMap<ConsumerId, super::consumer::Consumer>,
    transport: &Transport,
    block: ReportBlock,
    now_mid: u32,
) -> Option<(ConsumerId, u8)> {
    let consumer = transport.outgoing.get(&block.ssrc).and_then(|id| consumers.get_mut(id))?;
    consumer.fraction_lost = block.fraction_lost;
    let score = octo_ipc::score_of_loss(block.fraction_lost);
    let changed = (consumer.reported_score != Some(score)).then(|| {
        consumer.reported_score = Some(score);
        (consumer.id, score)
    });
    consumer.packets_lost = i64::from(block.cumulative_lost);
    consumer.jitter = block.jitter;
    if block.last_sr != 0 {
        let rtt = now_mid.wrapping_sub(block.last_sr).wrapping_sub(block.delay_since_last_sr);
        // Units of 1/65536 s; a negative result (clock skew) wraps to a huge value: ignore it.
        if rtt < 65_536 * 10 {
            consumer.rtt = Some(Duration::from_micros(u64::from(rtt) * 1_000_000 / 65_536));
        }
    }
    changed
}
