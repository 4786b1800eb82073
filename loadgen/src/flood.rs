//! A garbage flood at a worker's media port while a call runs (`--flood-pps`): datagrams from an
//! address no transport knows, at a steady rate, on a thread of their own. A quarter are STUN
//! binding requests for usernames no transport has (the worker must parse those: an unknown
//! address may be a client's new one); the rest are random bytes of random length whose first
//! bytes cover every RFC 7983 range (STUN, DTLS, RTP/RTCP, nothing). The call's loss and latency,
//! measured as always, say whether the flood harmed it.
//!
//! Bounded: it stops when told, or after its time limit, whichever comes first.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Distinct datagrams made once and sent in turn.
const VARIANTS: usize = 512;
const BATCH: usize = 32;

#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodFigures {
    pub target_packets_per_s: u64,
    pub sent: u64,
    pub seconds: f64,
    pub sent_per_s: f64,
    /// Sends the kernel refused (a full socket buffer): the flood is then slower than asked.
    pub send_errors: u64,
    /// Datagrams the workers counted as dropped meanwhile (`octo_packets_dropped_total`).
    pub worker_drops: Option<u64>,
}

pub struct Flood {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<FloodFigures>,
}

impl Flood {
    /// Starts flooding `target` at `pps` datagrams per second for at most `max_time`.
    pub fn start(target: SocketAddr, pps: u64, max_time: Duration) -> std::io::Result<Self> {
        let bind = if target.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(target)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle =
            std::thread::Builder::new().name("flood".into()).spawn(move || run(&socket, pps, max_time, &flag))?;
        Ok(Self { stop, handle })
    }

    pub fn stop(self) -> FloodFigures {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The datagrams: deterministic (a fixed-seed generator), so runs are comparable.
fn variants() -> Vec<Vec<u8>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..VARIANTS)
        .map(|i| {
            if i % 4 == 0 {
                stun_binding_request(&mut next)
            } else {
                let len = 1 + (next() % 1200) as usize;
                let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                d[0] = (i % 256) as u8;
                d
            }
        })
        .collect()
}

/// A binding request with a username no transport has, and no valid integrity.
fn stun_binding_request(next: &mut impl FnMut() -> u64) -> Vec<u8> {
    let username: Vec<u8> = (0..9).map(|_| b'a' + (next() % 26) as u8).collect();
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(&username);
    attrs.resize(attrs.len().next_multiple_of(4), 0);
    // MESSAGE-INTEGRITY of garbage.
    attrs.extend_from_slice(&0x0008u16.to_be_bytes());
    attrs.extend_from_slice(&20u16.to_be_bytes());
    attrs.extend((0..20).map(|_| next() as u8));
    let mut d = Vec::with_capacity(20 + attrs.len());
    d.extend_from_slice(&0x0001u16.to_be_bytes());
    d.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    d.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    d.extend((0..12).map(|_| next() as u8));
    d.extend_from_slice(&attrs);
    d
}

fn run(socket: &UdpSocket, pps: u64, max_time: Duration, stop: &AtomicBool) -> FloodFigures {
    let datagrams = variants();
    let fd = socket.as_raw_fd();
    let start = Instant::now();
    let (mut sent, mut errors, mut next) = (0u64, 0u64, 0usize);
    while !stop.load(Ordering::Relaxed) && start.elapsed() < max_time {
        let due = (pps as f64 * start.elapsed().as_secs_f64()) as u64;
        let n = due.saturating_sub(sent).min(BATCH as u64) as usize;
        if n == 0 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|i| {
            let d = &datagrams[(next + i) % VARIANTS];
            libc::iovec { iov_base: d.as_ptr() as *mut _, iov_len: d.len() }
        });
        // SAFETY: zeroed mmsghdrs are valid; each is then pointed at a live iovec (the socket is
        // connected, so no address).
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (h, iov) in headers.iter_mut().zip(iovecs.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: headers, iovecs and datagrams outlive the call.
        let r = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), n as u32, 0) };
        if r < 0 {
            // A full buffer or an ICMP error from the last batch: count it and go on, slower.
            errors += 1;
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        sent += r as u64;
        next = (next + r as usize) % VARIANTS;
    }
    let seconds = start.elapsed().as_secs_f64();
    FloodFigures {
        target_packets_per_s: pps,
        sent,
        seconds,
        sent_per_s: sent as f64 / seconds.max(1e-9),
        send_errors: errors,
        worker_drops: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_at_about_the_rate_asked_and_stops_when_told() {
        let target = UdpSocket::bind("127.0.0.1:0").unwrap();
        target.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let flood = Flood::start(target.local_addr().unwrap(), 5_000, Duration::from_secs(5)).unwrap();
        let mut buf = [0u8; 2048];
        let (mut got, mut stun) = (0, 0);
        let end = Instant::now() + Duration::from_millis(400);
        while Instant::now() < end {
            if let Ok(n) = target.recv(&mut buf) {
                got += 1;
                stun += usize::from(n >= 20 && buf[0] == 0 && buf[1] == 1 && buf[4..8] == [0x21, 0x12, 0xA4, 0x42]);
            }
        }
        let f = flood.stop();
        assert!(f.seconds < 1.0, "stopped when told: {f:?}");
        assert!((1_000..=3_500).contains(&f.sent), "~2,000 in 0.4 s: {f:?}");
        assert!(got > 500 && stun > 0, "received {got}, {stun} of them STUN");
    }

    #[test]
    fn the_datagrams_cover_every_first_byte_range() {
        let v = variants();
        for range in [0..=3u8, 20..=63, 128..=191, 64..=79, 192..=255] {
            assert!(v.iter().any(|d| range.contains(&d[0])), "{range:?}");
        }
        assert!(v.iter().all(|d| !d.is_empty() && d.len() <= 1200));
    }
}
