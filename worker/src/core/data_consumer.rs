//! A data consumer: an outgoing SCTP stream on a transport carrying one data producer's messages.

use octo_ipc::{
    DataConsumerData, DataConsumerId, DataConsumerStats, DataProducerId, SctpStreamParameters, TransportId,
};

use super::sctp::Reliability;

#[derive(Debug)]
pub struct DataConsumer {
    pub id: DataConsumerId,
    pub transport_id: TransportId,
    pub data_producer_id: DataProducerId,
    /// The producer's delivery settings on a stream id this transport allocated.
    pub sctp_stream_parameters: SctpStreamParameters,
    pub label: String,
    pub protocol: String,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_dropped: u64,
}

impl DataConsumer {
    pub fn stream_id(&self) -> u16 {
        self.sctp_stream_parameters.stream_id
    }

    pub fn data(&self) -> DataConsumerData {
        DataConsumerData {
            id: self.id,
            data_producer_id: self.data_producer_id,
            sctp_stream_parameters: self.sctp_stream_parameters,
            label: self.label.clone(),
            protocol: self.protocol.clone(),
        }
    }

    pub fn on_sent(&mut self, len: usize) {
        self.messages_sent = self.messages_sent.wrapping_add(1);
        self.bytes_sent = self.bytes_sent.wrapping_add(len as u64);
    }

    pub fn stats(&self) -> DataConsumerStats {
        DataConsumerStats {
            label: self.label.clone(),
            protocol: self.protocol.clone(),
            messages_sent: self.messages_sent,
            bytes_sent: self.bytes_sent,
            messages_dropped: self.messages_dropped,
        }
    }
}

/// The SCTP reliability of `sctpStreamParameters` (lifetime wins if a caller set both).
pub fn reliability(p: &SctpStreamParameters) -> Reliability {
    match (p.max_packet_life_time, p.max_retransmits) {
        (Some(ms), _) => Reliability::MaxPacketLifeTime(u32::from(ms)),
        (None, Some(n)) => Reliability::MaxRetransmits(u32::from(n)),
        (None, None) => Reliability::Reliable,
    }
}
