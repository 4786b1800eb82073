//! Hostile datagrams: counted and dropped, never a panic, and nobody else is disturbed.

use std::net::SocketAddr;

use octo_ipc::*;

use crate::core::rng::Rng;
use crate::core::testing::{Harness, vp8_payload};

#[test]
fn garbage_of_every_kind_is_dropped_and_media_keeps_flowing() {
    let mut h = Harness::new();
    let (mut publisher, mut sub) = h.publisher_and_subscriber();
    let producer = h.produce(&publisher, 100, MediaKind::Video);
    let consumer = h.consume(&sub, 200, producer);
    h.request(Request::Consumer(consumer.id, ConsumerRequest::Resume)).unwrap();

    let mut rng = Rng::from_seed([9; 32]);
    let stranger: SocketAddr = "127.0.0.1:60000".parse().unwrap();
    for i in 0..3000u32 {
        let len = (rng.next_u32() % 1400) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        // Aim at every demultiplexing branch: STUN, DTLS and RTP/RTCP first bytes.
        if let Some(first) = data.first_mut() {
            *first = [0x00, 0x01, 22, 23, 0x80, 0x90, 0x81, 0xff][i as usize % 8];
        }
        if data.len() > 1 && i % 3 == 0 {
            data[1] = 200; // looks like RTCP
        }
        // From strangers and from the validated peers themselves.
        let from = [stranger, publisher.addr, sub.addr][i as usize % 3];
        h.datagram(from, &data);
    }
    // A STUN check with a wrong password, a DTLS record from an unvalidated address, SRTP with a
    // broken tag, RTCP whose lengths lie.
    publisher.send_binding(true, "wrong-password-wrong-password-00");
    h.datagram(stranger, &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    publisher.send_rtp(96, 1111, 500, 0, &vp8_payload(true, 1));
    let mut forged = publisher.take_outgoing();
    let last = forged.last_mut().unwrap();
    let n = last.len();
    last[n - 1] ^= 0xff;
    for d in forged {
        h.datagram(publisher.addr, &d);
    }
    publisher.send_rtcp(|b| {
        b[..8].copy_from_slice(&[0x81, 201, 0xff, 0xff, 0, 0, 0, 1]);
        8
    });
    publisher.send_rtcp(|b| {
        b[..12].copy_from_slice(&[0x9f, 205, 0, 2, 0, 0, 0, 1, 0, 0, 4, 87]);
        12
    });
    h.pump(&mut [&mut publisher, &mut sub]);
    let counters = h.worker.counters();
    assert!(counters.unknown_source > 0 && counters.malformed > 0, "{counters:?}");
    match h.request(Request::Transport(publisher.transport, TransportRequest::GetStats)) {
        Ok(Response::TransportStats(s)) => assert!(s.packets_dropped > 0),
        other => panic!("{other:?}"),
    }
    assert!(sub.rtp.is_empty(), "nothing forged reached the subscriber");

    // Media still flows.
    for seq in 1000..1010u16 {
        publisher.send_rtp(96, 1111, seq, u32::from(seq) * 3000, &vp8_payload(seq == 1000, 7));
        h.pump(&mut [&mut publisher, &mut sub]);
    }
    assert_eq!(sub.rtp.len(), 10);
    assert_eq!(sub.undecryptable, 0);
}
