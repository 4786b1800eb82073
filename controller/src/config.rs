//! Configuration: defaults < TOML file < `OCTO_…` environment < command-line flags.
//!
//! Every setting has one name in three spellings: flag `--max-peers-per-room`, environment
//! `OCTO_MAX_PEERS_PER_ROOM`, file key `max_peers_per_room`. The file layer is applied by turning
//! each key into its environment variable unless that variable is already set, so clap's own
//! precedence (flag over environment over default) does the rest.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::{Deserialize, Serialize, Serializer};

#[derive(Debug, Clone, Parser, Serialize)]
#[command(
    name = "octo",
    version,
    about = "Octo: a WebRTC SFU. Serves the web client and signaling; one media worker per core."
)]
pub struct Args {
    /// TOML file with any of these settings (keys: the environment variable without `OCTO_`, in
    /// lower case); environment variables override it and flags override both.
    #[arg(long, env = "OCTO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print the effective settings and exit.
    #[arg(long)]
    #[serde(skip)]
    pub check_config: bool,
    /// HTTP listen address (web client, signaling, health).
    #[arg(long, env = "OCTO_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// PEM certificate chain: with `--tls-key`, the listener serves HTTPS and WSS.
    #[arg(long, env = "OCTO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "OCTO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate generated at startup for localhost, 127.0.0.1 and the listen
    /// address (LAN trials: browsers warn once; its SHA-256 fingerprint is logged).
    #[arg(long, env = "OCTO_SELF_SIGNED")]
    pub self_signed: bool,
    /// Number of worker processes [default: the CPUs this process may use].
    #[arg(long, env = "OCTO_WORKERS")]
    pub workers: Option<usize>,
    /// Pin worker i to the i-th CPU of this process's affinity mask.
    #[arg(long, env = "OCTO_PIN_WORKERS")]
    pub pin_workers: bool,
    /// A worker that leaves the controller's heartbeat ping (every second) unanswered this long, in
    /// ms, is hung (stopped, or stuck): it is killed and respawned. 0 never pings.
    #[arg(long, env = "OCTO_WORKER_HANG_TIMEOUT_MS", default_value_t = 5000)]
    pub worker_hang_timeout_ms: u64,
    /// Path of the octo-worker binary [default: next to this binary].
    #[arg(long, env = "OCTO_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
    /// IP addresses workers receive WebRTC media on (repeat the flag for several; IPv6 ones are
    /// skipped where the host has no IPv6).
    #[arg(long = "rtc-listen-ip", env = "OCTO_RTC_LISTEN_IPS", value_delimiter = ',', default_values = ["127.0.0.1", "::1"])]
    pub rtc_listen_ips: Vec<std::net::IpAddr>,
    /// First UDP port for media: worker i uses this + i. 0 picks free ports.
    #[arg(long, env = "OCTO_RTC_PORT", default_value_t = 0)]
    pub rtc_port: u16,
    /// Address announced in ICE candidates instead of the listen IP (the public IP behind NAT).
    #[arg(long, env = "OCTO_RTC_ANNOUNCED_ADDRESS")]
    pub rtc_announced_address: Option<String>,
    /// ICE-TCP: each worker also takes media over TCP on its UDP port's number (RFC 6544 passive
    /// candidates, below the UDP ones), for networks that block UDP. `--rtc-tcp false` turns it off.
    #[arg(long, env = "OCTO_RTC_TCP", default_value_t = true, action = clap::ArgAction::Set)]
    pub rtc_tcp: bool,
    /// Pace video to each subscriber at 2.5× its downlink estimate (experimental, off: in the load
    /// generator's capped-viewer run it lets the estimate overshoot the cap; see RELIABILITY.md).
    #[arg(long, env = "OCTO_PACE_VIDEO", default_value_t = false, action = clap::ArgAction::Set)]
    pub pace_video: bool,
    /// Frame gathering: a worker's fan-out waits up to this many µs for the rest of a video frame,
    /// so that each viewer's share of the frame leaves as one GSO message (0: never waits).
    #[arg(long, env = "OCTO_GATHER_FRAMES_US", default_value_t = crate::worker_pool::DEFAULT_GATHER_FRAMES_US)]
    pub gather_frames_us: u64,
    /// Serve static files from this directory at `/` instead of the built-in client (any front-end,
    /// same-origin with signaling).
    #[arg(long, env = "OCTO_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
    /// HS256 secret: with it, joining a room needs a JWT naming the room (claims `room`, optional
    /// `name`, `exp`); without it rooms are open.
    #[arg(long, env = "OCTO_AUTH_SECRET", hide_env_values = true)]
    #[serde(serialize_with = "masked")]
    pub auth_secret: Option<String>,
    /// TURN URLs handed to clients as `iceServers` (repeat the flag; `turn:host:3478`,
    /// `turn:host:3478?transport=tcp`, `turns:host:443`…), for browsers whose network blocks UDP to
    /// Octo. Needs --turn-secret or --turn-username with --turn-credential.
    #[arg(long = "turn-url", env = "OCTO_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// The TURN REST API's shared secret (coturn's `use-auth-secret` + `static-auth-secret`): each
    /// peer gets a credential of its own that expires after --turn-ttl-s.
    #[arg(long, env = "OCTO_TURN_SECRET", hide_env_values = true)]
    #[serde(serialize_with = "masked")]
    pub turn_secret: Option<String>,
    /// A static TURN username and password for everyone (instead of the secret).
    #[arg(long, env = "OCTO_TURN_USERNAME")]
    pub turn_username: Option<String>,
    #[arg(long, env = "OCTO_TURN_CREDENTIAL", hide_env_values = true)]
    #[serde(serialize_with = "masked")]
    pub turn_credential: Option<String>,
    /// How long a TURN credential made with the secret lasts, in seconds.
    #[arg(long, env = "OCTO_TURN_TTL_S", default_value_t = 86_400)]
    pub turn_ttl_s: u64,
    /// Codecs every room's router offers, in order of preference (any of opus, vp8, vp9, h264).
    #[arg(long, env = "OCTO_MEDIA_CODECS", value_enum, value_delimiter = ',',
          default_values = ["opus", "vp8", "vp9", "h264"])]
    pub media_codecs: Vec<MediaCodec>,
    /// Most peers in one room.
    #[arg(long, env = "OCTO_MAX_PEERS_PER_ROOM", default_value_t = 50)]
    pub max_peers_per_room: usize,
    /// Largest signaling payload accepted, in bytes.
    #[arg(long, env = "OCTO_MAX_PAYLOAD", default_value_t = 65_536)]
    pub max_payload: usize,
    /// Sustained signaling requests per second per socket.
    #[arg(long, env = "OCTO_REQUESTS_PER_SECOND", default_value_t = 50.0)]
    pub requests_per_second: f64,
    /// Requests a socket may send in a burst before the rate applies.
    #[arg(long, env = "OCTO_REQUEST_BURST", default_value_t = 100.0)]
    pub request_burst: f64,
    /// A room's consumers on its main worker at which new receiving peers go to another worker
    /// (their media piped there); 0 keeps every room on one worker.
    #[arg(long, env = "OCTO_ROOM_SPILL_CONSUMERS", default_value_t = 500)]
    pub room_spill_consumers: usize,
    /// A worker's CPU use (share of one core) at which a room's new receiving peers go elsewhere.
    #[arg(long, env = "OCTO_ROOM_SPILL_CPU", default_value_t = 0.7)]
    pub room_spill_cpu: f64,
    /// Encrypt media piped between workers (SRTP with a random key per pipe); off: in the clear over
    /// loopback, as both ends are on this host.
    #[arg(long, env = "OCTO_PIPE_SRTP")]
    pub pipe_srtp: bool,
    /// Join an Octo cluster whose registry and events live in this Redis
    /// (`redis://[:PASSWORD@]HOST:PORT[/DB]`); without it Octo runs standalone.
    #[arg(long, env = "OCTO_CLUSTER_REDIS", hide_env_values = true)]
    #[serde(serialize_with = "masked")]
    pub cluster_redis: Option<String>,
    /// This node's name in the cluster, unique among its nodes [default: the host name].
    #[arg(long, env = "OCTO_NODE_ID")]
    pub node_id: Option<String>,
    /// The IP address other nodes reach this node's workers at: media between nodes is piped to it
    /// [default: the first --rtc-listen-ip].
    #[arg(long, env = "OCTO_NODE_ADDRESS")]
    pub node_address: Option<IpAddr>,
    /// Cluster: the URL browsers reach this node at, handed to clients (`/servers`) as a place to
    /// reconnect to if their node dies [default: this node's listen address, or --node-address
    /// and its port when listening on a wildcard]. Behind a load balancer, its URL.
    #[arg(long, env = "OCTO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Cluster: chat lines kept per room in Redis and replayed to a joining peer (0: none).
    #[arg(long, env = "OCTO_CHAT_HISTORY_MESSAGES", default_value_t = 200)]
    pub chat_history_messages: usize,
    /// Cluster: how old a kept chat line may be, in minutes.
    #[arg(long, env = "OCTO_CHAT_HISTORY_MINUTES", default_value_t = 1440)]
    pub chat_history_minutes: u64,
    /// Milliseconds an empty room keeps its router before closing it.
    #[arg(long, env = "OCTO_EMPTY_ROOM_GRACE_MS", default_value_t = 10_000)]
    pub empty_room_grace_ms: u64,
    /// Seed-app dialect: milliseconds between a client's /getRtpCapabilities answer and its first
    /// `transport-created` at the earliest.
    #[arg(long, env = "OCTO_SEED_TRANSPORT_HOLD_MS", default_value_t = 300)]
    pub seed_transport_hold_ms: u64,
    /// On SIGTERM, how long rooms may go on (no new joins) before everything closes, in ms.
    #[arg(long, env = "OCTO_DRAIN_TIMEOUT_MS", default_value_t = 30_000)]
    pub drain_timeout_ms: u64,
    /// Address of the Prometheus `/metrics` endpoint (keep it private); empty to disable.
    #[arg(long, env = "OCTO_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
    /// Log filter, in tracing's EnvFilter syntax (also read by the workers).
    #[arg(long, env = "OCTO_LOG", default_value = "info")]
    pub log: String,
    /// Log line format of the controller and its workers: `text` or `json` (one object a line).
    #[arg(long, env = "OCTO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written (to stderr, where journald or a collector picks them up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The spelling of the flag, file and `OCTO_LOG_FORMAT` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// A codec a router can offer; its RTP capability (clock rate, channels, parameters) is fixed by Octo
/// because the worker knows how to handle exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaCodec {
    Opus,
    Vp8,
    Vp9,
    H264,
}

fn masked<S: Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("(set)"),
        None => s.serialize_none(),
    }
}

/// The file's keys, typed so that a wrong type is reported with its line.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    self_signed: Option<bool>,
    workers: Option<usize>,
    pin_workers: Option<bool>,
    worker_hang_timeout_ms: Option<u64>,
    worker_bin: Option<PathBuf>,
    rtc_listen_ips: Option<Vec<IpAddr>>,
    media_codecs: Option<Vec<MediaCodec>>,
    turn_urls: Option<Vec<String>>,
    turn_secret: Option<String>,
    turn_username: Option<String>,
    turn_credential: Option<String>,
    turn_ttl_s: Option<u64>,
    rtc_port: Option<u16>,
    rtc_announced_address: Option<String>,
    rtc_tcp: Option<bool>,
    pace_video: Option<bool>,
    gather_frames_us: Option<u64>,
    web_root: Option<PathBuf>,
    auth_secret: Option<String>,
    max_peers_per_room: Option<usize>,
    max_payload: Option<usize>,
    requests_per_second: Option<f64>,
    request_burst: Option<f64>,
    empty_room_grace_ms: Option<u64>,
    room_spill_consumers: Option<usize>,
    room_spill_cpu: Option<f64>,
    pipe_srtp: Option<bool>,
    cluster_redis: Option<String>,
    node_id: Option<String>,
    node_address: Option<IpAddr>,
    chat_history_messages: Option<usize>,
    public_url: Option<String>,
    chat_history_minutes: Option<u64>,
    seed_transport_hold_ms: Option<u64>,
    metrics_listen: Option<String>,
    drain_timeout_ms: Option<u64>,
    log: Option<String>,
    log_format: Option<LogFormat>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What `load` decided.
pub enum Loaded {
    Run(Box<Args>),
    /// `--check-config`: the settings, and the effective configuration as TOML.
    Checked(Box<Args>, String),
}

/// Reads the file (if any) into the environment, then parses flags and environment.
///
/// Must run before any other thread exists: it writes environment variables.
pub fn load() -> anyhow::Result<Loaded> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(path) = config_path(&argv) {
        for (name, value) in file_environment(&path)? {
            if std::env::var_os(&name).is_none() {
                // SAFETY: documented precondition: no other thread yet.
                unsafe { std::env::set_var(&name, value) };
            }
        }
    }
    let args = Args::parse_from(argv);
    if args.self_signed && args.tls_cert.is_some() {
        anyhow::bail!("--self-signed and --tls-cert/--tls-key exclude each other: choose one certificate");
    }
    if args.check_config {
        let text = toml::to_string(&args)?;
        return Ok(Loaded::Checked(Box::new(args), text));
    }
    Ok(Loaded::Run(Box::new(args)))
}

/// `--config PATH`, `--config=PATH`, or `OCTO_CONFIG`.
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut it = argv.iter().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("OCTO_CONFIG").map(PathBuf::from)
}

/// The file's settings as (environment variable, value) pairs.
pub fn file_environment(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let file: FileConfig =
        toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: path.to_owned(), message: e.to_string() })?;
    let table = toml::Table::try_from(&file)
        .map_err(|e| ConfigError::Invalid { path: path.to_owned(), message: e.to_string() })?;
    Ok(table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            (format!("OCTO_{}", key.to_ascii_uppercase()), value)
        })
        .collect())
}
