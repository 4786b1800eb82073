//! A data producer: an incoming SCTP stream on a transport whose messages the router fans out.

use std::time::Instant;

use octo_ipc::{DataProducerId, DataProducerStats, SctpStreamParameters, TransportId};

use super::data_tap::Tap;

#[derive(Debug)]
pub struct DataProducer {
    pub id: DataProducerId,
    pub transport_id: TransportId,
    pub sctp_stream_parameters: SctpStreamParameters,
    pub label: String,
    pub protocol: String,
    pub messages_received: u64,
    pub bytes_received: u64,
    /// While the controller taps it (`SetTap`); the counts survive turning it off.
    tap: Option<Tap>,
    tap_counts: (u64, u64),
}

impl DataProducer {
    pub fn new(
        id: DataProducerId,
        transport_id: TransportId,
        sctp_stream_parameters: SctpStreamParameters,
        label: String,
        protocol: String,
    ) -> Self {
        Self {
            id,
            transport_id,
            sctp_stream_parameters,
            label,
            protocol,
            messages_received: 0,
            bytes_received: 0,
            tap: None,
            tap_counts: (0, 0),
        }
    }

    pub fn set_tap(&mut self, enabled: bool) {
        match (enabled, self.tap.take()) {
            (true, Some(tap)) => self.tap = Some(tap),
            (true, None) => self.tap = Some(Tap::default()),
            (false, Some(tap)) => self.tap_counts = (tap.messages, tap.dropped),
            (false, None) => {}
        }
    }

    /// What of a message received at `now` to hand to the controller, if tapped.
    pub fn tapped(&mut self, now: Instant, ppid: u32, data: &[u8]) -> Option<Vec<u8>> {
        self.tap.as_mut()?.pass(now, ppid, data)
    }

    pub fn on_message(&mut self, len: usize) {
        self.messages_received = self.messages_received.wrapping_add(1);
        self.bytes_received = self.bytes_received.wrapping_add(len as u64);
    }

    pub fn stats(&self) -> DataProducerStats {
        DataProducerStats {
            label: self.label.clone(),
            protocol: self.protocol.clone(),
            messages_received: self.messages_received,
            bytes_received: self.bytes_received,
            tap_messages: self.tap.as_ref().map_or(self.tap_counts.0, |t| t.messages),
            tap_dropped: self.tap.as_ref().map_or(self.tap_counts.1, |t| t.dropped),
        }
    }
}
