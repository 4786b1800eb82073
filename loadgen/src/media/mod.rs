//! The media side of every simulated client: one thread, one mio loop, one UDP socket (or ICE-TCP
//! connection) per transport, `recvmmsg` batches, and a 2 ms tick that drives ICE, DTLS, media and
//! RTCP timers.

pub mod bottleneck;
mod counters;
pub mod downlink;
pub mod histogram;
mod ice_tcp;
pub mod probe;
mod recv_stream;
pub mod send_stream;
mod tcp_framing;
mod transport;
pub mod vp8;

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use octo_ipc::DtlsFingerprint;
use octo_worker::core::dtls::{DtlsError, DtlsIdentity};
use octo_worker::io::recv_batch::{RECV_BATCH, RecvBatch};

use bottleneck::Bottleneck;
pub use counters::{Counters, DownlinkSnapshot, Snapshot};
use recv_stream::RecvStream;
use send_stream::{Kind, SendStream, SendStreamConfig};
use transport::ClientTransport;
use transport::Sink;
pub use transport::{ClientSocket, LOCAL_ICE_PASSWORD, TransportSetup, set_receive_buffer};

/// The ICE username fragment the loop's transport `key` uses.
pub fn ice_ufrag_of(key: usize) -> String {
    transport::local_ufrag(key as u64 + 1)
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("dtls: {0}")]
    Dtls(#[from] DtlsError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the media loop has stopped")]
    Stopped,
}

pub enum Command {
    /// A new transport; with `cap_kbps` its incoming datagrams pass a simulated bottleneck first;
    /// a `sink` stops reading once it is connected and all its consumers have flowed.
    AddTransport {
        key: usize,
        setup: TransportSetup,
        cap_kbps: Option<u64>,
        sink: bool,
    },
    Publish {
        key: usize,
        stream: SendStreamConfig,
    },
    /// `twcc_ext_id`: the consumer negotiated transport-cc with this header extension id.
    Consume {
        key: usize,
        ssrc: u32,
        rtx_ssrc: Option<u32>,
        kind: Kind,
        consumed_at: Instant,
        twcc_ext_id: Option<u8>,
    },
    Snapshot(mpsc::Sender<Snapshot>),
    /// Drops a transport (its socket closes) and answers what it did in its life.
    RemoveTransport {
        key: usize,
        reply: mpsc::Sender<TransportSummary>,
    },
    Stop,
}

/// What one transport did before [`Command::RemoveTransport`] dropped it.
#[derive(Debug, Clone, Default)]
pub struct TransportSummary {
    pub connected: bool,
    pub failed: bool,
    pub consumers: usize,
    /// Consumers that received at least one packet.
    pub flowing: usize,
    /// From each flowing consumer's `consume` to its first packet.
    pub time_to_first_media: Vec<Duration>,
    /// RTP packets its consumers received.
    pub received: u64,
}

const WAKER: Token = Token(usize::MAX);
const TICK: Duration = Duration::from_millis(2);

/// The running loop, seen from the thread that signals.
pub struct MediaLoop {
    tx: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<Result<(), MediaError>>>,
    /// The certificate fingerprints every client transport presents.
    pub fingerprints: Vec<DtlsFingerprint>,
}

pub struct LoopOptions {
    /// Decrypt every Nth packet of a stream to check it and measure its latency.
    pub decrypt_every: u64,
    /// The loop stops by itself after this long, whatever happens to its controller.
    pub max_duration: Duration,
    /// Run the loop's thread on this CPU only (the one the workers do not use).
    pub cpu: Option<usize>,
}

impl MediaLoop {
    pub fn start(options: LoopOptions) -> Result<Self, MediaError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new().name("media".into()).spawn(move || {
            if let Some(cpu) = options.cpu {
                pin_current_thread(cpu);
            }
            batch_current_thread();
            // The identity is made on the loop's thread, which owns it; only fingerprints leave.
            let identity = DtlsIdentity::generate()?;
            let _ = ready_tx.send(identity.fingerprints().to_vec());
            run(poll, rx, identity, options)
        })?;
        let fingerprints = ready_rx.recv().map_err(|_| MediaError::Stopped)?;
        Ok(Self { tx, waker, thread: Some(thread), fingerprints })
    }

    pub fn send(&self, command: Command) -> Result<(), MediaError> {
        self.tx.send(command).map_err(|_| MediaError::Stopped)?;
        self.waker.wake()?;
        Ok(())
    }

    pub fn snapshot(&self) -> Result<Snapshot, MediaError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Snapshot(tx))?;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| MediaError::Stopped)
    }

    /// Drops transport `key`; `None` summary if the loop never had it.
    pub fn remove_transport(&self, key: usize) -> Result<TransportSummary, MediaError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::RemoveTransport { key, reply: tx })?;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| MediaError::Stopped)
    }

    pub fn stop(&mut self) -> Result<(), MediaError> {
        let _ = self.send(Command::Stop);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(MediaError::Stopped),
            None => Ok(()),
        }
    }
}

impl Drop for MediaLoop {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Makes the calling thread SCHED_BATCH: its wakeups (every tick, every arriving datagram) no
/// longer preempt a running worker; it runs when a CPU is free or at the next scheduler tick. On a
/// machine with a CPU per worker and one for the load generator nothing changes; where the load
/// generator shares the workers' CPUs (two workers on two cores) it would otherwise preempt them
/// thousands of times a second, which a load generator on another host would not.
fn batch_current_thread() {
    // SAFETY: a zeroed sched_param (priority 0) is what SCHED_BATCH requires.
    let rc = unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param)
    };
    if rc != 0 {
        tracing::warn!("SCHED_BATCH for the media loop: {}", std::io::Error::last_os_error());
    }
}

/// Keeps the calling thread on one CPU. Without it, on a small machine, the scheduler may put the
/// loop on the worker's CPU, and every datagram the worker sends wakes the loop there and preempts
/// the worker.
fn pin_current_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays within it for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return;
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!(cpu, "pinning the media loop: {}", std::io::Error::last_os_error());
        }
    }
}

struct State {
    transports: Vec<Option<ClientTransport>>,
    /// The simulated bottleneck in front of a transport, by the same key, and the keys that have one.
    links: Vec<Option<Bottleneck>>,
    capped: Vec<usize>,
    counters: Counters,
    identity: DtlsIdentity,
    epoch: Instant,
    decrypt_every: u64,
}

fn run(
    mut poll: Poll,
    rx: mpsc::Receiver<Command>,
    identity: DtlsIdentity,
    options: LoopOptions,
) -> Result<(), MediaError> {
    let epoch = Instant::now();
    let deadline = epoch + options.max_duration;
    let mut state = State {
        transports: Vec::new(),
        links: Vec::new(),
        capped: Vec::new(),
        counters: Counters::default(),
        identity,
        epoch,
        decrypt_every: options.decrypt_every,
    };
    let mut events = Events::with_capacity(1024);
    let mut batch = RecvBatch::new(READ_BUFFER, READ_BUFFER);
    // Every ICE-TCP connection's reads go here in turn (each keeps only its partial frame).
    let mut stream_buf = vec![0u8; READ_BUFFER];
    let mut next_tick = epoch;
    loop {
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!("media loop reached its time bound; stopping");
            return Ok(());
        }
        // A bottleneck's next departure may come before the tick: the subscriber receives it then.
        let wake = state.next_departure().map_or(next_tick, |d| d.min(next_tick));
        poll.poll(&mut events, Some(wake.saturating_duration_since(now)))?;
        let now = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                Ok(command) => state.command(poll.registry(), now, command)?,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        for event in &events {
            if event.token() != WAKER {
                state.receive(event.token().0, &mut batch, &mut stream_buf);
            }
        }
        let now = Instant::now();
        state.deliver(now);
        if now >= next_tick {
            for t in state.transports.iter_mut().flatten() {
                t.poll(now, state.epoch, &mut state.counters);
                if t.sink_ready() {
                    t.deafen(poll.registry())?;
                }
            }
            next_tick = now + TICK;
        }
    }
}

impl State {
    fn command(&mut self, registry: &mio::Registry, now: Instant, command: Command) -> Result<(), MediaError> {
        match command {
            Command::AddTransport { key, setup, cap_kbps, sink } => {
                let mut t = ClientTransport::new(setup, &self.identity, now, key as u64 + 1, self.decrypt_every)?;
                t.register(registry, Token(key))?;
                if self.transports.len() <= key {
                    self.transports.resize_with(key + 1, || None);
                    self.links.resize_with(key + 1, || None);
                }
                if let Some(kbps) = cap_kbps {
                    t.set_behind_link();
                    self.links[key] = Some(Bottleneck::new(kbps, now));
                    self.capped.push(key);
                }
                if sink {
                    t.sink = Sink::Pending;
                }
                self.transports[key] = Some(t);
            }
            Command::Publish { key, stream } => {
                if let Some(Some(t)) = self.transports.get_mut(key) {
                    let seed = stream.ssrc;
                    t.send_streams.push(SendStream::new(stream, now, seed));
                }
            }
            Command::Consume { key, ssrc, rtx_ssrc, kind, consumed_at, twcc_ext_id } => {
                if let Some(Some(t)) = self.transports.get_mut(key) {
                    if let Some(id) = twcc_ext_id {
                        t.enable_twcc(id);
                    }
                    t.add_consumer(RecvStream::new(ssrc, rtx_ssrc, kind, consumed_at));
                }
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot(now));
            }
            Command::RemoveTransport { key, reply } => {
                let summary = self.remove(key);
                let _ = reply.send(summary);
            }
            Command::Stop => {}
        }
        Ok(())
    }

    fn snapshot(&self, now: Instant) -> Snapshot {
        let live = || self.transports.iter().flatten();
        let streams = || live().flat_map(|t| t.recv_streams.iter());
        // A sink's streams stop at its last read: loss is counted on the read subscribers only.
        let read = || live().filter(|t| t.sink != Sink::Deaf).flat_map(|t| t.recv_streams.iter());
        Snapshot {
            at: now,
            counters: self.counters.clone(),
            transports: live().count(),
            transports_connected: live().filter(|t| t.is_connected()).count(),
            transports_failed: live().filter(|t| t.is_failed()).count(),
            consumers: streams().count(),
            consumers_flowing: streams().filter(|s| s.first_packet_at.is_some()).count(),
            expected: read().map(|s| s.expected()).sum(),
            received: read().map(|s| s.received).sum(),
            sinks: live().filter(|t| t.sink == Sink::Deaf).count(),
            udp_rcvbuf_errors: crate::proc_stat::udp_rcvbuf_errors(),
            loop_cpu: crate::proc_stat::thread_cpu(),
            srtp_profile: live().find_map(|t| t.profile).map(|p| format!("{p:?}")),
            downlinks: self
                .transports
                .iter()
                .enumerate()
                .filter_map(|(key, t)| Some((key, t.as_ref()?)))
                .filter(|(_, t)| !t.recv_streams.is_empty())
                .map(|(key, t)| DownlinkSnapshot {
                    key,
                    counters: t.downlink.counters,
                    link: self.links.get(key).and_then(Option::as_ref).map(|l| (l.kbps(), l.counters)),
                })
                .collect(),
        }
    }

    /// Takes transport `key` out of the loop; dropping it closes its socket, which also takes it
    /// out of the poll.
    fn remove(&mut self, key: usize) -> TransportSummary {
        if let Some(link) = self.links.get_mut(key) {
            *link = None;
        }
        self.capped.retain(|&k| k != key);
        let Some(t) = self.transports.get_mut(key).and_then(Option::take) else {
            return TransportSummary::default();
        };
        let flowing: Vec<&RecvStream> = t.recv_streams.iter().filter(|s| s.first_packet_at.is_some()).collect();
        TransportSummary {
            connected: t.is_connected(),
            failed: t.is_failed(),
            consumers: t.recv_streams.len(),
            flowing: flowing.len(),
            time_to_first_media: flowing
                .iter()
                .filter_map(|s| Some(s.first_packet_at?.saturating_duration_since(s.consumed_at)))
                .collect(),
            received: t.recv_streams.iter().map(|s| s.received).sum(),
        }
    }

    /// The earliest moment a simulated bottleneck delivers a datagram.
    fn next_departure(&self) -> Option<Instant> {
        self.capped.iter().filter_map(|&k| self.links[k].as_ref()?.next_departure()).min()
    }

    /// Hands every datagram that has left its bottleneck by `now` to its transport, as arriving
    /// at its departure time.
    fn deliver(&mut self, now: Instant) {
        for &key in &self.capped {
            let (Some(Some(t)), Some(Some(link))) = (self.transports.get_mut(key), self.links.get_mut(key)) else {
                continue;
            };
            while let Some((at, buf, len)) = link.pop_due(now) {
                self.counters.link_delivered += 1;
                t.handle_datagram(at, self.epoch, buf, len, &mut self.counters);
            }
        }
    }

    /// Drains one socket (edge-triggered): a UDP one in `recvmmsg` batches, a coalesced (GRO)
    /// read cut back into its datagrams; an ICE-TCP connection in reads of `stream_buf`, cut into
    /// its frames. Either way each packet goes through the transport's bottleneck, if it has one,
    /// and then to the transport.
    fn receive(&mut self, key: usize, batch: &mut RecvBatch, stream_buf: &mut [u8]) {
        let Some(Some(t)) = self.transports.get_mut(key) else { return };
        if t.udp_socket_mut().is_none() {
            let mut link = self.links.get_mut(key).and_then(Option::as_mut);
            let epoch = self.epoch;
            t.receive_stream(stream_buf, &mut self.counters, |t, now, packet, c| {
                c.datagrams_received += 1;
                match link.as_deref_mut() {
                    Some(link) => {
                        if !link.push(now, packet) {
                            c.link_dropped += 1;
                        }
                    }
                    None => {
                        let len = packet.len();
                        t.handle_datagram(now, epoch, packet, len, c);
                    }
                }
            });
            return;
        }
        while let Some(socket) = t.udp_socket_mut() {
            // An error (none waiting, or an ICMP report) ends this drain; the next event retries.
            let n = batch.recv(socket, RECV_BATCH).unwrap_or(0);
            let now = Instant::now();
            self.counters.reads += n as u64;
            for i in 0..n {
                let segment = batch.segment(i);
                let (_, buf, len) = batch.datagram(i);
                let mut link = self.links.get_mut(key).and_then(Option::as_mut);
                for (start, end) in (0..len).step_by(segment).map(|at| (at, (at + segment).min(len))) {
                    self.counters.datagrams_received += 1;
                    match link.as_deref_mut() {
                        // Through the simulated bottleneck first (delivered by `deliver`).
                        Some(link) => {
                            if !link.push(now, &buf[start..end]) {
                                self.counters.link_dropped += 1;
                            }
                        }
                        None => {
                            t.handle_datagram(now, self.epoch, &mut buf[start..end], end - start, &mut self.counters)
                        }
                    }
                }
            }
            if n < RECV_BATCH {
                return;
            }
        }
    }
}

/// Room for one read: a coalesced read carries up to 64 KB.
const READ_BUFFER: usize = 65_536;
