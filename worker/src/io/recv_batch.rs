//! Batched reads: up to [`RECV_BATCH`] datagrams per `recvmmsg` call, each into a buffer of its own
//! with room after it for in-place rewrites, with its source address. One syscall then carries a
//! burst of a frame's packets, or of many publishers' packets, instead of one each. On a socket with
//! [`enable_gro`] a read may hold a run of datagrams; its segment size comes with it. (The worker
//! reads single datagrams; the load generator reads Octo's GSO runs whole.)

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// Datagrams per `recvmmsg` call at most.
pub const RECV_BATCH: usize = 32;

/// Linux's `UDP_GRO` socket option (`linux/udp.h`; the libc crate names it for some targets only).
const UDP_GRO: libc::c_int = 104;
/// Room for one `cmsghdr` carrying an `int`, in `u64`s so it is aligned as the kernel expects.
const CONTROL_WORDS: usize = 4;

/// Asks the kernel to hand over a run of datagrams that left the sender as one GSO message as one
/// read (with their size in a `UDP_GRO` control message) instead of splitting it on receipt. On
/// loopback the split would run on the sender's CPU and be billed to it; on a real network it
/// happens before the wire or in the NIC.
pub fn enable_gro(fd: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to an int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_UDP,
            UDP_GRO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

pub struct RecvBatch {
    /// `RECV_BATCH` buffers of `buffer_len` bytes.
    bufs: Vec<u8>,
    buffer_len: usize,
    /// Bytes read into each buffer at most (the rest is headroom).
    max_datagram: usize,
    addrs: Vec<libc::sockaddr_storage>,
    control: Vec<[u64; CONTROL_WORDS]>,
    lens: [usize; RECV_BATCH],
    /// The size of each datagram in a read: its length, or the GRO segment size.
    segments: [usize; RECV_BATCH],
}

impl RecvBatch {
    pub fn new(max_datagram: usize, buffer_len: usize) -> Self {
        Self {
            bufs: vec![0; RECV_BATCH * buffer_len],
            buffer_len,
            max_datagram: max_datagram.min(buffer_len),
            // SAFETY: all-zero is a valid sockaddr_storage (family AF_UNSPEC).
            addrs: vec![unsafe { std::mem::zeroed() }; RECV_BATCH],
            control: vec![[0; CONTROL_WORDS]; RECV_BATCH],
            lens: [0; RECV_BATCH],
            segments: [0; RECV_BATCH],
        }
    }

    /// Reads up to `max` (at most [`RECV_BATCH`]) datagrams without blocking; returns how many.
    /// `WouldBlock` when none was waiting. Fewer than asked means the socket was empty then.
    pub fn recv(&mut self, fd: &impl AsRawFd, max: usize) -> io::Result<usize> {
        let max = max.min(RECV_BATCH);
        let base = self.bufs.as_mut_ptr();
        let mut iovecs: [libc::iovec; RECV_BATCH] = std::array::from_fn(|i| libc::iovec {
            // SAFETY: i * buffer_len + max_datagram <= bufs.len().
            iov_base: unsafe { base.add(i * self.buffer_len) }.cast(),
            iov_len: self.max_datagram,
        });
        // SAFETY: an all-zero mmsghdr is a valid "no name, no control" header.
        let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for (((h, iov), addr), control) in
            headers.iter_mut().zip(iovecs.iter_mut()).zip(self.addrs.iter_mut()).zip(self.control.iter_mut())
        {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_control = control.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; CONTROL_WORDS]>() as _;
        }
        // SAFETY: the first `max` headers point at live iovecs over live buffers of the lengths given
        // and at live address and control storage; nothing is kept after the call.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                headers.as_mut_ptr(),
                max as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (i, h) in headers.iter().enumerate().take(n as usize) {
            let len = h.msg_len as usize;
            self.lens[i] = len;
            self.segments[i] = gro_segment(&h.msg_hdr).filter(|&s| s > 0).unwrap_or(len).max(1);
        }
        Ok(n as usize)
    }

    /// The datagram size within read `i`: its length, or on a GRO socket the size of each datagram
    /// of the run it holds (the last may be shorter).
    pub fn segment(&self, i: usize) -> usize {
        self.segments[i]
    }

    /// Datagram `i` of the last read: its source, its buffer (with the headroom) and its length.
    pub fn datagram(&mut self, i: usize) -> (Option<SocketAddr>, &mut [u8], usize) {
        let from = socket_addr(&self.addrs[i]);
        let buf = &mut self.bufs[i * self.buffer_len..(i + 1) * self.buffer_len];
        (from, buf, self.lens[i])
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

/// The address the kernel wrote, if it is IPv4 or IPv6.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    fn batch_from(receiver: &UdpSocket, senders: &[UdpSocket], per_sender: usize) {
        let to = receiver.local_addr().unwrap();
        for round in 0..per_sender {
            for (k, s) in senders.iter().enumerate() {
                s.send_to(&vec![(k * 16 + round) as u8; 100 + k * 10 + round], to).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
        let mut batch = RecvBatch::new(1500, 1600);
        let total = senders.len() * per_sender;
        let mut seen = 0;
        while seen < total {
            let n = batch.recv(receiver, RECV_BATCH).unwrap();
            for i in 0..n {
                let (round, k) = ((seen + i) / senders.len(), (seen + i) % senders.len());
                let (from, buf, len) = batch.datagram(i);
                assert_eq!(from, Some(senders[k].local_addr().unwrap()));
                assert_eq!(len, 100 + k * 10 + round);
                assert_eq!(buf.len(), 1600, "the whole buffer, headroom included");
                assert!(buf[..len].iter().all(|&b| b == (k * 16 + round) as u8));
            }
            seen += n;
        }
        assert_eq!(batch.recv(receiver, RECV_BATCH).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn reads_bursts_with_their_sources_over_ipv4_and_ipv6() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(receiver) = UdpSocket::bind(local) else { continue }; // IPv6 may be off
            receiver.set_nonblocking(true).unwrap();
            let senders: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind(local).unwrap()).collect();
            batch_from(&receiver, &senders, 20);
        }
    }

    #[test]
    fn a_gso_run_reads_whole_on_a_gro_socket_with_its_segment_size() {
        use crate::core::{SocketId, Transmit};
        use crate::io::send_batch::SendBatch;
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        enable_gro(&receiver).unwrap();
        let to = receiver.local_addr().unwrap();
        let sizes = [1200, 1200, 1200, 700];
        let transmits: Vec<Transmit> = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| Transmit { socket: SocketId(0), to, buf: vec![k as u8; n] })
            .collect();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut send = SendBatch::default();
        assert_eq!(send.send(&sender, &transmits, &[0, 1, 2, 3]), 0);
        assert_eq!(send.segmented, 4, "left as one GSO message");
        std::thread::sleep(Duration::from_millis(20));
        let mut batch = RecvBatch::new(65_536, 65_536);
        assert_eq!(batch.recv(&receiver, RECV_BATCH).unwrap(), 1, "one read for the run");
        assert_eq!(batch.segment(0), 1200);
        let (from, buf, len) = batch.datagram(0);
        assert_eq!((from, len), (Some(sender.local_addr().unwrap()), 4300));
        for (k, chunk) in buf[..len].chunks(1200).enumerate() {
            assert!(chunk.iter().all(|&b| b == k as u8));
        }
    }

    #[test]
    fn a_read_stops_at_what_it_was_asked_for() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            sender.send_to(&[1; 10], receiver.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let mut batch = RecvBatch::new(1500, 1600);
        assert_eq!(batch.recv(&receiver, 4).unwrap(), 4);
        assert_eq!(batch.recv(&receiver, 100).unwrap(), 6);
    }
}
