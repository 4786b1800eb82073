//! `octo`: the controller daemon. Spawns one worker per core and serves HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use octo_controller::http;
use octo_controller::rooms::{Rooms, RoomsConfig};
use octo_controller::signaling::{Limits, Signaling, SignalingConfig};
use octo_controller::worker_pool::{MediaListen, PoolConfig, WorkerPool};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "octo",
    version,
    about = "Octo: a WebRTC SFU. Serves the web client and signaling; one media worker per core."
)]
struct Args {
    /// HTTP listen address (web client, signaling, health).
    #[arg(long, env = "OCTO_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Number of worker processes [default: the CPUs this process may use].
    #[arg(long, env = "OCTO_WORKERS")]
    workers: Option<usize>,
    /// Pin worker i to the i-th CPU of this process's affinity mask.
    #[arg(long, env = "OCTO_PIN_WORKERS")]
    pin_workers: bool,
    /// Path of the octo-worker binary [default: next to this binary].
    #[arg(long, env = "OCTO_WORKER_BIN")]
    worker_bin: Option<PathBuf>,
    /// IP addresses workers receive WebRTC media on (repeat the flag for several; IPv6 ones are
    /// skipped where the host has no IPv6).
    #[arg(long = "rtc-listen-ip", env = "OCTO_RTC_LISTEN_IPS", value_delimiter = ',', default_values = ["127.0.0.1", "::1"])]
    rtc_listen_ips: Vec<std::net::IpAddr>,
    /// First UDP port for media: worker i uses this + i. 0 picks free ports.
    #[arg(long, env = "OCTO_RTC_PORT", default_value_t = 0)]
    rtc_port: u16,
    /// Address announced in ICE candidates instead of the listen IP (the public IP behind NAT).
    #[arg(long, env = "OCTO_RTC_ANNOUNCED_ADDRESS")]
    rtc_announced_address: Option<String>,
    /// Serve static files from this directory at `/` (any front-end, same-origin with signaling).
    #[arg(long, env = "OCTO_WEB_ROOT")]
    web_root: Option<PathBuf>,
    /// HS256 secret: with it, joining a room needs a JWT naming the room (claims `room`, optional
    /// `name`, `exp`); without it rooms are open.
    #[arg(long, env = "OCTO_AUTH_SECRET", hide_env_values = true)]
    auth_secret: Option<String>,
    /// Most peers in one room.
    #[arg(long, env = "OCTO_MAX_PEERS_PER_ROOM", default_value_t = 50)]
    max_peers_per_room: usize,
    /// Largest signaling payload accepted, in bytes.
    #[arg(long, env = "OCTO_MAX_PAYLOAD", default_value_t = 65_536)]
    max_payload: usize,
    /// Sustained signaling requests per second per socket.
    #[arg(long, env = "OCTO_REQUESTS_PER_SECOND", default_value_t = 50.0)]
    requests_per_second: f64,
    /// Requests a socket may send in a burst before the rate applies.
    #[arg(long, env = "OCTO_REQUEST_BURST", default_value_t = 100.0)]
    request_burst: f64,
    /// Milliseconds an empty room keeps its router before closing it.
    #[arg(long, env = "OCTO_EMPTY_ROOM_GRACE_MS", default_value_t = 10_000)]
    empty_room_grace_ms: u64,
    /// Seed-app dialect: milliseconds between a client's /getRtpCapabilities answer and its first
    /// `transport-created` at the earliest.
    #[arg(long, env = "OCTO_SEED_TRANSPORT_HOLD_MS", default_value_t = 100)]
    seed_transport_hold_ms: u64,
    /// Address of the Prometheus `/metrics` endpoint (keep it private); empty to disable.
    #[arg(long, env = "OCTO_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    metrics_listen: String,
    /// Log filter, in tracing's EnvFilter syntax (also read by the workers).
    #[arg(long, env = "OCTO_LOG", default_value = "info")]
    log: String,
}

/// How long open HTTP requests may finish after SIGTERM before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    // The workers inherit the environment: give them the same filter.
    // SAFETY: no other thread reads or writes the environment yet.
    unsafe { std::env::set_var("OCTO_LOG", &args.log) };

    let workers = match args.workers {
        Some(0) => anyhow::bail!("--workers must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let worker_bin = match args.worker_bin {
        Some(p) => p,
        None => std::env::current_exe().context("locating octo")?.with_file_name("octo-worker"),
    };
    let mut config = PoolConfig::new(workers, worker_bin);
    config.pin_workers = args.pin_workers;
    config.media = MediaListen {
        ips: args.rtc_listen_ips,
        port_base: args.rtc_port,
        announced_address: args.rtc_announced_address,
    };

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    if !(args.requests_per_second > 0.0 && args.request_burst >= 1.0) {
        anyhow::bail!("--requests-per-second must be positive and --request-burst at least 1");
    }
    let rooms_config = RoomsConfig {
        max_peers_per_room: args.max_peers_per_room,
        empty_room_grace: Duration::from_millis(args.empty_room_grace_ms),
        ..RoomsConfig::default()
    };
    let signaling_config = SignalingConfig {
        limits: Limits {
            max_payload_bytes: args.max_payload,
            requests_per_second: args.requests_per_second,
            request_burst: args.request_burst,
            ..Limits::default()
        },
        auth_secret: args.auth_secret.filter(|s| !s.is_empty()),
        seed_transport_hold: Duration::from_millis(args.seed_transport_hold_ms),
    };
    let pool = Arc::new(WorkerPool::start(config).await?);
    let rooms = Rooms::new(pool.clone(), rooms_config);
    if !args.metrics_listen.is_empty() {
        let addr: SocketAddr = args.metrics_listen.parse().context("--metrics-listen")?;
        let metrics_listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics {addr}"))?;
        info!("metrics on http://{}/metrics", metrics_listener.local_addr()?);
        let app = octo_controller::metrics::router(octo_controller::metrics::MetricsState {
            pool: pool.clone(),
            rooms: rooms.clone(),
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics_listener, app).await {
                tracing::error!("metrics endpoint failed: {e}");
            }
        });
    }
    let signaling = Signaling::new(rooms, signaling_config);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    info!(workers, "listening on http://{}", listener.local_addr()?);

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let app = http::router(pool.clone(), signaling, args.web_root);
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    // Workers answer and the listener accepts: tell systemd (Type=notify) we are ready.
    let notifier = octo_controller::systemd::Notifier::from_env().context("NOTIFY_SOCKET")?;
    if let Some(n) = &notifier {
        n.notify(&format!("READY=1\nSTATUS=serving with {workers} workers\nMAINPID={}", std::process::id()))
            .context("sd_notify READY")?;
        if let Some(every) = octo_controller::systemd::watchdog_interval() {
            let pinger = octo_controller::systemd::Notifier::from_env()?.expect("NOTIFY_SOCKET is set");
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    // Only a controller whose workers answer is alive in the sense that matters.
                    if pool.live_count() > 0 {
                        let _ = pinger.notify("WATCHDOG=1");
                    }
                }
            });
        }
    }
    tokio::select! {
        _ = sigterm.recv() => info!("SIGTERM: shutting down"),
        _ = sigint.recv() => info!("SIGINT: shutting down"),
        result = &mut server => {
            result.context("HTTP server task")?.context("HTTP server")?;
        }
    }
    if let Some(n) = &notifier {
        let _ = n.notify("STOPPING=1");
    }
    stop_tx.send_replace(true);
    // Long polls and WebSockets would hold a graceful shutdown open indefinitely: give in-flight
    // requests a moment, then close what is left.
    if !server.is_finished() && tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await.is_err() {
        info!("closing connections still open after {SHUTDOWN_GRACE:?}");
        server.abort();
    }
    pool.close().await;
    info!("stopped");
    Ok(())
}
