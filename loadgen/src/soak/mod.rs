//! `octo-loadgen soak`: rooms open and close for a long time on one Octo the load generator
//! started, and afterwards nothing may be left behind. Peers join, publish VP8 and Opus, make a
//! data producer, consume everyone else's media and data producers, check that their media flowed,
//! and leave (half with `leaveRoom`, half by dropping their connection, as a closed tab). Every
//! `--sample-s` the controller's and the workers' RSS and descriptors and every object gauge are
//! sampled; at the end every gauge must be zero, descriptors back at their baseline, and memory
//! level (see [`verdict`]). See RELIABILITY.md.

pub mod sample;
pub mod verdict;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::media::send_stream::Kind;
use crate::media::{LoopOptions, MediaLoop, TransportSummary};
use crate::octo::{LaunchOptions, Octo};
use crate::session::{MediaOptions, Session};
use sample::Sample;
use verdict::Judgement;

pub struct SoakOptions {
    pub duration: Duration,
    /// Rooms open at once.
    pub rooms: usize,
    pub room_size: usize,
    pub room_lifetime: Duration,
    pub sample_every: Duration,
    pub launch: LaunchOptions,
    pub media: MediaOptions,
    pub decrypt_every: u64,
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub minutes: f64,
    pub workers: usize,
    pub rooms_opened: usize,
    pub peers_joined: usize,
    /// Peers whose every consumer received media before they left.
    pub peers_with_media: usize,
    /// From `consume` to the first packet, over every consumer: p50, p99, max (ms).
    pub time_to_first_media_ms: [f64; 3],
    pub baseline: Sample,
    pub samples: Vec<Sample>,
    /// Once every room closed and the gauges settled.
    pub after: Sample,
    pub judgements: Vec<(String, Judgement)>,
    /// What went wrong during the churn (the first few of each kind).
    pub failures: Vec<String>,
    pub passed: bool,
}

struct LiveRoom {
    peers: Vec<usize>,
    closes_at: Instant,
}

/// The churn's running tally.
#[derive(Default)]
struct Tally {
    rooms_opened: usize,
    peers_joined: usize,
    peers_left: usize,
    peers_with_media: usize,
    time_to_first_media: Vec<Duration>,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        tracing::warn!("{what}");
        // Enough to see what keeps failing; the count is in the verdict.
        if self.failures.len() < 20 {
            self.failures.push(what);
        } else if self.failures.len() == 20 {
            self.failures.push("(more failures not listed)".into());
        }
    }
}

/// How long the gauges may take to reach zero once every peer has left.
const SETTLE: Duration = Duration::from_secs(15);

pub fn run(o: &SoakOptions) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(o.room_size >= 2, "--room-size: a room needs two peers to forward anything");
    let octo = Octo::launch(&o.launch)?;
    let controller = octo.pid().context("the controller's pid")?;
    let metrics = octo.metrics_addr.context("octo printed no metrics address")?;
    let workers = octo.worker_pids()?;
    anyhow::ensure!(workers.len() == o.launch.workers, "{} of {} workers up", workers.len(), o.launch.workers);
    let started = Instant::now();
    let baseline = Sample::take(Duration::ZERO, controller, &workers, metrics, (0, 0))?;
    let media = MediaLoop::start(LoopOptions {
        decrypt_every: o.decrypt_every,
        max_duration: o.duration + SETTLE + Duration::from_secs(300),
        cpu: None,
    })?;
    let mut session = Session::new(octo.addr, media, o.media);
    session.data_channels = true;
    let mut tally = Tally::default();
    let mut live: VecDeque<LiveRoom> = VecDeque::new();
    let mut samples = Vec::new();
    let end = started + o.duration;
    let mut next_sample = started + o.sample_every;
    println!(
        "soak: {} rooms of {} at once, each for {:?}, for {:?}",
        o.rooms, o.room_size, o.room_lifetime, o.duration
    );
    println!("{}", Sample::header());
    println!("{}", baseline.row());
    while Instant::now() < end {
        while live.front().is_some_and(|r| r.closes_at <= Instant::now()) {
            let room = live.pop_front().expect("front");
            close_room(&mut session, &room, o.room_size, &mut tally);
        }
        while live.len() < o.rooms {
            // The first rooms close one after another, so closing and opening interleave from
            // the start rather than in waves.
            let first_wave = tally.rooms_opened < o.rooms;
            let lifetime = if first_wave {
                o.room_lifetime * (tally.rooms_opened as u32 + 1) / o.rooms as u32
            } else {
                o.room_lifetime
            };
            // Every room lives its whole life before the end (and so has time to get its media).
            if Instant::now() + lifetime > end {
                break;
            }
            let peers = open_room(&mut session, tally.rooms_opened, o.room_size, &mut tally);
            live.push_back(LiveRoom { peers, closes_at: Instant::now() + lifetime });
            live.make_contiguous().sort_by_key(|r| r.closes_at);
        }
        if Instant::now() >= next_sample {
            next_sample += o.sample_every;
            let s = sample_now(&octo, started, controller, &workers, metrics, &tally, &mut session)?;
            println!("{}", s.row());
            samples.push(s);
        }
        session.idle(Duration::from_millis(50));
    }
    while let Some(room) = live.pop_front() {
        close_room(&mut session, &room, o.room_size, &mut tally);
    }
    // The controller learns of a dropped connection at once, but closes the peer's objects on the
    // worker in its own time.
    let settle_end = Instant::now() + SETTLE;
    let after = loop {
        session.idle(Duration::from_millis(500));
        let s = sample_now(&octo, started, controller, &workers, metrics, &tally, &mut session)?;
        let clean = s.objects.iter().all(|&n| n == 0)
            && s.controller.fds <= baseline.controller.fds + verdict::FD_SLACK
            && s.workers.fds <= baseline.workers.fds + verdict::FD_SLACK;
        if clean || Instant::now() >= settle_end {
            break s;
        }
    };
    println!("{}  (after every room closed)", after.row());
    session.media.stop()?;
    let report = judge(o, baseline, samples, after, tally, &workers);
    print_report(&report);
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn sample_now(
    octo: &Octo,
    started: Instant,
    controller: u32,
    workers: &[(usize, u32)],
    metrics: std::net::SocketAddr,
    tally: &Tally,
    session: &mut Session,
) -> anyhow::Result<Sample> {
    session.service_if_due();
    // A respawned worker would hide a leak behind a fresh process (and is a failure of its own).
    let now_workers = octo.worker_pids()?;
    anyhow::ensure!(now_workers == workers, "the workers changed during the soak: {workers:?} → {now_workers:?}");
    let live = tally.peers_joined - tally.peers_left;
    Sample::take(started.elapsed(), controller, workers, metrics, (tally.peers_joined, live))
}

/// Opens room `n` with `size` peers, each publishing and consuming all the others; returns the
/// peers that joined (all of them unless something failed, which is tallied).
fn open_room(session: &mut Session, n: usize, size: usize, tally: &mut Tally) -> Vec<usize> {
    let room = format!("soak-{n}");
    tally.rooms_opened += 1;
    let mut peers = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for _ in 0..size {
            let peer = session.join(&room)?;
            peers.push(peer);
            tally.peers_joined += 1;
            session.publish(peer, session.media_options)?;
            session.produce_data(peer, "chat")?;
        }
        for &peer in &peers {
            let others: Vec<usize> = peers.iter().copied().filter(|&p| p != peer).collect();
            let producers: Vec<(String, Kind)> =
                others.iter().flat_map(|&p| session.peers[p].producers.clone()).collect();
            session.consume_all(peer, &producers)?;
            let data_producers: Vec<String> =
                others.iter().flat_map(|&p| session.peers[p].data_producers.clone()).collect();
            for id in data_producers {
                session.consume_data(peer, &id)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        tally.fail(format!("{room}: setting up: {e:#}"));
    }
    peers
}

/// Every peer of `room` checks its media and leaves: even peers with `leaveRoom`, odd ones by
/// dropping their connection.
fn close_room(session: &mut Session, room: &LiveRoom, size: usize, tally: &mut Tally) {
    let kinds = if session.media_options.audio { 2 } else { 1 };
    let expected = (size - 1) * kinds;
    for &peer in &room.peers {
        let via_request = tally.peers_left.is_multiple_of(2);
        tally.peers_left += 1;
        let name = format!("{} peer {peer}", session.peers[peer].room);
        match session.leave(peer, via_request) {
            Ok(summaries) => {
                let consumed: Vec<&TransportSummary> = summaries.iter().filter(|s| s.consumers > 0).collect();
                let flowing: usize = consumed.iter().map(|s| s.flowing).sum();
                if summaries.iter().any(|s| !s.connected || s.failed) {
                    tally.fail(format!("{name}: a transport never connected or failed"));
                } else if flowing < expected {
                    tally.fail(format!("{name}: {flowing} of {expected} consumers got media"));
                } else {
                    tally.peers_with_media += 1;
                }
                tally.time_to_first_media.extend(consumed.iter().flat_map(|s| s.time_to_first_media.iter().copied()));
            }
            Err(e) => tally.fail(format!("{name}: leaving: {e:#}")),
        }
    }
}

fn judge(
    o: &SoakOptions,
    baseline: Sample,
    samples: Vec<Sample>,
    after: Sample,
    mut tally: Tally,
    workers: &[(usize, u32)],
) -> SoakReport {
    let controller_rss: Vec<u64> = samples.iter().map(|s| s.controller.rss_bytes).collect();
    let workers_rss: Vec<u64> = samples.iter().map(|s| s.workers.rss_bytes).collect();
    let every_peer = if tally.peers_with_media == tally.peers_joined && tally.peers_joined > 0 {
        Judgement::Pass
    } else {
        Judgement::Fail(format!("{} of {} peers got all their media", tally.peers_with_media, tally.peers_joined))
    };
    let judgements = vec![
        ("every peer's media flowed".to_owned(), every_peer),
        ("objects released".to_owned(), verdict::released(&after.named_objects())),
        ("controller descriptors".to_owned(), verdict::fds(baseline.controller.fds, after.controller.fds)),
        ("worker descriptors".to_owned(), verdict::fds(baseline.workers.fds, after.workers.fds)),
        ("controller memory".to_owned(), verdict::rss(&controller_rss)),
        ("worker memory".to_owned(), verdict::rss(&workers_rss)),
    ];
    let passed = !judgements.iter().any(|(_, j)| j.failed());
    tally.time_to_first_media.sort();
    let ms = |q: f64| {
        let t = &tally.time_to_first_media;
        if t.is_empty() { 0.0 } else { t[((t.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0 }
    };
    SoakReport {
        minutes: o.duration.as_secs_f64() / 60.0,
        workers: workers.len(),
        rooms_opened: tally.rooms_opened,
        peers_joined: tally.peers_joined,
        peers_with_media: tally.peers_with_media,
        time_to_first_media_ms: [ms(0.5), ms(0.99), ms(1.0)],
        baseline,
        samples,
        after,
        judgements,
        failures: tally.failures,
        passed,
    }
}

fn print_report(r: &SoakReport) {
    let [p50, p99, max] = r.time_to_first_media_ms;
    println!();
    println!(
        "soak: {:.1} min, {} workers, {} rooms, {} peers joined, {} got all their media; time to first media p50 \
         {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        r.minutes, r.workers, r.rooms_opened, r.peers_joined, r.peers_with_media
    );
    for failure in &r.failures {
        println!("  failure: {failure}");
    }
    for (what, judgement) in &r.judgements {
        println!("  {what:<28} {judgement}");
    }
    println!("soak {}", if r.passed { "PASS" } else { "FAIL" });
}
