//! The worker's UDP sockets: binding, draining reads, and sending what the core queued.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::recv_batch::RecvBatch;
use super::send_batch::SendBatch;
use super::tcp::TcpMedia;
use crate::core::{SocketId, Transmit, Worker};

/// Socket buffer asked for each way. One socket carries every peer of the worker (ICE-lite on a
/// shared port), so the kernel's default (~200 kB, ~170 full datagrams) would overflow whenever the
/// loop spends a few milliseconds on one fan-out; the kernel caps this at net.core.rmem_max and
/// wmem_max (4 MiB on this project's machines, 208 kB where untuned).
const SOCKET_BUFFER: usize = 4 << 20;

/// Largest datagram read; the rest of the read buffer is headroom for in-place rewrites.
pub const MAX_DATAGRAM: usize = 1500;
const READ_BUFFER: usize = 1600;

/// Datagrams read from one socket in one loop turn at most. The turn's fan-out waits for the reads
/// (that is what lets a frame's packets leave as one GSO run per consumer), so an unbounded read
/// after a stall would queue one datagram per packet per consumer at once — hundreds of thousands
/// with thousands of consumers. A socket with more to read is read again next turn, after the flush.
pub const READS_PER_TURN: usize = 64;

pub struct UdpSockets {
    sockets: Vec<UdpSocket>,
    /// Sockets that may hold more datagrams than the last turn read (edge-triggered readiness will
    /// not say so again).
    unread: Vec<bool>,
    reads: RecvBatch,
    /// Transmits of one loop turn; reused every turn.
    pending: Vec<Transmit>,
    /// (group key, index into `pending`), sorted: the order to send in.
    order: Vec<u128>,
    /// The indices of `order`.
    indices: Vec<usize>,
    batch: SendBatch,
    /// Datagrams the kernel refused (buffer full): dropped, as a router would.
    pub send_drops: u64,
}

impl UdpSockets {
    /// Binds every address; an address of port 0 gets an ephemeral port. An IPv6 address that
    /// cannot be bound (IPv6 disabled on the host) is skipped with a warning; an IPv4 one is an error.
    pub fn bind(addrs: &[SocketAddr]) -> io::Result<Self> {
        let mut sockets = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let std = match std::net::UdpSocket::bind(addr) {
                Ok(s) => s,
                Err(e) if addr.is_ipv6() => {
                    tracing::warn!("not listening on UDP {addr}: {e}");
                    continue;
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("binding UDP {addr}: {e}"))),
            };
            std.set_nonblocking(true)?;
            set_buffers(&std, addr);
            sockets.push(UdpSocket::from_std(std));
        }
        Ok(Self {
            unread: vec![false; sockets.len()],
            sockets,
            reads: RecvBatch::new(MAX_DATAGRAM, READ_BUFFER),
            pending: Vec::with_capacity(1024),
            order: Vec::with_capacity(1024),
            indices: Vec::with_capacity(1024),
            batch: SendBatch::default(),
            send_drops: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    pub fn local_addr(&self, index: usize) -> io::Result<SocketAddr> {
        self.sockets[index].local_addr()
    }

    /// Turns UDP GSO off (or back on): for measurements, and it turns itself off when refused.
    pub fn set_gso(&mut self, on: bool) {
        self.batch.set_gso(on);
    }

    pub fn socket_mut(&mut self, index: usize) -> &mut UdpSocket {
        &mut self.sockets[index]
    }

    /// Reads socket `index` until it would block or [`READS_PER_TURN`] datagrams have been read,
    /// handing each to the core; [`Self::has_unread`] says whether to come back.
    pub fn drain(&mut self, index: usize, worker: &mut Worker, now: std::time::Instant) -> io::Result<()> {
        let socket = &self.sockets[index];
        self.unread[index] = true;
        let mut budget = READS_PER_TURN;
        while budget > 0 {
            let asked = budget.min(super::recv_batch::RECV_BATCH);
            let n = match self.reads.recv(socket, asked) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from an earlier send surface here (ECONNREFUSED): not fatal.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            for i in 0..n {
                // A source that is neither IPv4 nor IPv6 cannot be a peer: nothing to hand over.
                if let (Some(from), buf, len) = self.reads.datagram(i) {
                    worker.handle_datagram(now, SocketId(index as u8), from, buf, len);
                }
            }
            if n < asked {
                // The socket was empty: edge-triggered readiness reports the next arrival.
                self.unread[index] = false;
                return Ok(());
            }
            budget -= n;
        }
        Ok(())
    }

    /// Whether a socket stopped at [`READS_PER_TURN`] last turn and may hold more.
    pub fn has_unread(&self) -> bool {
        self.unread.contains(&true)
    }

    /// Reads again the sockets that stopped at [`READS_PER_TURN`].
    pub fn drain_unread(&mut self, worker: &mut Worker, now: std::time::Instant) -> io::Result<()> {
        for index in 0..self.sockets.len() {
            if self.unread[index] {
                self.drain(index, worker, now)?;
            }
        }
        Ok(())
    }

    /// Sends every datagram the core has for this turn, a chunk at a time (the core fans out a
    /// few consumers per chunk), batched per socket, and gives the buffers back. Packets for ICE-TCP
    /// tuples are framed into their connections' buffers; the caller writes those out.
    pub fn flush(&mut self, worker: &mut Worker, tcp: &mut TcpMedia) {
        loop {
            worker.poll_transmits(&mut self.pending);
            if self.pending.is_empty() {
                return;
            }
            self.send_pending(tcp);
            for t in self.pending.drain(..) {
                worker.recycle(t.buf);
            }
        }
    }

    /// Sends `pending`, leaving the transmits in it.
    fn send_pending(&mut self, tcp: &mut TcpMedia) {
        if self.pending.is_empty() {
            return;
        }
        // Grouped per socket and, with GSO, per destination so that runs to one destination leave as
        // one message; each destination's datagrams keep their order (the index breaks ties). Sorting
        // plain integers: sorting the transmits by their addresses cost more than sending them.
        let gso = self.batch.gso();
        self.order.clear();
        self.order
            .extend(self.pending.iter().enumerate().map(|(i, t)| (u128::from(group_key(t, gso)) << 64) | i as u128));
        self.order.sort_unstable();
        self.indices.clear();
        self.indices.extend(self.order.iter().map(|&k| k as u64 as usize));
        let mut start = 0;
        while start < self.indices.len() {
            let socket = self.pending[self.indices[start]].socket;
            let end = start + self.indices[start..].iter().take_while(|&&i| self.pending[i].socket == socket).count();
            match self.sockets.get(usize::from(socket.0)) {
                Some(udp) => self.send_drops += self.batch.send(udp, &self.pending, &self.indices[start..end]),
                // Not a UDP socket: an ICE-TCP listener's.
                None => self.indices[start..end].iter().for_each(|&i| tcp.queue(&self.pending[i])),
            }
            start = end;
        }
    }
}

/// Asks for [`SOCKET_BUFFER`] bytes of receive and send buffer; says what the kernel granted.
fn set_buffers(socket: &std::net::UdpSocket, addr: &SocketAddr) {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    for (name, set, get) in [
        ("receive", setsockopt(socket, sockopt::RcvBuf, &SOCKET_BUFFER), getsockopt(socket, sockopt::RcvBuf)),
        ("send", setsockopt(socket, sockopt::SndBuf, &SOCKET_BUFFER), getsockopt(socket, sockopt::SndBuf)),
    ] {
        match (set, get) {
            // The kernel reports twice what it accounts for (bookkeeping overhead included).
            (Ok(()), Ok(granted)) => tracing::debug!("UDP {addr}: {name} buffer {granted} bytes"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!("UDP {addr}: setting the {name} buffer: {e}"),
        }
    }
}

/// The socket in the top byte; with GSO, the destination below it (IPv4 address and port exactly,
/// IPv6 folded: two destinations sharing a key only interleave, each still in order).
fn group_key(t: &Transmit, by_destination: bool) -> u64 {
    let socket = u64::from(t.socket.0) << 56;
    if !by_destination {
        return socket;
    }
    let port = u64::from(t.to.port());
    let host = match t.to {
        SocketAddr::V4(a) => u64::from(a.ip().to_bits()),
        SocketAddr::V6(a) => {
            let bits = a.ip().to_bits();
            (bits as u64 ^ (bits >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
        }
    };
    socket | ((host << 16 | port) & 0x00FF_FFFF_FFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_turn_interleaving_destinations_leaves_as_runs_each_destination_in_order() {
        let mut udp = UdpSockets::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let receivers: Vec<std::net::UdpSocket> =
            (0..3).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        // As a fan-out queues them: packet 1 to every receiver, then packet 2, …
        for seq in 0..5u8 {
            for r in &receivers {
                let to = r.local_addr().unwrap();
                udp.pending.push(Transmit { socket: SocketId(0), to, buf: vec![seq; 1000] });
            }
        }
        udp.send_pending(&mut TcpMedia::new(100, 200));
        assert_eq!(udp.send_drops, 0);
        assert_eq!(udp.batch.segmented, 15, "one GSO message per receiver");
        let mut buf = [0u8; 1500];
        for r in &receivers {
            r.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            for seq in 0..5u8 {
                let n = r.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[seq; 1000][..]);
            }
        }
    }

    #[test]
    fn a_turn_reads_at_most_its_share_and_the_rest_next_turn() {
        use crate::core::rng::Rng;
        use crate::core::{ListenSocket, WorkerConfig};
        let mut udp = UdpSockets::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let local = udp.local_addr(0).unwrap();
        let now = std::time::Instant::now();
        let mut worker = Worker::new(WorkerConfig {
            pid: 1,
            rng: Rng::from_seed([1; 32]),
            sockets: vec![ListenSocket::udp(SocketId(0), local, None)],
            epoch: now,
            epoch_unix: Duration::from_secs(1_700_000_000),
            pace_video: false,
        })
        .unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let total = READS_PER_TURN * 2 + 5;
        for _ in 0..total {
            // Not STUN, DTLS or RTP: counted as malformed, one by one.
            sender.send_to(&[0xFF; 100], local).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        udp.drain(0, &mut worker, now).unwrap();
        assert_eq!(worker.counters().malformed, READS_PER_TURN as u64);
        assert!(udp.has_unread());
        udp.drain_unread(&mut worker, now).unwrap();
        udp.drain_unread(&mut worker, now).unwrap();
        assert_eq!(worker.counters().malformed, total as u64);
        assert!(!udp.has_unread(), "drained to the end");
    }

    #[test]
    fn group_keys_order_by_socket_then_destination() {
        let t = |socket, to: &str| Transmit { socket: SocketId(socket), to: to.parse().unwrap(), buf: Vec::new() };
        let (a, b) = (t(0, "127.0.0.1:5000"), t(0, "127.0.0.1:5001"));
        assert_ne!(group_key(&a, true), group_key(&b, true));
        assert_eq!(group_key(&a, false), group_key(&b, false), "without GSO only the socket counts");
        assert!(group_key(&t(1, "127.0.0.1:1"), true) > group_key(&t(0, "255.255.255.255:65535"), true));
        let (c, d) = (t(1, "[::1]:5000"), t(1, "[::2]:5000"));
        assert_ne!(group_key(&c, true), group_key(&d, true));
        assert_eq!(group_key(&c, true) >> 56, 1);
    }
}
