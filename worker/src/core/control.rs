//! Requests from the controller: creating, inspecting and closing routers, transports, producers
//! and consumers. Every request names its target; an unknown target is an error naming it.

use std::time::Instant;

use octo_ipc::{
    CloseReason, ConsumerData, ConsumerId, ConsumerNotification, ConsumerRequest, DataProducerId, ErrorCode, MediaKind,
    Notification, ProducerId, ProducerRequest, Request, RequestError, Response, RouterId, RouterRequest,
    RtpCapabilities, RtpParameters, RtpType, SctpParameters, Target, TransportId, TransportNotification,
    TransportRequest, WebRtcTransportData, WebRtcTransportOptions, WorkerDump, WorkerRequest,
};

use super::bwe::SendSideBwe;
use super::consumer::Consumer;
use super::downlink::{BWE_INITIAL_BPS, BWE_MAX_BPS, BWE_MIN_BPS};
use super::ice::IceLite;
use super::ortc::{self, OrtcError};
use super::producer::Producer;
use super::router::Router;
use super::transport::{IncomingStream, Transport};
use super::worker::Worker;

pub(super) fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorCode::InvalidRequest, message)
}

impl From<OrtcError> for RequestError {
    fn from(e: OrtcError) -> Self {
        invalid(e.to_string())
    }
}

pub(super) fn exists(target: Target) -> RequestError {
    RequestError::new(ErrorCode::AlreadyExists, format!("{target} already exists"))
}

impl Worker {
    pub(super) fn handle_request(&mut self, now: Instant, request: Request) -> Result<Response, RequestError> {
        if self.closed {
            return Err(RequestError::new(ErrorCode::InvalidState, "worker is closing"));
        }
        let target = request.target();
        match request {
            Request::Worker(req) => self.worker_request(now, req),
            Request::Router(id, req) => {
                if !self.routers.contains_key(&id) {
                    return Err(RequestError::not_found(target));
                }
                self.router_request(now, id, req)
            }
            Request::Transport(id, req) => {
                if !self.transports.contains_key(&id) {
                    return Err(RequestError::not_found(target));
                }
                self.transport_request(now, id, req)
            }
            Request::Producer(id, req) => {
                if !self.producers.contains_key(&id) {
                    return Err(RequestError::not_found(target));
                }
                self.producer_request(now, id, req)
            }
            Request::Consumer(id, req) => {
                if !self.consumers.contains_key(&id) {
                    return Err(RequestError::not_found(target));
                }
                self.consumer_request(now, id, req)
            }
            Request::DataProducer(id, req) => self.data_producer_request(now, id, req),
            Request::DataConsumer(id, req) => self.data_consumer_request(now, id, req),
        }
    }

    fn worker_request(&mut self, now: Instant, req: WorkerRequest) -> Result<Response, RequestError> {
        match req {
            WorkerRequest::Dump => {
                let mut router_ids: Vec<RouterId> = self.routers.keys().copied().collect();
                router_ids.sort();
                Ok(Response::WorkerDump(WorkerDump { pid: self.pid, router_ids }))
            }
            WorkerRequest::CreateRouter { router_id, media_codecs } => {
                if self.routers.contains_key(&router_id) {
                    return Err(exists(Target::Router(router_id)));
                }
                let router = Router::new(router_id, &media_codecs)?;
                let rtp_capabilities = router.capabilities.clone();
                self.routers.insert(router_id, router);
                Ok(Response::RouterCreated { rtp_capabilities })
            }
            WorkerRequest::GetMetrics => Ok(Response::WorkerMetrics(self.metrics())),
            WorkerRequest::Ping => Ok(Response::Ok),
            // The process's logging is the IO shell's (`io::run` answers this request itself); a
            // core without one, as in the in-memory harness, has nothing to set.
            WorkerRequest::SetLogFilter { .. } => {
                Err(RequestError::new(ErrorCode::InvalidState, "this worker core has no log filter"))
            }
            WorkerRequest::CreatePipeTransport { transport_id, srtp } => {
                self.create_pipe_transport(now, transport_id, srtp)
            }
            WorkerRequest::Close => {
                let ids: Vec<RouterId> = self.routers.keys().copied().collect();
                for id in ids {
                    self.close_router(now, id);
                }
                self.closed = true;
                Ok(Response::Ok)
            }
        }
    }

    fn router_request(&mut self, now: Instant, id: RouterId, req: RouterRequest) -> Result<Response, RequestError> {
        match req {
            RouterRequest::Dump => Ok(Response::RouterDump(self.routers[&id].dump())),
            RouterRequest::Close => {
                self.close_router(now, id);
                Ok(Response::Ok)
            }
            RouterRequest::CreateWebRtcTransport { transport_id, options } => {
                self.create_webrtc_transport(now, id, transport_id, &options)
            }
            RouterRequest::CanConsume { producer_id, rtp_capabilities } => {
                let producer = self
                    .producers
                    .get(&producer_id)
                    .filter(|p| self.routers[&id].fanout.contains_key(&p.id))
                    .ok_or_else(|| RequestError::not_found(Target::Producer(producer_id)))?;
                Ok(Response::CanConsume(ortc::can_consume(&producer.consumable, &rtp_capabilities, producer.kind)))
            }
        }
    }

    fn create_webrtc_transport(
        &mut self,
        now: Instant,
        router_id: RouterId,
        transport_id: TransportId,
        options: &WebRtcTransportOptions,
    ) -> Result<Response, RequestError> {
        if self.transports.contains_key(&transport_id) {
            return Err(exists(Target::Transport(transport_id)));
        }
        if self.server.sockets().is_empty() {
            return Err(RequestError::new(ErrorCode::InvalidState, "this worker listens on no UDP socket"));
        }
        let ufrag = self.unique_ufrag();
        let password = self.rng.ice_string(32);
        self.server.register_ufrag(&ufrag, transport_id);
        let sctp = options.sctp.map(|streams| SctpParameters {
            port: 5000,
            os: streams.os,
            mis: streams.mis,
            max_message_size: options.max_sctp_message_size,
        });
        let rtcp_ssrc = self.rng.ssrc();
        let mut transport = Transport::new(transport_id, IceLite::new(ufrag, password), sctp, rtcp_ssrc);
        transport.paced = self.pace_video;
        let data = WebRtcTransportData {
            id: transport_id,
            ice_parameters: transport.ice_parameters(),
            ice_candidates: self.server.candidates(),
            ice_state: transport.ice_state(),
            dtls_parameters: octo_ipc::DtlsParameters {
                role: Some(octo_ipc::DtlsRole::Auto),
                fingerprints: self.identity.fingerprints().to_vec(),
            },
            dtls_state: transport.dtls_state(),
            sctp_parameters: sctp,
        };
        if self.transports.insert(transport_id, transport).is_none() {
            self.transport_ids.push(transport_id);
        }
        if let Some(router) = self.routers.get_mut(&router_id) {
            router.transports.push(transport_id);
        }
        self.ensure_tick(now);
        Ok(Response::WebRtcTransportCreated(data))
    }

    fn unique_ufrag(&mut self) -> String {
        loop {
            let candidate = self.rng.ice_string(16);
            if !self.server.has_ufrag(&candidate) {
                return candidate;
            }
        }
    }

    fn transport_request(
        &mut self,
        now: Instant,
        id: TransportId,
        req: TransportRequest,
    ) -> Result<Response, RequestError> {
        match req {
            TransportRequest::Dump => {
                let t = &self.transports[&id];
                Ok(Response::ObjectDump(format!(
                    "transport {id}: ice {:?} selected {:?}, dtls {:?}, sctp {:?}, producers {:?}, consumers {:?}",
                    t.ice_state(),
                    t.ice().and_then(IceLite::selected_tuple),
                    t.dtls_state(),
                    t.sctp_parameters,
                    t.producers,
                    t.consumers
                )))
            }
            TransportRequest::Close => {
                self.close_transport(now, id, None);
                Ok(Response::Ok)
            }
            TransportRequest::Connect { dtls_parameters } => {
                let transport = self.transports.get_mut(&id).expect("checked by caller");
                if transport.is_pipe() {
                    return Err(invalid("a pipe transport has no DTLS: use connectPipe"));
                }
                if transport.dtls.is_some() {
                    return Err(RequestError::new(ErrorCode::InvalidState, "connect() already called"));
                }
                let role = transport
                    .connect(now, &self.identity, &dtls_parameters)
                    .map_err(|e| invalid(format!("dtlsParameters: {e}")))?;
                self.flush_transport(now, id);
                Ok(Response::TransportConnected { dtls_local_role: role })
            }
            TransportRequest::RestartIce => {
                if self.transports[&id].is_pipe() {
                    return Err(invalid("a pipe transport has no ICE to restart"));
                }
                let ufrag = self.unique_ufrag();
                let password = self.rng.ice_string(32);
                let transport = self.transports.get_mut(&id).expect("checked by caller");
                let Some(ice) = transport.ice_mut() else { unreachable!("checked above") };
                let old = ice.local_ufrag().to_owned();
                ice.restart(ufrag.clone(), password);
                let params = transport.ice_parameters();
                self.server.unregister_ufrag(&old);
                self.server.register_ufrag(&ufrag, id);
                Ok(Response::IceParameters(params))
            }
            TransportRequest::Produce { producer_id, kind, rtp_parameters, paused } => {
                self.produce(id, producer_id, kind, rtp_parameters, paused)
            }
            TransportRequest::Consume { consumer_id, producer_id, rtp_capabilities, paused } => {
                self.consume(id, consumer_id, producer_id, &rtp_capabilities, paused)
            }
            TransportRequest::ProduceData { data_producer_id, sctp_stream_parameters, label, protocol } => {
                if self.transports[&id].is_pipe() {
                    return Err(invalid("a pipe transport's data producers come from produceDataFromPipe"));
                }
                self.produce_data(id, None, data_producer_id, sctp_stream_parameters, label, protocol)
            }
            TransportRequest::ConsumeData { data_consumer_id, data_producer_id } => {
                if self.transports[&id].is_pipe() {
                    return Err(invalid("a pipe transport's data consumers come from consumeDataToPipe"));
                }
                self.consume_data(id, data_consumer_id, data_producer_id)
            }
            TransportRequest::ConsumeDataToPipe { data_consumer_id, data_producer_id } => {
                if !self.transports[&id].is_pipe() {
                    return Err(invalid("consumeDataToPipe is for pipe transports"));
                }
                self.consume_data(id, data_consumer_id, data_producer_id)
            }
            TransportRequest::ProduceDataFromPipe {
                data_producer_id,
                router_id,
                sctp_stream_parameters,
                label,
                protocol,
            } => {
                if !self.transports[&id].is_pipe() {
                    return Err(invalid("produceDataFromPipe is for pipe transports"));
                }
                self.produce_data(id, Some(router_id), data_producer_id, sctp_stream_parameters, label, protocol)
            }
            TransportRequest::GetStats => Ok(Response::TransportStats(self.transports[&id].stats(self.last_now))),
            TransportRequest::ConnectPipe { remote, srtp_parameters, sctp_client } => {
                self.connect_pipe(now, id, remote, srtp_parameters, sctp_client)
            }
            TransportRequest::ConsumeToPipe { consumer_id, producer_id } => {
                self.consume_to_pipe(id, consumer_id, producer_id)
            }
            TransportRequest::ProduceFromPipe { producer_id, router_id, kind, rtp_parameters, paused } => {
                self.produce_from_pipe(id, producer_id, router_id, kind, rtp_parameters, paused)
            }
        }
    }

    fn router_of_transport(&self, id: TransportId) -> Option<RouterId> {
        self.routers.values().find(|r| r.transports.contains(&id)).map(|r| r.id)
    }

    fn produce(
        &mut self,
        transport_id: TransportId,
        producer_id: ProducerId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        paused: bool,
    ) -> Result<Response, RequestError> {
        if self.producers.contains_key(&producer_id) {
            return Err(exists(Target::Producer(producer_id)));
        }
        let router_id = self.router_of_transport(transport_id).ok_or_else(|| invalid("transport has no router"))?;
        let transport = &self.transports[&transport_id];
        // Every SSRC the producer announces must be new on this transport.
        for enc in &rtp_parameters.encodings {
            for ssrc in enc.ssrc.into_iter().chain(enc.rtx.map(|r| r.ssrc)) {
                if transport.incoming.contains_key(&ssrc) {
                    return Err(invalid(format!("ssrc {ssrc} is already used by another producer")));
                }
            }
        }
        // One CNAME for every producer of a transport (what the receivers' lip sync groups by):
        // the first one given, or one of our own when the sender gave none (a browser's simulcast
        // offer signals encodings by rid, without the a=ssrc lines that carry it). Consumers pass
        // it on as their stream id, which a browser's SDP must have.
        let mut rtp_parameters = rtp_parameters;
        let given = rtp_parameters.rtcp.cname.clone().filter(|c| !c.is_empty());
        let cname = match (transport.cname_for_producers.clone(), given) {
            (Some(cname), _) => cname,
            (None, Some(given)) => given,
            (None, None) => format!("{:08x}", self.rng.next_u32()),
        };
        rtp_parameters.rtcp.cname = Some(cname.clone());
        self.transports.get_mut(&transport_id).expect("checked by caller").cname_for_producers = Some(cname);
        let caps = &self.routers[&router_id].capabilities;
        let rng = &mut self.rng;
        let mapping = ortc::producer_rtp_mapping(kind, &rtp_parameters, caps, || rng.ssrc())?;
        let consumable = ortc::consumable_rtp_parameters(kind, &rtp_parameters, caps, &mapping);
        let producer =
            Producer::new(producer_id, router_id, transport_id, kind, rtp_parameters, consumable, &mapping, paused);
        let rtp_type = producer.rtp_type;
        let transport = self.transports.get_mut(&transport_id).expect("checked by caller");
        for (encoding, stream) in producer.streams.iter().enumerate() {
            if let Some(ssrc) = stream.ssrc {
                transport.incoming.insert(ssrc, IncomingStream { producer: producer_id, encoding, is_rtx: false });
            }
            if let Some(ssrc) = stream.rtx_ssrc {
                transport.incoming.insert(ssrc, IncomingStream { producer: producer_id, encoding, is_rtx: true });
            }
        }
        transport.producers.push(producer_id);
        self.producers.insert(producer_id, producer);
        self.routers.get_mut(&router_id).expect("router exists").fanout.insert(producer_id, Vec::new());
        Ok(Response::ProducerCreated { rtp_type })
    }

    fn consume(
        &mut self,
        transport_id: TransportId,
        consumer_id: ConsumerId,
        producer_id: ProducerId,
        caps: &RtpCapabilities,
        paused: bool,
    ) -> Result<Response, RequestError> {
        if self.consumers.contains_key(&consumer_id) {
            return Err(exists(Target::Consumer(consumer_id)));
        }
        let router_id = self.router_of_transport(transport_id).ok_or_else(|| invalid("transport has no router"))?;
        let producer = self
            .producers
            .get(&producer_id)
            .filter(|_| self.routers[&router_id].fanout.contains_key(&producer_id))
            .ok_or_else(|| RequestError::not_found(Target::Producer(producer_id)))?;
        if !ortc::can_consume(&producer.consumable, caps, producer.kind) {
            return Err(invalid(OrtcError::CannotConsume.to_string()));
        }
        let rng = &mut self.rng;
        let mut rtp_parameters =
            ortc::consumer_rtp_parameters(producer.kind, &producer.consumable, caps, || rng.ssrc())?;
        let (initial_seq, initial_ts) = ((self.rng.next_u32() & 0x7fff) as u16, self.rng.next_u32());
        let transport = self.transports.get_mut(&transport_id).expect("checked by caller");
        rtp_parameters.mid = Some(transport.next_mid());
        let mut consumer = Consumer::new(
            consumer_id,
            transport_id,
            producer_id,
            producer.kind,
            rtp_parameters.clone(),
            producer.rtp_type,
            paused,
            producer.paused,
            initial_seq,
            initial_ts,
        );
        if producer.rtp_type == RtpType::Simulcast {
            consumer.make_simulcast(producer.streams.len().min(8) as u8);
        }
        if consumer.twcc_ext_id.is_some() && transport.bwe.is_none() {
            transport.bwe = Some(Box::new(SendSideBwe::new(BWE_INITIAL_BPS, BWE_MIN_BPS, BWE_MAX_BPS)));
        }
        transport.outgoing.insert(consumer.ssrc, consumer_id);
        if let Some((rtx_ssrc, _)) = consumer.rtx {
            transport.outgoing.insert(rtx_ssrc, consumer_id);
        }
        let data = ConsumerData {
            id: consumer_id,
            producer_id,
            kind: producer.kind,
            rtp_parameters,
            rtp_type: producer.rtp_type,
            paused,
            producer_paused: producer.paused,
        };
        transport.consumers.push(consumer_id);
        self.consumers.insert(consumer_id, consumer);
        if let Some(list) = self.routers.get_mut(&router_id).and_then(|r| r.fanout.get_mut(&producer_id)) {
            list.push(consumer_id);
        }
        Ok(Response::ConsumerCreated(data))
    }

    fn producer_request(
        &mut self,
        now: Instant,
        id: ProducerId,
        req: ProducerRequest,
    ) -> Result<Response, RequestError> {
        match req {
            ProducerRequest::Dump => {
                let p = &self.producers[&id];
                Ok(Response::ObjectDump(format!(
                    "producer {id}: kind {:?}, type {:?}, paused {}, mid {:?}, streams {:?}",
                    p.kind, p.rtp_type, p.paused, p.rtp_parameters.mid, p.streams
                )))
            }
            ProducerRequest::Close => {
                self.close_producer(id);
                Ok(Response::Ok)
            }
            ProducerRequest::Pause | ProducerRequest::Resume => {
                let pause = req == ProducerRequest::Pause;
                let producer = self.producers.get_mut(&id).expect("checked by caller");
                if producer.paused == pause {
                    return Ok(Response::Ok);
                }
                producer.paused = pause;
                let consumers = self.consumers_of(id);
                for cid in consumers {
                    if let Some(c) = self.consumers.get_mut(&cid) {
                        c.producer_paused = pause;
                    }
                    if !pause {
                        self.on_consumer_activated(now, cid);
                    }
                    let n = if pause {
                        ConsumerNotification::ProducerPaused
                    } else {
                        ConsumerNotification::ProducerResumed
                    };
                    self.notify(Notification::Consumer(cid, n));
                }
                Ok(Response::Ok)
            }
            ProducerRequest::GetStats => Ok(Response::RtpStreamStats(self.producer_stats(id))),
        }
    }

    fn consumer_request(
        &mut self,
        now: Instant,
        id: ConsumerId,
        req: ConsumerRequest,
    ) -> Result<Response, RequestError> {
        match req {
            ConsumerRequest::Dump => {
                let c = &self.consumers[&id];
                Ok(Response::ObjectDump(format!(
                    "consumer {}: producer {}, kind {:?}, type {:?}, paused {}, producer paused {}, ssrc {}",
                    c.id, c.producer_id, c.kind, c.rtp_type, c.paused, c.producer_paused, c.ssrc
                )))
            }
            ConsumerRequest::Close => {
                self.close_consumer(id);
                Ok(Response::Ok)
            }
            ConsumerRequest::Pause => {
                if let Some(c) = self.consumers.get_mut(&id) {
                    c.paused = true;
                }
                Ok(Response::Ok)
            }
            ConsumerRequest::Resume => {
                let was_paused = self.consumers.get_mut(&id).map(|c| std::mem::replace(&mut c.paused, false));
                if was_paused == Some(true) {
                    self.on_consumer_activated(now, id);
                }
                Ok(Response::Ok)
            }
            ConsumerRequest::RequestKeyFrame => {
                self.request_key_frame_for(now, id, None);
                Ok(Response::Ok)
            }
            ConsumerRequest::SetPreferredLayers(layers) => {
                let c = self.consumers.get_mut(&id).expect("checked by caller");
                let Some(selector) = c.layers.as_mut() else {
                    return Err(RequestError::new(
                        ErrorCode::InvalidState,
                        "preferred layers are for simulcast consumers; this one forwards a single stream",
                    ));
                };
                selector.set_preferred(layers.spatial_layer, layers.temporal_layer);
                let transport_id = c.transport_id;
                self.allocate_downlink(now, transport_id);
                self.update_layers_of(now, id);
                Ok(Response::Ok)
            }
            ConsumerRequest::SetPriority(priority) => {
                if priority == 0 {
                    return Err(invalid("priority is 1 to 255"));
                }
                self.consumers.get_mut(&id).expect("checked by caller").priority = priority;
                Ok(Response::Ok)
            }
            ConsumerRequest::GetStats => Ok(Response::RtpStreamStats(self.consumer_stats(id))),
        }
    }

    pub(super) fn consumers_of(&self, producer: ProducerId) -> Vec<ConsumerId> {
        self.routers.values().find_map(|r| r.fanout.get(&producer)).cloned().unwrap_or_default()
    }

    pub(super) fn close_router(&mut self, now: Instant, id: RouterId) {
        let Some(router) = self.routers.get(&id) else { return };
        for transport in router.transports.clone() {
            self.close_transport(now, transport, None);
        }
        // Pipe transports serve every router: only this router's piped-in producers go with it (its
        // own producers' pipe consumers closed with them above).
        let piped: Vec<ProducerId> =
            self.producers.values().filter(|p| p.router_id == id && p.piped).map(|p| p.id).collect();
        for producer in piped {
            self.close_producer(producer);
        }
        let piped_data: Vec<DataProducerId> = self.routers[&id]
            .data_fanout
            .keys()
            .filter(|d| {
                self.data_producers
                    .get(d)
                    .is_some_and(|d| self.transports.get(&d.transport_id).is_some_and(|t| t.is_pipe()))
            })
            .copied()
            .collect();
        for data_producer in piped_data {
            self.close_data_producer(now, data_producer);
        }
        self.routers.remove(&id);
    }

    /// Closes a transport with everything on it. `reason` is set when the owner did not ask for it.
    pub(super) fn close_transport(&mut self, now: Instant, id: TransportId, reason: Option<CloseReason>) {
        let Some(transport) = self.transports.get(&id) else { return };
        let (producers, consumers) = (transport.producers.clone(), transport.consumers.clone());
        for p in producers {
            self.close_producer(p);
        }
        for c in consumers {
            self.close_consumer(c);
        }
        let (data_producers, data_consumers) = (transport_data_producers(self, id), transport_data_consumers(self, id));
        for p in data_producers {
            self.close_data_producer(now, p);
        }
        for c in data_consumers {
            self.close_data_consumer(now, c);
        }
        // The ABORT goes out through DTLS before its close_notify.
        if let Some(sctp) = self.transports.get_mut(&id).and_then(|t| t.sctp.as_mut()) {
            sctp.close(now);
        }
        self.flush_sctp(now, id);
        if let Some(i) = self.transport_ids.iter().position(|&t| t == id) {
            self.transport_ids.swap_remove(i);
        }
        if let Some(mut transport) = self.transports.remove(&id) {
            let (t, c) = (&transport.counters, &mut self.counters);
            c.retired_packets_received += t.packets_received;
            c.retired_bytes_received += t.bytes_received;
            c.retired_packets_sent += t.packets_sent;
            c.retired_bytes_sent += t.bytes_sent;
            c.retired_packets_dropped += t.packets_dropped;
            c.retired_srtp_failures += t.srtp_failures;
            c.retired_pacer_dropped += transport.pacer.dropped;
            if transport.is_pipe() {
                c.retired_pipe_bytes_received += t.bytes_received;
                c.retired_pipe_bytes_sent += t.bytes_sent;
            }
            if let Some(ice) = transport.ice_mut() {
                ice.close();
            }
            if let Some(dtls) = transport.dtls.as_mut() {
                dtls.close(now);
                while let Some(d) = dtls.poll_transmit() {
                    if let Some((socket, to)) = transport.selected {
                        self.transmits.push_copy(socket, to, &d);
                    }
                }
            }
        }
        self.server.remove_transport(id);
        for router in self.routers.values_mut() {
            router.transports.retain(|t| *t != id);
        }
        if let Some(reason) = reason {
            self.notify(Notification::Transport(id, TransportNotification::Closed { reason }));
        }
    }

    /// Closes a producer and, with it, every consumer of it (each told `ProducerClosed`).
    pub(super) fn close_producer(&mut self, id: ProducerId) {
        let Some(producer) = self.producers.remove(&id) else { return };
        let consumers = self.consumers_of(id);
        for router in self.routers.values_mut() {
            router.fanout.remove(&id);
        }
        if let Some(t) = self.transports.get_mut(&producer.transport_id) {
            t.producers.retain(|p| *p != id);
            t.incoming.retain(|_, s| s.producer != id);
            // Free its receive slots: a pipe, and a long-lived WebRTC transport, sees many producers
            // come and go. (Send-side state stays: forgetting a stream's rollover counter could
            // reuse a keystream under the same key.)
            if let Some(srtp) = t.srtp_recv.as_mut() {
                for stream in &producer.streams {
                    for ssrc in stream.ssrc.into_iter().chain(stream.rtx_ssrc) {
                        srtp.remove_ssrc(ssrc);
                    }
                }
            }
        }
        for c in consumers {
            self.close_consumer(c);
            self.notify(Notification::Consumer(c, ConsumerNotification::ProducerClosed));
        }
    }

    pub(super) fn close_consumer(&mut self, id: ConsumerId) {
        let Some(consumer) = self.consumers.remove(&id) else { return };
        self.counters.retired_nacks += consumer.nack_count;
        self.counters.retired_keyframe_requests += consumer.pli_count + consumer.fir_count;
        if let Some(t) = self.transports.get_mut(&consumer.transport_id) {
            t.consumers.retain(|c| *c != id);
            t.outgoing.retain(|_, c| *c != id);
        }
        for router in self.routers.values_mut() {
            if let Some(list) = router.fanout.get_mut(&consumer.producer_id) {
                list.retain(|c| *c != id);
            }
        }
    }
}

fn transport_data_producers(worker: &Worker, id: TransportId) -> Vec<octo_ipc::DataProducerId> {
    worker.transports.get(&id).map(|t| t.data_producers.clone()).unwrap_or_default()
}

fn transport_data_consumers(worker: &Worker, id: TransportId) -> Vec<octo_ipc::DataConsumerId> {
    worker.transports.get(&id).map(|t| t.data_consumers.clone()).unwrap_or_default()
}
