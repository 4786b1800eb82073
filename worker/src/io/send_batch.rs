//! Batched sends: every datagram the core queued in one loop turn leaves in as few `sendmmsg`
//! calls as possible (one per socket per 64 messages) instead of one syscall each. Consecutive
//! datagrams to one destination of one size (the last may be shorter) go as one UDP GSO message
//! (`UDP_SEGMENT`, Linux 4.18+): the kernel walks its UDP send path once for all of them and cuts
//! the segments apart at the end. The wire sees the same datagrams in the same order.

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{SockaddrLike, SockaddrStorage};

use crate::core::Transmit;

/// Messages per `sendmmsg` call.
pub const BATCH: usize = 64;
/// Datagrams at most in one GSO message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
pub const MAX_SEGMENTS: usize = 64;
/// Payload bytes at most in one GSO message: an IP datagram's 65,535 less IPv6 and UDP headers.
const MAX_GSO_BYTES: usize = 65_535 - 40 - 8;
/// Room for one `cmsghdr` carrying a `u16`, in `u64`s so it is aligned as the kernel expects.
const CONTROL_WORDS: usize = 4;

/// Which datagrams of one `send` call a message carries.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: usize,
    end: usize,
}

pub struct SendBatch {
    headers: Vec<libc::mmsghdr>,
    /// `MAX_SEGMENTS` per message: message `m` uses `iovecs[m * MAX_SEGMENTS..]`.
    iovecs: Vec<libc::iovec>,
    addrs: Vec<SockaddrStorage>,
    control: Vec<[u64; CONTROL_WORDS]>,
    spans: Vec<Span>,
    /// Whether runs go out as GSO messages; cleared for good when the kernel or the device cannot.
    gso: bool,
    /// Datagrams that left inside GSO messages.
    pub segmented: u64,
}

// SAFETY: the raw pointers inside the headers only ever point into this struct's own vectors and
// the transmit buffers of the call that filled them; nothing is kept across calls.
unsafe impl Send for SendBatch {}

impl Default for SendBatch {
    fn default() -> Self {
        Self {
            // SAFETY: mmsghdr and iovec are plain C structs for which all-zero is a valid value.
            headers: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovecs: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH * MAX_SEGMENTS],
            addrs: Vec::with_capacity(BATCH),
            control: vec![[0; CONTROL_WORDS]; BATCH],
            spans: vec![Span::default(); BATCH],
            gso: true,
            segmented: 0,
        }
    }
}

impl SendBatch {
    /// Whether consecutive datagrams to one destination are sent as GSO messages.
    pub fn gso(&self) -> bool {
        self.gso
    }

    pub fn set_gso(&mut self, on: bool) {
        self.gso = on;
    }

    /// Sends `transmits[order[0]]`, `transmits[order[1]]`, … (all for the socket `fd`) and returns how
    /// many the kernel refused. Runs to one destination are best put next to each other (keeping
    /// their order) first.
    pub fn send(&mut self, fd: &impl AsRawFd, transmits: &[Transmit], order: &[usize]) -> u64 {
        let mut dropped = 0;
        let mut next = 0;
        // A GSO message the kernel refused is sent again as single datagrams: up to here, no runs.
        let mut single_until = 0;
        while next < order.len() {
            let messages = self.fill(transmits, order, next, single_until);
            let mut sent = 0;
            let mut again_from = None;
            while sent < messages {
                // SAFETY: headers[sent..messages] point at live iovecs, addresses, control data and
                // transmit buffers, all filled by `fill` for this very slice.
                let n = unsafe {
                    libc::sendmmsg(
                        fd.as_raw_fd(),
                        self.headers[sent..].as_mut_ptr(),
                        (messages - sent) as libc::c_uint,
                        0,
                    )
                };
                if n >= 0 {
                    let done = &self.spans[sent..sent + n as usize];
                    self.segmented +=
                        done.iter().filter(|s| s.end - s.start > 1).map(|s| (s.end - s.start) as u64).sum::<u64>();
                    sent += n as usize;
                    continue;
                }
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let span = self.spans[sent];
                if span.end - span.start > 1 {
                    if device_refuses_gso(&err) {
                        tracing::warn!("UDP GSO refused ({err}): sending datagrams one by one from now on");
                        self.gso = false;
                    }
                    again_from = Some(span.start);
                    single_until = span.end;
                    break;
                }
                // A full send buffer or an unreachable destination costs this datagram only; skip it
                // and send the rest.
                dropped += 1;
                sent += 1;
            }
            next = again_from.unwrap_or(self.spans[messages - 1].end);
        }
        dropped
    }

    /// Describes up to [`BATCH`] messages, starting at `order[first]`, in `headers`; returns how
    /// many. Datagrams before `single_until` (in `order`) go one per message.
    fn fill(&mut self, transmits: &[Transmit], order: &[usize], first: usize, single_until: usize) -> usize {
        self.addrs.clear();
        let mut next = first;
        let mut messages = 0;
        while messages < BATCH && next < order.len() {
            let end = if self.gso && next >= single_until { run_end(transmits, order, next) } else { next + 1 };
            self.spans[messages] = Span { start: next, end };
            self.addrs.push(SockaddrStorage::from(transmits[order[next]].to));
            let iovecs = &mut self.iovecs[messages * MAX_SEGMENTS..];
            for (iov, &i) in iovecs.iter_mut().zip(&order[next..end]) {
                let buf = &transmits[i].buf;
                *iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
            }
            next = end;
            messages += 1;
        }
        for m in 0..messages {
            let span = self.spans[m];
            let header = &mut self.headers[m];
            header.msg_hdr.msg_name = self.addrs[m].as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = self.addrs[m].len();
            header.msg_hdr.msg_iov = &mut self.iovecs[m * MAX_SEGMENTS];
            header.msg_hdr.msg_iovlen = span.end - span.start;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
            if span.end - span.start > 1 {
                // Every segment is as long as the first; the kernel lets the last be shorter.
                let segment = transmits[order[span.start]].buf.len() as u16;
                set_udp_segment(header, &mut self.control[m], segment);
            }
        }
        messages
    }
}

/// Attaches a `UDP_SEGMENT` control message of `segment` bytes to `header`, in `control`.
fn set_udp_segment(header: &mut libc::mmsghdr, control: &mut [u64; CONTROL_WORDS], segment: u16) {
    *control = [0; CONTROL_WORDS];
    header.msg_hdr.msg_control = control.as_mut_ptr().cast();
    // SAFETY: `control` is 32 bytes, 8-aligned, which holds CMSG_SPACE(2) (24 on 64-bit Linux), so
    // the first header and its data lie inside it.
    unsafe {
        header.msg_hdr.msg_controllen = libc::CMSG_SPACE(2) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&header.msg_hdr);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
}

/// Where (in `order`) a GSO message starting at `transmits[order[start]]` ends: the same destination,
/// every datagram as long as the first except a shorter last one, within the kernel's limits.
fn run_end(transmits: &[Transmit], order: &[usize], start: usize) -> usize {
    let first = &transmits[order[start]];
    let size = first.buf.len();
    let (mut end, mut bytes) = (start + 1, size);
    while let Some(t) = order.get(end).map(|&i| &transmits[i]) {
        let len = t.buf.len();
        if end - start == MAX_SEGMENTS || t.to != first.to || len == 0 || len > size || bytes + len > MAX_GSO_BYTES {
            break;
        }
        bytes += len;
        end += 1;
        if len < size {
            break;
        }
    }
    end
}

/// Errors that say GSO cannot work on this socket at all (no kernel support, no checksum offload on
/// the route's device), rather than that this one message was bad.
fn device_refuses_gso(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP))
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, UdpSocket};
    use std::time::Duration;

    use super::*;
    use crate::core::SocketId;

    fn transmit(to: SocketAddr, buf: Vec<u8>) -> Transmit {
        Transmit { socket: SocketId(0), to, buf }
    }

    fn in_order(transmits: &[Transmit]) -> Vec<usize> {
        (0..transmits.len()).collect()
    }

    fn receivers(n: usize) -> Vec<UdpSocket> {
        (0..n)
            .map(|_| {
                let r = UdpSocket::bind("127.0.0.1:0").unwrap();
                r.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                r
            })
            .collect()
    }

    /// Each receiver gets exactly its datagrams, whole and in order, from `sender`.
    fn assert_received(sender: &UdpSocket, receivers: &[UdpSocket], transmits: &[Transmit]) {
        let mut buf = [0u8; 1500];
        for r in receivers {
            let to = r.local_addr().unwrap();
            for t in transmits.iter().filter(|t| t.to == to) {
                let (n, from) = r.recv_from(&mut buf).unwrap();
                assert_eq!(from, sender.local_addr().unwrap());
                assert_eq!(&buf[..n], &t.buf[..]);
            }
            r.set_nonblocking(true).unwrap();
            assert!(r.recv_from(&mut buf).is_err(), "more datagrams than sent");
        }
    }

    #[test]
    fn sends_every_datagram_of_a_batch_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receivers = receivers(2);
        let transmits: Vec<Transmit> = (0..150u32)
            .map(|i| {
                transmit(receivers[(i % 2) as usize].local_addr().unwrap(), vec![i as u8; 1 + (i as usize * 7) % 1200])
            })
            .collect();
        let mut batch = SendBatch::default();
        assert_eq!(batch.send(&sender, &transmits, &in_order(&transmits)), 0);
        assert_received(&sender, &receivers, &transmits);
    }

    #[test]
    fn runs_to_one_destination_arrive_as_the_same_datagrams_with_gso_or_without() {
        for gso in [true, false] {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            let receivers = receivers(3);
            let addr = |k: usize| receivers[k].local_addr().unwrap();
            // Runs of equal sizes, a shorter last one, a longer one that must start a new message,
            // a run longer than MAX_SEGMENTS, and singles in between.
            let mut transmits = Vec::new();
            for (k, sizes) in [
                (0, vec![1200, 1200, 1200, 700]),
                (1, vec![1200]),
                (0, vec![900, 1200, 1200]),
                (2, vec![1000; MAX_SEGMENTS + 5]),
                (1, vec![300, 300]),
            ] {
                for size in sizes {
                    let n = transmits.len();
                    transmits.push(transmit(addr(k), (0..size).map(|i| (i + n) as u8).collect()));
                }
            }
            let mut batch = SendBatch::default();
            batch.set_gso(gso);
            assert_eq!(batch.send(&sender, &transmits, &in_order(&transmits)), 0);
            assert_received(&sender, &receivers, &transmits);
            assert_eq!(batch.gso(), gso, "loopback takes GSO");
            // Runs: 4, the two after the 900, 64 + 5, 2.
            assert_eq!(batch.segmented, if gso { 4 + 2 + MAX_SEGMENTS as u64 + 5 + 2 } else { 0 });
        }
    }

    #[test]
    fn a_run_stops_at_another_destination_a_longer_datagram_or_after_a_shorter_one() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let run = |list: &[(SocketAddr, usize)]| {
            let transmits: Vec<Transmit> = list.iter().map(|&(to, n)| transmit(to, vec![0; n])).collect();
            run_end(&transmits, &in_order(&transmits), 0)
        };
        assert_eq!(run(&[(a, 100), (a, 100), (b, 100)]), 2);
        assert_eq!(run(&[(a, 100), (a, 101)]), 1);
        assert_eq!(run(&[(a, 100), (a, 50), (a, 50)]), 2);
        assert_eq!(run(&[(a, 0), (a, 0)]), 1);
        assert_eq!(run(&vec![(a, 10); MAX_SEGMENTS + 1]), MAX_SEGMENTS);
        assert_eq!(run(&vec![(a, 1400); MAX_SEGMENTS]), MAX_GSO_BYTES / 1400);
    }
}
