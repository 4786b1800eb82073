//! Egress through real sockets: Octo's whole per-packet path (UDP read, decrypt, fan-out, encrypt,
//! `sendmmsg`) against the raw limit, a plain `sendmmsg` loop of datagrams of the same size to the
//! same 127.0.0.1 receivers. Reports CPU time of this thread (user + system, so the kernel's UDP
//! send and loopback delivery are in it) per egress datagram, and the ratio of the two.
//!
//! `cargo bench -p octo-worker --bench egress` (50 consumers; one or four packets read per loop
//! turn), or name the consumer counts and packets per turn: `-- 10 200 burst=2`. Bounded: 5,000 timed packets in per case and round,
//! best of three rounds.
//!
//! Each loop turn: the publisher's socket sends `burst` datagrams to the worker's socket (untimed),
//! then the timed part reads them as the event loop does (`UdpSockets::drain`) and sends what the
//! core queued (`UdpSockets::flush`); the receivers are drained after each turn (untimed) so no
//! datagram is dropped for a full buffer, which would make sending look cheaper than it is.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{SockaddrLike, SockaddrStorage};
use octo_worker::core::testing::{Harness, Peer, vp8_stream};
use octo_worker::io::UdpSockets;

const PACKETS: u16 = 6_000;
const WARM_UP: usize = 1_000;
/// Rounds per case; the best (least CPU) counts.
const ROUNDS: usize = 3;
/// RTP payload bytes: the SRTP datagrams Octo sends are then 1,200 bytes (24-byte header with
/// extensions, 16-byte GCM tag); the raw loop sends datagrams as large as the largest Octo sent.
const PAYLOAD: usize = 1_160;
/// Messages per raw `sendmmsg` call (the kernel's UIO_MAXIOV).
const RAW_BATCH: usize = 1024;

/// CPU time this thread has used (user + system).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Time spent in the timed sections of one case.
#[derive(Default)]
struct Cost {
    cpu: Duration,
    wall: Duration,
    sent: u64,
    received: u64,
}

impl Cost {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        let out = f();
        self.cpu += thread_cpu() - cpu;
        self.wall += wall.elapsed();
        out
    }

    fn ns_per_datagram(&self) -> (f64, f64) {
        let n = self.sent.max(1) as f64;
        (self.cpu.as_nanos() as f64 / n, self.wall.as_nanos() as f64 / n)
    }
}

struct Receivers {
    sockets: Vec<UdpSocket>,
    buf: Vec<u8>,
}

impl Receivers {
    fn bind(n: usize) -> Self {
        let sockets = (0..n)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind a receiver");
                s.set_nonblocking(true).expect("non-blocking receiver");
                s
            })
            .collect();
        Self { sockets, buf: vec![0; 2048] }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|s| s.local_addr().expect("receiver address")).collect()
    }

    /// Reads everything queued; returns the count and the largest datagram's size.
    fn drain(&mut self) -> (u64, usize) {
        let (mut n, mut largest) = (0, 0);
        for s in &self.sockets {
            while let Ok((len, _)) = s.recv_from(&mut self.buf) {
                n += 1;
                largest = largest.max(len);
            }
        }
        (n, largest)
    }
}

/// Octo: the publisher's stream read from a real socket, forwarded to `receivers`.
fn octo(receivers: &mut Receivers, burst: usize, gso: bool) -> (Cost, usize) {
    let publisher_socket = UdpSocket::bind("127.0.0.1:0").expect("bind the publisher");
    let mut h = Harness::new();
    let mut publisher = Peer::new(publisher_socket.local_addr().expect("publisher address").port());
    let mut subs: Vec<Peer> = receivers.addrs().iter().map(|a| Peer::new(a.port())).collect();
    h.fan_out(&mut publisher, &mut subs);
    let datagrams = vp8_stream(&mut publisher, PACKETS, PAYLOAD);
    let mut udp = UdpSockets::bind(&["127.0.0.1:0".parse().expect("address")]).expect("bind the worker");
    let worker_addr = udp.local_addr(0).expect("worker address");
    udp.set_gso(gso);
    // No ICE-TCP here: nothing is ever queued on it.
    let mut tcp = octo_worker::io::tcp::TcpMedia::new(1 << 16, 1 << 20);

    let (warm_up, timed) = datagrams.split_at(WARM_UP);
    let mut cost = Cost::default();
    let mut egress_len = 0;
    for (i, chunk) in warm_up.chunks(burst).chain(timed.chunks(burst)).enumerate() {
        for d in chunk {
            publisher_socket.send_to(d, worker_addr).expect("send to the worker");
        }
        let mut turn = || {
            udp.drain(0, &mut h.worker, Instant::now()).expect("worker read");
            udp.flush(&mut h.worker, &mut tcp);
        };
        if i * burst < WARM_UP {
            turn();
            receivers.drain();
            continue;
        }
        cost.time(turn);
        let (received, largest) = receivers.drain();
        cost.received += received;
        cost.sent += (chunk.len() * receivers.sockets.len()) as u64;
        egress_len = egress_len.max(largest);
    }
    assert_eq!(udp.send_drops, 0, "the kernel refused datagrams");
    (cost, egress_len)
}

/// The raw limit: `sendmmsg` of prebuilt `len`-byte datagrams, in the order Octo sends them (each
/// packet in goes to every receiver), as few calls as the kernel allows.
fn raw(receivers: &mut Receivers, burst: usize, len: usize) -> Cost {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    let addrs: Vec<SockaddrStorage> = receivers.addrs().into_iter().map(SockaddrStorage::from).collect();
    let payload = vec![0x5Au8; len];
    let per_turn = burst * addrs.len();
    let mut iovecs: Vec<libc::iovec> =
        (0..per_turn).map(|_| libc::iovec { iov_base: payload.as_ptr() as *mut _, iov_len: len }).collect();
    let mut headers: Vec<libc::mmsghdr> = (0..per_turn)
        .map(|i| {
            // SAFETY: all-zero is a valid mmsghdr.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            let addr = &addrs[i % addrs.len()];
            h.msg_hdr.msg_name = addr.as_ptr() as *mut _;
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = &mut iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let turns = usize::from(PACKETS) / burst;
    let mut cost = Cost::default();
    for turn in 0..turns {
        let mut send = || {
            let mut sent = 0;
            while sent < per_turn {
                let n = (per_turn - sent).min(RAW_BATCH);
                // SAFETY: headers[sent..sent + n] point at live addresses, iovecs and the payload.
                let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), headers[sent..].as_mut_ptr(), n as u32, 0) };
                assert!(r > 0, "sendmmsg: {}", std::io::Error::last_os_error());
                sent += r as usize;
            }
        };
        if turn * burst < WARM_UP {
            send();
            receivers.drain();
            continue;
        }
        cost.time(send);
        cost.received += receivers.drain().0;
        cost.sent += per_turn as u64;
    }
    cost
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![50];
    }
    // `burst=N`: packets read per loop turn (default: 1 and 4).
    let mut bursts: Vec<usize> = args.iter().filter_map(|a| a.strip_prefix("burst=")?.parse().ok()).collect();
    if bursts.is_empty() {
        bursts = vec![1, 4];
    }
    println!("egress to 127.0.0.1 receivers: CPU (user + system) of the sending thread per egress datagram");
    for consumers in counts {
        for burst in bursts.iter().copied() {
            // Best of a few rounds, the cases interleaved: the machine is shared, and load only ever
            // adds time.
            let (mut raw_best, mut plain_best, mut gso_best) = (None::<Cost>, None::<Cost>, None::<Cost>);
            let mut len = 0;
            for _ in 0..ROUNDS {
                let mut receivers = Receivers::bind(consumers);
                let (plain, l) = octo(&mut receivers, burst, false);
                let (gso, _) = octo(&mut receivers, burst, true);
                let raw = raw(&mut receivers, burst, l);
                len = l;
                for (best, cost) in [(&mut raw_best, raw), (&mut plain_best, plain), (&mut gso_best, gso)] {
                    if best.as_ref().is_none_or(|b| cost.cpu < b.cpu) {
                        *best = Some(cost);
                    }
                }
            }
            let (raw, plain, gso) =
                (raw_best.unwrap_or_default(), plain_best.unwrap_or_default(), gso_best.unwrap_or_default());
            let (raw_cpu, raw_wall) = raw.ns_per_datagram();
            println!(
                "consumers {consumers:>4}, {burst} packet(s) in per loop turn, {len}-byte datagrams: raw sendmmsg \
                 {raw_cpu:.0} ns CPU ({raw_wall:.0} wall); received {}/{}",
                raw.received, raw.sent
            );
            for (name, octo) in [("Octo, sendmmsg", plain), ("Octo, sendmmsg + GSO", gso)] {
                let (cpu, wall) = octo.ns_per_datagram();
                println!(
                    "    {name:<22} {cpu:.0} ns CPU ({wall:.0} wall), ratio to raw {:.2}; received {}/{}",
                    cpu / raw_cpu,
                    octo.received,
                    octo.sent
                );
            }
        }
    }
}
