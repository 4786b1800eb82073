//! An Octo cluster (issue #15): a real `redis-server` and three `octo` nodes on loopback, each with
//! its own ports. Peers joining one room through different nodes see each other and receive each
//! other's media across SRTP pipes between the nodes' workers (str0m peers signaled through Octo's
//! Socket.IO, payloads checked); `kill -9` of a node puts its peers out of the room everywhere
//! within seconds; Redis going away degrades every node (calls go on, joins across nodes are
//! refused) and they recover when it is back.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use octo_tests::interop::peer::{Str0mPeer, drive_peers};
use octo_tests::interop::signaled::{SignaledPeer, Subscriber, ack_data};
use octo_tests::interop::source::Source;
use octo_tests::redis::RedisServer;
use octo_tests::socketio::PollingClient;
use octo_tests::{Octo, http_get, wait_for};
use serde_json::{Value, json};

const VIDEO_SSRC: u32 = 0x4444_0001;
const VIDEO_RTX_SSRC: u32 = 0x4444_0002;
const AUDIO_SSRC: u32 = 0x4444_0003;

/// One cluster at a time: three nodes and their peers are what a small machine carries.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn node(redis: &RedisServer, id: &str) -> anyhow::Result<Octo> {
    Octo::start_node(&redis.url(), id, &["--empty-room-grace-ms", "300000"])
}

fn publish(octo: &Octo, room: &str) -> anyhow::Result<(SignaledPeer, [String; 2])> {
    SignaledPeer::publisher(octo.addr, room, (VIDEO_SSRC, VIDEO_RTX_SSRC, AUDIO_SSRC), "cluster-pub")
}

fn connect_all(publisher: &mut SignaledPeer, subs: &mut [Subscriber]) -> anyhow::Result<()> {
    let mut peers: Vec<&mut Str0mPeer> = vec![&mut publisher.peer];
    peers.extend(subs.iter_mut().map(|s| &mut s.signaled.peer));
    let connected = drive_peers(&mut peers, Duration::from_secs(15), |p| Ok(p.iter().all(|p| p.is_connected())))?;
    let summary: Vec<String> = peers.iter().map(|p| p.summary()).collect();
    ensure!(connected, "not connected:\n  {}", summary.join("\n  "));
    Ok(())
}

fn stream(
    source: &mut Source,
    publisher: &mut SignaledPeer,
    subs: &mut [Subscriber],
    time: Duration,
) -> anyhow::Result<()> {
    let mut peers: Vec<&mut Str0mPeer> = vec![&mut publisher.peer];
    peers.extend(subs.iter_mut().map(|s| &mut s.signaled.peer));
    drive_peers(&mut peers, time, |p| {
        source.tick(p[0])?;
        Ok(false)
    })?;
    Ok(())
}

fn check_all(subs: &[Subscriber], since: Instant, min_frames: usize, min_audio: usize) -> anyhow::Result<()> {
    for s in subs {
        let (frames, audio) = s.received_since(since)?;
        ensure!(
            frames >= min_frames && audio >= min_audio,
            "{} got {frames} frames and {audio} audio packets:\n  {}",
            s.signaled.peer.name,
            s.signaled.peer.summary()
        );
    }
    Ok(())
}

/// The peer ids of a `joinRoom` answer's `peers`.
fn peer_ids(joined: &Value) -> Vec<String> {
    joined["peers"].as_array().into_iter().flatten().filter_map(|p| p["peerId"].as_str().map(str::to_owned)).collect()
}

fn producer_ids(joined: &Value) -> Vec<String> {
    joined["producers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["producerId"].as_str().map(str::to_owned))
        .collect()
}

fn join(octo: &Octo, room: &str, name: &str) -> anyhow::Result<(PollingClient, Value)> {
    let mut socket = PollingClient::connect(octo.addr)?;
    let ack = socket.request("joinRoom", json!({ "roomId": room, "displayName": name }))?;
    Ok((socket, ack))
}

/// `/readyz`'s status word.
fn readiness(octo: &Octo) -> anyhow::Result<String> {
    let (_, body) = http_get(octo.addr, "/readyz")?;
    let v: Value = serde_json::from_str(&body).with_context(|| format!("/readyz: {body}"))?;
    Ok(v["status"].as_str().unwrap_or_default().to_owned())
}

fn kill9(pid: u32) -> anyhow::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)?;
    Ok(())
}

#[test]
fn a_room_spans_three_nodes_and_survives_one_dying() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let redis = RedisServer::start()?;
    let nodes = [node(&redis, "node-a")?, node(&redis, "node-b")?, node(&redis, "node-c")?];
    let room = "cluster-call";

    let (mut publisher, producers) = publish(&nodes[0], room)?;
    let publisher_id = publisher.joined["peerId"].as_str().context("peerId")?.to_owned();
    let mut subs = vec![
        Subscriber::join(nodes[1].addr, room, "on-b", &producers)?,
        Subscriber::join(nodes[2].addr, room, "on-c", &producers)?,
    ];
    // Each subscriber learnt of the publisher and its producers from the other node, at join.
    for s in &subs {
        ensure!(
            peer_ids(&s.signaled.joined).contains(&publisher_id),
            "{}: {}",
            s.signaled.peer.name,
            s.signaled.joined
        );
        let mut got = producer_ids(&s.signaled.joined);
        got.sort();
        let mut want = producers.to_vec();
        want.sort();
        ensure!(got == want, "{} saw producers {got:?}, want {want:?}", s.signaled.peer.name);
        ensure!(s.signaled.peer.worker_addr != publisher.peer.worker_addr, "subscriber on the publisher's worker");
    }
    // ...and the publisher of them, as they joined elsewhere.
    for _ in 0..2 {
        let e = publisher.socket.wait_event("peerJoined", Duration::from_secs(5))?;
        ensure!(e["displayName"] == "on-b" || e["displayName"] == "on-c", "{e}");
    }

    connect_all(&mut publisher, &mut subs)?;
    let mut source = Source::new(VIDEO_SSRC, AUDIO_SSRC);
    let started = Instant::now();
    stream(&mut source, &mut publisher, &mut subs, Duration::from_secs(3))?;
    check_all(&subs, started, 45, 75)?;
    // One pipe per pair of nodes' workers, each way encrypted: node a opened both.
    let opened = nodes[0].log_lines("pipe to node opened");
    ensure!(opened.len() == 2, "node a's pipes: {opened:?}");
    ensure!(nodes[1].log_lines("pipe from node accepted").len() == 1, "node b accepted no pipe");

    // A late joiner on node c sees everyone, wherever they are.
    let (_late, ack) = join(&nodes[2], room, "late")?;
    let joined = ack_data("joinRoom", ack)?;
    let ids = peer_ids(&joined);
    ensure!(ids.len() == 3 && ids.contains(&publisher_id), "late joiner saw {ids:?}");

    // Node a dies: everyone elsewhere hears within 10 s that its peer and producers are gone.
    kill9(nodes[0].pid())?;
    let killed = Instant::now();
    for s in &mut subs {
        let left = s.signaled.socket.wait_event("peerLeft", Duration::from_secs(10))?;
        ensure!(left["peerId"] == publisher_id.as_str(), "{left}");
        let closed: Vec<&Value> =
            s.signaled.socket.events.iter().filter(|(n, _)| n == "producerClosed").map(|(_, v)| v).collect();
        ensure!(closed.len() == 2, "{}: producerClosed {closed:?}", s.signaled.peer.name);
    }
    let noticed = killed.elapsed();
    ensure!(noticed < Duration::from_secs(10), "took {noticed:?}");
    // New joins go on at the nodes that are left, and the dead node's peer is not in the room.
    let (_again, ack) = join(&nodes[1], room, "after")?;
    let joined = ack_data("joinRoom", ack)?;
    ensure!(!peer_ids(&joined).contains(&publisher_id), "the dead node's peer is still listed: {joined}");
    ensure!(producer_ids(&joined).is_empty(), "the dead node's producers are still listed: {joined}");
    Ok(())
}

#[test]
fn redis_going_away_degrades_the_nodes_and_they_recover() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut redis = RedisServer::start()?;
    let nodes = [node(&redis, "node-a")?, node(&redis, "node-b")?];
    let room = "cluster-outage";
    let (mut publisher, producers) = publish(&nodes[0], room)?;
    let publisher_id = publisher.joined["peerId"].as_str().context("peerId")?.to_owned();
    let mut subs = vec![Subscriber::join(nodes[1].addr, room, "on-b", &producers)?];
    connect_all(&mut publisher, &mut subs)?;
    for n in &nodes {
        ensure!(readiness(n)? == "ready", "not ready before the outage");
    }

    redis.stop()?;
    let stopped = Instant::now();
    let degraded = wait_for(Duration::from_secs(6), || {
        nodes.iter().all(|n| readiness(n).is_ok_and(|s| s == "degraded")).then_some(())
    });
    ensure!(degraded.is_some(), "the nodes did not report degraded within 6 s of Redis stopping");
    // The call goes on over the pipe.
    let mut source = Source::new(VIDEO_SSRC, AUDIO_SSRC);
    stream(&mut source, &mut publisher, &mut subs, Duration::from_secs(2))?;
    check_all(&subs, stopped, 30, 50)?;
    // Joining the room that spans nodes, or a room not open here, is refused with a reason.
    for (what, r) in [("the spanning room", room), ("a new room", "cluster-new-room")] {
        let (_s, ack) = join(&nodes[1], r, "refused")?;
        let error = ack.get("error").with_context(|| format!("joining {what} while Redis is down: {ack}"))?;
        ensure!(error["code"] == "unavailable", "{what}: {ack}");
        ensure!(error["message"].as_str().is_some_and(|m| m.contains("Redis")), "{what}: {ack}");
    }

    // Redis comes back empty (it keeps nothing on disk): the nodes write their state again.
    redis.restart()?;
    let ready = wait_for(Duration::from_secs(10), || {
        nodes.iter().all(|n| readiness(n).is_ok_and(|s| s == "ready")).then_some(())
    });
    ensure!(ready.is_some(), "the nodes did not recover within 10 s of Redis coming back");
    // A node that starts now knows only what Redis holds: node a's publisher is there again only if
    // node a wrote it back. (Each try joins for good: leaving would show the publisher a peer
    // leaving.)
    let fresh = node(&redis, "node-c")?;
    let mut tries = Vec::new();
    let rejoined = wait_for(Duration::from_secs(8), || {
        let (socket, ack) = join(&fresh, room, "later").ok()?;
        tries.push(socket);
        let joined = ack_data("joinRoom", ack).ok()?;
        peer_ids(&joined).contains(&publisher_id).then_some(joined)
    });
    let joined = rejoined.context("a node started after the recovery does not see node a's publisher")?;
    ensure!(producer_ids(&joined).len() == 2, "{joined}");
    // Nobody was put out on the way: the publisher's session is fine and saw nobody leave.
    let stats = publisher.socket.request("getStats", json!({ "id": producers[0] }))?;
    ensure!(stats.get("data").is_some(), "the publisher's session broke: {stats}");
    let left: Vec<_> = publisher.socket.events.iter().filter(|(n, _)| n == "peerLeft").collect();
    ensure!(left.is_empty(), "node a's publisher saw peers leave during the outage: {left:?}");
    Ok(())
}

/// A raised hand crosses nodes in the member's record: a peer on the other node hears of it with
/// the time the raiser's node gave it, a later joiner there finds it in the room, and lowering it
/// is heard too.
#[test]
fn a_raised_hand_is_seen_from_the_other_node() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let redis = RedisServer::start()?;
    let (a, b) = (node(&redis, "node-a")?, node(&redis, "node-b")?);
    let room = "cluster-hands";
    let (mut ann, joined) = join(&a, room, "ann")?;
    let ann_id = ack_data("joinRoom", joined)?["peerId"].as_str().context("peerId")?.to_owned();
    let (mut bob, _) = join(&b, room, "bob")?;
    ann.wait_event("peerJoined", Duration::from_secs(5))?;

    let raised = ack_data("raiseHand", ann.request("raiseHand", json!({}))?)?;
    let at = raised["raisedAt"].as_u64().with_context(|| format!("raiseHand answered {raised}"))?;
    let heard = bob.wait_event("peerHand", Duration::from_secs(5))?;
    ensure!(heard == json!({ "peerId": ann_id, "raisedAt": at }), "bob heard {heard}");
    // Raising it again changes nothing: same time, nothing sent.
    let again = ack_data("raiseHand", ann.request("raiseHand", json!({}))?)?;
    ensure!(again["raisedAt"] == at, "a second raise moved the hand: {again}");

    let (_late, ack) = join(&b, room, "late")?;
    let joined = ack_data("joinRoom", ack)?;
    let listed = joined["peers"].as_array().context("peers")?.iter().find(|p| p["peerId"] == ann_id.as_str()).cloned();
    ensure!(listed.as_ref().is_some_and(|p| p["handRaisedAt"] == at), "the late joiner saw {joined}");

    // Forget what Bob heard: the next peerHand he gets must be the lowering (a repeated raise
    // that was sent would come first and fail this).
    bob.events.retain(|(n, _)| n != "peerHand");
    let lowered = ack_data("lowerHand", ann.request("lowerHand", json!({}))?)?;
    ensure!(lowered["raisedAt"].is_null(), "{lowered}");
    let heard = bob.wait_event("peerHand", Duration::from_secs(5))?;
    ensure!(heard == json!({ "peerId": ann_id, "raisedAt": null }), "bob heard {heard}");
    Ok(())
}
