//! Batched sends: every datagram the core queued in one loop turn leaves in as few `sendmmsg`
//! calls as possible (one per socket per 64 datagrams) instead of one syscall each.

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{SockaddrLike, SockaddrStorage};

use crate::core::Transmit;

/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 64;

pub struct SendBatch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    addrs: Vec<SockaddrStorage>,
}

// SAFETY: the raw pointers inside the headers only ever point into this struct's own vectors and
// the transmit buffers of the call that filled them; nothing is kept across calls.
unsafe impl Send for SendBatch {}

impl Default for SendBatch {
    fn default() -> Self {
        Self {
            // SAFETY: mmsghdr and iovec are plain C structs for which all-zero is a valid value.
            headers: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovecs: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH],
            addrs: Vec::with_capacity(BATCH),
        }
    }
}

impl SendBatch {
    /// Sends `transmits` (all for the socket `fd`) and returns how many the kernel refused.
    pub fn send(&mut self, fd: &impl AsRawFd, transmits: &[Transmit]) -> u64 {
        let mut dropped = 0;
        for chunk in transmits.chunks(BATCH) {
            self.addrs.clear();
            self.addrs.extend(chunk.iter().map(|t| SockaddrStorage::from(t.to)));
            for (i, t) in chunk.iter().enumerate() {
                self.iovecs[i] = libc::iovec { iov_base: t.buf.as_ptr() as *mut libc::c_void, iov_len: t.buf.len() };
                let header = &mut self.headers[i];
                header.msg_hdr.msg_name = self.addrs[i].as_ptr() as *mut libc::c_void;
                header.msg_hdr.msg_namelen = self.addrs[i].len();
                header.msg_hdr.msg_iov = &mut self.iovecs[i];
                header.msg_hdr.msg_iovlen = 1;
                header.msg_hdr.msg_control = std::ptr::null_mut();
                header.msg_hdr.msg_controllen = 0;
                header.msg_hdr.msg_flags = 0;
                header.msg_len = 0;
            }
            let mut sent = 0;
            while sent < chunk.len() {
                // SAFETY: headers[sent..chunk.len()] point at live iovecs, addresses and buffers.
                let n = unsafe {
                    libc::sendmmsg(
                        fd.as_raw_fd(),
                        self.headers[sent..].as_mut_ptr(),
                        (chunk.len() - sent) as libc::c_uint,
                        0,
                    )
                };
                if n < 0 {
                    let err = io::Error::last_os_error();
                    match err.kind() {
                        io::ErrorKind::Interrupted => continue,
                        // A full send buffer or an unreachable destination costs this datagram
                        // only; skip it and send the rest.
                        _ => {
                            dropped += 1;
                            sent += 1;
                        }
                    }
                } else {
                    sent += n as usize;
                }
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;
    use crate::core::SocketId;

    #[test]
    fn sends_every_datagram_of_a_batch_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receivers = [UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap()];
        for r in &receivers {
            r.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        let transmits: Vec<Transmit> = (0..150u32)
            .map(|i| Transmit {
                socket: SocketId(0),
                to: receivers[(i % 2) as usize].local_addr().unwrap(),
                buf: vec![i as u8; 1 + (i as usize * 7) % 1200],
            })
            .collect();
        let mut batch = SendBatch::default();
        assert_eq!(batch.send(&sender, &transmits), 0);
        let mut buf = [0u8; 1500];
        for (k, r) in receivers.iter().enumerate() {
            for t in transmits.iter().skip(k).step_by(2) {
                let (n, from) = r.recv_from(&mut buf).unwrap();
                assert_eq!(from, sender.local_addr().unwrap());
                assert_eq!(&buf[..n], &t.buf[..]);
            }
        }
    }
}
