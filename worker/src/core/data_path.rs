//! DataChannel messages through the worker: SCTP packets out of DTLS into the transport's
//! association, complete messages from a data producer's stream to every data consumer.

use std::time::Instant;

use bytes::Bytes;
use octo_ipc::{DataProducerNotification, Notification, SctpState, TransportId, TransportNotification};

use super::sctp::SctpEvent;
use super::transport::Link;
use super::worker::Worker;

impl Worker {
    /// Moves SCTP packets the transport's association queued into DTLS, and acts on its events.
    /// Returns true if DTLS may have something new to send.
    pub(super) fn flush_sctp(&mut self, now: Instant, id: TransportId) -> bool {
        let mut moved = false;
        loop {
            let Some(transport) = self.transports.get_mut(&id) else { return moved };
            let Some(sctp) = transport.sctp.as_mut() else { return moved };
            // A WebRTC transport's SCTP waits for DTLS; between two workers it runs over plain UDP,
            // as mediasoup's pipes do.
            let pipe = matches!(transport.link, Link::Pipe(_));
            if transport.dtls.is_none() && !pipe {
                return moved;
            }
            if let Some(packet) = sctp.poll_transmit(now) {
                if let Some(dtls) = transport.dtls.as_mut() {
                    if dtls.send_application_data(now, &packet).is_err() {
                        transport.counters.packets_dropped += 1;
                    }
                    moved = true;
                } else if let Some((socket, to)) = transport.selected {
                    transport.counters.packets_sent += 1;
                    transport.counters.bytes_sent += packet.len() as u64;
                    self.transmits.push_copy(socket, to, &packet);
                }
                continue;
            }
            let Some(event) = sctp.poll_event() else { return moved };
            match event {
                SctpEvent::StateChanged(state) => self
                    .notify(Notification::Transport(id, TransportNotification::SctpStateChange { sctp_state: state })),
                SctpEvent::Message { stream_id, ppid, data } => {
                    self.on_data_message(now, id, stream_id, ppid, data);
                }
                SctpEvent::StreamOpened(_)
                | SctpEvent::StreamClosed(_)
                | SctpEvent::ChannelOpened { .. }
                | SctpEvent::ChannelAcked(_) => {}
            }
        }
    }

    /// DTLS is up: the association may start (the browser's INIT may also arrive first).
    pub(super) fn start_sctp(&mut self, now: Instant, id: TransportId) {
        if let Some(sctp) = self.transports.get_mut(&id).and_then(|t| t.sctp.as_mut())
            && sctp.state() == SctpState::New
        {
            sctp.start(now);
        }
    }

    /// One complete message on `stream_id` of transport `id`: to every data consumer of the data
    /// producer on that stream. Messages on streams without a data producer are dropped.
    fn on_data_message(&mut self, now: Instant, id: TransportId, stream_id: u16, ppid: u32, data: Bytes) {
        let Some(producer_id) = self.transports.get(&id).and_then(|t| t.data_streams.get(&stream_id)).copied() else {
            return;
        };
        let Some(producer) = self.data_producers.get_mut(&producer_id) else { return };
        producer.on_message(data.len());
        if let Some(payload) = producer.tapped(now, ppid, &data) {
            self.notify(Notification::DataProducer(producer_id, DataProducerNotification::Message { ppid, payload }));
        }
        let consumers =
            self.routers.values().find_map(|r| r.data_fanout.get(&producer_id)).cloned().unwrap_or_default();
        let mut touched: Vec<TransportId> = Vec::new();
        for consumer_id in consumers {
            let Some(consumer) = self.data_consumers.get_mut(&consumer_id) else { continue };
            let sent = self
                .transports
                .get_mut(&consumer.transport_id)
                .and_then(|t| t.sctp.as_mut())
                .map(|sctp| sctp.send(now, consumer.sctp_stream_parameters.stream_id, ppid, &data));
            match sent {
                Some(Ok(())) => {
                    consumer.on_sent(data.len());
                    if !touched.contains(&consumer.transport_id) {
                        touched.push(consumer.transport_id);
                    }
                }
                _ => consumer.messages_dropped = consumer.messages_dropped.wrapping_add(1),
            }
        }
        for t in touched {
            if t != id {
                self.flush_transport(now, t);
            }
        }
    }
}
