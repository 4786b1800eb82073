//! DataChannels through the worker in virtual time: SCTP over the worker's DTLS, DCEP, fan-out
//! from a data producer to data consumers, large messages, loss, partial reliability, garbage.

use std::time::Duration;

use octo_ipc::*;

use crate::core::sctp::{ChannelType, Reliability, SctpEvent, ppid};
use crate::core::testing::{Harness, Peer};
use crate::fuzzing::crc32c;

fn reliable(stream_id: u16, ordered: bool) -> SctpStreamParameters {
    SctpStreamParameters { stream_id, ordered, max_packet_life_time: None, max_retransmits: None }
}

/// A publisher with a data producer on stream 1 and two subscribers consuming it.
fn room(params: SctpStreamParameters) -> (Harness, Peer, Peer, Peer, Vec<DataConsumerData>) {
    let mut h = Harness::new();
    let (mut publisher, mut a, mut b) = (Peer::new(50000), Peer::new(50001), Peer::new(50002));
    for (i, peer) in [&mut publisher, &mut a, &mut b].into_iter().enumerate() {
        let t = h.create_sctp_transport(i as u128 + 1);
        h.connect(peer, &t);
    }
    h.advance(Duration::from_millis(200), &mut [&mut publisher, &mut a, &mut b]);
    for peer in [&publisher, &a, &b] {
        assert!(peer.sctp_events.contains(&SctpEvent::StateChanged(SctpState::Connected)), "{:?}", peer.sctp_events);
    }
    let dp = h.produce_data(&mut publisher, 10, params, "chat");
    let consumers = vec![h.consume_data(&a, 20, dp), h.consume_data(&b, 21, dp)];
    (h, publisher, a, b, consumers)
}

fn sctp_states(h: &Harness, t: TransportId) -> Vec<SctpState> {
    h.notifications
        .iter()
        .filter_map(|n| match n {
            Notification::Transport(id, TransportNotification::SctpStateChange { sctp_state }) if *id == t => {
                Some(*sctp_state)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn association_comes_up_over_the_workers_dtls() {
    let (h, publisher, ..) = room(reliable(1, true));
    assert_eq!(sctp_states(&h, publisher.transport), vec![SctpState::Connecting, SctpState::Connected]);
}

#[test]
fn a_transport_without_sctp_refuses_produce_data() {
    let mut h = Harness::new();
    let mut peer = Peer::new(50000);
    let t = h.create_transport(1);
    h.connect(&mut peer, &t);
    let resp = h.request(Request::Transport(
        t.id,
        TransportRequest::ProduceData {
            data_producer_id: DataProducerId(1),
            sctp_stream_parameters: reliable(1, true),
            label: String::new(),
            protocol: String::new(),
        },
    ));
    assert_eq!(resp.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[test]
fn dcep_open_is_acknowledged() {
    let (mut h, mut publisher, mut a, mut b, _) = room(reliable(1, true));
    let now = h.now;
    let channel = ChannelType { ordered: false, reliability: Reliability::MaxRetransmits(2) };
    publisher.sctp.as_mut().unwrap().open_channel(now, 7, channel, "reactions", "emoji").unwrap();
    h.advance(Duration::from_millis(100), &mut [&mut publisher, &mut a, &mut b]);
    assert!(publisher.sctp_events.contains(&SctpEvent::ChannelAcked(7)), "{:?}", publisher.sctp_events);
}

#[test]
fn messages_reach_every_data_consumer_string_binary_and_empty() {
    let (mut h, mut publisher, mut a, mut b, consumers) = room(reliable(1, true));
    let (sa, sb) = (consumers[0].sctp_stream_parameters.stream_id, consumers[1].sctp_stream_parameters.stream_id);
    assert_eq!(consumers[0].label, "chat");
    publisher.send_message(1, ppid::STRING, "hello 👋".as_bytes()).unwrap();
    publisher.send_message(1, ppid::BINARY, &[0, 1, 2, 255]).unwrap();
    publisher.send_message(1, ppid::STRING, b"").unwrap();
    publisher.send_message(1, ppid::BINARY, b"").unwrap();
    h.advance(Duration::from_millis(300), &mut [&mut publisher, &mut a, &mut b]);
    let expected = |s: u16| {
        vec![
            (s, ppid::STRING, "hello 👋".as_bytes().to_vec()),
            (s, ppid::BINARY, vec![0, 1, 2, 255]),
            (s, ppid::STRING_EMPTY, vec![0]),
            (s, ppid::BINARY_EMPTY, vec![0]),
        ]
    };
    assert_eq!(a.messages, expected(sa));
    assert_eq!(b.messages, expected(sb));
    assert!(publisher.messages.is_empty(), "no echo to the sender");
    match h.request(Request::DataProducer(DataProducerId(10), DataProducerRequest::GetStats)) {
        Ok(Response::DataProducerStats(s)) => assert_eq!((s.messages_received, s.label.as_str()), (4, "chat")),
        other => panic!("{other:?}"),
    }
    match h.request(Request::DataConsumer(consumers[1].id, DataConsumerRequest::GetStats)) {
        Ok(Response::DataConsumerStats(s)) => assert_eq!((s.messages_sent, s.messages_dropped), (4, 0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn closing_the_data_producer_closes_its_consumers() {
    let (mut h, mut publisher, mut a, mut b, consumers) = room(reliable(1, true));
    publisher.send_message(1, ppid::STRING, b"bye").unwrap();
    h.advance(Duration::from_millis(100), &mut [&mut publisher, &mut a, &mut b]);
    h.request(Request::DataProducer(DataProducerId(10), DataProducerRequest::Close)).unwrap();
    h.advance(Duration::from_millis(100), &mut [&mut publisher, &mut a, &mut b]);
    for c in &consumers {
        assert!(
            h.notifications.contains(&Notification::DataConsumer(c.id, DataConsumerNotification::DataProducerClosed))
        );
        let resp = h.request(Request::DataConsumer(c.id, DataConsumerRequest::GetStats));
        assert_eq!(resp.unwrap_err().code, ErrorCode::NotFound);
    }
    // The subscribers saw their streams reset.
    assert!(a.sctp_events.iter().any(|e| matches!(e, SctpEvent::StreamClosed(_))), "{:?}", a.sctp_events);
}

#[test]
fn a_200_kib_message_arrives_intact() {
    let (mut h, mut publisher, mut a, mut b, _) = room(reliable(1, true));
    let big: Vec<u8> = (0..200 * 1024u32).map(|i| (i * 7 + i / 256) as u8).collect();
    publisher.send_message(1, ppid::BINARY, &big).unwrap();
    h.advance(Duration::from_secs(3), &mut [&mut publisher, &mut a, &mut b]);
    assert_eq!(a.messages.len(), 1);
    assert!(a.messages[0].2 == big, "reassembled message differs");
    assert!(b.messages.first().is_some_and(|m| m.2 == big));
}

fn numbered(peer: &Peer) -> Vec<u32> {
    peer.messages.iter().map(|m| String::from_utf8_lossy(&m.2).parse().unwrap()).collect()
}

#[test]
fn ordered_delivery_survives_loss_in_order() {
    let (mut h, mut publisher, mut a, mut b, _) = room(reliable(1, true));
    publisher.drop_app_out = 4;
    for i in 0..40u32 {
        publisher.send_message(1, ppid::STRING, i.to_string().as_bytes()).unwrap();
        h.advance(Duration::from_millis(20), &mut [&mut publisher, &mut a, &mut b]);
    }
    h.advance(Duration::from_secs(10), &mut [&mut publisher, &mut a, &mut b]);
    assert_eq!(numbered(&a), (0..40).collect::<Vec<_>>());
    assert_eq!(numbered(&b), (0..40).collect::<Vec<_>>());
}

#[test]
fn unordered_delivery_survives_loss_out_of_order() {
    let (mut h, mut publisher, mut a, mut b, _) = room(reliable(1, false));
    publisher.drop_app_out = 4;
    for i in 0..40u32 {
        publisher.send_message(1, ppid::STRING, i.to_string().as_bytes()).unwrap();
        h.advance(Duration::from_millis(20), &mut [&mut publisher, &mut a, &mut b]);
    }
    h.advance(Duration::from_secs(10), &mut [&mut publisher, &mut a, &mut b]);
    let got = numbered(&a);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, (0..40).collect::<Vec<_>>(), "reliable: everything arrives");
    assert_ne!(got, sorted, "unordered: retransmitted messages arrive after later ones");
}

#[test]
fn max_retransmits_zero_drops_lost_messages_and_keeps_going() {
    let params =
        SctpStreamParameters { stream_id: 1, ordered: false, max_packet_life_time: None, max_retransmits: Some(0) };
    let (mut h, mut publisher, mut a, mut b, consumers) = room(params);
    assert_eq!(consumers[0].sctp_stream_parameters.max_retransmits, Some(0));
    publisher.drop_app_out = 3;
    for i in 0..30u32 {
        publisher.send_message(1, ppid::STRING, i.to_string().as_bytes()).unwrap();
        h.advance(Duration::from_millis(20), &mut [&mut publisher, &mut a, &mut b]);
    }
    h.advance(Duration::from_secs(10), &mut [&mut publisher, &mut a, &mut b]);
    let lossy = numbered(&a);
    assert!(lossy.len() < 30 && lossy.len() > 10, "{lossy:?}");
    // Without loss, the stream still delivers: nothing waits for the abandoned messages.
    publisher.drop_app_out = 0;
    publisher.send_message(1, ppid::STRING, b"100").unwrap();
    h.advance(Duration::from_millis(500), &mut [&mut publisher, &mut a, &mut b]);
    assert_eq!(numbered(&a).last(), Some(&100));
}

/// Ordered messages every 20 ms with a lifetime of `lifetime_ms`, while subscriber `a` loses every
/// third record the worker sends it (the worker's own association must abandon or retransmit) and
/// `b` loses nothing. Returns what `a` and `b` received.
fn lossy_subscriber_with_lifetime(lifetime_ms: u16) -> (Vec<u32>, Vec<u32>) {
    let params = SctpStreamParameters {
        stream_id: 1,
        ordered: true,
        max_packet_life_time: Some(lifetime_ms),
        max_retransmits: None,
    };
    let (mut h, mut publisher, mut a, mut b, consumers) = room(params);
    assert_eq!(consumers[0].sctp_stream_parameters.max_packet_life_time, Some(lifetime_ms));
    a.drop_app_in = 3;
    for i in 0..30u32 {
        publisher.send_message(1, ppid::STRING, i.to_string().as_bytes()).unwrap();
        h.advance(Duration::from_millis(20), &mut [&mut publisher, &mut a, &mut b]);
    }
    h.advance(Duration::from_secs(10), &mut [&mut publisher, &mut a, &mut b]);
    // Loss ends; a fresh message is delivered at once: the ordered stream does not wait for the
    // abandoned ones (the worker's FORWARD TSN let `a` skip them).
    a.drop_app_in = 0;
    publisher.send_message(1, ppid::STRING, b"100").unwrap();
    h.advance(Duration::from_millis(100), &mut [&mut publisher, &mut a, &mut b]);
    (numbered(&a), numbered(&b))
}

#[test]
fn max_packet_life_time_drops_stale_messages_on_a_lossy_leg_and_delivers_fresh_ones() {
    let all: Vec<u32> = (0..30).chain([100]).collect();
    // A lifetime shorter than any retransmission: what the worker's send to `a` lost is abandoned.
    let (short_a, short_b) = lossy_subscriber_with_lifetime(10);
    assert_eq!(short_b, all, "the loss-free subscriber gets everything");
    assert!(short_a.len() < 25 && short_a.len() > 10, "stale messages dropped: {short_a:?}");
    assert!(short_a.is_sorted(), "ordered: {short_a:?}");
    assert_eq!(short_a.last(), Some(&100), "the fresh message arrives: {short_a:?}");
    // The same loss with a lifetime long enough to retransmit: nothing is dropped, so the drops
    // above are the lifetime's doing.
    let (long_a, long_b) = lossy_subscriber_with_lifetime(60_000);
    assert_eq!(long_a, all);
    assert_eq!(long_b, all);
}

#[test]
fn malformed_chunks_and_bogus_dcep_never_panic_and_others_keep_talking() {
    let (mut h, mut publisher, mut a, mut b, _) = room(reliable(1, true));
    let other = h.produce_data(&mut a, 11, reliable(1, true), "other");
    let to_b = h.consume_data(&b, 22, other);
    // A real DATA packet with the association's verification tag, then mutated copies of it.
    publisher.send_message(1, ppid::STRING, b"template message").unwrap();
    let now = h.now;
    let template = publisher.sctp.as_mut().unwrap().poll_transmit(now).unwrap().to_vec();
    let mut rng = crate::core::rng::Rng::from_seed([3; 32]);
    for i in 0..400u32 {
        let mut p = template.clone();
        let len = p.len();
        for _ in 0..(1 + rng.next_u32() % 4) {
            let at = 12 + (rng.next_u32() as usize % (len - 12));
            p[at] = rng.next_u32() as u8;
        }
        if i % 5 == 0 {
            p.truncate(13 + rng.next_u32() as usize % (len - 13));
        }
        if i % 7 == 0 {
            p[12] = [0, 3, 6, 10, 13, 14, 130, 192, 255][i as usize % 9]; // chunk types, incl. unknown
        }
        p[8..12].copy_from_slice(&[0; 4]);
        let crc = crc32c(&p);
        p[8..12].copy_from_slice(&crc.to_le_bytes());
        publisher.dtls.as_mut().unwrap().send_application_data(now, &p).unwrap();
        if i % 50 == 0 {
            h.pump(&mut [&mut publisher, &mut a, &mut b]);
        }
    }
    // Bogus DCEP on the producer's stream and on a stranger stream; garbage without a valid CRC.
    for bogus in [&[][..], &[0x03, 0xff][..], &[0x03, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0][..], &[0x09][..]] {
        let _ = publisher.send_message(1, ppid::DCEP, bogus);
        let _ = publisher.send_message(9, ppid::DCEP, bogus);
    }
    publisher.dtls.as_mut().unwrap().send_application_data(now, &[0xde; 64]).unwrap();
    h.advance(Duration::from_secs(2), &mut [&mut publisher, &mut a, &mut b]);
    // The other association is untouched.
    a.send_message(1, ppid::STRING, b"still here").unwrap();
    h.advance(Duration::from_millis(300), &mut [&mut publisher, &mut a, &mut b]);
    let stream = to_b.sctp_stream_parameters.stream_id;
    assert!(b.messages.contains(&(stream, ppid::STRING, b"still here".to_vec())), "{:?}", b.messages);
}

#[test]
fn a_message_over_the_maximum_is_dropped_and_its_stream_reset() {
    let mut h = Harness::new();
    let (mut attacker, mut honest, mut sub) = (Peer::new(50000), Peer::new(50001), Peer::new(50002));
    attacker.sctp_max_message_size = 1024 * 1024;
    for (i, peer) in [&mut attacker, &mut honest, &mut sub].into_iter().enumerate() {
        let t = h.create_sctp_transport(i as u128 + 1);
        h.connect(peer, &t);
    }
    h.advance(Duration::from_millis(200), &mut [&mut attacker, &mut honest, &mut sub]);
    let bad = h.produce_data(&mut attacker, 10, reliable(1, true), "bad");
    let good = h.produce_data(&mut honest, 11, reliable(1, true), "good");
    h.consume_data(&sub, 20, bad);
    let good_stream = h.consume_data(&sub, 21, good).sctp_stream_parameters.stream_id;
    attacker.send_message(1, ppid::BINARY, &vec![7u8; 300 * 1024]).unwrap();
    h.advance(Duration::from_secs(3), &mut [&mut attacker, &mut honest, &mut sub]);
    assert!(sub.messages.is_empty(), "nothing over the maximum is forwarded");
    assert!(attacker.sctp_events.contains(&SctpEvent::StreamClosed(1)), "{:?}", attacker.sctp_events);
    honest.send_message(1, ppid::STRING, b"fine").unwrap();
    h.advance(Duration::from_millis(300), &mut [&mut attacker, &mut honest, &mut sub]);
    assert_eq!(sub.messages, vec![(good_stream, ppid::STRING, b"fine".to_vec())]);
}

#[test]
fn a_closed_data_consumers_stream_id_is_not_handed_out_again_at_once() {
    // Chromium refuses a negotiated channel on an id whose old channel is still closing, so a
    // peer leaving and rejoining must not make the others' next consumer reuse the id just reset.
    let (mut h, mut publisher, mut a, mut b, consumers) = room(reliable(1, true));
    let first = consumers[0].sctp_stream_parameters.stream_id;
    h.request(Request::DataConsumer(consumers[0].id, DataConsumerRequest::Close)).unwrap();
    let again = h.consume_data(&a, 30, DataProducerId(10)).sctp_stream_parameters.stream_id;
    assert_ne!(again, first, "the stream id just reset came back at once");
    publisher.send_message(1, ppid::STRING, b"after the swap").unwrap();
    h.advance(Duration::from_millis(300), &mut [&mut publisher, &mut a, &mut b]);
    assert!(a.messages.contains(&(again, ppid::STRING, b"after the swap".to_vec())), "{:?}", a.messages);
}

fn tapped(h: &Harness, id: DataProducerId) -> Vec<(u32, Vec<u8>)> {
    h.notifications
        .iter()
        .filter_map(|n| match n {
            Notification::DataProducer(d, DataProducerNotification::Message { ppid, payload }) if *d == id => {
                Some((*ppid, payload.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_tapped_data_producer_hands_its_text_to_the_controller_within_bounds() {
    let (mut h, mut publisher, mut a, mut b, _) = room(reliable(1, true));
    let dp = DataProducerId(10);
    // Untapped: nothing reaches the controller.
    publisher.send_message(1, ppid::STRING, b"before").unwrap();
    h.advance(Duration::from_millis(100), &mut [&mut publisher, &mut a, &mut b]);
    assert!(tapped(&h, dp).is_empty());

    h.request(Request::DataProducer(dp, DataProducerRequest::SetTap { enabled: true })).unwrap();
    publisher.send_message(1, ppid::STRING, br#"{"type":"chat","text":"hi"}"#).unwrap();
    publisher.send_message(1, ppid::BINARY, &[1, 2, 3]).unwrap();
    publisher.send_message(1, ppid::STRING, &[b'a'; 5000]).unwrap();
    h.advance(Duration::from_millis(200), &mut [&mut publisher, &mut a, &mut b]);
    assert_eq!(tapped(&h, dp), vec![(ppid::STRING, br#"{"type":"chat","text":"hi"}"#.to_vec())]);
    // A flood: the burst gets through, the rest is counted, and the subscribers still get it all.
    for i in 0..100u32 {
        publisher.send_message(1, ppid::STRING, i.to_string().as_bytes()).unwrap();
    }
    h.advance(Duration::from_millis(300), &mut [&mut publisher, &mut a, &mut b]);
    let got = tapped(&h, dp).len();
    assert!((40..=50).contains(&got), "{got} tapped of a flood of 100");
    assert_eq!(a.messages.len(), 104, "the subscribers lost messages to the tap");
    match h.request(Request::DataProducer(dp, DataProducerRequest::GetStats)) {
        Ok(Response::DataProducerStats(s)) => {
            assert_eq!(s.tap_messages as usize, got);
            assert_eq!(s.tap_messages + s.tap_dropped, 103, "{s:?}");
        }
        other => panic!("{other:?}"),
    }
    // Off again: nothing more.
    h.request(Request::DataProducer(dp, DataProducerRequest::SetTap { enabled: false })).unwrap();
    publisher.send_message(1, ppid::STRING, b"after").unwrap();
    h.advance(Duration::from_millis(100), &mut [&mut publisher, &mut a, &mut b]);
    assert_eq!(tapped(&h, dp).len(), got);
    let unknown = h.request(Request::DataProducer(DataProducerId(999), DataProducerRequest::SetTap { enabled: true }));
    assert_eq!(unknown.unwrap_err().code, ErrorCode::NotFound);
}
