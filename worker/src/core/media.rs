//! Datagrams in, datagrams out: STUN to ICE-lite, DTLS records to the transport's DTLS, and
//! SRTP/SRTCP to the forwarding path. Classification by first byte follows RFC 7983.

use std::net::SocketAddr;
use std::time::Instant;

use octo_ipc::{
    ConsumerId, Notification, ProducerId, RtpStreamDirection, RtpStreamStats, TransportId, TransportNotification,
};

use super::dtls::{DtlsEvent, NegotiatedSrtpProfile};
use super::forward::{ALL_ENCODINGS, is_rtcp};
use super::ice::{IceEvent, IceLite, StunMessage, Tuple};
use super::srtp::{DtlsSrtpKeys, RecvProtection, SendProtection, SrtpProfile};
use super::transmit::{BUFFER_SIZE, SocketId};
use super::transport::ipc_tuple;
use super::worker::Worker;

impl Worker {
    /// A datagram that arrived on `socket` from `from`; it occupies `buf[..len]`, and the rest of
    /// `buf` is headroom the forwarding path may use.
    pub fn handle_datagram(&mut self, now: Instant, socket: SocketId, from: SocketAddr, buf: &mut [u8], len: usize) {
        self.last_now = Some(now);
        let Some(data) = buf.get(..len) else {
            self.counters.malformed += 1;
            return;
        };
        match data.first() {
            Some(0..=3) => self.handle_stun(now, socket, from, data),
            Some(20..=63) => {
                self.timers_moved();
                self.handle_dtls(now, socket, from, data)
            }
            Some(128..=191) => self.handle_srtp(now, socket, from, buf, len),
            _ => match self.server.transport_for_tuple(socket, from).filter(|t| self.transports[t].is_pipe()) {
                Some(pipe) => self.handle_pipe_sctp(now, pipe, data),
                None => self.counters.malformed += 1,
            },
        }
    }

    fn handle_stun(&mut self, now: Instant, socket: SocketId, from: SocketAddr, data: &[u8]) {
        let Ok(msg) = StunMessage::parse(data) else {
            self.counters.malformed += 1;
            return;
        };
        // USERNAME is "<our ufrag>:<their ufrag>"; ours picks the transport.
        let transport_id = msg
            .username()
            .and_then(|u| u.split(|&b| b == b':').next())
            .and_then(|u| std::str::from_utf8(u).ok())
            .and_then(|u| self.server.transport_for_ufrag(u));
        let (Some(transport_id), Some(listen)) = (transport_id, self.server.socket(socket)) else {
            // Not ours: answering would make the server a reflector.
            self.counters.unknown_source += 1;
            return;
        };
        let Some(ice) = self.transports.get_mut(&transport_id).and_then(|t| t.ice_mut()) else { return };
        let tuple = Tuple { local: listen.local, remote: from, protocol: listen.protocol };
        let mut response = self.transmits.buffer();
        response.resize(BUFFER_SIZE, 0);
        match ice.handle_binding_request(now, tuple, &msg, &mut response) {
            Ok(n) => {
                response.truncate(n);
                self.transmits.push(socket, from, response);
            }
            Err(_) => {
                self.transmits.recycle(response);
                if let Some(t) = self.transports.get_mut(&transport_id) {
                    t.counters.packets_dropped += 1;
                }
            }
        }
        if self.transports.get(&transport_id).is_some_and(|t| t.accepts(&tuple)) {
            self.server.register_tuple(socket, from, transport_id);
        }
        self.drain_ice_events(now, transport_id);
    }

    fn drain_ice_events(&mut self, now: Instant, id: TransportId) {
        loop {
            let Some(transport) = self.transports.get_mut(&id) else { return };
            let Some(event) = transport.ice_mut().and_then(IceLite::poll_event) else { return };
            match event {
                IceEvent::StateChanged(state) => {
                    self.notify(Notification::Transport(
                        id,
                        TransportNotification::IceStateChange { ice_state: state },
                    ));
                }
                IceEvent::SelectedTupleChanged(tuple) => {
                    let server = &self.server;
                    transport.selected =
                        tuple.and_then(|t| Some((server.socket_id_for(t.local, t.protocol)?, t.remote)));
                    // A DTLS client waits for somewhere to send its hello.
                    if transport.selected.is_some()
                        && let Some(dtls) = transport.dtls.as_mut()
                    {
                        dtls.start(now);
                        self.dtls_sctp_timeout.set(None);
                    }
                    self.notify(Notification::Transport(
                        id,
                        TransportNotification::IceSelectedTupleChange { tuple: tuple.map(ipc_tuple) },
                    ));
                    self.flush_transport(now, id);
                }
            }
        }
    }

    fn handle_dtls(&mut self, now: Instant, socket: SocketId, from: SocketAddr, data: &[u8]) {
        // Only ICE-validated sources reach DTLS: its endpoint would start a handshake for anyone.
        let Some(id) = self.server.transport_for_tuple(socket, from) else {
            self.counters.unknown_source += 1;
            return;
        };
        let Some(transport) = self.transports.get_mut(&id) else { return };
        transport.counters.packets_received += 1;
        transport.counters.bytes_received += data.len() as u64;
        match transport.dtls.as_mut() {
            Some(dtls) => {
                if dtls.handle_datagram(now, data).is_err() {
                    transport.counters.packets_dropped += 1;
                }
            }
            // connect() has not arrived yet; the peer retransmits its flight.
            None => transport.counters.packets_dropped += 1,
        }
        self.flush_transport(now, id);
    }

    /// Sends what the transport's DTLS queued and acts on its events.
    pub(super) fn flush_transport(&mut self, now: Instant, id: TransportId) {
        loop {
            let Some(transport) = self.transports.get_mut(&id) else { return };
            let Some(dtls) = transport.dtls.as_mut() else {
                // A pipe's SCTP goes straight to UDP.
                if transport.is_pipe() {
                    self.flush_sctp(now, id);
                }
                return;
            };
            if let Some(datagram) = dtls.poll_transmit() {
                if let Some((socket, to)) = transport.selected {
                    transport.counters.packets_sent += 1;
                    transport.counters.bytes_sent += datagram.len() as u64;
                    self.transmits.push_copy(socket, to, &datagram);
                }
                continue;
            }
            let Some(event) = dtls.poll_event() else {
                // SCTP packets go out through DTLS: go round again if the association sent any.
                if self.flush_sctp(now, id) {
                    continue;
                }
                return;
            };
            match event {
                DtlsEvent::StateChanged { state, reason } => {
                    if state == octo_ipc::DtlsState::Connected {
                        self.start_sctp(now, id);
                    }
                    self.notify(Notification::Transport(
                        id,
                        TransportNotification::DtlsStateChange { dtls_state: state, reason },
                    ));
                }
                DtlsEvent::SrtpKeys { profile, keying_material, local_is_client } => {
                    self.on_srtp_keys(now, id, profile, &keying_material, local_is_client);
                }
                DtlsEvent::ApplicationData(packet) => match transport.sctp.as_mut() {
                    Some(sctp) => sctp.handle_packet(now, &packet),
                    // No DataChannels were offered on this transport.
                    None => transport.counters.packets_dropped += 1,
                },
            }
        }
    }

    pub(super) fn transport_timeout(&mut self, now: Instant, id: TransportId) {
        let Some(transport) = self.transports.get_mut(&id) else { return };
        if let Some(ice) = transport.ice_mut() {
            ice.handle_timeout(now);
        }
        if let Some(dtls) = transport.dtls.as_mut()
            && dtls.poll_timeout().is_some_and(|t| t <= now)
        {
            dtls.handle_timeout(now);
            self.dtls_sctp_timeout.set(None);
        }
        if let Some(sctp) = transport.sctp.as_mut() {
            sctp.handle_timeout(now);
            self.dtls_sctp_timeout.set(None);
        }
        self.drain_ice_events(now, id);
        self.flush_transport(now, id);
        self.rtcp_tick(now, id);
    }

    /// Tuples whose consent expired no longer route anything. Once per tick for all transports.
    pub(super) fn forget_expired_tuples(&mut self) {
        let transports = &self.transports;
        let sockets = self.server.sockets().to_vec();
        self.server.retain_tuples(|socket, remote, t| {
            let listen = sockets.iter().find(|s| s.id == socket);
            match (transports.get(&t), listen) {
                (Some(tr), Some(s)) => tr.accepts(&Tuple { local: s.local, remote, protocol: s.protocol }),
                _ => false,
            }
        });
    }

    fn handle_srtp(&mut self, now: Instant, socket: SocketId, from: SocketAddr, buf: &mut [u8], len: usize) {
        let Some(id) = self.server.transport_for_tuple(socket, from) else {
            self.counters.unknown_source += 1;
            return;
        };
        if let Some(transport) = self.transports.get_mut(&id) {
            transport.counters.packets_received += 1;
            transport.counters.bytes_received += len as u64;
            transport.counters.recv_rate.add(now, len);
        }
        if is_rtcp(&buf[..len]) {
            self.handle_rtcp(now, id, buf, len);
        } else {
            self.handle_rtp(now, id, buf, len);
        }
    }

    fn on_srtp_keys(
        &mut self,
        _now: Instant,
        id: TransportId,
        profile: NegotiatedSrtpProfile,
        keying_material: &[u8],
        local_is_client: bool,
    ) {
        let profile = match profile {
            NegotiatedSrtpProfile::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
            NegotiatedSrtpProfile::AeadAes256Gcm => SrtpProfile::AeadAes256Gcm,
            NegotiatedSrtpProfile::Aes128CmHmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
            NegotiatedSrtpProfile::Aes128CmHmacSha1_32 => SrtpProfile::Aes128CmHmacSha1_32,
        };
        let Some(transport) = self.transports.get_mut(&id) else { return };
        match DtlsSrtpKeys::split(profile, keying_material, local_is_client) {
            Ok(keys) => {
                transport.srtp_send = Some(SendProtection::srtp(&keys.local));
                transport.srtp_recv = Some(RecvProtection::srtp(&keys.remote));
            }
            Err(e) => {
                tracing::warn!(transport = %id, "SRTP keys unusable: {e}");
            }
        }
    }

    /// A consumer starts (or restarts) sending: it needs a keyframe to start on.
    pub(super) fn on_consumer_activated(&mut self, now: Instant, id: ConsumerId) {
        if let Some(consumer) = self.consumers.get_mut(&id) {
            consumer.restart();
        }
        self.request_key_frame_for(now, id, None);
    }

    /// A keyframe request on consumer `id`'s behalf, for the encoding it forwards or waits for (a
    /// pipe's far end names the encoding by `media_ssrc`).
    pub(super) fn request_key_frame_for(&mut self, now: Instant, id: ConsumerId, media_ssrc: Option<u32>) {
        let Some(consumer) = self.consumers.get(&id) else { return };
        let Some(producer) = self.producers.get(&consumer.producer_id) else { return };
        let encodings = if consumer.pipe {
            match media_ssrc.and_then(|ssrc| producer.encoding_of_mapped_ssrc(ssrc)) {
                Some(encoding) if encoding < 8 => 1 << encoding,
                _ => ALL_ENCODINGS,
            }
        } else {
            match &consumer.layers {
                Some(layers) => layers.wants_keyframe().or(layers.current_spatial).map_or(0, |e| 1u8 << e.min(7)),
                None => 1,
            }
        };
        let producer_id = consumer.producer_id;
        self.request_key_frame(now, producer_id, encodings);
    }

    pub(super) fn producer_stats(&self, id: ProducerId) -> Vec<RtpStreamStats> {
        let Some(p) = self.producers.get(&id) else { return Vec::new() };
        let now = self.last_now;
        p.streams
            .iter()
            .map(|s| RtpStreamStats {
                direction: RtpStreamDirection::Inbound,
                kind: p.kind,
                ssrc: s.ssrc.unwrap_or(0),
                rtx_ssrc: s.rtx_ssrc,
                rid: s.rid.clone(),
                mime_type: p.primary_mime_type().to_owned(),
                packet_count: s.recv.packets_received(),
                byte_count: s.recv.bytes_received(),
                bitrate: now.map_or(0, |n| s.recv.bitrate(n)),
                packets_lost: s.recv.packets_lost(),
                fraction_lost: (s.recv.loss_fraction() * 256.0).clamp(0.0, 255.0) as u8,
                jitter: s.recv.jitter(),
                round_trip_time_ms: None,
                nack_count: s.nack_count,
                nack_packet_count: s.nack_packet_count,
                pli_count: s.pli_count,
                fir_count: s.fir_count,
                packets_retransmitted: s.nack.as_ref().map_or(0, |n| n.stats().packets_recovered),
                retransmissions_skipped: 0,
                packets_discarded: s.packets_discarded,
                score: octo_ipc::score_of_loss((s.recv.loss_fraction() * 256.0).clamp(0.0, 255.0) as u8),
                spatial_layer: None,
                temporal_layer: None,
            })
            .collect()
    }

    pub(super) fn consumer_stats(&self, id: ConsumerId) -> Vec<RtpStreamStats> {
        let Some(c) = self.consumers.get(&id) else { return Vec::new() };
        let mime_type = c.rtp_parameters.codecs.first().map(|c| c.mime_type.clone()).unwrap_or_default();
        vec![RtpStreamStats {
            direction: RtpStreamDirection::Outbound,
            kind: c.kind,
            ssrc: c.ssrc,
            rtx_ssrc: c.rtx.map(|(s, _)| s),
            rid: None,
            mime_type,
            packet_count: c.packets,
            byte_count: c.bytes,
            bitrate: self.last_now.map_or(0, |n| c.send_rate.bitrate(n)),
            packets_lost: c.packets_lost,
            fraction_lost: c.fraction_lost,
            jitter: c.jitter,
            round_trip_time_ms: c.rtt.map(|r| r.as_secs_f64() * 1000.0),
            nack_count: c.nack_count,
            nack_packet_count: c.nack_packet_count,
            pli_count: c.pli_count,
            fir_count: c.fir_count,
            packets_retransmitted: c.packets_retransmitted,
            retransmissions_skipped: c.retransmissions_skipped,
            packets_discarded: 0,
            score: octo_ipc::score_of_loss(c.fraction_lost),
            spatial_layer: c.layers.as_ref().and_then(|l| l.current()).map(|l| l.spatial),
            temporal_layer: c.layers.as_ref().and_then(|l| l.current()).map(|l| l.temporal),
        }]
    }
}
