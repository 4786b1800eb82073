//! The worker core's face: every input the process receives goes through [`Worker::handle_input`]
//! (control) or [`Worker::handle_datagram`] (media); everything it wants done comes out of
//! [`Worker::poll_output`] and [`Worker::poll_transmit`].

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use octo_ipc::{
    ConsumerId, ControllerMessage, DataConsumerId, DataProducerId, Notification, ProducerId, RouterId, TransportId,
    WorkerMessage, WorkerNotification,
};

use super::consumer::Consumer;
use super::data_consumer::DataConsumer;
use super::data_producer::DataProducer;
use super::dtls::{DtlsError, DtlsIdentity};
use super::fan_out::CONSUMERS_PER_CHUNK;
use super::fan_out::PendingFanOut;
use super::id_map::IdMap;
use super::layer_updates::LAYER_UPDATE_INTERVAL;
use super::producer::Producer;
use super::rng::Rng;
use super::router::Router;
use super::transmit::{Transmit, TransmitQueue};
use super::transport::Transport;
use super::webrtc_server::{ListenSocket, WebRtcServer};

/// How often periodic work (consent, RTCP reports, feedback) runs.
pub const TICK: Duration = Duration::from_millis(20);
/// The tick while a bandwidth probe is being paced out.
const PROBE_TICK: Duration = Duration::from_millis(5);

/// Something that happened to the worker.
#[derive(Debug)]
pub enum Input {
    /// A decoded message from the controller.
    Controller(ControllerMessage),
}

/// Something the worker wants done.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// A message for the controller.
    Controller(WorkerMessage),
}

/// What the IO shell knows and the core needs at start.
pub struct WorkerConfig {
    pub pid: u32,
    /// Source of ICE credentials and SSRCs (from the OS in production, seeded in tests).
    pub rng: Rng,
    pub sockets: Vec<ListenSocket>,
    /// An instant and the wall-clock time (since the Unix epoch) it corresponds to, for NTP
    /// timestamps in sender reports.
    pub epoch: Instant,
    pub epoch_unix: Duration,
    /// Pace video to transports with a downlink estimate (`pacer.rs`); off, it leaves at once.
    pub pace_video: bool,
}

/// Counters of datagrams dropped before they reached a transport.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerCounters {
    pub unknown_source: u64,
    pub malformed: u64,
    /// Totals of transports and consumers that have closed, so metrics never go backwards.
    pub retired_packets_received: u64,
    pub retired_bytes_received: u64,
    pub retired_packets_sent: u64,
    pub retired_bytes_sent: u64,
    pub retired_packets_dropped: u64,
    pub retired_srtp_failures: u64,
    pub retired_nacks: u64,
    pub retired_keyframe_requests: u64,
    pub retired_pipe_bytes_received: u64,
    pub retired_pipe_bytes_sent: u64,
    pub retired_pacer_dropped: u64,
}

pub struct Worker {
    pub(super) pid: u32,
    pub(super) rng: Rng,
    pub(super) identity: DtlsIdentity,
    pub(super) server: WebRtcServer,
    pub(super) routers: IdMap<RouterId, Router>,
    pub(super) transports: IdMap<TransportId, Transport>,
    pub(super) producers: IdMap<ProducerId, Producer>,
    pub(super) consumers: IdMap<ConsumerId, Consumer>,
    pub(super) data_producers: IdMap<DataProducerId, DataProducer>,
    pub(super) data_consumers: IdMap<DataConsumerId, DataConsumer>,
    pub(super) outputs: VecDeque<Output>,
    pub(super) transmits: TransmitQueue,
    /// This turn's packets, fanned out as the IO shell takes datagrams.
    pub(super) pending: PendingFanOut,
    pub(super) counters: WorkerCounters,
    pub(super) closed: bool,
    pub(super) epoch: Instant,
    pub(super) pace_video: bool,
    /// Frame gathering: how long the fan-out may wait for the rest of a video frame (off: `None`).
    pub(super) gather: Option<Duration>,
    pub(super) epoch_unix: Duration,
    /// The latest time the core was told about, for stats that need one.
    pub(super) last_now: Option<Instant>,
    next_tick: Option<Instant>,
    /// Every transport's id, for visiting them a slice per tick without walking the map.
    pub(super) transport_ids: Vec<TransportId>,
    /// Ticks so far: transports that only send are visited on every [`QUIET_TICKS`]th, in turn.
    ticks: u64,
    /// The transports one tick visits (reused).
    tick_visits: Vec<TransportId>,
    /// The simulcast consumers a layer update visits (reused).
    pub(super) layer_visits: Vec<ConsumerId>,
    /// The transports with a downlink estimator a layer update visits (reused).
    pub(super) bwe_visits: Vec<TransportId>,
    /// Transports sending a probe cluster.
    pub(super) probing: Vec<TransportId>,
    next_layer_update: Option<Instant>,
    /// The earliest DTLS or SCTP timer of any transport, once computed: finding it walks every
    /// transport, so it is kept until something that can move such a timer happens (a controller
    /// request, a DTLS datagram, DTLS starting, a DTLS or SCTP timer handled).
    pub(super) dtls_sctp_timeout: Cell<Option<Option<Instant>>>,
}

/// Transports without producers or data channels (they only send media: no NACKs, receiver reports
/// or transport-cc to produce every tick) have their periodic work (sender reports, consent expiry,
/// DTLS retransmissions) every this many ticks, a slice each tick: 100 ms is fine for reports due
/// each second and consent that expires after 30 s, and a thousand subscribers no longer cost a
/// thousand visits every 20 ms.
pub const QUIET_TICKS: u64 = 5;

impl Worker {
    /// A worker announces itself with [`WorkerNotification::Running`] so the controller knows the
    /// process got as far as its loop.
    pub fn new(config: WorkerConfig) -> Result<Self, DtlsError> {
        let mut outputs = VecDeque::new();
        outputs.push_back(Output::Controller(WorkerMessage::Notification(Notification::Worker(
            WorkerNotification::Running { pid: config.pid },
        ))));
        Ok(Self {
            pid: config.pid,
            rng: config.rng,
            identity: DtlsIdentity::generate()?,
            server: WebRtcServer::new(config.sockets),
            routers: IdMap::default(),
            transports: IdMap::default(),
            producers: IdMap::default(),
            consumers: IdMap::default(),
            data_producers: IdMap::default(),
            data_consumers: IdMap::default(),
            outputs,
            transmits: TransmitQueue::default(),
            pending: PendingFanOut::default(),
            counters: WorkerCounters::default(),
            closed: false,
            epoch: config.epoch,
            pace_video: config.pace_video,
            gather: None,
            epoch_unix: config.epoch_unix,
            last_now: None,
            next_tick: None,
            transport_ids: Vec::new(),
            ticks: 0,
            tick_visits: Vec::new(),
            layer_visits: Vec::new(),
            bwe_visits: Vec::new(),
            probing: Vec::new(),
            next_layer_update: None,
            dtls_sctp_timeout: Cell::new(None),
        })
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.last_now = Some(now);
        self.timers_moved();
        match input {
            Input::Controller(ControllerMessage::Request { id, request }) => {
                let result = self.handle_request(now, request);
                self.outputs.push_back(Output::Controller(WorkerMessage::Response { id, result }));
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next datagram to send. Hand its buffer back with [`Worker::recycle`].
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            if let Some(t) = self.transmits.pop() {
                return Some(t);
            }
            if !self.fan_out_chunk(CONSUMERS_PER_CHUNK) {
                return None;
            }
        }
    }

    /// Moves the datagrams ready now into `out` (the turn's fan-out continues a chunk of consumers
    /// at a time, so the caller sends them and comes back); leaves `out` empty when all is sent.
    pub fn poll_transmits(&mut self, out: &mut Vec<Transmit>) {
        while self.transmits.is_empty() && self.fan_out_chunk(CONSUMERS_PER_CHUNK) {}
        while let Some(t) = self.transmits.pop() {
            out.push(t);
        }
    }

    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.transmits.recycle(buf);
    }

    /// The earliest instant at which the core wants [`Worker::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self.dtls_sctp_timeout.get().unwrap_or_else(|| {
            let dtls = self.transports.values().filter_map(|t| t.dtls.as_ref()?.poll_timeout()).min();
            let sctp = self.transports.values().filter_map(|t| t.sctp.as_ref()?.poll_timeout()).min();
            let timers = dtls.into_iter().chain(sctp).min();
            self.dtls_sctp_timeout.set(Some(timers));
            timers
        });
        timers.into_iter().chain(self.next_tick).chain(self.transmits.pace_at).min()
    }

    /// Something may have moved a DTLS or SCTP timer: [`Self::poll_timeout`] looks again.
    pub(super) fn timers_moved(&self) {
        self.dtls_sctp_timeout.set(None);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        let turn = self.ticks % QUIET_TICKS;
        self.ticks += 1;
        // Every tick: transports that receive media (NACKs, receiver reports, transport-cc) or carry
        // data channels (SCTP timers). The rest a slice per tick, without touching the others (with
        // thousands of subscribers, walking them all every 20 ms cost more than their work); a DTLS
        // timer of one not in this slice is seen within QUIET_TICKS calls.
        let mut visits = std::mem::take(&mut self.tick_visits);
        visits.clear();
        visits.extend(self.producers.values().map(|p| p.transport_id));
        visits.extend(self.data_producers.values().map(|d| d.transport_id));
        visits.extend(self.data_consumers.values().map(|d| d.transport_id));
        visits.extend(self.transport_ids.iter().skip(turn as usize).step_by(QUIET_TICKS as usize));
        visits.sort_unstable();
        visits.dedup();
        for &id in &visits {
            self.transport_timeout(now, id);
        }
        self.tick_visits = visits;
        if turn == 0 {
            self.forget_expired_tuples();
        }
        let mut speakers = Vec::new();
        for router in self.routers.values_mut() {
            if let Some(producer_id) = router.active_speaker.handle_timeout(now) {
                speakers
                    .push(Notification::Router(router.id, octo_ipc::RouterNotification::ActiveSpeaker { producer_id }));
            }
        }
        for n in speakers {
            self.notify(n);
        }
        if self.next_layer_update.is_none_or(|t| now >= t) {
            self.next_layer_update = Some(now + LAYER_UPDATE_INTERVAL);
            self.update_layers(now);
        }
        // A probe cluster goes out over tens of milliseconds: tick at a finer step until it is sent.
        let probing = self.pace_probes(now);
        let pacing = self.pace_media(now);
        let tick = if probing || pacing { PROBE_TICK } else { TICK };
        self.next_tick = if self.transports.is_empty() { None } else { Some(now + tick) };
    }

    /// Arms the periodic tick once there is something to tick for.
    pub(super) fn ensure_tick(&mut self, now: Instant) {
        if self.next_tick.is_none() {
            self.next_tick = Some(now + TICK);
        }
    }

    /// Lets the fan-out wait up to `hold` for the rest of a video frame ([`Self::holds_fan_out`]);
    /// `None` or zero: it never waits.
    pub fn set_frame_gathering(&mut self, hold: Option<Duration>) {
        self.gather = hold.filter(|h| !h.is_zero());
    }

    /// True once the controller asked the worker to close: the shell flushes and exits.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn listen_sockets(&self) -> &[ListenSocket] {
        self.server.sockets()
    }

    pub fn counters(&self) -> WorkerCounters {
        self.counters
    }

    pub fn metrics(&self) -> octo_ipc::WorkerMetrics {
        let c = &self.counters;
        let pipe_transports = self.transports.values().filter(|t| t.is_pipe()).count() as u64;
        let pipe_producers = self.producers.values().filter(|p| p.piped).count() as u64;
        let pipe_consumers = self.consumers.values().filter(|c| c.pipe).count() as u64;
        let mut m = octo_ipc::WorkerMetrics {
            routers: self.routers.len() as u64,
            transports: self.transports.len() as u64 - pipe_transports,
            producers: self.producers.len() as u64 - pipe_producers,
            consumers: self.consumers.len() as u64 - pipe_consumers,
            data_producers: self.data_producers.len() as u64,
            data_consumers: self.data_consumers.len() as u64,
            pipe_transports,
            pipe_producers,
            pipe_consumers,
            pipe_bytes_received: c.retired_pipe_bytes_received,
            pipe_bytes_sent: c.retired_pipe_bytes_sent,
            packets_received: c.retired_packets_received,
            bytes_received: c.retired_bytes_received,
            packets_sent: c.retired_packets_sent,
            bytes_sent: c.retired_bytes_sent,
            packets_dropped: c.retired_packets_dropped + c.malformed + c.unknown_source,
            srtp_failures: c.retired_srtp_failures,
            nacks_received: c.retired_nacks,
            keyframe_requests_received: c.retired_keyframe_requests,
            pacer_packets_dropped: c.retired_pacer_dropped,
            ..Default::default()
        };
        for t in self.transports.values() {
            m.pacer_packets_dropped += t.pacer.dropped;
            m.packets_received += t.counters.packets_received;
            m.bytes_received += t.counters.bytes_received;
            m.packets_sent += t.counters.packets_sent;
            m.bytes_sent += t.counters.bytes_sent;
            m.packets_dropped += t.counters.packets_dropped;
            m.srtp_failures += t.counters.srtp_failures;
            if t.is_pipe() {
                m.pipe_bytes_received += t.counters.bytes_received;
                m.pipe_bytes_sent += t.counters.bytes_sent;
            }
        }
        for consumer in self.consumers.values() {
            m.nacks_received += consumer.nack_count;
            m.keyframe_requests_received += consumer.pli_count + consumer.fir_count;
            if let Some(layers) = &consumer.layers {
                let slot = layers.current_spatial.map_or(3, |s| usize::from(s).min(2));
                m.simulcast_consumers_by_layer[slot] += 1;
            }
            if consumer.reported_score.is_some_and(|s| s < 5) {
                m.consumers_low_score += 1;
            }
        }
        for bwe in self.transports.values().filter_map(|t| t.bwe.as_ref()).filter(|b| b.stats().feedback_received > 0) {
            m.estimated_transports += 1;
            m.estimated_bitrate_sum += bwe.estimate_bps();
        }
        m
    }

    pub(super) fn notify(&mut self, notification: Notification) {
        self.outputs.push_back(Output::Controller(WorkerMessage::Notification(notification)));
    }
}
