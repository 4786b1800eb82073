//! One peer in a room and the objects it owns.

use std::collections::HashMap;

use octo_ipc::{ConsumerId, MediaKind, ProducerId, TransportId};

use super::{Direction, EventSink, PeerId};

/// At most this many of each object per peer: enough for any real client (mediasoup's demo uses two
/// transports), small enough that a hostile client cannot fill a worker.
pub const MAX_TRANSPORTS: usize = 8;
pub const MAX_PRODUCERS: usize = 32;
pub const MAX_CONSUMERS: usize = 1000;

pub struct Peer {
    pub id: PeerId,
    pub display_name: String,
    pub sink: EventSink,
    pub transports: HashMap<TransportId, Direction>,
    /// In creation order, so that late joiners learn of producers in the order they appeared.
    pub producers: Vec<OwnedProducer>,
    pub consumers: HashMap<ConsumerId, OwnedConsumer>,
    pub data_producers: Vec<OwnedDataProducer>,
    pub data_consumers: Vec<octo_ipc::DataConsumerId>,
    /// The worker of the peer's recv transports (and so its consumers), chosen with the first one;
    /// `None` until then. Send transports are always on the room's main worker.
    pub recv_worker: Option<usize>,
    /// When the peer raised its hand (Unix ms, the server's clock: one clock orders every hand in
    /// the room), `None` while it is down.
    pub hand_raised_at: Option<u64>,
}

pub struct OwnedDataProducer {
    pub id: octo_ipc::DataProducerId,
    pub label: String,
    pub protocol: String,
    pub app_data: serde_json::Value,
}

pub struct OwnedProducer {
    pub id: ProducerId,
    pub kind: MediaKind,
    pub app_data: serde_json::Value,
    pub paused: bool,
}

pub struct OwnedConsumer {
    pub producer_id: ProducerId,
}

impl Peer {
    pub fn new(id: PeerId, display_name: String, sink: EventSink) -> Self {
        Self {
            id,
            display_name,
            sink,
            transports: HashMap::new(),
            producers: Vec::new(),
            consumers: HashMap::new(),
            data_producers: Vec::new(),
            data_consumers: Vec::new(),
            recv_worker: None,
            hand_raised_at: None,
        }
    }

    pub fn producer(&self, id: ProducerId) -> Option<&OwnedProducer> {
        self.producers.iter().find(|p| p.id == id)
    }

    pub fn producer_mut(&mut self, id: ProducerId) -> Option<&mut OwnedProducer> {
        self.producers.iter_mut().find(|p| p.id == id)
    }

    /// The first transport of `direction`, for dialects that do not name the transport.
    pub fn first_transport(&self, direction: Direction) -> Option<TransportId> {
        // HashMap order is arbitrary: pick the smallest id so the choice is stable.
        self.transports.iter().filter(|(_, d)| **d == direction).map(|(id, _)| *id).min()
    }
}
