//! The forwarding path in the core, without sockets: one publisher's SRTP video packets in,
//! N consumers' SRTP packets out. Prints ns per packet per consumer.
//!
//! `cargo bench -p octo-worker --bench forward` (consumer counts 1, 10, 50), or name the counts:
//! `cargo bench -p octo-worker --bench forward -- 50`. The timed loop is its own function,
//! [`forward_timed`], so a profiler can collect exactly it
//! (`valgrind --tool=callgrind --toggle-collect='*forward_timed*' …`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use octo_worker::core::SocketId;
use octo_worker::core::testing::{Harness, Peer, vp8_stream};

/// Packets the publisher sends per run (the first 1,000 warm up); `packets=N` on the command line
/// changes it, e.g. for a shorter run under a profiler.
const PACKETS: u16 = 20_000;

fn run(consumers: usize, packets: u16) {
    let mut h = Harness::new();
    let mut publisher = Peer::new(50_000);
    let mut subs: Vec<Peer> = (0..consumers).map(|i| Peer::new(51_000 + i as u16)).collect();
    h.fan_out(&mut publisher, &mut subs);
    // Pre-encrypt the publisher's stream so only the worker is timed.
    let datagrams = vp8_stream(&mut publisher, packets, 1100);
    let mut buf = vec![0u8; 1600];
    // Warm up the buffer pool on the first 1000 packets, then time the rest.
    let (warm_up, timed) = datagrams.split_at(1000);
    feed(&mut h, publisher.addr, warm_up, &mut buf);
    let (forwarded, bytes, elapsed) = forward_timed(&mut h, publisher.addr, timed, &mut buf);
    let packets_in = timed.len() as u64;
    let per_out = elapsed.as_nanos() as f64 / forwarded as f64;
    println!(
        "consumers {consumers:>4}: {packets_in} packets in, {forwarded} out ({:.1} MB), {:.0} ns per packet in, \
         {per_out:.0} ns per packet per consumer, {:.2} M packets out/s",
        bytes as f64 / 1e6,
        elapsed.as_nanos() as f64 / packets_in as f64,
        1e3 / per_out
    );
}

/// The timed part, kept out of line so a profiler can collect exactly it (and no warm-up).
#[inline(never)]
fn forward_timed(h: &mut Harness, from: SocketAddr, datagrams: &[Vec<u8>], buf: &mut [u8]) -> (u64, u64, Duration) {
    let started = Instant::now();
    let (forwarded, bytes) = feed(h, from, datagrams, buf);
    (forwarded, bytes, started.elapsed())
}

/// Feeds `datagrams` to the worker and drains what it sends; returns datagrams and bytes out.
fn feed(h: &mut Harness, from: SocketAddr, datagrams: &[Vec<u8>], buf: &mut [u8]) -> (u64, u64) {
    let (mut forwarded, mut bytes) = (0u64, 0u64);
    for d in datagrams {
        buf[..d.len()].copy_from_slice(d);
        h.worker.handle_datagram(h.now, SocketId(0), from, buf, d.len());
        while let Some(t) = h.worker.poll_transmit() {
            forwarded += 1;
            bytes += t.buf.len() as u64;
            h.worker.recycle(black_box(t.buf));
        }
    }
    (forwarded, bytes)
}

fn main() {
    println!("forwarding in the core: 1100-byte VP8 payloads, SRTP AEAD_AES_128_GCM, no sockets");
    // `cargo bench` passes `--bench`; anything numeric is a consumer count.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let packets = args.iter().find_map(|a| a.strip_prefix("packets=")?.parse().ok()).unwrap_or(PACKETS).max(1001);
    if counts.is_empty() {
        counts = vec![1, 10, 50];
    }
    for consumers in counts {
        run(consumers, packets);
    }
}
