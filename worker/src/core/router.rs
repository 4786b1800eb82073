//! A router: one room's media routing table.

use octo_ipc::{RouterDump, RouterId};

/// Transports, producers and consumers arrive with the media plane; for now a router is the unit
/// the controller places on a worker and can dump and close.
#[derive(Debug)]
pub struct Router {
    id: RouterId,
}

impl Router {
    pub fn new(id: RouterId) -> Self {
        Self { id }
    }

    pub fn id(&self) -> RouterId {
        self.id
    }

    pub fn dump(&self) -> RouterDump {
        RouterDump { id: self.id, transport_ids: Vec::new(), producer_ids: Vec::new(), consumer_ids: Vec::new() }
    }
}
