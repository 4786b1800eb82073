//! Octo's media plane against an independent WebRTC implementation: str0m peers publish to and
//! subscribe from a real `octo-worker` process over UDP on 127.0.0.1, configured from the worker's
//! ipc answers the way mediasoup-client configures a browser (see `octo_tests::interop`).
//!
//! Covered: ICE-lite and DTLS in both role orders, fingerprint verification, several peers on the
//! shared port under loss; then a publisher (VP8 + RTX, Opus) and subscribers: payloads intact and
//! sequence numbers continuous, NACK answered by RTX, a subscriber's PLI reaching the publisher, and
//! all of it again with 5% of datagrams lost both ways. The `harness_self_check_*` tests run the
//! same source and checks between two str0m peers without the worker, so a failure above that they
//! do not share points at the worker. `INTEROP_DEBUG=1` prints every video packet a receiver got.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use octo_ipc::{
    ConsumerData, ConsumerId, ConsumerRequest, DtlsRole, DtlsState, FingerprintAlgorithm, IceCandidateType, IceState,
    MediaKind, ProducerId, Protocol, Request, Response, RouterId, RtpCapabilities, RtpType, TransportId,
    TransportNotification, TransportTuple,
};
use octo_tests::interop::loss::{DropOneRtp, Impairment};
use octo_tests::interop::media::{
    PeerMedia, check_sequence_follows_counter, opus_payload, parse_opus_payload, parse_vp8_payload,
    router_media_codecs, vp8_payload,
};
use octo_tests::interop::peer::{DtlsSide, Str0mPeer, drive, drive_peers};
use octo_tests::interop::worker::WorkerUnderTest;
use str0m::IceConnectionState;
use str0m::rtp::ExtensionValues;
use str0m::rtp::rtcp::Rtcp;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ROUTER: RouterId = RouterId(1);

/// A worker with one router of Opus + VP8.
fn start_worker() -> anyhow::Result<(WorkerUnderTest, RtpCapabilities)> {
    let mut worker = WorkerUnderTest::spawn()?;
    let caps = worker.create_router(ROUTER, router_media_codecs())?;
    Ok((worker, caps))
}

/// Creates a WebRTC transport, a str0m peer for it, and sends `Connect` with str0m's DTLS
/// parameters; returns the peer and the DTLS role the worker took.
fn open_peer(
    worker: &mut WorkerUnderTest,
    transport_id: TransportId,
    name: &str,
    media: PeerMedia,
    side: DtlsSide,
    impairment: Impairment,
) -> anyhow::Result<(Str0mPeer, DtlsRole)> {
    let data = worker.create_webrtc_transport(ROUTER, transport_id)?;
    let mut peer = Str0mPeer::new(name, media, &data, side)?;
    peer.impairment = impairment;
    let role = worker.connect(transport_id, peer.dtls_parameters())?;
    Ok((peer, role))
}

fn dtls_connected(worker: &WorkerUnderTest, id: TransportId) -> bool {
    worker
        .transport_notifications(id)
        .iter()
        .any(|n| matches!(n, TransportNotification::DtlsStateChange { dtls_state: DtlsState::Connected, .. }))
}

/// Drives until every peer is connected as str0m sees it and the worker reported DTLS connected on
/// every transport.
fn connect_all(
    worker: &mut WorkerUnderTest,
    peers: &mut [&mut Str0mPeer],
    transports: &[TransportId],
) -> anyhow::Result<()> {
    let done = drive(worker, peers, CONNECT_TIMEOUT, |w, peers| {
        Ok(peers.iter().all(|p| p.is_connected()) && transports.iter().all(|t| dtls_connected(w, *t)))
    })?;
    if !done {
        let mut report = String::new();
        for (peer, t) in peers.iter().zip(transports) {
            report += &format!("\n  {}\n  worker said: {:?}", peer.summary(), worker.transport_notifications(*t));
        }
        bail!("not connected within {CONNECT_TIMEOUT:?}:{report}");
    }
    Ok(())
}

/// The notifications a transport must have produced for one clean ICE + DTLS connection, in order.
fn check_connection_notifications(
    worker: &mut WorkerUnderTest,
    id: TransportId,
    peer: &Str0mPeer,
) -> anyhow::Result<()> {
    let notes = worker.transport_notifications(id);
    eprintln!("{id} notified: {notes:?}");
    let position = |pred: &dyn Fn(&TransportNotification) -> bool| notes.iter().position(pred);
    let ice_connected = position(&|n| {
        matches!(n, TransportNotification::IceStateChange { ice_state: IceState::Connected | IceState::Completed })
    })
    .with_context(|| format!("no ICE connected/completed notification: {notes:?}"))?;
    let expected_tuple =
        TransportTuple { local_address: peer.worker_addr, remote_address: peer.local_addr, protocol: Protocol::Udp };
    let tuple = position(&|n| *n == TransportNotification::IceSelectedTupleChange { tuple: Some(expected_tuple) })
        .with_context(|| format!("no selected tuple {expected_tuple:?}: {notes:?}"))?;
    let connecting =
        position(&|n| matches!(n, TransportNotification::DtlsStateChange { dtls_state: DtlsState::Connecting, .. }))
            .with_context(|| format!("no DTLS connecting notification: {notes:?}"))?;
    let connected =
        position(&|n| matches!(n, TransportNotification::DtlsStateChange { dtls_state: DtlsState::Connected, .. }))
            .context("no DTLS connected notification")?;
    ensure!(connecting < connected, "DTLS connected before connecting: {notes:?}");
    ensure!(ice_connected < connected && tuple < connected, "DTLS connected before ICE: {notes:?}");
    ensure!(
        !notes.iter().any(|n| matches!(
            n,
            TransportNotification::DtlsStateChange { dtls_state: DtlsState::Failed | DtlsState::Closed, .. }
                | TransportNotification::IceStateChange { ice_state: IceState::Disconnected | IceState::Closed }
                | TransportNotification::Closed { .. }
        )),
        "failure notified: {notes:?}"
    );
    let stats = worker.transport_stats(id)?;
    ensure!(stats.dtls_state == DtlsState::Connected, "stats: {stats:?}");
    ensure!(matches!(stats.ice_state, IceState::Connected | IceState::Completed), "stats: {stats:?}");
    ensure!(stats.ice_selected_tuple == Some(expected_tuple), "stats: {stats:?}");
    ensure!(stats.bytes_received > 0 && stats.bytes_sent > 0, "stats: {stats:?}");

    ensure!(peer.saw_connected_event(), "str0m never emitted Connected: {}", peer.summary());
    ensure!(
        peer.ice_states().iter().any(|s| matches!(s, IceConnectionState::Connected | IceConnectionState::Completed)),
        "str0m ICE states {:?}",
        peer.ice_states()
    );
    Ok(())
}

fn connects_with(side: DtlsSide) -> anyhow::Result<()> {
    let (mut worker, _caps) = start_worker()?;
    let tid = TransportId(10);
    let data = worker.create_webrtc_transport(ROUTER, tid)?;
    // What a client is handed: ICE-lite, one UDP host candidate on loopback, DTLS role auto and
    // fingerprints of the three SHA-2 sizes.
    ensure!(data.ice_parameters.ice_lite == Some(true), "{:?}", data.ice_parameters);
    let candidate = data.ice_candidates.first().context("no candidate")?;
    ensure!(
        candidate.protocol == Protocol::Udp && candidate.kind == IceCandidateType::Host && candidate.ip == "127.0.0.1",
        "{candidate:?}"
    );
    ensure!(data.dtls_parameters.role == Some(DtlsRole::Auto), "{:?}", data.dtls_parameters);
    for alg in [FingerprintAlgorithm::Sha256, FingerprintAlgorithm::Sha384, FingerprintAlgorithm::Sha512] {
        ensure!(data.dtls_parameters.fingerprints.iter().any(|f| f.algorithm == alg), "no {alg:?} fingerprint");
    }
    ensure!(data.ice_state == IceState::New && data.dtls_state == DtlsState::New, "{data:?}");

    let mut peer = Str0mPeer::new("str0m", PeerMedia::chrome_like_sender(), &data, side)?;
    let role = worker.connect(tid, peer.dtls_parameters())?;
    let expected_role = match side {
        DtlsSide::Str0mClient => DtlsRole::Server,
        DtlsSide::Str0mServer => DtlsRole::Client,
    };
    ensure!(role == expected_role, "worker took DTLS role {role:?} for {side:?}");
    connect_all(&mut worker, &mut [&mut peer], &[tid])?;
    check_connection_notifications(&mut worker, tid, &peer)?;

    // Keep it up a little: consent checks keep flowing and nothing fails.
    drive(&mut worker, &mut [&mut peer], Duration::from_millis(1500), |_, _| Ok(false))?;
    ensure!(peer.is_connected(), "str0m lost the connection: {}", peer.summary());
    check_connection_notifications(&mut worker, tid, &peer)?;
    ensure!(worker.is_alive(), "worker died");
    Ok(())
}

#[test]
fn ice_and_dtls_connect_with_str0m_as_dtls_client() -> anyhow::Result<()> {
    connects_with(DtlsSide::Str0mClient)
}

#[test]
fn ice_and_dtls_connect_with_str0m_as_dtls_server() -> anyhow::Result<()> {
    connects_with(DtlsSide::Str0mServer)
}

/// The worker is told a fingerprint that is not the certificate str0m presents: it must fail DTLS
/// (and say so) instead of keying SRTP with an unauthenticated peer.
fn refuses_a_wrong_fingerprint(side: DtlsSide) -> anyhow::Result<()> {
    let (mut worker, _caps) = start_worker()?;
    let tid = TransportId(11);
    let data = worker.create_webrtc_transport(ROUTER, tid)?;
    let mut peer = Str0mPeer::new("str0m", PeerMedia::chrome_like_sender(), &data, side)?;
    peer.tolerate_errors = true;
    let mut params = peer.dtls_parameters();
    let value = &mut params.fingerprints[0].value;
    // Flip the first hex digit: same length and format, another certificate.
    let flipped = if value.starts_with('0') { "1" } else { "0" };
    value.replace_range(0..1, flipped);
    worker.connect(tid, params)?;
    let failed = |w: &WorkerUnderTest| {
        w.transport_notifications(tid)
            .iter()
            .any(|n| matches!(n, TransportNotification::DtlsStateChange { dtls_state: DtlsState::Failed, .. }))
    };
    let done = drive(&mut worker, &mut [&mut peer], CONNECT_TIMEOUT, |w, _| Ok(failed(w)))?;
    let notes = worker.transport_notifications(tid);
    ensure!(done, "no DTLS failure notified within {CONNECT_TIMEOUT:?}: {notes:?}\n  {}", peer.summary());
    ensure!(!dtls_connected(&worker, tid), "DTLS connected with a wrong fingerprint: {notes:?}");
    ensure!(!peer.is_connected(), "str0m believes it is connected: {}", peer.summary());
    eprintln!("{side:?}: {notes:?}; str0m said {:?}", peer.errors);
    ensure!(worker.is_alive(), "worker died");
    Ok(())
}

#[test]
fn a_wrong_fingerprint_fails_dtls_with_str0m_as_client() -> anyhow::Result<()> {
    refuses_a_wrong_fingerprint(DtlsSide::Str0mClient)
}

#[test]
fn a_wrong_fingerprint_fails_dtls_with_str0m_as_server() -> anyhow::Result<()> {
    refuses_a_wrong_fingerprint(DtlsSide::Str0mServer)
}

#[test]
fn several_peers_connect_through_the_shared_port_despite_five_percent_loss() -> anyhow::Result<()> {
    let (mut worker, caps) = start_worker()?;
    let media = PeerMedia::from_router(&caps)?;
    let ids = [TransportId(20), TransportId(21), TransportId(22)];
    let sides = [DtlsSide::Str0mClient, DtlsSide::Str0mServer, DtlsSide::Str0mClient];
    let mut peers = Vec::new();
    for (i, (id, side)) in ids.iter().zip(sides).enumerate() {
        let (peer, _) = open_peer(
            &mut worker,
            *id,
            &format!("peer{i}"),
            media.clone(),
            side,
            Impairment::lossy(100 + i as u64, 0.05),
        )?;
        peers.push(peer);
    }
    let mut refs: Vec<&mut Str0mPeer> = peers.iter_mut().collect();
    connect_all(&mut worker, &mut refs, &ids)?;
    for (peer, id) in peers.iter().zip(ids) {
        // Each transport selected its own peer's address: the shared port demultiplexed them.
        let tuple = TransportTuple {
            local_address: peer.worker_addr,
            remote_address: peer.local_addr,
            protocol: Protocol::Udp,
        };
        ensure!(
            worker
                .transport_notifications(id)
                .contains(&TransportNotification::IceSelectedTupleChange { tuple: Some(tuple) }),
            "{id}: {:?}",
            worker.transport_notifications(id)
        );
    }
    let lost: u64 = peers.iter().map(|p| p.impairment.inbound.dropped + p.impairment.outbound.dropped).sum();
    eprintln!("datagrams lost on purpose while connecting: {lost}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Publishing and subscribing.

const VIDEO_SSRC: u32 = 0x1111_0001;
const VIDEO_RTX_SSRC: u32 = 0x1111_0002;
const AUDIO_SSRC: u32 = 0x1111_0003;
const VIDEO_PRODUCER: ProducerId = ProducerId(100);
const AUDIO_PRODUCER: ProducerId = ProducerId(101);

struct Subscriber {
    peer: Str0mPeer,
    video: ConsumerData,
    audio: ConsumerData,
}

impl Subscriber {
    fn streams(&self) -> Streams {
        let video = &self.video.rtp_parameters.encodings[0];
        Streams {
            video: video.ssrc.expect("checked"),
            video_rtx: video.rtx.expect("checked").ssrc,
            audio: self.audio.rtp_parameters.encodings[0].ssrc.expect("checked"),
        }
    }
}

/// The SSRCs a receiver expects.
#[derive(Debug, Clone, Copy)]
struct Streams {
    video: u32,
    video_rtx: u32,
    audio: u32,
}

/// A publisher and `n` subscribers, all connected, producers created, consumers created and resumed.
struct Call {
    worker: WorkerUnderTest,
    publisher: Str0mPeer,
    subscribers: Vec<Subscriber>,
}

impl Call {
    fn set_up(n: usize, impairment: impl Fn(u64) -> Impairment) -> anyhow::Result<Call> {
        let (mut worker, caps) = start_worker()?;
        let pub_tid = TransportId(1000);
        // The publisher is the DTLS client here and every subscriber the server: both orders work.
        let (mut publisher, _) = open_peer(
            &mut worker,
            pub_tid,
            "publisher",
            PeerMedia::chrome_like_sender(),
            DtlsSide::Str0mClient,
            impairment(1),
        )?;
        let mut subs = Vec::new();
        let mut tids = vec![pub_tid];
        for i in 0..n {
            let tid = TransportId(2000 + i as u128);
            let media = PeerMedia::from_router(&caps)?;
            let (peer, _) = open_peer(
                &mut worker,
                tid,
                &format!("subscriber{i}"),
                media,
                DtlsSide::Str0mServer,
                impairment(2 + i as u64),
            )?;
            subs.push((tid, peer));
            tids.push(tid);
        }
        {
            let mut refs: Vec<&mut Str0mPeer> =
                std::iter::once(&mut publisher).chain(subs.iter_mut().map(|(_, p)| p)).collect();
            connect_all(&mut worker, &mut refs, &tids)?;
        }

        // Produce: str0m declares its send streams with the SSRCs and mids the parameters announce.
        publisher.declare_send(MediaKind::Video, "0", VIDEO_SSRC, Some(VIDEO_RTX_SSRC));
        publisher.declare_send(MediaKind::Audio, "1", AUDIO_SSRC, None);
        let vp8 = publisher.media.vp8_parameters("0", VIDEO_SSRC, VIDEO_RTX_SSRC, "str0m-publisher");
        let opus = publisher.media.opus_parameters("1", AUDIO_SSRC, "str0m-publisher");
        ensure!(worker.produce(pub_tid, VIDEO_PRODUCER, MediaKind::Video, vp8)? == RtpType::Simple);
        ensure!(worker.produce(pub_tid, AUDIO_PRODUCER, MediaKind::Audio, opus)? == RtpType::Simple);

        // Consume (paused), declare what the consumer says in str0m, then resume.
        let mut subscribers = Vec::new();
        for (i, (tid, mut peer)) in subs.into_iter().enumerate() {
            let video = worker.consume(tid, ConsumerId(3000 + 2 * i as u128), VIDEO_PRODUCER, caps.clone())?;
            let audio = worker.consume(tid, ConsumerId(3001 + 2 * i as u128), AUDIO_PRODUCER, caps.clone())?;
            for (kind, c) in [(MediaKind::Video, &video), (MediaKind::Audio, &audio)] {
                ensure!(c.kind == kind && c.paused && !c.producer_paused, "{c:?}");
                peer.media.check_consumer(kind, &c.rtp_parameters).with_context(|| format!("{c:?}"))?;
                let enc = &c.rtp_parameters.encodings[0];
                let mid = c.rtp_parameters.mid.as_deref().expect("checked");
                peer.declare_receive(kind, mid, enc.ssrc.expect("checked"), enc.rtx.map(|r| r.ssrc));
            }
            ensure!(video.rtp_parameters.mid != audio.rtp_parameters.mid, "consumers share a mid");
            worker.resume_consumer(video.id)?;
            worker.resume_consumer(audio.id)?;
            subscribers.push(Subscriber { peer, video, audio });
        }
        Ok(Call { worker, publisher, subscribers })
    }

    /// Drives everything for `duration` while `source` sends, then [`TAIL`] more without sending,
    /// so retransmissions and packets in flight land.
    fn run(&mut self, source: &mut Source, duration: Duration) -> anyhow::Result<()> {
        let stop_sending = Instant::now() + duration;
        let Call { worker, publisher, subscribers } = self;
        let mut peers: Vec<&mut Str0mPeer> =
            std::iter::once(publisher).chain(subscribers.iter_mut().map(|s| &mut s.peer)).collect();
        drive(worker, &mut peers, duration + TAIL, |_, peers| {
            if Instant::now() < stop_sending {
                source.tick(peers[0])?;
            }
            Ok(false)
        })?;
        Ok(())
    }
}

const TAIL: Duration = Duration::from_millis(700);

/// The publisher's encoder stand-in: a VP8 frame every 33 ms in one packet (a keyframe first and
/// whenever a keyframe request arrived), an Opus packet every 20 ms.
struct Source {
    started: Instant,
    video_seq: u64,
    video_frames: u32,
    audio_seq: u64,
    audio_packets: u32,
    keyframe_requests_seen: usize,
    /// counter → keyframe, for every VP8 frame sent.
    sent_video: BTreeMap<u32, bool>,
    /// Lose the next keyframe sent on request on its way to the worker (it is NACKed back).
    lose_next_requested_keyframe: bool,
}

impl Source {
    fn new() -> Self {
        Source {
            started: Instant::now(),
            video_seq: 21_000,
            video_frames: 0,
            audio_seq: 51_000,
            audio_packets: 0,
            keyframe_requests_seen: 0,
            sent_video: BTreeMap::new(),
            lose_next_requested_keyframe: false,
        }
    }

    fn tick(&mut self, publisher: &mut Str0mPeer) -> anyhow::Result<()> {
        let elapsed = self.started.elapsed();
        let requests = publisher.keyframe_requests().len();
        let keyframe_wanted = requests > self.keyframe_requests_seen;
        if elapsed >= Duration::from_millis(33) * self.video_frames {
            let counter = self.video_frames;
            let keyframe = counter == 0 || keyframe_wanted;
            self.keyframe_requests_seen = requests;
            if keyframe_wanted && self.lose_next_requested_keyframe {
                self.lose_next_requested_keyframe = false;
                publisher.impairment.drop_outbound_rtp = Some(DropOneRtp::seq(VIDEO_SSRC, self.video_seq as u16));
            }
            let pt = publisher.media.vp8_pt;
            let ts = counter.wrapping_mul(3000);
            publisher.write_rtp(
                VIDEO_SSRC,
                pt,
                self.video_seq,
                ts,
                true,
                vp8_payload(counter, keyframe),
                ExtensionValues::default(),
            )?;
            self.sent_video.insert(counter, keyframe);
            self.video_seq += 1;
            self.video_frames += 1;
        }
        if elapsed >= Duration::from_millis(20) * self.audio_packets {
            let counter = self.audio_packets;
            let exts = ExtensionValues { audio_level: Some(-30), voice_activity: Some(true), ..Default::default() };
            let pt = publisher.media.opus_pt;
            publisher.write_rtp(
                AUDIO_SSRC,
                pt,
                self.audio_seq,
                counter.wrapping_mul(960),
                false,
                opus_payload(counter),
                exts,
            )?;
            self.audio_seq += 1;
            self.audio_packets += 1;
        }
        Ok(())
    }
}

/// What one subscriber got on one stream: counter → (16-bit sequence number, keyframe).
struct Received {
    by_counter: BTreeMap<u32, (u16, bool)>,
    /// Whether the earliest frame received is a keyframe. By counter, not by arrival: under loss the
    /// keyframe forwarding starts with may arrive by retransmission after the frame behind it.
    first_keyframe: Option<bool>,
}

fn received_video(peer: &Str0mPeer, streams: Streams) -> anyhow::Result<Received> {
    let mut by_counter = BTreeMap::new();
    for p in peer.rtp_received(streams.video) {
        let (counter, key) = parse_vp8_payload(&p.payload)
            .with_context(|| format!("{}: VP8 payload altered: {:02x?}", peer.name, &p.payload))?;
        ensure!(*p.header.payload_type == peer.media.vp8_pt, "payload type {}", p.header.payload_type);
        if std::env::var_os("INTEROP_DEBUG").is_some() {
            eprintln!("{} video seq {} counter {counter} key {key}", peer.name, p.seq_no);
        }
        by_counter.insert(counter, (p.header.sequence_number, key));
    }
    let first_keyframe = by_counter.values().next().map(|(_, key)| *key);
    Ok(Received { by_counter, first_keyframe })
}

fn received_audio(peer: &Str0mPeer, streams: Streams) -> anyhow::Result<BTreeMap<u32, u16>> {
    let mut by_counter = BTreeMap::new();
    for p in peer.rtp_received(streams.audio) {
        let counter = parse_opus_payload(&p.payload)
            .with_context(|| format!("{}: Opus payload altered: {:02x?}", peer.name, &p.payload))?;
        ensure!(*p.header.payload_type == peer.media.opus_pt, "payload type {}", p.header.payload_type);
        by_counter.insert(counter, p.header.sequence_number);
    }
    Ok(by_counter)
}

/// How many of the packets the source sent from `first` up to `last` arrived.
fn coverage(received: &BTreeSet<u32>, first: u32, last: u32) -> (usize, usize) {
    let total = last.saturating_sub(first) as usize + 1;
    (received.range(first..=last).count(), total)
}

/// What `peer` received from `source`: intact payloads of the expected payload types, video
/// starting on a keyframe, sequence numbers that follow the sender's, and at least the given
/// fractions of what was sent since the first packet that arrived.
fn check_receiver(
    peer: &Str0mPeer,
    streams: Streams,
    source: &Source,
    (min_video, min_audio): (f64, f64),
    sender: &str,
) -> anyhow::Result<()> {
    let name = &peer.name;
    let video = received_video(peer, streams)?;
    ensure!(
        !video.by_counter.is_empty(),
        "{name} received no video after {} frames sent\n  {sender}\n  {}",
        source.video_frames,
        peer.summary()
    );
    ensure!(
        video.first_keyframe == Some(true),
        "{name}: the first video packet forwarded is not a keyframe: {:?}",
        video.by_counter.iter().take(3).collect::<Vec<_>>()
    );
    let seqs: BTreeMap<u32, u16> = video.by_counter.iter().map(|(c, (s, _))| (*c, *s)).collect();
    check_sequence_follows_counter(&format!("{name} video"), &seqs)?;
    let first = *seqs.keys().next().expect("not empty");
    // The last few frames may still be in flight when the run ends.
    let last_video = source.video_frames.saturating_sub(4);
    let (got, total) = coverage(&seqs.keys().copied().collect(), first, last_video);
    ensure!(
        got as f64 >= min_video * total as f64,
        "{name}: {got} of {total} video frames {first}..={last_video} arrived, missing {:?}\n  {}",
        (first..=last_video).filter(|c| !seqs.contains_key(c)).collect::<Vec<_>>(),
        peer.summary()
    );

    let audio = received_audio(peer, streams)?;
    ensure!(
        !audio.is_empty(),
        "{name} received no audio after {} packets sent\n  {}",
        source.audio_packets,
        peer.summary()
    );
    check_sequence_follows_counter(&format!("{name} audio"), &audio)?;
    let first_audio = *audio.keys().next().expect("not empty");
    let last = source.audio_packets.saturating_sub(6);
    let (got, total) = coverage(&audio.keys().copied().collect(), first_audio, last);
    ensure!(
        got as f64 >= min_audio * total as f64,
        "{name}: {got} of {total} audio packets {first_audio}..={last} arrived\n  {}",
        peer.summary()
    );
    if std::env::var_os("INTEROP_DEBUG").is_some() {
        let missing: Vec<u32> = (first..=last_video).filter(|c| !seqs.contains_key(c)).collect();
        let rtx: Vec<u16> = peer
            .raw_rtp_received(streams.video_rtx)
            .iter()
            .filter_map(|(_, p)| Some(u16::from_be_bytes([*p.first()?, *p.get(1)?])))
            .collect();
        eprintln!("{name}: missing {missing:?}, NACKed {:?}, RTX got {rtx:?}", peer.nacks_sent(streams.video));
    }
    eprintln!(
        "{name}: video {}/{} frames from {first}, audio {got}/{total} packets from {first_audio}; {}",
        seqs.len(),
        source.video_frames.saturating_sub(first),
        peer.summary()
    );
    Ok(())
}

fn check_media(call: &Call, source: &Source, min: (f64, f64)) -> anyhow::Result<()> {
    for sub in &call.subscribers {
        check_receiver(&sub.peer, sub.streams(), source, min, &call.publisher.summary())?;
    }
    Ok(())
}

/// The packet `peer`'s impairment dropped was NACKed by str0m, came back on the RTX stream with its
/// original sequence number, and was delivered; returns its sequence number.
fn check_repaired(peer: &Str0mPeer, streams: Streams, rtx_pt: u8) -> anyhow::Result<u16> {
    let dropped = peer
        .impairment
        .drop_inbound_rtp
        .as_ref()
        .and_then(|d| d.dropped)
        .with_context(|| format!("fewer than 11 video packets reached the receiver: {}", peer.summary()))?;
    ensure!(
        peer.nacks_sent(streams.video).contains(&dropped),
        "str0m did not NACK {dropped} (harness problem): sent {:?}",
        peer.nacks_sent(streams.video)
    );
    let rtx = peer.raw_rtp_received(streams.video_rtx);
    let resent: Vec<u16> =
        rtx.iter().filter_map(|(_, payload)| Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))).collect();
    ensure!(
        resent.contains(&dropped),
        "no RTX for NACKed packet {dropped} on ssrc {}: RTX original sequence numbers {resent:?}\n  {}",
        streams.video_rtx,
        peer.summary()
    );
    ensure!(rtx.iter().all(|(h, _)| *h.payload_type == rtx_pt), "RTX payload type");
    let video = received_video(peer, streams)?;
    ensure!(video.by_counter.values().any(|(s, _)| *s == dropped), "packet {dropped} never delivered");
    Ok(dropped)
}

/// Control plane only (runs now): str0m's parameters are accepted, consumers come back with
/// parameters a str0m receiver can be configured with, and the connections stay up.
#[test]
fn str0m_parameters_produce_and_consume() -> anyhow::Result<()> {
    let mut call = Call::set_up(2, |_| Impairment::default())?;
    let (a, b) = (call.subscribers[0].streams(), call.subscribers[1].streams());
    // Each consumer has its own SSRCs, distinct from the producer's.
    let ssrcs: BTreeSet<u32> = [a.video, a.video_rtx, a.audio, b.video, b.video_rtx, b.audio].into_iter().collect();
    ensure!(ssrcs.len() == 6, "consumer SSRCs collide: {ssrcs:?}");
    ensure!(!ssrcs.contains(&VIDEO_SSRC) && !ssrcs.contains(&AUDIO_SSRC) && !ssrcs.contains(&VIDEO_RTX_SSRC));
    let mut source = Source::new();
    call.run(&mut source, Duration::from_millis(500))?;
    ensure!(call.publisher.is_connected(), "{}", call.publisher.summary());
    ensure!(call.subscribers.iter().all(|s| s.peer.is_connected()));
    ensure!(call.worker.is_alive(), "the worker died while media was sent to it");
    Ok(())
}

#[test]
fn media_flows_from_a_publisher_to_two_subscribers() -> anyhow::Result<()> {
    let mut call = Call::set_up(2, |_| Impairment::default())?;
    let mut source = Source::new();
    call.run(&mut source, Duration::from_secs(3))?;
    check_media(&call, &source, (0.99, 0.99))
}

#[test]
fn a_nack_from_a_subscriber_is_answered_with_a_retransmission() -> anyhow::Result<()> {
    let mut call = Call::set_up(1, |_| Impairment::default())?;
    let streams = call.subscribers[0].streams();
    // Lose the 11th video packet on its way from the worker to the subscriber.
    call.subscribers[0].peer.impairment.drop_inbound_rtp = Some(DropOneRtp::new(streams.video, 10));
    let mut source = Source::new();
    call.run(&mut source, Duration::from_secs(3))?;
    let sub = &call.subscribers[0];
    check_repaired(&sub.peer, streams, sub.peer.media.vp8_rtx_pt)?;
    // Unwrapped by str0m, the retransmission is the original packet, byte for byte, in sequence.
    check_media(&call, &source, (0.99, 0.99))
}

#[test]
fn a_keyframe_request_from_a_subscriber_reaches_the_publisher() -> anyhow::Result<()> {
    let mut call = Call::set_up(1, |_| Impairment::default())?;
    let streams = call.subscribers[0].streams();
    let mut source = Source::new();
    // Media flowing, and the keyframe requests the worker makes on its own (consumer resumed) over.
    call.run(&mut source, Duration::from_millis(2500))?;
    ensure!(
        !call.subscribers[0].peer.rtp_received(streams.video).is_empty(),
        "no video reached the subscriber: {}\n  {}",
        call.subscribers[0].peer.summary(),
        call.publisher.summary()
    );
    let before = call.publisher.keyframe_requests().len();
    let frames_before = source.video_frames;
    call.subscribers[0].peer.request_keyframe(streams.video)?;
    call.run(&mut source, Duration::from_secs(2))?;
    check_keyframe_answered(&call.publisher, &call.subscribers[0].peer, streams, before, frames_before)
}

/// After `receiver` asked for a keyframe: it sent a PLI, the publisher got one more keyframe
/// request than `before`, and a keyframe sent after frame `frames_before` arrived.
fn check_keyframe_answered(
    publisher: &Str0mPeer,
    receiver: &Str0mPeer,
    streams: Streams,
    before: usize,
    frames_before: u32,
) -> anyhow::Result<()> {
    ensure!(receiver.rtcp_sent().any(|r| matches!(r, Rtcp::Pli(_))), "str0m sent no PLI (harness problem)");
    let after = publisher.keyframe_requests().len();
    ensure!(after > before, "the receiver's PLI did not reach the publisher ({before} requests before, {after} after)");
    let video = received_video(receiver, streams)?;
    ensure!(
        video.by_counter.range(frames_before..).any(|(_, (_, key))| *key),
        "no keyframe reached the receiver after its request"
    );
    Ok(())
}

/// A consumer resumed waits for a keyframe; the publisher's answer is lost on its way to the worker
/// and repaired by NACK/RTX, while the frames after it arrive first. Every frame from that
/// keyframe on must reach the subscriber, or be resent when it NACKs.
#[test]
fn a_keyframe_repaired_upstream_leaves_no_hole_behind_it() -> anyhow::Result<()> {
    let mut call = Call::set_up(1, |_| Impairment::default())?;
    let mut source = Source::new();
    call.run(&mut source, Duration::from_millis(1500))?;
    let consumer = call.subscribers[0].video.id;
    ensure!(call.worker.ok(Request::Consumer(consumer, ConsumerRequest::Pause))? == Response::Ok);
    call.run(&mut source, Duration::from_millis(300))?;
    source.lose_next_requested_keyframe = true;
    call.worker.resume_consumer(consumer)?;
    call.run(&mut source, Duration::from_millis(1500))?;
    let lost = call.publisher.impairment.drop_outbound_rtp.as_ref().and_then(|d| d.dropped);
    let lost = lost.context("the worker asked for no keyframe on resume, or none was sent")?;
    let keyframe = lost.wrapping_sub(21_000) as u32;
    ensure!(source.sent_video.get(&keyframe) == Some(&true), "frame {keyframe} is not a keyframe");
    let streams = call.subscribers[0].streams();
    let sub = &call.subscribers[0].peer;
    let video = received_video(sub, streams)?;
    ensure!(video.by_counter.get(&keyframe).is_some_and(|(_, key)| *key), "keyframe {keyframe} never arrived");
    let last = source.video_frames.saturating_sub(4);
    let missing: Vec<u32> = (keyframe..=last).filter(|c| !video.by_counter.contains_key(c)).collect();
    ensure!(
        missing.is_empty(),
        "after keyframe {keyframe} (publisher seq {lost}, repaired by RTX) frames {missing:?} never arrived; \
         the subscriber NACKed {:?} and got RTX for {:?}",
        sub.nacks_sent(streams.video),
        sub.raw_rtp_received(streams.video_rtx)
            .iter()
            .filter_map(|(_, p)| Some(u16::from_be_bytes([*p.first()?, *p.get(1)?])))
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn media_flows_through_five_percent_loss_both_ways() -> anyhow::Result<()> {
    let mut call = Call::set_up(2, |seed| Impairment::lossy(0x5eed + seed, 0.05))?;
    let mut source = Source::new();
    call.run(&mut source, Duration::from_secs(4))?;
    if std::env::var_os("INTEROP_DEBUG").is_some() {
        let p = &call.publisher;
        let nacked: Vec<u16> = p
            .rtcp_received()
            .filter_map(|r| match r {
                Rtcp::Nack(n) if *n.ssrc == VIDEO_SSRC => Some(n.reports.iter().map(|e| e.pid).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        let resent: Vec<u16> = p
            .events
            .iter()
            .filter_map(|(_, e)| match e.as_raw_packet() {
                Some(str0m::rtp::RawPacket::RtpTx(h, payload)) if *h.ssrc == VIDEO_RTX_SSRC => {
                    Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))
                }
                _ => None,
            })
            .collect();
        let lost: Vec<u16> =
            p.impairment.dropped_rtp.iter().filter(|id| id.ssrc == VIDEO_SSRC).map(|id| id.seq).collect();
        eprintln!("publisher lost {lost:?}, got NACKs for {nacked:?}, resent {resent:?}\n{}", p.summary());
        for s in &call.subscribers {
            let lost: Vec<u16> = s
                .peer
                .impairment
                .dropped_rtp
                .iter()
                .filter(|id| id.ssrc == s.streams().video)
                .map(|id| id.seq)
                .collect();
            eprintln!("{} lost {lost:?}", s.peer.name);
        }
    }
    // Video is repaired by NACK/RTX on both hops; audio is not retransmitted (two lossy hops). Not
    // every video loss is repaired: when the keyframe forwarding starts on is itself lost upstream,
    // the frames the worker received before its retransmission are dropped by the keyframe gate and
    // their NACKs stay unanswered (see `a_keyframe_repaired_upstream_leaves_no_hole_behind_it`).
    check_media(&call, &source, (0.9, 0.8))?;
    let nacks = call.subscribers.iter().flat_map(|s| s.peer.rtcp_sent()).filter(|r| matches!(r, Rtcp::Nack(_))).count();
    ensure!(nacks > 0, "no NACK under 5% loss: the loss filter did not work");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The harness checked against str0m alone: the same source, drops and checks, with the two str0m
// peers wired to each other. If these pass and a test above fails, the worker is the cause.

/// A str0m publisher and a str0m receiver connected directly, the receiver expecting the
/// publisher's own SSRCs and payload types.
fn loopback(impairment: Impairment) -> anyhow::Result<(Str0mPeer, Str0mPeer, Streams)> {
    let media = PeerMedia::chrome_like_sender();
    let (mut publisher, receiver) = Str0mPeer::loopback_pair(media.clone(), media)?;
    // The publisher's impairment alone covers both directions of the one hop.
    publisher.impairment = impairment;
    let mut receiver = receiver;
    let connected = drive_peers(&mut [&mut publisher, &mut receiver], CONNECT_TIMEOUT, |peers| {
        Ok(peers.iter().all(|p| p.is_connected()))
    })?;
    ensure!(connected, "loopback did not connect: {}\n  {}", publisher.summary(), receiver.summary());
    publisher.declare_send(MediaKind::Video, "0", VIDEO_SSRC, Some(VIDEO_RTX_SSRC));
    publisher.declare_send(MediaKind::Audio, "1", AUDIO_SSRC, None);
    receiver.declare_receive(MediaKind::Video, "0", VIDEO_SSRC, Some(VIDEO_RTX_SSRC));
    receiver.declare_receive(MediaKind::Audio, "1", AUDIO_SSRC, None);
    let streams = Streams { video: VIDEO_SSRC, video_rtx: VIDEO_RTX_SSRC, audio: AUDIO_SSRC };
    Ok((publisher, receiver, streams))
}

fn run_loopback(
    publisher: &mut Str0mPeer,
    receiver: &mut Str0mPeer,
    source: &mut Source,
    duration: Duration,
) -> anyhow::Result<()> {
    let stop_sending = Instant::now() + duration;
    drive_peers(&mut [publisher, receiver], duration + TAIL, |peers| {
        if Instant::now() < stop_sending {
            source.tick(peers[0])?;
        }
        Ok(false)
    })?;
    Ok(())
}

#[test]
fn harness_self_check_media_nack_and_keyframe_between_str0m_peers() -> anyhow::Result<()> {
    let (mut publisher, mut receiver, streams) = loopback(Impairment::default())?;
    receiver.impairment.drop_inbound_rtp = Some(DropOneRtp::new(VIDEO_SSRC, 10));
    let mut source = Source::new();
    run_loopback(&mut publisher, &mut receiver, &mut source, Duration::from_millis(1500))?;
    check_receiver(&receiver, streams, &source, (0.99, 0.99), &publisher.summary())?;
    check_repaired(&receiver, streams, receiver.media.vp8_rtx_pt)?;

    let before = publisher.keyframe_requests().len();
    let frames_before = source.video_frames;
    receiver.request_keyframe(VIDEO_SSRC)?;
    run_loopback(&mut publisher, &mut receiver, &mut source, Duration::from_millis(500))?;
    check_keyframe_answered(&publisher, &receiver, streams, before, frames_before)?;
    // Only the first frame and the requested one are keyframes.
    let keyframes: Vec<u32> = source.sent_video.iter().filter(|(_, key)| **key).map(|(c, _)| *c).collect();
    ensure!(keyframes.len() == 2 && keyframes[0] == 0, "keyframes sent: {keyframes:?}");
    Ok(())
}

#[test]
fn harness_self_check_five_percent_loss_between_str0m_peers() -> anyhow::Result<()> {
    let (mut publisher, mut receiver, streams) = loopback(Impairment::lossy(0x5eed, 0.05))?;
    let mut source = Source::new();
    run_loopback(&mut publisher, &mut receiver, &mut source, Duration::from_secs(2))?;
    // One lossy hop here, so the thresholds of the worker test (two hops) hold with room.
    check_receiver(&receiver, streams, &source, (0.95, 0.8), &publisher.summary())?;
    ensure!(publisher.impairment.outbound.dropped > 0, "nothing lost");
    ensure!(receiver.rtcp_sent().any(|r| matches!(r, Rtcp::Nack(_))), "no NACK under 5% loss");
    Ok(())
}
