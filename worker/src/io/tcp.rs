//! ICE-TCP: the worker's TCP listeners and their connections. Each connection is a tuple of the
//! core's ((the listener's id, the peer's address)), so STUN, DTLS and SRTP on it go through exactly
//! the state machines UDP datagrams do; this file only frames (RFC 4571) and moves bytes.
//!
//! Nothing here may stall the loop: reads are bounded per turn, writes go into a bounded buffer per
//! connection and leave when the socket takes them, and a connection whose reader is too slow drops
//! its own packets (counted) instead of holding anyone else's.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, warn};

use super::udp::MAX_DATAGRAM;
use crate::core::tcp_framing::{FrameDecoder, HEADER_LEN, encode};
use crate::core::{SocketId, Transmit, Worker};

/// Bytes read from one connection per loop turn at most (then it is read again next turn).
const READ_PER_TURN: usize = 64 * 1024;
/// Framed bytes waiting to be written, per connection: about a second of a 1.5 Mbit/s call. A
/// stalled reader has its newest packets dropped beyond this; a packet is never cut.
const MAX_PENDING_WRITE: usize = 256 * 1024;
/// Open connections per worker at most; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 1000;
/// A connection must say something within this (a browser's first check comes at once).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent this long is closed: ICE consent checks come every few seconds, and the core
/// forgets a tuple after 30 s without one.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle connections are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Room after a packet for in-place rewrites by the forwarding path (as the UDP read buffers have).
const PACKET_BUFFER: usize = 1600;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpCounters {
    pub accepted: u64,
    /// Connections closed at once because [`MAX_CONNECTIONS`] were open.
    pub refused: u64,
    /// Connections closed for a malformed stream (bad framing, or not starting with STUN).
    pub closed_malformed: u64,
    /// Connections closed for silence.
    pub closed_idle: u64,
    /// Packets dropped because their connection's write buffer was full or the connection gone.
    pub send_drops: u64,
}

struct Connection {
    socket: SocketId,
    peer: SocketAddr,
    stream: TcpStream,
    decoder: FrameDecoder,
    /// Framed bytes not yet written; `out[written..]` is what is left.
    out: Vec<u8>,
    written: usize,
    accepted_at: Instant,
    last_read: Option<Instant>,
    /// Whether the stream began with STUN (the core then decides whether the check is for a transport).
    greeted: bool,
    /// Stopped at [`READ_PER_TURN`]: more may be waiting (edge-triggered readiness will not repeat).
    unread: bool,
}

/// Why a connection is being closed, for the log and the counters.
enum Close {
    Peer,
    Malformed(String),
    Failed(io::Error),
}

pub struct TcpMedia {
    listeners: Vec<(SocketId, TcpListener)>,
    first_listener_token: usize,
    first_connection_token: usize,
    /// Connections by slot; a slot's token is `first_connection_token + slot`.
    connections: Vec<Option<Connection>>,
    free_slots: Vec<usize>,
    by_peer: HashMap<(SocketId, SocketAddr), usize>,
    /// Slots with bytes to write.
    dirty: Vec<usize>,
    read_buf: Vec<u8>,
    packet: Vec<u8>,
    next_sweep: Option<Instant>,
    pub counters: TcpCounters,
}

impl TcpMedia {
    /// Listeners get tokens from `first_listener_token`, connections from `first_connection_token`.
    pub fn new(first_listener_token: usize, first_connection_token: usize) -> Self {
        Self {
            listeners: Vec::new(),
            first_listener_token,
            first_connection_token,
            connections: Vec::new(),
            free_slots: Vec::new(),
            by_peer: HashMap::new(),
            dirty: Vec::new(),
            read_buf: vec![0; READ_PER_TURN],
            packet: vec![0; PACKET_BUFFER],
            next_sweep: None,
            counters: TcpCounters::default(),
        }
    }

    /// Listens on `addr` (the UDP socket's address and port, so one port number serves both); when
    /// that TCP port is taken, on another port of the same IP. Returns the bound address.
    pub fn listen(&mut self, registry: &Registry, socket: SocketId, addr: SocketAddr) -> io::Result<SocketAddr> {
        let mut listener = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && addr.port() != 0 => {
                warn!("TCP {addr} is taken ({e}): ICE-TCP listens on another port of {}", addr.ip());
                TcpListener::bind(SocketAddr::new(addr.ip(), 0))?
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("binding TCP {addr}: {e}"))),
        };
        let token = Token(self.first_listener_token + self.listeners.len());
        registry.register(&mut listener, token, Interest::READABLE)?;
        let local = listener.local_addr()?;
        self.listeners.push((socket, listener));
        Ok(local)
    }

    pub fn connection_count(&self) -> usize {
        self.by_peer.len()
    }

    /// For the worker's metrics: the core does not see connections, only their tuples.
    pub fn metrics(&self) -> octo_ipc::IceTcpMetrics {
        let c = &self.counters;
        octo_ipc::IceTcpMetrics {
            connections: self.connection_count() as u64,
            accepted: c.accepted,
            refused: c.refused,
            closed_malformed: c.closed_malformed,
            closed_idle: c.closed_idle,
            send_drops: c.send_drops,
        }
    }

    /// Handles readiness of `token` if it is one of this module's; false if it is not.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        token: Token,
        readable: bool,
        writable: bool,
        worker: &mut Worker,
        now: Instant,
    ) -> bool {
        let t = token.0;
        if t >= self.first_listener_token && t < self.first_listener_token + self.listeners.len() {
            self.accept(registry, t - self.first_listener_token, now);
            return true;
        }
        let Some(slot) = t.checked_sub(self.first_connection_token) else { return false };
        if self.connections.get(slot).is_none_or(Option::is_none) {
            // A token of a connection closed earlier this turn.
            return true;
        }
        if writable {
            self.write(registry, slot);
        }
        if readable {
            self.read(registry, slot, worker, now);
        }
        true
    }

    fn accept(&mut self, registry: &Registry, index: usize, now: Instant) {
        let socket = self.listeners[index].0;
        loop {
            let (mut stream, peer) = match self.listeners[index].1.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of fds, or a connection reset before it was accepted: not the loop's end.
                    warn!("accepting an ICE-TCP connection: {e}");
                    return;
                }
            };
            if self.by_peer.len() >= MAX_CONNECTIONS {
                self.counters.refused += 1;
                continue; // dropping the stream closes it
            }
            // Media wants each packet out now, not coalesced with the next one.
            if let Err(e) = stream.set_nodelay(true) {
                debug!(%peer, "TCP_NODELAY: {e}");
            }
            let slot = self.free_slots.pop().unwrap_or_else(|| {
                self.connections.push(None);
                self.connections.len() - 1
            });
            let token = Token(self.first_connection_token + slot);
            if let Err(e) = registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE) {
                warn!(%peer, "registering an ICE-TCP connection: {e}");
                self.free_slots.push(slot);
                continue;
            }
            self.counters.accepted += 1;
            debug!(%peer, "ICE-TCP connection accepted");
            // A peer address seen again on the same listener replaces the old connection.
            if let Some(&old) = self.by_peer.get(&(socket, peer)) {
                self.close(registry, old, Close::Peer);
            }
            self.by_peer.insert((socket, peer), slot);
            self.connections[slot] = Some(Connection {
                socket,
                peer,
                stream,
                decoder: FrameDecoder::new(MAX_DATAGRAM),
                out: Vec::new(),
                written: 0,
                accepted_at: now,
                last_read: None,
                greeted: false,
                unread: false,
            });
            self.next_sweep.get_or_insert(now + SWEEP_INTERVAL);
        }
    }

    fn read(&mut self, registry: &Registry, slot: usize, worker: &mut Worker, now: Instant) {
        let Some(conn) = self.connections[slot].as_mut() else { return };
        conn.unread = false;
        let mut total = 0;
        let outcome = loop {
            if total >= READ_PER_TURN {
                conn.unread = true;
                break Ok(());
            }
            let n = match conn.stream.read(&mut self.read_buf[..READ_PER_TURN - total]) {
                Ok(0) => break Err(Close::Peer),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Close::Failed(e)),
            };
            total += n;
            conn.last_read = Some(now);
            let (socket, peer) = (conn.socket, conn.peer);
            let packet = &mut self.packet;
            let greeted = &mut conn.greeted;
            let mut not_stun = false;
            let fed = conn.decoder.feed(&self.read_buf[..n], |p| {
                // A connection is for ICE: until its first packet is STUN it gets nothing else through.
                if !*greeted && !matches!(p.first(), Some(0..=3)) {
                    not_stun = true;
                }
                if not_stun {
                    return;
                }
                *greeted = true;
                packet[..p.len()].copy_from_slice(p);
                worker.handle_datagram(now, socket, peer, packet, p.len());
            });
            if not_stun {
                break Err(Close::Malformed("the first packet is not STUN".into()));
            }
            if let Err(e) = fed {
                break Err(Close::Malformed(e.to_string()));
            }
        };
        if let Err(why) = outcome {
            self.close(registry, slot, why);
        }
    }

    /// Queues what the core wants sent to a TCP tuple; [`Self::write_pending`] sends it.
    pub fn queue(&mut self, t: &Transmit) {
        let Some(&slot) = self.by_peer.get(&(t.socket, t.to)) else {
            // The peer hung up: the core learns when consent expires.
            self.counters.send_drops += 1;
            return;
        };
        let Some(conn) = self.connections[slot].as_mut() else { return };
        if conn.out.len() - conn.written + HEADER_LEN + t.buf.len() > MAX_PENDING_WRITE {
            self.counters.send_drops += 1;
            return;
        }
        // `write` empties a buffer it wrote out, so new bytes always go after unwritten ones.
        let was_empty = conn.out.len() == conn.written;
        if encode(&t.buf, &mut conn.out).is_err() {
            self.counters.send_drops += 1;
            return;
        }
        if was_empty {
            self.dirty.push(slot);
        }
    }

    /// Writes what [`Self::queue`] buffered, as far as each socket takes it now.
    pub fn write_pending(&mut self, registry: &Registry) {
        while let Some(slot) = self.dirty.pop() {
            self.write(registry, slot);
        }
    }

    fn write(&mut self, registry: &Registry, slot: usize) {
        let Some(conn) = self.connections[slot].as_mut() else { return };
        while conn.written < conn.out.len() {
            match conn.stream.write(&conn.out[conn.written..]) {
                Ok(0) => return self.close(registry, slot, Close::Peer),
                Ok(n) => conn.written += n,
                // The WRITABLE event says when to go on.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.close(registry, slot, Close::Failed(e)),
            }
        }
        if conn.written == conn.out.len() {
            conn.out.clear();
            conn.written = 0;
        } else if conn.written > conn.out.len() / 2 {
            // Keep the buffer from creeping: move the rest to the front once most of it is gone.
            conn.out.drain(..conn.written);
            conn.written = 0;
        }
    }

    /// Whether a connection stopped at its read budget last turn.
    pub fn has_unread(&self) -> bool {
        self.connections.iter().flatten().any(|c| c.unread)
    }

    /// Reads again the connections that stopped at their budget.
    pub fn drain_unread(&mut self, registry: &Registry, worker: &mut Worker, now: Instant) {
        for slot in 0..self.connections.len() {
            if self.connections[slot].as_ref().is_some_and(|c| c.unread) {
                self.read(registry, slot, worker, now);
            }
        }
    }

    /// When [`Self::sweep`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Closes connections that never spoke or went silent.
    pub fn sweep(&mut self, registry: &Registry, now: Instant) {
        if self.next_sweep.is_none_or(|at| at > now) {
            return;
        }
        for slot in 0..self.connections.len() {
            let Some(conn) = &self.connections[slot] else { continue };
            let silent = match conn.last_read {
                None => now.saturating_duration_since(conn.accepted_at) >= FIRST_FRAME_TIMEOUT,
                Some(at) => now.saturating_duration_since(at) >= IDLE_TIMEOUT,
            };
            if silent {
                self.counters.closed_idle += 1;
                self.close(registry, slot, Close::Peer);
            }
        }
        self.next_sweep = (!self.by_peer.is_empty()).then(|| now + SWEEP_INTERVAL);
    }

    fn close(&mut self, registry: &Registry, slot: usize, why: Close) {
        let Some(mut conn) = self.connections[slot].take() else { return };
        match why {
            Close::Peer => debug!(peer = %conn.peer, "ICE-TCP connection closed"),
            Close::Malformed(e) => {
                self.counters.closed_malformed += 1;
                debug!(peer = %conn.peer, "ICE-TCP connection closed: {e}");
            }
            Close::Failed(e) => debug!(peer = %conn.peer, "ICE-TCP connection failed: {e}"),
        }
        let _ = registry.deregister(&mut conn.stream);
        if self.by_peer.get(&(conn.socket, conn.peer)) == Some(&slot) {
            self.by_peer.remove(&(conn.socket, conn.peer));
        }
        self.free_slots.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream as StdTcpStream;

    use mio::{Events, Poll};

    use super::*;
    use crate::core::rng::Rng;
    use crate::core::{ListenSocket, WorkerConfig};

    const LISTENER: SocketId = SocketId(1);

    struct Shell {
        poll: Poll,
        events: Events,
        tcp: TcpMedia,
        worker: Worker,
        addr: SocketAddr,
        now: Instant,
    }

    impl Shell {
        fn new() -> Self {
            let poll = Poll::new().unwrap();
            let mut tcp = TcpMedia::new(10, 100);
            let addr = tcp.listen(poll.registry(), LISTENER, "127.0.0.1:0".parse().unwrap()).unwrap();
            let now = Instant::now();
            let worker = Worker::new(WorkerConfig {
                pid: 1,
                rng: Rng::from_seed([3; 32]),
                sockets: vec![ListenSocket::tcp(LISTENER, addr, None)],
                epoch: now,
                epoch_unix: Duration::from_secs(1_700_000_000),
                pace_video: false,
            })
            .unwrap();
            Self { poll, events: Events::with_capacity(64), tcp, worker, addr, now }
        }

        /// Loop turns for `ms` of real time (the sockets are real).
        fn run(&mut self, ms: u64) {
            let end = std::time::Instant::now() + Duration::from_millis(ms);
            while std::time::Instant::now() < end {
                self.poll.poll(&mut self.events, Some(Duration::from_millis(10))).unwrap();
                for e in self.events.iter() {
                    let (token, r, w) = (e.token(), e.is_readable() || e.is_read_closed(), e.is_writable());
                    assert!(self.tcp.handle_event(self.poll.registry(), token, r, w, &mut self.worker, self.now));
                }
                self.tcp.drain_unread(self.poll.registry(), &mut self.worker, self.now);
                self.tcp.write_pending(self.poll.registry());
            }
        }

        fn connect(&self) -> StdTcpStream {
            let s = StdTcpStream::connect(self.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        }
    }

    /// Whether the worker closed `s` (EOF or reset).
    fn closed(s: &mut StdTcpStream) -> bool {
        let mut b = [0u8; 16];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    }

    /// A STUN binding request for a ufrag no transport has: well framed, and ignored by the core.
    fn stun_frame() -> Vec<u8> {
        let mut msg = vec![0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        msg.extend_from_slice(&[7; 12]);
        let mut out = Vec::new();
        encode(&msg, &mut out).unwrap();
        out
    }

    #[test]
    fn garbage_and_oversized_frames_close_only_their_own_connection() {
        let mut shell = Shell::new();
        let mut not_stun = shell.connect();
        let mut oversized = shell.connect();
        let mut good = shell.connect();
        shell.run(100);
        assert_eq!(shell.tcp.connection_count(), 3);
        not_stun.write_all(&[0, 4, 0x80, 0, 0, 1]).unwrap(); // an RTP-looking first packet
        oversized.write_all(&[0xFF, 0xFF, 0, 1]).unwrap();
        good.write_all(&stun_frame()).unwrap();
        shell.run(200);
        assert_eq!(shell.tcp.counters.closed_malformed, 2);
        assert_eq!(shell.tcp.connection_count(), 1);
        assert!(closed(&mut not_stun));
        assert!(closed(&mut oversized));
        // The good one is still open: more of it is read, and the core saw its check (unknown ufrag).
        good.write_all(&stun_frame()[..5]).unwrap();
        good.write_all(&stun_frame()[5..]).unwrap();
        shell.run(100);
        assert_eq!(shell.tcp.connection_count(), 1);
        assert_eq!(shell.worker.counters().unknown_source, 2);
    }

    #[test]
    fn a_reader_that_never_reads_loses_its_own_packets_and_blocks_nothing() {
        let mut shell = Shell::new();
        let stalled = shell.connect();
        shell.run(100);
        let to = stalled.local_addr().unwrap();
        let packet = vec![0x80; 1200];
        // ~24 MB: far beyond what the kernel's buffers and ours hold together.
        for _ in 0..20_000 {
            shell.tcp.queue(&Transmit { socket: LISTENER, to, buf: packet.clone() });
            shell.tcp.write_pending(shell.poll.registry());
        }
        assert!(shell.tcp.counters.send_drops > 10_000, "{:?}", shell.tcp.counters);
        let conn = shell.tcp.connections.iter().flatten().next().unwrap();
        assert!(conn.out.len() - conn.written <= MAX_PENDING_WRITE);
        // Packets to a peer with no connection are counted too.
        let before = shell.tcp.counters.send_drops;
        shell.tcp.queue(&Transmit { socket: LISTENER, to: "127.0.0.1:9".parse().unwrap(), buf: packet });
        assert_eq!(shell.tcp.counters.send_drops, before + 1);
    }

    #[test]
    fn what_the_core_sends_arrives_framed_and_whole() {
        let mut shell = Shell::new();
        let mut client = shell.connect();
        shell.run(100);
        let to = client.local_addr().unwrap();
        for n in 1..=50u8 {
            shell.tcp.queue(&Transmit { socket: LISTENER, to, buf: vec![n; usize::from(n) * 20] });
        }
        shell.tcp.write_pending(shell.poll.registry());
        let mut d = FrameDecoder::new(1500);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < 50 {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0);
            d.feed(&buf[..n], |p| got.push(p.to_vec())).unwrap();
        }
        assert!(got.iter().enumerate().all(|(i, p)| *p == vec![i as u8 + 1; (i + 1) * 20]));
    }

    #[test]
    fn connections_that_never_speak_or_fall_silent_are_closed() {
        let mut shell = Shell::new();
        let mut silent = shell.connect();
        let mut talker = shell.connect();
        shell.run(100);
        talker.write_all(&stun_frame()).unwrap();
        shell.run(100);
        let later = shell.now + FIRST_FRAME_TIMEOUT + Duration::from_secs(1);
        shell.tcp.sweep(shell.poll.registry(), later);
        assert_eq!(shell.tcp.counters.closed_idle, 1);
        assert!(closed(&mut silent));
        assert_eq!(shell.tcp.connection_count(), 1, "the one that spoke stays");
        shell.tcp.sweep(shell.poll.registry(), later + IDLE_TIMEOUT);
        assert_eq!(shell.tcp.connection_count(), 0, "silent for the idle timeout");
        assert!(closed(&mut talker));
    }
}
