//! Outgoing datagrams and the buffer pool they live in, so that forwarding allocates nothing once
//! the pool has warmed up.

use std::collections::VecDeque;
use std::net::SocketAddr;

/// Room for a full Ethernet-MTU datagram plus the headroom a header rewrite or SRTP tag needs.
pub const BUFFER_SIZE: usize = 1600;

/// Free buffers kept for reuse (26 MB at most). A loop turn that reads a 4-packet frame for 2,000
/// consumers queues 8,000 datagrams: the pool must hold a turn's worth, or buffers are freed and
/// allocated again every turn.
const MAX_POOLED: usize = 16_384;

/// Which of the worker's UDP sockets or ICE-TCP listeners a packet belongs to (on a listener, the
/// peer's address picks the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u8);

/// A datagram the IO shell must send; give `buf` back with [`TransmitQueue::recycle`].
#[derive(Debug)]
pub struct Transmit {
    pub socket: SocketId,
    pub to: SocketAddr,
    pub buf: Vec<u8>,
}

#[derive(Default)]
pub struct TransmitQueue {
    queue: VecDeque<Transmit>,
    free: Vec<Vec<u8>>,
    /// Transports whose pacer holds packets (see `pacing.rs`), and when to look at them next.
    pub pacing: Vec<octo_ipc::TransportId>,
    pub pace_at: Option<std::time::Instant>,
}

impl TransmitQueue {
    /// A cleared buffer with [`BUFFER_SIZE`] capacity.
    pub fn buffer(&mut self) -> Vec<u8> {
        match self.free.pop() {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(BUFFER_SIZE),
        }
    }

    pub fn push(&mut self, socket: SocketId, to: SocketAddr, buf: Vec<u8>) {
        self.queue.push_back(Transmit { socket, to, buf });
    }

    /// Queues a copy of `data`.
    pub fn push_copy(&mut self, socket: SocketId, to: SocketAddr, data: &[u8]) {
        let mut buf = self.buffer();
        buf.extend_from_slice(data);
        self.push(socket, to, buf);
    }

    pub fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop_front()
    }

    pub fn recycle(&mut self, buf: Vec<u8>) {
        // Keep the pool bounded: a burst must not pin its peak memory forever.
        if self.free.len() < MAX_POOLED && buf.capacity() >= BUFFER_SIZE {
            self.free.push(buf);
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
