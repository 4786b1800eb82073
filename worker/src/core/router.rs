//! A router: one room's media routing table. The objects themselves live in the worker's flat
//! maps; the router knows which are its own and who consumes which producer.

use octo_ipc::{
    ConsumerId, DataConsumerId, DataProducerId, ProducerId, RouterDump, RouterId, RtpCapabilities, RtpCodecCapability,
    TransportId,
};

use super::active_speaker::ActiveSpeakerObserver;
use super::id_map::IdMap;
use super::ortc::{self, OrtcError};

#[derive(Debug)]
pub struct Router {
    pub id: RouterId,
    pub capabilities: RtpCapabilities,
    pub transports: Vec<TransportId>,
    /// producer → its consumers, the fan-out list walked for every packet.
    pub fanout: IdMap<ProducerId, Vec<ConsumerId>>,
    pub active_speaker: ActiveSpeakerObserver,
    /// data producer → its data consumers.
    pub data_fanout: IdMap<DataProducerId, Vec<DataConsumerId>>,
}

impl Router {
    pub fn new(id: RouterId, media_codecs: &[RtpCodecCapability]) -> Result<Self, OrtcError> {
        Ok(Self {
            id,
            capabilities: ortc::router_rtp_capabilities(media_codecs)?,
            transports: Vec::new(),
            fanout: IdMap::default(),
            active_speaker: ActiveSpeakerObserver::default(),
            data_fanout: IdMap::default(),
        })
    }

    pub fn dump(&self) -> RouterDump {
        let mut producer_ids: Vec<ProducerId> = self.fanout.keys().copied().collect();
        producer_ids.sort();
        let mut consumer_ids: Vec<ConsumerId> = self.fanout.values().flatten().copied().collect();
        consumer_ids.sort();
        RouterDump { id: self.id, transport_ids: self.transports.clone(), producer_ids, consumer_ids }
    }
}
