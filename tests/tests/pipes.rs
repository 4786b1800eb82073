//! A room across two workers (issue #14): with `--room-spill-consumers 1` the room's later
//! subscribers receive on worker 1, fed by piped copies of the publisher's producers on worker 0.
//! Real `octo`, str0m peers signaled through Octo's Socket.IO, real ICE/DTLS/SRTP on loopback.
//! Then worker 1 is killed: only its subscribers are put out of the room, the one on worker 0 keeps
//! receiving, and a subscriber joining later spills onto the respawned worker over a fresh pipe.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use octo_tests::interop::media::parse_vp8_payload;
use octo_tests::interop::peer::{Str0mPeer, drive_peers};
use octo_tests::interop::signaled::{SignaledPeer, Subscriber};
use octo_tests::interop::source::Source;
use octo_tests::{Octo, http_get, wait_for};
use serde_json::json;

const VIDEO_SSRC: u32 = 0x3333_0001;
const VIDEO_RTX_SSRC: u32 = 0x3333_0002;
const AUDIO_SSRC: u32 = 0x3333_0003;
const ROOM: &str = "pipes-call";

/// `name{worker="i"}` from `/metrics` (a plain parse: the strict one is tested in metrics.rs).
fn metric(metrics: SocketAddr, name: &str, worker: usize) -> anyhow::Result<f64> {
    let (status, body) = http_get(metrics, "/metrics")?;
    ensure!(status == 200, "/metrics answered {status}");
    let prefix = format!("{name}{{worker=\"{worker}\"}} ");
    let line = body.lines().find(|l| l.starts_with(&prefix)).with_context(|| format!("no {prefix}in\n{body}"))?;
    Ok(line[prefix.len()..].parse()?)
}

/// The publisher: joined with a send transport, producing VP8 and Opus; returns it and the
/// (video, audio) producer ids.
fn publish(octo: &Octo) -> anyhow::Result<(SignaledPeer, [String; 2])> {
    SignaledPeer::publisher(octo.addr, ROOM, (VIDEO_SSRC, VIDEO_RTX_SSRC, AUDIO_SSRC), "pipes-publisher")
}

/// Sends media for `time` while driving `peers` (the publisher first).
fn stream(source: &mut Source, peers: &mut [&mut Str0mPeer], time: Duration) -> anyhow::Result<()> {
    drive_peers(peers, time, |p| {
        source.tick(p[0])?;
        Ok(false)
    })?;
    Ok(())
}

/// One Octo with its workers and five str0m peers at a time: two such runs at once on a small
/// machine would measure the machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_room_spills_onto_a_second_worker_and_survives_its_death() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    spill_and_survive(&[])
}

/// The same over SRTP-protected pipes (`--pipe-srtp`): the keys each end made reach the other.
#[test]
fn the_same_with_pipes_encrypted() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    spill_and_survive(&["--pipe-srtp"])
}

fn spill_and_survive(extra: &[&str]) -> anyhow::Result<()> {
    let mut args = vec!["--workers", "2", "--room-spill-consumers", "1", "--empty-room-grace-ms", "300000"];
    args.extend_from_slice(extra);
    let octo = Octo::start(&args)?;
    let metrics = octo.metrics_addr.context("metrics address logged")?;

    // The room goes to worker 0 (both idle: the lower index).
    let (mut publisher, producers) = publish(&octo)?;

    // The first subscriber fits on the main worker (no consumers yet); after its two the room is at
    // the limit there, so the second spills onto worker 1, and so does the third (worker 1 has fewer
    // streams than worker 0, which also carries the producers).
    let mut subs: Vec<Subscriber> = ["near", "far-1", "far-2"]
        .iter()
        .map(|n| Subscriber::join(octo.addr, ROOM, n, &producers))
        .collect::<anyhow::Result<_>>()?;
    let main_addr = publisher.peer.worker_addr;
    let on_main = |s: &Subscriber| s.signaled.peer.worker_addr == main_addr;
    ensure!(on_main(&subs[0]), "the first subscriber left the main worker");
    ensure!(!on_main(&subs[1]) && !on_main(&subs[2]), "the later subscribers did not spill");
    ensure!(subs[1].signaled.peer.worker_addr == subs[2].signaled.peer.worker_addr, "two far workers?");

    // One piped copy per producer on worker 1 — not one per consumer — over one pipe each way.
    for (name, worker, want) in [
        ("octo_pipe_transports", 0, 1.0),
        ("octo_pipe_transports", 1, 1.0),
        ("octo_pipe_consumers", 0, 2.0),
        ("octo_pipe_producers", 1, 2.0),
        ("octo_pipe_producers", 0, 0.0),
        ("octo_consumers", 0, 2.0),
        ("octo_consumers", 1, 4.0),
        ("octo_producers", 0, 2.0),
        ("octo_producers", 1, 0.0),
        ("octo_transports", 0, 2.0),
        ("octo_transports", 1, 2.0),
        ("octo_routers", 1, 1.0),
    ] {
        let got = metric(metrics, name, worker)?;
        ensure!(got == want, "{name}{{worker=\"{worker}\"}} = {got}, want {want}");
    }

    {
        let mut peers: Vec<&mut Str0mPeer> = vec![&mut publisher.peer];
        peers.extend(subs.iter_mut().map(|s| &mut s.signaled.peer));
        let connected = drive_peers(&mut peers, Duration::from_secs(15), |p| Ok(p.iter().all(|p| p.is_connected())))?;
        let summary: Vec<String> = peers.iter().map(|p| p.summary()).collect();
        ensure!(connected, "not connected:\n  {}", summary.join("\n  "));
    }

    // Two seconds of media: every subscriber, near or far, gets it intact and in sequence.
    let mut source = Source::new(VIDEO_SSRC, AUDIO_SSRC);
    let started = Instant::now();
    {
        let mut peers: Vec<&mut Str0mPeer> = vec![&mut publisher.peer];
        peers.extend(subs.iter_mut().map(|s| &mut s.signaled.peer));
        stream(&mut source, &mut peers, Duration::from_secs(2))?;
    }
    for s in &subs {
        let (frames, audio) = s.received_since(started)?;
        ensure!(
            frames >= 30 && audio >= 50,
            "{} got {frames} frames and {audio} audio packets of {} and {}:\n  {}",
            s.signaled.peer.name,
            source.frames,
            source.audio,
            s.signaled.peer.summary()
        );
    }
    ensure!(metric(metrics, "octo_pipe_bytes_sent_total", 0)? > 10_000.0, "nothing counted through the pipe");
    let srtp = format!("srtp={}", extra.contains(&"--pipe-srtp"));
    // The log is read on another thread: give it a moment.
    let _ = wait_for(Duration::from_secs(2), || (!octo.log_lines("pipe created").is_empty()).then_some(()));
    let created = octo.log_lines("pipe created");
    ensure!(created.len() == 1 && created[0].contains(&srtp), "want one pipe with {srtp}: {created:?}");
    ensure!(metric(metrics, "octo_pipe_bytes_received_total", 1)? > 10_000.0, "nothing counted into worker 1");

    // Pausing the origin pauses its copies: the far subscribers' consumers hear of it from worker 1.
    publisher.socket.request("pauseProducer", json!({ "producerId": producers[0] }))?;
    let paused = subs[1].signaled.socket.wait_event("consumerPaused", Duration::from_secs(5))?;
    ensure!(paused["producerId"] == producers[0].as_str(), "{paused}");
    publisher.socket.request("resumeProducer", json!({ "producerId": producers[0] }))?;
    subs[2].signaled.socket.wait_event("consumerResumed", Duration::from_secs(5))?;

    // Worker 1 dies.
    let pids = octo.worker_pids()?;
    let far_pid = pids.get(1).copied().flatten().context("worker 1 has no pid")?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(far_pid as i32), nix::sys::signal::Signal::SIGKILL)?;
    let killed = Instant::now();
    for s in &mut subs[1..] {
        let e = s.signaled.socket.wait_event("roomError", Duration::from_secs(5))?;
        ensure!(e["code"] == "worker_died", "{}: {e}", s.signaled.peer.name);
    }
    // The near subscriber keeps receiving, in sequence, from a publisher that noticed nothing.
    stream(&mut source, &mut [&mut publisher.peer, &mut subs[0].signaled.peer], Duration::from_secs(3))?;
    let (frames, audio) = subs[0].received_since(started)?;
    let (frames_after, audio_after) = subs[0].received_since(killed)?;
    ensure!(
        frames_after >= 60 && audio_after >= 100 && frames >= 120,
        "after the kill the near subscriber got {frames_after} frames, {audio_after} audio packets \
         ({frames} frames, {audio} audio in all):\n  {}",
        subs[0].signaled.peer.summary()
    );
    // Neither it nor the publisher was told the room closed (a request of each flushes the events
    // sent before it); the publisher saw the far ones leave.
    let near = &mut subs[0].signaled;
    for (who, socket, id) in [
        ("near", &mut near.socket, near.transport_id.clone()),
        ("publisher", &mut publisher.socket, producers[0].clone()),
    ] {
        let ack = socket.request("getStats", json!({ "id": id }))?;
        ensure!(ack.get("data").is_some(), "{who}'s getStats: {ack}");
        ensure!(!socket.events.iter().any(|(name, _)| name == "roomError"), "{who} got roomError: {:?}", socket.events);
    }
    let left: Vec<_> = publisher.socket.events.iter().filter(|(n, _)| n == "peerLeft").collect();
    ensure!(left.len() == 2, "peerLeft events at the publisher: {left:?}");

    // A far subscriber's session may join again (the client does this by itself).
    let again = subs[1].signaled.socket.request("joinRoom", json!({ "roomId": ROOM, "displayName": "far-1" }))?;
    ensure!(again.get("data").is_some(), "rejoin refused: {again}");

    // Worker 1 comes back; a new subscriber spills onto it over a fresh pipe (the old end on
    // worker 0 was closed when worker 1 died).
    let back = wait_for(Duration::from_secs(5), || {
        octo.worker_pids().ok()?.get(1).copied().flatten().filter(|p| *p != far_pid)
    });
    ensure!(back.is_some(), "worker 1 was not respawned");
    let swept =
        wait_for(Duration::from_secs(2), || (metric(metrics, "octo_pipe_transports", 0).ok()? == 0.0).then_some(()));
    ensure!(swept.is_some(), "the dead pipe's end on worker 0 is still open");
    let mut late = Subscriber::join(octo.addr, ROOM, "late", &producers)?;
    ensure!(!on_main(&late), "the late subscriber did not spill");
    ensure!(metric(metrics, "octo_pipe_producers", 1)? == 2.0, "the late subscriber's producers were not piped");
    ensure!(metric(metrics, "octo_pipe_transports", 0)? == 1.0, "no fresh pipe");
    {
        let mut peers = [&mut publisher.peer, &mut late.signaled.peer];
        let connected = drive_peers(&mut peers, Duration::from_secs(15), |p| Ok(p[1].is_connected()))?;
        ensure!(connected, "late subscriber not connected: {}", peers[1].summary());
    }
    let late_start = Instant::now();
    stream(&mut source, &mut [&mut publisher.peer, &mut late.signaled.peer], Duration::from_secs(2))?;
    let (frames, audio) = late.received_since(late_start)?;
    ensure!(frames >= 30 && audio >= 50, "late subscriber got {frames} frames, {audio} audio packets");

    // It joined mid-stream: its keyframe request crosses the pipe back to the publisher, and the
    // keyframe that answers it comes the whole way.
    let asked = publisher.peer.keyframe_requests().len();
    late.signaled.peer.request_keyframe(late.video)?;
    let pli_at = Instant::now();
    let keyframe_seen = |peer: &Str0mPeer| {
        peer.events.iter().filter(|(at, _)| *at >= pli_at).any(|(_, e)| match e {
            str0m::Event::RtpPacket(p) if *p.header.ssrc == late.video => {
                parse_vp8_payload(&p.payload).is_some_and(|(_, key)| key)
            }
            _ => false,
        })
    };
    let answered = drive_peers(&mut [&mut publisher.peer, &mut late.signaled.peer], Duration::from_secs(5), |p| {
        source.tick(p[0])?;
        Ok(p[0].keyframe_requests().len() > asked && keyframe_seen(p[1]))
    })?;
    ensure!(
        answered,
        "the late subscriber's PLI: {} requests at the publisher (had {asked}), keyframe seen: {}",
        publisher.peer.keyframe_requests().len(),
        keyframe_seen(&late.signaled.peer)
    );
    Ok(())
}

/// Closing follows the origin without any media flowing: `closeProducer` closes the piped copy (the
/// far consumer is told), the publisher's leave closes the rest, and the empty room closes its
/// routers on both workers.
#[test]
fn closing_the_origin_closes_its_copies_and_an_empty_room_all_its_routers() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "2", "--room-spill-consumers", "1", "--empty-room-grace-ms", "300"])?;
    let metrics = octo.metrics_addr.context("metrics address logged")?;
    let (mut publisher, producers) = publish(&octo)?;
    let mut near = Subscriber::join(octo.addr, ROOM, "near", &producers)?;
    let mut far = Subscriber::join(octo.addr, ROOM, "far", &producers)?;
    ensure!(near.signaled.peer.worker_addr != far.signaled.peer.worker_addr, "nothing spilled");
    ensure!(metric(metrics, "octo_pipe_producers", 1)? == 2.0, "not piped");

    publisher.socket.request("closeProducer", json!({ "producerId": producers[0] }))?;
    let closed = far.signaled.socket.wait_event("consumerClosed", Duration::from_secs(5))?;
    ensure!(closed["producerId"] == producers[0].as_str(), "{closed}");
    ensure!(metric(metrics, "octo_pipe_producers", 1)? == 1.0, "the closed producer's copy is still there");
    ensure!(metric(metrics, "octo_pipe_consumers", 0)? == 1.0, "the closed producer's pipe consumer is still there");

    publisher.socket.request("leaveRoom", json!({}))?;
    far.signaled.socket.wait_event("peerLeft", Duration::from_secs(5))?;
    ensure!(metric(metrics, "octo_pipe_producers", 1)? == 0.0, "the leaver's copies are still there");
    for s in [&mut near, &mut far] {
        let ack = s.signaled.socket.request("leaveRoom", json!({}))?;
        ensure!(ack.get("data").is_some(), "{ack}");
    }
    let closed = wait_for(Duration::from_secs(5), || {
        let routers = |w| metric(metrics, "octo_routers", w).ok();
        (routers(0)? == 0.0 && routers(1)? == 0.0).then_some(())
    });
    ensure!(
        closed.is_some(),
        "routers left after the empty room closed: {:?}",
        (0..2).map(|w| metric(metrics, "octo_routers", w).ok()).collect::<Vec<_>>()
    );
    // The pipe belongs to no room: it stays for the next one.
    ensure!(metric(metrics, "octo_pipe_transports", 0)? == 1.0, "the pipe went with the room");
    Ok(())
}
