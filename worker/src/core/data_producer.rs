//! A data producer: an incoming SCTP stream on a transport whose messages the router fans out.

use octo_ipc::{DataProducerId, DataProducerStats, SctpStreamParameters, TransportId};

#[derive(Debug)]
pub struct DataProducer {
    pub id: DataProducerId,
    pub transport_id: TransportId,
    pub sctp_stream_parameters: SctpStreamParameters,
    pub label: String,
    pub protocol: String,
    pub messages_received: u64,
    pub bytes_received: u64,
}

impl DataProducer {
    pub fn new(
        id: DataProducerId,
        transport_id: TransportId,
        sctp_stream_parameters: SctpStreamParameters,
        label: String,
        protocol: String,
    ) -> Self {
        Self { id, transport_id, sctp_stream_parameters, label, protocol, messages_received: 0, bytes_received: 0 }
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
        }
    }
}
