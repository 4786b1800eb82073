//! A chaos case of issue #17: a worker `kill -9`ed under a call costs the rooms on the other
//! workers nothing. Real `octo` with two workers, two rooms (placement puts them on different
//! workers), in each a str0m publisher and subscriber signaled through Octo's Socket.IO over real
//! ICE/DTLS/SRTP on loopback. Room A's worker dies mid-call: A's peers are told `worker_died`,
//! and room B's subscriber receives every video frame and audio packet its publisher sent across the
//! kill, in sequence.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use octo_tests::Octo;

use octo_tests::interop::peer::{Str0mPeer, drive_peers};
use octo_tests::interop::signaled::{SignaledPeer, Subscriber};
use octo_tests::interop::source::Source;

struct Room {
    publisher: SignaledPeer,
    subscriber: Subscriber,
    source: Source,
}

impl Room {
    fn join(octo: &Octo, name: &str, ssrc_base: u32) -> anyhow::Result<Self> {
        let ssrcs = (ssrc_base + 1, ssrc_base + 2, ssrc_base + 3);
        let (publisher, producers) = SignaledPeer::publisher(octo.addr, name, ssrcs, &format!("{name}-publisher"))?;
        let subscriber = Subscriber::join(octo.addr, name, "subscriber", &producers)?;
        Ok(Self { publisher, subscriber, source: Source::new(ssrc_base + 1, ssrc_base + 3) })
    }

    fn peers(&mut self) -> [&mut Str0mPeer; 2] {
        [&mut self.publisher.peer, &mut self.subscriber.signaled.peer]
    }
}

/// Drives every peer of `rooms` for `time`, each publisher sending (or, `send: false`, only
/// delivering what is in flight).
fn run(rooms: &mut [&mut Room], time: Duration, send: bool) -> anyhow::Result<()> {
    let end = Instant::now() + time;
    while Instant::now() < end {
        for room in rooms.iter_mut() {
            let mut peers = [&mut room.publisher.peer, &mut room.subscriber.signaled.peer];
            let source = &mut room.source;
            drive_peers(&mut peers, Duration::from_millis(10), |p| {
                if send {
                    source.tick(p[0])?;
                }
                Ok(false)
            })?;
        }
    }
    Ok(())
}

#[test]
fn a_killed_worker_costs_the_rooms_on_other_workers_nothing() -> anyhow::Result<()> {
    let octo = Octo::start(&["--workers", "2", "--empty-room-grace-ms", "300000"])?;
    let mut a = Room::join(&octo, "death-a", 0x4444_0000)?;
    let mut b = Room::join(&octo, "death-b", 0x5555_0000)?;
    let worker_of = |r: &Room| r.publisher.peer.worker_addr;
    ensure!(worker_of(&a) != worker_of(&b), "both rooms on one worker: placement has nothing to spare");
    ensure!(worker_of(&a) == a.subscriber.signaled.peer.worker_addr, "room A spans workers");
    for room in [&mut a, &mut b] {
        let connected =
            drive_peers(&mut room.peers(), Duration::from_secs(15), |p| Ok(p.iter().all(|p| p.is_connected())))?;
        ensure!(connected, "not connected: {} / {}", room.peers()[0].summary(), room.peers()[1].summary());
    }
    run(&mut [&mut a, &mut b], Duration::from_secs(2), true)?;
    let (frames, audio) = b.subscriber.received_since(Instant::now() - Duration::from_secs(2))?;
    ensure!(frames >= 30 && audio >= 50, "room B before the kill: {frames} frames, {audio} audio packets");

    // Room A's worker: the first room goes to worker 0 (both idle: the lower index).
    let pid = octo.worker_pids()?.first().copied().flatten().context("no pid for worker 0")?;
    let (b_frames, b_audio) = (b.source.frames, b.source.audio);
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)?;
    for socket in [&mut a.publisher.socket, &mut a.subscriber.signaled.socket] {
        let e = socket.wait_event("roomError", Duration::from_secs(5))?;
        ensure!(e["code"] == "worker_died", "room A was told {e}");
    }
    let told = killed.elapsed();
    // Room B streams on through the kill and a few seconds after it, then what is in flight lands.
    let remaining = Duration::from_secs(3).saturating_sub(told);
    run(&mut [&mut b], remaining, true)?;
    run(&mut [&mut b], Duration::from_millis(300), false)?;
    let (sent_frames, sent_audio) = (b.source.frames - b_frames, b.source.audio - b_audio);
    let (got_frames, got_audio) = b.subscriber.received_since(killed)?;
    println!(
        "room A told worker_died {} ms after the kill; room B across it: {got_frames} of {sent_frames} frames, \
         {got_audio} of {sent_audio} audio packets",
        told.as_millis()
    );
    ensure!(sent_frames >= 60 && sent_audio >= 100, "room B's publisher hardly sent: {sent_frames}, {sent_audio}");
    // Frames sent just before the kill may land after it: at least as many as sent, never fewer.
    ensure!(
        got_frames as u32 >= sent_frames && got_audio as u32 >= sent_audio,
        "room B lost media across the kill: {got_frames} of {sent_frames} frames, {got_audio} of {sent_audio} audio \
         packets:\n  {}",
        b.subscriber.signaled.peer.summary()
    );
    // Room B's peers were told nothing (a request flushes the events sent before it).
    for peer in [&mut b.publisher, &mut b.subscriber.signaled] {
        let ack = peer.socket.request("getStats", serde_json::json!({ "id": peer.transport_id }))?;
        ensure!(ack.get("data").is_some(), "room B's getStats: {ack}");
        ensure!(
            !peer.socket.events.iter().any(|(n, _)| n == "roomError"),
            "room B got roomError: {:?}",
            peer.socket.events
        );
    }
    Ok(())
}
