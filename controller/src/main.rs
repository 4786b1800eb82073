//! `octo`: the controller daemon. Spawns one worker per core and serves HTTP (or HTTPS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener, ListenerExt};
use octo_controller::cluster::{ChatHistory, ClusterConfig};
use octo_controller::config::{self, Args};
use octo_controller::http;
use octo_controller::logging;
use octo_controller::readiness::Readiness;
use octo_controller::rooms::spill::SpillLimits;
use octo_controller::rooms::{Rooms, RoomsConfig};
use octo_controller::signaling::{Limits, Signaling, SignalingConfig};
use octo_controller::tls::{Tls, TlsListener};
use octo_controller::worker_pool::{MediaListen, PoolConfig, WorkerPool};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

/// How long open HTTP requests may finish after SIGTERM before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    // Configuration first, while this is the only thread: the file layer works through the
    // environment (file < environment < flags), which is only safe to write single-threaded.
    let args = match config::load()? {
        config::Loaded::Run(args) => *args,
        config::Loaded::Checked(args, text) => {
            // The certificate files are part of the configuration: check they load.
            tls(&args)?;
            print!("{text}");
            return Ok(());
        }
    };
    // The workers inherit the environment: give them the same filter and format.
    // SAFETY: still the only thread.
    unsafe {
        std::env::set_var("OCTO_LOG", &args.log);
        std::env::set_var("OCTO_LOG_FORMAT", args.log_format.as_str());
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

/// The certificate to serve, if TLS is configured.
fn tls(args: &Args) -> anyhow::Result<Option<Tls>> {
    Ok(match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::from_pem_files(cert, key)?),
        _ if args.self_signed => Some(Tls::self_signed(args.listen)?),
        _ => None,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let filter_handle = logging::init(&args.log, args.log_format).context("--log")?;
    // Registered now, handled once the workers exist: a SIGHUP in between waits instead of killing
    // octo (the default action).
    let sighup = signal(SignalKind::hangup())?;
    // Before any worker starts: a bad certificate is a configuration error, reported at once.
    let tls = tls(&args)?;
    if let Some(tls) = &tls {
        let source = if args.self_signed { "self-signed certificate" } else { "certificate" };
        info!("TLS {source} SHA-256 fingerprint {}", tls.fingerprint);
    }

    let workers = match args.workers {
        Some(0) => anyhow::bail!("--workers must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let cluster = match &args.cluster_redis {
        Some(url) => Some(cluster_config(&args, url)?),
        None => None,
    };
    let worker_bin = match args.worker_bin {
        Some(p) => p,
        None => std::env::current_exe().context("locating octo")?.with_file_name("octo-worker"),
    };
    let mut config = PoolConfig::new(workers, worker_bin);
    config.pin_workers = args.pin_workers;
    config.hang_timeout = (args.worker_hang_timeout_ms > 0).then(|| Duration::from_millis(args.worker_hang_timeout_ms));
    config.media = MediaListen {
        ips: args.rtc_listen_ips,
        port_base: args.rtc_port,
        announced_address: args.rtc_announced_address,
        tcp: args.rtc_tcp,
        pace_video: args.pace_video,
        gather_frames_us: args.gather_frames_us,
    };

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    if !(args.requests_per_second > 0.0 && args.request_burst >= 1.0) {
        anyhow::bail!("--requests-per-second must be positive and --request-burst at least 1");
    }
    if !(args.room_spill_cpu.is_finite() && args.room_spill_cpu > 0.0) {
        anyhow::bail!("--room-spill-cpu must be a positive share of one core (0.7 = 70%)");
    }
    let rooms_config = RoomsConfig {
        max_peers_per_room: args.max_peers_per_room,
        empty_room_grace: Duration::from_millis(args.empty_room_grace_ms),
        media_codecs: octo_controller::rooms::media_codecs(&args.media_codecs),
        spill: SpillLimits { consumers: args.room_spill_consumers, cpu: args.room_spill_cpu },
        pipe_srtp: args.pipe_srtp,
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
        turn: octo_controller::turn::TurnConfig::from_settings(
            &args.turn_urls,
            args.turn_secret.as_deref(),
            args.turn_username.as_deref(),
            args.turn_credential.as_deref(),
            Duration::from_secs(args.turn_ttl_s),
        )?,
    };
    let pool = Arc::new(WorkerPool::start(config).await?);
    tokio::spawn(logging::reload_on_sighup(sighup, args.config.clone(), filter_handle, pool.clone()));
    let rooms = Rooms::new(pool.clone(), rooms_config);
    let cluster = match cluster {
        Some(config) => {
            info!(node = config.node_id, address = %config.address, "joining the cluster");
            Some(rooms.join_cluster(config).context("--cluster-redis")?)
        }
        None => None,
    };
    let signaling = Signaling::new(rooms.clone(), signaling_config);
    let readiness = Readiness::new(pool.clone(), rooms.clone());
    if !args.metrics_listen.is_empty() {
        let addr: SocketAddr = args.metrics_listen.parse().context("--metrics-listen")?;
        let metrics_listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics {addr}"))?;
        info!("metrics on http://{}/metrics", metrics_listener.local_addr()?);
        let app = octo_controller::metrics::router(octo_controller::metrics::MetricsState {
            pool: pool.clone(),
            rooms: rooms.clone(),
            signaling: signaling.clone(),
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics_listener, app).await {
                tracing::error!("metrics endpoint failed: {e}");
            }
        });
    }
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let local_addr = listener.local_addr()?;
    if let Some(cluster) = &cluster {
        let url = args.public_url.clone().unwrap_or_else(|| {
            let ip = if local_addr.ip().is_unspecified() { cluster.address() } else { local_addr.ip() };
            format!("{scheme}://{}", SocketAddr::new(ip, local_addr.port()))
        });
        cluster.set_public_url(url);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let app = http::router(pool.clone(), readiness.clone(), signaling.clone(), args.web_root);
    let mut server = match tls {
        None => serve(listener, app, stop_rx),
        // tap_io: axum derives the SocketAddr connect info of any listener it wraps.
        Some(tls) => serve(TlsListener::new(listener, tls.config)?.tap_io(|_| {}), app, stop_rx),
    };
    // Workers answer and the listener accepts: ready for load balancers and systemd (Type=notify).
    readiness.mark_serving();
    info!(workers, "listening on {scheme}://{local_addr}");
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
    // Drain: refuse new joins, let the rooms in progress finish until the deadline; a second
    // signal ends it at once.
    rooms.start_draining();
    let drain = Duration::from_millis(args.drain_timeout_ms);
    if rooms.peer_total() > 0 {
        signaling.announce_drain(drain).await;
    }
    let deadline = tokio::time::Instant::now() + drain;
    while rooms.peer_total() > 0 && tokio::time::Instant::now() < deadline {
        info!(peers = rooms.peer_total(), "draining: waiting for rooms to finish");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
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

/// The cluster settings: the node's id defaults to the host name, its address to the first
/// specific --rtc-listen-ip.
fn cluster_config(args: &Args, redis_url: &str) -> anyhow::Result<ClusterConfig> {
    let node_id = match &args.node_id {
        Some(id) => id.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("reading the host name for --node-id")?
            .trim()
            .to_owned(),
    };
    let address = match args.node_address {
        Some(ip) => ip,
        None => args.rtc_listen_ips.iter().copied().find(|ip| !ip.is_unspecified()).context(
            "--node-address is needed: the workers listen on a wildcard address, so other nodes cannot be told where to send media",
        )?,
    };
    Ok(ClusterConfig {
        redis_url: redis_url.to_owned(),
        node_id,
        address,
        chat_history: ChatHistory {
            messages: args.chat_history_messages,
            max_age: Duration::from_secs(args.chat_history_minutes.saturating_mul(60)),
        },
    })
}

/// Serves `app` on `listener` until `stop` turns true, then lets open requests finish.
fn serve<L>(listener: L, app: Router, mut stop: watch::Receiver<bool>) -> JoinHandle<std::io::Result<()>>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
    for<'a> SocketAddr: Connected<IncomingStream<'a, L>>,
{
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
    })
}
