//! The machine's raw limit for what a worker does per forwarded packet at the end: a plain
//! `sendmmsg` loop of 1200-byte datagrams from one socket to the same receivers, timed by the
//! sending thread's own CPU clock.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::proc_stat::thread_cpu;

const DATAGRAM: usize = 1200;
const BATCH: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct RawSend {
    pub packets: u64,
    pub receivers: usize,
    pub cpu_ns_per_packet: f64,
    pub packets_per_second_wall: f64,
}

/// Sends up to `max_packets` datagrams (at most for `max_time`) round-robin to `receivers` on a
/// thread of its own. The first byte (0xFF) makes the receivers count them as foreign and drop
/// them.
pub fn measure(receivers: &[SocketAddr], max_packets: u64, max_time: Duration) -> std::io::Result<RawSend> {
    let targets: Vec<SocketAddrV4> = receivers
        .iter()
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4),
            SocketAddr::V6(_) => None,
        })
        .collect();
    if targets.is_empty() {
        return Err(std::io::Error::other("no IPv4 receivers"));
    }
    let receivers = targets.len();
    std::thread::scope(|scope| {
        scope.spawn(|| send_loop(&targets, max_packets, max_time)).join().map_err(|_| std::io::Error::other("panic"))?
    })
    .map(|(packets, cpu, wall)| RawSend {
        packets,
        receivers,
        cpu_ns_per_packet: cpu.as_nanos() as f64 / packets.max(1) as f64,
        packets_per_second_wall: packets as f64 / wall.as_secs_f64().max(1e-9),
    })
}

fn sockaddr(a: &SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
        sin_zero: [0; 8],
    }
}

fn send_loop(
    targets: &[SocketAddrV4],
    max_packets: u64,
    max_time: Duration,
) -> std::io::Result<(u64, Duration, Duration)> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let fd = socket.as_raw_fd();
    let payload = [0xFFu8; DATAGRAM];
    let addrs: Vec<libc::sockaddr_in> = targets.iter().map(sockaddr).collect();
    let start_cpu = thread_cpu();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut next = 0usize;
    while sent < max_packets && start.elapsed() < max_time {
        let mut iovecs: [libc::iovec; BATCH] =
            std::array::from_fn(|_| libc::iovec { iov_base: payload.as_ptr() as *mut _, iov_len: DATAGRAM });
        // SAFETY: zeroed mmsghdrs are valid; each is then pointed at a live iovec and address.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (h, iov) in headers.iter_mut().zip(iovecs.iter_mut()) {
            let addr = &addrs[next % addrs.len()];
            next += 1;
            h.msg_hdr.msg_name = addr as *const libc::sockaddr_in as *mut _;
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: headers, iovecs, addresses and payload outlive the call.
        let n = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), BATCH as u32, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            // A receiver whose socket is gone answers with ICMP: skip on.
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                continue;
            }
            return Err(e);
        }
        sent += n as u64;
    }
    Ok((sent, thread_cpu() - start_cpu, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_every_receiver() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = measure(&[a.local_addr().unwrap(), b.local_addr().unwrap()], 128, Duration::from_secs(2)).unwrap();
        assert_eq!(r.packets, 128);
        assert!(r.cpu_ns_per_packet > 0.0);
        let mut buf = [0u8; 1500];
        assert_eq!(a.recv(&mut buf).unwrap(), DATAGRAM);
        assert_eq!(b.recv(&mut buf).unwrap(), DATAGRAM);
    }
}
