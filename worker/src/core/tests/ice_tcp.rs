//! ICE-TCP through the core: a peer whose packets travel framed (RFC 4571) over a byte stream cut
//! at arbitrary points reaches the same ICE, DTLS, SRTP and forwarding as a UDP peer, and the two
//! protocols' tuples stay apart even where their addresses are equal.

use std::time::Duration;

use octo_ipc::*;

use crate::core::rtp::rtcp::{RtcpCompound, RtcpPacket, write_pli};
use crate::core::testing::{Harness, Peer, TCP_SOCKET, vp8_payload};

const VP8_PT: u8 = 96;
const VIDEO_SSRC: u32 = 1111;

#[test]
fn transports_offer_a_passive_tcp_candidate_below_the_udp_one_on_the_same_port() {
    let mut h = Harness::with_tcp();
    let t = h.create_transport(1);
    let [udp, tcp] = t.ice_candidates.as_slice() else { panic!("{:?}", t.ice_candidates) };
    assert_eq!((udp.protocol, udp.tcp_type.as_deref()), (Protocol::Udp, None));
    assert_eq!((tcp.protocol, tcp.tcp_type.as_deref()), (Protocol::Tcp, Some("passive")));
    assert_eq!(tcp.port, udp.port);
    assert_eq!(tcp.address, udp.address);
    assert!(tcp.priority < udp.priority, "UDP is preferred: {} vs {}", udp.priority, tcp.priority);
    assert_ne!(tcp.foundation, udp.foundation);
}

#[test]
fn a_subscriber_over_tcp_gets_media_from_a_publisher_over_udp_and_its_pli_gets_back() {
    let mut h = Harness::with_tcp();
    // The same address and port on both: only the protocol tells these two tuples apart.
    let mut publisher = Peer::new(50000);
    let mut sub = Peer::over_tcp(50000);
    let t = h.create_transport(1);
    h.connect(&mut publisher, &t);
    let t = h.create_transport(2);
    h.connect(&mut sub, &t);
    assert!(sub.srtp_recv.is_some(), "DTLS completed over the framed stream");

    let selected = |h: &Harness, id: TransportId| {
        h.notifications.iter().rev().find_map(|n| match n {
            Notification::Transport(t, TransportNotification::IceSelectedTupleChange { tuple: Some(tuple) })
                if *t == id =>
            {
                Some(*tuple)
            }
            _ => None,
        })
    };
    let tuple = selected(&h, sub.transport).expect("the TCP transport selected a tuple");
    assert_eq!(tuple.protocol, Protocol::Tcp);
    assert_eq!(tuple.remote_address, sub.addr);
    assert_eq!(selected(&h, publisher.transport).unwrap().protocol, Protocol::Udp);

    let producer = h.produce(&publisher, 100, MediaKind::Video);
    let consumer = h.consume(&sub, 200, producer);
    assert_eq!(h.request(Request::Consumer(consumer.id, ConsumerRequest::Resume)), Ok(Response::Ok));
    for seq in 1..=30u16 {
        publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, u32::from(seq) * 3000, &vp8_payload(seq == 1, seq as u8));
        h.pump(&mut [&mut publisher, &mut sub]);
    }
    assert_eq!(sub.undecryptable, 0);
    let seqs: Vec<u16> = sub.rtp.iter().map(|p| p.seq).collect();
    assert_eq!(seqs.len(), 30, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "continuous: {seqs:?}");
    assert!(sub.rtp.iter().enumerate().all(|(i, p)| p.payload == vp8_payload(i == 0, i as u8 + 1)));
    // Nothing leaked to the UDP peer at the same address.
    assert!(publisher.rtp.is_empty());

    let plis = |p: &Peer| {
        p.rtcp
            .iter()
            .flat_map(|c| RtcpCompound::iter(c).filter_map(Result::ok).collect::<Vec<_>>())
            .filter(|p| matches!(p, RtcpPacket::Pli(pli) if pli.media_ssrc == VIDEO_SSRC))
            .count()
    };
    // Past the keyframe-request throttle (resuming asked for one already).
    h.advance(Duration::from_secs(2), &mut [&mut publisher, &mut sub]);
    let plis_before = plis(&publisher);
    let ssrc = consumer.rtp_parameters.encodings[0].ssrc.unwrap();
    sub.send_rtcp(|b| write_pli(b, 9, ssrc).unwrap());
    h.pump(&mut [&mut publisher, &mut sub]);
    assert_eq!(plis(&publisher), plis_before + 1, "the PLI sent over TCP reached the publisher");
    let link = sub.tcp.as_ref().unwrap();
    assert!(link.down.bytes > 30 * 100 && link.up.bytes > 0);
    assert_eq!(sub.socket(), TCP_SOCKET);
}

#[test]
fn a_tcp_tuple_is_not_the_udp_tuple_of_the_same_addresses() {
    let mut h = Harness::with_tcp();
    let mut over_tcp = Peer::over_tcp(50000);
    let t = h.create_transport(1);
    h.connect(&mut over_tcp, &t);
    // SRTP from the same address over UDP was never validated there: not routed.
    let before = h.worker.counters().unknown_source;
    h.datagram(over_tcp.addr, &[0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 4, 87, 1, 2, 3, 4]);
    assert_eq!(h.worker.counters().unknown_source, before + 1);
}
