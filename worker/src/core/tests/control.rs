//! Control requests through the whole core.

use std::time::Duration;

use octo_ipc::*;

use crate::core::testing::Harness;

#[test]
fn transports_offer_ice_dtls_and_candidates_from_the_shared_port() {
    let mut h = Harness::new();
    let a = h.create_transport(10);
    let b = h.create_transport(11);
    assert_eq!(a.ice_candidates.len(), 1);
    assert_eq!((a.ice_candidates[0].address.as_str(), a.ice_candidates[0].port), ("127.0.0.1", 40000));
    assert_eq!(a.ice_candidates[0].ip, "127.0.0.1");
    assert_eq!(a.ice_candidates, b.ice_candidates, "one port for every transport");
    assert_ne!(a.ice_parameters.username_fragment, b.ice_parameters.username_fragment);
    assert_eq!(a.ice_parameters.password.len(), 32);
    assert!(a.dtls_parameters.fingerprints.iter().any(|f| f.algorithm == FingerprintAlgorithm::Sha256));
    assert_eq!(a.ice_state, IceState::New);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["iceCandidates"][0]["type"], "host");
    assert_eq!(json["dtlsParameters"]["fingerprints"][0]["algorithm"], "sha-256");
}

#[test]
fn producers_and_consumers_follow_pause_resume_and_close() {
    let mut h = Harness::new();
    let send = h.create_transport(1);
    let recv = h.create_transport(2);
    let caps = crate::core::testing::device_capabilities(&h.caps);
    let producer = ProducerId(100);
    let resp = h.request(Request::Transport(
        send.id,
        TransportRequest::Produce {
            producer_id: producer,
            kind: MediaKind::Video,
            rtp_parameters: crate::core::testing::chrome_vp8_parameters(),
            paused: false,
        },
    ));
    assert_eq!(resp, Ok(Response::ProducerCreated { rtp_type: RtpType::Simple }));
    // The same SSRC twice on one transport is refused.
    let again = h.request(Request::Transport(
        send.id,
        TransportRequest::Produce {
            producer_id: ProducerId(101),
            kind: MediaKind::Video,
            rtp_parameters: crate::core::testing::chrome_vp8_parameters(),
            paused: false,
        },
    ));
    assert_eq!(again.unwrap_err().code, ErrorCode::InvalidRequest);

    assert_eq!(
        h.request(Request::Router(
            h.router,
            RouterRequest::CanConsume { producer_id: producer, rtp_capabilities: caps.clone() }
        )),
        Ok(Response::CanConsume(true))
    );
    let mut mids = Vec::new();
    for id in [200, 201] {
        match h.request(Request::Transport(
            recv.id,
            TransportRequest::Consume {
                consumer_id: ConsumerId(id),
                producer_id: producer,
                rtp_capabilities: caps.clone(),
                paused: true,
            },
        )) {
            Ok(Response::ConsumerCreated(c)) => {
                assert!(c.paused && !c.producer_paused);
                assert_eq!(c.kind, MediaKind::Video);
                mids.push(c.rtp_parameters.mid.unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(mids, ["0", "1"]);

    h.notifications.clear();
    assert_eq!(h.request(Request::Producer(producer, ProducerRequest::Pause)), Ok(Response::Ok));
    assert!(h.notifications.contains(&Notification::Consumer(ConsumerId(200), ConsumerNotification::ProducerPaused)));
    assert_eq!(h.request(Request::Producer(producer, ProducerRequest::Resume)), Ok(Response::Ok));
    assert!(h.notifications.contains(&Notification::Consumer(ConsumerId(201), ConsumerNotification::ProducerResumed)));

    h.notifications.clear();
    assert_eq!(h.request(Request::Producer(producer, ProducerRequest::Close)), Ok(Response::Ok));
    for id in [200, 201] {
        assert!(
            h.notifications.contains(&Notification::Consumer(ConsumerId(id), ConsumerNotification::ProducerClosed))
        );
        let err = h.request(Request::Consumer(ConsumerId(id), ConsumerRequest::Dump)).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
    }
    match h.request(Request::Router(h.router, RouterRequest::Dump)) {
        Ok(Response::RouterDump(d)) => {
            assert_eq!(d.transport_ids.len(), 2);
            assert!(d.producer_ids.is_empty() && d.consumer_ids.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn closing_a_transport_closes_what_it_carries_and_tells_other_consumers() {
    let mut h = Harness::new();
    let send = h.create_transport(1);
    let recv = h.create_transport(2);
    let caps = crate::core::testing::device_capabilities(&h.caps);
    h.request(Request::Transport(
        send.id,
        TransportRequest::Produce {
            producer_id: ProducerId(5),
            kind: MediaKind::Audio,
            rtp_parameters: crate::core::testing::chrome_opus_parameters(),
            paused: false,
        },
    ))
    .unwrap();
    h.request(Request::Transport(
        recv.id,
        TransportRequest::Consume {
            consumer_id: ConsumerId(6),
            producer_id: ProducerId(5),
            rtp_capabilities: caps,
            paused: false,
        },
    ))
    .unwrap();
    h.notifications.clear();
    assert_eq!(h.request(Request::Transport(send.id, TransportRequest::Close)), Ok(Response::Ok));
    assert_eq!(h.notifications, [Notification::Consumer(ConsumerId(6), ConsumerNotification::ProducerClosed)]);
    assert_eq!(
        h.request(Request::Producer(ProducerId(5), ProducerRequest::Dump)).unwrap_err().code,
        ErrorCode::NotFound
    );
    // Closing the router closes the remaining transport.
    assert_eq!(h.request(Request::Router(h.router, RouterRequest::Close)), Ok(Response::Ok));
    assert_eq!(
        h.request(Request::Transport(recv.id, TransportRequest::GetStats)).unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[test]
fn consume_with_capabilities_that_cannot_decode_is_refused() {
    let mut h = Harness::new();
    let send = h.create_transport(1);
    h.request(Request::Transport(
        send.id,
        TransportRequest::Produce {
            producer_id: ProducerId(5),
            kind: MediaKind::Video,
            rtp_parameters: crate::core::testing::chrome_vp8_parameters(),
            paused: false,
        },
    ))
    .unwrap();
    let mut caps = crate::core::testing::device_capabilities(&h.caps);
    caps.codecs.retain(|c| c.kind == MediaKind::Audio);
    let err = h
        .request(Request::Transport(
            send.id,
            TransportRequest::Consume {
                consumer_id: ConsumerId(6),
                producer_id: ProducerId(5),
                rtp_capabilities: caps,
                paused: false,
            },
        ))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    // A producer of another router is not found.
    let err = h
        .request(Request::Transport(
            send.id,
            TransportRequest::Consume {
                consumer_id: ConsumerId(7),
                producer_id: ProducerId(99),
                rtp_capabilities: Default::default(),
                paused: false,
            },
        ))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.contains(&ProducerId(99).to_string()));
}

/// Counts the DTLS datagrams the worker has queued (and drops them: lost on the way).
fn dtls_datagrams_sent(h: &mut Harness) -> usize {
    let mut n = 0;
    while let Some(t) = h.worker.poll_transmit() {
        n += usize::from(matches!(t.buf.first(), Some(20..=63)));
        h.worker.recycle(t.buf);
    }
    n
}

/// A subscriber's transport is visited by the periodic tick only one tick in five; its DTLS
/// handshake must still be retransmitted when its timer falls due.
#[test]
fn a_lost_client_hello_is_sent_again_by_the_timer() {
    let mut h = Harness::new();
    let mut peer = crate::core::testing::Peer::new(50000);
    let t = h.create_transport(1);
    peer.remote_ufrag = t.ice_parameters.username_fragment.clone();
    // The remote is the DTLS server: the worker is the client and says hello once ICE has a path.
    let resp = h.request(Request::Transport(
        t.id,
        TransportRequest::Connect {
            dtls_parameters: DtlsParameters {
                role: Some(DtlsRole::Server),
                fingerprints: peer.identity.fingerprints().to_vec(),
            },
        },
    ));
    assert_eq!(resp, Ok(Response::TransportConnected { dtls_local_role: DtlsRole::Client }));
    assert_eq!(dtls_datagrams_sent(&mut h), 0);
    let _ = h.worker.poll_timeout();
    peer.send_binding(true, &t.ice_parameters.password);
    for d in peer.take_outgoing() {
        h.datagram(peer.addr, &d);
    }
    assert_eq!(dtls_datagrams_sent(&mut h), 1, "the ClientHello, lost");
    let start = h.now;
    let mut resent_at = None;
    while h.now < start + Duration::from_secs(5) && resent_at.is_none() {
        h.now += Duration::from_millis(5);
        // As the event loop does: handle_timeout whenever the worker's earliest timer has passed.
        while h.worker.poll_timeout().is_some_and(|at| at <= h.now) {
            h.worker.handle_timeout(h.now);
            if dtls_datagrams_sent(&mut h) > 0 {
                resent_at = Some(h.now);
                break;
            }
        }
    }
    let resent_at = resent_at.expect("the ClientHello was never sent again");
    // rtc-dtls retransmits a flight after a second; the slice this transport is in comes round
    // within five ticks of that.
    let after = resent_at - start;
    assert!(after >= Duration::from_millis(900) && after <= Duration::from_millis(1200), "{after:?}");
}
