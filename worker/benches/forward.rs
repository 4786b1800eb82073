//! The forwarding path in the core, without sockets: one publisher's SRTP video packets in,
//! N consumers' SRTP packets out. Prints ns per packet per consumer.
//!
//! `cargo bench -p octo-worker --bench forward`

use std::hint::black_box;
use std::time::Instant;

use octo_ipc::{ConsumerRequest, MediaKind, Request};
use octo_worker::core::SocketId;
use octo_worker::core::testing::{Harness, Peer, vp8_payload};

const PACKETS: u16 = 20_000;

fn run(consumers: usize) {
    let mut h = Harness::new();
    let mut publisher = Peer::new(50_000);
    let t = h.create_transport(1);
    h.connect(&mut publisher, &t);
    let producer = h.produce(&publisher, 100, MediaKind::Video);
    let mut subs: Vec<Peer> = (0..consumers).map(|i| Peer::new(51_000 + i as u16)).collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        let t = h.create_transport(1000 + i as u128);
        h.connect(sub, &t);
        let c = h.consume(sub, 5000 + i as u128, producer);
        h.request(Request::Consumer(c.id, ConsumerRequest::Resume)).unwrap();
    }
    // Pre-encrypt the publisher's stream so only the worker is timed.
    let payload_key = vp8_payload(true, 1);
    let payload = {
        let mut p = vp8_payload(false, 2);
        p.resize(1100, 0xAB);
        p
    };
    let mut datagrams = Vec::with_capacity(usize::from(PACKETS));
    for seq in 0..PACKETS {
        let p = if seq == 0 { &payload_key } else { &payload };
        publisher.send_rtp(96, 1111, seq, u32::from(seq) * 3000, p);
        datagrams.extend(publisher.take_outgoing());
    }
    let mut buf = vec![0u8; 1600];
    let mut forwarded = 0u64;
    let mut bytes = 0u64;
    // Warm up the buffer pool on the first 1000 packets, then time the rest.
    let mut started = None;
    for (i, d) in datagrams.iter().enumerate() {
        if i == 1000 {
            forwarded = 0;
            bytes = 0;
            started = Some(Instant::now());
        }
        buf[..d.len()].copy_from_slice(d);
        h.worker.handle_datagram(h.now, SocketId(0), publisher.addr, &mut buf, d.len());
        while let Some(t) = h.worker.poll_transmit() {
            forwarded += 1;
            bytes += t.buf.len() as u64;
            h.worker.recycle(black_box(t.buf));
        }
    }
    let elapsed = started.expect("enough packets").elapsed();
    let packets_in = u64::from(PACKETS) - 1000;
    let per_out = elapsed.as_nanos() as f64 / forwarded as f64;
    println!(
        "consumers {consumers:>4}: {packets_in} packets in, {forwarded} out ({:.1} MB), {:.0} ns per packet in, \
         {per_out:.0} ns per packet per consumer, {:.2} M packets out/s",
        bytes as f64 / 1e6,
        elapsed.as_nanos() as f64 / packets_in as f64,
        1e3 / per_out
    );
}

fn main() {
    println!("forwarding in the core: 1100-byte VP8 payloads, SRTP AEAD_AES_128_GCM, no sockets");
    for consumers in [1, 10, 50] {
        run(consumers);
    }
}
