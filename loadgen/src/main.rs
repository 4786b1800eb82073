//! `octo-loadgen`: see `octo-loadgen --help` and BENCHMARKS.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use octo_ipc::Protocol;
use octo_loadgen::octo::LaunchOptions;
use octo_loadgen::scenario::{self, Kind, Options, Ramp, Target};
use octo_loadgen::session::{DownlinkCaps, MediaOptions};

#[derive(Parser)]
#[command(version, about = "Load generator for Octo: real Socket.IO signaling, ICE, DTLS and SRTP clients")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// An Octo already running (its HTTP address); by default the load generator starts the `octo`
    /// next to its own executable on ephemeral loopback ports.
    #[arg(long, global = true)]
    url: Option<SocketAddr>,
    /// That Octo's metrics address (for egress counters); without it, egress is counted at the
    /// subscribers.
    #[arg(long, global = true)]
    metrics_url: Option<SocketAddr>,
    /// The `octo` binary to start.
    #[arg(long, global = true)]
    octo_bin: Option<PathBuf>,
    /// Start one redis-server and N Octo nodes sharing it (a cluster, each node with --workers
    /// workers): the webinar's publisher on the first node and its viewers round the nodes;
    /// rooms' and meetings' members round the nodes too.
    #[arg(long, global = true, default_value_t = 0)]
    cluster: usize,
    /// Workers of the started Octo (default: 1, rooms: 2).
    #[arg(long, global = true)]
    workers: Option<usize>,
    /// One more argument for the started Octo (repeatable), e.g.
    /// `--octo-arg=--room-spill-consumers=1000` to spread a webinar's viewers over the workers.
    #[arg(long = "octo-arg", global = true, allow_hyphen_values = true)]
    octo_args: Vec<String>,
    /// Video bitrate of every publisher, bit/s.
    #[arg(long, global = true, default_value_t = 1_000_000)]
    bitrate: u64,
    /// Interval of periodic keyframes, ms.
    #[arg(long, global = true, default_value_t = 3000)]
    keyframe_interval_ms: u64,
    /// Publish video only.
    #[arg(long, global = true)]
    no_audio: bool,
    /// Receive every datagram singly: do not ask the kernel to keep a GSO run from Octo whole
    /// (UDP_GRO) on the subscribers' sockets. On loopback the split is then billed to the worker.
    #[arg(long, global = true)]
    no_gro: bool,
    /// Publish video as three simulcast encodings (VP8 L1T3 each, 320×180, 640×360 and 1280×720)
    /// instead of one stream of --bitrate; viewers get simulcast consumers.
    #[arg(long, global = true)]
    simulcast: bool,
    /// The simulcast encodings' bitrates, kbit/s, lowest first.
    #[arg(long, global = true, value_delimiter = ',', num_args = 3, default_values_t = [150, 500, 1200])]
    simulcast_kbps: Vec<u64>,
    /// Subscribers send no transport-cc feedback: the worker then runs no downlink estimator and
    /// sends every consumer its preferred layer (the cost of forwarding alone).
    #[arg(long, global = true)]
    no_transport_cc: bool,
    /// Put a simulated bottleneck of this many kbit/s (a constant-rate link with a drop-tail queue
    /// of 100 ms) in front of each subscriber, before the load generator reads its datagrams; a
    /// comma-separated list is taken by the capped subscribers in turn.
    #[arg(long, global = true, value_delimiter = ',')]
    subscriber_cap_kbps: Vec<u64>,
    /// Cap only the first N subscribers (default: all, when --subscriber-cap-kbps is given).
    #[arg(long, global = true)]
    capped_subscribers: Option<usize>,
    /// Only every Nth subscriber reads its media once it flows; the others become sinks: fully set
    /// up (signaling, ICE, DTLS, SRTP, consent checks), then never read, so the kernel drops their
    /// datagrams at the socket. Frees the load generator's CPU when it shares a small machine with
    /// the workers; loss and latency are then the read subscribers', egress still the workers'.
    #[arg(long, global = true, default_value_t = 1)]
    read_every: usize,
    /// Subscribers receive over ICE-TCP: each receive transport connects to the worker's passive
    /// TCP candidate and carries STUN, DTLS, SRTP and RTCP in RFC 4571 frames instead of UDP
    /// datagrams; publishers stay on UDP. Octo only; not with --subscriber-cap-kbps. Sinks
    /// (--read-every) read their stream and throw it away, as TCP cannot drop.
    #[arg(long, global = true)]
    tcp: bool,
    /// While each step is measured, flood the worker's media port with this many garbage
    /// datagrams per second from an address no transport knows (a quarter of them STUN binding
    /// requests for unknown usernames): the call's loss and latency show what it costs.
    #[arg(long, global = true)]
    flood_pps: Option<u64>,
    /// Wait after setup before measuring, ms.
    #[arg(long, global = true, default_value_t = 2000)]
    settle_ms: u64,
    /// Length of each measurement window, ms.
    #[arg(long, global = true, default_value_t = 8000)]
    window_ms: u64,
    /// Decrypt every Nth packet of each stream (integrity check and latency sample).
    #[arg(long, global = true, default_value_t = 8)]
    decrypt_every: u64,
    /// Datagrams of the raw sendmmsg baseline (at most 5 s).
    #[arg(long, global = true, default_value_t = 500_000)]
    raw_packets: u64,
    /// Do not pin the started Octo's workers and the media loop to CPUs of their own.
    #[arg(long, global = true)]
    no_pin: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// The SFU under load: Octo, or Janus's VideoRoom (started from --janus-bin unless
    /// --janus-url names a running one; `webinar` and `rooms` only).
    #[arg(long, global = true, value_enum, default_value = "octo")]
    target: TargetArg,
    /// A running Janus's WebSocket transport (ws://ADDR/, subprotocol janus-protocol).
    #[arg(long, global = true)]
    janus_url: Option<SocketAddr>,
    /// The `janus` binary to start (Debian's `janus` package).
    #[arg(long, global = true, default_value = "/usr/bin/janus")]
    janus_bin: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    Octo,
    Janus,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompareScenario {
    Webinar,
    Rooms,
}

#[derive(Clone, Copy, ValueEnum)]
enum RampScenario {
    Webinar,
    Rooms,
    Meeting,
}

#[derive(Subcommand)]
enum Command {
    /// P publishers in one room, everyone consuming everyone.
    Meeting {
        #[arg(long, default_value_t = 6)]
        publishers: usize,
    },
    /// One publisher, N subscribers.
    Webinar {
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
    },
    /// R rooms of 4 publishing peers, spread over the workers.
    Rooms {
        #[arg(long, default_value_t = 20)]
        rooms: usize,
    },
    /// The same scenario on Octo and then on Janus, one table of both (see BENCHMARKS.md).
    Compare {
        #[arg(long, value_enum, default_value = "webinar")]
        scenario: CompareScenario,
        /// Subscribers (webinar) or rooms (rooms).
        #[arg(long, default_value_t = 200)]
        level: usize,
    },
    /// Raise N (subscribers, rooms, or a meeting's publishers) until loss > 0.5 %, p99 added
    /// latency > 20 ms or a process saturates; report the last good N.
    Ramp {
        #[arg(long, value_enum, default_value = "webinar")]
        scenario: RampScenario,
        /// First level (default: 100 subscribers, 10 rooms, or 4 publishers).
        #[arg(long)]
        start: Option<usize>,
        #[arg(long, default_value_t = 5000)]
        max: usize,
        /// Stop starting new steps after this many seconds.
        #[arg(long, default_value_t = 200)]
        max_time_s: u64,
        /// A step whose added latency p99 exceeds this many ms is not good (the limit is
        /// 20; a higher one finds where loss or saturation stop a ramp instead).
        #[arg(long, default_value_t = octo_loadgen::figures::MAX_P99_MS)]
        max_p99_ms: f64,
    },
    /// Rooms open and close for --minutes on an Octo the load generator starts (default 2
    /// workers); afterwards every object gauge must be zero, descriptors back at their baseline
    /// and memory level (see RELIABILITY.md). Exits nonzero on FAIL.
    Soak {
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Rooms open at once.
        #[arg(long, default_value_t = 4)]
        rooms: usize,
        /// Peers per room, each publishing and consuming all the others.
        #[arg(long, default_value_t = 3)]
        room_size: usize,
        /// How long a room stays open (the first rooms close sooner, in turn).
        #[arg(long, default_value_t = 20.0)]
        room_lifetime_s: f64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 60.0)]
        sample_s: f64,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,octo_loadgen=info")),
        )
        .init();
    let cli = Cli::parse();
    let c = cli.common;
    let janus = Target::Janus { url: c.janus_url, bin: c.janus_bin.clone() };
    let options = Options {
        url: c.url,
        metrics_url: c.metrics_url,
        octo_bin: c.octo_bin,
        workers: c.workers,
        cluster: c.cluster,
        octo_args: c.octo_args,
        media: MediaOptions {
            bitrate: c.bitrate,
            keyframe_interval: Duration::from_millis(c.keyframe_interval_ms.max(100)),
            audio: !c.no_audio,
            gro: !c.no_gro,
            simulcast: c.simulcast.then(|| {
                let k = &c.simulcast_kbps;
                [k[0] * 1000, k[1] * 1000, k[2] * 1000]
            }),
            transport_cc: !c.no_transport_cc,
        },
        downlink_caps: DownlinkCaps { kbps: c.subscriber_cap_kbps, subscribers: c.capped_subscribers },
        settle: Duration::from_millis(c.settle_ms),
        window: Duration::from_millis(c.window_ms.max(100)),
        decrypt_every: c.decrypt_every,
        raw_packets: c.raw_packets,
        json: c.json,
        pin: !c.no_pin,
        read_every: c.read_every.max(1),
        target: match c.target {
            TargetArg::Octo => Target::Octo,
            TargetArg::Janus => janus.clone(),
        },
        egress_at_subscribers: false,
        subscriber_transport: if c.tcp { Protocol::Tcp } else { Protocol::Udp },
        flood_pps: c.flood_pps,
    };
    let report = match cli.command {
        Command::Soak { minutes, rooms, room_size, room_lifetime_s, sample_s } => {
            return soak(&options, minutes, rooms, room_size, room_lifetime_s, sample_s);
        }
        Command::Meeting { publishers } => scenario::run(Kind::Meeting, publishers.max(2), None, &options)?,
        Command::Webinar { subscribers } => scenario::run(Kind::Webinar, subscribers.max(1), None, &options)?,
        Command::Rooms { rooms } => scenario::run(Kind::Rooms, rooms.max(1), None, &options)?,
        Command::Compare { scenario: s, level } => {
            let kind = match s {
                CompareScenario::Webinar => Kind::Webinar,
                CompareScenario::Rooms => Kind::Rooms,
            };
            let c = octo_loadgen::compare::run(kind, level.max(1), &options, janus)?;
            let flowed =
                |f: &Option<octo_loadgen::figures::StepFigures>| f.as_ref().is_some_and(|f| f.received_rtp_per_s > 0.0);
            anyhow::ensure!(flowed(&c.octo) && flowed(&c.janus), "media did not flow through both servers");
            return Ok(());
        }
        Command::Ramp { scenario: s, start, max, max_time_s, max_p99_ms } => {
            let kind = match s {
                RampScenario::Webinar => Kind::Webinar,
                RampScenario::Rooms => Kind::Rooms,
                RampScenario::Meeting => Kind::Meeting,
            };
            let start = start.unwrap_or(match kind {
                Kind::Rooms => 10,
                Kind::Meeting => 4,
                Kind::Webinar => 100,
            });
            let ramp = Ramp { start, max, max_time: Duration::from_secs(max_time_s), max_p99_ms };
            scenario::run(kind, start, Some(ramp), &options)?
        }
    };
    // A run where no media flowed is a failure, whatever the figures say.
    let flowed = report.steps.iter().any(|s| s.received_rtp_per_s > 0.0);
    anyhow::ensure!(flowed, "no media flowed: {}", report.stop_reason.unwrap_or_default());
    Ok(())
}

/// `soak`: see [`octo_loadgen::soak`].
fn soak(
    options: &Options,
    minutes: f64,
    rooms: usize,
    room_size: usize,
    room_lifetime_s: f64,
    sample_s: f64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.url.is_none() && options.cluster == 0 && matches!(options.target, Target::Octo),
        "soak starts its own Octo: no --url, --cluster or --target janus"
    );
    let seconds = |s: f64| Duration::from_secs_f64(s.max(0.1));
    let soak = octo_loadgen::soak::SoakOptions {
        duration: seconds(minutes * 60.0),
        rooms: rooms.max(1),
        room_size,
        room_lifetime: seconds(room_lifetime_s),
        sample_every: seconds(sample_s),
        launch: LaunchOptions {
            bin: options.octo_bin.clone(),
            workers: options.workers.unwrap_or(2),
            pin_workers: false,
            extra_args: options.octo_args.clone(),
        },
        media: options.media,
        decrypt_every: options.decrypt_every,
        json: options.json.clone(),
    };
    let report = octo_loadgen::soak::run(&soak)?;
    anyhow::ensure!(report.passed, "soak failed");
    Ok(())
}
