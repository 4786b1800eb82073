//! Round trips of every message kind and hostile frames.

use octo_ipc::frame::FrameKind;
use octo_ipc::*;
use proptest::prelude::*;

const R: RouterId = RouterId(0x1111_2222_3333_4444_5555_6666_7777_8888);
const T: TransportId = TransportId(7);
const P: ProducerId = ProducerId(u128::MAX);
const C: ConsumerId = ConsumerId(0);
const DP: DataProducerId = DataProducerId(0xdead_beef);
const DC: DataConsumerId = DataConsumerId(1 << 100);

fn stream_parameters() -> SctpStreamParameters {
    SctpStreamParameters { stream_id: 65535, ordered: false, max_packet_life_time: None, max_retransmits: Some(0) }
}

fn all_controller_messages() -> Vec<ControllerMessage> {
    let requests = vec![
        Request::Worker(WorkerRequest::Dump),
        Request::Worker(WorkerRequest::CreateRouter { router_id: R, media_codecs: Vec::new() }),
        Request::Worker(WorkerRequest::GetMetrics),
        Request::Worker(WorkerRequest::Close),
        Request::Router(R, RouterRequest::Dump),
        Request::Router(R, RouterRequest::Close),
        Request::Transport(T, TransportRequest::Dump),
        Request::Transport(T, TransportRequest::Close),
        Request::Producer(P, ProducerRequest::Dump),
        Request::Producer(P, ProducerRequest::Close),
        Request::Consumer(C, ConsumerRequest::Dump),
        Request::Consumer(C, ConsumerRequest::Close),
        Request::Transport(
            T,
            TransportRequest::ProduceData {
                data_producer_id: DP,
                sctp_stream_parameters: stream_parameters(),
                label: "chat ✓".into(),
                protocol: String::new(),
            },
        ),
        Request::Transport(T, TransportRequest::ConsumeData { data_consumer_id: DC, data_producer_id: DP }),
        Request::DataProducer(DP, DataProducerRequest::Dump),
        Request::DataProducer(DP, DataProducerRequest::Close),
        Request::DataProducer(DP, DataProducerRequest::GetStats),
        Request::DataProducer(DP, DataProducerRequest::SetTap { enabled: true }),
        Request::DataConsumer(DC, DataConsumerRequest::Dump),
        Request::DataConsumer(DC, DataConsumerRequest::Close),
        Request::DataConsumer(DC, DataConsumerRequest::GetStats),
        Request::Worker(WorkerRequest::SetLogFilter { filter: "info,octo_worker=debug".into() }),
    ];
    requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| ControllerMessage::Request { id: i as u32 * 1000, request })
        .collect()
}

fn all_worker_messages() -> Vec<WorkerMessage> {
    let results = vec![
        Ok(Response::Ok),
        Ok(Response::WorkerDump(WorkerDump { pid: 42, router_ids: vec![R, RouterId(1)] })),
        Ok(Response::WorkerMetrics(WorkerMetrics { packets_sent: 7, srtp_failures: 1, ..Default::default() })),
        Ok(Response::RouterDump(RouterDump {
            id: R,
            transport_ids: vec![T],
            producer_ids: vec![P],
            consumer_ids: vec![C],
        })),
        Ok(Response::DataProducerCreated),
        Ok(Response::DataConsumerCreated(DataConsumerData {
            id: DC,
            data_producer_id: DP,
            sctp_stream_parameters: SctpStreamParameters {
                stream_id: 3,
                ordered: true,
                max_packet_life_time: Some(3000),
                max_retransmits: None,
            },
            label: "reactions".into(),
            protocol: "json".into(),
        })),
        Ok(Response::DataProducerStats(DataProducerStats {
            label: "l".into(),
            protocol: "p".into(),
            messages_received: u64::MAX,
            bytes_received: 1,
            tap_messages: 3,
            tap_dropped: 4,
        })),
        Ok(Response::DataConsumerStats(DataConsumerStats {
            label: String::new(),
            protocol: String::new(),
            messages_sent: 2,
            bytes_sent: 3,
            messages_dropped: 4,
        })),
        Err(RequestError::not_found(Target::DataConsumer(DC))),
        Err(RequestError::not_found(Target::Router(R))),
        Err(RequestError::new(ErrorCode::AlreadyExists, "x")),
        Err(RequestError::new(ErrorCode::InvalidRequest, "ü")),
        Err(RequestError::new(ErrorCode::InvalidState, "")),
        Err(RequestError::new(ErrorCode::Internal, "boom")),
    ];
    let notifications = vec![
        Notification::Worker(WorkerNotification::Running { pid: 9 }),
        Notification::Router(R, RouterNotification::Closed { reason: CloseReason::WorkerDied }),
        Notification::Router(R, RouterNotification::ActiveSpeaker { producer_id: P }),
        Notification::Transport(T, TransportNotification::Closed { reason: CloseReason::ParentClosed }),
        Notification::Producer(P, ProducerNotification::Closed { reason: CloseReason::ParentClosed }),
        Notification::Consumer(C, ConsumerNotification::Closed { reason: CloseReason::WorkerDied }),
        Notification::DataConsumer(DC, DataConsumerNotification::DataProducerClosed),
        Notification::DataProducer(DP, DataProducerNotification::Message { ppid: 51, payload: b"{}".to_vec() }),
        Notification::Transport(T, TransportNotification::SctpStateChange { sctp_state: SctpState::Connected }),
        Notification::Transport(T, TransportNotification::SctpStateChange { sctp_state: SctpState::Failed }),
    ];
    results
        .into_iter()
        .enumerate()
        .map(|(i, result)| WorkerMessage::Response { id: u32::MAX - i as u32, result })
        .chain(notifications.into_iter().map(WorkerMessage::Notification))
        .collect()
}

fn round_trip<M: FrameKind + PartialEq + std::fmt::Debug>(msgs: &[M]) {
    // Every message alone, then all of them in one stream fed a byte at a time.
    let mut stream = Vec::new();
    for msg in msgs {
        let mut one = Vec::new();
        encode_frame(msg, &mut one).unwrap();
        let (back, used) = decode_frame::<M>(&one).unwrap().unwrap();
        assert_eq!(&back, msg);
        assert_eq!(used, one.len());
        stream.extend_from_slice(&one);
    }
    let mut decoder = FrameDecoder::new();
    let mut out = Vec::new();
    for b in &stream {
        decoder.push(std::slice::from_ref(b));
        while let Some(m) = decoder.next_message::<M>().unwrap() {
            out.push(m);
        }
    }
    decoder.finish().unwrap();
    assert_eq!(out.as_slice(), msgs);
}

#[test]
fn every_controller_message_round_trips() {
    round_trip(&all_controller_messages());
}

#[test]
fn every_worker_message_round_trips() {
    round_trip(&all_worker_messages());
}

#[test]
fn targets_name_their_object() {
    assert_eq!(
        all_controller_messages()[4].clone(),
        ControllerMessage::Request { id: 4000, request: Request::Router(R, RouterRequest::Dump) }
    );
    assert_eq!(Request::Router(R, RouterRequest::Dump).target(), Target::Router(R));
    assert_eq!(Target::Router(R).to_string(), format!("router {R}"));
    assert_eq!(Target::DataProducer(DP).to_string(), format!("data producer {DP}"));
    assert_eq!(
        Request::DataConsumer(DC, DataConsumerRequest::Close).target(),
        Notification::DataConsumer(DC, DataConsumerNotification::DataProducerClosed).target()
    );
    assert_eq!(
        Request::DataProducer(DP, DataProducerRequest::SetTap { enabled: false }).target(),
        Notification::DataProducer(DP, DataProducerNotification::Message { ppid: 51, payload: Vec::new() }).target()
    );
    let err = RequestError::not_found(Target::Producer(P));
    assert!(err.to_string().contains(&P.to_string()), "{err}");
}

#[test]
fn truncated_frame_waits_then_errors_at_end_of_stream() {
    let mut frame = Vec::new();
    encode_frame(&all_controller_messages()[2], &mut frame).unwrap();
    for cut in 0..frame.len() {
        assert_eq!(decode_frame::<ControllerMessage>(&frame[..cut]), Ok(None));
        let mut decoder = FrameDecoder::new();
        decoder.push(&frame[..cut]);
        assert_eq!(decoder.next_message::<ControllerMessage>(), Ok(None));
        if cut > 0 {
            assert_eq!(decoder.finish(), Err(FrameError::Truncated(cut)));
        }
    }
}

#[test]
fn length_over_the_cap_is_rejected_before_buffering() {
    let len = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
    let err = decode_frame::<WorkerMessage>(&len).unwrap_err();
    assert_eq!(err, FrameError::Oversized { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN });
    assert_eq!(
        decode_frame::<WorkerMessage>(&[0xff; 4]).unwrap_err(),
        FrameError::Oversized { len: u32::MAX as usize, max: MAX_FRAME_LEN }
    );
    assert_eq!(decode_frame::<WorkerMessage>(&[0; 8]).unwrap_err(), FrameError::Empty);
}

#[test]
fn oversized_message_is_refused_at_encode() {
    let huge = WorkerMessage::Response {
        id: 1,
        result: Err(RequestError::new(ErrorCode::Internal, "x".repeat(MAX_FRAME_LEN))),
    };
    let mut out = vec![1, 2, 3];
    assert!(matches!(encode_frame(&huge, &mut out), Err(FrameError::Oversized { .. })));
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn valid_frame_of_the_wrong_kind_is_rejected() {
    let mut frame = Vec::new();
    encode_frame(&all_worker_messages()[0], &mut frame).unwrap();
    let err = decode_frame::<ControllerMessage>(&frame).unwrap_err();
    assert!(matches!(err, FrameError::WrongKind { found: 0x3E, .. }), "{err:?}");
    let mut frame = Vec::new();
    encode_frame(&all_controller_messages()[0], &mut frame).unwrap();
    assert!(matches!(decode_frame::<WorkerMessage>(&frame), Err(FrameError::WrongKind { .. })));
}

#[test]
fn trailing_bytes_and_bad_variants_are_rejected() {
    let mut frame = Vec::new();
    encode_frame(&all_controller_messages()[0], &mut frame).unwrap();
    frame.push(0);
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) + 1;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(decode_frame::<ControllerMessage>(&frame), Err(FrameError::TrailingBytes(1)));

    // Variant index 200 of ControllerMessage does not exist.
    let bogus = [0, 0, 0, 3, ControllerMessage::KIND, 200, 0];
    assert!(matches!(decode_frame::<ControllerMessage>(&bogus), Err(FrameError::Decode(_))));
}

#[test]
fn a_string_claiming_gigabytes_is_an_error_not_an_allocation() {
    // Response(id 0, Err(RequestError { code: Internal, message: <len 2^62> }))
    let mut body = vec![WorkerMessage::KIND, 0, 0, 1, 4, 253];
    body.extend_from_slice(&(1u64 << 62).to_le_bytes());
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    assert!(matches!(decode_frame::<WorkerMessage>(&frame), Err(FrameError::Decode(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_frame::<ControllerMessage>(&bytes);
        let _ = decode_frame::<WorkerMessage>(&bytes);
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        while let Ok(Some(_)) = decoder.next_message::<WorkerMessage>() {}
        let _ = decoder.finish();
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        controller in any::<bool>(),
    ) {
        let kind = if controller { ControllerMessage::KIND } else { WorkerMessage::KIND };
        let mut frame = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        frame.push(kind);
        frame.extend_from_slice(&body);
        let _ = decode_frame::<ControllerMessage>(&frame);
        let _ = decode_frame::<WorkerMessage>(&frame);
    }

    #[test]
    fn mutated_valid_frames_never_panic(index in 0usize..12, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut frame = Vec::new();
        encode_frame(&all_controller_messages()[index], &mut frame).unwrap();
        for (pos, byte) in flips {
            let at = pos % frame.len();
            frame[at] = byte;
        }
        let _ = decode_frame::<ControllerMessage>(&frame);
    }
}
