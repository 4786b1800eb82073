//! Writes the fuzz targets' seed corpora (`fuzz/corpus/<target>/`) with the project's own
//! writers, so the seeds are real messages and stay in step with the code:
//! `cargo run -p octo-worker --features testing --example fuzz_seeds -- fuzz/corpus`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use octo_ipc::*;
use octo_worker::core::ice::stun::{BindingRequest, write_binding_error, write_binding_request, write_binding_success};
use octo_worker::core::rtp::rtcp::*;
use octo_worker::core::rtp::twcc::TwccRecorder;
use octo_worker::core::sctp::{ChannelType, DataChannelOpen, Reliability, dcep::write_ack};
use octo_worker::core::srtp::{MasterKey, SrtpProfile, SrtpSendContext};
use octo_worker::core::testing::{chrome_vp8_parameters, media_codecs, vp8_payload};
use octo_worker::fuzzing::*;

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let stun = stun_seeds();
    write(&root, "stun", &stun);
    write(&root, "ice_lite", &[join(&stun[..1]), join(&stun)]);
    let rtp = rtp_seeds();
    write(&root, "rtp_header", &rtp);
    write(&root, "rtp_rewrite", &rtp.iter().map(|p| [&[3, 2, 1, 9][..], p].concat()).collect::<Vec<_>>());
    write(&root, "vp8", &[join(&vp8_seeds())]);
    write(&root, "keyframe", &keyframe_seeds());
    let rtcp = rtcp_seeds();
    write(&root, "rtcp_compound", &rtcp);
    write(&root, "transport_cc", &[twcc_seed()]);
    write(&root, "nack", &[nack_seed(), (0u16..40).filter(|s| s % 7 != 3).flat_map(u16::to_be_bytes).collect()]);
    write(&root, "srtp_unprotect", &srtp_seeds(&rtp, &rtcp));
    write(&root, "sctp_association", &[[&[7][..], &join(&sctp_seed_packets())].concat()]);
    write(&root, "dcep", &dcep_seeds());
    write(&root, "ipc_controller", &controller_frames_seeds());
    write(&root, "ipc_worker", &worker_frames_seeds());
    write(&root, "worker", &worker_seeds(&rtp, &rtcp));
    write(&root, "tcp_framing", &tcp_framing_seeds(&stun, &rtp, &rtcp));
    write(&root, "signaling", &signaling_seeds());
}

/// One request of each event of Octo's dialect as mediasoup-client sends it (`event`, NUL, JSON),
/// with the shapes of the worker's Chrome fixtures.
fn signaling_seeds() -> Vec<Vec<u8>> {
    use octo_worker::core::testing::{chrome_opus_parameters, device_capabilities};
    let router = octo_worker::core::ortc::router_rtp_capabilities(&media_codecs()).expect("the fixture's codecs");
    let id = "1b6a2f5e-3c43-4d1e-9a57-0a3e2f1c9b88";
    let dtls = serde_json::json!({"role": "client", "fingerprints": [{"algorithm": "sha-256",
        "value": "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"}]});
    let requests = [
        ("joinRoom", serde_json::json!({"roomId": "room-1", "displayName": "Ann", "token": "x.y.z"})),
        (
            "createWebRtcTransport",
            serde_json::json!({"direction": "send", "sctpCapabilities": {"numStreams": {"OS": 1024, "MIS": 1024}}}),
        ),
        ("connectWebRtcTransport", serde_json::json!({"transportId": id, "dtlsParameters": dtls})),
        (
            "produce",
            serde_json::json!({"transportId": id, "kind": "video", "rtpParameters": chrome_vp8_parameters(), "appData": {"source": "camera"}}),
        ),
        ("produce", serde_json::json!({"transportId": id, "kind": "audio", "rtpParameters": chrome_opus_parameters()})),
        (
            "consume",
            serde_json::json!({"transportId": id, "producerId": id, "rtpCapabilities": device_capabilities(&router)}),
        ),
        ("pauseConsumer", serde_json::json!({"consumerId": id})),
        ("setConsumerPreferredLayers", serde_json::json!({"consumerId": id, "spatialLayer": 1, "temporalLayer": 2})),
        ("setConsumerPriority", serde_json::json!({"consumerId": id, "priority": 3})),
        ("closeProducer", serde_json::json!({"producerId": id})),
        ("restartIce", serde_json::json!({"transportId": id})),
        ("getStats", serde_json::json!({"id": id})),
        (
            "produceData",
            serde_json::json!({"transportId": id, "sctpStreamParameters": {"streamId": 1, "ordered": true}, "label": "chat", "protocol": "", "appData": {}}),
        ),
        ("consumeData", serde_json::json!({"transportId": id, "dataProducerId": id})),
        ("leaveRoom", serde_json::json!({})),
    ];
    requests.iter().map(|(event, payload)| [event.as_bytes(), &[0], payload.to_string().as_bytes()].concat()).collect()
}

/// RFC 4571 streams of real packets (a read-size pattern byte first): what an ICE-TCP connection
/// carries, and one ending inside a frame.
fn tcp_framing_seeds(stun: &[Vec<u8>], rtp: &[Vec<u8>], rtcp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let stream = |pattern: u8, packets: &[&Vec<u8>]| {
        let mut out = vec![pattern];
        for p in packets {
            octo_worker::core::tcp_framing::encode(p, &mut out).expect("a packet frames");
        }
        out
    };
    let all: Vec<&Vec<u8>> = stun.iter().chain(rtp).chain(rtcp).collect();
    let mut cut = stream(5, &all[..3]);
    cut.truncate(cut.len() - 7);
    vec![stream(1, &all), stream(0x5a, &all[..2]), cut]
}

/// Replaces the `seed-*` files of `root/target` with one file per seed (regression inputs stay).
fn write(root: &Path, target: &str, seeds: &[Vec<u8>]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("corpus entry").path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
            std::fs::remove_file(path).expect("old seed");
        }
    }
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("seed file");
    }
    println!("{target}: {} seeds", seeds.len());
}

/// Seeds as [`records`] of one input.
fn join(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        record(&mut out, m);
    }
    out
}

fn with(mode: u8, datagram: &[u8]) -> Vec<u8> {
    [&[mode][..], datagram].concat()
}

fn stun_seeds() -> Vec<Vec<u8>> {
    let username = format!("{ICE_UFRAG}:remote");
    let mut seeds = Vec::new();
    for use_candidate in [true, false] {
        let mut buf = vec![0u8; 512];
        let req = BindingRequest {
            transaction_id: [use_candidate as u8; 12],
            username: username.as_bytes(),
            password: ICE_PASSWORD.as_bytes(),
            priority: 1_853_824_767,
            use_candidate,
            ice_controlling: Some(42),
            ice_controlled: None,
        };
        let n = write_binding_request(&mut buf, &req).expect("binding request");
        seeds.push(buf[..n].to_vec());
    }
    let mut buf = vec![0u8; 512];
    let addr = "192.0.2.7:50000".parse().expect("address");
    let n = write_binding_success(&mut buf, [5; 12], addr, ICE_PASSWORD.as_bytes()).expect("success");
    seeds.push(buf[..n].to_vec());
    let n = write_binding_error(&mut buf, [6; 12], 487, "Role Conflict", Some(ICE_PASSWORD.as_bytes())).expect("error");
    seeds.push(buf[..n].to_vec());
    seeds
}

/// RTP as Chrome sends it to the worker's fixtures: payload type 96, SSRC 1111, one-byte extensions
/// mid (id 4) and transport-cc (id 3); then two-byte extensions with a CSRC and padding.
fn rtp_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (seq, keyframe) in [(0u16, true), (1, false)] {
        let mut p = vec![0x90, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
        p.extend_from_slice(&1111u32.to_be_bytes());
        p.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0x40, b'0', 0x31, (seq >> 8) as u8, seq as u8, 0, 0, 0]);
        p.extend_from_slice(&vp8_payload(keyframe, 1)[..24]);
        seeds.push(p);
    }
    let mut p = vec![0xB1, 0xE0, 0, 9, 0, 0, 1, 0, 0, 0, 0x22, 0x22, 0, 0, 0x33, 0x33];
    p.extend_from_slice(&[0x10, 0x00, 0, 2, 1, 3, b'a', b'b', b'c', 20, 1, 7]);
    p.extend_from_slice(&[0x90, 0x80, 0x81, 0x05, 0xAA, 0xBB, 0, 0, 0, 4]);
    seeds.push(p);
    seeds
}

/// VP8 descriptors: 15-bit picture id with TL0PICIDX and a temporal layer, 7-bit id, none.
fn vp8_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0x90, 0xE0, 0x81, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a],
        vec![0x80, 0xE0, 0x81, 0x01, 0x05, 0x40, 0x11],
        vec![0x90, 0xE0, 0x81, 0x02, 0x06, 0x20, 0x01, 0x00, 0x00],
        vec![0x90, 0x80, 0x12, 0x01],
        vec![0x10, 0x01, 0x00, 0x00],
    ]
}

fn keyframe_seeds() -> Vec<Vec<u8>> {
    vec![
        vp8_payload(true, 1)[..16].to_vec(),
        // VP9: I, B, E with a 15-bit picture id, then frame bytes.
        vec![0x8C, 0x80, 0x01, 0xAA, 0xBB],
        // H264: an IDR slice; a STAP-A with SPS and PPS; the start of an FU-A of an IDR.
        vec![0x65, 0x88, 0x84, 0x00],
        vec![0x18, 0x00, 0x03, 0x67, 0x42, 0x00, 0x00, 0x02, 0x68, 0xCE],
        vec![0x7C, 0x85, 0x88, 0x84],
        // AV1: N=1 (a new coded video sequence), one OBU.
        vec![0x18, 0x0A, 0x0B, 0x00],
        b"video/VP8".to_vec(),
    ]
}

fn rtcp_seeds() -> Vec<Vec<u8>> {
    let block = ReportBlock {
        ssrc: 1111,
        fraction_lost: 3,
        cumulative_lost: 7,
        extended_highest_seq: 70_000,
        jitter: 12,
        ..Default::default()
    };
    let info = SenderInfo {
        ssrc: 2222,
        ntp: 0xE000_0000_8000_0000,
        rtp_timestamp: 90_000,
        packet_count: 100,
        octet_count: 120_000,
    };
    let mut buf = vec![0u8; 1200];
    let mut seeds = Vec::new();
    let mut w = RtcpCompoundWriter::new(&mut buf);
    w.push(|b| write_sender_report(b, &info, &[block])).expect("SR");
    w.push(|b| write_receiver_report(b, 2222, &[block, block])).expect("RR");
    w.push(|b| write_sdes_cname(b, 2222, b"octo-fuzz")).expect("SDES");
    let n = w.len();
    seeds.push(buf[..n].to_vec());
    let mut w = RtcpCompoundWriter::new(&mut buf);
    w.push(|b| write_receiver_report(b, 3333, &[block])).expect("RR");
    w.push(|b| write_nack(b, 3333, 1111, &[10, 11, 13, 40])).expect("NACK");
    w.push(|b| write_pli(b, 3333, 1111)).expect("PLI");
    w.push(|b| write_fir(b, 3333, &[FirEntry { ssrc: 1111, seq_nr: 4 }])).expect("FIR");
    w.push(|b| write_remb(b, 3333, 1_500_000, &[1111])).expect("REMB");
    w.push(|b| write_bye(b, &[1111])).expect("BYE");
    let n = w.len();
    seeds.push(buf[..n].to_vec());
    seeds.push(twcc_seed());
    seeds
}

/// A transport-cc feedback packet as the worker's own recorder writes it: a run, a gap, reordering.
fn twcc_seed() -> Vec<u8> {
    let start = Instant::now();
    let mut recorder = TwccRecorder::new(3333);
    for (i, seq) in [1u16, 2, 3, 4, 6, 5, 9, 10, 11, 300].into_iter().enumerate() {
        recorder.record(seq, start + Duration::from_millis(i as u64 * 7));
    }
    let mut out = vec![0u8; 1200];
    let n = recorder.poll_feedback(start + Duration::from_secs(1), 1111, &mut out).expect("feedback due");
    out.truncate(n);
    out
}

fn nack_seed() -> Vec<u8> {
    let mut buf = vec![0u8; 100];
    let n = write_nack(&mut buf, 3333, 1111, &[100, 101, 105, 116, 117, 200]).expect("NACK");
    buf.truncate(n);
    buf
}

/// For each profile: plaintext RTP and RTCP the target protects (flag 1), and one RTP packet
/// already protected with the fixed keys (flag 0).
fn srtp_seeds(rtp: &[Vec<u8>], rtcp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (i, profile) in SrtpProfile::ALL.into_iter().enumerate() {
        let key =
            MasterKey::new(profile, &SRTP_MASTER_KEY[..profile.key_len()], &SRTP_MASTER_SALT[..profile.salt_len()])
                .expect("key");
        let mut send = SrtpSendContext::new(&key);
        let mut buf = vec![0u8; 1600];
        buf[..rtp[1].len()].copy_from_slice(&rtp[1]);
        let n = send.encrypt_rtp(&mut buf, rtp[1].len()).expect("protect");
        let records = join(&[with(1, &rtp[0]), with(1, &rtcp[0]), with(0, &buf[..n])]);
        seeds.push([&[i as u8][..], &records].concat());
    }
    seeds
}

fn dcep_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for reliability in [Reliability::Reliable, Reliability::MaxRetransmits(3), Reliability::MaxPacketLifeTime(500)] {
        let open = DataChannelOpen {
            channel_type: ChannelType { ordered: false, reliability },
            priority: 256,
            label: "chat",
            protocol: "json",
        };
        let mut buf = vec![0u8; open.len()];
        open.write(&mut buf).expect("DCEP OPEN");
        seeds.push(buf);
    }
    let mut ack = vec![0u8; 1];
    write_ack(&mut ack).expect("DCEP ACK");
    seeds.push(ack);
    seeds
}

fn controller_frames_seeds() -> Vec<Vec<u8>> {
    let requests = [
        Request::Worker(WorkerRequest::CreateRouter { router_id: RouterId(1), media_codecs: media_codecs() }),
        Request::Router(
            RouterId(1),
            RouterRequest::CreateWebRtcTransport { transport_id: TransportId(2), options: Default::default() },
        ),
        Request::Transport(
            TransportId(2),
            TransportRequest::Produce {
                producer_id: ProducerId(3),
                kind: MediaKind::Video,
                rtp_parameters: chrome_vp8_parameters(),
                paused: false,
            },
        ),
        Request::Consumer(ConsumerId(4), ConsumerRequest::Resume),
    ];
    let mut all = Vec::new();
    let mut seeds: Vec<Vec<u8>> = requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            let mut out = Vec::new();
            encode_frame(&ControllerMessage::Request { id: i as u32, request }, &mut out).expect("frame");
            all.extend_from_slice(&out);
            out
        })
        .collect();
    seeds.push(all);
    seeds
}

fn worker_frames_seeds() -> Vec<Vec<u8>> {
    let messages = [
        WorkerMessage::Notification(Notification::Worker(WorkerNotification::Running { pid: 7 })),
        WorkerMessage::Response { id: 1, result: Ok(Response::Ok) },
        WorkerMessage::Response { id: 2, result: Ok(Response::ProducerCreated { rtp_type: RtpType::Simple }) },
    ];
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            encode_frame(m, &mut out).expect("frame");
            out
        })
        .collect()
}

/// A call as the worker fuzzer's publisher makes it: a consent check, media and reports through
/// SRTP, time passing, and a stranger's datagram.
fn worker_seeds(rtp: &[Vec<u8>], rtcp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let fuzzer = WorkerFuzzer::new();
    let (ufrag, password) = fuzzer.ice_credentials();
    let username = format!("{ufrag}:peer");
    let mut buf = vec![0u8; 512];
    let req = BindingRequest {
        transaction_id: [9; 12],
        username: username.as_bytes(),
        password: password.as_bytes(),
        priority: 1_853_824_767,
        use_candidate: true,
        ice_controlling: Some(42),
        ice_controlled: None,
    };
    let n = write_binding_request(&mut buf, &req).expect("binding request");
    let binding = with(0, &buf[..n]);
    vec![
        join(&[binding.clone(), with(2, &rtp[0]), with(2, &rtp[1]), with(3, &[10]), with(2, &rtcp[1])]),
        join(&[with(2, &rtcp[0]), with(2, &rtcp[2]), with(3, &[100]), binding]),
        join(&[with(1, &rtp[0]), with(0, &[22, 254, 253, 0, 0]), with(0, &rtp[1])]),
    ]
}
