//! Prometheus `/metrics`: valid text exposition, and counters that move with traffic — raw
//! datagrams, and real media (str0m peers publishing and subscribing through Octo's signaling).

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use octo_tests::interop::loss::DropOneRtp;
use octo_tests::interop::media::{PeerMedia, parse_opus_payload, parse_vp8_payload};
use octo_tests::interop::peer::{DtlsSide, drive_peers};
use octo_tests::interop::signaled::SignaledPeer;
use octo_tests::interop::source::Source;
use octo_tests::{Octo, http_get, wait_for};
use serde_json::json;

/// One sample: metric name, labels in order, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

/// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (label names without `:`).
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c == '_' || (colon && c == ':') || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// A sample value as the text format writes it (Go float syntax, with `+Inf`, `-Inf`, `NaN`).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => s.parse().ok(),
        _ => None,
    }
}

type Labels = Vec<(String, String)>;

/// Labels `{a="x",b="y\"z"}` from `rest` (starting after `{`); returns them and what follows `}`.
fn parse_labels(mut rest: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !valid_name(name, false) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ,".into());
        }
    }
}

/// Parses the Prometheus text exposition format (version 0.0.4) strictly: every line is a HELP, a
/// TYPE or a sample; each family has one HELP and one TYPE before its samples, which are
/// contiguous; only counters and gauges (what Octo exports), counters named `*_total` and never
/// negative; valid names, escapes and values; no series twice; a final newline.
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, ()> = HashMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut samples: Vec<Sample> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| Err(format!("line {}: {why}: {line:?}", n + 1));
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            if !valid_name(name, true) {
                return fail("bad family name");
            }
            if current.as_deref() != Some(name) {
                if let Some(done) = current.replace(name.to_owned()) {
                    finished.push(done);
                }
                if finished.iter().any(|f| f == name) {
                    return fail("family declared again after others");
                }
            }
            match keyword {
                "HELP" if helps.insert(name.to_owned(), ()).is_some() => return fail("second HELP"),
                "HELP" if arg.is_empty() => return fail("empty HELP"),
                "HELP" => {}
                "TYPE" if types.contains_key(name) => return fail("second TYPE"),
                "TYPE" if samples.iter().any(|s| s.name == name) => return fail("TYPE after samples"),
                "TYPE" if arg == "counter" || arg == "gauge" => {
                    if arg == "counter" && !name.ends_with("_total") {
                        return fail("counter not named *_total");
                    }
                    types.insert(name.to_owned(), arg.to_owned());
                }
                "TYPE" => return fail("unexpected type"),
                _ => return fail("comment that is neither HELP nor TYPE"),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return fail("empty line or malformed comment");
        }
        let name_end = line.find(['{', ' ']).ok_or(format!("line {}: no value: {line:?}", n + 1))?;
        let name = &line[..name_end];
        if !valid_name(name, true) {
            return fail("bad metric name");
        }
        if current.as_deref() != Some(name) {
            return fail("sample outside its family's block");
        }
        let Some(kind) = types.get(name) else { return fail("sample before its TYPE") };
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(r) => parse_labels(r).map_err(|e| format!("line {}: {e}: {line:?}", n + 1))?,
            None => (Vec::new(), &line[name_end..]),
        };
        let mut fields = rest.strip_prefix(' ').ok_or(format!("line {}: no space before value", n + 1))?.split(' ');
        let value = fields.next().and_then(parse_value).ok_or(format!("line {}: bad value: {line:?}", n + 1))?;
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return fail("bad timestamp");
        }
        if fields.next().is_some() {
            return fail("trailing fields");
        }
        if kind == "counter" && (value.is_nan() || value < 0.0) {
            return fail("negative or NaN counter");
        }
        let sample = Sample { name: name.to_owned(), labels, value };
        let same_series = |s: &Sample| {
            let mut a = s.labels.clone();
            let mut b = sample.labels.clone();
            a.sort();
            b.sort();
            s.name == sample.name && a == b
        };
        if samples.iter().any(same_series) {
            return fail("series twice");
        }
        samples.push(sample);
    }
    Ok(samples)
}

#[test]
fn the_parser_refuses_malformed_exposition() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\na_total 1e3\n\
                # HELP g G.\n# TYPE g gauge\ng -1.5 1700000000000\ng{k=\"v\"} +Inf\n";
    let samples = parse(good).unwrap();
    assert_eq!(samples.len(), 4);
    assert_eq!(samples[0].labels[1].1, "q\"\\\n");
    for bad in [
        "# TYPE a_total counter\na_total 1",                          // no final newline
        "a 1\n",                                                      // no TYPE
        "# TYPE a counter\na 1\n",                                    // counter not *_total
        "# TYPE a_total counter\na_total -1\n",                       // negative counter
        "# TYPE g gauge\ng{x=\"1\"} 1\ng{x=\"1\"} 2\n",               // series twice
        "# TYPE g gauge\ng{x=1} 1\n",                                 // unquoted label
        "# TYPE g gauge\ng{x=\"a\\q\"} 1\n",                          // bad escape
        "# TYPE g gauge\ng{x=\"1\"y=\"2\"} 1\n",                      // no comma
        "# TYPE g gauge\ng{x=\"1\",x=\"2\"} 1\n",                     // label twice
        "# TYPE g gauge\ng one\n",                                    // bad value
        "# TYPE g gauge\ng 1 2 3\n",                                  // trailing field
        "# TYPE g gauge\n# TYPE h gauge\nh 1\ng 1\n",                 // sample outside its block
        "# TYPE g gauge\ng 1\n# TYPE h gauge\nh 1\n# HELP g again\n", // family reopened
        "# TYPE g summary\ng 1\n",                                    // not a type Octo exports
        "# TYPE g gauge\n\ng 1\n",                                    // empty line
        "# TYPE 1g gauge\n1g 1\n",                                    // bad name
        "# HELP g\n# TYPE g gauge\ng 1\n",                            // empty help
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

fn scrape(metrics: SocketAddr) -> anyhow::Result<Vec<Sample>> {
    let (status, body) = http_get(metrics, "/metrics")?;
    ensure!(status == 200, "/metrics answered {status}");
    parse(&body).map_err(|e| anyhow::anyhow!("{e}\n{body}"))
}

/// The sum of `name` over the samples whose labels include every pair of `want`.
fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && want.iter().all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v)))
        .map(|s| s.value)
        .sum()
}

#[test]
fn metrics_parse_and_count_datagrams() {
    let octo = Octo::start(&["--workers", "2"]).unwrap();
    let metrics = octo.metrics_addr.expect("metrics address logged");
    let before = scrape(metrics).unwrap();
    assert_eq!(sum(&before, "octo_workers_live", &[]), 2.0);
    for name in ["octo_worker_cpu_seconds_total", "octo_worker_resident_memory_bytes", "octo_transports", "octo_peers"]
    {
        assert_eq!(before.iter().filter(|s| s.name == name).count(), 2, "{name} per worker");
    }
    assert!(sum(&before, "octo_worker_resident_memory_bytes", &[]) > 1e6);

    // Datagrams at a worker's media port: counted and dropped (nobody owns them).
    let line = wait_for(Duration::from_secs(5), || octo.log_lines("worker running").into_iter().next()).unwrap();
    let port: u16 =
        line.split("127.0.0.1:").nth(1).unwrap().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
    let media: SocketAddr = ([127, 0, 0, 1], port).into();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50u8 {
        udp.send_to(&[0x80 | (i & 1), 96, 0, i, 1, 2, 3, 4, 5, 6, 7, 8], media).unwrap();
    }
    let dropped = |s: &[Sample]| sum(s, "octo_packets_dropped_total", &[]);
    let moved = wait_for(Duration::from_secs(5), || {
        let after = scrape(metrics).ok()?;
        (dropped(&after) >= dropped(&before) + 50.0).then_some(())
    });
    assert!(moved.is_some(), "dropped datagrams not counted");
    // ICE-TCP listens on the same port number: a connection that sends an HTTP request where
    // RFC 4571 frames belong is accepted, then closed as malformed, and both are counted.
    let tcp = |s: &[Sample], name: &str| sum(s, name, &[]);
    let mut stream = std::net::TcpStream::connect(media).unwrap();
    std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let closed = wait_for(Duration::from_secs(5), || {
        let after = scrape(metrics).ok()?;
        let accepted = tcp(&after, "octo_ice_tcp_connections_accepted_total")
            - tcp(&before, "octo_ice_tcp_connections_accepted_total");
        let malformed = tcp(&after, "octo_ice_tcp_connections_malformed_total")
            - tcp(&before, "octo_ice_tcp_connections_malformed_total");
        (accepted == 1.0 && malformed == 1.0 && tcp(&after, "octo_ice_tcp_connections") == 0.0).then_some(())
    });
    assert!(closed.is_some(), "the malformed ICE-TCP connection not counted");
    // The health endpoint stays on the public listener, metrics only on their own.
    assert_eq!(http_get(octo.addr, "/metrics").unwrap().0, 404);
}

const VIDEO_SSRC: u32 = 0x2222_0001;
const VIDEO_RTX_SSRC: u32 = 0x2222_0002;
const AUDIO_SSRC: u32 = 0x2222_0003;

/// The acceptance test of issue #8's metrics: real Octo, a str0m publisher (VP8 + RTX, Opus over
/// real ICE, DTLS and SRTP) and a str0m subscriber, both signaled through Octo's Socket.IO protocol;
/// then `/metrics` must parse and show the media, the objects, the feedback and the signaling.
#[test]
fn counters_move_when_real_media_flows_through_octo() -> anyhow::Result<()> {
    // Two workers, so placement has a choice; empty rooms stay for the whole test.
    let octo = Octo::start(&["--workers", "2", "--empty-room-grace-ms", "300000"])?;
    let metrics = octo.metrics_addr.context("metrics address logged")?;
    let before = scrape(metrics)?;
    for s in before.iter().filter(|s| s.name == "octo_signaling_requests_total") {
        ensure!(s.value == 0.0, "signaling counted before any request: {s:?}");
    }
    let total = |samples: &[Sample], name: &str| sum(samples, name, &[]);

    // The publisher's room goes to worker 0 (every worker equal: the lowest index).
    let mut publisher = SignaledPeer::join(
        octo.addr,
        "metrics-call",
        "publisher",
        "send",
        |_| Ok(PeerMedia::chrome_like_sender()),
        DtlsSide::Str0mClient,
    )?;
    // An empty room (seed dialect's HTTP call creates it) goes to the worker with fewer routers.
    let (status, _) = http_get(octo.addr, "/getRtpCapabilities?roomId=metrics-empty")?;
    ensure!(status == 200, "getRtpCapabilities answered {status}");
    let mut subscriber = SignaledPeer::join(
        octo.addr,
        "metrics-call",
        "subscriber",
        "recv",
        PeerMedia::from_router,
        DtlsSide::Str0mServer,
    )?;

    let (video_producer, audio_producer) =
        publisher.publish_vp8_and_opus((VIDEO_SSRC, VIDEO_RTX_SSRC, AUDIO_SSRC), "metrics-publisher")?;
    let video = subscriber.consume(&video_producer)?;
    let audio = subscriber.consume(&audio_producer)?;
    subscriber.receive(&video)?;
    subscriber.receive(&audio)?;
    let ssrc = |c: &octo_tests::interop::signaled::SignaledConsumer| c.rtp_parameters.encodings[0].ssrc.unwrap_or(0);
    let (sub_video, sub_audio) = (ssrc(&video), ssrc(&audio));

    // Hostile and wrong requests: event names no dialect has (one made to break the exposition if it
    // were echoed as a label; names with JSON escapes end the Socket.IO session in socketioxide's
    // parser before reaching Octo), and another peer's producer.
    for evil in ["evil} 1 # TYPE x counter", "dropTables"] {
        let ack = subscriber.socket.request(evil, json!({}))?;
        ensure!(ack["error"]["code"] == "unknown_event", "{ack}");
    }
    let ack = subscriber.socket.request("closeProducer", json!({ "producerId": video_producer }))?;
    ensure!(ack["error"]["code"] == "forbidden", "{ack}");
    let (status, _) = http_get(octo.addr, "/getRtpCapabilities")?;
    ensure!(status == 400, "getRtpCapabilities without a room answered {status}");

    // ICE, DTLS and SRTP between the str0m peers and the worker.
    let connected = drive_peers(&mut [&mut publisher.peer, &mut subscriber.peer], Duration::from_secs(15), |p| {
        Ok(p.iter().all(|p| p.is_connected()))
    })?;
    ensure!(connected, "not connected:\n  {}\n  {}", publisher.peer.summary(), subscriber.peer.summary());

    // Media for two seconds; the subscriber loses the 10th video packet on its way in (it NACKs it)
    // and asks for a keyframe once (a PLI).
    subscriber.peer.impairment.drop_inbound_rtp = Some(DropOneRtp::new(sub_video, 10));
    let mut source = Source::new(VIDEO_SSRC, AUDIO_SSRC);
    let stop_sending = Instant::now() + Duration::from_secs(2);
    let mut asked_keyframe = false;
    drive_peers(&mut [&mut publisher.peer, &mut subscriber.peer], Duration::from_millis(2600), |p| {
        if Instant::now() < stop_sending {
            source.tick(p[0])?;
        }
        if !asked_keyframe && source.frames >= 30 {
            asked_keyframe = true;
            p[1].request_keyframe(sub_video)?;
        }
        Ok(false)
    })?;

    // What the subscriber got, checked byte for byte.
    let mut frames = BTreeSet::new();
    let mut forwarded = 0u64;
    let mut payload_bytes = 0u64;
    for p in subscriber.peer.rtp_received(sub_video) {
        let (counter, _) = parse_vp8_payload(&p.payload).context("VP8 payload altered")?;
        frames.insert(counter);
        forwarded += 1;
        payload_bytes += p.payload.len() as u64;
    }
    let mut audio_packets = 0;
    for p in subscriber.peer.rtp_received(sub_audio) {
        parse_opus_payload(&p.payload).context("Opus payload altered")?;
        audio_packets += 1;
        forwarded += 1;
        payload_bytes += p.payload.len() as u64;
    }
    ensure!(
        frames.len() >= 5 && audio_packets >= 5,
        "too little media reached the subscriber ({} frames, {audio_packets} audio packets):\n  {}\n  {}",
        frames.len(),
        publisher.peer.summary(),
        subscriber.peer.summary()
    );

    // A third room goes where the media is not: worker 0 hosts the call's four streams, worker 1
    // only an empty room. (By router count they are equal, and the lower index would win.)
    let (status, _) = http_get(octo.addr, "/getRtpCapabilities?roomId=metrics-third")?;
    ensure!(status == 200, "getRtpCapabilities answered {status}");

    let after = scrape(metrics)?;
    let w = |samples: &[Sample], name: &str, worker: &str| sum(samples, name, &[("worker", worker)]);
    // Objects, per worker.
    ensure!(w(&after, "octo_rooms", "0") == 1.0 && w(&after, "octo_rooms", "1") == 2.0, "rooms per worker");
    ensure!(w(&after, "octo_peers", "0") == 2.0 && w(&after, "octo_peers", "1") == 0.0, "peers per worker");
    for (name, n) in [("octo_routers", 1.0), ("octo_transports", 2.0), ("octo_producers", 2.0), ("octo_consumers", 2.0)]
    {
        ensure!(w(&after, name, "0") == n, "{name} on worker 0: {} (want {n})", w(&after, name, "0"));
    }
    ensure!(w(&after, "octo_routers", "1") == 2.0 && w(&after, "octo_consumers", "1") == 0.0, "worker 1's objects");

    // Media counters moved, and by at least what the subscriber saw: every packet it got was
    // received from the publisher once and sent to it once, carrying at least its payload.
    let delta = |name: &str| total(&after, name) - total(&before, name);
    let peers_sent = (publisher.peer.datagrams_out + subscriber.peer.datagrams_out) as f64;
    ensure!(
        delta("octo_packets_received_total") >= forwarded as f64,
        "packets in {}",
        delta("octo_packets_received_total")
    );
    ensure!(
        delta("octo_packets_received_total") <= peers_sent,
        "the workers counted {} datagrams in, the peers sent only {peers_sent}",
        delta("octo_packets_received_total")
    );
    ensure!(
        delta("octo_bytes_received_total") >= payload_bytes as f64,
        "bytes in {}",
        delta("octo_bytes_received_total")
    );
    ensure!(delta("octo_packets_sent_total") >= forwarded as f64, "packets out {}", delta("octo_packets_sent_total"));
    ensure!(delta("octo_bytes_sent_total") >= payload_bytes as f64, "bytes out {}", delta("octo_bytes_sent_total"));
    ensure!(delta("octo_srtp_failures_total") == 0.0, "SRTP failures with a well-behaved peer");
    // The lost packet was NACKed and the PLI arrived.
    ensure!(!subscriber.peer.nacks_sent(sub_video).is_empty(), "the subscriber sent no NACK");
    ensure!(delta("octo_nacks_received_total") >= 1.0, "NACK not counted");
    ensure!(delta("octo_keyframe_requests_received_total") >= 1.0, "PLI not counted");
    ensure!(w(&after, "octo_worker_cpu_seconds_total", "0") > 0.0, "worker 0 used no CPU?");

    // Signaling, by dialect and event: exactly what the two peers and the HTTP calls asked.
    let requests = |dialect: &str, event: &str| {
        sum(&after, "octo_signaling_requests_total", &[("dialect", dialect), ("event", event)])
    };
    for (event, n) in [
        ("joinRoom", 2.0),
        ("createWebRtcTransport", 2.0),
        ("connectWebRtcTransport", 2.0),
        ("produce", 2.0),
        ("consume", 2.0),
        ("resumeConsumer", 2.0),
        ("closeProducer", 1.0),
        ("leaveRoom", 0.0),
    ] {
        ensure!(requests("main", event) == n, "main {event}: {} (want {n})", requests("main", event));
    }
    ensure!(requests("seed", "getRtpCapabilities") == 3.0, "seed getRtpCapabilities");
    ensure!(requests("unknown", "unknown") == 2.0, "the unknown events");
    let errors: Vec<_> = after.iter().filter(|s| s.name == "octo_signaling_errors_total").collect();
    let error = |dialect: &str, event: &str, code: &str| {
        sum(&after, "octo_signaling_errors_total", &[("dialect", dialect), ("event", event), ("code", code)])
    };
    ensure!(error("main", "closeProducer", "forbidden") == 1.0, "{errors:?}");
    ensure!(error("unknown", "unknown", "unknown_event") == 2.0, "{errors:?}");
    ensure!(error("seed", "getRtpCapabilities", "bad_request") == 1.0, "{errors:?}");
    ensure!(errors.len() == 3, "errors that did not happen: {errors:?}");
    // The hostile names never became labels.
    let (_, body) = http_get(metrics, "/metrics")?;
    if body.contains("evil") || body.contains("dropTables") {
        bail!("a client's event name reached the exposition:\n{body}");
    }
    Ok(())
}
