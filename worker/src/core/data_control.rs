//! Requests about data producers and data consumers (mediasoup's `produceData` / `consumeData`).

use std::time::Instant;

use octo_ipc::{
    DataConsumerId, DataConsumerNotification, DataConsumerRequest, DataProducerId, DataProducerRequest, ErrorCode,
    Notification, RequestError, Response, RouterId, SctpStreamParameters, Target, TransportId,
};

use super::control::{exists, invalid};
use super::data_consumer::{DataConsumer, reliability};
use super::data_producer::DataProducer;
use super::worker::Worker;

/// DCEP carries label and protocol with 16-bit lengths; nothing longer can reach a browser.
const MAX_LABEL_LEN: usize = u16::MAX as usize;

impl Worker {
    /// `router` is given for a pipe transport (which serves every router); a WebRTC transport's
    /// data producers belong to its own router.
    pub(super) fn produce_data(
        &mut self,
        transport_id: TransportId,
        router: Option<RouterId>,
        id: DataProducerId,
        params: SctpStreamParameters,
        label: String,
        protocol: String,
    ) -> Result<Response, RequestError> {
        if self.data_producers.contains_key(&id) {
            return Err(exists(Target::DataProducer(id)));
        }
        let router_id = match router {
            Some(r) if self.routers.contains_key(&r) => r,
            Some(r) => return Err(RequestError::not_found(Target::Router(r))),
            None => self.router_of(transport_id).ok_or_else(|| invalid("transport has no router"))?,
        };
        let transport = self.transports.get_mut(&transport_id).ok_or_else(|| invalid("no transport"))?;
        let sctp = transport.sctp_parameters.ok_or_else(|| invalid("transport was created without sctp"))?;
        if params.stream_id >= sctp.mis {
            return Err(invalid(format!("streamId {} is not below MIS {}", params.stream_id, sctp.mis)));
        }
        if params.max_packet_life_time.is_some() && params.max_retransmits.is_some() {
            return Err(invalid("maxPacketLifeTime and maxRetransmits are mutually exclusive"));
        }
        if label.len() > MAX_LABEL_LEN || protocol.len() > MAX_LABEL_LEN {
            return Err(invalid("label or protocol longer than 65535 bytes"));
        }
        if transport.data_streams.contains_key(&params.stream_id) {
            return Err(invalid(format!("streamId {} is already used by a data producer", params.stream_id)));
        }
        transport.data_streams.insert(params.stream_id, id);
        transport.data_producers.push(id);
        self.data_producers.insert(id, DataProducer::new(id, transport_id, params, label, protocol));
        if let Some(router) = self.routers.get_mut(&router_id) {
            router.data_fanout.insert(id, Vec::new());
        }
        Ok(Response::DataProducerCreated)
    }

    pub(super) fn consume_data(
        &mut self,
        transport_id: TransportId,
        id: DataConsumerId,
        data_producer_id: DataProducerId,
    ) -> Result<Response, RequestError> {
        if self.data_consumers.contains_key(&id) {
            return Err(exists(Target::DataConsumer(id)));
        }
        // A pipe serves every router: the data producer's own is the one.
        let router_id = if self.transports.get(&transport_id).is_some_and(|t| t.is_pipe()) {
            self.routers.values().find(|r| r.data_fanout.contains_key(&data_producer_id)).map(|r| r.id)
        } else {
            self.router_of(transport_id)
        }
        .ok_or_else(|| invalid("transport has no router"))?;
        let producer = self
            .data_producers
            .get(&data_producer_id)
            .filter(|_| self.routers.get(&router_id).is_some_and(|r| r.data_fanout.contains_key(&data_producer_id)))
            .ok_or_else(|| RequestError::not_found(Target::DataProducer(data_producer_id)))?;
        let transport = self.transports.get_mut(&transport_id).ok_or_else(|| invalid("no transport"))?;
        let sctp = transport.sctp_parameters.ok_or_else(|| invalid("transport was created without sctp"))?;
        // The next stream id free on this transport, in either direction, below its OS, going round
        // from the last one handed out (see `next_data_stream_id`).
        let data_consumers = &self.data_consumers;
        let start = u32::from(transport.next_data_stream_id);
        let os = u32::from(sctp.os);
        let stream_id = (0..os)
            .filter_map(|i| u16::try_from((start + i) % os).ok())
            .find(|s| {
                !transport.data_streams.contains_key(s)
                    && !transport
                        .data_consumers
                        .iter()
                        .any(|c| data_consumers.get(c).is_some_and(|c| c.stream_id() == *s))
            })
            .ok_or_else(|| RequestError::new(ErrorCode::InvalidState, "no free SCTP stream id on this transport"))?;
        transport.next_data_stream_id = stream_id.wrapping_add(1);
        let params = SctpStreamParameters { stream_id, ..producer.sctp_stream_parameters };
        let consumer = DataConsumer {
            id,
            transport_id,
            data_producer_id,
            sctp_stream_parameters: params,
            label: producer.label.clone(),
            protocol: producer.protocol.clone(),
            messages_sent: 0,
            bytes_sent: 0,
            messages_dropped: 0,
        };
        if let Some(association) = transport.sctp.as_mut() {
            association.configure_stream(stream_id, params.ordered, reliability(&params));
        }
        transport.data_consumers.push(id);
        let data = consumer.data();
        self.data_consumers.insert(id, consumer);
        if let Some(list) = self.routers.get_mut(&router_id).and_then(|r| r.data_fanout.get_mut(&data_producer_id)) {
            list.push(id);
        }
        Ok(Response::DataConsumerCreated(data))
    }

    pub(super) fn data_producer_request(
        &mut self,
        now: Instant,
        id: DataProducerId,
        req: DataProducerRequest,
    ) -> Result<Response, RequestError> {
        let p = self.data_producers.get(&id).ok_or_else(|| RequestError::not_found(Target::DataProducer(id)))?;
        match req {
            DataProducerRequest::Dump => Ok(Response::ObjectDump(format!(
                "data producer {}: transport {}, {:?}, label {:?}, protocol {:?}",
                p.id, p.transport_id, p.sctp_stream_parameters, p.label, p.protocol
            ))),
            DataProducerRequest::GetStats => Ok(Response::DataProducerStats(p.stats())),
            DataProducerRequest::SetTap { enabled } => {
                if let Some(p) = self.data_producers.get_mut(&id) {
                    p.set_tap(enabled);
                }
                Ok(Response::Ok)
            }
            DataProducerRequest::Close => {
                self.close_data_producer(now, id);
                Ok(Response::Ok)
            }
        }
    }

    pub(super) fn data_consumer_request(
        &mut self,
        now: Instant,
        id: DataConsumerId,
        req: DataConsumerRequest,
    ) -> Result<Response, RequestError> {
        let c = self.data_consumers.get(&id).ok_or_else(|| RequestError::not_found(Target::DataConsumer(id)))?;
        match req {
            DataConsumerRequest::Dump => Ok(Response::ObjectDump(format!(
                "data consumer {id}: transport {}, data producer {}, {:?}, label {:?}",
                c.transport_id, c.data_producer_id, c.sctp_stream_parameters, c.label
            ))),
            DataConsumerRequest::GetStats => Ok(Response::DataConsumerStats(c.stats())),
            DataConsumerRequest::Close => {
                self.close_data_consumer(now, id);
                Ok(Response::Ok)
            }
        }
    }

    fn router_of(&self, transport: TransportId) -> Option<octo_ipc::RouterId> {
        self.routers.values().find(|r| r.transports.contains(&transport)).map(|r| r.id)
    }

    /// Closes a data producer, its stream and every data consumer of it (each told
    /// `DataProducerClosed`).
    pub(super) fn close_data_producer(&mut self, now: Instant, id: DataProducerId) {
        let Some(producer) = self.data_producers.remove(&id) else { return };
        let mut consumers = Vec::new();
        for router in self.routers.values_mut() {
            if let Some(list) = router.data_fanout.remove(&id) {
                consumers.extend(list);
            }
        }
        if let Some(t) = self.transports.get_mut(&producer.transport_id) {
            t.data_producers.retain(|p| *p != id);
            t.data_streams.remove(&producer.sctp_stream_parameters.stream_id);
            if let Some(association) = t.sctp.as_mut() {
                association.reset_stream(now, producer.sctp_stream_parameters.stream_id);
            }
        }
        for c in consumers {
            self.close_data_consumer(now, c);
            self.notify(Notification::DataConsumer(c, DataConsumerNotification::DataProducerClosed));
        }
        self.flush_transport(now, producer.transport_id);
    }

    pub(super) fn close_data_consumer(&mut self, now: Instant, id: DataConsumerId) {
        let Some(consumer) = self.data_consumers.remove(&id) else { return };
        for router in self.routers.values_mut() {
            if let Some(list) = router.data_fanout.get_mut(&consumer.data_producer_id) {
                list.retain(|c| *c != id);
            }
        }
        if let Some(t) = self.transports.get_mut(&consumer.transport_id) {
            t.data_consumers.retain(|c| *c != id);
            if let Some(association) = t.sctp.as_mut() {
                association.reset_stream(now, consumer.stream_id());
            }
        }
        self.flush_transport(now, consumer.transport_id);
    }
}
