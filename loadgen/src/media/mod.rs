//! The media side of every simulated client: one thread, one mio loop, one UDP socket per
//! transport, `recvmmsg` batches, and a 2 ms tick that drives ICE, DTLS, media and RTCP timers.

mod counters;
pub mod histogram;
pub mod probe;
mod recv_stream;
pub mod send_stream;
mod transport;

use std::os::fd::AsRawFd;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use octo_ipc::DtlsFingerprint;
use octo_worker::core::dtls::{DtlsError, DtlsIdentity};

pub use counters::{Counters, Snapshot};
use recv_stream::RecvStream;
use send_stream::{Kind, SendStream, SendStreamConfig};
use transport::ClientTransport;
pub use transport::TransportSetup;

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
    AddTransport { key: usize, setup: TransportSetup },
    Publish { key: usize, stream: SendStreamConfig },
    Consume { key: usize, ssrc: u32, rtx_ssrc: Option<u32>, kind: Kind, consumed_at: Instant },
    Snapshot(mpsc::Sender<Snapshot>),
    Stop,
}

const WAKER: Token = Token(usize::MAX);
const TICK: Duration = Duration::from_millis(2);
const BATCH: usize = 32;

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
        counters: Counters::default(),
        identity,
        epoch,
        decrypt_every: options.decrypt_every,
    };
    let mut events = Events::with_capacity(1024);
    let mut batch = RecvBatch::new();
    let mut next_tick = epoch;
    loop {
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!("media loop reached its time bound; stopping");
            return Ok(());
        }
        poll.poll(&mut events, Some(next_tick.saturating_duration_since(now)))?;
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
                state.receive(event.token().0, &mut batch);
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            for t in state.transports.iter_mut().flatten() {
                t.poll(now, state.epoch, &mut state.counters);
            }
            next_tick = now + TICK;
        }
    }
}

impl State {
    fn command(&mut self, registry: &mio::Registry, now: Instant, command: Command) -> Result<(), MediaError> {
        match command {
            Command::AddTransport { key, setup } => {
                let mut t = ClientTransport::new(setup, &self.identity, now, key as u64 + 1, self.decrypt_every)?;
                registry.register(t.socket_mut(), Token(key), Interest::READABLE)?;
                if self.transports.len() <= key {
                    self.transports.resize_with(key + 1, || None);
                }
                self.transports[key] = Some(t);
            }
            Command::Publish { key, stream } => {
                if let Some(Some(t)) = self.transports.get_mut(key) {
                    let seed = stream.ssrc;
                    t.send_streams.push(SendStream::new(stream, now, seed));
                }
            }
            Command::Consume { key, ssrc, rtx_ssrc, kind, consumed_at } => {
                if let Some(Some(t)) = self.transports.get_mut(key) {
                    t.add_consumer(RecvStream::new(ssrc, rtx_ssrc, kind, consumed_at));
                }
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot(now));
            }
            Command::Stop => {}
        }
        Ok(())
    }

    fn snapshot(&self, now: Instant) -> Snapshot {
        let live = || self.transports.iter().flatten();
        let streams = || live().flat_map(|t| t.recv_streams.iter());
        Snapshot {
            at: now,
            counters: self.counters.clone(),
            transports: live().count(),
            transports_connected: live().filter(|t| t.is_connected()).count(),
            transports_failed: live().filter(|t| t.is_failed()).count(),
            consumers: streams().count(),
            consumers_flowing: streams().filter(|s| s.first_packet_at.is_some()).count(),
            expected: streams().map(|s| s.expected()).sum(),
            received: streams().map(|s| s.received).sum(),
            loop_cpu: crate::proc_stat::thread_cpu(),
            srtp_profile: live().find_map(|t| t.profile).map(|p| format!("{p:?}")),
        }
    }

    /// Drains one socket (edge-triggered) in `recvmmsg` batches; a coalesced (GRO) read is cut
    /// back into its datagrams.
    fn receive(&mut self, key: usize, batch: &mut RecvBatch) {
        let Some(Some(t)) = self.transports.get_mut(key) else { return };
        loop {
            let n = batch.recv(t.socket_mut().as_raw_fd());
            if n == 0 {
                return;
            }
            let now = Instant::now();
            self.counters.reads += n as u64;
            for i in 0..n {
                let (len, segment) = (batch.lens[i], batch.segments[i]);
                let buf = &mut batch.bufs[i * READ_BUFFER..(i + 1) * READ_BUFFER];
                let mut at = 0;
                while at < len {
                    let end = (at + segment).min(len);
                    self.counters.datagrams_received += 1;
                    t.handle_datagram(now, self.epoch, &mut buf[at..end], end - at, &mut self.counters);
                    at = end;
                }
            }
            if n < BATCH {
                return;
            }
        }
    }
}

/// Linux's `UDP_GRO` socket option (`linux/udp.h`; the libc crate names it for some targets only).
const UDP_GRO: libc::c_int = 104;
/// Room for one read: a coalesced read carries up to 64 KB.
const READ_BUFFER: usize = 65_536;
/// Room for one `cmsghdr` carrying an `int`, in `u64`s so it is aligned as the kernel expects.
const CONTROL_WORDS: usize = 4;

/// Asks the kernel to hand over a run of datagrams that left the sender as one GSO message as one
/// read (with their size in a `UDP_GRO` control message) instead of splitting it on receipt. On
/// loopback the split would run on the sender's CPU and be billed to the worker; on a real network
/// it happens before the wire or in the NIC, never on the SFU's core for the receiver's sake.
pub fn enable_gro(fd: i32) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to an int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            UDP_GRO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Buffers and headers for one `recvmmsg` call, allocated once.
struct RecvBatch {
    /// `BATCH` buffers of `READ_BUFFER` bytes.
    bufs: Vec<u8>,
    control: Vec<[u64; CONTROL_WORDS]>,
    lens: [usize; BATCH],
    /// The size of each datagram in a read: its length, or the GRO segment size.
    segments: [usize; BATCH],
}

impl RecvBatch {
    fn new() -> Self {
        Self {
            bufs: vec![0; BATCH * READ_BUFFER],
            control: vec![[0; CONTROL_WORDS]; BATCH],
            lens: [0; BATCH],
            segments: [0; BATCH],
        }
    }

    /// Up to [`BATCH`] reads; 0 when the socket is drained (or on an error, which the next
    /// readiness event retries).
    fn recv(&mut self, fd: i32) -> usize {
        let base = self.bufs.as_mut_ptr();
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            // SAFETY: i * READ_BUFFER + READ_BUFFER <= bufs.len().
            iov_base: unsafe { base.add(i * READ_BUFFER) }.cast(),
            iov_len: READ_BUFFER,
        });
        // SAFETY: zeroed mmsghdr is a valid "no name, no control" header.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for ((h, iov), control) in headers.iter_mut().zip(iovecs.iter_mut()).zip(self.control.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = control.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; CONTROL_WORDS]>() as _;
        }
        // SAFETY: every header points at a live iovec over a live buffer of READ_BUFFER bytes and
        // at live control space of the length given.
        let n =
            unsafe { libc::recvmmsg(fd, headers.as_mut_ptr(), BATCH as u32, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
        if n <= 0 {
            return 0;
        }
        for (i, h) in headers.iter().enumerate().take(n as usize) {
            let len = h.msg_len as usize;
            self.lens[i] = len;
            self.segments[i] = gro_segment(&h.msg_hdr).filter(|&s| s > 0).unwrap_or(len).max(1);
        }
        n as usize
    }
}

/// The `UDP_GRO` segment size in a received message's control data, if any.
fn gro_segment(msg: &libc::msghdr) -> Option<usize> {
    // SAFETY: the kernel filled msg_control up to msg_controllen; the CMSG macros stay inside it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == UDP_GRO {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>()) as usize);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}
