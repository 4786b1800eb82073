//! Two worker cores wired by a pipe transport in memory: a publisher on worker A, a subscriber on A
//! and one on B, whose copy of the producer comes across the pipe.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use octo_ipc::*;

use crate::core::forward::is_rtcp;
use crate::core::rtp::rtcp::{RtcpCompound, RtcpPacket, write_nack, write_pli};
use crate::core::sctp::ppid;
use crate::core::testing::{Harness, Peer, vp8_payload};

const VP8_PT: u8 = 96;
const VIDEO_SSRC: u32 = 1111;
const A_ADDR: &str = "127.0.0.1:40000";
const B_ADDR: &str = "127.0.0.2:40000";
const PIPE_A: TransportId = TransportId(900);
const PIPE_B: TransportId = TransportId(901);
const PRODUCER: ProducerId = ProducerId(100);

/// The two workers, their peers, and what crossed the pipe.
struct Pair {
    a: Harness,
    b: Harness,
    publisher: Peer,
    sub_a: Peer,
    sub_b: Peer,
    consumer_a: ConsumerData,
    consumer_b: ConsumerData,
    /// Every datagram that went A → B over the pipe, as sent.
    pipe_a_to_b: Vec<Vec<u8>>,
    /// Drop the datagrams A → B whose position in `pipe_a_to_b` is in this list.
    drop_a_to_b: Vec<usize>,
}

/// RTP, not RTCP (nor the pipe's SCTP).
fn is_rtp(d: &[u8]) -> bool {
    matches!(d.first(), Some(128..=191)) && !is_rtcp(d)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Creates and cross-connects the two ends of a pipe.
fn wire_pipe(a: &mut Harness, b: &mut Harness, srtp: bool) {
    let create = |h: &mut Harness, id| match h
        .request(Request::Worker(WorkerRequest::CreatePipeTransport { transport_id: id, srtp }))
    {
        Ok(Response::PipeTransportCreated(data)) => data,
        other => panic!("{other:?}"),
    };
    let (end_a, end_b) = (create(a, PIPE_A), create(b, PIPE_B));
    assert_eq!(end_a.srtp_parameters.is_some(), srtp);
    let connect = |h: &mut Harness, id, far: &PipeTransportData| {
        h.request(Request::Transport(
            id,
            TransportRequest::ConnectPipe {
                remote: far.local,
                srtp_parameters: far.srtp_parameters.clone(),
                sctp_client: None,
            },
        ))
    };
    assert_eq!(connect(a, PIPE_A, &end_b), Ok(Response::Ok));
    assert_eq!(connect(b, PIPE_B, &end_a), Ok(Response::Ok));
}

/// Pipes `producer` from A to B: the consumer on A's end, the copy on B's.
fn pipe_producer(a: &mut Harness, b: &mut Harness, producer: ProducerId, consumer: u128) -> PipeConsumerData {
    let data = match a.request(Request::Transport(
        PIPE_A,
        TransportRequest::ConsumeToPipe { consumer_id: ConsumerId(consumer), producer_id: producer },
    )) {
        Ok(Response::PipeConsumerCreated(data)) => data,
        other => panic!("{other:?}"),
    };
    let router_id = b.router;
    let resp = b.request(Request::Transport(
        PIPE_B,
        TransportRequest::ProduceFromPipe {
            producer_id: producer,
            router_id,
            kind: data.kind,
            rtp_parameters: data.rtp_parameters.clone(),
            paused: data.producer_paused,
        },
    ));
    assert!(matches!(resp, Ok(Response::ProducerCreated { .. })), "{resp:?}");
    data
}

impl Pair {
    fn new(srtp: bool) -> Self {
        Self::with(srtp, false)
    }

    /// With `sctp`, every peer's transport also offers DataChannels.
    fn with(srtp: bool, sctp: bool) -> Self {
        let now = Instant::now();
        let mut a = Harness::at(addr(A_ADDR), 7, now);
        let mut b = Harness::at(addr(B_ADDR), 8, now);
        let (mut publisher, mut sub_a, mut sub_b) = (Peer::new(50000), Peer::new(50001), Peer::new(50002));
        let create = |h: &mut Harness, id| if sctp { h.create_sctp_transport(id) } else { h.create_transport(id) };
        let t = create(&mut a, 1);
        a.connect(&mut publisher, &t);
        let t = create(&mut a, 2);
        a.connect(&mut sub_a, &t);
        let t = create(&mut b, 3);
        b.connect(&mut sub_b, &t);
        wire_pipe(&mut a, &mut b, srtp);
        let producer = a.produce(&publisher, PRODUCER.0, MediaKind::Video);
        let consumer_a = a.consume(&sub_a, 200, producer);
        pipe_producer(&mut a, &mut b, producer, 300);
        let consumer_b = b.consume(&sub_b, 400, producer);
        let mut pair = Self {
            a,
            b,
            publisher,
            sub_a,
            sub_b,
            consumer_a,
            consumer_b,
            pipe_a_to_b: Vec::new(),
            drop_a_to_b: Vec::new(),
        };
        for (h, id) in [(&mut pair.a, ConsumerId(200)), (&mut pair.b, ConsumerId(400))] {
            assert_eq!(h.request(Request::Consumer(id, ConsumerRequest::Resume)), Ok(Response::Ok));
        }
        pair.pump();
        pair
    }

    /// Moves datagrams between the peers, the two workers and the pipe until nothing moves.
    fn pump(&mut self) {
        let (a_addr, b_addr) = (addr(A_ADDR), addr(B_ADDR));
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.a.worker.poll_transmit() {
                moved = true;
                if t.to == b_addr {
                    let index = self.pipe_a_to_b.len();
                    self.pipe_a_to_b.push(t.buf.clone());
                    if !self.drop_a_to_b.contains(&index) {
                        self.b.datagram(a_addr, &t.buf);
                    }
                } else if let Some(peer) = [&mut self.publisher, &mut self.sub_a].into_iter().find(|p| p.addr == t.to) {
                    peer.receive(self.a.now, &t.buf);
                }
                self.a.worker.recycle(t.buf);
            }
            while let Some(t) = self.b.worker.poll_transmit() {
                moved = true;
                if t.to == a_addr {
                    self.a.datagram(b_addr, &t.buf);
                } else if t.to == self.sub_b.addr {
                    self.sub_b.receive(self.b.now, &t.buf);
                }
                self.b.worker.recycle(t.buf);
            }
            for peer in [&mut self.publisher, &mut self.sub_a] {
                for d in peer.take_outgoing() {
                    moved = true;
                    self.a.datagram(peer.addr, &d);
                }
            }
            for d in self.sub_b.take_outgoing() {
                moved = true;
                self.b.datagram(self.sub_b.addr, &d);
            }
            if !moved {
                return;
            }
        }
    }

    /// Advances both workers' clocks together in 20 ms steps.
    fn advance(&mut self, by: Duration) {
        let end = self.a.now + by;
        while self.a.now < end {
            let now = self.a.now + Duration::from_millis(20);
            for h in [&mut self.a, &mut self.b] {
                h.now = now;
                if h.worker.poll_timeout().is_some_and(|t| t <= now) {
                    h.worker.handle_timeout(now);
                }
            }
            for p in [&mut self.publisher, &mut self.sub_a, &mut self.sub_b] {
                p.tick(now);
            }
            self.pump();
        }
    }

    fn send_video(&mut self, seq: u16, keyframe: bool) {
        self.publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, u32::from(seq) * 3000, &vp8_payload(keyframe, seq as u8));
        self.pump();
    }

    fn publisher_plis(&self) -> usize {
        self.publisher
            .rtcp
            .iter()
            .flat_map(|p| RtcpCompound::iter(p).filter_map(Result::ok).collect::<Vec<_>>())
            .filter(|p| matches!(p, RtcpPacket::Pli(pli) if pli.media_ssrc == VIDEO_SSRC))
            .count()
    }

    fn metrics(h: &mut Harness) -> WorkerMetrics {
        match h.request(Request::Worker(WorkerRequest::GetMetrics)) {
            Ok(Response::WorkerMetrics(m)) => m,
            other => panic!("{other:?}"),
        }
    }
}

/// Both subscribers got `first..=last` as their consumer describes, with payloads as sent and
/// sequence numbers without a gap.
fn assert_received_all(peer: &Peer, consumer: &ConsumerData, first: u16, last: u16) {
    let media: Vec<_> =
        peer.rtp.iter().filter(|r| r.ssrc == consumer.rtp_parameters.encodings[0].ssrc.unwrap()).collect();
    assert_eq!(media.len(), usize::from(last - first + 1), "packets of {:?}", consumer.id);
    for (i, r) in media.iter().enumerate() {
        let seq = first + i as u16;
        assert_eq!(r.payload, vp8_payload(seq == first, seq as u8), "payload of packet {i}");
        assert_eq!(r.seq, media[0].seq.wrapping_add(i as u16), "continuous numbering");
        assert_eq!(r.timestamp.wrapping_sub(media[0].timestamp), u32::from(seq - first) * 3000);
        assert_eq!(r.payload_type, consumer.rtp_parameters.codecs[0].payload_type);
        assert_eq!(r.mid.as_deref(), consumer.rtp_parameters.mid.as_deref().map(str::as_bytes));
    }
}

fn media_crosses(srtp: bool) {
    let mut pair = Pair::new(srtp);
    pair.send_video(10, true);
    for seq in 11..=40 {
        pair.send_video(seq, false);
    }
    assert_received_all(&pair.sub_a, &pair.consumer_a, 10, 40);
    assert_received_all(&pair.sub_b, &pair.consumer_b, 10, 40);
    // The pipe carried the origin's numbering: the router's SSRC and the publisher's sequence numbers.
    let rtp: Vec<&Vec<u8>> = pair.pipe_a_to_b.iter().filter(|d| is_rtp(d)).collect();
    assert_eq!(rtp.len(), 31, "one datagram per packet across the pipe");
    assert_eq!(u16::from_be_bytes([rtp[0][2], rtp[0][3]]), 10);
    // In the clear the payload is readable on the wire; with SRTP it is not.
    let marker = [25u8; 100];
    let readable = pair.pipe_a_to_b.iter().any(|d| d.windows(100).any(|w| w == marker));
    assert_eq!(readable, !srtp);
    let (ma, mb) = (Pair::metrics(&mut pair.a), Pair::metrics(&mut pair.b));
    assert_eq!((ma.pipe_transports, ma.pipe_consumers, ma.pipe_producers), (1, 1, 0));
    assert_eq!((mb.pipe_transports, mb.pipe_consumers, mb.pipe_producers), (1, 0, 1));
    assert_eq!((ma.transports, ma.producers, ma.consumers), (2, 1, 1), "pipes are not counted as clients' objects");
    assert_eq!((mb.transports, mb.producers, mb.consumers), (1, 0, 1));
    assert!(ma.pipe_bytes_sent > 31 * 100 && mb.pipe_bytes_received == ma.pipe_bytes_sent);
    assert_eq!(mb.srtp_failures, 0);
}

#[test]
fn rtp_from_a_producer_on_a_reaches_a_consumer_on_b_intact_and_continuous() {
    media_crosses(false);
}

#[test]
fn srtp_on_the_pipe_carries_the_same_media_encrypted() {
    media_crosses(true);
}

#[test]
fn a_tampered_pipe_packet_fails_srtp_and_is_not_forwarded() {
    let mut pair = Pair::new(true);
    pair.send_video(10, true);
    let mut tampered = pair.pipe_a_to_b.iter().rfind(|d| is_rtp(d)).unwrap().clone();
    tampered[2..4].copy_from_slice(&11u16.to_be_bytes());
    let before = (Pair::metrics(&mut pair.b).srtp_failures, pair.sub_b.rtp.len());
    pair.b.datagram(addr(A_ADDR), &tampered);
    pair.pump();
    assert_eq!((Pair::metrics(&mut pair.b).srtp_failures, pair.sub_b.rtp.len()), (before.0 + 1, before.1));
}

#[test]
fn the_pipe_is_served_before_the_local_subscribers() {
    // The pipe consumer was created after sub_a's consumer, yet a packet crosses the pipe first, so
    // B's fan-out runs beside A's rather than after A's last viewer.
    let mut pair = Pair::new(false);
    pair.publisher.send_rtp(VP8_PT, VIDEO_SSRC, 10, 30_000, &vp8_payload(true, 10));
    for d in pair.publisher.take_outgoing() {
        pair.a.datagram(pair.publisher.addr, &d);
    }
    let mut rtp_to = Vec::new();
    while let Some(t) = pair.a.worker.poll_transmit() {
        if is_rtp(&t.buf) {
            rtp_to.push(t.to);
        }
        pair.a.worker.recycle(t.buf);
    }
    assert_eq!(rtp_to, vec![addr(B_ADDR), pair.sub_a.addr]);
}

#[test]
fn a_nack_from_b_is_answered_from_bs_buffer_and_a_pipe_loss_from_as() {
    let mut pair = Pair::new(false);
    pair.send_video(10, true);
    for seq in 11..=20 {
        pair.send_video(seq, false);
    }
    // B's subscriber NACKs a packet it has: B's copy of the producer answers from its own buffer.
    let ssrc = pair.consumer_b.rtp_parameters.encodings[0].ssrc.unwrap();
    let rtx_ssrc = pair.consumer_b.rtp_parameters.encodings[0].rtx.unwrap().ssrc;
    let original = pair.sub_b.rtp.iter().find(|r| r.ssrc == ssrc).unwrap().clone();
    let crossed = pair.pipe_a_to_b.len();
    pair.sub_b.send_rtcp(|b| write_nack(b, 0x5555, ssrc, &[original.seq]).unwrap());
    pair.pump();
    let rtx = pair.sub_b.rtp.last().unwrap().clone();
    assert_eq!(rtx.ssrc, rtx_ssrc);
    assert_eq!(rtx.payload[..2], original.seq.to_be_bytes());
    assert_eq!(rtx.payload[2..], original.payload[..]);
    assert_eq!(pair.pipe_a_to_b.len(), crossed, "answered on B, nothing asked of A");

    // A packet lost on the pipe: B's copy NACKs A, A's pipe consumer resends it, B forwards it.
    pair.drop_a_to_b.push(pair.pipe_a_to_b.len());
    pair.send_video(21, false);
    for seq in 22..=24 {
        pair.send_video(seq, false);
    }
    let seqs = |peer: &Peer| peer.rtp.iter().filter(|r| r.ssrc == ssrc).map(|r| r.payload.clone()).collect::<Vec<_>>();
    assert!(!seqs(&pair.sub_b).contains(&vp8_payload(false, 21)), "lost on the pipe");
    pair.advance(Duration::from_millis(200));
    let a_nacks = Pair::metrics(&mut pair.a).nacks_received;
    assert!(a_nacks >= 1, "B asked A across the pipe");
    assert!(seqs(&pair.sub_b).contains(&vp8_payload(false, 21)), "repaired through A");
}

#[test]
fn a_pli_from_b_reaches_the_publisher_on_a() {
    let mut pair = Pair::new(false);
    pair.send_video(10, true);
    pair.advance(Duration::from_millis(600));
    let before = pair.publisher_plis();
    let ssrc = pair.consumer_b.rtp_parameters.encodings[0].ssrc.unwrap();
    pair.sub_b.send_rtcp(|b| write_pli(b, 0x5555, ssrc).unwrap());
    pair.pump();
    assert_eq!(pair.publisher_plis(), before + 1);
}

#[test]
fn pausing_or_closing_the_origin_reaches_the_copy() {
    let mut pair = Pair::new(false);
    pair.send_video(10, true);
    assert_eq!(pair.a.request(Request::Producer(PRODUCER, ProducerRequest::Pause)), Ok(Response::Ok));
    let crossed = pair.pipe_a_to_b.len();
    pair.send_video(11, false);
    assert_eq!(pair.pipe_a_to_b.len(), crossed, "a paused producer's pipe consumer sends nothing");
    assert_eq!(pair.a.request(Request::Producer(PRODUCER, ProducerRequest::Resume)), Ok(Response::Ok));
    pair.send_video(12, true);
    assert!(pair.pipe_a_to_b.len() > crossed);
    // The controller closes the copy when the origin closes; B's consumers hear of it.
    assert_eq!(pair.a.request(Request::Producer(PRODUCER, ProducerRequest::Close)), Ok(Response::Ok));
    assert_eq!(Pair::metrics(&mut pair.a).pipe_consumers, 0, "the pipe consumer closed with its producer");
    assert_eq!(pair.b.request(Request::Producer(PRODUCER, ProducerRequest::Close)), Ok(Response::Ok));
    assert!(
        pair.b.notifications.contains(&Notification::Consumer(ConsumerId(400), ConsumerNotification::ProducerClosed))
    );
}

#[test]
fn closing_a_pipe_or_the_far_router_closes_the_piped_copies() {
    let mut pair = Pair::new(false);
    assert_eq!(pair.b.request(Request::Transport(PIPE_B, TransportRequest::Close)), Ok(Response::Ok));
    assert!(
        pair.b.notifications.contains(&Notification::Consumer(ConsumerId(400), ConsumerNotification::ProducerClosed))
    );
    let m = Pair::metrics(&mut pair.b);
    assert_eq!((m.pipe_transports, m.pipe_producers), (0, 0));

    let mut pair = Pair::new(false);
    assert_eq!(pair.b.request(Request::Router(RouterId(1), RouterRequest::Close)), Ok(Response::Ok));
    let m = Pair::metrics(&mut pair.b);
    assert_eq!((m.pipe_transports, m.pipe_producers), (1, 0), "the pipe stays for other rooms");
}

#[test]
fn garbage_on_the_pipe_is_counted_and_dropped_while_media_flows() {
    let mut pair = Pair::new(false);
    pair.send_video(10, true);
    let before = Pair::metrics(&mut pair.b).packets_dropped;
    let a = addr(A_ADDR);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80],
        vec![0x80, VP8_PT, 0, 1],
        vec![0x80, VP8_PT, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3],
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
        vec![0x81, 201, 0, 7, 1, 2, 3],
        vec![0x80, 200, 0xff, 0xff, 0, 0, 0, 1],
        vec![0xff; 1400],
        vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for g in &garbage {
        pair.b.datagram(a, g);
    }
    let after = Pair::metrics(&mut pair.b).packets_dropped;
    assert_eq!(after, before + garbage.len() as u64, "every one counted as a drop");
    // The same bytes from another address never reach the pipe.
    for g in &garbage {
        pair.b.datagram(addr("127.0.0.3:40000"), g);
    }
    assert_eq!(Pair::metrics(&mut pair.b).packets_dropped, after + garbage.len() as u64);
    for seq in 11..=15 {
        pair.send_video(seq, false);
    }
    assert_received_all(&pair.sub_b, &pair.consumer_b, 10, 15);
}

#[test]
fn pipe_requests_are_checked() {
    let now = Instant::now();
    let mut a = Harness::at(addr(A_ADDR), 7, now);
    let mut b = Harness::at(addr(B_ADDR), 8, now);
    wire_pipe(&mut a, &mut b, false);
    let code = |r: Result<Response, RequestError>| r.map_err(|e| e.code);
    let reconnect = TransportRequest::ConnectPipe { remote: addr(B_ADDR), srtp_parameters: None, sctp_client: None };
    assert_eq!(code(a.request(Request::Transport(PIPE_A, reconnect))), Err(ErrorCode::InvalidState));
    let t = a.create_transport(5);
    let on_webrtc = TransportRequest::ConsumeToPipe { consumer_id: ConsumerId(1), producer_id: PRODUCER };
    assert_eq!(code(a.request(Request::Transport(t.id, on_webrtc))), Err(ErrorCode::InvalidRequest));
    let dtls = TransportRequest::Connect { dtls_parameters: DtlsParameters { role: None, fingerprints: vec![] } };
    assert_eq!(code(a.request(Request::Transport(PIPE_A, dtls))), Err(ErrorCode::InvalidRequest));
    assert_eq!(
        code(a.request(Request::Transport(PIPE_A, TransportRequest::RestartIce))),
        Err(ErrorCode::InvalidRequest)
    );
    let unknown = TransportRequest::ConsumeToPipe { consumer_id: ConsumerId(1), producer_id: PRODUCER };
    assert_eq!(code(a.request(Request::Transport(PIPE_A, unknown))), Err(ErrorCode::NotFound));
    // A second pipe to the same far end would make its datagrams ambiguous.
    let create = WorkerRequest::CreatePipeTransport { transport_id: TransportId(902), srtp: true };
    assert!(matches!(a.request(Request::Worker(create)), Ok(Response::PipeTransportCreated(_))));
    let short_key = SrtpParameters { crypto_suite: SrtpCryptoSuite::AeadAes128Gcm, key: vec![1; 10] };
    let bad =
        TransportRequest::ConnectPipe { remote: addr(B_ADDR), srtp_parameters: Some(short_key), sctp_client: None };
    assert_eq!(code(a.request(Request::Transport(TransportId(902), bad))), Err(ErrorCode::InvalidRequest));
    let missing = TransportRequest::ConnectPipe { remote: addr(B_ADDR), srtp_parameters: None, sctp_client: None };
    assert_eq!(code(a.request(Request::Transport(TransportId(902), missing))), Err(ErrorCode::InvalidRequest));
    let key = SrtpParameters { crypto_suite: SrtpCryptoSuite::AeadAes128Gcm, key: vec![1; 28] };
    let same =
        TransportRequest::ConnectPipe { remote: addr(B_ADDR), srtp_parameters: Some(key.clone()), sctp_client: None };
    assert_eq!(code(a.request(Request::Transport(TransportId(902), same))), Err(ErrorCode::AlreadyExists));
    let nowhere =
        TransportRequest::ConnectPipe { remote: addr("0.0.0.0:40000"), srtp_parameters: Some(key), sctp_client: None };
    assert_eq!(code(a.request(Request::Transport(TransportId(902), nowhere))), Err(ErrorCode::InvalidRequest));
    // A copy needs a router and SSRCs, and its id must be new.
    let params = crate::core::testing::chrome_vp8_parameters();
    let no_router = TransportRequest::ProduceFromPipe {
        producer_id: PRODUCER,
        router_id: RouterId(77),
        kind: MediaKind::Video,
        rtp_parameters: params.clone(),
        paused: false,
    };
    assert_eq!(code(b.request(Request::Transport(PIPE_B, no_router))), Err(ErrorCode::NotFound));
    let mut no_ssrc = params;
    no_ssrc.encodings[0].ssrc = None;
    no_ssrc.encodings[0].rid = Some("r0".into());
    let req = TransportRequest::ProduceFromPipe {
        producer_id: PRODUCER,
        router_id: RouterId(1),
        kind: MediaKind::Video,
        rtp_parameters: no_ssrc,
        paused: false,
    };
    assert_eq!(code(b.request(Request::Transport(PIPE_B, req))), Err(ErrorCode::InvalidRequest));
}

#[test]
fn data_channel_messages_cross_the_pipe_on_its_sctp_association() {
    let mut pair = Pair::with(false, true);
    pair.advance(Duration::from_millis(300));
    for h in [&pair.a, &pair.b] {
        let up = h.notifications.iter().any(|n| {
            matches!(n, Notification::Transport(t, TransportNotification::SctpStateChange { sctp_state: SctpState::Connected }) if *t == PIPE_A || *t == PIPE_B)
        });
        assert!(up, "the pipe's association connects");
    }
    let params =
        SctpStreamParameters { stream_id: 1, ordered: true, max_packet_life_time: None, max_retransmits: None };
    let origin = pair.a.produce_data(&mut pair.publisher, 10, params, "chat");
    let local = pair.a.consume_data(&pair.sub_a, 20, origin);
    let piped = match pair.a.request(Request::Transport(
        PIPE_A,
        TransportRequest::ConsumeDataToPipe { data_consumer_id: DataConsumerId(30), data_producer_id: origin },
    )) {
        Ok(Response::DataConsumerCreated(data)) => data,
        other => panic!("{other:?}"),
    };
    let copy = TransportRequest::ProduceDataFromPipe {
        data_producer_id: origin,
        router_id: RouterId(1),
        sctp_stream_parameters: piped.sctp_stream_parameters,
        label: piped.label.clone(),
        protocol: piped.protocol.clone(),
    };
    assert_eq!(pair.b.request(Request::Transport(PIPE_B, copy)), Ok(Response::DataProducerCreated));
    let far = pair.b.consume_data(&pair.sub_b, 40, origin);
    assert_eq!(far.label, "chat");
    let file: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    pair.publisher.send_message(1, ppid::STRING, b"hello across workers").unwrap();
    pair.publisher.send_message(1, ppid::BINARY, &file).unwrap();
    pair.advance(Duration::from_millis(1500));
    let got = |peer: &Peer, stream: u16| -> Vec<(u32, Vec<u8>)> {
        peer.messages.iter().filter(|m| m.0 == stream).map(|m| (m.1, m.2.clone())).collect()
    };
    let expected = vec![(ppid::STRING, b"hello across workers".to_vec()), (ppid::BINARY, file)];
    assert_eq!(got(&pair.sub_a, local.sctp_stream_parameters.stream_id), expected);
    assert_eq!(got(&pair.sub_b, far.sctp_stream_parameters.stream_id), expected);
    // The origin closes: its pipe data consumer with it; the copy, closed by the controller, tells B's.
    assert_eq!(pair.a.request(Request::DataProducer(origin, DataProducerRequest::Close)), Ok(Response::Ok));
    assert_eq!(pair.b.request(Request::DataProducer(origin, DataProducerRequest::Close)), Ok(Response::Ok));
    assert!(
        pair.b
            .notifications
            .contains(&Notification::DataConsumer(DataConsumerId(40), DataConsumerNotification::DataProducerClosed))
    );
}

/// Workers bound to every address (0.0.0.0) on one host: the controller tells each the other's port
/// on loopback, and the two ends still agree which is the SCTP client.
#[test]
fn pipes_between_workers_on_unspecified_addresses_connect_their_sctp() {
    sctp_over_pipe(("0.0.0.0:40000", "127.0.0.1:40000"), ("0.0.0.0:40001", "127.0.0.1:40001"), [None, None]);
}

/// Two hosts whose workers listen on the same port of a wildcard address: the rule cannot tell
/// them apart (each sees itself as 0.0.0.0:40000, lower than the other), so the controller says
/// which end is the SCTP client.
#[test]
fn pipes_across_hosts_on_the_same_port_connect_with_the_roles_they_are_given() {
    sctp_over_pipe(("0.0.0.0:40000", "10.0.0.1:40000"), ("0.0.0.0:40000", "10.0.0.2:40000"), [Some(true), Some(false)]);
}

/// Two workers bound to (local, as seen by the other) addresses, pipes connected with the given
/// SCTP roles: the association comes up on both ends.
fn sctp_over_pipe(a_addr: (&str, &str), b_addr: (&str, &str), roles: [Option<bool>; 2]) {
    let now = Instant::now();
    let mut a = Harness::at(addr(a_addr.0), 7, now);
    let mut b = Harness::at(addr(b_addr.0), 8, now);
    let (seen_a, seen_b) = (addr(a_addr.1), addr(b_addr.1));
    for (h, id, remote, sctp_client) in [(&mut a, PIPE_A, seen_b, roles[0]), (&mut b, PIPE_B, seen_a, roles[1])] {
        let create = WorkerRequest::CreatePipeTransport { transport_id: id, srtp: false };
        assert!(matches!(h.request(Request::Worker(create)), Ok(Response::PipeTransportCreated(_))));
        let connect = TransportRequest::ConnectPipe { remote, srtp_parameters: None, sctp_client };
        assert_eq!(h.request(Request::Transport(id, connect)), Ok(Response::Ok));
    }
    for _ in 0..50 {
        for a_to_b in [true, false] {
            let (from, to, from_addr) = if a_to_b { (&mut a, &mut b, seen_a) } else { (&mut b, &mut a, seen_b) };
            while let Some(t) = from.worker.poll_transmit() {
                to.datagram(from_addr, &t.buf);
                from.worker.recycle(t.buf);
            }
        }
        let at = a.now + Duration::from_millis(20);
        for h in [&mut a, &mut b] {
            h.now = at;
            if h.worker.poll_timeout().is_some_and(|t| t <= at) {
                h.worker.handle_timeout(at);
            }
        }
    }
    for (h, id) in [(&a, PIPE_A), (&b, PIPE_B)] {
        let connected =
            Notification::Transport(id, TransportNotification::SctpStateChange { sctp_state: SctpState::Connected });
        assert!(h.notifications.contains(&connected), "{:?}", h.notifications);
    }
}
