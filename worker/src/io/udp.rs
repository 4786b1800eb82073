//! The worker's UDP sockets: binding, draining reads, and sending what the core queued.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::send_batch::SendBatch;
use crate::core::{SocketId, Transmit, Worker};

/// Largest datagram read; the rest of the read buffer is headroom for in-place rewrites.
pub const MAX_DATAGRAM: usize = 1500;
const READ_BUFFER: usize = 1600;

pub struct UdpSockets {
    sockets: Vec<UdpSocket>,
    read_buf: Box<[u8; READ_BUFFER]>,
    /// Transmits of one loop turn, grouped per socket before sending; reused every turn.
    pending: Vec<Transmit>,
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
            sockets.push(UdpSocket::from_std(std));
        }
        Ok(Self {
            sockets,
            read_buf: Box::new([0; READ_BUFFER]),
            pending: Vec::with_capacity(1024),
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

    /// Reads socket `index` until it would block, handing each datagram to the core.
    pub fn drain(&mut self, index: usize, worker: &mut Worker, now: std::time::Instant) -> io::Result<()> {
        let socket = &self.sockets[index];
        loop {
            match socket.recv_from(&mut self.read_buf[..MAX_DATAGRAM]) {
                Ok((len, from)) => {
                    worker.handle_datagram(now, SocketId(index as u8), from, &mut self.read_buf[..], len);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from an earlier send surface here (ECONNREFUSED): not fatal.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends every datagram the core queued, batched per socket, and gives the buffers back.
    pub fn flush(&mut self, worker: &mut Worker) {
        while let Some(t) = worker.poll_transmit() {
            self.pending.push(t);
        }
        if self.pending.is_empty() {
            return;
        }
        // Stable: datagrams to one destination keep their order. With GSO, a destination's datagrams
        // are put next to each other so that runs of them leave as one message.
        if self.batch.gso() {
            self.pending.sort_by_key(|t| (t.socket, t.to));
        } else {
            self.pending.sort_by_key(|t| t.socket);
        }
        let mut start = 0;
        while start < self.pending.len() {
            let socket = self.pending[start].socket;
            let end = start + self.pending[start..].iter().take_while(|t| t.socket == socket).count();
            match self.sockets.get(usize::from(socket.0)) {
                Some(udp) => self.send_drops += self.batch.send(udp, &self.pending[start..end]),
                None => self.send_drops += (end - start) as u64,
            }
            start = end;
        }
        for t in self.pending.drain(..) {
            worker.recycle(t.buf);
        }
    }
}
